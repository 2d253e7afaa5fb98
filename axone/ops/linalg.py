"""Linear algebra under its ``keras.ops.linalg`` names, over the last two axes (batches broadcast).

Each differentiable op is a :class:`~axone.autograd.Function` whose backward is the standard
matrix-calculus formula written under it (the same conventions as PyTorch, which Keras's torch
backend differentiates with):  G denotes dL/d(output), Aᵀ the transpose over the last two axes.
Factorizations of symmetric input (``cholesky``, ``eigh``) read one triangle and give the
symmetric gradient ½(S + Sᵀ), as PyTorch does.  ``eig`` (complex results), ``matrix_rank`` and
the pivots of ``lu_factor`` carry no gradient.

``jvp`` is forward-mode differentiation: J·t built exactly from reverse passes, one per output
element (the vector-Jacobian product is linear in its cotangent, so the rows of J are the
gradients of the output's coordinates).
"""
import numpy as np

from .. import backend
from ..autograd.function import Function, no_grad, unbroadcast
from ..autograd.tensor import Tensor
from ..device import array_module
from . import math as M
from .numpy import norm as _vector_matrix_norm

__all__ = ["cholesky", "cholesky_inverse", "det", "eig", "eigh", "inv", "jvp", "lstsq",
           "lu_factor", "matrix_rank", "norm", "pinv", "qr", "solve", "solve_triangular", "svd",
           "logdet"]


def _T(a):
    return a.swapaxes(-1, -2)


def _float_in(x, op):
    x = M._t(x, op)
    if x.data.dtype.kind not in "f":
        if x.data.dtype.kind == "c":
            raise TypeError(f"{op}: complex input is not supported by axone, received dtype "
                            f"{x.data.dtype}")
        x = Tensor(x.data.astype(backend.floatx()))
    return x


def _matrix(x, op, square=True):
    x = _float_in(x, op)
    if x.ndim < 2:
        raise ValueError(f"{op}: expected input of rank >= 2 (a matrix or a batch of matrices), "
                         f"received shape {x.shape}")
    if square and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{op}: expected square matrices, received shape {x.shape}")
    return x


def _same_dtype(a, b):
    if a.dtype != b.dtype:
        dt = np.result_type(a.dtype, b.dtype)
        a, b = M.cast(a, dt), M.cast(b, dt)
    return a, b


def _linalg_error(op, e):
    return ValueError(f"{op}: {e}")


# ------------------------------------------------------------------ inverse, det
class Inv(Function):
    """Y = A⁻¹;  dL/dA = −Yᵀ·G·Yᵀ."""

    def forward(self, a):
        xp = array_module(a)
        try:
            self.y = y = xp.linalg.inv(a)
        except np.linalg.LinAlgError as e:
            raise _linalg_error("inv", e) from None
        return y

    def backward(self, g):
        yt = _T(self.y)
        return (-(yt @ g @ yt),)


def inv(x):
    """The inverse of each square matrix (a singular matrix raises ValueError)."""
    return Inv.apply(_matrix(x, "inv"))


class Det(Function):
    """d = det A;  dL/dA = g·d·A⁻ᵀ (for a singular A, g times the cofactor matrix, from the SVD)."""

    def forward(self, a):
        xp = array_module(a)
        self.a = a
        self.d = d = xp.linalg.det(a)
        return xp.asarray(d, dtype=a.dtype)

    def backward(self, g):
        xp = array_module(g)
        a = self.a
        try:
            cof = self.d[..., None, None] * _T(xp.linalg.inv(a))
        except np.linalg.LinAlgError:
            cof = _cofactor(a)
        return (g[..., None, None] * cof,)


def _cofactor(a):
    """cof(A) = det(A)·A⁻ᵀ extended to singular A through A = U·diag(s)·Vᵀ:
    cof(A) = det(U)·det(V)·U·diag(Π_{j≠i} s_j)·Vᵀ."""
    xp = array_module(a)
    u, s, vt = xp.linalg.svd(a)
    n = s.shape[-1]
    prods = xp.stack([xp.concatenate([s[..., :i], s[..., i + 1:]], axis=-1).prod(axis=-1)
                      for i in range(n)], axis=-1)
    sign = xp.linalg.det(u) * xp.linalg.det(vt)
    return sign[..., None, None] * ((u * prods[..., None, :]) @ vt)


