"""Fused neural-network nodes: dense, cross-entropies from logits, dropout.

Each is one node of the graph with a hand-written backward, so a layer costs
one node instead of several and the loss gradient is the stable closed form
(ŷ − y) rather than the product of the softmax and log derivatives.

Every node computes with the array module of its inputs (``xp = array_module(...)``, NumPy or
a device module such as CuPy); the compiled row kernels and the threaded products of
``_parallel`` serve host arrays only, a device array takes the plain ``xp`` formula.
"""
import math

import numpy as np

from .. import backend
from ..autograd.function import Function, unbroadcast
from ..autograd.tensor import Tensor, fresh_grad_out
from ..device import array_module, to_numpy
from . import _compiled, _parallel
from . import math as M

__all__ = [
    "dense", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "binary_crossentropy", "dropout",
    "celu", "glu", "hard_shrink", "hard_silu", "hard_swish", "hard_tanh", "log_sigmoid", "relu6",
    "soft_shrink", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "tanh_shrink",
    "threshold", "normalize", "psnr", "multi_hot", "polar",
]


def _epilogue_kernels():
    """The compiled module when it is built and has the Dense epilogues, else None."""
    return _compiled.kernels("dense_forward")


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_ndarray = np.ndarray
_F32 = np.dtype(np.float32)

#: rows of x·W that the compiled module multiplies by itself (small_matmul) instead of the BLAS
#: call, whose fixed cost is most of a one-row product; 0 keeps np.matmul for every size
SMALL_PRODUCT_ROWS = 2


def _small_product(x, w):
    """x·W for a float32 product of at most SMALL_PRODUCT_ROWS rows, W C-contiguous:
    the compiled module's small_matmul (each entry Σₖ xₖ·Wₖⱼ summed in the order k = 0, 1, …),
    or None (np.matmul then)."""
    if (x.shape[0] > SMALL_PRODUCT_ROWS or x.dtype != _F32 or w.dtype != _F32
            or not w.flags.c_contiguous):
        return None
    kern = _compiled.kernels("small_matmul")
    if kern is None:
        return None
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)       # a row or two (a view of a sequence's last step)
    y = np.empty((x.shape[0], w.shape[1]), dtype=_F32)
    kern.small_matmul(x, w, y)
    return y


def _rows(a):
    """``a`` as a 2-D array of rows along its last axis (also when that axis or a row count is 0)."""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


