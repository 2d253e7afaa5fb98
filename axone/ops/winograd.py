"""3×3, stride-1 convolution in Winograd's minimal filtering forms F(2×2, 3×3) and F(4×4, 3×3)
(Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).

The padded input is cut into 4×4 tiles d_p overlapping by two rows and columns (tile p = (n, th,
tw) starts at padded row 2·th, column 2·tw); each tile gives 2×2 outputs.  With

    Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]    G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
    Aᵀ = [1 1 1 0; 0 1 −1 −1]

and, for each of the 16 positions ξ = (r, s) of a transformed tile,

    V[ξ] = (Bᵀ d_p B)[ξ]       (P tiles × C)          the input transform
    U[ξ] = (G g Gᵀ)[ξ]         (C × F)                the kernel transform
    M[ξ] = V[ξ] · U[ξ]         (P × F)                16 matrix products
    Y_p  = Aᵀ M_p A  (+ bias)                          the output transform

the output is the convolution's: y = Σ_c g ⋆ x exactly in real arithmetic, in 16·C·F
multiplications per tile where the im2col product takes 36·C·F (2.25× fewer).  The backward pass
is the adjoint of each linear step, the same matrices transposed:

    dM_p = A dY_p Aᵀ                                   (winograd_output_grad)
    dU[ξ] = V[ξ]ᵀ · dM[ξ],    dL/dg = Gᵀ dU G            (16 products, then the kernel's adjoint)
    dV[ξ] = dM[ξ] · U[ξ]ᵀ,    dL/dd_p = B dV_p Bᵀ        (16 products, then winograd_input_grad:
                                                        the tiles' 4×4 blocks added in tile order)

so the gradients are those of the computed forward.  The transforms' rounding (sums of up to
nine terms with coefficients ±1, ±½) makes the float32 result differ from the direct sum by a
few units of float32 rounding of Σ|x|·|g| (tests/conv/test_winograd.py states the bound).

F(4×4, 3×3) is the same with 6×6 tiles overlapping by two, starting at padded row 4·th and
column 4·tw, each giving 4×4 outputs, and the matrices of the Toom-Cook construction on the
points 0, 1, −1, ½, −2, ∞ (``_BT4``, ``_G4``, ``_AT4``): 36 products, 36·C·F multiplications
per 16 outputs where F(2×2) takes 64 (1.78× fewer).  These points give about a quarter of the
float32 error of the usual 0, ±1, ±2 (measured; Barabasz et al., "Error analysis and improving
the accuracy of Winograd convolution for deep neural networks", 2020, on choosing them); the
error is still larger than F(2×2)'s (tests/conv/test_winograd.py states both bounds).
``tile_size`` picks the form.

The four data transforms and the kernel transform are compiled (``winograd_input``,
``winograd_output``, ``winograd_output_grad``, ``winograd_input_grad``, ``winograd_kernel`` of
axone/_kernels.c; runs of tiles, or of input channels, on the pool's threads); the NumPy forms
below take the same operations in the same order, so both give the same bits.  Conv (ops/conv.py) takes this lowering where ``eligible`` says so.
"""
import os
import sys
import warnings

import numpy as np

from . import _compiled, _parallel

__all__ = ["eligible", "set_forms", "tiles", "tile_size", "kernel_transform", "kernel_transform_grad", "input_transform",
           "input_transform_grad", "output_transform", "output_transform_grad"]