def det(x):
    """The determinant of each square matrix."""
    return Det.apply(_matrix(x, "det"))


class LogDet(Function):
    """y = ln det A (NaN where det A < 0, −inf where 0, as ``torch.logdet``);  dL/dA = g·A⁻ᵀ."""

    def forward(self, a):
        xp = array_module(a)
        self.a = a
        sign, logabs = xp.linalg.slogdet(a)
        with np.errstate(invalid="ignore"):
            return xp.where(sign < 0, np.nan, xp.where(sign == 0, -np.inf, logabs)).astype(a.dtype)

    def backward(self, g):
        xp = array_module(g)
        return (g[..., None, None] * _T(xp.linalg.inv(self.a)),)


def logdet(x):
    """ln det x of each square matrix (Keras ``ops.logdet``)."""
    return LogDet.apply(_matrix(x, "logdet"))


# ------------------------------------------------------------------------- solve
def _vector_rhs(a, b):
    """Whether b is a vector right-hand side (PyTorch's rule): rank 1, or one rank less than a
    with a's batch shape."""
    return b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])


class Solve(Function):
    """X = A⁻¹B;  dL/dB = A⁻ᵀG,  dL/dA = −(dL/dB)·Xᵀ."""

    def forward(self, a, b):
        xp = array_module(a, b)
        self.a, self.sb = a, b.shape
        try:
            self.x = x = xp.linalg.solve(a, b)
        except np.linalg.LinAlgError as e:
            raise _linalg_error("solve", e) from None
        return x

    def backward(self, g):
        xp = array_module(g)
        a, x = self.a, self.x
        gb = xp.linalg.solve(_T(a), g)
        ga = -(gb @ _T(x)) if self.needs[0] else None
        if ga is not None:
            ga = unbroadcast(ga, a.shape)
        return ga, unbroadcast(gb, self.sb)


def _solve_args(a, b, op):
    a = _matrix(a, op)
    b = _float_in(b, op)
    a, b = _same_dtype(a, b)
    if b.ndim == 0:
        raise ValueError(f"{op}: b must have rank >= 1, received a scalar")
    vec = _vector_rhs(a, b)
    if b.shape[-1 if vec else -2] != a.shape[-1]:
        raise ValueError(f"{op}: a and b are incompatible: a has shape {a.shape} (n = "
                         f"{a.shape[-1]}), b has shape {b.shape}")
    return a, b, vec


def solve(a, b):
    """The solution X of A·X = B (B a vector or a matrix of right-hand sides)."""
    a, b, vec = _solve_args(a, b, "solve")
    if vec:
        return M.squeeze(Solve.apply(a, M.expand_dims(b, -1)), -1)
    return Solve.apply(a, b)


class SolveTriangular(Function):
    """X = T⁻¹B, T the lower (or upper) triangle of A;  dL/dB = T⁻ᵀG,
    dL/dA = tril(−(dL/dB)·Xᵀ) (triu for upper): the other triangle is not read."""

    def forward(self, a, b):
        xp = array_module(a, b)
        self.sa, self.sb = a.shape, b.shape
        self.t = t = xp.tril(a) if self.lower else xp.triu(a)
        try:
            self.x = x = _triangular_solve(t, b, self.lower)
        except np.linalg.LinAlgError as e:
            raise _linalg_error("solve_triangular", e) from None
        return x

    def backward(self, g):
        xp = array_module(g)
        gb = _triangular_solve(_T(self.t), g, not self.lower)
        ga = None
        if self.needs[0]:
            ga = -(gb @ _T(self.x))
            ga = unbroadcast(xp.tril(ga) if self.lower else xp.triu(ga), self.sa)
        return ga, unbroadcast(gb, self.sb)


def _triangular_solve(t, b, lower):
    """T⁻¹B for triangular T: SciPy's triangular solver for single matrices when it is
    installed, else a general solve of the (already masked) triangle."""
    xp = array_module(t, b)
    if xp is np and t.ndim == 2 and b.ndim == 2:
        try:
            from scipy.linalg import solve_triangular as st
        except ImportError:
            st = None
        if st is not None:
            if np.any(np.diagonal(t) == 0):
                raise np.linalg.LinAlgError("Singular matrix")
            return st(t, b, lower=lower, check_finite=False).astype(np.result_type(t, b))
    return xp.linalg.solve(t, b)


