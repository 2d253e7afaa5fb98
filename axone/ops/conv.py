"""Convolution and pooling, channels-last, lowered to matrix products.

Windows of the (padded) input are a strided view (no copy until the product):
``windows[n, i, j, a, b, c] = x[n, i·s + a·d, j·s + b·d, c]``.  Then

    conv:      y[n,i,j,f] = Σ_{a,b,c} windows[n,i,j,a,b,c] · K[a,b,c,f] + bias[f]
               dL/dK = Σ_{n,i,j} windows ⊗ dL/dy          (one product)
               dL/dbias = Σ_{n,i,j} dL/dy                  (the bias is one more row of the
               kernel matrix against a column of ones in the windows, Conv's docstring)
               dL/dx: dcols[a, b] = dL/dy · K[a, b]ᵀ (one batched product laid out offset-major,
               so each offset's block is contiguous), then each kernel offset (a, b) adds its
               block into the input gradient at rows a·d + i·s — kh·kw strided adds, never
               ``np.add.at``.
               With few filters (F ≤ 16) the same sums are taken in blocks of bj outputs along
               the last axis against a banded kernel matrix (Conv's docstring), which makes the
               products bj·F wide and the copies and adds run over long rows.  The offset-major
               product runs over a few hundred kB of rows of dL/dy at a time (cache reuse).
    max pool:  disjoint windows (strides == pool, no padding): maximum over the block view
               ``x[n, i·p + a, j·p + b, c]``, first over a (whole contiguous rows), then over b;
               otherwise a running maximum over the kh·kw offset slices.  Either way the
               gradient goes to the first maximum of each window (row-major window order; the
               first NaN when there is one), as PyTorch and Keras.
    avg pool:  y = mean over the window's valid (unpadded) entries; dL/dx spreads dL/dy / count.

Large work arrays (padded inputs, im2col rows, input-gradient buffers) come from a reusable
workspace (_Workspace) rather than fresh allocations.

What depends on the geometry alone is worked out once per geometry and kept (bounded dicts,
_GEOMETRY_MAX entries each, emptied when full): conv()'s and the pools' normalised and checked
arguments (keyed on the shapes and the arguments as given, with their types; a bad argument is
never kept, so it raises every time), Conv's forward plan (output shape, work, bj, the bias
column, the band windows' shape and byte strides: _ForwardPlan, keyed on the shapes, strides and
dtypes of x and K, bias or not, strides, dilation, padding, groups), the banded matrix's tap
layout (_band_layout) and the compiled pooling's geometry.  Nothing computed from values is
kept: the banded matrix is built from K on every call (zeros, then one strided copy of K into
its taps), so weights changed in place are always seen.  A one-sample layer is Python overhead
more than arithmetic, so a banded product below _SMALL_WORK multiply-adds skips the workspace
and the thread dispatch (np.matmul, the compiled copy on this thread, the ReLU through the
compiled Dense epilogue) — the same operations, so the same bits.

While OpenBLAS runs on one thread (training steps, backend.blas_threads_for), a Conv or Pool node
with enough work runs on consecutive batch blocks, one per thread of axone's own
(ops/_parallel.batch_blocks): each block is a node of its own over x[lo:hi] running the whole
lowering above, writing its rows of the output and of the input-gradient buffer; its kernel and
bias gradients are added in block order.  Per-sample values are the unsplit node's (up to the
BLAS kernel OpenBLAS picks by a product's row count); the kernel gradient agrees to rounding and
is the same every run for a given thread count.

On a device (the inputs' array module is not NumPy, e.g. CuPy) every node takes the plain
lowering with that module instead: the window rows are a stack of the kh·kw offset slices
(_window_rows), y = rows · K (one batched product per group), dL/dK = rowsᵀ · dL/dy,
dL/dx by the same kh·kw strided adds of dL/dy · Kᵀ; pooling runs over the same offset slices.
The workspace, the batch blocks and the compiled kernels are the host's alone.

Output sizes (004): valid ⌈(H − (k − 1)d) / s⌉, same ⌈H / s⌉; "same" pads the total
max((out − 1)s + (k − 1)d + 1 − H, 0) with the extra row/column at the bottom/right (Keras).
"""
import itertools
import platform
import sys
import threading
from math import prod as _prod

import numpy as np

from .. import config
from ..autograd.function import Function
from ..device import array_module
from . import _compiled, _parallel, winograd
from . import math as M

_new = object.__new__

__all__ = ["conv", "conv1d", "conv2d", "max_pool", "average_pool", "depthwise_conv",
           "conv_transpose", "conv_output_length", "pool_output_length", "same_padding",
           "separable_conv", "depth_to_space", "space_to_depth", "fold", "unfold",
           "adaptive_average_pool", "adaptive_max_pool", "to_channels_last", "to_channels_first"]