# The input and filter counts from which the Winograd lowering is faster than the im2col product
# (measured on a 2-core AVX2 machine, benchmarks/bench_conv.py --winograd); below them the
# transforms' memory traffic outweighs the products saved.
MIN_CHANNELS = 16
MIN_FILTERS = 16
# ... and the 2×2 output tiles of the node (all its samples) from which it pays: with few tiles
# the kernel transform U (16/9 of the kernel's size, out of cache for a large kernel) and the 16
# short products cost more than the one im2col product.  One image, float32, one predict call:
# 16 tiles of 7×7×512 → 512 took 5.4 ms against im2col's 3.0 ms and 25 tiles of 10×10×256 1.43
# against 1.21, where 49 tiles of 14×14×256 took 2.25 against 2.83 and 49 tiles of 14×14×512
# 7.6 against 9.0; a kernel of at most SMALL_KERNEL C·F entries (its U stays in cache) pays from
# MIN_TILES_SMALL tiles on (16 tiles of 8×8×128: 0.27 ms against 0.39).
MIN_TILES = 32
SMALL_KERNEL = 1 << 14
MIN_TILES_SMALL = 4
ENABLED = True

# F(4×4, 3×3) — 36 products over 6×6 tiles giving 4×4 outputs, 1.78× fewer multiply-adds than
# F(2×2, 3×3) — from an output of F4_MIN_OUT on each side and F4_MIN_TILES 4×4 tiles over the
# batch.  Measured (2-core AVX2, float32, one training step of the node, F(2×2) → F(4×4)):
# 16×48×48×128 → 128 318 → 232 ms, 16×56×56×64 → 64 249 → 121, 32×12×12×128 31 → 22,
# 32×8×8×128 13.6 → 11.8; no gain on 7×7 outputs (16×7×7×512: 85 → 93) or on one image of
# 14×14×256 (16 tiles: 10.8 → 11.8), where the transforms' work is not paid back.
F4 = True
F4_MIN_OUT = 8
F4_MIN_CHANNELS = 16
F4_MIN_TILES = 64


def set_forms(value):
    """The Winograd forms convolutions may take: "4" both F(2×2, 3×3) and F(4×4, 3×3) (the
    default), "2" F(2×2, 3×3) alone (its float32 error is about a tenth of F(4×4)'s), "0"
    neither (every convolution through im2col).  ``AXONE_WINOGRAD`` sets it at import."""
    global ENABLED, F4
    text = str(value).strip()
    if text not in ("0", "2", "4"):
        raise ValueError(f"Winograd forms: expected '0', '2' or '4', received {value!r}")
    ENABLED, F4 = text != "0", text == "4"
    conv = sys.modules.get(__name__.rsplit(".", 1)[0] + ".conv")
    plans = getattr(conv, "_FORWARD_PLANS", None)
    if plans is not None:
        plans.clear()                          # the forward plans record the form they took


try:
    set_forms(os.environ.get("AXONE_WINOGRAD", "4") or "4")
except ValueError as e:
    warnings.warn(f"AXONE_WINOGRAD is ignored: {e}", RuntimeWarning, stacklevel=2)

_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_BT2 = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float)
_AT2 = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float)
_BT4 = np.array([[1, -3 / 2, -2, 3 / 2, 1, 0],
                 [0, -1, 1 / 2, 5 / 2, 1, 0],
                 [0, 1, -5 / 2, 1 / 2, 1, 0],
                 [0, -2, -1, 2, 1, 0],
                 [0, 1 / 2, -1, -1 / 2, 1, 0],
                 [0, 1, -3 / 2, -2, 3 / 2, 1]], float)
_G4 = np.array([[1, 0, 0],
                 [1 / 3, 1 / 3, 1 / 3],
                 [-1 / 3, 1 / 3, -1 / 3],
                 [-16 / 15, -8 / 15, -4 / 15],
                 [1 / 15, -2 / 15, 4 / 15],
                 [0, 0, 1]], float)
_AT4 = np.array([[1, 1, 1, 1, 1, 0],
                 [0, 1, -1, 1 / 2, -2, 0],
                 [0, 1, 1, 1 / 4, 4, 0],
                 [0, 1, -1, 1 / 8, -8, 1]], float)