class Dense(Function):
    """y = x·W + b, x of shape (…, n_in), W (n_in, n_out), b (n_out,).

    dL/dx = dL/dy·Wᵀ,   dL/dW = xᵀ·dL/dy,   dL/db = Σ_batch dL/dy.

    With ``relu=True`` the node is y = max(x·W + b, 0), and dL/dy is first masked by y > 0.
    The element-wise ends (bias and ReLU forward; mask and Σ_batch backward) run as one pass of
    the compiled module when it is built (``dense_forward``/``dense_backward`` in _kernels.c,
    the same operations in the same order, so the same results).
    """

    relu = False

    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        if type(x) is _ndarray and type(w) is _ndarray and (b is None or type(b) is _ndarray):
            self.xp = xp = np
        else:
            self.xp = xp = array_module(x, w, b)
        if xp is not np:
            y = x @ w
            if b is not None:
                y = y + b
            if self.relu:
                self.y = y = xp.maximum(y, 0)
            return y
        if x.ndim == 2:
            y = _small_product(x, w)
            if y is None:
                y = _parallel.matmul(x, w)
        elif x.ndim > 2:                  # (…, n_in): one product over all the rows
            y = _parallel.matmul(_rows(x), w).reshape(x.shape[:-1] + (w.shape[1],))
        else:
            y = x @ w
        if b is not None and b.dtype != y.dtype and np.result_type(y, b) != y.dtype:
            y = y + b                     # in b's wider dtype, as x·W + b
            b = None
        k = _epilogue_kernels()
        if k is not None and y.dtype in _FLOATS and (b is None or b.dtype == y.dtype) \
                and y.flags.c_contiguous and (b is not None or self.relu):
            if b is not None and not b.flags.c_contiguous:
                b = np.ascontiguousarray(b)
            k.dense_forward(y if y.ndim == 2 else _rows(y), b, self.relu)
        else:
            if b is not None:
                y += b
            if self.relu:
                np.maximum(y, 0, out=y)
        if self.relu:
            self.y = y
        return y

    def backward(self, g):
        x, w, needs = self.x, self.w, self.needs
        has_b = len(needs) == 3 and needs[2]
        gb = None
        if self.xp is not np:
            return self._backward_xp(g, has_b)
        n = g.shape[-1] if g.ndim else 0
        k = _epilogue_kernels() if (self.relu or has_b) else None
        if k is not None and n >= 2 and g.dtype in _FLOATS and g.flags.c_contiguous \
                and (not self.relu or self.y.dtype == g.dtype):
            # one pass: the ReLU mask and dL/db (Σ over rows, as np.add.reduce(…, axis=0))
            flat = g.ndim == 2
            g2 = g if flat else _rows(g)
            gm = np.empty(g2.shape, dtype=g.dtype) if self.relu else None
            db = None
            if has_b:
                db = fresh_grad_out(self.inputs[2], (n,), g.dtype)
                if db is None:
                    db = gb = np.empty(n, dtype=g.dtype)
            y = None
            if self.relu:
                y = self.y if flat else _rows(self.y)
            k.dense_backward(g2, y, gm, db)
            if self.relu:
                g = gm.reshape(g.shape)
            has_b = False
        elif self.relu:
            g = g * (self.y > 0)
        shape = g.shape
        if x.ndim != 2:
            x, g = _rows(x), _rows(g)
        # dL/dx and dL/dW are independent products: computed at once (_parallel.matmuls); a
        # weight's first gradient of a training step goes straight into its gradient buffer
        gx = gw = out = None
        if needs[1]:
            out = fresh_grad_out(self.inputs[1], w.shape,
                                 g.dtype if x.dtype == g.dtype else np.result_type(x, g))
        if needs[0] and needs[1]:
            gx, gw = _parallel.matmuls([(g, w.T, None), (x.T, g, out)])
        elif needs[0]:
            gx = _parallel.matmul(g, w.T)
        elif needs[1]:
            gw = _parallel.matmul(x.T, g, out=out)
        if gx is not None and len(shape) != 2:
            gx = gx.reshape(shape[:-1] + (w.shape[0],))
        if out is not None:
            gw = None
        if has_b:
            b = self.inputs[2]
            out = fresh_grad_out(b, b.data.shape, g.dtype)
            if out is None:
                gb = np.add.reduce(g, axis=0)
            else:
                np.add.reduce(g, axis=0, out=out)
        if len(needs) == 3:
            return gx, gw, gb
        return gx, gw

    def _backward_xp(self, g, has_b):
        """The backward on device arrays: the same products, the mask and Σ_batch as plain
        array operations."""
        x, w, needs = self.x, self.w, self.needs
        if self.relu:
            g = g * (self.y > 0)
        gx = g @ w.T if needs[0] else None
        if x.ndim != 2:
            x, g = _rows(x), _rows(g)
        gw = x.T @ g if needs[1] else None
        if len(needs) == 3:
            return gx, gw, (g.sum(axis=0) if has_b else None)
        return gx, gw

    def backward_graph(self, g):
        """The same three products in differentiable ops (a gradient with a graph)."""
        x, w = self.inputs[0], self.inputs[1]
        needs = self.needs
        if self.relu:
            g = g * M._wrap((self.y > 0).astype(g.dtype))
        gx = M.matmul(g, M.transpose(w)) if needs[0] else None
        x2, g2 = x, g
        if x.data.ndim != 2:
            x2 = M.reshape(x, _rows(x.data).shape)
            g2 = M.reshape(g, _rows(g.data).shape)
        gw = M.matmul(M.transpose(x2), g2) if needs[1] else None
        if len(needs) == 3:
            return gx, gw, (M.sum(g2, axis=0) if needs[2] else None)
        return gx, gw


def dense(x, kernel, bias=None, relu=False):
    """Affine map ``x @ kernel + bias`` as one node (kernel shaped (in, out), like Keras);
    ``relu=True`` applies max(·, 0) inside the same node."""
    x = M._t(x, "dense")
    kernel = M._t(kernel, "dense")
    if kernel.ndim != 2:
        raise ValueError(f"dense: kernel must be 2-D (in, out), received shape {kernel.shape}")
    if x.ndim < 1 or x.shape[-1] != kernel.shape[0]:
        raise ValueError(
            f"dense: input's last dimension must equal the kernel's first: input shape "
            f"{x.shape}, kernel shape {kernel.shape}")
    if bias is None:
        return Dense.apply(x, kernel, relu=bool(relu))
    bias = M._t(bias, "dense")
    if bias.shape != (kernel.shape[1],):
        raise ValueError(f"dense: bias must have shape ({kernel.shape[1]},), received {bias.shape}")
    return Dense.apply(x, kernel, bias, relu=bool(relu))


