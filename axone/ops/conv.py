"""Convolution and pooling, channels-last, lowered to matrix products.

Windows of the (padded) input are a strided view (no copy until the product):
``windows[n, i, j, a, b, c] = x[n, i·s + a·d, j·s + b·d, c]``.  Then

    conv:      y[n,i,j,f] = Σ_{a,b,c} windows[n,i,j,a,b,c] · K[a,b,c,f] + bias[f]
               dL/dK = Σ_{n,i,j} windows ⊗ dL/dy          (one product)
               dL/dx: dcols[a, b] = dL/dy · K[a, b]ᵀ (one batched product laid out offset-major,
               so each offset's block is contiguous), then each kernel offset (a, b) adds its
               block into the input gradient at rows a·d + i·s — kh·kw strided adds, never
               ``np.add.at``.
    max pool:  y = running maximum over the kh·kw offset slices (no copy of the windows);
               the gradient goes to the first maximum of each window (row-major window order).
    avg pool:  y = mean over the window's valid (unpadded) entries; dL/dx spreads dL/dy / count.

Output sizes (004): valid ⌈(H − (k − 1)d) / s⌉, same ⌈H / s⌉; "same" pads the total
max((out − 1)s + (k − 1)d + 1 − H, 0) with the extra row/column at the bottom/right (Keras).
"""
import math

import numpy as np

from ..autograd.function import Function
from . import math as M

__all__ = ["conv", "conv1d", "conv2d", "max_pool", "average_pool", "depthwise_conv",
           "conv_transpose", "conv_output_length", "pool_output_length", "same_padding"]


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
        return (kmat.reshape(kk, f) @ g2.T)[..., None]
    return np.matmul(g2, kmat.transpose(0, 2, 1))


def _offset_slices(kernel, strides, dilation, out):
    """For each kernel offset, the slices of the padded input that its windows read."""
    import itertools
    for offs in itertools.product(*[range(k) for k in kernel]):
        yield offs, tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                          for o, d, s, n in zip(offs, dilation, strides, out))


class Conv(Function):
    """N-D convolution (channels last) with optional groups; see the module docstring."""

    def forward(self, x, k, b=None):
        nd = k.ndim - 2
        self.xshape = x.shape
        pads = self.pads
        if any(p != (0, 0) for p in pads):
            x = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)])
        self.pshape = x.shape
        ksz = k.shape[:nd]
        out = _out_shape(x.shape[1:1 + nd], ksz, self.strides, self.dilation)
        self.out = out
        win = _windows(x, ksz, self.strides, self.dilation, out)
        self.win, self.k = win, k
        g = self.groups
        cin_g, f = k.shape[-2], k.shape[-1]
        kin = int(np.prod(ksz)) * cin_g
        if g == 1:
            cols = win.reshape(-1, kin)
            self.cols = cols
            y = cols @ k.reshape(kin, f)
        else:
            fg = f // g
            ys = []
            self.cols = []
            for gi in range(g):
                cols = win[..., gi * cin_g:(gi + 1) * cin_g].reshape(-1, kin)
                self.cols.append(cols)
                ys.append(cols @ k[..., gi * fg:(gi + 1) * fg].reshape(kin, fg))
            y = np.concatenate(ys, axis=-1)
        y = y.reshape((x.shape[0],) + tuple(out) + (f,))
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        k, g = self.k, self.groups
        nd = k.ndim - 2
        ksz = k.shape[:nd]
        cin_g, f = k.shape[-2], k.shape[-1]
        g2 = gy.reshape(-1, f)
        needs = self.needs
        gk = gx = gb = None
        nk = int(np.prod(ksz))
        if len(needs) == 3 and needs[2]:
            gb = g2.sum(axis=0)
        if g == 1:
            if needs[1]:
                gk = (self.cols.T @ g2).reshape(k.shape)
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
            dxp = np.zeros(self.pshape, dtype=gy.dtype)
            blk = (gy.shape[0],) + tuple(self.out) + (cin_g * g,)
            for i, (offs, sl) in enumerate(_offset_slices(ksz, self.strides, self.dilation, self.out)):
                dxp[(slice(None),) + sl] += dcols[i].reshape(blk)
            inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(self.pads, self.xshape[1:1 + nd]))
            gx = dxp[(slice(None),) + inner]
        if len(needs) == 3:
            return gx, gk, gb
        return gx, gk


def _tuple(v, n, name, who):
    if isinstance(v, (int, np.integer)):
        v = (int(v),) * n
    v = tuple(int(i) for i in v)
    if len(v) != n or any(i <= 0 for i in v):
        raise ValueError(f"{who}: {name} must be a positive int or a tuple of {n} positive ints, "
                         f"received {v}")
    return v