def eligible(xshape, kshape, strides, dilation, pads, groups, dtype):
    """Whether Conv takes the Winograd lowering: a 2-D 3×3 kernel, strides and dilation 1, no
    groups, pads of at most 2 on each side, float32 or float64, at least MIN_CHANNELS inputs and
    MIN_FILTERS filters, an output of at least 2×2 in at least MIN_TILES tiles over the batch
    (MIN_TILES_SMALL for a kernel of at most SMALL_KERNEL C·F entries),
    and the compiled transforms built."""
    if not ENABLED or len(kshape) != 4 or tuple(kshape[:2]) != (3, 3) or groups != 1:
        return False
    if tuple(strides) != (1, 1) or tuple(dilation) != (1, 1):
        return False
    if dtype not in (np.float32, np.float64) or kshape[2] < MIN_CHANNELS or kshape[3] < MIN_FILTERS:
        return False
    if any(lo > 2 or hi > 2 for lo, hi in pads):
        return False
    ho = xshape[1] + pads[0][0] + pads[0][1] - 2
    wo = xshape[2] + pads[1][0] + pads[1][1] - 2
    th, tw = tiles((ho, wo))
    least = MIN_TILES_SMALL if kshape[2] * kshape[3] <= SMALL_KERNEL else MIN_TILES
    return (ho >= 2 and wo >= 2 and xshape[0] * th * tw >= least
            and _compiled.kernels("winograd_input") is not None)


