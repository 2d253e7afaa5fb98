"""model_to_dot / plot_model: the dot graph (boxes, labels, edges) equals real Keras 3's for
the same Sequential, functional (several inputs, branches, shared layer) and nested models."""
import sys

import numpy as np
import pytest

pydot = pytest.importorskip("pydot")

import axone  # noqa: E402
from axone import layers  # noqa: E402
from axone.utils import model_to_dot, plot_model  # noqa: E402
from axone.utils import model_visualization as mv  # noqa: E402


def _real_keras():
    for name in list(sys.modules):
        if (name == "keras" or name.startswith("keras.")) and getattr(sys.modules[name],
                                                                       "__axone_alias__", False):
            pytest.skip("the keras import alias is installed in this process")
    return pytest.importorskip("keras")


# --------------------------------------------------------------------------- the same models
def sequential(L, M):
    return M.Sequential([L.Input((4,)), L.Dense(3, activation="relu", name="d1"),
                         L.Dropout(0.5, name="drop"), L.Dense(2, name="d2")], name="seq")


def branches(L, M):
    a = L.Input((3,), name="a")
    b = L.Input((2,), name="b")
    x = L.Dense(4, activation="tanh", name="left")(a)
    y = L.Dense(4, name="right")(a)
    s = L.Add(name="sum")([x, y])
    c = L.Concatenate(name="cat")([s, b])
    shared = L.Dense(2, name="shared")
    out1 = shared(c)
    out2 = L.Dense(1, name="head")(shared(L.Dense(6, name="proj")(c)))
    return M.Model([a, b], [out1, out2], name="branches")


def nested(L, M):
    inner_f_in = L.Input((5,), name="fin")
    inner_f = M.Model(inner_f_in, L.Dense(3, name="f1")(L.Dense(5, name="f0")(inner_f_in)),
                      name="inner_f")
    inner_s = M.Sequential([L.Input((3,)), L.Dense(4, name="s0"), L.Dense(2, name="s1")],
                           name="inner_s")
    inner_s.trainable = False
    a = L.Input((5,), name="x")
    return M.Model(a, inner_s(inner_f(a)), name="outer")


def _axone(builder):
    axone.utils.clear_session()
    return builder(axone.layers, axone.models)


def _keras(builder):
    keras = _real_keras()
    keras.utils.clear_session()
    return builder(keras.layers, keras.models)


def _names(model):
    """id(layer) → name for every layer, nested ones included."""
    out = {str(id(model)): model.name}
    for layer in model.layers:
        out.update(_names(layer) if hasattr(layer, "layers") else {str(id(layer)): layer.name})
    for t in getattr(model, "inputs", None) or []:      # Sequential's own InputLayer
        hist = getattr(t, "_keras_history", None) or getattr(t, "_history", None)
        if hist is not None:
            out.setdefault(str(id(hist[0])), hist[0].name)
    return out


def _graph(dot, names):
    """(labels by layer name, edges as name pairs, clusters as name → labels) of a pydot graph."""
    labels = {names[n.get_name()]: n.get("label") for n in dot.get_nodes()
              if n.get_name() not in ("node", "edge", "graph")}
    edges = sorted((names[e.get_source()], names[e.get_destination()]) for e in dot.get_edges())
    clusters = {}
    for sub in dot.get_subgraphs():
        sub_labels, sub_edges, sub_clusters = _graph(sub, names)
        clusters[sub.get_name()] = (sub_labels, sub_edges, sub_clusters)
    return labels, edges, clusters


_BUILT = {}
OPTIONS = [dict(), dict(show_shapes=True), dict(show_shapes=True, show_dtype=True,
                                                show_layer_activations=True, show_trainable=True),
           dict(show_layer_names=False, show_shapes=True)]


@pytest.mark.parametrize("builder", [sequential, branches, nested], ids=lambda b: b.__name__)
@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize("expand_nested", [False, True])
def test_dot_graph_matches_keras(builder, options, expand_nested):
    if builder not in _BUILT:                  # each pair of models is built once
        _BUILT[builder] = (_keras(builder), _axone(builder))
    km, am = _BUILT[builder]
    kd = _real_keras().utils.model_to_dot(km, expand_nested=expand_nested, **options)
    ad = model_to_dot(am, expand_nested=expand_nested, **options)
    assert _graph(ad, _names(am)) == _graph(kd, _names(km))
    for key in ("rankdir", "concentrate", "dpi", "splines"):
        assert str(ad.get(key)) == str(kd.get(key))