# ------------------------------------------------------------ cross-entropy
def _max(xp, a, axis, keepdims=True):
    """max of ``a`` along ``axis`` (NumPy's ufunc reduce on the host, ``xp.max`` on a device)."""
    if xp is np:
        return np.maximum.reduce(a, axis=axis, keepdims=keepdims)
    return xp.max(a, axis=axis, keepdims=keepdims)


def _sum(xp, a, axis, keepdims=True):
    """Σ of ``a`` along ``axis`` (NumPy's ufunc reduce on the host, ``xp.sum`` on a device)."""
    if xp is np:
        return np.add.reduce(a, axis=axis, keepdims=keepdims)
    return xp.sum(a, axis=axis, keepdims=keepdims)


class SoftmaxCrossEntropy(Function):
    """Categorical cross-entropy from logits z, per sample:

        L = −Σₖ yₖ log softmax(z)ₖ,   dL/dz = softmax(z)·Σₖ yₖ − y   (= ŷ − y for one-hot y),
        dL/dy = −log softmax(z).
    """

    softmax = None      # the Softmax node over z, when the loss reads the logits under it
    rows = False        # computed row by row by the compiled module

    def forward(self, y, z):
        ax = self.axis
        sm, self.softmax = self.softmax, None
        xp = array_module(y, z)
        if xp is np and ax == z.ndim - 1 and z.dtype in _FLOATS and y.dtype == z.dtype \
                and z.size and z.flags.c_contiguous:
            k = _compiled.kernels("xent_rows")
            if k is not None:
                n = z.shape[-1]
                if sm is not None and sm.logp is not None and sm.logp.shape == z.shape:
                    p, logp = sm.y, sm.logp      # the softmax's own rows
                else:
                    p, logp = np.empty_like(z), np.empty_like(z)
                    k.softmax_rows(z.reshape(-1, n), p.reshape(-1, n), logp.reshape(-1, n))
                y = np.ascontiguousarray(y)
                loss = np.empty(z.shape[:-1], dtype=z.dtype)
                k.xent_rows(y.reshape(-1, n), logp.reshape(-1, n), loss.reshape(-1))
                self.p, self.logp, self.y, self.rows = p, logp, y, True
                return loss
        if sm is not None and sm.s is not None and sm.s.shape == z.shape:
            # its shifted logits, Σ e^s and softmax are this node's s, se and p: the same ops
            s, se, self.p = sm.s, sm.se, sm.y
        else:
            s = z - _max(xp, z, ax)
            e = xp.exp(s)
            se = _sum(xp, e, ax)
            self.p = e / se
        self.logp = logp = s - xp.log(se)
        self.y = y
        return -_sum(xp, y * logp, ax, keepdims=False)

    def backward(self, g):
        ax = self.axis % (g.ndim + 1)
        gz = None
        if self.rows and self.needs[1] and g.dtype == self.p.dtype:
            p = self.p
            n = p.shape[-1]
            gz = np.empty_like(p)
            _compiled.kernels("xent_grad_rows").xent_grad_rows(
                np.ascontiguousarray(g).reshape(-1), p.reshape(-1, n), self.y.reshape(-1, n),
                gz.reshape(-1, n))
        g = g.reshape(g.shape[:ax] + (1,) + g.shape[ax:])
        gy = -g * self.logp if self.needs[0] else None
        if self.needs[1] and gz is None:
            y = self.y
            gz = g * (self.p * _sum(array_module(y), y, ax) - y)
        return gy, gz

    def backward_graph(self, g):
        y, z = self.inputs
        ax = self.axis % z.data.ndim
        g = M.expand_dims(g, ax)
        gy = -g * M.log_softmax(z, axis=ax) if self.needs[0] else None
        gz = None
        if self.needs[1]:
            gz = g * (M.softmax(z, axis=ax) * M.sum(y, axis=ax, keepdims=True) - y)
        return gy, gz