def tiles(out, m=2):
    """(TH, TW): the m×m output tiles that cover an output of shape ``out`` (Ho, Wo)."""
    return -(-out[0] // m), -(-out[1] // m)


def tile_size(xshape, kshape, pads):
    """The outputs per tile side of an eligible convolution: 4 (F(4×4, 3×3)) where the output
    is at least F4_MIN_OUT on each side, the layer has at least F4_MIN_CHANNELS inputs and
    filters and F4 is on, else 2."""
    ho = xshape[1] + pads[0][0] + pads[0][1] - 2
    wo = xshape[2] + pads[1][0] + pads[1][1] - 2
    if (F4 and min(ho, wo) >= F4_MIN_OUT and min(kshape[2], kshape[3]) >= F4_MIN_CHANNELS
            and xshape[0] * tiles((ho, wo), 4)[0] * tiles((ho, wo), 4)[1] >= F4_MIN_TILES):
        return 4
    return 2


def _matrices(m):
    """(Bᵀ, G, Aᵀ) of F(m×m, 3×3) as float64 arrays."""
    return (_BT4, _G4, _AT4) if m == 4 else (_BT2, _G, _AT2)


def _combine(mx, xs, dtype):
    """[Σ_i mx[r, i]·xs[i] for each row r]: over the nonzero coefficients, from the left, the
    first term a product alone — the order of the compiled F(4×4, 3×3) transforms' W4_ROWS and
    W4_COLS, so both give the same bits."""
    out = []
    for row in mx:
        acc = None
        for c, x in zip(row, xs):
            if c == 0:
                continue
            term = dtype.type(c) * x
            acc = term if acc is None else acc + term
        out.append(acc)
    return out


def _parts():
    """Threads the compiled transforms may use: one inside a batch block (the blocks already
    use the threads), else axone's count."""
    return 1 if _parallel.inside_block() else max(1, _parallel._threads())


# ------------------------------------------------------------------ the kernel transform
def kernel_transform(g, out=None, m=2):
    """U ((m+2)², C, F) = G g Gᵀ for a (3, 3, C, F) kernel, ξ = (m+2)·r + s: one pass of the
    compiled module (``winograd_kernel``, runs of input channels on the pool's threads) when it
    is built, else the NumPy form (for F(2×2) its two products with G, the same sums from the
    left).  Into ``out`` when given."""
    a = m + 2
    k = _compiled.kernels("winograd_kernel")
    if k is not None and g.dtype in (np.float32, np.float64):
        u = np.empty((a * a,) + g.shape[2:], g.dtype) if out is None else out
        k.winograd_kernel(np.ascontiguousarray(g), u, _parts(), m)
        return u
    u = _kernel_transform_np(g) if m == 2 else _kernel_transform4_np(g)
    if out is None:
        return u
    out[...] = u
    return out


def _kernel_transform_np(g):
    G = _G.astype(g.dtype)
    cf = g.shape[2:]
    t = np.matmul(G, np.ascontiguousarray(g).reshape(3, -1)).reshape(4, 3, -1)   # (4 r, 3 j, C·F)
    u = np.matmul(G, t)                                  # (4 r, 4 s, C·F): row r is G·t[r]
    return u.reshape((16,) + cf)


def _kernel_transform4_np(g):
    dt = g.dtype
    t = _combine(_G4, [g[i] for i in range(3)], dt)                      # (3 j, C, F) per row r
    u = np.empty((36,) + g.shape[2:], dt)
    for r in range(6):
        for s_, v in enumerate(_combine(_G4, [t[r][j] for j in range(3)], dt)):
            u[6 * r + s_] = v
    return u


def kernel_transform_grad(du, m=2):
    """dL/dg (3, 3, C, F) = Gᵀ dU G for dU ((m+2)², C, F): the adjoint of kernel_transform."""
    a = m + 2
    G = _matrices(m)[1].astype(du.dtype)
    d4 = du.reshape((a, a) + du.shape[1:])
    t = np.tensordot(G.T, d4, axes=(1, 0))               # (3 i, a s, C, F)
    g = np.tensordot(G.T, t, axes=(1, 1))                # (3 j, 3 i, C, F)
    return np.ascontiguousarray(g.transpose(1, 0, 2, 3))


# ------------------------------------------------------------------ the data transforms
def input_transform(x, pt, pl, th, tw, out=None, m=2):
    """V ((m+2)², N·TH·TW, C) = Bᵀ d_p B of the (m+2)×(m+2) tiles of x (N, H, W, C) padded by
    ``pt`` rows above and ``pl`` columns left (zeros elsewhere too)."""
    n, c = x.shape[0], x.shape[-1]
    if out is None:
        out = np.empty(((m + 2) ** 2, n * th * tw, c), x.dtype)
    k = _compiled.kernels("winograd_input")
    if k is not None and x.flags.c_contiguous:
        k.winograd_input(x, out, pt, pl, th, tw, _parts(), m)
        return out
    if m == 4:
        return _input_transform4_np(x, pt, pl, th, tw, out)
    return _input_transform_np(x, pt, pl, th, tw, out)


def _input_transform_np(x, pt, pl, th, tw, out):
    n, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (pt, 2 * th + 2 - h - pt), (pl, 2 * tw + 2 - w - pl), (0, 0)))
    d = [xp[:, i:i + 2 * th:2] for i in range(4)]                        # rows i of each tile
    t = [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]            # Bᵀ along the rows
    v = out.reshape(4, 4, n, th, tw, c)
    for r in range(4):
        e = [t[r][:, :, j:j + 2 * tw:2] for j in range(4)]
        np.subtract(e[0], e[2], out=v[r, 0])                            # then along the columns
        np.add(e[1], e[2], out=v[r, 1])
        np.subtract(e[2], e[1], out=v[r, 2])
        np.subtract(e[1], e[3], out=v[r, 3])
    return out


def _input_transform4_np(x, pt, pl, th, tw, out):
    n, h, w, c = x.shape
    dt = x.dtype
    xp = np.pad(x, ((0, 0), (pt, 4 * th + 2 - h - pt), (pl, 4 * tw + 2 - w - pl), (0, 0)))
    d = [xp[:, i:i + 4 * th:4] for i in range(6)]                        # rows i of each tile
    t = _combine(_BT4, d, dt)                                            # Bᵀ along the rows
    v = out.reshape(6, 6, n, th, tw, c)
    for r in range(6):
        e = [t[r][:, :, j:j + 4 * tw:4] for j in range(6)]
        for s_, val in enumerate(_combine(_BT4, e, dt)):                 # then the columns
            v[r, s_] = val
    return out