def conv_output_length(length, kernel_size, padding, stride, dilation=1):
    """Output length of a convolution (None stays None): valid ⌈(L − (k−1)d)/s⌉, same ⌈L/s⌉."""
    if length is None:
        return None
    if padding not in ("valid", "same", "causal", "full"):
        raise ValueError(f"padding must be 'valid', 'same' or 'causal', received {padding!r}")
    eff = (kernel_size - 1) * dilation + 1
    if padding in ("same", "causal"):
        out = length
    elif padding == "full":
        out = length + eff - 1
    else:
        out = length - eff + 1
    return max(0, (out + stride - 1) // stride)


def pool_output_length(length, pool_size, padding, stride):
    """Pooling output length: valid ⌊(L − p)/s⌋ + 1, same ⌊(L − 1)/s⌋ + 1."""
    if length is None:
        return None
    if padding == "same":
        return (length - 1) // stride + 1
    if padding == "valid":
        return max(0, (length - pool_size) // stride + 1)
    raise ValueError(f"padding must be 'valid' or 'same', received {padding!r}")


def same_padding(length, kernel_size, stride, dilation=1):
    """(before, after) padding of Keras's "same": the extra unit goes after."""
    out = (length + stride - 1) // stride
    total = max((out - 1) * stride + (kernel_size - 1) * dilation + 1 - length, 0)
    return total // 2, total - total // 2


class _Workspace:
    """Reusable large arrays, by (shape, dtype).

    A training step of a CNN makes tens of MB of im2col rows, padded inputs and input-gradient
    buffers; the C allocator maps fresh allocations that size anew, and every page then faults
    on first touch (on a wide CNN that was a third of the epoch).  ``empty`` hands out an array
    of its list that nothing references any more — its reference count, which views of it
    raise too, so an array saved for a backward pass or handed on as a gradient is never
    reused while in use — and otherwise a new one, kept while the list holds < ``limit`` bytes.
    One pool serves every thread: the scan and the hand-out run under a lock, and an array
    handed out is referenced by its taker before the lock is released, so two threads running
    convolutions at once never receive the same array.
    """

    def __init__(self, limit=256 << 20, smallest=256 << 10):
        self.arrays = {}
        self.bytes = 0
        self.limit, self.smallest = limit, smallest
        self.lock = threading.Lock()
        # reference counts tell "unused" only on CPython with its GIL; the count of an unused
        # array seen from the scan below is measured once (interpreters differ by one or two)
        self.idle = self._count([np.empty(1)])
        self.enabled = (platform.python_implementation() == "CPython" and self.idle >= 2
                        and getattr(sys, "_is_gil_enabled", lambda: True)())

    @staticmethod
    def _count(free):
        for a in free:
            return sys.getrefcount(a)

    def empty(self, shape, dtype):
        dtype = np.dtype(dtype)
        shape = tuple(int(n) for n in shape)
        nbytes = _prod(shape) * dtype.itemsize
        if not self.enabled or nbytes < self.smallest:
            return np.empty(shape, dtype)
        with self.lock:
            free = self.arrays.setdefault((shape, dtype), [])
            for a in free:
                if sys.getrefcount(a) == self.idle:   # referenced by this list and this scan only
                    return a
            a = np.empty(shape, dtype)
            if self.bytes + nbytes <= self.limit:
                free.append(a)
                self.bytes += nbytes
            return a

    def zeros(self, shape, dtype):
        a = self.empty(shape, dtype)
        a.fill(0)
        return a

    def matmul(self, a, b):
        """a @ b (2-D, or stacks of them) written into a workspace array (a 2-D product split
        across threads where it pays: ops/_parallel.py)."""
        shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
        out = self.empty(shape, np.result_type(a.dtype, b.dtype))
        if a.ndim == 2 and b.ndim == 2:
            return _parallel.matmul(a, b, out=out, pin=False)
        return np.matmul(a, b, out=out)


_WS = _Workspace()


def _windows(x, kernel, strides, dilation, out):
    """Strided view (N, o1, …, k1, …, C) of the windows of a padded channels-last x."""
    nd = len(kernel)
    st = x.strides
    shape = (x.shape[0],) + tuple(out) + tuple(kernel) + (x.shape[-1],)
    strides_ = ((st[0],) + tuple(st[1 + i] * strides[i] for i in range(nd))
                + tuple(st[1 + i] * dilation[i] for i in range(nd)) + (st[-1],))
    return np.lib.stride_tricks.as_strided(x, shape=shape, strides=strides_, writeable=False)


def _pad_amounts(spatial, kernel, strides, dilation, padding):
    if padding == "valid":
        return [(0, 0)] * len(spatial)
    if padding == "same":
        return [same_padding(n, k, s, d) for n, k, s, d in zip(spatial, kernel, strides, dilation)]
    if padding == "causal":
        return [((kernel[0] - 1) * dilation[0], 0)]
    raise ValueError(f"padding must be 'valid', 'same' or 'causal', received {padding!r}")


def _out_shape(padded, kernel, strides, dilation):
    return [max(0, (p - ((k - 1) * d + 1)) // s + 1) for p, k, s, d in zip(padded, kernel, strides, dilation)]


def _offset_major(g2, kmat):
    """(kk, M, C) = g2 (M, F) · kmat[o]ᵀ for kmat (kk, C, F): one product per kernel offset,
    each offset's (M, C) block contiguous so the scatter-adds read it at full speed."""
    kk, c, f = kmat.shape
    if c == 1:       # one GEMM (kk, F)·(F, M): its rows already are the offsets' blocks
        return _WS.matmul(kmat.reshape(kk, f), g2.T)[..., None]
    m = g2.shape[0]
    out = _WS.empty((kk, m, c), np.result_type(g2.dtype, kmat.dtype))
    kt = kmat.transpose(0, 2, 1)
    # a few hundred kB of rows of g2 at a time, so that all kk products read them from cache;
    # the row blocks are independent (at least one per thread when the products are shared out)
    step = max(256, (1 << 18) // max(1, f * g2.itemsize))
    work = m * kk * c * f
    threads = _parallel._threads()
    if _parallel.pool_allowed(work) and -(-m // step) < threads:
        step = max(8, -(-(-(-m // threads)) // 8) * 8)
    _parallel.products([(np.broadcast_to(g2[lo:lo + step], (kk,) + g2[lo:lo + step].shape), kt,
                         out[:, lo:lo + step]) for lo in range(0, m, step)], work)
    return out


def _offset_slices(kernel, strides, dilation, out):
    """For each kernel offset, the slices of the padded input that its windows read."""
    for offs in itertools.product(*[range(k) for k in kernel]):
        yield offs, tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                          for o, d, s, n in zip(offs, dilation, strides, out))


def _window_rows(xp, x, kernel, strides, dilation, out):
    """(N·o1·…, k1·…, C) rows of the windows of a padded channels-last x, as a stack of the
    offset slices (the device form of _windows + a copy):
    ``rows[(n, i, j), (a, b), c] = x[n, i·s + a·d, j·s + b·d, c]``."""
    parts = [x[(slice(None),) + sl] for _, sl in _offset_slices(kernel, strides, dilation, out)]
    return xp.stack(parts, axis=-2).reshape(x.shape[0] * _prod(out), len(parts), x.shape[-1])


def _pad_device(xp, x, pads, fill=0):
    """_pad with the array module ``xp`` (no workspace)."""
    nd = len(pads)
    shape = (x.shape[0],) + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[1:1 + nd], pads)) \
        + (x.shape[-1],)
    out = xp.zeros(shape, x.dtype) if fill == 0 else xp.full(shape, fill, x.dtype)
    out[(slice(None),) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape[1:1 + nd], pads))] = x
    return out


def _pad(x, pads, fill=0):
    """x (N, spatial…, C) with pads[i] = (before, after) entries of ``fill`` around spatial axis
    i: one copy of x into an empty array, then the borders filled."""
    nd = len(pads)
    shape = (x.shape[0],) + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[1:1 + nd], pads)) \
        + (x.shape[-1],)
    xpd = _WS.empty(shape, x.dtype)
    xpd[(slice(None),) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape[1:1 + nd], pads))] = x
    for i, (lo, hi) in enumerate(pads):
        pre = (slice(None),) * (1 + i)
        if lo:
            xpd[pre + (slice(0, lo),)] = fill
        if hi:
            xpd[pre + (slice(shape[1 + i] - hi, None),)] = fill
    return xpd


def _add_bias(y, b):
    """y (N, spatial…, F) += b, through rows of a whole last spatial axis (o·F entries, b tiled
    o times) rather than F-entry rows."""
    r = y.shape[-2] if y.ndim > 2 else 1
    if y.size:
        y.reshape(-1, r * y.shape[-1])[...] += np.tile(b, r)


def _with_row(mat, row):
    """mat with one more row (the bias, in mat's dtype)."""
    return np.concatenate([mat, np.asarray(row).reshape(1, -1).astype(mat.dtype, copy=False)])


def _band_block(out_last, filters, width=32, most=8):
    """Outputs per row block of the banded lowering, 1 for the plain one: the largest divisor
    bj ≤ most of the last output length with bj·F ≤ width (few filters make a narrow product;
    the input gradient, whose adds favour long blocks, asks for a wider one)."""
    best = 1
    for bj in range(2, min(most, out_last) + 1):
        if out_last % bj == 0 and bj * filters <= width:
            best = bj
    return best


def _band_windows(x, ksz, strides, dilation, out, bj):
    """Strided view (N, o1, …, o_{d−1}, nb, k1, …, k_{d−1}, bw, C) of a padded x, nb = o_d / bj
    blocks of bj outputs along the last axis, bw = (bj − 1)s + (k_d − 1)d + 1 input columns each:
    ``windows[n, i…, t, a…, w, c] = x[n, i·s + a·d…, t·bj·s_d + w, c]``."""
    shape, strides_ = _band_window_layout(x.shape, x.strides, ksz, strides, dilation, out, bj)
    return np.lib.stride_tricks.as_strided(x, shape=shape, strides=strides_, writeable=False)


def _band_window_layout(xshape, st, ksz, strides, dilation, out, bj):
    """(shape, byte strides) of _band_windows for an x of shape ``xshape`` and strides ``st``."""
    nd = len(ksz)
    bw = (bj - 1) * strides[-1] + (ksz[-1] - 1) * dilation[-1] + 1
    shape = ((xshape[0],) + tuple(out[:-1]) + (out[-1] // bj,) + tuple(ksz[:-1])
             + (bw, xshape[-1]))
    strides_ = ((st[0],) + tuple(st[1 + i] * strides[i] for i in range(nd - 1))
                + (st[nd] * strides[-1] * bj,)
                + tuple(st[1 + i] * dilation[i] for i in range(nd - 1)) + (st[nd], st[-1]))
    return shape, strides_


def _band_taps(band, kw, s, d):
    """Strided view (k1, …, k_{d−1}, bj, kw, C, F) of a banded matrix shaped (k1, …,
    k_{d−1}, bw, C, bj, F) onto its kernel entries: ``taps[a…, j, b, c, f] = band[a…, j·s + b·d,
    c, j, f]`` (distinct entries for distinct (j, b))."""
    st = band.strides
    lead = band.shape[:-4]
    c, bj, f = band.shape[-3:]
    return np.lib.stride_tricks.as_strided(
        band, shape=lead + (bj, kw, c, f),
        strides=st[:-4] + (s * st[-4] + st[-2], d * st[-4], st[-3], st[-1]))


def _band_layout(kshape, s, d, bj, itemsize):
    """(rows, width, taps shape, taps byte strides, kernel byte strides) of the banded matrix
    of a C-contiguous kernel shaped ``kshape``: the matrix is (rows, width); its _band_taps view
    has that shape and those strides, and the kernel viewed with the kernel strides (0 along the
    bj axis) is K repeated for each of the bj outputs.  A pure function of the geometry, kept in
    _BAND_LAYOUTS (at most _GEOMETRY_MAX entries)."""
    key = (kshape, s, d, bj, itemsize)
    lay = _BAND_LAYOUTS.get(key)
    if lay is None:
        nd = len(kshape) - 2
        kw, c, f = kshape[nd - 1], kshape[-2], kshape[-1]
        bw = (bj - 1) * s + (kw - 1) * d + 1
        shape = kshape[:nd - 1] + (bw, c, bj, f)
        st = _contiguous_strides(shape, itemsize)
        tshape = shape[:-4] + (bj, kw, c, f)        # _band_taps's view
        tstrides = st[:-4] + (s * st[-4] + st[-2], d * st[-4], st[-3], st[-1])
        kst = _contiguous_strides(kshape, itemsize)
        lay = (_prod(shape[:-2]), bj * f, tshape, tstrides, kst[:nd - 1] + (0,) + kst[nd - 1:])
        if len(_BAND_LAYOUTS) >= _GEOMETRY_MAX:
            _BAND_LAYOUTS.clear()
        _BAND_LAYOUTS[key] = lay
    return lay


_BAND_LAYOUTS = {}
# Most geometries kept by each of the caches of pure functions of the geometry (band layouts,
# forward plans, normalised arguments); a full cache is emptied and starts over.
_GEOMETRY_MAX = 256


def _band_matrix(k, strides, dilation, bj, bias=None):
    """Banded kernel matrix B, (k1·…·k_{d−1}·bw·C, bj·F), with
    ``B[(a…, j·s + b·d, c), (j, f)] = K[a…, b, c, f]`` (0 elsewhere): a row of _band_windows
    times B is bj consecutive outputs.  With ``bias`` B has one more row, the bias tiled bj
    times (in K's dtype).  Built anew from K on every call: zeros, then one strided copy of K
    into the taps (the views' layouts cached by geometry, _band_layout)."""
    nd = k.ndim - 2
    rows, width, tshape, tstrides, kstrides = _band_layout(k.shape, strides[-1], dilation[-1], bj,
                                                           k.itemsize)
    band = np.zeros(((rows + 1) if bias is not None else rows) * width, k.dtype)
    taps = np.ndarray(tshape, k.dtype, band, 0, tstrides)
    if k.flags.c_contiguous:
        _copy_small(taps, np.ndarray(tshape, k.dtype, k, 0, kstrides))
    else:
        taps[...] = np.expand_dims(k, nd - 1)
    band = band.reshape(-1, width)
    if bias is not None:
        band[rows].reshape(bj, -1)[...] = bias
    return band


class _ForwardPlan:
    """What Conv.forward derives from the geometry alone (shapes, strides, dtypes, padding):
    kept in _FORWARD_PLANS by that geometry, never anything computed from the values."""
    __slots__ = ("work", "padded", "out", "bj", "one", "yshape", "wshape", "wstrides", "width",
                 "rows", "small", "wino")


_FORWARD_PLANS = {}
# A banded product of fewer multiply-adds than this (and its window copy) runs with direct
# NumPy / compiled calls: fresh arrays, no workspace, np.matmul (ops/_parallel.matmul never
# splits a product below 2 · _MIN_WORK = 2^19 either, so the bits are the same), the compiled copy
# on this thread, the ReLU through the compiled Dense epilogue (a one-sample layer: the Python
# overhead is the cost).
_SMALL_WORK = 1 << 19
# Copies of fewer items than this go straight to the compiled copy_into (which keeps them on the
# calling thread); larger ones through ops/_parallel.copy.
_SMALL_COPY = 1 << 16


# The Winograd forward of a node whose kernel gradient is not wanted (inference, a frozen layer)
# runs over runs of samples whose transformed input and product take at most this many bytes
# (reused workspace arrays instead of one batch-sized pair).
_WINO_CHUNK = 32 << 20


def _forward_plan(key, x, k, b, strides, dilation, pads, groups):
    """The _ForwardPlan of Conv.forward for x, k, b (``key`` its geometry)."""
    nd = k.ndim - 2
    geo = _ForwardPlan()
    ksz = k.shape[:nd]
    geo.padded = any(p != (0, 0) for p in pads)
    padded = [n + lo + hi for n, (lo, hi) in zip(x.shape[1:1 + nd], pads)]
    geo.out = out = tuple(_out_shape(padded, ksz, strides, dilation))
    cin_g, f = k.shape[-2], k.shape[-1]
    nk = _prod(ksz)
    m = x.shape[0] * _prod(out)
    geo.work = m * nk * cin_g * (f // groups + 1)
    # the Winograd lowering's outputs per tile side (2 or 4), or 0 for im2col
    geo.wino = (winograd.tile_size(x.shape, k.shape, pads)
                if winograd.eligible(x.shape, k.shape, strides, dilation, pads, groups, x.dtype)
                and k.dtype == x.dtype and (b is None or b.dtype == x.dtype) else 0)
    geo.bj = bj = (_band_block(out[-1], f) if groups == 1 and min(out) > 0 and not geo.wino
                   else 1)
    # the bias rides in the product where the rows are a copy: a column of ones in the rows,
    # the bias as the matrix's last row (then dL/dbias is the last row of dL/dmatrix); not
    # where the plain matrix has more rows than the product (few output positions, a one-image
    # late layer): a copy of K with the bias row would then cost more than adding the bias to y
    geo.one = int(b is not None and groups == 1
                  and not (bj == 1 and cin_g > 1 and nk == 1 and all(st == 1 for st in strides))
                  and not (bj == 1 and cin_g > 1 and m < nk * cin_g))
    geo.yshape = (x.shape[0],) + tuple(out) + (f,)
    geo.small = False
    geo.wshape = geo.wstrides = geo.width = geo.rows = None
    if bj > 1:
        pshape = (x.shape[0],) + tuple(padded) + (x.shape[-1],)
        # _pad's result is a fresh C-contiguous array
        st = _contiguous_strides(pshape, x.itemsize) if geo.padded else x.strides
        geo.wshape, geo.wstrides = _band_window_layout(pshape, st, ksz, strides, dilation, out, bj)
        geo.width = _prod(geo.wshape[nd + 1:])
        geo.rows = _prod(geo.wshape[:nd + 1])
        geo.small = geo.rows * (geo.width + geo.one) * bj * f < _SMALL_WORK
    if key is not None:
        if len(_FORWARD_PLANS) >= _GEOMETRY_MAX:
            _FORWARD_PLANS.clear()
        _FORWARD_PLANS[key] = geo
    return geo


def _same_buffer(a, b):
    """Whether a is b's memory, entry for entry (a view of the same bytes, same shape)."""
    return (a.shape == b.shape and a.dtype == b.dtype and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _contiguous_strides(shape, itemsize):
    """Byte strides of a C-contiguous array of this shape and item size."""
    st, acc = [], itemsize
    for n in reversed(shape):
        st.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(st))


def _copy_small(dst, src):
    """dst[...] = src for a small copy (fewer than _SMALL_COPY items): the compiled copy_into
    on this thread, else np.copyto (larger copies: ops/_parallel.copy).  The same bytes."""
    if dst.size >= _SMALL_COPY:
        _parallel.copy(dst, src)
        return
    kern = _compiled.kernels("copy_into")
    if kern is not None and dst.dtype == src.dtype:
        try:
            kern.copy_into(dst, src)
            return
        except (ValueError, TypeError):
            pass
    np.copyto(dst, src)


class Conv(Function):
    """N-D convolution (channels last) with optional groups; see the module docstring.

    Lowerings (all y = rows · matrix, dL/dmatrix = rowsᵀ · dL/dy, dL/drows = dL/dy · matrixᵀ):
      plain   rows = windows (M, kh·kw·C), matrix = K (kh·kw·C, F); dL/dx from the
              offset-major product (_offset_major) and kh·kw strided adds.
      banded  few filters (bj > 1 from _band_block, groups == 1): rows = _band_windows
              (N·o1·…·nb, kh·bw·C), matrix = _band_matrix (kh·bw·C, bj·F); each row yields bj
              outputs, so the product is bj·F wide instead of F, and the rows copy runs of bw·C.
              dL/dK[a, b, c, f] = Σ_j dL/dB[(a, j·s + b·d, c), (j, f)] (_band_taps);
              dL/dx = dL/dy · Bᵀ in blocks of bj_dx outputs, each row's (a, ·) slab added at
              rows i·s + a·d and columns t·bj_dx·s + (0 … bw − 1), the blocks t taken
              ⌈bw / (bj_dx·s)⌉ interleaved sets at a time so the targets of one add never overlap.
      one input channel (plain otherwise): the im2col matrix is built transposed,
              ``cols_t[(a, b), (n, i, j)] = x[n, i·s + a·d, j·s + b·d, 0]``, one copy of a strided
              slice of x per kernel offset, whose rows are whole output rows.
    Where the rows are a copy, the bias rides in the product: the rows get a column of ones and
    the matrix the bias (tiled bj times) as its last row, so y = [rows, 1] · [K; bias] and
    dL/dbias is the last row of dL/dmatrix (summed over the bj blocks).  Otherwise (1×1 kernel
    whose rows are x itself, groups > 1) y += bias and dL/dbias = 1ᵀ · dL/dy.
    With ``relu=True`` the node is y = max(conv(x, K) + bias, 0) and dL/dy is masked by y > 0 first.
    """

    relu = False
    xp = np                 # the inputs' array module (forward sets it on the unsplit node)
    part = False            # a batch block of a split node (never split again)
    blocks = None           # the batch blocks [(lo, hi), …] of a split node
    y_out = None            # where a block writes its output (its rows of the whole output)
    dx_buffer = None        # a block's source of its rows of the whole input-gradient buffer
    wino = None             # (TH, TW) where the forward took the Winograd lowering

    def forward(self, x, k, b=None):
        self.xshape = x.shape
        pads = self.pads
        if not self.part:
            self.xp = xp = array_module(x, k, b)
            if xp is not np:
                return self._forward_device(xp, x, k, b)
        # (the blocking rule is part of the key: a plan holds its choice of bj)
        key = (x.shape, x.strides, x.dtype, k.shape, k.dtype, b is None, self.strides,
               self.dilation, pads, self.groups, _band_block)
        try:
            geo = _FORWARD_PLANS.get(key)
        except TypeError:                  # a parameter given as a list (not from conv())
            key = geo = None
        if geo is None:
            geo = _forward_plan(key, x, k, b, self.strides, self.dilation, pads, self.groups)
        if not self.part:
            blocks = _parallel.batch_blocks(x.shape[0], geo.work)
            if blocks is not None:
                return self._forward_blocks(x, k, b, blocks)
        if geo.wino:
            return self._wino_forward(x, k, b, geo)
        if geo.padded:
            x = _pad(x, pads)
        self.pshape = x.shape
        self.out = out = geo.out
        self.k = k
        self.bj = bj = geo.bj
        self.one = one = geo.one
        if bj > 1:
            if x.flags.c_contiguous:         # the window view without as_strided's overhead
                win = np.ndarray(geo.wshape, x.dtype, x, 0, geo.wstrides)
            else:
                win = np.lib.stride_tricks.as_strided(x, geo.wshape, geo.wstrides, writeable=False)
            width = geo.width
            if geo.small:
                cols = np.empty((geo.rows, width + one), x.dtype)
                _copy_small(cols[:, :width].reshape(geo.wshape), win)
            else:
                cols = _WS.empty((geo.rows, width + one), x.dtype)
                _parallel.copy(cols[:, :width].reshape(geo.wshape), win)
            mat = _band_matrix(k, self.strides, self.dilation, bj, b if one else None)
            if one:
                cols[:, width] = 1
                self.band = mat[:-1]
            else:
                self.band = mat
            self.cols = cols
            if geo.small and self.y_out is None:
                y = np.matmul(cols, mat)
            else:
                y = self._product(cols, mat)
            y = y.reshape(geo.yshape)
            if self.y_out is not None and not np.shares_memory(y, self.y_out):
                self.y_out[...] = y
                y = self.y_out
            if self.relu:                    # y = max(conv, 0) in the same node
                kern = _compiled.kernels("dense_forward") if geo.small else None
                if kern is not None and y.dtype in _FLOATS and y.flags.c_contiguous:
                    kern.dense_forward(y.reshape(1, -1), None, True)
                else:
                    np.maximum(y, 0, out=y)
                self.y = y
            return y
        nd = k.ndim - 2
        ksz = k.shape[:nd]
        g = self.groups
        cin_g, f = k.shape[-2], k.shape[-1]
        nk = _prod(ksz)
        kin = nk * cin_g
        m = x.shape[0] * _prod(out)
        if g == 1 and cin_g == 1:
            ct = _WS.empty((nk + one, m), x.dtype)
            blocks = ct[:nk].reshape((nk, x.shape[0]) + tuple(out))
            for i, (_, sl) in enumerate(_offset_slices(ksz, self.strides, self.dilation, out)):
                blocks[i] = x[(slice(None),) + sl + (0,)]
            mat = k.reshape(kin, f)
            if one:
                ct[nk] = 1
                mat = _with_row(mat, b)
            self.cols = ct
            y = self._product(ct.T, mat)
        elif g == 1:
            win = _windows(x, ksz, self.strides, self.dilation, out)
            mat = k.reshape(kin, f)
            if one:
                cols = _WS.empty((m, kin + 1), x.dtype)
                _parallel.copy(cols[:, :kin].reshape(win.shape), win)
                cols[:, kin] = 1
                mat = _with_row(mat, b)
            elif nk == 1 and all(st == 1 for st in self.strides):
                cols = x.reshape(-1, kin)             # 1×1 kernel: the rows are x itself
            else:
                cols = _WS.empty((m, kin), x.dtype)
                _parallel.copy(cols.reshape(win.shape), win)
            self.cols = cols
            y = self._product(cols, mat)
        else:
            win = _windows(x, ksz, self.strides, self.dilation, out)
            fg = f // g
            ys = []
            self.cols = []
            for gi in range(g):
                cols = win[..., gi * cin_g:(gi + 1) * cin_g].reshape(-1, kin)
                self.cols.append(cols)
                ys.append(cols @ k[..., gi * fg:(gi + 1) * fg].reshape(kin, fg))
            y = np.concatenate(ys, axis=-1)
        y = y.reshape((x.shape[0],) + tuple(out) + (f,))
        if self.y_out is not None and not np.shares_memory(y, self.y_out):
            self.y_out[...] = y
            y = self.y_out
        if b is not None and not one:
            _add_bias(y, b)
        if self.relu:                    # y = max(conv, 0) in the same node
            np.maximum(y, 0, out=y)
            self.y = y
        return y

    def _wino_forward(self, x, k, b, geo):
        """The Winograd lowering (ops/winograd.py): V = Bᵀ d B of x's tiles (padded by the
        node's pads), U = G K Gᵀ, M[ξ] = V[ξ] · U[ξ] ((m+2)² products), y = Aᵀ M A + bias (then
        ReLU with ``relu``); V and U are kept for the backward pass."""
        (pt, pb), (pl, pr) = self.pads
        x = np.ascontiguousarray(x)
        n, h, w, c = x.shape
        f = k.shape[-1]
        self.pshape = (n, h + pt + pb, w + pl + pr, c)
        self.out = out = geo.out
        self.k, self.bj, self.one = k, 1, 0
        mt = geo.wino
        taps = (mt + 2) ** 2
        th, tw = winograd.tiles(out, mt)
        self.wino = th, tw, mt
        u = winograd.kernel_transform(k, _WS.empty((taps,) + k.shape[2:], k.dtype), m=mt)
        y = self.y_out if self.y_out is not None else _WS.empty(geo.yshape, x.dtype)
        per = taps * th * tw                     # transformed values per sample and channel
        if len(self.needs) > 1 and self.needs[1]:
            # dL/dK will be wanted: V of the whole batch is kept for it
            chunk = n
        else:
            # V is not kept: runs of samples whose V and M take at most _WINO_CHUNK bytes
            chunk = max(1, min(n, _WINO_CHUNK // max(1, per * (c + f) * x.itemsize)))
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            tiles = (hi - lo) * th * tw
            v = winograd.input_transform(x[lo:hi], pt, pl, th, tw,
                                         out=_WS.empty((taps, tiles, c), x.dtype), m=mt)
            m = _parallel.bmm(v, u, out=_WS.empty((taps, tiles, f), x.dtype))
            winograd.output_transform(m, y[lo:hi], b, self.relu, tile=mt)
        self.wv, self.wu = (v if chunk == n else None), u
        if self.relu:
            self.y = y
        return y

    def _wino_backward(self, gy, needs, gb):
        """dM = A dY Aᵀ; dL/dK = Gᵀ (V[ξ]ᵀ · dM[ξ]) G; dL/dx = the tiles' B (dM[ξ] · U[ξ]ᵀ) Bᵀ
        added in tile order (ops/winograd.py)."""
        gy = np.ascontiguousarray(gy)
        th, tw, mt = self.wino
        taps = (mt + 2) ** 2
        v, u = self.wv, self.wu
        n = gy.shape[0]
        dm = winograd.output_transform_grad(gy, out=_WS.empty((taps, n * th * tw, u.shape[2]),
                                                               gy.dtype), m=mt)
        gx = gk = None
        if needs[1]:                     # (V was kept: the forward saw needs[1])
            gk = winograd.kernel_transform_grad(_parallel.bmm(v.transpose(0, 2, 1), dm), m=mt)
        if needs[0]:
            dv = _parallel.bmm(dm, u.transpose(0, 2, 1),
                               out=_WS.empty((taps, n * th * tw, u.shape[1]), gy.dtype))
            if self.dx_buffer is None:         # straight into the unpadded gradient
                (pt, _), (pl, _) = self.pads
                gx = _WS.zeros(self.xshape, gy.dtype)
                winograd.input_transform_grad(dv, gx, pt, pl, th, tw, m=mt)
            else:                              # this block's rows of the whole padded buffer
                dxp = self._zeros(self.pshape, gy.dtype)
                winograd.input_transform_grad(dv, dxp, 0, 0, th, tw, m=mt)
                gx = self._crop(dxp)
        if len(needs) == 3:
            return gx, gk, gb
        return gx, gk

    def _forward_device(self, xp, x, k, b):
        """The plain lowering with the array module ``xp``, groups as one batched product:
        rows_g (G, M, kh·kw·C/G) · K_g (G, kh·kw·C/G, F/G) → y (M, F), F ordered group-major."""
        nd = k.ndim - 2
        if any(p != (0, 0) for p in self.pads):
            x = _pad_device(xp, x, self.pads)
        self.pshape = x.shape
        ksz = k.shape[:nd]
        out = _out_shape(x.shape[1:1 + nd], ksz, self.strides, self.dilation)
        self.out, self.k = out, k
        g, (cin_g, f) = self.groups, k.shape[-2:]
        nk = _prod(ksz)
        rows = _window_rows(xp, x, ksz, self.strides, self.dilation, out)       # (M, kk, C)
        m = rows.shape[0]
        self.cols = rows.reshape(m, nk, g, cin_g).transpose(2, 0, 1, 3).reshape(g, m, nk * cin_g)
        self.kg = k.reshape(nk, cin_g, g, f // g).transpose(2, 0, 1, 3).reshape(g, nk * cin_g, f // g)
        y = xp.matmul(self.cols, self.kg).transpose(1, 0, 2).reshape((x.shape[0],) + tuple(out) + (f,))
        if b is not None:
            y = y + b
        if self.relu:
            y = xp.maximum(y, 0)
            self.y = y
        return y

    def _backward_device(self, gy):
        """dL/dK_g = rows_gᵀ · dL/dy_g,  dL/dbias = Σ_rows dL/dy,  dL/dx = the kh·kw strided adds
        of dL/dy_g · K_gᵀ (the plain lowering, with the array module of the forward)."""
        xp, k, g, needs = self.xp, self.k, self.groups, self.needs
        if self.relu:
            gy = gy * (self.y > 0)
        nd = k.ndim - 2
        ksz = k.shape[:nd]
        cin_g, f = k.shape[-2:]
        nk = _prod(ksz)
        g2 = gy.reshape(-1, f)
        m = g2.shape[0]
        gg = g2.reshape(m, g, f // g).transpose(1, 0, 2)                         # (G, M, F/G)
        gx = gk = gb = None
        if needs[1]:
            gk = xp.matmul(self.cols.transpose(0, 2, 1), gg).reshape(
                g, nk, cin_g, f // g).transpose(1, 2, 0, 3).reshape(k.shape)
        if len(needs) == 3 and needs[2]:
            gb = g2.sum(axis=0)
        if needs[0]:
            dcols = xp.matmul(gg, self.kg.transpose(0, 2, 1)).reshape(g, m, nk, cin_g)
            dcols = dcols.transpose(1, 2, 0, 3).reshape(
                (gy.shape[0],) + tuple(self.out) + (nk, cin_g * g))
            dxp = xp.zeros(self.pshape, gy.dtype)
            for i, (_, sl) in enumerate(_offset_slices(ksz, self.strides, self.dilation, self.out)):
                dxp[(slice(None),) + sl] += dcols[..., i, :]
            gx = self._crop(dxp)
        if len(needs) == 3:
            return gx, gk, gb
        return gx, gk

    def _work(self, xshape, kshape):
        """Multiply-adds of the node's product plus the window entries it copies."""
        nd = len(kshape) - 2
        padded = [n + lo + hi for n, (lo, hi) in zip(xshape[1:1 + nd], self.pads)]
        out = _out_shape(padded, kshape[:nd], self.strides, self.dilation)
        m = xshape[0] * _prod(out)
        kin = _prod(kshape[:-1])
        return m * kin * (kshape[-1] // self.groups + 1)

    def _product(self, a, b):
        """a · b, into this block's rows of the whole output when it is one block of a split node."""
        if self.y_out is None:
            return _WS.matmul(a, b)
        return np.matmul(a, b, out=self.y_out.reshape(a.shape[0], b.shape[1]))

    def _zeros(self, shape, dtype):
        """The zeroed input-gradient buffer (this block's rows of the whole one when split)."""
        if self.dx_buffer is None:
            return _WS.zeros(shape, dtype)
        a = self.dx_buffer(shape, dtype)
        a.fill(0)
        return a

    def _forward_blocks(self, x, k, b, blocks):
        """The node on consecutive batch blocks, one per thread (ops/_parallel.py); each block
        is a Conv of its own over x[lo:hi] that writes its rows of y."""
        nd = k.ndim - 2
        padded = [n + lo + hi for n, (lo, hi) in zip(x.shape[1:1 + nd], self.pads)]
        out = _out_shape(padded, k.shape[:nd], self.strides, self.dilation)
        self.out, self.k, self.blocks = out, k, blocks
        self.pshape = (x.shape[0],) + tuple(padded) + (x.shape[-1],)
        y = _WS.empty((x.shape[0],) + tuple(out) + (k.shape[-1],), np.result_type(x, k))
        params = {name: self.__dict__[name] for name in
                  ("strides", "dilation", "pads", "groups", "relu", "needs")}
        parts = []
        for lo, hi in blocks:
            part = _new(Conv)
            part.__dict__.update(params, part=True, y_out=y[lo:hi])
            parts.append(part)
        self.parts = parts
        _parallel.run_blocks(lambda i, lo, hi: parts[i].forward(x[lo:hi], k, b), blocks)
        for part in parts:
            part.y_out = None
        return y

    def _backward_blocks(self, gy):
        """Each block's backward on its rows of dL/dy; dL/dx is one buffer whose rows the blocks
        fill, dL/dK and dL/dbias the blocks' sums added in block order."""
        parts, blocks, needs = self.parts, self.blocks, self.needs
        lock, whole = threading.Lock(), []

        def buffer(shape, dtype, lo, hi):
            with lock:
                if not whole:
                    whole.append(_WS.empty((self.pshape[0],) + tuple(shape[1:]), dtype))
            return whole[0][lo:hi]

        def run(i, lo, hi):
            part = parts[i]
            if needs[0]:
                part.dx_buffer = lambda shape, dtype: buffer(shape, dtype, lo, hi)
            try:
                return part.backward(gy[lo:hi])
            finally:
                part.dx_buffer = None
        res = _parallel.run_blocks(run, blocks)
        grads = [self._crop(whole[0]) if needs[0] else None]
        for j in range(1, len(needs)):
            if needs[j]:
                total = res[0][j].copy()
                for r in res[1:]:
                    total += r[j]
                grads.append(total)
            else:
                grads.append(None)
        return tuple(grads)

    def backward(self, gy):
        if self.xp is not np:
            return self._backward_device(gy)
        if self.blocks is not None:
            return self._backward_blocks(gy)
        needs = self.needs
        need_b = len(needs) == 3 and needs[2]
        # dL/dbias apart from the product (where the bias does not ride in it, or dL/dK is not
        # wanted)
        sep_b = need_b and not (self.one and needs[1])
        gb = None
        if self.relu:                    # dL/dconv = dL/dy · [y > 0]
            gy, gb = self._relu_mask(gy, sep_b)
        k, g = self.k, self.groups
        nd = k.ndim - 2
        ksz = k.shape[:nd]
        cin_g, f = k.shape[-2], k.shape[-1]
        g2 = gy.reshape(-1, f)
        gk = gx = None
        nk = _prod(ksz)
        if sep_b and gb is None:
            # Σ over the rows as a matrix-vector product: a column sum of an (M, F) array would
            # run over F-entry rows
            gb = np.ones(g2.shape[0], g2.dtype) @ g2
        if self.wino is not None:
            return self._wino_backward(gy, needs, gb)
        if self.bj > 1:
            return self._band_backward(gy, needs, gb)
        if g == 1:
            if needs[1]:
                gmat = _parallel.matmul(self.cols if cin_g == 1 else self.cols.T, g2, pin=False)
                gk = gmat[:nk * cin_g].reshape(k.shape)
                if need_b and self.one:
                    gb = gmat[-1].copy()
            if needs[0]:
                dcols = _offset_major(g2, k.reshape(nk, cin_g, f))          # (kh·kw, M, C)
        else:
            fg = f // g
            gks, dparts = [], []
            for gi in range(g):
                gg = g2[:, gi * fg:(gi + 1) * fg]
                if needs[1]:
                    gks.append((self.cols[gi].T @ gg).reshape(tuple(ksz) + (cin_g, fg)))
                if needs[0]:
                    dparts.append(_offset_major(gg, k[..., gi * fg:(gi + 1) * fg].reshape(nk, cin_g, fg)))
            if needs[1]:
                gk = np.concatenate(gks, axis=-1)
            if needs[0]:
                dcols = np.concatenate(dparts, axis=-1)
        if needs[0]:
            dxp = self._zeros(self.pshape, gy.dtype)
            blk = (gy.shape[0],) + tuple(self.out) + (cin_g * g,)
            for i, (offs, sl) in enumerate(_offset_slices(ksz, self.strides, self.dilation, self.out)):
                dxp[(slice(None),) + sl] += dcols[i].reshape(blk)
            gx = self._crop(dxp)
        if len(needs) == 3:
            return gx, gk, gb
        return gx, gk

    def _relu_mask(self, gy, want_b):
        """(dL/dconv, dL/dbias or None) with dL/dconv = dL/dy · [y > 0]: one pass of the
        compiled module when it is built (dense_backward, as Dense's: the mask, and with
        ``want_b`` and at least _MASK_ROWS_MIN filters dL/dbias = Σ_rows dL/dconv accumulated
        row after row, np.add.reduce(…, axis=0)'s order, where the NumPy form takes
        1ᵀ · dL/dconv through the BLAS: equal to rounding); else the NumPy mask and None."""
        y = self.y
        kern = _compiled.kernels("dense_backward") if _COMPILED_CONV_MASK else None
        if (kern is not None and gy.dtype in _FLOATS and y.dtype == gy.dtype
                and gy.shape == y.shape and gy.flags.c_contiguous and y.flags.c_contiguous):
            f = gy.shape[-1]
            gm = np.empty(gy.shape, gy.dtype)
            if f < _MASK_ROWS_MIN:       # short rows: the mask as one long row, dL/dbias apart
                kern.dense_backward(gy.reshape(1, -1), y.reshape(1, -1), gm.reshape(1, -1), None)
                return gm, None
            db = np.empty(f, gy.dtype) if want_b else None
            kern.dense_backward(gy.reshape(-1, f), y.reshape(-1, f), gm.reshape(-1, f), db)
            return gm, db
        return gy * (y > 0), None

    def _crop(self, dxp):
        nd = self.k.ndim - 2
        inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(self.pads, self.xshape[1:1 + nd]))
        return dxp[(slice(None),) + inner]

    def _band_backward(self, gy, needs, gb):
        k, bj = self.k, self.bj
        nd = k.ndim - 2
        kw, c, f = k.shape[nd - 1], k.shape[-2], k.shape[-1]
        s, d = self.strides[-1], self.dilation[-1]
        bw = (bj - 1) * s + (kw - 1) * d + 1
        lead = k.shape[:nd - 1]
        g_rows = gy.reshape(self.cols.shape[0], bj * f)
        gk = gx = None
        if needs[1]:
            gmat = _parallel.matmul(self.cols.T, g_rows, pin=False)
            if len(needs) == 3 and needs[2] and self.one:
                gb = gmat[-1].reshape(bj, f).sum(axis=0)
            gband = gmat[:gmat.shape[0] - self.one].reshape(lead + (bw, c, bj, f))
            gk = _band_taps(gband, kw, s, d).sum(axis=nd - 1)     # Σ over the bj outputs
        if needs[0]:
            gx = self._crop(self._band_input_grad(gy))
        if len(needs) == 3:
            return gx, gk, gb
        return gx, gk

    def _band_input_grad(self, gy):
        """dL/d(padded x) through the banded lowering (blocks of bj_dx outputs: longer blocks
        than the forward's, fewer and longer adds)."""
        k, out = self.k, self.out
        nd = k.ndim - 2
        kw, c, f = k.shape[nd - 1], k.shape[-2], k.shape[-1]
        s, d = self.strides[-1], self.dilation[-1]
        bj = _band_block(out[-1], f, width=96, most=16)
        if bj == 1:
            bj = self.bj
        band = self.band if bj == self.bj else _band_matrix(k, self.strides, self.dilation, bj)
        bw = (bj - 1) * s + (kw - 1) * d + 1
        lead = k.shape[:nd - 1]
        nb = out[-1] // bj
        n = gy.shape[0]
        drows = _WS.matmul(gy.reshape(-1, bj * f), band.T).reshape((n,) + tuple(out[:-1]) + (nb,)
                                                                   + lead + (bw, c))
        period = bj * s
        r = -(-bw // period)                  # blocks t and t + r never overlap
        span = r * period
        # span spare columns on the right, so that every set of blocks t ≡ ph (mod r) is the
        # plain slice [ph·period, ph·period + n_ph·span) split into (n_ph, span)
        dxp = self._zeros(self.pshape[:-2] + (self.pshape[-2] + span, c), gy.dtype)
        kern = _compiled.kernels("band_add") if _COMPILED_BAND_ADD else None
        if kern is not None and dxp.dtype in _FLOATS and dxp.dtype == drows.dtype \
                and dxp.flags.c_contiguous and drows.flags.c_contiguous:
            # the same adds in the same order, each row of drows onto its stretch of dxp
            so, do = _band_add_offsets(tuple(out[:-1]), nb, tuple(lead), bw, c, r, period,
                                       self.strides, self.dilation, dxp.shape[1:])
            kern.band_add(dxp, drows, so, do, bw * c)
            return dxp
        pre = (slice(None),) * (nd - 1)
        for offs in itertools.product(*[range(kk) for kk in lead]):
            rows = tuple(slice(a * dd, a * dd + ss * (o - 1) + 1, ss)
                         for a, dd, ss, o in zip(offs, self.dilation, self.strides, out[:-1]))
            for ph in range(min(r, nb)):
                nph = len(range(ph, nb, r))
                tgt = dxp[(slice(None),) + rows + (slice(ph * period, ph * period + nph * span),)]
                tgt = tgt.reshape(tgt.shape[:-2] + (nph, span, c))[..., :bw, :]
                tgt += drows[(slice(None),) + pre + (slice(ph, None, r),) + offs]
        return dxp


def _band_add_offsets(out_lead, nb, lead, bw, c, r, period, strides, dilation, dshape):
    """Where each (bw, c) row of the banded input gradient's product goes (Conv._band_input_grad,
    ``band_add`` of the compiled module), per sample: the rows' offsets in the product
    (out_lead + (nb,) + lead + (bw, c)) and in the padded gradient (``dshape``), in the order
    of the NumPy form's adds (by kernel row offset, then by block t mod r), so that every entry
    receives its terms in the same order.  Cached per geometry."""
    key = (out_lead, nb, lead, bw, c, r, period, strides, dilation, dshape)
    hit = _BAND_ADD_OFFSETS.get(key)
    if hit is not None:
        return hit
    nl = len(lead)
    idx = np.indices(out_lead + (nb,) + lead).reshape(2 * nl + 1, -1)
    o, t, a = idx[:nl], idx[nl], idx[nl + 1:]
    src = np.arange(idx.shape[1], dtype=np.int64) * (bw * c)
    rowstep = [int(np.prod(dshape[i + 1:])) for i in range(nl)]
    dst = t.astype(np.int64) * (period * c)
    for i in range(nl):
        dst += (a[i].astype(np.int64) * dilation[i] + o[i].astype(np.int64) * strides[i]) * rowstep[i]
    lead_flat = np.ravel_multi_index(tuple(a), lead) if nl else np.zeros_like(t)
    order = np.argsort(lead_flat.astype(np.int64) * r + t % r, kind="stable")
    hit = (np.ascontiguousarray(src[order]), np.ascontiguousarray(dst[order]))
    if len(_BAND_ADD_OFFSETS) >= _GEOMETRY_MAX:
        _BAND_ADD_OFFSETS.clear()
    _BAND_ADD_OFFSETS[key] = hit
    return hit


_BAND_ADD_OFFSETS = {}
# The banded input gradient's adds run as one pass of the compiled module when it is built
# (band_add); False keeps the NumPy form.
_COMPILED_BAND_ADD = True

# Conv's ReLU mask and bias gradient run as one pass of the compiled module when it is built
# (Conv._relu_mask); False keeps the NumPy form.
_COMPILED_CONV_MASK = True
# With fewer filters than this, the row-by-row bias sum runs over rows too short to pay: the
# mask runs over the whole array as one row and dL/dbias stays a matrix-vector product.
_MASK_ROWS_MIN = 8
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _tuple(v, n, name, who):
    if isinstance(v, (int, np.integer)):
        v = (int(v),) * n
    try:
        v = tuple(int(i) for i in v)
    except (TypeError, ValueError):
        raise TypeError(f"{who}: {name} must be a positive int or a tuple of {n} positive ints, "
                        f"received {v!r}") from None
    if len(v) != n or any(i <= 0 for i in v):
        raise ValueError(f"{who}: {name} must be a positive int or a tuple of {n} positive ints, "
                         f"received {v}")
    return v


def conv(inputs, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1, relu=False):
    """Channels-last N-D convolution, kernel shaped (k1, …, kN, in_channels / groups, filters);
    ``relu=True`` applies max(·, 0) inside the same node."""
    x = M._t(inputs, "conv")
    k = M._t(kernel, "conv")
    try:        # the arguments checked and normalised once per geometry (_conv_args)
        key = (x.shape, k.shape, strides, type(strides), padding, dilation_rate,
               type(dilation_rate), groups, type(groups))
        norm = _CONV_ARGS.get(key)
    except TypeError:                              # an unhashable argument (a list)
        key = norm = None
    if norm is None:
        norm = _conv_args(x.shape, k.shape, strides, padding, dilation_rate, groups)
        if key is not None:
            if len(_CONV_ARGS) >= _GEOMETRY_MAX:
                _CONV_ARGS.clear()
            _CONV_ARGS[key] = norm
    strides, dilation, pads, groups = norm
    args = (x, k) if bias is None else (x, k, M._t(bias, "conv"))
    if groups > 1 and k.shape[-2] == 1:            # depthwise: one input channel a group
        return Depthwise.apply(*args, strides=strides, dilation=dilation, pads=pads,
                               relu=bool(relu))
    return Conv.apply(*args, strides=strides, dilation=dilation, pads=pads, groups=groups,
                      relu=bool(relu))


_CONV_ARGS = {}


def _conv_args(xshape, kshape, strides, padding, dilation_rate, groups):
    """(strides, dilation, pads, groups) of conv() for inputs and kernels of these shapes, as
    tuples and an int; raises on a bad argument (a pure function of its arguments)."""
    nd = len(kshape) - 2
    if nd < 1 or len(xshape) != nd + 2:
        raise ValueError(f"conv: a {nd}-D kernel of shape {kshape} needs inputs of rank {nd + 2} "
                         f"(batch, spatial…, channels), received shape {xshape}")
    strides = _tuple(strides, nd, "strides", "conv")
    dilation = _tuple(dilation_rate, nd, "dilation_rate", "conv")
    if groups <= 0 or xshape[-1] % groups or kshape[-1] % groups:
        raise ValueError(f"conv: groups={groups} must divide the input channels ({xshape[-1]}) and "
                         f"the filters ({kshape[-1]})")
    if xshape[-1] != kshape[-2] * groups:
        raise ValueError(f"conv: input has {xshape[-1]} channels but the kernel of shape {kshape} "
                         f"expects {kshape[-2] * groups} (kernel in_channels × groups)")
    pads = tuple(_pad_amounts(xshape[1:1 + nd], kshape[:nd], strides, dilation, padding))
    padded = [n + a + b for n, (a, b) in zip(xshape[1:1 + nd], pads)]
    eff = [(kk - 1) * d + 1 for kk, d in zip(kshape[:nd], dilation)]
    if any(p < e for p, e in zip(padded, eff)):
        raise ValueError(f"conv: the input's spatial size {xshape[1:1 + nd]} is smaller than the "
                         f"(dilated) kernel {tuple(eff)} with padding={padding!r}")
    return strides, dilation, pads, int(groups)


class Depthwise(Function):
    """Depthwise convolution (each input channel its own group of m filters), channels last:

        y[n, i…, c·m + q] = Σ_a x[n, i·s + a·d…, c] · K[a…, c, q]  (+ b[c·m + q]; ReLU with relu)
        dL/dx[n, i·s + a·d…, c] += Σ_q dL/dy[n, i…, c·m + q] · K[a…, c, q]
        dL/dK[a…, c, q] = Σ_{n, i…} x[n, i·s + a·d…, c] · dL/dy[n, i…, c·m + q]
        dL/db = Σ_{n, i…} dL/dy

    over the kernel offsets a (the padded input's offset slices).  The kernel input is shaped as
    the grouped convolution's, (k…, 1, C·m).  2-D with one filter a channel runs in the compiled
    module when it is built (``depthwise2d``: loops along the contiguous channels, runs of
    samples on the product pool's threads, the kernel gradient's run sums added in run order);
    otherwise, and on a device, kh·kw whole-array multiply-adds, one per offset."""

    relu = False
    compiled = False

    def forward(self, x, k, b=None):
        self.xp = xp = array_module(x, k, b)
        nd = k.ndim - 2
        ksz = k.shape[:nd]
        C = x.shape[-1]
        m = k.shape[-1] // C
        self.xshape = x.shape
        if any(p != (0, 0) for p in self.pads):
            xpd = _pad(x, self.pads) if xp is np else _pad_device(xp, x, self.pads)
        else:
            xpd = x
        out = _out_shape(xpd.shape[1:1 + nd], ksz, self.strides, self.dilation)
        self.out, self.m, self.ksz = out, m, ksz
        kk = k.reshape(ksz + (C, m))
        kern = _compiled.kernels("depthwise2d") if xp is np else None
        n = x.shape[0]
        if (kern is not None and nd == 2 and m == 1 and x.dtype in _FLOATS
                and k.dtype == x.dtype and min(out) > 0):
            self.compiled = True
            self.xpd = xpd = np.ascontiguousarray(xpd)
            self.kc = np.ascontiguousarray(kk[..., 0])
            y = np.empty((n,) + tuple(out) + (C,), x.dtype)
            kern.depthwise2d(0, xpd, self.kc, None, y, *self.strides, *self.dilation)
        else:
            self.xpd = xpd
            y = xp.zeros((n,) + tuple(out) + (C, m), dtype=np.result_type(x.dtype, k.dtype))
            for offs, sl in _offset_slices(ksz, self.strides, self.dilation, out):
                y += xpd[(slice(None),) + sl][..., None] * kk[offs]
            y = y.reshape((n,) + tuple(out) + (C * m,))
        self.kk = kk
        if b is not None:
            if np.result_type(y.dtype, b.dtype) != y.dtype:
                y = y + b
            else:
                y += b
        if self.relu:
            y = xp.maximum(y, 0) if xp is not np else np.maximum(y, 0, out=y)
            self.y = y
        return y

    def _crop(self, gxp):
        nd = len(self.out)
        inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(self.pads, self.xshape[1:1 + nd]))
        return gxp[(slice(None),) + inner]

    def backward(self, gy):
        xp, needs = self.xp, self.needs
        if self.relu:
            gy = gy * (self.y > 0)
        C, m, ksz, out = self.xshape[-1], self.m, self.ksz, self.out
        nd = len(out)
        gx = gk = gb = None
        if self.compiled:
            kern = _compiled.kernels("depthwise2d")
            g = np.ascontiguousarray(gy, dtype=self.xpd.dtype)
            if needs[0]:
                gxp = np.empty(self.xpd.shape, self.xpd.dtype)
                kern.depthwise2d(1, None, self.kc, g, gxp, *self.strides, *self.dilation)
                gx = self._crop(gxp)
            if needs[1]:
                gk = np.empty(ksz + (C,), self.xpd.dtype)
                kern.depthwise2d(2, self.xpd, None, g, gk, *self.strides, *self.dilation)
                gk = gk.reshape(ksz + (1, C))
        else:
            g5 = gy.reshape(gy.shape[:-1] + (C, m))
            if needs[0]:
                gxp = xp.zeros(self.xpd.shape, dtype=np.result_type(gy.dtype, self.kk.dtype))
                for offs, sl in _offset_slices(ksz, self.strides, self.dilation, out):
                    gxp[(slice(None),) + sl] += (g5 * self.kk[offs]).sum(axis=-1)
                gx = self._crop(gxp)
            if needs[1]:
                axes = tuple(range(nd + 1))
                parts = [(self.xpd[(slice(None),) + sl][..., None] * g5).sum(axis=axes)
                         for _, sl in _offset_slices(ksz, self.strides, self.dilation, out)]
                gk = xp.stack(parts).reshape(ksz + (1, C * m))
        if len(needs) == 3 and needs[2]:
            gb = gy.reshape(-1, gy.shape[-1]).sum(axis=0)
        self.xpd = self.kk = self.kc = None
        if len(needs) == 3:
            return gx, gk, gb
        return gx, gk


def conv2d(inputs, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1):
    """2-D convolution of (N, H, W, C) inputs with a (kh, kw, C/groups, F) kernel."""
    return conv(inputs, kernel, bias, strides, padding, dilation_rate, groups)


def conv1d(inputs, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1):
    """1-D convolution of (N, L, C) inputs with a (k, C/groups, F) kernel; padding may be 'causal'."""
    return conv(inputs, kernel, bias, strides, padding, dilation_rate, groups)


def depthwise_conv(inputs, kernel, bias=None, strides=1, padding="valid", dilation_rate=1):
    """Depthwise convolution: kernel (k…, C, multiplier); each channel has its own filters."""
    k = M._t(kernel, "depthwise_conv")
    c, mult = k.shape[-2], k.shape[-1]
    k2 = M.reshape(k, k.shape[:-2] + (1, c * mult))
    return conv(inputs, k2, bias, strides, padding, dilation_rate, groups=c)


# -------------------------------------------------------------------- pooling
def _blocks(a, pool, out):
    """View (N, o1, p1, …, od, pd, C) of the entries of a channels-last ``a`` that disjoint
    windows (strides == pool, no padding) cover: ``blocks[n, i, a, j, b, c] = a[n, i·p1 + a,
    j·p2 + b, c]``; rows/columns past the last whole window ("valid" floor) are left out."""
    crop = (slice(None),) + tuple(slice(0, o * p) for o, p in zip(out, pool)) + (slice(None),)
    shape = (a.shape[0],) + tuple(v for o, p in zip(out, pool) for v in (o, p)) + (a.shape[-1],)
    return a[crop].reshape(shape)


def _block_max(v, nd):
    """Maximum of a block view over its window axes, outermost first: the first pass compares
    whole contiguous rows (long inner loops), only the last one runs over runs of C entries."""
    for i in range(nd):
        ax = (slice(None),) * (2 + i)
        p = v.shape[2 + i]
        if p == 1:
            v = v[ax + (0,)]
            continue
        m = np.maximum(v[ax + (0,)], v[ax + (1,)])
        for j in range(2, p):
            np.maximum(m, v[ax + (j,)], out=m)
        v = m
    return v


def _spread(a, pool):
    """(N, o1, …, od, C) → (N, o1, 1, o2, p2, …, od, pd, C): each window's value repeated over
    its offsets along every spatial axis but the first (which broadcasting covers), so that
    comparisons with a block view run over long contiguous rows."""
    for i in range(1, len(pool)):
        if pool[i] > 1:
            a = np.repeat(a, pool[i], axis=1 + i)
    shape = [a.shape[0], a.shape[1], 1]
    for o, p in zip(a.shape[2:-1], pool[1:]):
        shape += [o // p, p]
    return a.reshape(shape + [a.shape[-1]])


def _first_max_mask(v, y, pool, out):
    """Boolean block-shaped mask, true at exactly one entry per window: the first (row-major
    window order) entry equal to the window's maximum y, or its first NaN when y is NaN.

    e = (v == y) marks every maximum; when some window has more than one (ties, e.g. a window
    of zeros after a ReLU), each marked entry gets the priority K − k (k its row-major offset,
    K = p1·…·pd) and the window keeps the entry of largest priority — the smallest k."""
    nd = len(pool)
    e = v == _spread(y, pool)
    if np.issubdtype(y.dtype, np.inexact) and np.isnan(y).any():
        e |= np.isnan(v)
    if np.count_nonzero(e) == y.size:          # every window has ≥ 1 marked entry: no ties
        return e
    kk = int(np.prod(pool))
    dt = np.uint8 if kk < 256 else np.uint16 if kk < 65536 else np.uint32
    prio = (kk - np.arange(kk)).astype(dt).reshape(pool)
    # priorities laid out like one block row (p1, o2, p2, …, od, pd, C), contiguous, so that
    # e · prio broadcasts over (N, o1) only and runs over whole rows
    pshape = (pool[0],) + sum(((1, p) for p in pool[1:]), ()) + (1,)
    full = (pool[0],) + sum(((o, p) for o, p in zip(out[1:], pool[1:])), ()) + (v.shape[-1],)
    prio = np.ascontiguousarray(np.broadcast_to(prio.reshape(pshape), full))
    pe = np.multiply(e, prio)
    return pe == _spread(_block_max(pe, nd), pool)


class Pool(Function):
    """Max or average pooling over windows of a channels-last input.

    Disjoint max pooling (strides == pool_size, no padding — MaxPooling2D(2) and the like) works
    on the block view ``x[n, i·p + a, j·p + b, c]`` (shape (N, o1, p1, o2, p2, C)):
        y = max over a, then over b (see _block_max)
        dL/dx[n, i·p + a, j·p + b, c] = dL/dy[n, i, j, c] if (a, b) is the first maximum of its
        window in row-major order (first NaN if any), else 0 — entries past the last whole window
        get 0.  The mask is recomputed from x and y in backward (_first_max_mask).
    Other max pooling (overlapping windows, "same" padding with −∞ fill) takes a running maximum
    over the kh·kw offset slices and keeps the first maximising offset for the backward.

    With the compiled module, 2-D pooling of float32 / float64 inputs (and 1-D, as one row of it)
    runs in one pass each way (max_pool2d / avg_pool2d in _kernels.c):
        max:  y and the flat index of each window's first maximum (the same tie and NaN rule,
              padding as −∞), kept for the backward: dL/dx[idx] += dL/dy
        avg:  y = Σ over the window's unpadded entries / their count;
              dL/dx[window entries] += dL/dy / count
    The backward adds run over the windows in reverse order, the order in which the offset-slice
    adds above reach an entry, so the input gradients are the NumPy form's bits; the forward
    values are too, except an average's sum, taken in row-major window order (equal to rounding).

    On a device every pooling takes the offset slices: max: m = running maximum, arg = the first
    offset with x = m (or x NaN: the first NaN), dL/dx[offset k] += dL/dy · [arg = k];
    avg: the sum of the slices / count, dL/dx[offset k] += dL/dy / count.
    """

    xp = np                 # the input's array module (forward sets it on the unsplit node)
    part = False            # a batch block of a split node (never split again)
    parts = None            # the blocks' own Pool nodes, when split
    compiled = None         # the compiled module, when the node ran its 2-D kernels
    y_out = None            # a block's rows of the whole output, for the compiled pass to fill
    gx_out = None           # a block's rows of the whole input gradient, likewise

    def forward(self, x):
        nd = len(self.pool)
        self.xshape = x.shape
        pads = self.pads
        if not self.part:
            self.xp = xp = array_module(x)
            if xp is not np:
                return self._forward_device(xp, x)
        kern = _pool_kernels(self.kind, x)
        if not self.part:
            # work: about eight passes over the input between forward and backward (three with
            # the compiled kernels)
            bounds = _parallel.batch_blocks(x.shape[0], (3 if kern is not None else 8) * x.size)
            if bounds is not None:
                return self._forward_blocks(x, bounds)
        if kern is not None:
            return self._compiled_forward(kern, x)
        if self.blocks:
            out = _out_shape(x.shape[1:1 + nd], self.pool, self.strides, (1,) * nd)
            self.out, self.x = out, x
            y = _block_max(_blocks(x, self.pool, out), nd)
            if all(p == 1 for p in self.pool):
                y = y.copy()
            self.y = y
            return y
        self.x = None
        if any(p != (0, 0) for p in pads):
            fill = -np.inf if self.kind == "max" else 0
            xpd = _pad(x, pads, fill)
        else:
            xpd = x
        self.pshape = xpd.shape
        out = _out_shape(xpd.shape[1:1 + nd], self.pool, self.strides, (1,) * nd)
        self.out = out
        win = _windows(xpd, self.pool, self.strides, (1,) * nd, out)
        axes = tuple(range(1 + nd, 1 + 2 * nd))
        if self.kind == "max":
            # running maximum over the offset slices (strided views, no window copy); arg = the
            # first offset reaching the maximum (strict >), as np.argmax over the window would
            slices = [xpd[(slice(None),) + sl] for _, sl in
                      _offset_slices(self.pool, self.strides, (1,) * nd, out)]
            m = np.array(slices[0])
            arg = np.zeros(m.shape, np.uint8 if len(slices) <= 255 else np.intp)
            for k, sk in enumerate(slices[1:], 1):
                np.putmask(arg, sk > m, k)
                np.maximum(m, sk, out=m)
            nan = np.isnan(m)
            if nan.any():                  # np.argmax picks the first NaN of a window
                for k in range(len(slices) - 1, -1, -1):
                    np.putmask(arg, nan & np.isnan(slices[k]), k)
            self.arg = arg
            return m
        s = win.sum(axis=axes)
        if any(p != (0, 0) for p in pads):
            ones = np.pad(np.ones(x.shape[1:1 + nd], x.dtype), list(pads))
            cnt = _windows(ones[None, ..., None], self.pool, self.strides, (1,) * nd, out).sum(axis=axes)
        else:
            cnt = np.full((1,) * (1 + nd) + (1,), float(np.prod(self.pool)), x.dtype)
        self.cnt = cnt
        return (s / cnt).astype(x.dtype, copy=False)

    def _forward_device(self, xp, x):
        """Pooling over the offset slices with the array module ``xp`` (the docstring's device
        form)."""
        nd = len(self.pool)
        self.x = None
        pads = self.pads
        padded = any(p != (0, 0) for p in pads)
        xpd = _pad_device(xp, x, pads, -np.inf if self.kind == "max" else 0) if padded else x
        self.pshape = xpd.shape
        out = _out_shape(xpd.shape[1:1 + nd], self.pool, self.strides, (1,) * nd)
        self.out = out
        slices = [xpd[(slice(None),) + sl] for _, sl in
                  _offset_slices(self.pool, self.strides, (1,) * nd, out)]
        if self.kind == "max":
            m = slices[0]
            for sk in slices[1:]:
                m = xp.maximum(m, sk)
            arg = xp.zeros(m.shape, np.uint8 if len(slices) <= 255 else np.intp)
            nan = m.dtype.kind in "fc"
            for k in range(len(slices) - 1, -1, -1):     # the first offset holding the maximum
                sk = slices[k]
                arg[(sk == m) | xp.isnan(sk) if nan else sk == m] = k
            self.arg = arg
            return m if len(slices) > 1 else m.copy()
        s = slices[0]
        for sk in slices[1:]:
            s = s + sk
        if padded:
            ones = xp.zeros(xpd.shape[1:1 + nd], x.dtype)
            ones[tuple(slice(lo, lo + n) for (lo, _), n in zip(pads, x.shape[1:1 + nd]))] = 1
            cnt = 0
            for _, sl in _offset_slices(self.pool, self.strides, (1,) * nd, out):
                cnt = cnt + ones[sl]
            cnt = cnt.reshape((1,) + tuple(out) + (1,))
        else:
            cnt = xp.full((1,) * (1 + nd) + (1,), float(np.prod(self.pool)), x.dtype)
        self.cnt = cnt
        return (s / cnt).astype(x.dtype, copy=False)

    def _backward_device(self, g):
        xp, nd = self.xp, len(self.pool)
        dxp = xp.zeros(self.pshape, dtype=g.dtype)
        ga = g / self.cnt if self.kind == "avg" else None
        for k, (_, sl) in enumerate(_offset_slices(self.pool, self.strides, (1,) * nd, self.out)):
            dxp[(slice(None),) + sl] += g * (self.arg == k) if ga is None else ga
        inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(self.pads, self.xshape[1:1 + nd]))
        return (dxp[(slice(None),) + inner],)

    def _geometry(self):
        """(ph, pw, sh, sw, top, bottom, left, right) of the 2-D kernels; 1-D as one row."""
        if len(self.pool) == 1:
            (lo, hi), = self.pads
            return (1, self.pool[0], 1, self.strides[0], 0, 0, lo, hi)
        (t, b), (l, r) = self.pads
        return self.pool + self.strides + (t, b, l, r)

    def _compiled_forward(self, kern, x):
        x4 = np.ascontiguousarray(x)
        if x4.ndim == 3:
            x4 = x4[:, None]
        key = (x4.shape, self.pool, self.strides, self.pads)
        try:
            plan = _POOL_PLANS.get(key)
        except TypeError:                  # a parameter given as a list (not from _pool())
            key = plan = None
        if plan is None:
            geo = self._geometry()
            out = tuple((n + lo + hi - p) // s + 1 for n, p, s, lo, hi in
                        zip(x4.shape[1:3], geo[:2], geo[2:4], geo[4::2], geo[5::2]))
            plan = (geo, (x4.shape[0],) + out + (x4.shape[-1],))
            if key is not None:
                if len(_POOL_PLANS) >= _GEOMETRY_MAX:
                    _POOL_PLANS.clear()
                _POOL_PLANS[key] = plan
        geo, yshape = plan
        y = self._into(self.y_out, yshape, x4.dtype)
        if self.kind == "max":
            self.idx = np.empty(yshape, np.int32)
            kern.max_pool2d(x4, y, self.idx, *geo)
        else:
            kern.avg_pool2d(x4, y, *geo)
        self.compiled, self.x4shape, self.y4shape, self.dtype = kern, x4.shape, yshape, x4.dtype
        return y if x.ndim == 4 else y[:, 0]

    def _compiled_backward(self, g):
        kern, geo = self.compiled, self._geometry()
        # the NumPy forms' gradient dtype: g's (max), g / count's (avg)
        dt = g.dtype if self.kind == "max" else np.result_type(g.dtype, self.dtype)
        if dt not in _FLOATS:
            dt = self.dtype
        g4 = np.ascontiguousarray(g, dtype=dt).reshape(self.y4shape)
        gx = self._into(self.gx_out, self.x4shape, dt)
        if self.kind == "max":
            kern.max_pool2d_backward(g4, self.idx, gx, *geo)
        else:
            kern.avg_pool2d_backward(g4, gx, *geo)
        return (gx.reshape(self.xshape),)

    @staticmethod
    def _into(dest, shape, dtype):
        """Where the compiled pass writes: a block's rows of the whole result (``dest``, a
        C-contiguous slab of the same size and dtype), else a new array."""
        if (dest is not None and dest.dtype == dtype and dest.size == _prod(shape)
                and dest.flags.c_contiguous):
            return dest.reshape(shape)
        return np.empty(shape, dtype)

    def _forward_blocks(self, x, bounds):
        """The node on consecutive batch blocks, one per thread (ops/_parallel.py): each block a
        Pool of its own over x[lo:hi] that writes its rows of y (the compiled pass writes them
        in place; another result is copied in)."""
        params = {name: self.__dict__[name] for name in
                  ("kind", "pool", "strides", "pads", "blocks", "needs")}
        parts = []
        for _ in bounds:
            part = _new(Pool)
            part.__dict__.update(params, part=True)
            parts.append(part)
        self.parts, self.bounds = parts, bounds
        nd = len(self.pool)
        padded = [n + lo + hi for n, (lo, hi) in zip(x.shape[1:1 + nd], self.pads)]
        y = np.empty((x.shape[0],) + tuple(_out_shape(padded, self.pool, self.strides, (1,) * nd))
                     + (x.shape[-1],), x.dtype)

        def run(i, lo, hi):
            part, rows = parts[i], y[lo:hi]
            part.y_out = rows
            try:
                r = part.forward(x[lo:hi])
            finally:
                part.y_out = None
            if not _same_buffer(r, rows):
                rows[...] = r
            if part.blocks:
                part.y = rows
        _parallel.run_blocks(run, bounds)
        return y

    def _backward_blocks(self, g):
        gx = np.empty(self.xshape, g.dtype)

        def run(i, lo, hi):
            part, rows = self.parts[i], gx[lo:hi]
            part.gx_out = rows
            try:
                r = part.backward(g[lo:hi])[0]
            finally:
                part.gx_out = None
            if not _same_buffer(r, rows):
                rows[...] = r
        _parallel.run_blocks(run, self.bounds)
        return (gx,)

    def backward(self, g):
        if self.xp is not np:
            return self._backward_device(g)
        if self.parts is not None:
            return self._backward_blocks(g)
        if self.compiled is not None:
            return self._compiled_backward(g)
        nd = len(self.pool)
        if self.x is not None:
            x, pool, out = self.x, self.pool, self.out
            v = _blocks(x, pool, out)
            gv = np.multiply(_first_max_mask(v, self.y, pool, out), _spread(g, pool))
            if gv.size == x.size:
                return (gv.reshape(x.shape),)
            gx = np.zeros(x.shape, dtype=gv.dtype)
            gx[(slice(None),) + tuple(slice(0, o * p) for o, p in zip(out, pool))] = \
                gv.reshape((x.shape[0],) + tuple(o * p for o, p in zip(out, pool)) + (x.shape[-1],))
            return (gx,)
        dxp = np.zeros(self.pshape, dtype=g.dtype)
        if self.kind == "max" and all(s >= p for s, p in zip(self.strides, self.pool)):
            # windows do not overlap: every entry gets the gradient of at most one window, so
            # one scatter to the flat index of each window's maximum replaces kh·kw masked adds
            est = [st // dxp.itemsize for st in dxp.strides]
            shape = g.shape
            idx = np.zeros(shape, np.intp)
            for ax, (n, step) in enumerate(zip(shape, [est[0]] + [s * e for s, e in
                                                                  zip(self.strides, est[1:1 + nd])]
                                                + [est[-1]])):
                r = np.arange(n, dtype=np.intp) * step
                idx += r.reshape((1,) * ax + (n,) + (1,) * (len(shape) - ax - 1))
            table = np.array([sum(o * e for o, e in zip(offs, est[1:1 + nd])) for offs, _ in
                              _offset_slices(self.pool, self.strides, (1,) * nd, self.out)], np.intp)
            idx += table[self.arg]
            dxp.reshape(-1)[idx.reshape(-1)] = g.reshape(-1)
            inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(self.pads, self.xshape[1:1 + nd]))
            return (dxp[(slice(None),) + inner],)
        k = 0
        if self.kind == "avg":
            ga = g / self.cnt
        for offs, sl in _offset_slices(self.pool, self.strides, (1,) * nd, self.out):
            if self.kind == "max":
                dxp[(slice(None),) + sl] += g * (self.arg == k)
            else:
                dxp[(slice(None),) + sl] += ga
            k += 1
        inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(self.pads, self.xshape[1:1 + nd]))
        return (dxp[(slice(None),) + inner],)


# 2-D pooling (and 1-D, as one row of it) of float32 / float64 inputs runs in the compiled module
# when it is built (Pool's docstring); False keeps the NumPy forms.
_COMPILED_POOL = True


def _pool_kernels(kind, x):
    """The compiled module for a Pool node over ``x``, or None (not built, switched off, 3-D,
    another dtype, or a sample too large for the int32 indices of max pooling)."""
    if not _COMPILED_POOL or x.ndim not in (3, 4) or x.dtype not in _FLOATS:
        return None
    if kind == "max" and _prod(x.shape[1:]) > 2 ** 31 - 1:
        return None
    return _compiled.kernels("max_pool2d")


def _pool(kind, x, pool_size, strides, padding, who):
    x = M._t(x, who)
    try:        # the arguments checked and normalised once per geometry (_pool_args)
        key = (kind, who, x.shape, pool_size, type(pool_size), strides, type(strides), padding)
        norm = _POOL_ARGS.get(key)
    except TypeError:                              # an unhashable argument (a list)
        key = norm = None
    if norm is None:
        norm = _pool_args(kind, x.shape, pool_size, strides, padding, who)
        if key is not None:
            if len(_POOL_ARGS) >= _GEOMETRY_MAX:
                _POOL_ARGS.clear()
            _POOL_ARGS[key] = norm
    pool, strides, pads, blocks = norm
    return Pool.apply(x, kind=kind, pool=pool, strides=strides, pads=pads, blocks=blocks)


_POOL_ARGS = {}
_POOL_PLANS = {}        # (input shape, pool, strides, pads) → (2-D kernel geometry, output shape)


def _pool_args(kind, xshape, pool_size, strides, padding, who):
    """(pool, strides, pads, blocks) of a pooling of an input of this shape; raises on a bad
    argument (a pure function of its arguments)."""
    nd = len(xshape) - 2
    if nd < 1:
        raise ValueError(f"{who}: expected input of rank ≥ 3 (batch, spatial…, channels), received {xshape}")
    pool = _tuple(pool_size, nd, "pool_size", who)
    strides = pool if strides is None else _tuple(strides, nd, "strides", who)
    if padding not in ("valid", "same"):
        raise ValueError(f"{who}: padding must be 'valid' or 'same', received {padding!r}")
    pads = tuple(_pad_amounts(xshape[1:1 + nd], pool, strides, (1,) * nd, padding))
    if padding == "valid" and any(n < p for n, p in zip(xshape[1:1 + nd], pool)):
        raise ValueError(f"{who}: the input's spatial size {xshape[1:1 + nd]} is smaller than "
                         f"pool_size {pool}")
    # disjoint max pooling takes the block path (Pool's docstring); the rest the general one
    blocks = kind == "max" and strides == pool and all(p == (0, 0) for p in pads)
    return pool, strides, pads, blocks


def max_pool(inputs, pool_size, strides=None, padding="valid"):
    """Max pooling (channels last); ``strides`` defaults to ``pool_size``."""
    return _pool("max", inputs, pool_size, strides, padding, "max_pool")


def average_pool(inputs, pool_size, strides=None, padding="valid"):
    """Average pooling (channels last), averaging only the unpadded entries with "same"."""
    return _pool("avg", inputs, pool_size, strides, padding, "average_pool")


# ----------------------------------------------------------- transposed conv
def _deconv_length(n, k, padding, output_padding, stride, dilation):
    """Keras's output length of a transposed convolution."""
    k = (k - 1) * dilation + 1
    if output_padding is None:
        if padding == "valid":
            return n * stride + max(k - stride, 0)
        return n * stride
    pad = k // 2 if padding == "same" else 0
    return (n - 1) * stride + k - 2 * pad + output_padding


class ConvTranspose(Function):
    """Transposed convolution, kernel (k…, filters, in_channels) as Keras's Conv2DTranspose:

        y_full[n, i·s + a·d, f] += Σ_c x[n, i, c] · K[a, f, c],   y = y_full cropped to the output
        dL/dx = windows(dL/dy_full) · K,   dL/dK = windows(dL/dy_full)ᵀ · x   (a convolution's
        forward and kernel-gradient, mirrored)
    """

    def forward(self, x, k, b=None):
        self.xp = xp = array_module(x, k, b)
        nd = k.ndim - 2
        ksz, f, c = k.shape[:nd], k.shape[-2], k.shape[-1]
        n = x.shape[1:1 + nd]
        self.x, self.k, self.n = x, k, n
        if xp is np:
            cols = _offset_major(x.reshape(-1, c), k.reshape(int(np.prod(ksz)), f, c))  # (kh·kw, M, f)
        else:
            cols = xp.matmul(x.reshape(-1, c), k.reshape(_prod(ksz), f, c).transpose(0, 2, 1))
        yfull = xp.zeros((x.shape[0],) + tuple(self.alloc) + (f,), dtype=cols.dtype)
        blk = (x.shape[0],) + tuple(n) + (f,)
        for i, (offs, sl) in enumerate(_offset_slices(ksz, self.strides, self.dilation, n)):
            yfull[(slice(None),) + sl] += cols[i].reshape(blk)
        y = yfull[(slice(None),) + self.crop]
        if b is not None:
            y = y + b
        return xp.ascontiguousarray(y)

    def backward(self, g):
        xp = self.xp
        nd = self.k.ndim - 2
        k, x = self.k, self.x
        ksz, f, c = k.shape[:nd], k.shape[-2], k.shape[-1]
        kin = int(np.prod(ksz)) * f
        gp = xp.zeros((g.shape[0],) + tuple(self.alloc) + (f,), dtype=g.dtype)
        gp[(slice(None),) + self.crop] = g
        win = (_windows(gp, ksz, self.strides, self.dilation, self.n) if xp is np else
               _window_rows(xp, gp, ksz, self.strides, self.dilation, self.n)).reshape(-1, kin)
        needs = self.needs
        gx = (win @ k.reshape(kin, c)).reshape(x.shape) if needs[0] else None
        gk = (win.T @ x.reshape(-1, c)).reshape(k.shape) if needs[1] else None
        if len(needs) == 3:
            return gx, gk, (g.reshape(-1, f).sum(axis=0) if needs[2] else None)
        return gx, gk


def conv_transpose(inputs, kernel, bias=None, strides=1, padding="valid", output_padding=None,
                   dilation_rate=1):
    """Transposed convolution of channels-last inputs, kernel (k…, filters, in_channels)."""
    x = M._t(inputs, "conv_transpose")
    k = M._t(kernel, "conv_transpose")
    nd = k.ndim - 2
    if nd < 1 or x.ndim != nd + 2:
        raise ValueError(f"conv_transpose: a kernel of shape {k.shape} needs inputs of rank {nd + 2}, "
                         f"received {x.shape}")
    if padding not in ("valid", "same"):
        raise ValueError(f"conv_transpose: padding must be 'valid' or 'same', received {padding!r}")
    strides = _tuple(strides, nd, "strides", "conv_transpose")
    dilation = _tuple(dilation_rate, nd, "dilation_rate", "conv_transpose")
    if x.shape[-1] != k.shape[-1]:
        raise ValueError(f"conv_transpose: input has {x.shape[-1]} channels, the kernel {k.shape} "
                         f"expects {k.shape[-1]}")
    if output_padding is not None and isinstance(output_padding, (int, np.integer)):
        output_padding = (int(output_padding),) * nd
    crop, alloc = [], []
    for i in range(nd):
        n, kk, st, d = x.shape[1 + i], k.shape[i], strides[i], dilation[i]
        eff = (kk - 1) * d + 1
        op = None if output_padding is None else output_padding[i]
        length = _deconv_length(n, kk, padding, op, st, d)
        full = (n - 1) * st + eff
        if op is None:
            lo = max(full - length, 0) // 2 if padding == "same" else 0
        else:
            # Keras (TF/JAX/torch backends alike): the forward "same" convolution of the
            # output back to the input pads max(2·⌊eff/2⌋ − output_padding, 0) in total, the
            # smaller half first — that half is what is cropped at the start
            lo = max(2 * (eff // 2) - op, 0) // 2 if padding == "same" else 0
        crop.append(slice(lo, lo + length))
        alloc.append(max(full, lo + length))
    args = (x, k) if bias is None else (x, k, M._t(bias, "conv_transpose"))
    return ConvTranspose.apply(*args, strides=strides, dilation=dilation, crop=tuple(crop),
                               alloc=tuple(alloc))


# ------------------------------------------------------------- data formats
def _data_format(data_format, who):
    """``data_format`` as given, or ``keras.config.image_data_format()`` for None."""
    return config.standardize_data_format(data_format, who)


def to_channels_last(x):
    """(N, C, spatial…) → (N, spatial…, C)."""
    return M.transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))


def to_channels_first(x):
    """(N, spatial…, C) → (N, C, spatial…)."""
    return M.transpose(x, (0, x.ndim - 1) + tuple(range(1, x.ndim - 1)))


# ------------------------------------------------------------ separable conv
def separable_conv(inputs, depthwise_kernel, pointwise_kernel, strides=1, padding="valid",
                   data_format=None, dilation_rate=1):
    """Depthwise then pointwise convolution (keras.ops.separable_conv):

        z = depthwise_conv(x, K_d)   (K_d: (k…, C, multiplier)),
        y = conv(z, K_p)             (K_p: (1…, C·multiplier, filters)).

    Both are convolution nodes, so the gradients are theirs."""
    fmt = _data_format(data_format, "separable_conv")
    x = M._t(inputs, "separable_conv")
    if fmt == "channels_first":
        x = to_channels_last(x)
    pk = M._t(pointwise_kernel, "separable_conv")
    dk = M._t(depthwise_kernel, "separable_conv")
    if pk.ndim != dk.ndim or any(n != 1 for n in pk.shape[:-2]):
        raise ValueError(f"separable_conv: pointwise_kernel must have shape (1, …, "
                         f"in_channels·multiplier, filters) of rank {dk.ndim}, received {pk.shape}")
    if pk.shape[-2] != dk.shape[-2] * dk.shape[-1]:
        raise ValueError(f"separable_conv: pointwise_kernel {pk.shape} expects {pk.shape[-2]} "
                         f"channels, the depthwise kernel {dk.shape} makes "
                         f"{dk.shape[-2] * dk.shape[-1]}")
    y = conv(depthwise_conv(x, dk, None, strides, padding, dilation_rate), pk)
    return to_channels_first(y) if fmt == "channels_first" else y


# ------------------------------------------------ depth ↔ space rearranging
def _block_check(x, block_size, who):
    x = M._t(x, who)
    if x.ndim != 4:
        raise ValueError(f"{who}: expected a 4-D input (batch, height, width, channels), received "
                         f"shape {x.shape}")
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"{who}: block_size must be a positive int, received {block_size!r}")
    return x, int(block_size)


def depth_to_space(x, block_size, data_format="channels_last"):
    """Channels into b×b spatial blocks (keras.ops.depth_to_space), a reshape and a transpose:

        y[n, i·b + a, j·b + c, f] = x[n, i, j, (a·b + c)·C' + f],   C' = C / b²
    (channels_first, as Keras's torch backend: y[n, f, i·b + a, j·b + c] = x[n, f·b² + a·b + c, i, j])."""
    fmt = _data_format(data_format, "depth_to_space")
    x, b = _block_check(x, block_size, "depth_to_space")
    if fmt == "channels_first":
        n, c, h, w = x.shape
    else:
        n, h, w, c = x.shape
    if c % (b * b):
        raise ValueError(f"depth_to_space: the channels ({c}) must be divisible by block_size² "
                         f"({b * b}), received shape {x.shape}")
    nc = c // (b * b)
    if fmt == "channels_first":
        y = M.transpose(M.reshape(x, (n, nc, b, b, h, w)), (0, 1, 4, 2, 5, 3))
        return M.reshape(y, (n, nc, h * b, w * b))
    y = M.transpose(M.reshape(x, (n, h, w, b, b, nc)), (0, 1, 3, 2, 4, 5))
    return M.reshape(y, (n, h * b, w * b, nc))


def space_to_depth(x, block_size, data_format="channels_last"):
    """b×b spatial blocks into channels (keras.ops.space_to_depth), the inverse of
    depth_to_space: y[n, i, j, (a·b + c)·C + f] = x[n, i·b + a, j·b + c, f]."""
    fmt = _data_format(data_format, "space_to_depth")
    x, b = _block_check(x, block_size, "space_to_depth")
    if fmt == "channels_first":
        n, c, h, w = x.shape
    else:
        n, h, w, c = x.shape
    if h % b or w % b:
        raise ValueError(f"space_to_depth: height ({h}) and width ({w}) must be divisible by "
                         f"block_size ({b}), received shape {x.shape}")
    if fmt == "channels_first":
        y = M.transpose(M.reshape(x, (n, c, h // b, b, w // b, b)), (0, 1, 3, 5, 2, 4))
        return M.reshape(y, (n, c * b * b, h // b, w // b))
    y = M.transpose(M.reshape(x, (n, h // b, b, w // b, b, c)), (0, 1, 3, 2, 4, 5))
    return M.reshape(y, (n, h // b, w // b, c * b * b))


# --------------------------------------------------------------- unfold / fold
def _im2col(x, kernel, dilation, pads, strides, out, xp=np):
    """(N, C, H, W) → (N, C·kh·kw, oh·ow): cols[n, (c, a, b), (i, j)] = x_padded[n, c, i·s + a·d,
    j·s + b·d] (``xp`` the array module of x)."""
    if xp is not np:
        xl = xp.moveaxis(x, 1, -1)
        xpd = _pad_device(xp, xl, pads) if any(p != (0, 0) for p in pads) else xl
        rows = _window_rows(xp, xpd, kernel, strides, dilation, out)      # (N·L, kh·kw, C)
        n, c = x.shape[0], x.shape[1]
        return xp.ascontiguousarray(rows.reshape(n, _prod(out), _prod(kernel), c)
                                    .transpose(0, 3, 2, 1)).reshape(n, c * _prod(kernel), _prod(out))
    xl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    xpd = _pad(xl, pads) if any(p != (0, 0) for p in pads) else xl
    win = _windows(xpd, kernel, strides, dilation, out)           # (N, oh, ow, kh, kw, C)
    n, c = x.shape[0], x.shape[1]
    return np.ascontiguousarray(win.transpose(0, 5, 3, 4, 1, 2)).reshape(
        n, c * _prod(kernel), _prod(out))


def _col2im(cols, shape, kernel, dilation, pads, strides, out, xp=np):
    """The adjoint of _im2col: each column entry added back at the input position it came from
    (``xp`` the array module of cols)."""
    n, c, h, w = shape
    blocks = cols.reshape((n, c) + tuple(kernel) + tuple(out)).transpose(2, 3, 0, 4, 5, 1)
    padded = (n, h + pads[0][0] + pads[0][1], w + pads[1][0] + pads[1][1], c)
    dxp = xp.zeros(padded, cols.dtype)
    for offs, sl in _offset_slices(kernel, strides, dilation, out):
        dxp[(slice(None),) + sl] += blocks[offs]
    dx = dxp[:, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + w]
    return xp.ascontiguousarray(xp.moveaxis(dx, -1, 1))


class Unfold(Function):
    """Sliding blocks of a channels-first image as columns (im2col):

        y[n, c·kh·kw + a·kw + b, i·ow + j] = x_padded[n, c, i·s + a·d, j·s + b·d]
        dL/dx = col2im(dL/dy)   (each column entry added back where it was read; Fold's forward)
    """

    def forward(self, x):
        self.shape = x.shape
        self.xp = array_module(x)
        return _im2col(x, self.kernel, self.dilation, self.pads, self.strides, self.out, self.xp)

    def backward(self, g):
        return (_col2im(g, self.shape, self.kernel, self.dilation, self.pads, self.strides,
                        self.out, self.xp),)


class Fold(Function):
    """Columns summed back into a channels-first image (col2im), the adjoint of Unfold:

        y[n, c, i·s + a·d, j·s + b·d] += x[n, c·kh·kw + a·kw + b, i·ow + j]  (then cropped)
        dL/dx = im2col(dL/dy)   (Unfold's forward)
    """

    def forward(self, x):
        self.xp = array_module(x)
        return _col2im(x, self.shape, self.kernel, self.dilation, self.pads, self.strides, self.out,
                       self.xp)

    def backward(self, g):
        return (_im2col(g, self.kernel, self.dilation, self.pads, self.strides, self.out, self.xp),)


def _pair_arg(v, name, who, low):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (int(v), int(v))
    try:
        v = tuple(int(i) for i in v)
    except TypeError:
        raise TypeError(f"{who}: {name} must be an int or a tuple of 2 ints, received {v!r}") from None
    if len(v) != 2 or any(i < low for i in v):
        raise ValueError(f"{who}: {name} must be an int or a tuple of 2 ints ≥ {low}, received {v}")
    return v


def _fold_args(kernel_size, dilation, padding, stride, who):
    k = _pair_arg(kernel_size, "kernel_size", who, 1)
    d = _pair_arg(dilation, "dilation", who, 1)
    p = _pair_arg(padding, "padding", who, 0)
    s = _pair_arg(stride, "stride", who, 1)
    return k, d, ((p[0], p[0]), (p[1], p[1])), s


def _fold_out(size, k, d, pads, s, who):
    out = [(n + lo + hi - (kk - 1) * dd - 1) // ss + 1
           for n, kk, dd, (lo, hi), ss in zip(size, k, d, pads, s)]
    if any(o <= 0 for o in out):
        raise ValueError(f"{who}: the spatial size {tuple(size)} (padded by {pads}) is smaller than "
                         f"the dilated kernel {k} (dilation {d})")
    return out


def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """keras.ops.unfold: (N, C, H, W) → (N, C·kh·kw, L) sliding blocks (im2col), L the number of
    windows, each column a block flattened channel-major (see Unfold)."""
    x = M._t(x, "unfold")
    if x.ndim != 4:
        raise ValueError(f"unfold: expected a 4-D input (N, C, H, W), received shape {x.shape}")
    k, d, pads, s = _fold_args(kernel_size, dilation, padding, stride, "unfold")
    out = _fold_out(x.shape[2:], k, d, pads, s, "unfold")
    return Unfold.apply(x, kernel=k, dilation=d, pads=pads, strides=s, out=out)


def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """keras.ops.fold: (N, C·kh·kw, L) blocks summed into (N, C, oH, oW) (col2im, the adjoint of
    unfold; overlapping entries add up)."""
    x = M._t(x, "fold")
    if x.ndim != 3:
        raise ValueError(f"fold: expected a 3-D input (N, C·kh·kw, L), received shape {x.shape}")
    size = _pair_arg(output_size, "output_size", "fold", 1)
    k, d, pads, s = _fold_args(kernel_size, dilation, padding, stride, "fold")
    out = _fold_out(size, k, d, pads, s, "fold")
    kk = k[0] * k[1]
    if x.shape[1] % kk:
        raise ValueError(f"fold: the second axis ({x.shape[1]}) must be divisible by kh·kw = {kk}, "
                         f"received shape {x.shape}")
    if x.shape[2] != _prod(out):
        raise ValueError(f"fold: output_size {size} with kernel_size {k}, dilation {d}, padding "
                         f"{padding} and stride {s} has {_prod(out)} blocks, the input "
                         f"{x.shape} has {x.shape[2]}")
    shape = (x.shape[0], x.shape[1] // kk) + size
    return Fold.apply(x, shape=shape, kernel=k, dilation=d, pads=pads, strides=s, out=out)


# ----------------------------------------------------------- adaptive pooling
def _adaptive_bins(length, out):
    """PyTorch's (and Keras's) bins: [⌊i·L/o⌋, ⌈(i + 1)·L/o⌉) for i < o."""
    return [((i * length) // out, -(-((i + 1) * length) // out)) for i in range(out)]


class AdaptivePool(Function):
    """Average or max over each output cell's bin (channels last):

        avg: y[n, i…, c] = mean of x[n, bin_i…, c];   dL/dx[bin_i…] += dL/dy[n, i…, c] / |bin|
        max: y = max of x over the bin (first maximum in row-major order); dL/dx goes to it.
    Bins along an axis of length L into o cells: [⌊iL/o⌋, ⌈(i + 1)L/o⌉) (they overlap when L
    is not a multiple of o, so the gradients add).
    """

    def forward(self, x):
        self.xp = xp = array_module(x)
        nd = x.ndim - 2
        self.xshape = x.shape
        bins = [_adaptive_bins(n, o) for n, o in zip(x.shape[1:1 + nd], self.output_size)]
        self.bins = bins
        y = xp.empty((x.shape[0],) + tuple(self.output_size) + (x.shape[-1],), x.dtype)
        self.args = {}
        for idx in itertools.product(*[range(o) for o in self.output_size]):
            sl = (slice(None),) + tuple(slice(*bins[a][i]) for a, i in enumerate(idx))
            region = x[sl]
            if self.kind == "avg":
                y[(slice(None),) + idx] = region.mean(axis=tuple(range(1, 1 + nd)))
            else:
                flat = region.reshape(x.shape[0], -1, x.shape[-1])
                arg = xp.argmax(flat, axis=1)
                self.args[idx] = arg
                y[(slice(None),) + idx] = xp.take_along_axis(flat, arg[:, None], axis=1)[:, 0]
        return y

    def backward(self, g):
        xp = self.xp
        x_shape, bins = self.xshape, self.bins
        nd = len(x_shape) - 2
        gx = xp.zeros(x_shape, g.dtype)
        for idx in itertools.product(*[range(o) for o in self.output_size]):
            spans = [bins[a][i] for a, i in enumerate(idx)]
            sl = (slice(None),) + tuple(slice(*s) for s in spans)
            gi = g[(slice(None),) + idx]
            if self.kind == "avg":
                cnt = _prod(hi - lo for lo, hi in spans)
                gx[sl] += (gi / cnt).reshape((x_shape[0],) + (1,) * nd + (x_shape[-1],))
            else:
                rshape = (x_shape[0],) + tuple(hi - lo for lo, hi in spans) + (x_shape[-1],)
                if xp is np:
                    part = np.zeros((x_shape[0], _prod(rshape[1:-1]), x_shape[-1]), g.dtype)
                    np.put_along_axis(part, self.args[idx][:, None], gi[:, None], axis=1)
                else:                    # dL/dy at the bin's argmax, 0 elsewhere
                    hit = xp.arange(_prod(rshape[1:-1])).reshape(1, -1, 1) == self.args[idx][:, None]
                    part = xp.where(hit, gi[:, None], xp.zeros((), g.dtype))
                gx[sl] += part.reshape(rshape)
        return (gx,)


def _adaptive(kind, inputs, output_size, data_format, who):
    fmt = _data_format(data_format, who)
    x = M._t(inputs, who)
    nd = x.ndim - 2
    if nd not in (1, 2, 3):
        raise ValueError(f"{who}: expected an input of rank 3, 4 or 5 (batch, spatial…, channels), "
                         f"received shape {x.shape}")
    if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
        size = (int(output_size),) * nd
    elif isinstance(output_size, (str, bytes, bool)):
        raise TypeError(f"{who}: output_size must be an int or a tuple of {nd} ints, received "
                        f"{output_size!r}")
    else:
        try:
            size = tuple(int(i) for i in output_size)
        except TypeError:
            raise TypeError(f"{who}: output_size must be an int or a tuple of {nd} ints, received "
                            f"{output_size!r}") from None
    if len(size) != nd or any(s <= 0 for s in size):
        raise ValueError(f"{who}: output_size must be a positive int or a tuple of {nd} positive "
                         f"ints, received {output_size!r}")
    if fmt == "channels_first":
        x = to_channels_last(x)
    if any(n <= 0 for n in x.shape[1:1 + nd]):
        raise ValueError(f"{who}: the spatial sizes must be positive, received shape {x.shape}")
    y = AdaptivePool.apply(x, kind=kind, output_size=size)
    return to_channels_first(y) if fmt == "channels_first" else y


def adaptive_average_pool(inputs, output_size, data_format=None):
    """keras.ops.adaptive_average_pool: the mean over PyTorch's adaptive bins (AdaptivePool)."""
    return _adaptive("avg", inputs, output_size, data_format, "adaptive_average_pool")


def adaptive_max_pool(inputs, output_size, data_format=None):
    """keras.ops.adaptive_max_pool: the maximum over PyTorch's adaptive bins (AdaptivePool)."""
    return _adaptive("max", inputs, output_size, data_format, "adaptive_max_pool")
