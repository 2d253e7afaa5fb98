"""``model.summary()``: the layer table of the courses (name (type), output shape, Param #).

The layout is Keras 3's: a model that is a plain chain of layers gets three columns, any other
functional model a fourth, "Connected to"; the default width is 88 (108 with four columns),
at most the terminal's width less 4, split at the fractions ``positions``; the parameter counts
are right-aligned.  The columns are then sized to the content: a column whose cells would wrap
takes the room the others leave unused, and a column is never narrower than its title and its
longest word, so that a number, a layer name or a shape entry is never cut in two.  What still
does not fit wraps at its spaces, as Keras does ("name (Type)" puts the type on a second line;
a shape breaks after a comma).
"""
import re
import shutil

import numpy as np

from ..io_utils import print_msg
from ..layers.core import InputLayer


def readable_size(nbytes):
    """1132 → '1.11 KB' (powers of 1024, two decimals, as Keras prints)."""
    size = float(nbytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _shape_str(shape):
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_str(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _wrap(text, width):
    """Greedy word wrap at spaces into lines of at most ``width`` characters (a word longer
    than ``width`` keeps its own line whole; the columns are sized so none is).  Leading spaces
    (the indent of a nested layer's row) stay on the first line."""
    text = str(text)
    body = text.lstrip(" ")
    lines, line = [], text[:len(text) - len(body)]
    for word in body.split(" "):
        if not line.strip():
            line += word
        elif len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            lines.append(line)
            line = word
    lines.append(line)
    return lines


# each cell has one space before its text; every column but the last keeps two more free
# before the next one (the layout of the courses' tables)
def _pad(i, n):
    return 1 if i == n - 1 else 3


def _row(fields, widths, right):
    n = len(widths)
    cols = [_wrap(f, w - _pad(i, n)) for i, (f, w) in enumerate(zip(fields, widths))]
    lines = []
    for k in range(max(len(c) for c in cols)):
        line = ""
        for i, (c, w) in enumerate(zip(cols, widths)):
            text = c[k] if k < len(c) else ""
            room = w - _pad(i, n)
            text = text.rjust(room) if right[i] else text.ljust(room)
            line += (" " + text).ljust(w)
        lines.append(line.rstrip())
    return lines


def _count(weights):
    return int(sum(int(np.prod(w.shape)) for w in weights))


def _nbytes(weights):
    """Memory of the distinct ``weights`` by their dtypes (Keras's weight_memory_size); an
    optimizer's step counter counts as Keras's int32."""
    total = 0
    for w in {id(w): w for w in weights}.values():
        size = np.dtype(w.dtype).itemsize
        if getattr(w, "name", None) == "iteration" and np.dtype(w.dtype).kind in "iu":
            size = 4
        total += int(np.prod(w.shape)) * size
    return total


def _sequential_like(model):
    """Keras's rule: a Sequential, a subclassed model, or a functional model whose graph is one
    chain (one input, each layer called once on the previous layer's output)."""
    if type(model).__name__ == "Sequential" or not getattr(model, "_is_graph", False):
        return True
    if len(model._inputs) != 1:
        return False
    prev, seen = list(model._inputs), set()
    for node in model._nodes:
        if id(node.layer) in seen or len(node.flat_inputs) != 1 \
                or not any(node.flat_inputs[0] is t for t in prev):
            return False
        seen.add(id(node.layer))
        prev = node.flat_outputs
    return True


def _connections(model, layer):
    if isinstance(layer, InputLayer):
        return "-"
    in_model = {id(n) for n in model._nodes}
    inbound = []
    for node in layer._inbound_nodes:
        if id(node) not in in_model:
            continue
        for t in node.flat_inputs:
            src, src_node, idx = t._history
            ni = src._inbound_nodes.index(src_node) if src_node in src._inbound_nodes else 0
            inbound.append(f"{src.name}[{ni}][{idx}]")
    return ", ".join(inbound) if inbound else "-"


def _column_widths(positions, line_length):
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    widths, current = [], 0
    for p in positions:
        widths.append(int(p) - current)
        current = int(p)
    if any(w < 4 for w in widths):
        raise ValueError(f"summary: line_length={line_length} and positions={positions} leave a "
                         f"column narrower than 4 characters")
    return widths


def _fit_columns(widths, header, rows):
    """Column widths at the fractions given, then sized to the content: each column at least
    as wide as its title and its longest word (the line grows if it must), and a column whose
    cells would wrap takes the room other columns leave unused, so the line keeps its length."""
    n = len(widths)
    rows = rows + [header]
    longest_word = [max([len(w) for f in col for w in str(f).split(" ")] + [len(header[i])])
                    + _pad(i, n) for i, col in enumerate(zip(*rows))]
    natural = [max(len(str(f)) for f in col) + _pad(i, n) for i, col in enumerate(zip(*rows))]
    widths = [max(w, m) for w, m in zip(widths, longest_word)]
    for i in range(n):
        for j in reversed(range(n)):
            need = natural[i] - widths[i]
            if need <= 0:
                break
            spare = widths[j] - natural[j]
            if j != i and spare > 0:
                give = min(need, spare)
                widths[i] += give
                widths[j] -= give
    return widths


def layer_index_range(layers, layer_range=None):
    """[first, last + 1] of the layers whose names match ``layer_range`` = (start regex, end
    regex), both inclusive, as Keras's ``summary(layer_range=…)``; all layers for None."""
    if layer_range is None:
        return [0, len(layers)]
    if not isinstance(layer_range, (list, tuple)) or len(layer_range) != 2:
        raise ValueError(f"summary: layer_range must be a list or tuple of two layer names, "
                         f"received {layer_range!r}")
    if not all(isinstance(n, str) for n in layer_range):
        raise ValueError(f"summary: layer_range must hold two strings, received {layer_range!r}")
    lower = [i for i, l in enumerate(layers) if re.match(layer_range[0], l.name)]
    upper = [i for i, l in enumerate(layers) if re.match(layer_range[1], l.name)]
    if not lower or not upper:
        raise ValueError(f"summary: layer_range {layer_range!r} does not match the names of the "
                         f"model's layers {[l.name for l in layers]}")
    if min(lower) > max(upper):
        return [min(upper), max(lower) + 1]
    return [min(lower), max(upper) + 1]


def print_summary(model, line_length=None, positions=None, print_fn=None, expand_nested=False,
                  show_trainable=False, layer_range=None):
    """Print ``model``'s layer table (Keras's ``model.summary``).

    ``expand_nested`` lists the layers of nested models under them (prefixed "└ "),
    ``show_trainable`` adds a "Trainable" column (Y, N, or - for a layer without weights),
    ``layer_range`` = (first name, last name), regular expressions, restricts the rows.
    """
    print_fn = print_fn or print_msg
    sequential = _sequential_like(model)
    layers = model.layers
    if sequential:
        default_length, default_positions = 88, [0.45, 0.80, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #"]
    else:
        default_length, default_positions = 108, [0.3, 0.56, 0.74, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
    right = [False, False, True, False][:len(header)]
    if show_trainable:
        default_length += 12
        if positions is None:
            default_positions = [p * 0.90 for p in default_positions] + [1.0]
        header.append("Trainable")
        right.append(False)
    line_length = line_length or min(default_length, shutil.get_terminal_size().columns - 4)
    positions = list(positions or default_positions)
    if len(positions) != len(header):
        raise ValueError(f"summary: positions must have {len(header)} entries (one per column "
                         f"{header}), received {len(positions)}")

    def fields_of(layer, level):
        try:
            shape = _shape_str(layer.output_shape) if layer._inbound_nodes else "?"
        except AttributeError:
            shape = "?"
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        prefix = "   " * level + "└ " if level else ""
        fields = [f"{prefix}{layer.name} ({type(layer).__name__})", shape, params]
        if not sequential:
            fields.append(_connections(model, layer) if level == 0 else "-")
        if show_trainable:
            fields.append(("Y" if layer.trainable else "N") if layer.weights else "-")
        return fields

    def rows_of(layer, level=0):
        rows = [fields_of(layer, level)]
        if expand_nested and getattr(layer, "layers", None):
            for sub in layer.layers:
                rows += rows_of(sub, level + 1)
        return rows

    lo, hi = layer_index_range(layers, layer_range)
    rows = []
    for layer in layers[lo:hi]:
        rows += rows_of(layer)

    widths = _fit_columns(_column_widths(positions, line_length), header, rows)
    line_length = sum(widths)

    out = [f'Model: "{model.name}"', "_" * line_length]
    out += _row(header, widths, right)
    out.append("=" * line_length)
    for i, fields in enumerate(rows):
        out += _row(fields, widths, right)
        out.append("" if i < len(rows) - 1 else "=" * line_length)
    if not rows:
        out.append("=" * line_length)
    # Keras: the trainable and non-trainable weights, and the optimizer's variables once it is
    # built (by fit / evaluate / train_on_batch); the total is their sum
    trainable_w, frozen_w, opt_w = [], [], []
    if model.built:
        trainable_w, frozen_w = model.trainable_weights, model.non_trainable_weights
    opt = getattr(model, "optimizer", None)
    opt_built = bool(getattr(model, "compiled", False) and opt is not None
                     and getattr(opt, "built", False))
    if opt_built:
        opt_w = opt.variables
    counts = [_count(trainable_w), _count(frozen_w), _count(opt_w)]
    sizes = [_nbytes(trainable_w), _nbytes(frozen_w), _nbytes(opt_w)]
    out.append(f"Total params: {sum(counts):,} ({readable_size(sum(sizes))})")
    out.append(f"Trainable params: {counts[0]:,} ({readable_size(sizes[0])})")
    out.append(f"Non-trainable params: {counts[1]:,} ({readable_size(sizes[1])})")
    if opt_built:
        out.append(f"Optimizer params: {counts[2]:,} ({readable_size(sizes[2])})")
    out.append("_" * line_length)
    for line in out:
        print_fn(line)
