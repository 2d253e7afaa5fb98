"""Plots of the courses: learning curves, convolution filters, feature maps (004); decision
regions of 2-D classifiers, the L(w) curve of a 1-parameter gradient descent (000/002 §1.2), the
confusion matrix.

matplotlib is optional: it is imported only when a function is called (install it
with ``pip install matplotlib``).  Every function returns the matplotlib ``Figure``;
nothing is shown or saved here (call ``fig.savefig(...)`` or ``plt.show()``).
"""
import math

import numpy as np

__all__ = ["plot_history", "plot_filters", "plot_feature_maps", "plot_decision_regions",
           "gradient_descent_1d", "plot_gradient_descent_1d", "plot_confusion_matrix"]


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


# ------------------------------------------------------- decision regions
def _predict_classes(model, points, threshold):
    """Class indices predicted for the rows of ``points``: the argmax of a (n, k > 1) output,
    otherwise the output itself when it is already integral (0/1 of a Heaviside unit, class
    labels), else ``output > threshold`` (a probability of the positive class)."""
    if hasattr(model, "predict"):
        try:
            out = model.predict(points, verbose=0)
        except TypeError:               # a predict without Keras's verbose argument
            out = model.predict(points)
    elif callable(model):
        out = model(points)
    else:
        raise TypeError(f"plot_decision_regions: model must have a predict method or be "
                        f"callable, received {type(model).__name__}")
    out = _array(out)
    if out.ndim == 2 and out.shape[1] > 1:
        return np.argmax(out, axis=1)
    out = out.reshape(-1)
    if out.shape[0] != points.shape[0]:
        raise ValueError(f"plot_decision_regions: the model gave {out.shape[0]} predictions for "
                         f"{points.shape[0]} grid points")
    if out.dtype.kind in "biu" or np.all(np.mod(out, 1) == 0):
        return out.astype(np.int64)
    return (out > threshold).astype(np.int64)


def _labels_of(y, n, what):
    y = _array(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = np.argmax(y, axis=1)
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{what}: expected one label per sample ({n}), received shape {y.shape}")
    return y


def plot_decision_regions(model, x, y=None, resolution=200, padding=0.1, threshold=0.5,
                          ax=None, cmap="coolwarm", alpha=0.35, figsize=None):
    """Decision regions of a classifier of 2-D inputs, with the samples on top.

    The plane around the samples is cut into ``resolution × resolution`` cells; the model
    predicts the class of each cell's centre, and the classes are drawn as an image (cell (i, j)
    is the point (xs[j], ys[i]); the image's ``extent`` spans the cells' edges).

    Args:
        model: anything with ``predict(points)`` (a Keras-style model, ``Perceptron``, a
            scikit-learn estimator) or a callable; an output of shape (n, k > 1) gives the
            argmax, an integral output is taken as the class, a real one as the probability of
            class 1 (``> threshold``).
        x: samples, shape (n, 2).
        y: their classes (n,) or one-hot (n, k), to colour the samples; optional.
        resolution: cells per axis.
        padding: margin around the samples, as a fraction of their range on each axis.
        threshold: the probability above which a single output means class 1.
        ax, cmap, alpha, figsize: matplotlib options.

    Returns:
        The matplotlib Figure.
    """
    x = _array(x).astype(np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"plot_decision_regions: x must have shape (n_samples, 2), received "
                         f"{x.shape}")
    if x.shape[0] == 0 or not np.all(np.isfinite(x)):
        raise ValueError("plot_decision_regions: x must hold at least one sample, all finite")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) \
            or resolution < 2:
        raise ValueError(f"plot_decision_regions: resolution must be an integer ≥ 2, received "
                         f"{resolution!r}")
    if y is not None:
        y = _labels_of(y, x.shape[0], "plot_decision_regions")
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    lo, hi = lo - padding * span, hi + padding * span
    xs = np.linspace(lo[0], hi[0], int(resolution))
    ys = np.linspace(lo[1], hi[1], int(resolution))
    gx, gy = np.meshgrid(xs, ys)
    from .. import backend
    points = np.column_stack([gx.ravel(), gy.ravel()]).astype(backend.floatx())
    classes = _predict_classes(model, points, threshold).reshape(gx.shape)
    n_classes = int(max(classes.max(), 0 if y is None else np.max(y) if y.dtype.kind in "biuf"
                        else 0)) + 1
    plt = _plt()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize or (5, 4.5))
    else:
        fig = ax.figure
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    ax.imshow(classes, origin="lower", interpolation="nearest", aspect="auto", cmap=cmap,
              alpha=alpha, vmin=0, vmax=max(n_classes - 1, 1),
              extent=(xs[0] - dx / 2, xs[-1] + dx / 2, ys[0] - dy / 2, ys[-1] + dy / 2))
    if y is None:
        ax.scatter(x[:, 0], x[:, 1], c="k", s=20)
    else:
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap=cmap, vmin=0, vmax=max(n_classes - 1, 1),
                   edgecolors="k", s=30)
    ax.set_xlim(xs[0] - dx / 2, xs[-1] + dx / 2)
    ax.set_ylim(ys[0] - dy / 2, ys[-1] + dy / 2)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title("decision regions")
    return fig