class SparseSoftmaxCrossEntropy(Function):
    """Sparse categorical cross-entropy from logits z and integer labels c, per sample:

        L = −log softmax(z)_c,   dL/dz = softmax(z) − onehot(c).
    """

    def forward(self, z):
        self.xp = xp = array_module(z)
        s = z - xp.max(z, axis=-1, keepdims=True)
        e = xp.exp(s)
        se = xp.sum(e, axis=-1, keepdims=True)
        self.p = e / se
        lbl = self.labels[..., None]
        return xp.log(se[..., 0]) - xp.take_along_axis(s, lbl, axis=-1)[..., 0]

    def backward(self, g):
        if self.xp is not np:
            # p − onehot(c): the same subtraction of 1 at the label (and of 0 elsewhere)
            return ((self.p - self._hot(self.p.dtype)) * g[..., None],)
        d = self.p.copy()
        np.put_along_axis(d, self.labels[..., None],
                          np.take_along_axis(d, self.labels[..., None], axis=-1) - 1, axis=-1)
        return (d * g[..., None],)

    def _hot(self, dtype):
        """onehot(c) in the labels' module, shaped as the logits."""
        xp, k = self.xp, self.p.shape[-1]
        return (self.labels[..., None] == xp.arange(k, dtype=self.labels.dtype)).astype(dtype)

    def backward_graph(self, g):
        z = self.inputs[0]
        return ((M.softmax(z, axis=-1) - M._wrap(self._hot(z.data.dtype)))
                * M.expand_dims(g, -1),)


class SigmoidCrossEntropy(Function):
    """Binary cross-entropy from logits z, elementwise:

        L = max(z, 0) − z·y + log(1 + e^−|z|),   dL/dz = σ(z) − y,   dL/dy = −z.
    """

    def forward(self, y, z):
        self.y, self.z = y, z
        xp = array_module(y, z)
        return xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))

    def backward(self, g):
        gy = -g * self.z if self.needs[0] else None
        gz = g * (M._sigmoid(self.z) - self.y) if self.needs[1] else None
        return gy, gz

    def backward_graph(self, g):
        y, z = self.inputs
        gy = -g * z if self.needs[0] else None
        gz = g * (M.sigmoid(z) - y) if self.needs[1] else None
        return gy, gz


def _check_same_shape(target, output, op):
    if target.shape != output.shape:
        raise ValueError(
            f"{op}: target and output must have the same shape, received target shape "
            f"{target.shape} and output shape {output.shape}")


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Per-sample −Σ target·log(output) along ``axis`` (Keras ``ops.categorical_crossentropy``).

    With ``from_logits=True`` one fused node computes it through log-softmax and
    backpropagates ŷ − y; otherwise ``output`` is renormalized to sum to 1 and
    clipped to [ε, 1 − ε] as Keras does.
    """
    target = M._t(target, "categorical_crossentropy")
    output = M._t(output, "categorical_crossentropy")
    _check_same_shape(target, output, "categorical_crossentropy")
    if output.ndim < 1:
        raise ValueError("categorical_crossentropy: output must have at least one axis")
    ax = M._axis(axis, output.ndim, "categorical_crossentropy")[0]
    if target.dtype != output.dtype:
        target = M.cast(target, output.dtype)
    if from_logits:
        return SoftmaxCrossEntropy.apply(target, output, axis=ax)
    eps = backend.epsilon()
    p = output / M.sum(output, axis=ax, keepdims=True)
    p = M.clip(p, eps, 1.0 - eps)
    return -M.sum(target * M.log(p), axis=ax)


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Per-sample cross-entropy of integer labels ``target`` against class scores ``output``.

    Labels must lie in [0, K) with K = ``output.shape[-1]``.
    """
    output = M._t(output, "sparse_categorical_crossentropy")
    # the labels are checked on the host, then moved to the logits' module
    labels = to_numpy(target.data if isinstance(target, Tensor) else target)
    if axis not in (-1, output.ndim - 1):
        raise ValueError(f"sparse_categorical_crossentropy: only axis=-1 is supported, received {axis}")
    if labels.ndim == output.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.shape != output.shape[:-1]:
        raise ValueError(
            f"sparse_categorical_crossentropy: target must have shape {output.shape[:-1]} "
            f"(one integer label per sample), received {labels.shape}")
    if labels.dtype.kind == "f":
        if not np.all(np.mod(labels, 1) == 0):
            raise ValueError("sparse_categorical_crossentropy: target must hold integer class labels, "
                             "received non-integer values")
        labels = labels.astype(np.int64)
    elif labels.dtype.kind not in "iu":
        raise TypeError(f"sparse_categorical_crossentropy: target must hold integer labels, "
                        f"received dtype {labels.dtype}")
    k = output.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(
            f"sparse_categorical_crossentropy: labels must lie in [0, {k}), received values "
            f"from {labels.min()} to {labels.max()}")
    xp = array_module(output.data)
    if from_logits:
        return SparseSoftmaxCrossEntropy.apply(
            output, labels=labels if xp is np else xp.asarray(labels))
    hot = M.one_hot(labels, k, dtype=output.dtype)
    if xp is not np:
        hot = M._wrap(xp.asarray(hot.data))
    return categorical_crossentropy(hot, output)