def test_structure_by_hand():
    m = _axone(branches)
    labels, edges, _ = _graph(model_to_dot(m, show_shapes=True), _names(m))
    assert set(labels) == {"a", "b", "left", "right", "sum", "cat", "shared", "proj", "head"}
    assert edges == sorted([("a", "left"), ("a", "right"), ("left", "sum"), ("right", "sum"),
                            ("sum", "cat"), ("b", "cat"), ("cat", "shared"), ("cat", "proj"),
                            ("proj", "shared"), ("shared", "head")])
    assert "Input shape: <b>[(None, 4), (None, 2)]</b>" in labels["cat"]
    assert "Output shape: <b>(None, 6)</b>" in labels["cat"]
    assert "Input shape" not in labels["a"] and "Output shape: <b>(None, 3)</b>" in labels["a"]
    seq = _axone(sequential)
    labels, edges, _ = _graph(model_to_dot(seq), _names(seq))
    assert edges == [("d1", "drop"), ("drop", "d2")]


def test_nested_clusters():
    m = _axone(nested)
    labels, edges, clusters = _graph(model_to_dot(m, expand_nested=True), _names(m))
    assert set(labels) == {"x"}
    assert set(clusters) == {"cluster_inner_f", "cluster_inner_s"}
    assert set(clusters["cluster_inner_f"][0]) == {"fin", "f0", "f1"}
    assert clusters["cluster_inner_s"][1] == [("s0", "s1")]
    assert edges == [("f1", "s0"), ("x", "fin")]


def test_subclassed_model_is_one_box():
    class Sub(axone.Model):
        def __init__(self):
            super().__init__(name="sub")
            self.d = layers.Dense(2)

        def call(self, x):
            return self.d(x)
    m = Sub()
    m(np.ones((1, 3), "float32"))
    dot = model_to_dot(m)
    nodes = [n for n in dot.get_nodes() if n.get_name() not in ("node", "edge", "graph")]
    assert len(nodes) == 1 and "<b>sub</b> (Sub)" in nodes[0].get("label")
    assert dot.get_edges() == []


def test_plot_model_writes_dot_text_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(mv, "check_graphviz", lambda: False)
    m = _axone(branches)
    path = tmp_path / "m.dot"
    assert plot_model(m, to_file=str(path), show_shapes=True) is None
    text = path.read_text()
    assert text.startswith("digraph") and "Output shape: <b>(None, 6)</b>" in text
    assert text.count("->") == 10
    # show_layer_names is False by default in plot_model (True in model_to_dot), as in Keras
    assert "<b>cat</b>" not in text and "<b>Concatenate</b>" in text


def test_plot_model_without_graphviz_names_it(tmp_path, monkeypatch):
    monkeypatch.setattr(mv, "check_graphviz", lambda: False)
    with pytest.raises(ImportError, match="graphviz"):
        plot_model(_axone(sequential), to_file=str(tmp_path / "m.png"))
    assert not (tmp_path / "m.png").exists()


@pytest.mark.skipif(not mv.check_graphviz(), reason="Graphviz's dot program is not installed")
def test_plot_model_png(tmp_path):
    path = tmp_path / "m.png"
    plot_model(_axone(nested), to_file=str(path), expand_nested=True, show_shapes=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_pydot(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydot", None)
    with pytest.raises(ImportError, match="pip install pydot"):
        model_to_dot(_axone(sequential))
    assert not mv.check_pydot() and not mv.check_graphviz()


def test_bad_arguments():
    m = _axone(sequential)
    with pytest.raises(ValueError, match="layer_range"):
        model_to_dot(m, layer_range=["d1", "d2"])
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        plot_model(m, to_file="x.dot", colour=True)
    with pytest.raises(ValueError, match="rankdir"):
        model_to_dot(m, rankdir="XY")
    unbuilt = axone.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="not yet been built"):
        model_to_dot(unbuilt)
    with pytest.raises(ValueError, match="not yet been built"):
        plot_model(unbuilt)