def solve_triangular(a, b, lower=False):
    """The solution X of T·X = B, T the upper triangle of A (the lower one with ``lower=True``)."""
    a, b, vec = _solve_args(a, b, "solve_triangular")
    if vec:
        return M.squeeze(SolveTriangular.apply(a, M.expand_dims(b, -1), lower=bool(lower)), -1)
    return SolveTriangular.apply(a, b, lower=bool(lower))


# ---------------------------------------------------------------------- cholesky
def _phi(x):
    """The lower triangle of x with its diagonal halved."""
    xp = array_module(x)
    out = xp.tril(x)
    d = xp.einsum("...ii->...i", out)
    d *= 0.5
    return out


class Cholesky(Function):
    """A = L·Lᵀ (L lower triangular, from A's lower triangle);  with P = Φ(Lᵀ·tril(G)),
    Φ the lower triangle with halved diagonal, S = L⁻ᵀ·P·L⁻¹:  dL/dA = ½(S + Sᵀ)."""

    def forward(self, a):
        xp = array_module(a)
        try:
            self.l = l = xp.linalg.cholesky(a)
        except np.linalg.LinAlgError as e:
            raise ValueError(f"cholesky: Cholesky decomposition failed: {e} (the input must be "
                             f"symmetric positive definite)") from None
        return l

    def backward(self, g):
        xp = array_module(g)
        l = self.l
        p = _phi(_T(l) @ xp.tril(g))
        lt = _T(l)
        s = xp.linalg.solve(lt, _T(xp.linalg.solve(lt, _T(p))))
        return (0.5 * (s + _T(s)),)


def cholesky(x, upper=False):
    """The Cholesky factor L of each symmetric positive-definite matrix (A = L·Lᵀ); its
    transpose U (A = Uᵀ·U) with ``upper=True``."""
    x = _matrix(x, "cholesky")
    l = Cholesky.apply(x)
    return M.transpose(l, _swap_last(l.ndim)) if upper else l


def _swap_last(ndim):
    ax = list(range(ndim))
    ax[-1], ax[-2] = ax[-2], ax[-1]
    return tuple(ax)


def cholesky_inverse(x, upper=False):
    """(L·Lᵀ)⁻¹ from the Cholesky factor L (or (Uᵀ·U)⁻¹ from U with ``upper=True``):
    L⁻¹ by a triangular solve, then L⁻ᵀ·L⁻¹."""
    x = _matrix(x, "cholesky_inverse")
    xp = array_module(x.data)
    n = x.shape[-1]
    eye = Tensor(xp.broadcast_to(xp.eye(n, dtype=x.dtype), x.shape).copy())
    li = solve_triangular(x, eye, lower=not upper)       # L⁻¹ (or U⁻¹)
    tr = _swap_last(x.ndim)
    if upper:
        return M.matmul(li, M.transpose(li, tr))         # U⁻¹·U⁻ᵀ
    return M.matmul(M.transpose(li, tr), li)             # L⁻ᵀ·L⁻¹


# ---------------------------------------------------------------- eigenproblems
class Eigh(Function):
    """A = V·diag(w)·Vᵀ (from A's lower triangle, w ascending).  With G_w, G_V:
    K = ½(Vᵀ·G_V − G_Vᵀ·V) / E,  E_ij = w_j − w_i (i ≠ j),  diag(K) = G_w;  dL/dA = V·K·Vᵀ."""

    def forward(self, a):
        xp = array_module(a)
        w, v = xp.linalg.eigh(a)
        self.w, self.v = w, v
        return xp.concatenate([w[..., None, :], v], axis=-2)   # one array: row 0 holds w

    def backward(self, g):
        xp = array_module(g)
        gw, gv = g[..., 0, :], g[..., 1:, :]
        w, v = self.w, self.v
        vg = _T(v) @ gv
        k = 0.5 * (vg - _T(vg))
        e = w[..., None, :] - w[..., :, None]
        n = w.shape[-1]
        idx = xp.arange(n)
        e[..., idx, idx] = 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            k = k / e
        k[..., idx, idx] = gw
        return (v @ k @ _T(v),)