def binary_crossentropy(target, output, from_logits=False):
    """Elementwise −[y log p + (1 − y) log(1 − p)] (Keras ``ops.binary_crossentropy``).

    With ``from_logits=True`` one fused node backpropagates σ(z) − y; otherwise
    ``output`` is clipped to [ε, 1 − ε] first, as Keras does.
    """
    target = M._t(target, "binary_crossentropy")
    output = M._t(output, "binary_crossentropy")
    _check_same_shape(target, output, "binary_crossentropy")
    if target.dtype != output.dtype:
        target = M.cast(target, output.dtype)
    if from_logits:
        return SigmoidCrossEntropy.apply(target, output)
    eps = backend.epsilon()
    p = M.clip(output, eps, 1.0 - eps)
    return -(target * M.log(p) + (1 - target) * M.log(1 - p))


# ------------------------------------------------------------------ dropout
class Dropout(Function):
    """Inverted dropout: y = x·m/(1 − rate), m ~ Bernoulli(1 − rate);  dL/dx = dL/dy·m/(1 − rate)."""

    def forward(self, x):
        return x * self.mask

    def backward(self, g):
        return (g * self.mask,)

    def backward_graph(self, g):
        return (g * M._wrap(self.mask),)


def dropout(x, rate, noise_shape=None, training=True):
    """Zero each element with probability ``rate`` and scale the rest by 1/(1 − rate).

    The mask is drawn from the backend generator (so ``set_random_seed`` fixes
    it; a device input gets the same draw as a host one); at inference (``training=False``)
    the input passes unchanged.
    """
    x = M._t(x, "dropout")
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout: rate must lie in [0, 1), received {rate}")
    if not training or rate == 0.0:
        return x
    shape = x.shape if noise_shape is None else tuple(
        x.shape[i] if s is None else s for i, s in enumerate(noise_shape))
    dt = x.dtype if x.dtype.kind == "f" else np.dtype(backend.floatx())
    keep = backend.rng().random(shape, dtype=np.float64 if dt == np.float64 else np.float32) >= rate
    mask = keep.astype(dt) * dt.type(1.0 / (1.0 - rate))
    xp = array_module(x.data)
    if xp is not np:
        # drawn on the host by the backend generator (the same stream, so the same mask as for
        # a host input), then copied into the input's module
        mask = xp.asarray(mask)
    return Dropout.apply(x, mask=mask)


# ------------------------------------------------------- more activations
class Pointwise(Function):
    """y = f(x);  dL/dx = dL/dy · f′(x), f′ written from x and y (``df(xp, x, y)``; ``f(xp, x)``
    and ``df`` compute with ``xp``, the array module of x)."""

    def forward(self, x):
        self.x = x
        self.xp = xp = array_module(x)
        self.y = y = xp.asarray(self.f(xp, x), dtype=x.dtype)
        return y

    def backward(self, g):
        return (g * self.df(self.xp, self.x, self.y).astype(g.dtype, copy=False),)

    @property
    def name(self):
        """The op it computes (``relu6``, ``celu``, …), e.g. in an error naming it."""
        return self.__dict__.get("op", "Pointwise")


def _float_in(x, op):
    """x as a real floating Tensor (integers and booleans become floatx, as in Keras)."""
    return M._float_in(x, op)


def _pointwise(x, op, f, df):
    return Pointwise.apply(_float_in(x, op), f=f, df=df, op=op)


def _number(v, op, arg):
    if isinstance(v, Tensor):
        v = v.data
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {arg} must be a number, received {v!r}") from None