def output_transform(m, y, bias=None, relu=False, tile=2):
    """y (N, Ho, Wo, F) = Aᵀ M_p A of each tile×tile block (its positions inside y), + bias,
    then max(·, 0) with ``relu``; m ((tile+2)², N·TH·TW, F)."""
    k = _compiled.kernels("winograd_output")
    if k is not None and m.flags.c_contiguous and y.flags.c_contiguous and (
            bias is None or (bias.flags.c_contiguous and bias.dtype == y.dtype)):
        k.winograd_output(m, y, bias, relu, _parts(), tile)
        return y
    if tile == 4:
        return _output_transform4_np(m, y, bias, relu)
    return _output_transform_np(m, y, bias, relu)


def _output_transform4_np(m, y, bias, relu):
    n, ho, wo, f = y.shape
    dt = y.dtype
    th, tw = tiles((ho, wo), 4)
    m6 = m.reshape(6, 6, n, th, tw, f)
    t = _combine(_AT4, [m6[r] for r in range(6)], dt)                    # Aᵀ along the rows
    full = np.empty((n, 4 * th, 4 * tw, f), dt)
    for a in range(4):
        for b, val in enumerate(_combine(_AT4, [t[a][s_] for s_ in range(6)], dt)):
            full[:, a::4, b::4] = val                                    # then the columns
    res = full[:, :ho, :wo]
    if bias is not None:
        res = res + bias
    if relu:
        res = np.where(res < 0, np.zeros((), dt), res)
    y[...] = res
    return y


def _output_transform_np(m, y, bias, relu):
    n, ho, wo, f = y.shape
    th, tw = tiles((ho, wo))
    m4 = m.reshape(4, 4, n, th, tw, f)
    t = [(m4[0] + m4[1]) + m4[2], (m4[1] - m4[2]) - m4[3]]               # Aᵀ along the rows
    full = np.empty((n, 2 * th, 2 * tw, f), y.dtype)
    for a in range(2):
        full[:, a::2, 0::2] = (t[a][0] + t[a][1]) + t[a][2]              # then along the columns
        full[:, a::2, 1::2] = (t[a][1] - t[a][2]) - t[a][3]
    res = full[:, :ho, :wo]
    if bias is not None:
        res = res + bias
    if relu:
        res = np.where(res < 0, np.zeros((), y.dtype), res)
    y[...] = res
    return y


def output_transform_grad(gy, out=None, m=2):
    """dM ((m+2)², N·TH·TW, F) = A gY_p Aᵀ of the m×m tiles of gy (N, Ho, Wo, F), zeros beyond
    it: the adjoint of output_transform (before its bias and ReLU)."""
    n, ho, wo, f = gy.shape
    th, tw = tiles((ho, wo), m)
    if out is None:
        out = np.empty(((m + 2) ** 2, n * th * tw, f), gy.dtype)
    k = _compiled.kernels("winograd_output_grad")
    if k is not None and gy.flags.c_contiguous:
        k.winograd_output_grad(gy, out, _parts(), m)
        return out
    if m == 4:
        return _output_transform_grad4_np(gy, out)
    return _output_transform_grad_np(gy, out)


def _output_transform_grad4_np(gy, out):
    n, ho, wo, f = gy.shape
    dt = gy.dtype
    th, tw = tiles((ho, wo), 4)
    gp = np.pad(gy, ((0, 0), (0, 4 * th - ho), (0, 4 * tw - wo), (0, 0)))
    a_ = _AT4.T
    u = _combine(a_, [gp[:, a::4] for a in range(4)], dt)               # A along the rows
    mm = out.reshape(6, 6, n, th, tw, f)
    for r in range(6):
        e = [u[r][:, :, b::4] for b in range(4)]
        for s_, val in enumerate(_combine(a_, e, dt)):                   # then the columns
            mm[r, s_] = val
    return out