# ------------------------------------------- 1-parameter gradient descent
def _boston_rm_price():
    from ..datasets import load_boston
    features, price = load_boston()
    return features[:, 0], price


def _xy_1d(x, y, what):
    if x is None and y is None:
        x, y = _boston_rm_price()
    elif x is None or y is None:
        raise ValueError(f"{what}: give both x and y (or neither, for Boston's RM and PRICE)")
    x = _array(x)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"{what}: x must be one feature, shape (n,) or (n, 1), received shape "
                         f"{x.shape}")
    x = x.astype(np.float64)
    y = _array(y).astype(np.float64).reshape(-1)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"{what}: x and y must have the same number of samples (> 0), received "
                         f"{x.shape[0]} and {y.shape[0]}")
    return x, y


def gradient_descent_1d(x=None, y=None, learning_rate=1e-5, w0=0.0, steps=10):
    """Gradient descent on one weight: ŷ = w·x, L(w) = Σᵢ (w xᵢ − yᵢ)² (course 000/002 §1.2).

    Each step ``w ← w − ρ ∂L/∂w`` with ``∂L/∂w = Σᵢ 2 (w xᵢ − yᵢ) xᵢ`` taken by axone's engine
    (one backward of L per step), in float64.  ``x`` and ``y`` default to Boston's RM and PRICE.

    Returns:
        The weights w₀ … w_steps as an array of ``steps + 1`` values.
    """
    from ..autograd.tensor import Tensor
    x, y = _xy_1d(x, y, "gradient_descent_1d")
    for name, v in (("learning_rate", learning_rate), ("w0", w0)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"gradient_descent_1d: {name} must be a number, received {v!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"gradient_descent_1d: steps must be a non-negative integer, received "
                         f"{steps!r}")
    xt, yt = Tensor(x), Tensor(y)
    ws = [float(w0)]
    for _ in range(int(steps)):
        w = Tensor(np.array(ws[-1]), requires_grad=True)
        loss = ((w * xt - yt) ** 2).sum()
        loss.backward()
        ws.append(ws[-1] - float(learning_rate) * float(w.grad))
    return np.array(ws)


def plot_gradient_descent_1d(x=None, y=None, learning_rate=1e-5, w0=0.0, steps=10,
                             w_range=(-2.0, 10.0), num=100, ax=None, figsize=None):
    """The course's figure of 1-D gradient descent: the curve L(w) = Σᵢ (w xᵢ − yᵢ)² over
    ``w_range`` (red), and the steps w₀ … w_steps on it (black dots joined), w₀ and the last
    one labelled.  ``x``, ``y`` default to Boston's RM and PRICE; see
    :func:`gradient_descent_1d`.

    Returns:
        The matplotlib Figure (its axes hold two lines: the curve, then the steps).
    """
    x, y = _xy_1d(x, y, "plot_gradient_descent_1d")
    ws = gradient_descent_1d(x, y, learning_rate, w0, steps)
    if len(w_range) != 2 or not w_range[0] < w_range[1]:
        raise ValueError(f"plot_gradient_descent_1d: w_range must be (low, high) with low < high, "
                         f"received {w_range!r}")
    loss = lambda w: np.sum((np.asarray(w, dtype=np.float64)[:, None] * x[None, :]
                             - y[None, :]) ** 2, axis=1)
    grid = np.linspace(float(w_range[0]), float(w_range[1]), int(num))
    plt = _plt()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize or (6, 4))
    else:
        fig = ax.figure
    ax.plot(grid, loss(grid), "r-", alpha=0.5, label="$\\mathcal{L}(w)$")
    ax.plot(ws, loss(ws), "ko-", label=f"gradient descent, ρ = {learning_rate:g}")
    ax.text(ws[0] + 0.1, loss(ws[:1])[0], "$w_{0}$")
    ax.text(ws[-1] + 0.1, loss(ws[-1:])[0], f"$w_{{{len(ws) - 1}}}$")
    ax.set_xlabel("$w$")
    ax.set_ylabel("$\\mathcal{L}(w)$")
    ax.legend()
    return fig