def _relu6(xp, x):
    """min(max(x, 0), 6); on the host one pass of the compiled module (the same comparisons in
    the same order, runs of rows on its threads) when it is built."""
    k = _compiled.kernels("affine_clip") if xp is np else None
    if k is not None and x.dtype in _FLOATS and x.ndim >= 1 and x.size and x.flags.c_contiguous:
        y = np.empty_like(x)
        k.affine_clip(_rows(x), None, None, 0.0, 6.0, _rows(y))
        return y
    return xp.minimum(xp.maximum(x, 0), 6)


def relu6(x):
    """y = min(max(x, 0), 6);  dy/dx = 1 on (0, 6), else 0."""
    return _pointwise(x, "relu6", _relu6, lambda xp, x, y: (x > 0) & (x < 6))


def celu(x, alpha=1.0):
    """y = max(0, x) + min(0, α(e^{x/α} − 1));  dy/dx = 1 for x > 0, e^{x/α} for x ≤ 0."""
    a = _number(alpha, "celu", "alpha")
    if a == 0:
        raise ValueError("celu: alpha must not be 0")

    def f(xp, x):
        return xp.maximum(x, 0) + xp.minimum(a * xp.expm1(xp.minimum(x, 0) / a), 0)
    return _pointwise(x, "celu", f,
                      lambda xp, x, y: xp.where(x > 0, 1.0, xp.exp(xp.minimum(x, 0) / a)))


def glu(x, axis=-1):
    """Gated linear unit: x split in halves a, b along ``axis``, y = a·σ(b)."""
    x = _float_in(x, "glu")
    ax = M._axis(axis, x.ndim, "glu")[0]
    if x.shape[ax] % 2:
        raise ValueError(f"glu: the size of axis {axis} must be even to split it in two halves, "
                         f"received shape {x.shape}")
    a, b = M.split(x, 2, axis=ax)
    return a * M.sigmoid(b)


def hard_shrink(x, threshold=0.5):
    """y = x where |x| > threshold, else 0;  dy/dx = 1 where |x| > threshold."""
    t = _number(threshold, "hard_shrink", "threshold")
    return _pointwise(x, "hard_shrink", lambda xp, x: xp.where(xp.abs(x) > t, x, 0),
                      lambda xp, x, y: xp.abs(x) > t)


def hard_silu(x):
    """y = x·relu6(x + 3)/6;  dy/dx = 0 for x < −3, (2x + 3)/6 on [−3, 3], 1 for x > 3."""
    return _pointwise(x, "hard_silu", lambda xp, x: x * xp.minimum(xp.maximum(x + 3, 0), 6) / 6,
                      lambda xp, x, y: xp.where(x < -3, 0.0,
                                                xp.where(x <= 3, x / 3 + 0.5, 1.0)))


hard_swish = hard_silu


def hard_tanh(x):
    """y = clip(x, −1, 1);  dy/dx = 1 on (−1, 1), else 0."""
    return _pointwise(x, "hard_tanh", lambda xp, x: xp.clip(x, -1, 1),
                      lambda xp, x, y: (x > -1) & (x < 1))


def log_sigmoid(x):
    """y = log σ(x) = min(x, 0) − log(1 + e^{−|x|});  dy/dx = σ(−x)."""
    return _pointwise(x, "log_sigmoid",
                      lambda xp, x: xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x))),
                      lambda xp, x, y: M._sigmoid(-x))


def soft_shrink(x, threshold=0.5):
    """y = x − t for x > t, x + t for x < −t, else 0;  dy/dx = 1 where |x| > t."""
    t = _number(threshold, "soft_shrink", "threshold")
    return _pointwise(x, "soft_shrink",
                      lambda xp, x: xp.where(x > t, x - t, xp.where(x < -t, x + t, 0)),
                      lambda xp, x, y: xp.abs(x) > t)


def sparse_plus(x):
    """y = 0 for x ≤ −1, (x + 1)²/4 on (−1, 1), x for x ≥ 1;  dy/dx = 0, (x + 1)/2, 1."""
    return _pointwise(x, "sparse_plus",
                      lambda xp, x: xp.where(x <= -1, 0,
                                             xp.where(x < 1, 0.25 * (x + 1) ** 2, x)),
                      lambda xp, x, y: xp.where(x <= -1, 0.0,
                                                xp.where(x < 1, 0.5 * (x + 1), 1.0)))


def sparse_sigmoid(x):
    """y = 0 for x ≤ −1, (x + 1)/2 on (−1, 1), 1 for x ≥ 1;  dy/dx = ½ on (−1, 1), else 0."""
    return _pointwise(x, "sparse_sigmoid",
                      lambda xp, x: xp.where(x <= -1, 0, xp.where(x >= 1, 1, 0.5 * (x + 1))),
                      lambda xp, x, y: 0.5 * ((x > -1) & (x < 1)))


