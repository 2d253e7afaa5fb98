"""``model.summary()``: the layer table of the courses (name (type), output shape, Param #)."""
import numpy as np

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
    return [text[i:i + width] for i in range(0, max(len(text), 1), width)] or [""]


def _row(fields, widths):
    # one leading space, and two spaces kept free before the next column (Keras 2's layout)
    cols = [_wrap(str(f), w - (3 if i < len(widths) - 1 else 1)) for i, (f, w) in enumerate(zip(fields, widths))]
    lines = []
    for k in range(max(len(c) for c in cols)):
        line = ""
        for c, w in zip(cols, widths):
            line += (" " + (c[k] if k < len(c) else "")).ljust(w)
        lines.append(line.rstrip())
    return lines


def _count(weights):
    return int(sum(int(np.prod(w.shape)) for w in weights))


def print_summary(model, line_length=None, positions=None, print_fn=None):
    print_fn = print_fn or print
    sequential = type(model).__name__ == "Sequential" or not getattr(model, "_is_graph", False)
    if getattr(model, "_is_graph", False):
        layers = model.layers if sequential else model.layers
    else:
        layers = model.layers
    line_length = line_length or (65 if sequential else 98)
    positions = positions or ([0.45, 0.85, 1.0] if sequential else [0.33, 0.55, 0.67, 1.0])
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    widths = [positions[0]] + [b - a for a, b in zip(positions[:-1], positions[1:])]
    header = ["Layer (type)", "Output Shape", "Param #"] + ([] if sequential else ["Connected to"])
    out = [f'Model: "{model.name}"', "_" * line_length]
    out += _row(header, widths)
    out.append("=" * line_length)
    rows = []
    for layer in layers:
        try:
            shape = _shape_str(layer.output_shape) if layer._inbound_nodes else "?"
        except AttributeError:
            shape = "?"
        params = layer.count_params() if layer.built else 0
        fields = [f"{layer.name} ({type(layer).__name__})", shape, f"{params:,}"]
        if not sequential:
            inbound = []
            for node in layer._inbound_nodes[:1]:
                for t in node.flat_inputs:
                    src, src_node, idx = t._history
                    ni = src._inbound_nodes.index(src_node) if src_node in src._inbound_nodes else 0
                    inbound.append(f"{src.name}[{ni}][{idx}]")
            fields.append(", ".join(inbound) if inbound else "-" if isinstance(layer, InputLayer) else "")
        rows.append(_row(fields, widths))
    for i, r in enumerate(rows):
        out += r
        out.append("" if i < len(rows) - 1 else "=" * line_length)
    if not rows:
        out.append("=" * line_length)
    total = trainable = 0
    if model.built:
        seen = set()
        weights = []
        for w in model.weights:
            if id(w) not in seen:
                seen.add(id(w))
                weights.append(w)
        total = _count(weights)
        trainable = _count(model.trainable_weights)
    itemsize = 4
    out.append(f"Total params: {total:,} ({readable_size(total * itemsize)})")
    out.append(f"Trainable params: {trainable:,} ({readable_size(trainable * itemsize)})")
    out.append(f"Non-trainable params: {total - trainable:,} ({readable_size((total - trainable) * itemsize)})")
    out.append("_" * line_length)
    for line in out:
        print_fn(line)