def eigh(x):
    """Eigenvalues (ascending) and eigenvectors (columns) of each symmetric matrix, from its
    lower triangle: ``(w, v)`` with x·v = v·diag(w)."""
    x = _matrix(x, "eigh")
    wv = Eigh.apply(x)
    return wv[..., 0, :], wv[..., 1:, :]


def eig(x):
    """Eigenvalues and unit eigenvectors of each square matrix, complex (no gradient).

    The eigenvectors are those LAPACK's ``geev`` returns (unit norm; their complex phase may
    differ from another library's)."""
    x = _matrix(x, "eig")
    xp = array_module(x.data)
    general = getattr(xp.linalg, "eig", None)     # CuPy has none: the host computes it
    a = x.data if general is not None else xp.asnumpy(x.data)
    try:
        w, v = (general or np.linalg.eig)(a)
    except np.linalg.LinAlgError as e:
        raise _linalg_error("eig", e) from None
    ct = np.result_type(x.data.dtype, np.complex64)
    if general is None:
        w, v = xp.asarray(w), xp.asarray(v)
    return Tensor(w.astype(ct)), Tensor(v.astype(ct))


# ----------------------------------------------------------------------- svd, qr
class _Factorization(Function):
    """A factorization with several outputs as one node: ``factor(a)`` returns the outputs,
    which travel packed side by side along one last axis; the public function hands them out
    as slices.  ``grad(*G)`` receives each output's gradient (zero for one the loss did not
    use) and returns dL/dA."""

    def forward(self, a):
        xp = array_module(a)
        outs = self.factor(a)
        batch = a.shape[:-2]
        self.shapes = self.info["shapes"] = [o.shape[len(batch):] for o in outs]
        dt = np.result_type(*[o.dtype for o in outs])
        return xp.concatenate([o.reshape(batch + (-1,)).astype(dt, copy=False) for o in outs],
                              axis=-1)

    def backward(self, g):
        batch = g.shape[:-1]
        parts, i = [], 0
        for sh in self.shapes:
            n = int(np.prod(sh))
            parts.append(g[..., i:i + n].reshape(batch + sh))
            i += n
        return (self.grad(*parts),)


def _factor_outputs(a, node_cls, **params):
    """The outputs of a multi-output factorization node, each a differentiable slice of it."""
    info = {}
    packed = node_cls.apply(a, info=info, **params)
    shapes = info["shapes"]
    batch = a.shape[:-2]
    outs, i = [], 0
    for sh in shapes:
        n = int(np.prod(sh))
        outs.append(M.reshape(packed[..., i:i + n], batch + sh))
        i += n
    return tuple(outs)


class Svd(_Factorization):
    """A = U·diag(s)·Vᵀ, k = min(m, n) singular values (descending).  With skew(X) = X − Xᵀ,
    E_ij = s_j² − s_i² (i ≠ j), J = skew(Uᵀ·G_U), K = skew(Vᵀ·G_V):
        dL/dA = U·[(J·diag(s) + diag(s)·K) / E + diag(G_s)]·Vᵀ
                + (I − U·Uᵀ)·G_U·diag(1/s)·Vᵀ + U·diag(1/s)·G_Vᵀ·(I − V·Vᵀ)
    (the last two terms for m > k, n > k).  For ``full_matrices=True`` only the first k
    columns of U and V carry a gradient (the others are not unique), as in PyTorch."""

    def factor(self, a):
        xp = array_module(a)
        try:
            u, s, vt = xp.linalg.svd(a, full_matrices=self.full)
        except np.linalg.LinAlgError as e:
            raise _linalg_error("svd", e) from None
        self.u, self.s, self.vt = u, s, vt
        return u, s, vt

    def grad(self, gu, gs, gvt):
        xp = array_module(gu, gs, gvt)
        s = self.s
        k = s.shape[-1]
        u, vt = self.u[..., :, :k], self.vt[..., :k, :]
        m, n = u.shape[-2], vt.shape[-1]
        if gu is None and gvt is None:
            return (u * gs[..., None, :]) @ vt
        if gu is not None:
            gu = gu[..., :, :k]
        if gvt is not None:
            gvt = gvt[..., :k, :]
        s2 = s * s
        e = s2[..., None, :] - s2[..., :, None]
        idx = xp.arange(k)
        e[..., idx, idx] = 1.0
        inner = xp.zeros(s.shape[:-1] + (k, k), dtype=s.dtype)
        if gu is not None:
            j = _T(u) @ gu
            inner = inner + (j - _T(j)) * s[..., None, :]
        if gvt is not None:
            kk = vt @ _T(gvt)
            inner = inner + s[..., :, None] * (kk - _T(kk))
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = inner / e
        inner[..., idx, idx] = 0.0
        if gs is not None:
            inner[..., idx, idx] = gs
        ga = u @ inner @ vt
        if gu is not None and m > k:
            ga = ga + ((gu - u @ (_T(u) @ gu)) / s[..., None, :]) @ vt
        if gvt is not None and n > k:
            ga = ga + u @ ((gvt - (gvt @ _T(vt)) @ vt) / s[..., :, None])
        return ga