def squareplus(x, b=4):
    """y = (x + √(x² + b))/2;  dy/dx = (1 + x/√(x² + b))/2."""
    b = _number(b, "squareplus", "b")
    if b < 0:
        raise ValueError(f"squareplus: b must be non-negative, received {b}")
    return _pointwise(x, "squareplus", lambda xp, x: (x + xp.sqrt(x * x + b)) / 2,
                      lambda xp, x, y: 0.5 * (1 + x / xp.sqrt(x * x + b)))


def tanh_shrink(x):
    """y = x − tanh x;  dy/dx = tanh² x."""
    return _pointwise(x, "tanh_shrink", lambda xp, x: x - xp.tanh(x),
                      lambda xp, x, y: xp.tanh(x) ** 2)


def threshold(x, threshold, default_value):
    """y = x where x > threshold, else ``default_value``;  dy/dx = 1 where x > threshold."""
    t = _number(threshold, "threshold", "threshold")
    v = _number(default_value, "threshold", "default_value")
    return _pointwise(x, "threshold", lambda xp, x: xp.where(x > t, x, v),
                      lambda xp, x, y: x > t)


class Sparsemax(Function):
    """Euclidean projection of x onto the probability simplex along ``axis``:

        y = max(x − τ, 0),  τ chosen so that Σ y = 1;
        dL/dx = s·(dL/dy − Σ(s·dL/dy)/|S|),  s the indicator of the support S = {y > 0}.
    """

    def forward(self, x):
        ax = self.axis
        xp = array_module(x)
        zs = -xp.sort(-x, axis=ax)
        cs = xp.cumsum(zs, axis=ax)
        shape = [1] * x.ndim
        shape[ax] = -1
        r = xp.arange(1, x.shape[ax] + 1, dtype=x.dtype).reshape(shape)
        support = zs - (cs - 1) / r > 0
        k = xp.sum(support, axis=ax, keepdims=True)
        # τ = (Σ of the k largest − 1)/k.  (Keras 3.15 sums the cumulative sums over the
        # support instead, which is wrong whenever k > 1: its outputs do not sum to 1.)
        tau = (xp.take_along_axis(cs, k - 1, axis=ax) - 1) / k
        self.y = y = xp.maximum(x - tau, 0).astype(x.dtype, copy=False)
        return y

    def backward(self, g):
        xp = array_module(g)
        s = (self.y > 0).astype(g.dtype)
        n = xp.sum(s, axis=self.axis, keepdims=True)
        return (s * (g - xp.sum(s * g, axis=self.axis, keepdims=True) / n),)


def sparsemax(x, axis=-1):
    """Sparsemax (Martins & Astudillo, 2016): like softmax, but exact zeros outside its support."""
    x = _float_in(x, "sparsemax")
    if x.ndim == 0:
        raise ValueError("sparsemax: expected a tensor of rank at least 1, received a scalar")
    return Sparsemax.apply(x, axis=M._axis(axis, x.ndim, "sparsemax")[0])


