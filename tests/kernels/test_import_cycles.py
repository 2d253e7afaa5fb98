"""No import circle among axone's modules.

A static check over the source: every ``import …`` and ``from … import …`` statement, at module
level and inside functions and classes alike, relative imports resolved against the module's
package, is an edge from the module to the axone module it names (``from pkg import name`` is an
edge to ``pkg.name`` when that is a module, else to ``pkg``; importing ``pkg.sub`` also imports
``pkg``, unless ``pkg`` holds the importing module: a package is always imported before its
modules, so that edge closes no circle).  A circle is a strongly connected component of more than one module.
"""
import ast
import os

import axone

ROOT = os.path.dirname(os.path.abspath(axone.__file__))


def _modules(root=ROOT, package="axone"):
    """{module name: path} of every .py file of the package."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        rel = os.path.relpath(dirpath, root)
        parts = [package] + ([] if rel == "." else rel.split(os.sep))
        for f in filenames:
            if f.endswith(".py"):
                name = ".".join(parts if f == "__init__.py" else parts + [f[:-3]])
                out[name] = os.path.join(dirpath, f)
    return out


def import_graph(modules):
    """{module: {modules it imports}} among the given modules."""
    graph = {}
    for name, path in modules.items():
        is_pkg = path.endswith("__init__.py")
        package = name if is_pkg else name.rpartition(".")[0]
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        edges = set()

        def add(target):
            # importing a.b.c imports a.b and a too, except the packages holding this module,
            # which are always imported before it (an edge to them is no circle)
            while target:
                if target in modules and target != name and not name.startswith(target + "."):
                    edges.add(target)
                target = target.rpartition(".")[0]

        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(alias.name)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                for alias in node.names:
                    sub = f"{mod}.{alias.name}"
                    add(sub if sub in modules else mod)
        graph[name] = edges
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_checker_finds_a_circle_through_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub.c import x\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("import pkg.a\nx = 1\n")
    (pkg / "d.py").write_text("from .sub import c\n")        # d → sub.c, not in a circle
    graph = import_graph(_modules(str(pkg), "pkg"))
    assert graph["pkg.d"] == {"pkg.sub", "pkg.sub.c"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


def test_the_old_backend_optimizers_circle_would_be_found():
    """backend.get_num_threads once imported _KERNELS from the optimizers inside the function,
    while the optimizers import autograd, which imports the backend."""
    graph = import_graph(_modules())
    graph = {k: set(v) for k, v in graph.items()}
    graph["axone.backend"].add("axone.optimizers")
    found = cycles(graph)
    assert any("axone.backend" in c and "axone.optimizers" in c for c in found), found


def test_no_import_circle_in_axone():
    found = cycles(import_graph(_modules()))
    assert not found, "import circles among axone's modules:\n" + "\n".join(
        " ↔ ".join(c) for c in found)


def test_saving_does_not_import_the_model_classes():
    """models/saving.py builds Model and Sequential from the classes they register with it."""
    graph = import_graph(_modules())
    assert "axone.models.saving" in graph["axone.models.model"]
    assert not graph["axone.models.saving"] & {"axone.models.model", "axone.models.sequential"}


def test_the_compiled_module_loader_imports_nothing_from_axone():
    graph = import_graph(_modules())
    assert graph["axone._native"] <= {"axone"}
    assert "axone._native" in graph["axone.backend"]
    assert "axone.optimizers" not in graph["axone.backend"]
    for m in ("axone.ops.nn", "axone.ops.recurrent", "axone.ops._compiled", "axone.ops._parallel"):
        assert "axone.optimizers" not in graph[m], m
