"""Plots of course 004: learning curves, convolution filters, feature maps.

matplotlib is optional: it is imported only when a function is called (install it
with ``pip install matplotlib``).  Every function returns the matplotlib ``Figure``;
nothing is shown or saved here (call ``fig.savefig(...)`` or ``plt.show()``).
"""
import math

import numpy as np

__all__ = ["plot_history", "plot_filters", "plot_feature_maps"]


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("axone.utils plotting needs matplotlib: pip install matplotlib") from e
    return plt


def _array(x):
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    return np.asarray(x.data if hasattr(x, "data") and not isinstance(x, np.ndarray) else x)


def _grid(n, ncols):
    ncols = max(1, min(int(ncols), n))
    return int(math.ceil(n / ncols)), ncols


# ------------------------------------------------------------------ history
def plot_history(history, metrics=None, ax=None, figsize=None):
    """Learning curves: one panel per quantity, training (solid) and ``val_`` (dashed).

    Args:
        history: the ``History`` returned by ``fit`` or its ``.history`` dict.
        metrics: names to plot (e.g. ``["loss", "accuracy"]``; a ``val_`` name is mapped to
            its training name); default every training quantity recorded.
        ax: a matplotlib Axes (all curves on it) or a sequence of Axes (one per name).
        figsize: size of a new figure.

    Returns:
        The matplotlib Figure.
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict):
        raise TypeError(f"plot_history: expected a History or a dict of lists, "
                        f"received {type(history).__name__}")
    if metrics is None:
        names = [k for k in logs if not k.startswith("val_")]
        names += [k[4:] for k in logs if k.startswith("val_") and k[4:] not in logs]
    else:
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        names = [k[4:] if k.startswith("val_") else k for k in names]
        names = list(dict.fromkeys(names))
        missing = [k for k in names if k not in logs and "val_" + k not in logs]
        if missing:
            raise ValueError(f"plot_history: no {missing} in the history; recorded: {sorted(logs)}")
    if not names:
        raise ValueError("plot_history: the history is empty")
    names.sort(key=lambda k: k != "loss")              # the loss first, then the metrics
    plt = _plt()
    if ax is None:
        fig, axes = plt.subplots(1, len(names), figsize=figsize or (5 * len(names), 3.5),
                                 squeeze=False)
        axes = list(axes[0])
    elif isinstance(ax, (list, tuple, np.ndarray)):
        axes = list(np.ravel(ax))
        if len(axes) < len(names):
            raise ValueError(f"plot_history: {len(names)} quantities but {len(axes)} axes")
        fig = axes[0].figure
    else:
        axes = [ax] * len(names)
        fig = ax.figure
    for a, name in zip(axes, names):
        for key, style in ((name, "-"), ("val_" + name, "--")):
            if key in logs:
                values = [float(_array(v)) for v in logs[key]]
                epochs = np.arange(1, len(values) + 1)
                a.plot(epochs, values, style, marker="o", markersize=3, label=key)
        a.set_xlabel("epoch")
        a.set_ylabel(name if len(set(map(id, axes))) > 1 else "value")
        if len(set(map(id, axes))) > 1:
            a.set_title(name)
        a.grid(True, alpha=0.3)
        a.legend()
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ filters
def _kernel(layer_or_kernel):
    k = getattr(layer_or_kernel, "kernel", None)
    if k is None and hasattr(layer_or_kernel, "get_weights") and not isinstance(layer_or_kernel, np.ndarray):
        w = layer_or_kernel.get_weights()
        k = w[0] if w else None
        if k is None:
            raise ValueError(f"plot_filters: layer {getattr(layer_or_kernel, 'name', '?')!r} has no "
                             f"weights (is it built?)")
    k = _array(layer_or_kernel if k is None else k).astype(np.float64)
    if k.ndim == 3:      # Conv1D kernel (k, cin, F): show as 1 × k images
        k = k[None]
    if k.ndim != 4:
        raise ValueError(f"plot_filters: expected a Conv2D kernel (kh, kw, in_channels, filters), "
                         f"received shape {k.shape}")
    return k


def _normalize(a):
    lo, hi = float(a.min()), float(a.max())
    return np.zeros_like(a) if hi - lo < 1e-12 else (a - lo) / (hi - lo)


def plot_filters(layer_or_kernel, channel=None, max_filters=64, ncols=8, cmap="gray",
                 figsize=None):
    """Grid of the filters of a convolution kernel (kh, kw, in_channels, filters).

    Args:
        layer_or_kernel: a built Conv2D (or Conv1D) layer or its kernel array.
        channel: input channel to show; default: the RGB filter when the kernel has 3 input
            channels, otherwise the mean over input channels.
        max_filters: show at most this many filters (the first ones).
        ncols: columns of the grid.
        cmap: colormap of single-channel filters.

    Returns:
        The matplotlib Figure (each filter min-max normalized to [0, 1]).
    """
    k = _kernel(layer_or_kernel)
    kh, kw, cin, nf = k.shape
    if channel is not None and not (isinstance(channel, (int, np.integer)) and 0 <= channel < cin):
        raise ValueError(f"plot_filters: channel must be an int in [0, {cin}), received {channel!r}")
    n = min(nf, int(max_filters))
    if n <= 0:
        raise ValueError(f"plot_filters: max_filters must be positive, received {max_filters!r}")
    plt = _plt()
    rows, cols = _grid(n, ncols)
    fig, axes = plt.subplots(rows, cols, figsize=figsize or (1.2 * cols, 1.2 * rows), squeeze=False)
    for i, a in enumerate(axes.ravel()):
        a.axis("off")
        if i >= n:
            continue
        f = k[..., i]
        if channel is not None:
            a.imshow(_normalize(f[..., channel]), cmap=cmap, vmin=0, vmax=1)
        elif cin == 3:
            a.imshow(_normalize(f))
        else:
            a.imshow(_normalize(f.mean(axis=-1)), cmap=cmap, vmin=0, vmax=1)
        a.set_title(str(i), fontsize=7)
    fig.suptitle(f"{nf} filters {kh}×{kw}×{cin}" if nf == n else f"{n} of {nf} filters {kh}×{kw}×{cin}",
                 fontsize=9)
    return fig


# ------------------------------------------------------------- feature maps
def _collect_activations(model, x, layer_names):
    """Outputs of the model's layers for input x, as {layer name: array}."""
    from ..autograd.function import no_grad
    layers = list(model.layers)
    wanted = None if layer_names is None else list(layer_names)
    if wanted is not None:
        known = {l.name for l in layers}
        bad = [n for n in wanted if n not in known]
        if bad:
            raise ValueError(f"plot_feature_maps: no layer named {bad}; layers are "
                             f"{[l.name for l in layers]}")
    acts = {}
    inputs = getattr(model, "inputs", None)
    with no_grad():
        if inputs and len(inputs) == 1:
            # A graph model: a sub-model from its input to every layer output.
            from ..models import Model
            from ..layers.core import InputLayer
            chosen = [l for l in layers if not isinstance(l, InputLayer)
                      and (wanted is None or l.name in wanted)]
            try:
                outs = [l.output for l in chosen]
                sub = Model(inputs[0], outs)
                vals = sub(x, training=False)
                vals = vals if isinstance(vals, (list, tuple)) else [vals]
                for l, v in zip(chosen, vals):
                    acts[l.name] = _array(v)
                return acts
            except (AttributeError, ValueError, TypeError):
                acts = {}
        # A plain stack: run the layers in turn.
        h = x
        for l in layers:
            h = l(h, training=False)
            if wanted is None or l.name in wanted:
                acts[l.name] = _array(h)
    return acts