def _output_transform_grad_np(gy, out):
    n, ho, wo, f = gy.shape
    th, tw = tiles((ho, wo))
    gp = np.pad(gy, ((0, 0), (0, 2 * th - ho), (0, 2 * tw - wo), (0, 0)))
    g = [gp[:, a::2] for a in range(2)]
    u = [g[0], g[0] + g[1], g[0] - g[1], -g[1]]                         # A along the rows
    m = out.reshape(4, 4, n, th, tw, f)
    for r in range(4):
        e = [u[r][:, :, b::2] for b in range(2)]
        m[r, 0] = e[0]                                                  # then along the columns
        np.add(e[0], e[1], out=m[r, 1])
        np.subtract(e[0], e[1], out=m[r, 2])
        np.negative(e[1], out=m[r, 3])
    return out


def input_transform_grad(dv, gx, pt, pl, th, tw, m=2):
    """gx (N, H, W, C) += B dV_p Bᵀ of each tile at its positions inside gx, the tiles in order
    p (where two overlap, the earlier tile's block is added first): the adjoint of
    input_transform."""
    k = _compiled.kernels("winograd_input_grad")
    if k is not None and dv.flags.c_contiguous and gx.flags.c_contiguous:
        k.winograd_input_grad(dv, gx, pt, pl, th, tw, _parts(), m)
        return gx
    if m == 4:
        return _input_transform_grad4_np(dv, gx, pt, pl, th, tw)
    return _input_transform_grad_np(dv, gx, pt, pl, th, tw)


def _input_transform_grad4_np(dv, gx, pt, pl, th, tw):
    n, h, w, c = gx.shape
    dt = gx.dtype
    b_ = _BT4.T
    w6 = dv.reshape(6, 6, n, th, tw, c)
    z = _combine(b_, [w6[r] for r in range(6)], dt)                      # B along the rows
    dd = [_combine(b_, [z[i][s_] for s_ in range(6)], dt) for i in range(6)]   # the columns
    buf = np.pad(gx, ((0, 0), (pt, 4 * th + 2 - h - pt), (pl, 4 * tw + 2 - w - pl), (0, 0)))
    # a position gets blocks from up to four tiles; taking the offsets (i, j) from the last,
    # each position's blocks arrive in tile order, as the compiled loop adds them
    for i in range(5, -1, -1):
        for j in range(5, -1, -1):
            buf[:, i:i + 4 * th:4, j:j + 4 * tw:4] += dd[i][j]
    gx[...] = buf[:, pt:pt + h, pl:pl + w]
    return gx


def _input_transform_grad_np(dv, gx, pt, pl, th, tw):
    n, h, w, c = gx.shape
    w4 = dv.reshape(4, 4, n, th, tw, c)
    z = [w4[0], (w4[1] - w4[2]) + w4[3], (w4[1] + w4[2]) - w4[0], -w4[3]]   # B along the rows
    dd = [[None] * 4 for _ in range(4)]
    for i in range(4):
        e = z[i]
        dd[i] = [e[0], (e[1] - e[2]) + e[3], (e[1] + e[2]) - e[0], -e[3]]   # then the columns
    buf = np.pad(gx, ((0, 0), (pt, 2 * th + 2 - h - pt), (pl, 2 * tw + 2 - w - pl), (0, 0)))
    # a position gets blocks from up to four tiles; taking the offsets (i, j) from the last,
    # each position's blocks arrive in tile order, as the compiled loop adds them
    for i in range(3, -1, -1):
        for j in range(3, -1, -1):
            buf[:, i:i + 2 * th:2, j:j + 2 * tw:2] += dd[i][j]
    gx[...] = buf[:, pt:pt + h, pl:pl + w]
    return gx