def conv(inputs, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1):
    """Channels-last N-D convolution, kernel shaped (k1, …, kN, in_channels / groups, filters)."""
    x = M._t(inputs, "conv")
    k = M._t(kernel, "conv")
    nd = k.ndim - 2
    if nd < 1 or x.ndim != nd + 2:
        raise ValueError(f"conv: a {nd}-D kernel of shape {k.shape} needs inputs of rank {nd + 2} "
                         f"(batch, spatial…, channels), received shape {x.shape}")
    strides = _tuple(strides, nd, "strides", "conv")
    dilation = _tuple(dilation_rate, nd, "dilation_rate", "conv")
    if groups <= 0 or x.shape[-1] % groups or k.shape[-1] % groups:
        raise ValueError(f"conv: groups={groups} must divide the input channels ({x.shape[-1]}) and "
                         f"the filters ({k.shape[-1]})")
    if x.shape[-1] != k.shape[-2] * groups:
        raise ValueError(f"conv: input has {x.shape[-1]} channels but the kernel of shape {k.shape} "
                         f"expects {k.shape[-2] * groups} (kernel in_channels × groups)")
    pads = _pad_amounts(x.shape[1:1 + nd], k.shape[:nd], strides, dilation, padding)
    padded = [n + a + b for n, (a, b) in zip(x.shape[1:1 + nd], pads)]
    eff = [(kk - 1) * d + 1 for kk, d in zip(k.shape[:nd], dilation)]
    if any(p < e for p, e in zip(padded, eff)):
        raise ValueError(f"conv: the input's spatial size {x.shape[1:1 + nd]} is smaller than the "
                         f"(dilated) kernel {tuple(eff)} with padding={padding!r}")
    args = (x, k) if bias is None else (x, k, M._t(bias, "conv"))
    return Conv.apply(*args, strides=strides, dilation=dilation, pads=pads, groups=int(groups))


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
class Pool(Function):
    """Max or average pooling over windows of a channels-last input."""

    def forward(self, x):
        nd = len(self.pool)
        self.xshape = x.shape
        pads = self.pads
        if any(p != (0, 0) for p in pads):
            fill = -np.inf if self.kind == "max" else 0
            xp = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)], constant_values=fill)
        else:
            xp = x
        self.pshape = xp.shape
        out = _out_shape(xp.shape[1:1 + nd], self.pool, self.strides, (1,) * nd)
        self.out = out
        win = _windows(xp, self.pool, self.strides, (1,) * nd, out)
        axes = tuple(range(1 + nd, 1 + 2 * nd))
        if self.kind == "max":
            # running maximum over the offset slices (strided views, no window copy); arg = the
            # first offset reaching the maximum (strict >), as np.argmax over the window would
            slices = [xp[(slice(None),) + sl] for _, sl in
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

    def backward(self, g):
        nd = len(self.pool)
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


def _pool(kind, x, pool_size, strides, padding, who):
    x = M._t(x, who)
    nd = x.ndim - 2
    if nd < 1:
        raise ValueError(f"{who}: expected input of rank ≥ 3 (batch, spatial…, channels), received {x.shape}")
    pool = _tuple(pool_size, nd, "pool_size", who)
    strides = pool if strides is None else _tuple(strides, nd, "strides", who)
    if padding not in ("valid", "same"):
        raise ValueError(f"{who}: padding must be 'valid' or 'same', received {padding!r}")
    pads = _pad_amounts(x.shape[1:1 + nd], pool, strides, (1,) * nd, padding)
    if padding == "valid" and any(n < p for n, p in zip(x.shape[1:1 + nd], pool)):
        raise ValueError(f"{who}: the input's spatial size {x.shape[1:1 + nd]} is smaller than "
                         f"pool_size {pool}")
    return Pool.apply(x, kind=kind, pool=pool, strides=strides, pads=pads)


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
        nd = k.ndim - 2
        ksz, f, c = k.shape[:nd], k.shape[-2], k.shape[-1]
        n = x.shape[1:1 + nd]
        self.x, self.k, self.n = x, k, n
        cols = _offset_major(x.reshape(-1, c), k.reshape(int(np.prod(ksz)), f, c))   # (kh·kw, M, f)
        yfull = np.zeros((x.shape[0],) + tuple(self.alloc) + (f,), dtype=cols.dtype)
        blk = (x.shape[0],) + tuple(n) + (f,)
        for i, (offs, sl) in enumerate(_offset_slices(ksz, self.strides, self.dilation, n)):
            yfull[(slice(None),) + sl] += cols[i].reshape(blk)
        y = yfull[(slice(None),) + self.crop]
        if b is not None:
            y = y + b
        return np.ascontiguousarray(y)

    def backward(self, g):
        nd = self.k.ndim - 2
        k, x = self.k, self.x
        ksz, f, c = k.shape[:nd], k.shape[-2], k.shape[-1]
        kin = int(np.prod(ksz)) * f
        gp = np.zeros((g.shape[0],) + tuple(self.alloc) + (f,), dtype=g.dtype)
        gp[(slice(None),) + self.crop] = g
        win = _windows(gp, ksz, self.strides, self.dilation, self.n).reshape(-1, kin)
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


del math