def plot_feature_maps(model, x, layer_names=None, max_maps=16, ncols=8, cmap="viridis",
                      figsize=None):
    """Activations of one input through the convolution layers of a model.

    Args:
        model: a Sequential or functional model (its layers are run in order, or a
            sub-model from its input to the chosen layers is built).
        x: one input (H, W, C) or a batch whose first element is shown.
        layer_names: layers to show; default every layer whose output is a stack of
            feature maps (rank 4: batch, H, W, channels).
        max_maps: at most this many channels per layer.
        ncols: maps per row.
        cmap: colormap.

    Returns:
        The matplotlib Figure: one block of rows per layer, titled with its name and shape.
    """
    x = _array(x)
    in_shape = getattr(model, "inputs", None)
    rank = len(in_shape[0].shape) if in_shape else None
    if rank is not None and x.ndim == rank - 1:
        x = x[None]
    elif rank is None and x.ndim == 3:
        x = x[None]
    x = x[:1].astype(np.float32 if x.dtype.kind != "f" else x.dtype)
    acts = _collect_activations(model, x, layer_names)
    if layer_names is None:
        acts = {k: v for k, v in acts.items() if v.ndim == 4}
    else:
        acts = {k: acts[k] for k in layer_names}
    if not acts:
        raise ValueError("plot_feature_maps: no layer with feature maps (rank-4 output) to show; "
                         "give layer_names")
    if int(max_maps) <= 0:
        raise ValueError(f"plot_feature_maps: max_maps must be positive, received {max_maps!r}")
    plt = _plt()
    blocks = []
    for name, a in acts.items():
        a = a[0]
        if a.ndim == 1:
            a = a[None, :, None]
        elif a.ndim == 2:           # (steps, channels)
            a = a[None]
        n = min(a.shape[-1], int(max_maps))
        blocks.append((name, a, n, _grid(n, ncols)))
    cols = max(c for _, _, _, (_, c) in blocks)
    total_rows = sum(r for _, _, _, (r, _) in blocks)
    fig, axes = plt.subplots(total_rows, cols, figsize=figsize or (1.4 * cols, 1.5 * total_rows),
                             squeeze=False)
    r0 = 0
    for name, a, n, (rows, _) in blocks:
        for i in range(rows * cols):
            ax = axes[r0 + i // cols, i % cols]
            ax.axis("off")
            if i < n:
                ax.imshow(a[..., i], cmap=cmap, aspect="auto" if a.shape[0] == 1 else "equal")
        axes[r0, 0].set_title(f"{name} {tuple(a.shape)}", fontsize=8, loc="left")
        r0 += rows
    fig.tight_layout()
    return fig