def svd(x, full_matrices=True, compute_uv=True):
    """Singular value decomposition x = u·diag(s)·vh: ``(u, s, vh)``, or only s (descending)
    with ``compute_uv=False``."""
    x = _matrix(x, "svd", square=False)
    if not compute_uv:
        return _SingularValues.apply(x)
    return _factor_outputs(x, Svd, full=bool(full_matrices))


class _SingularValues(Function):
    """s = singular values of A;  dL/dA = U·diag(G)·Vᵀ (reduced U, V)."""

    def forward(self, a):
        xp = array_module(a)
        try:
            self.u, s, self.vt = xp.linalg.svd(a, full_matrices=False)
        except np.linalg.LinAlgError as e:
            raise _linalg_error("svd", e) from None
        return s

    def backward(self, g):
        return ((self.u * g[..., None, :]) @ self.vt,)


class Qr(_Factorization):
    """A = Q·R.  For m ≥ n (reduced), with M = tril(Qᵀ·G_Q − G_Qᵀ·Q + R·G_Rᵀ − G_R·Rᵀ):
        dL/dA = Q·(G_R + M·R⁻ᵀ) + (G_Q − Q·Qᵀ·G_Q)·R⁻ᵀ.
    For m < n, A = [X | Y] with X square: the formula above for X with G_Q + Y·G_Vᵀ and the
    first m columns of G_R; dL/dY = Q·G_V (G_V the remaining columns of G_R).  The complete
    decomposition of a matrix with m > n has no gradient (Q's extra columns are not unique)."""

    def factor(self, a):
        xp = array_module(a)
        self.a = a
        q, r = xp.linalg.qr(a, mode=self.mode)
        self.q, self.r = q, r
        return q, r

    def grad(self, gq, gr):
        xp = array_module(gq, gr)
        q, r, a = self.q, self.r, self.a
        m, n = a.shape[-2], a.shape[-1]
        if self.mode == "complete" and m > n:
            raise NotImplementedError(
                "qr: the gradient of mode='complete' for matrices with more rows than columns "
                "is not defined (as in PyTorch); use mode='reduced'")
        if gq is None:
            gq = xp.zeros_like(q)
        if gr is None:
            gr = xp.zeros_like(r)
        if m >= n:
            return _qr_grad_square_deep(q, r, gq, gr)
        y = a[..., :, m:]
        u = r[..., :, :m]
        dv, du = gr[..., :, m:], gr[..., :, :m]
        dy = q @ dv
        dx = _qr_grad_square_deep(q, u, gq + y @ _T(dv), du)
        return xp.concatenate([dx, dy], axis=-1)


def _qr_grad_square_deep(q, r, gq, gr):
    xp = array_module(q, r, gq, gr)
    qdq = _T(q) @ gq
    rdr = r @ _T(gr)
    tril = xp.tril(qdq - _T(qdq) + rdr - _T(rdr))
    # X·R⁻ᵀ = (R⁻¹·Xᵀ)ᵀ, R upper triangular
    ga = q @ (gr + _T(_triangular_solve(r, _T(tril), False)))
    gb = _T(_triangular_solve(r, _T(gq - q @ qdq), False))
    return ga + gb