# ------------------------------------------------------- confusion matrix
def _confusion_matrix(y_true, y_pred, labels=None, normalize=None):
    y_true = _array(y_true)
    y_pred = _array(y_pred)
    n = y_true.shape[0] if y_true.ndim else 0
    y_true = _labels_of(y_true, n, "plot_confusion_matrix")
    y_pred = _labels_of(y_pred, n, "plot_confusion_matrix (y_pred)")
    if labels is None:
        labels = np.unique(np.concatenate([y_true, y_pred]))
    else:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.size == 0 or np.unique(labels).size != labels.size:
            raise ValueError(f"plot_confusion_matrix: labels must be distinct class values, "
                             f"received {labels!r}")
    index = {v: i for i, v in enumerate(labels.tolist())}
    k = len(labels)
    m = np.zeros((k, k), dtype=np.int64)
    ti = np.array([index.get(v, -1) for v in y_true.tolist()], dtype=np.int64)
    pi = np.array([index.get(v, -1) for v in y_pred.tolist()], dtype=np.int64)
    keep = (ti >= 0) & (pi >= 0)
    np.add.at(m, (ti[keep], pi[keep]), 1)
    if normalize is None:
        return m, labels
    if normalize not in ("true", "pred", "all"):
        raise ValueError(f"plot_confusion_matrix: normalize must be None, 'true', 'pred' or "
                         f"'all', received {normalize!r}")
    m = m.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if normalize == "true":
            m = m / m.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            m = m / m.sum(axis=0, keepdims=True)
        else:
            m = m / m.sum()
    return np.nan_to_num(m), labels


def plot_confusion_matrix(y_true, y_pred, labels=None, class_names=None, normalize=None,
                          cmap="Blues", ax=None, figsize=None, values_format=None, colorbar=True):
    """The confusion matrix of a classifier as an annotated image: rows the true classes,
    columns the predicted ones (cell (i, j) counts the samples of class i predicted as j).

    Args:
        y_true, y_pred: class labels (n,), or one-hot / probabilities (n, k) (argmax taken).
        labels: the classes, in the order of the rows; default every class seen, sorted.
            Samples whose true or predicted class is not listed are left out.
        class_names: tick labels (default the labels).
        normalize: None (counts), "true" (each row sums to 1), "pred" (each column), "all".
        cmap, ax, figsize: matplotlib options; values_format: the cell text format (default
            "d" for counts, ".2f" normalized); colorbar: draw one.

    Returns:
        The matplotlib Figure; the image holds the matrix (``ax.images[0].get_array()``).
    """
    m, labels = _confusion_matrix(y_true, y_pred, labels, normalize)
    k = len(labels)
    names = [str(v) for v in labels] if class_names is None else [str(v) for v in class_names]
    if len(names) != k:
        raise ValueError(f"plot_confusion_matrix: {k} classes but {len(names)} class_names")
    fmt = values_format or ("d" if normalize is None else ".2f")
    plt = _plt()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize or (1.0 + 0.7 * k, 0.8 + 0.6 * k))
    else:
        fig = ax.figure
    im = ax.imshow(m, interpolation="nearest", cmap=cmap)
    if colorbar:
        fig.colorbar(im, ax=ax)
    top = float(m.max()) if m.size else 0.0
    for i in range(k):
        for j in range(k):
            v = m[i, j]
            ax.text(j, i, format(int(v) if fmt == "d" else float(v), fmt), ha="center",
                    va="center", color="white" if top and v > top / 2 else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(names)
    ax.set_yticklabels(names)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    ax.set_title("confusion matrix" + ("" if normalize is None else f" (normalized: {normalize})"))
    return fig