def normalize(x, axis=-1, order=2, epsilon=None):
    """x divided by its ``order``-norm along ``axis``: for order 2, x·min(1/√Σx², 1/ε);
    otherwise x / max(‖x‖_order, ε) (Keras ``ops.normalize``)."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"normalize: order must be an int >= 1, received order={order!r}")
    x = _float_in(x, "normalize")
    if x.ndim == 0:
        x = M.expand_dims(x, 0)
    eps = backend.epsilon() if epsilon is None else _number(epsilon, "normalize", "epsilon")
    M._axis(axis, x.ndim, "normalize")
    if order == 2:
        inv = M.rsqrt(M.sum(M.square(x), axis=axis, keepdims=True))
        return x * M.minimum(inv, 1.0 / eps)
    from .numpy import norm
    return x / M.maximum(norm(x, ord=int(order), axis=axis, keepdims=True), eps)


def psnr(x1, x2, max_val):
    """Peak signal-to-noise ratio, 20·log₁₀(max_val) − 10·log₁₀(mean((x1 − x2)²))."""
    x1 = _float_in(x1, "psnr")
    x2 = _float_in(x2, "psnr")
    if x1.shape != x2.shape:
        raise ValueError(f"psnr: x1 and x2 must have the same shape, received {x1.shape} "
                         f"and {x2.shape}")
    mv = M.cast(M._t(max_val, "psnr"), x1.dtype)
    xp = array_module(x1.data, x2.data)
    if xp is not np and not mv.requires_grad and array_module(mv.data) is not xp:
        mv = M._wrap(xp.asarray(to_numpy(mv.data)))       # a host max_val joins the images
    mse = M.mean(M.square(x1 - x2))
    return 20 * M.log(mv) / math.log(10) - 10 * M.log(mse) / math.log(10)


def multi_hot(inputs, num_classes=None, axis=-1, dtype=None, sparse=False, **kwargs):
    """Multi-hot encoding of integer labels: 1 at each label present in a sample (no gradient).

    A 1-D input is one sample; for higher ranks the labels of axis 1 are merged, as in Keras.
    ``num_tokens`` is accepted as an alias of ``num_classes``.
    """
    if num_classes is None and "num_tokens" in kwargs:
        num_classes = kwargs.pop("num_tokens")
    if kwargs:
        raise TypeError(f"multi_hot: unexpected keyword arguments {sorted(kwargs)}")
    if num_classes is None:
        raise ValueError("multi_hot: argument num_classes must be specified")
    if sparse:
        raise NotImplementedError("multi_hot: sparse=True is not supported by axone (no sparse tensors)")
    d = inputs.data if isinstance(inputs, Tensor) else inputs
    xp = array_module(d)
    d = xp.asarray(d)
    if d.dtype.kind == "f":
        d = d.astype(np.int32)
    if d.dtype.kind not in "iub":
        raise TypeError(f"multi_hot: expected integer labels, received dtype {d.dtype}")
    n = int(num_classes)
    oh = (d[..., None] == xp.arange(n)).astype(np.dtype(dtype or backend.floatx()))
    if axis not in (-1, d.ndim):
        oh = xp.moveaxis(oh, -1, axis)
    return Tensor(xp.max(oh, axis=1 if d.ndim > 1 else 0))


class Polar(Function):
    """z = r·e^{iθ} = r cos θ + i r sin θ (complex).  With the complex gradient
    G = dL/dRe z + i dL/dIm z:  dL/dr = Re(Ḡ·e^{iθ}),  dL/dθ = −r·Im(Ḡ·e^{iθ})."""

    def forward(self, r, theta):
        xp = array_module(r, theta)
        self.r, self.e = r, xp.exp(1j * theta)
        return r * self.e

    def backward(self, g):
        xp = array_module(g)
        t = xp.conj(g) * self.e
        gr = unbroadcast(xp.real(t), self.r.shape).astype(self.r.dtype) if self.needs[0] else None
        gt = None
        if self.needs[1]:
            gt = unbroadcast(-self.r * xp.imag(t), self.e.shape).astype(self.r.dtype)
        return gr, gt


def polar(abs_, angle):
    """The complex tensor abs_·(cos angle + i sin angle) (Keras ``ops.polar``)."""
    r = _float_in(abs_, "polar")
    t = _float_in(angle, "polar")
    try:
        np.broadcast_shapes(r.shape, t.shape)
    except ValueError:
        raise ValueError(f"polar: abs_ and angle could not be broadcast together: shapes "
                         f"{r.shape} and {t.shape}") from None
    if t.dtype != r.dtype:
        dt = np.result_type(r.dtype, t.dtype)
        r, t = M.cast(r, dt), M.cast(t, dt)
    return Polar.apply(r, t)


# keras.ops.nn also holds these, which live with their families (activations and softmax in
# math, convolution and pooling in conv, moments and batch normalization in normalization).
from .math import (elu, gelu, hard_sigmoid, leaky_relu, log_softmax, one_hot, relu,  # noqa: E402,F401
                   selu, sigmoid, silu, softmax, softplus, softsign, swish)
from .conv import average_pool, conv, conv_transpose, depthwise_conv, max_pool  # noqa: E402,F401
from .conv import (adaptive_average_pool, adaptive_max_pool, depth_to_space,  # noqa: E402,F401
                   fold, separable_conv, space_to_depth, unfold)
from .normalization import (batch_normalization, layer_normalization, moments,  # noqa: E402,F401
                            rms_normalization)
from .attention import dot_product_attention  # noqa: E402,F401
from .ctc import ctc_decode, ctc_loss  # noqa: E402,F401