def qr(x, mode="reduced"):
    """QR decomposition x = q·r: ``(q, r)``, reduced (q of shape (…, m, k)) or complete."""
    if mode not in ("reduced", "complete"):
        raise ValueError(f"qr: mode must be one of 'reduced', 'complete', received mode={mode!r}")
    x = _matrix(x, "qr", square=False)
    return _factor_outputs(x, Qr, mode=mode)


# -------------------------------------------------------------- pinv, lstsq, rank
def _default_rtol(a):
    return float(max(a.shape[-2:]) * np.finfo(a.dtype).eps)


class Pinv(Function):
    """P = A⁺ (singular values ≤ rcond·s_max dropped);  for constant rank,
        dL/dA = −Pᵀ·G·Pᵀ + (I − A·P)·Gᵀ·P·Pᵀ + Pᵀ·P·Gᵀ·(I − P·A)."""

    def forward(self, a):
        xp = array_module(a)
        self.a = a
        rc = _default_rtol(a) if self.rcond is None else self.rcond
        try:
            self.p = p = xp.linalg.pinv(a, rcond=rc)
        except np.linalg.LinAlgError as e:
            raise _linalg_error("pinv", e) from None
        return p.astype(a.dtype, copy=False)

    def backward(self, g):
        xp = array_module(g)
        a, p = self.a, self.p
        pt, gt = _T(p), _T(g)
        m, n = a.shape[-2], a.shape[-1]
        ga = -(pt @ g @ pt)
        ga = ga + (xp.eye(m, dtype=a.dtype) - a @ p) @ gt @ (p @ pt)
        ga = ga + (pt @ p) @ gt @ (xp.eye(n, dtype=a.dtype) - p @ a)
        return (ga,)


def pinv(x, rcond=None):
    """The Moore–Penrose pseudo-inverse; singular values ≤ ``rcond``·s_max count as zero
    (default max(m, n)·ε of the dtype, PyTorch's)."""
    x = _matrix(x, "pinv", square=False)
    return Pinv.apply(x, rcond=None if rcond is None else float(rcond))


def lstsq(a, b, rcond=None):
    """The least-squares solution x of a·x ≈ b of least norm (a of shape (M, N), b (M,) or
    (M, K)): x = a⁺·b, differentiable in a and b."""
    a = _matrix(a, "lstsq", square=False)
    b = _float_in(b, "lstsq")
    if a.ndim != 2:
        raise ValueError(f"lstsq: a must have rank 2, received shape {a.shape}")
    if b.ndim not in (1, 2):
        raise ValueError(f"lstsq: b must have rank 1 or 2, received shape {b.shape}")
    if b.shape[0] != a.shape[0]:
        raise ValueError(f"lstsq: b.shape[0] must equal a.shape[0], received a.shape={a.shape}, "
                         f"b.shape={b.shape}")
    a, b = _same_dtype(a, b)
    return M.matmul(pinv(a, rcond=rcond), b)


def matrix_rank(x, tol=None):
    """Number of singular values above ``tol`` (default max(m, n)·ε·s_max), int32, no gradient."""
    x = _matrix(x, "matrix_rank", square=False)
    xp = array_module(x.data)
    s = xp.linalg.svd(x.data, compute_uv=False)
    if tol is None:
        thr = _default_rtol(x.data) * (s.max(axis=-1, keepdims=True) if s.shape[-1] else 0)
    else:
        thr = float(tol.data if isinstance(tol, Tensor) else tol)
    return Tensor(xp.sum(s > thr, axis=-1).astype(np.int32))


# --------------------------------------------------------------------- lu_factor
def _lu(a):
    """Packed LU with partial pivoting of a stack of matrices (LAPACK getrf): returns LU and
    0-based pivots (row i swapped with piv[i])."""
    xp = array_module(a)
    lu = xp.array(a, dtype=a.dtype, copy=True)
    m, n = lu.shape[-2:]
    k = min(m, n)
    batch = lu.shape[:-2]
    piv = xp.zeros(batch + (k,), dtype=np.int32)
    flat = lu.reshape((-1, m, n))
    pf = piv.reshape((-1, k))
    rows = xp.arange(flat.shape[0])
    for j in range(k):
        p = j + xp.argmax(xp.abs(flat[:, j:, j]), axis=1)
        pf[:, j] = p
        tmp = flat[rows, j, :].copy()
        flat[rows, j, :] = flat[rows, p, :]
        flat[rows, p, :] = tmp
        d = flat[:, j, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            f = xp.where(d[:, None] != 0, flat[:, j + 1:, j] / d[:, None], 0.0)
        flat[:, j + 1:, j] = f
        flat[:, j + 1:, j + 1:] -= f[:, :, None] * flat[:, j, None, j + 1:]
    return lu, piv


class LuFactor(Function):
    """A = P·L·U (square A, packed as LU = L − I + U).  With G_L the strict lower and G_U the
    upper part of G:  dL/dA = P·L⁻ᵀ·[tril(Lᵀ·G_L, −1) + triu(G_U·Uᵀ)]·U⁻ᵀ."""

    def forward(self, a):
        lu, self.piv = _lu(a)
        self.lu = lu
        return lu

    def backward(self, g):
        xp = array_module(g)
        lu = self.lu
        n = lu.shape[-1]
        if lu.shape[-2] != n:
            raise NotImplementedError("lu_factor: the gradient for non-square matrices is not "
                                      "supported by axone")
        l = xp.tril(lu, -1) + xp.eye(n, dtype=lu.dtype)
        u = xp.triu(lu)
        inner = xp.tril(_T(l) @ xp.tril(g, -1), -1) + xp.triu(xp.triu(g) @ _T(u))
        x = xp.linalg.solve(_T(l), inner)                 # L⁻ᵀ·inner
        x = _T(xp.linalg.solve(u, _T(x)))                  # ·U⁻ᵀ
        # apply P: undo the row swaps in reverse order
        out = x.reshape((-1, n, n)).copy()
        pf = self.piv.reshape((-1, n))
        rows = xp.arange(out.shape[0])
        for j in range(pf.shape[1] - 1, -1, -1):
            p = pf[:, j]
            tmp = out[rows, j, :].copy()
            out[rows, j, :] = out[rows, p, :]
            out[rows, p, :] = tmp
        return (out.reshape(x.shape),)


def lu_factor(x):
    """LU decomposition with partial pivoting: ``(lu, pivots)``, L (unit lower, below the
    diagonal) and U packed in ``lu``, 0-based int32 ``pivots`` (row i swapped with pivots[i]);
    differentiable in ``lu`` for square matrices."""
    x = _matrix(x, "lu_factor", square=False)
    lu = LuFactor.apply(x)
    return lu, Tensor(lu._ctx.piv if lu._ctx is not None else _lu(x.data)[1])


# -------------------------------------------------------------------------- norm
def norm(x, ord=None, axis=None, keepdims=False):
    """Vector or matrix norm (Keras ``ops.linalg.norm``): those of ``ops.norm``, and for
    matrices also ord 2 / −2 (largest / smallest singular value) and 'nuc' (their sum)."""
    if isinstance(ord, str) and ord not in ("fro", "nuc"):
        raise ValueError(f"norm: ord must be one of 'fro', 'nuc' when a string, received "
                         f"ord={ord!r}")
    xt = _float_in(x, "norm")
    if axis is None:
        axes = tuple(range(xt.ndim))
    else:
        axes = M._axis(axis, xt.ndim, "norm")
    if len(axes) == 2 and (ord in (2, -2) or ord == "nuc"):
        r, c = axes
        rest = [i for i in range(xt.ndim) if i not in axes]
        moved = M.transpose(xt, tuple(rest) + (r, c))
        s = svd(moved, compute_uv=False)
        out = M.sum(s, axis=-1) if ord == "nuc" else (M.max(s, axis=-1) if ord == 2
                                                      else M.min(s, axis=-1))
        if keepdims:
            out = M.expand_dims(M.expand_dims(out, -1), -1)
            back = list(range(len(rest)))
            order = [0] * xt.ndim
            for i, ax in enumerate(rest):
                order[ax] = i
            order[r], order[c] = len(rest), len(rest) + 1
            out = M.transpose(out, tuple(order))
            del back
        return out
    if len(axes) == 1 and isinstance(ord, str):
        raise ValueError(f"norm: ord={ord!r} is a matrix norm, invalid for a vector norm")
    return _vector_matrix_norm(xt, ord=ord, axis=axis, keepdims=keepdims)


# --------------------------------------------------------------------------- jvp
def _flatten(tree):
    if isinstance(tree, (list, tuple)):
        out = []
        for t in tree:
            out.extend(_flatten(t))
        return out
    if isinstance(tree, dict):
        out = []
        for k in sorted(tree):
            out.extend(_flatten(tree[k]))
        return out
    return [tree]


def _unflatten(tree, leaves):
    it = iter(leaves)

    def build(t):
        if isinstance(t, (list, tuple)):
            return type(t)(build(v) for v in t)
        if isinstance(t, dict):
            return {k: build(t[k]) for k in sorted(t)}
        return next(it)
    return build(tree)


def jvp(fun, primals, tangents, has_aux=False):
    """Forward-mode derivative: ``(fun(*primals), J·tangents)`` (and ``aux`` with
    ``has_aux=True``, ``fun`` then returning ``(output, aux)``), as ``torch.func.jvp``.

    J·t is exact: the vector-Jacobian product u ↦ Jᵀu is linear, so row i of J is the gradient
    of output coordinate i, and (J·t)ᵢ = ⟨∇ outᵢ, t⟩.  It takes one reverse pass per output
    element (over a graph recorded once), so it suits outputs of modest size.
    """
    if not isinstance(primals, (list, tuple)) or not isinstance(tangents, (list, tuple)):
        raise TypeError(f"jvp: primals and tangents must be tuples or lists, received "
                        f"{type(primals).__name__} and {type(tangents).__name__}")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: primals and tangents must have the same length, received "
                         f"{len(primals)} and {len(tangents)}")
    p_leaves, t_leaves = _flatten(list(primals)), _flatten(list(tangents))
    if len(p_leaves) != len(t_leaves):
        raise ValueError("jvp: primals and tangents must have the same structure")
    xs, ts = [], []
    for p, t in zip(p_leaves, t_leaves):
        p = _float_in(p.detach() if isinstance(p, Tensor) else p, "jvp")
        xp = array_module(p.data)
        t = t.data if isinstance(t, Tensor) else t
        t = np.asarray(t) if xp is np else t if array_module(t) is xp else xp.asarray(np.asarray(t))
        if t.shape != p.shape:
            raise ValueError(f"jvp: each tangent must have its primal's shape, received "
                             f"{t.shape} for a primal of shape {p.shape}")
        xs.append(Tensor(p.data, requires_grad=True))
        ts.append(t.astype(p.dtype, copy=False))
    from ..autograd.function import enable_grad
    with enable_grad():
        res = fun(*_unflatten(list(primals), xs))
    aux = None
    if has_aux:
        if not isinstance(res, (list, tuple)) or len(res) != 2:
            raise ValueError("jvp: with has_aux=True, fun must return a pair (output, aux)")
        res, aux = res
    outs = _flatten(res)
    tans = []
    for o in outs:
        if not isinstance(o, Tensor):
            o = Tensor(o)
        xp = array_module(o.data)
        tan = xp.zeros(o.shape, dtype=o.dtype if o.dtype.kind == "f" else backend.floatx())
        if o.requires_grad:
            flat = tan.reshape(-1)
            for i in range(o.size):
                e = xp.zeros(o.shape, dtype=o.dtype)
                e.reshape(-1)[i] = 1
                for x in xs:
                    x.grad = None
                o.backward(e, retain_graph=True)
                flat[i] = sum(float(xp.vdot(x.grad, t)) for x, t in zip(xs, ts)
                              if x.grad is not None)
        tans.append(Tensor(tan))
    with no_grad():
        primal_out = _unflatten(res, [o.detach() if isinstance(o, Tensor) else Tensor(o)
                                      for o in outs])
    tangent_out = _unflatten(res, tans)
    if has_aux:
        return primal_out, tangent_out, aux
    return primal_out, tangent_out
