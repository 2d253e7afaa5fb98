"""Recurrent layers' whole sequences as single nodes, with backpropagation through time written out.

Shapes: x (N, T, D), kernel W (D, G·u), recurrent kernel U (u, G·u), gates in Keras order.
The input projection of all steps is one matrix product, X·W + b; each step then adds h·U.
A mask (N, T) of booleans freezes the state where it is False (the step is skipped), as Keras
does; dropout masks (fixed over time) multiply the inputs and the recurrent state.

SimpleRNN:  hₜ = φ(xₜW + hₜ₋₁U + b)
LSTM (i, f, c, o):  z = xₜW + hₜ₋₁U + b;  i = σ(zᵢ), f = σ(z_f), g = φ(z_c), o = σ(z_o)
            cₜ = f·cₜ₋₁ + i·g,   hₜ = o·φ(cₜ)
GRU (z, r, h), reset_after=True (Keras default; b has two rows, input and recurrent):
            xz, xr, xh = xₜW + b₀;  rz, rr, rh = hₜ₋₁U + b₁
            z = σ(xz + rz), r = σ(xr + rr), h̃ = φ(xh + r·rh),   hₜ = z·hₜ₋₁ + (1 − z)·h̃
GRU reset_after=False:  h̃ = φ(xh + (r·hₜ₋₁)U_h), the recurrent bias folded into b.
(σ is ``recurrent_activation``, φ is ``activation``; any of sigmoid, tanh, relu, hard_sigmoid,
linear.)  The backward pass runs the same steps in reverse, accumulating dL/dU and the state
gradients, then forms dL/dW and dL/dx from all steps' gate gradients with one product each.

The LSTM with tanh and sigmoid (Keras's defaults) takes a dedicated path, the same equations
arranged for speed (RNNSequence._lstm_forward / _lstm_backward): gate-major, time-major work
arrays reused from batch to batch, one product [h, xₜ, 1]·[U; W; b] per step, the four gates
through one exp, and dL/dU, dL/dW, dL/db in one product over all steps after the loop.  With the
compiled module (axone/_kernels.c) its point-wise work per step is one compiled pass, the step
loops themselves run in C around NumPy's own BLAS when that can be handed over, and a large batch
is split into shards of rows run on their own threads (see _lstm_forward_compiled).  GRU
(reset_after=True, and reset_after=False) and SimpleRNN with Keras's default activations run their
step loops in C the same way (RNNSequence._seq_forward / _seq_backward), after one product
X·W + b₀ for all steps.

On a device (the inputs' array module is not NumPy, e.g. CuPy) every cell runs the general
step loop (RNNSequence.forward / backward) with that module; host masks and dropout masks are
moved to it first.  The compiled loops, the shards and the work-array pool are the host's alone.
"""
import os
import threading

import numpy as np

from .. import _native
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..device import array_module
from . import _compiled
from . import math as M

__all__ = ["rnn_sequence", "ACTIVATIONS"]

# The LSTM with tanh / sigmoid takes its dedicated path; False sends it through the general loop.
_FAST_LSTM = True
# Within that path, the point-wise work of each step runs in the compiled module when it is built
# (axone/_kernels.c, lstm_forward / lstm_backward); False keeps it in NumPy.
_COMPILED_LSTM = True


def _kernels():
    """The compiled module when it is in use and has the LSTM step kernels, else None."""
    return _compiled.kernels("lstm_forward")


# The whole step loops run in C when NumPy's own BLAS can be handed to the compiled module
# (lstm_forward_seq / lstm_backward_seq, set up and checked once in axone/_native.py); else
# Python runs them, one kernel call per step.
_SEQ_LOOPS = True


def _seq_kernels():
    """The compiled module with NumPy's cblas gemm handed over and checked, else None."""
    return _compiled.seq_kernels() if _SEQ_LOOPS else None


_check_seq = _native.check_seq


def _sigmoid(x):
    return M._sigmoid(x)


# activation: (f(x), f'(x) expressed from y = f(x) where possible, else from x)
ACTIVATIONS = {
    "tanh": (np.tanh, lambda y, x: 1 - y * y),
    "sigmoid": (_sigmoid, lambda y, x: y * (1 - y)),
    "relu": (lambda x: np.maximum(x, 0), lambda y, x: (y > 0).astype(y.dtype)),
    "linear": (lambda x: x, lambda y, x: np.ones_like(y)),
    "hard_sigmoid": (lambda x: np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype),
                     lambda y, x: (((x > -3) & (x < 3)) / 6).astype(y.dtype)),
}


# Work arrays of the LSTM fast path are reused from one batch to the next: a fresh array of a few
# MB costs about as much in page faults as the arithmetic done on it.  An array goes back to the
# pool only once nothing refers to it (see _Work); the pool holds at most _POOL_BYTES.
_POOL = {}
_POOL_BYTES = 64 << 20
_pool_size = [0]
_pool_lock = threading.RLock()   # re-entrant: a node collected inside _give gives back too


def _take(shape, dtype):
    with _pool_lock:
        free = _POOL.get((shape, dtype))
        if free:
            a = free.pop()
            _pool_size[0] -= a.nbytes
            return a
    return np.empty(shape, dtype=dtype)


def _give(*arrays):
    with _pool_lock:
        for a in arrays:
            if a.nbytes > _POOL_BYTES:
                continue
            while _POOL and _pool_size[0] + a.nbytes > _POOL_BYTES:   # drop the oldest shapes
                _pool_size[0] -= sum(b.nbytes for b in _POOL.pop(next(iter(_POOL))))
            _POOL.setdefault((a.shape, a.dtype), []).append(a)
            _pool_size[0] += a.nbytes


class _Work(list):
    """The work arrays a node keeps from forward to backward.  They go back to the pool when the
    node lets go of them: after its backward (unless the graph is retained), or with the graph."""

    def take(self, shape, dtype):
        a = _take(shape, dtype)
        self.append(a)
        return a

    def __del__(self):
        try:
            _give(*self)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def _act(name, xp=np):
    """(f, f') of ACTIVATIONS[name]; with a device module ``xp``, the same functions computed
    with it."""
    try:
        pair = ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"recurrent layers support the activations {sorted(ACTIVATIONS)}, "
                         f"received {name!r}") from None
    if xp is np:
        return pair
    if name == "tanh":
        return xp.tanh, pair[1]
    if name == "sigmoid":       # σ(x) = 1/(1 + e^(−max(x, floor))), as ops.math's
        return (lambda x: 1.0 / (1.0 + xp.exp(-xp.maximum(x, M._exp_floor(x))))), pair[1]
    if name == "relu":
        return (lambda x: xp.maximum(x, 0)), pair[1]
    if name == "linear":
        return pair[0], (lambda y, x: xp.ones_like(y))
    return (lambda x: xp.clip(x / 6 + 0.5, 0, 1).astype(x.dtype)), pair[1]   # hard_sigmoid


def _on(xp, a):
    """``a`` (a mask) as an array of the module ``xp`` (None stays None)."""
    return a if a is None or array_module(a) is xp else xp.asarray(a)


class RNNSequence(Function):
    """One recurrent layer over a whole sequence: inputs x, W, U, b, h0 (and c0 for LSTM)."""

    def forward(self, x, W, U, b, h0, c0=None):
        self.xp = xp = array_module(x, W, U, b, h0, c0)
        if xp is np:
            self.fast = (_FAST_LSTM and self.cell == "lstm" and c0 is not None
                         and self.activation == "tanh" and self.recurrent_activation == "sigmoid")
            if self.fast:
                dt = np.result_type(x, W, U, b, h0, c0)
                self.kernels = _kernels() if _COMPILED_LSTM and dt in (np.float32, np.float64) else None
                if self.kernels is not None:
                    return self._lstm_forward_compiled(x, W, U, b, h0, c0, dt)
                return self._lstm_forward(x, W, U, b, h0, c0)
            self.seq = None
            if _seq_gru_simple(self, x, W, U, b, h0):
                return self._seq_forward(x, W, U, b, h0)
        else:                            # a device: the general loop with xp
            self.fast, self.seq = False, None
            self.mask, self.xmask, self.rmask = (_on(xp, self.mask), _on(xp, self.xmask),
                                                 _on(xp, self.rmask))
        cell, T = self.cell, x.shape[1]
        u = U.shape[0]
        act, dact = _act(self.activation, xp)
        ract, dract = _act(self.recurrent_activation, xp)
        if self.xmask is not None:
            x = x * self.xmask[:, None, :]
        self.x = x
        if cell == "gru" and self.reset_after:
            proj = x @ W + b[0]
        else:
            proj = x @ W + b
        hs = xp.empty((x.shape[0], T, u), dtype=proj.dtype)
        rm = self.rmask
        h = h0
        c = c0
        steps = range(T - 1, -1, -1) if self.go_backwards else range(T)
        saved = []
        mask = self.mask
        for j, t in enumerate(steps):
            hr = h if rm is None else h * rm
            if cell == "simple":
                pre = proj[:, t] + hr @ U
                hn = act(pre)
                st = (h, hr, pre, hn)
            elif cell == "lstm":
                z = proj[:, t] + hr @ U
                zi, zf, zc, zo = z[:, :u], z[:, u:2 * u], z[:, 2 * u:3 * u], z[:, 3 * u:]
                i, f, o = ract(zi), ract(zf), ract(zo)
                g = act(zc)
                cn = f * c + i * g
                ac = act(cn)
                hn = o * ac
                st = (h, hr, c, zi, zf, zc, zo, i, f, g, o, cn, ac)
            else:  # gru
                xz, xr, xh = proj[:, t, :u], proj[:, t, u:2 * u], proj[:, t, 2 * u:]
                if self.reset_after:
                    rec = hr @ U + b[1]
                    rz, rr, rh = rec[:, :u], rec[:, u:2 * u], rec[:, 2 * u:]
                    pz, pr = xz + rz, xr + rr
                    z, r = ract(pz), ract(pr)
                    ph = xh + r * rh
                else:
                    rec = hr @ U[:, :2 * u]
                    pz, pr = xz + rec[:, :u], xr + rec[:, u:]
                    z, r = ract(pz), ract(pr)
                    rh = (r * hr) @ U[:, 2 * u:]
                    ph = xh + rh
                hh = act(ph)
                hn = z * h + (1 - z) * hh
                st = (h, hr, pz, pr, z, r, rh, ph, hh)
            if mask is not None:
                m = mask[:, t][:, None]
                hn = xp.where(m, hn, h)
                if cell == "lstm":
                    cn = xp.where(m, cn, c)
            h = hn
            if cell == "lstm":
                c = cn
            hs[:, j] = h
            saved.append(st)
        self.saved, self.hs, self.xp_dtype = saved, hs, proj.dtype
        self.W, self.U, self.b, self.h0, self.c0 = W, U, b, h0, c0
        self.hT, self.cT = h, c
        # output: all hidden states (N, T, u) followed by the final c for LSTM, packed on axis 1
        if cell == "lstm":
            return xp.concatenate([hs, c[:, None, :]], axis=1)
        return hs

    def backward(self, gout):
        if self.fast:
            if self.kernels is not None:
                return self._lstm_backward_compiled(gout)
            return self._lstm_backward(gout)
        if self.seq is not None:
            return self._seq_backward(gout)
        cell, x, W, U, b, xp = self.cell, self.x, self.W, self.U, self.b, self.xp
        u = U.shape[0]
        T = x.shape[1]
        act, dact = _act(self.activation, xp)
        ract, dract = _act(self.recurrent_activation, xp)
        if cell == "lstm":
            ghs, gc = gout[:, :T], gout[:, T].copy()
        else:
            ghs, gc = gout, None
        G = W.shape[1]
        gxp = xp.zeros((x.shape[0], T, G), dtype=gout.dtype)
        gU = xp.zeros_like(U)
        gb1 = xp.zeros(G, dtype=gout.dtype) if (cell == "gru" and self.reset_after) else None
        gh = xp.zeros((x.shape[0], u), dtype=gout.dtype)
        rm, mask = self.rmask, self.mask
        steps = list(range(T - 1, -1, -1) if self.go_backwards else range(T))
        for j in range(T - 1, -1, -1):
            t = steps[j]
            gh = gh + ghs[:, j]
            st = self.saved[j]
            if mask is not None:
                m = mask[:, t][:, None]
                gh_skip = xp.where(m, 0, gh)
                gh = xp.where(m, gh, 0)
                if cell == "lstm":
                    gc_skip = xp.where(m, 0, gc)
                    gc = xp.where(m, gc, 0)
            if cell == "simple":
                h, hr, pre, hn = st
                gpre = gh * dact(hn, pre)
                gxp[:, t] = gpre
                gU += hr.T @ gpre
                ghr = gpre @ U.T
                gh_prev = ghr if rm is None else ghr * rm
            elif cell == "lstm":
                h, hr, c, zi, zf, zc, zo, i, f, g, o, cn, ac = st
                go = gh * ac
                gcn = gc + gh * o * dact(ac, cn)
                gi = gcn * g
                gf = gcn * c
                gg = gcn * i
                gz = xp.concatenate([gi * dract(i, zi), gf * dract(f, zf), gg * dact(g, zc),
                                     go * dract(o, zo)], axis=1)
                gxp[:, t] = gz
                gU += hr.T @ gz
                ghr = gz @ U.T
                gh_prev = ghr if rm is None else ghr * rm
                gc = gcn * f
            else:
                h, hr, pz, pr, z, r, rh, ph, hh = st
                ghh = gh * (1 - z)
                gz_ = gh * (h - hh)
                gph = ghh * dact(hh, ph)
                gpz = gz_ * dract(z, pz)
                if self.reset_after:
                    grh = gph * r
                    gr = gph * rh
                    gpr = gr * dract(r, pr)
                    grec = xp.concatenate([gpz, gpr, grh], axis=1)
                    gxp[:, t] = xp.concatenate([gpz, gpr, gph], axis=1)
                    gU += hr.T @ grec
                    gb1 += grec.sum(axis=0)
                    ghr = grec @ U.T
                    gh_prev = gh * z + (ghr if rm is None else ghr * rm)
                else:
                    rhr = r * hr
                    grhr = gph @ U[:, 2 * u:].T
                    gU[:, 2 * u:] += rhr.T @ gph
                    gr = grhr * hr
                    gpr = gr * dract(r, pr)
                    g2 = xp.concatenate([gpz, gpr], axis=1)
                    gU[:, :2 * u] += hr.T @ g2
                    gxp[:, t] = xp.concatenate([gpz, gpr, gph], axis=1)
                    ghr = g2 @ U[:, :2 * u].T + grhr * r
                    gh_prev = gh * z + (ghr if rm is None else ghr * rm)
            if mask is not None:
                gh_prev = gh_prev + gh_skip
                if cell == "lstm":
                    gc = gc + gc_skip
            gh = gh_prev
        needs = self.needs
        N = x.shape[0]
        g2d = gxp.reshape(N * T, G)
        gx = gW = gb = None
        if needs[0]:
            gx = (gxp @ W.T)
            if self.xmask is not None:
                gx = gx * self.xmask[:, None, :]
        if needs[1]:
            gW = x.reshape(N * T, -1).T @ g2d
        if needs[3]:
            gb0 = g2d.sum(axis=0)
            gb = xp.stack([gb0, gb1]) if gb1 is not None else gb0
        gh0 = gh if needs[4] else None
        res = [gx, gW, gU if needs[2] else None, gb, gh0]
        if cell == "lstm":
            res.append(gc if needs[5] else None)
        return tuple(res)

    # ------------------------------------------------------------------ GRU / SimpleRNN in C
    # GRU (reset_after=True) and SimpleRNN with Keras's default activations, when NumPy's gemm is
    # handed to the compiled module: the same equations as the loop above, the step loops in C
    # (gru_forward_seq / gru_backward_seq, simple_forward_seq / simple_backward_seq in
    # _kernels.c).  Work arrays are time-major, steps in processing order:
    #   XP (T, n, G)   xₜ·W + b₀, which the GRU forward overwrites with z, r, h̃
    #   R  (T, n, 3u)  the GRU's hᵣ·U (its third block then holds rₕ = (hᵣ·U)ₕ + b₁ₕ)
    #   H  (T+1, n, u) the states;  HR (T+1, n, u) hᵣ = h·rm with a recurrent dropout mask
    # The GRU with reset_after=False (gru_rb_forward_seq / gru_rb_backward_seq, one bias row)
    # keeps R (T, n, u) = r·hᵣ of every step instead, and forms ∂U in two blocks:
    # ∂[U_z, U_r] = Hᵣᵀ·[∂z, ∂r], ∂U_h = Rᵀ·∂h̃.
    # The rows are cut into shards on axone's threads as the LSTM's are (same bounds, OpenBLAS
    # pinned to one thread likewise); after the loop ∂U = Hᵣᵀ·∂R, ∂W = Xᵀ·∂X and ∂x = ∂X·Wᵀ are one
    # product each per shard, and the shards' weight gradients are summed in shard order.
    def _seq_forward(self, x, W, U, b, h0):
        N, T, D = x.shape
        u = U.shape[0]
        G = W.shape[1]
        dt = self.seq
        self.W = W.astype(dt, copy=False)
        self.U = np.ascontiguousarray(U, dtype=dt)
        b = np.asarray(b, dtype=dt)
        self.rb = self.cell == "gru" and not self.reset_after      # one bias row (b₀ = b)
        self.b0, self.b1 = ((b[0], np.ascontiguousarray(b[1])) if self.cell == "gru" and not self.rb
                            else (b, None))
        xin = x if self.xmask is None else x * self.xmask[:, None, :]
        xt = xin.transpose(1, 0, 2)
        self.xt = xt[::-1] if self.go_backwards else xt                         # (T, N, D)
        self.keep = None
        if self.mask is not None:
            self.keep = self.mask.T[::-1] if self.go_backwards else self.mask.T   # (T, N)
        self.rm = None if self.rmask is None else np.ascontiguousarray(self.rmask, dtype=dt)
        self.work = _Work()
        out = np.empty((N, T, u), dtype=dt)
        self.pin = _pin_blas(N, T, u + D, G)
        with _blas_scope(self.pin):
            self.shards = [_Shard(lo, hi) for lo, hi in _shard_bounds(N, T, u + D, G)]
            _run_shards(lambda sh: self._seq_shard_forward(sh, h0, out), self.shards)
        self.hT = out[:, T - 1]
        return out

    def _seq_shard_forward(self, sh, h0, out):
        lo, hi = sh.lo, sh.hi
        T, n, u, dt = self.xt.shape[0], hi - lo, self.U.shape[0], self.seq
        G = self.U.shape[1]
        work = self.work
        XP = work.take((T, n, G), dt)
        np.matmul(self.xt[:, lo:hi], self.W, out=XP)
        XP += self.b0
        H = work.take((T + 1, n, u), dt)
        H[0] = h0[lo:hi]
        rm = None if self.rm is None else self.rm[lo:hi]
        HR = None
        if rm is not None:
            HR = work.take((T + 1, n, u), dt)
            np.multiply(H[0], rm, out=HR[0])
        fr = None if self.keep is None else np.ascontiguousarray(~self.keep[:, lo:hi],
                                                                 dtype=np.uint8)
        k = _seq_kernels()
        R = None
        if self.rb:                      # R: the r·hᵣ of every step (for ∂U_h)
            R = work.take((T, n, u), dt)
            S = _take((n, G), dt)
            try:
                k.gru_rb_forward_seq(XP, S, R, H, HR, rm, fr, self.U)
            finally:
                _give(S)
        elif self.cell == "gru":
            R = work.take((T, n, G), dt)
            k.gru_forward_seq(XP, R, H, HR, rm, fr, self.U, self.b1)
        else:
            k.simple_forward_seq(XP, None, H, HR, rm, fr, self.U, None)
        sh.XP, sh.R, sh.H, sh.HR, sh.fr, sh.rm = XP, R, H, HR, fr, rm
        out[lo:hi] = H[1:].transpose(1, 0, 2)

    def _seq_backward(self, gout):
        N, T, u = gout.shape
        D = self.xt.shape[2]
        dt = self.seq
        needs = self.needs
        G = np.ascontiguousarray(gout, dtype=dt)
        gx = np.empty((N, T, D), dtype=dt) if needs[0] else None
        gh = np.empty((N, u), dtype=dt)
        with _blas_scope(self.pin):
            _run_shards(lambda sh: self._seq_shard_backward(sh, G, gx, gh), self.shards)
        gW = gU = gb = None
        parts = [sh.gP for sh in self.shards]
        for sh in self.shards:
            sh.gP = None
        if needs[1] or needs[2] or needs[3]:
            tot = parts[0]
            for p in parts[1:]:
                for a, c in zip(tot, p):
                    if a is not None:
                        a += c
            gW, gU, gb0, gb1 = tot
            gW = gW if needs[1] else None
            gU = gU if needs[2] else None
            if needs[3]:
                gb = gb0 if gb1 is None else np.stack([gb0, gb1])
        if gx is not None and self.xmask is not None:
            gx *= self.xmask[:, None, :]
        return (gx, gW, gU, gb, gh if needs[4] else None)

    def _seq_shard_backward(self, sh, G, gx, gh_out):
        XP, R, H, HR, fr, rm = sh.XP, sh.R, sh.H, sh.HR, sh.fr, sh.rm
        lo, hi = sh.lo, sh.hi
        T, n, Gu = XP.shape
        u = H.shape[2]
        D = self.xt.shape[2]
        dt = self.seq
        Gs = np.ascontiguousarray(G[lo:hi])
        live = Gs.any(axis=(0, 2)).astype(np.uint8)
        gh = np.zeros((n, u), dtype=dt)
        P = _take((n, u), dt)
        dX = _take((T, n, Gu), dt)
        k = _seq_kernels()
        gru = self.cell == "gru" and not self.rb
        dR = _take((T, n, Gu), dt) if gru else None
        if self.rb:
            P2 = _take((2, n, u), dt)
        try:
            if self.rb:
                k.gru_rb_backward_seq(XP, H, HR, dX, gh, P2, Gs, live, rm, fr, self.U)
            elif gru:
                k.gru_backward_seq(XP, R, H, dX, dR, gh, P, Gs, live, rm, fr, self.U)
            else:
                k.simple_backward_seq(None, None, H, dX, None, gh, P, Gs, live, rm, fr, self.U)
            needs = self.needs
            dX2 = dX.reshape(T * n, Gu)
            if gx is not None:
                gxt = np.matmul(dX2, self.W.T).reshape(T, n, D)
                gx[lo:hi] = (gxt[::-1] if self.go_backwards else gxt).transpose(1, 0, 2)
            if needs[1] or needs[2] or needs[3]:
                hin = (H if HR is None else HR)[:T].reshape(T * n, u)
                dRec = dR.reshape(T * n, Gu) if gru else dX2
                if self.rb:              # ∂[U_z, U_r] = Hᵣᵀ·[∂z, ∂r];  ∂U_h = (r·Hᵣ)ᵀ·∂h̃
                    gU = np.empty((u, Gu), dt)
                    np.matmul(hin.T, dX2[:, :2 * u], out=gU[:, :2 * u])
                    np.matmul(R.reshape(T * n, u).T, dX2[:, 2 * u:], out=gU[:, 2 * u:])
                else:
                    gU = hin.T @ dRec
                gW = np.ascontiguousarray(self.xt[:, lo:hi]).reshape(T * n, D).T @ dX2
                gb0 = dX2.sum(axis=0)
                gb1 = dRec.sum(axis=0) if gru else None
                sh.gP = [gW, gU, gb0, gb1]
        finally:
            _give(P, dX, *([dR] if gru else []), *([P2] if self.rb else []))
        gh_out[lo:hi] = gh

    # ------------------------------------------------------------------ LSTM fast path
    # For activation tanh and recurrent_activation sigmoid (with or without masks and dropout
    # masks).  Everything is gate-major and time-major (steps in processing order), so each gate
    # of each step is one contiguous (N, u) block, and the step loops only write into arrays
    # allocated beforehand (from the pool):
    #   Hc (T+1, N, u+D+1)  per step [hᵣ, x, 1]: the recurrent input hᵣ (h, or h·rm with
    #                        recurrent dropout), the input x (times the input dropout mask) and
    #                        a column of ones, so that one product gives a step's pre-activations
    #   A  (4, T, N, u)      gate activations i, f, g, o (Keras's order)
    #   C  (T+1, N, u)       cell states, C[0] = c0;    AC (T, N, u) = tanh(C[1:])
    # A step's product is four (N, u+D+1)·(u+D+1, u) products, one per gate, and so is the
    # backward's ∂z·Uᵀ (four, then summed): for batches of tens of rows, products that small stay
    # on the calling thread in OpenBLAS, where a second thread would mostly wait.  The weights
    # come negated, and doubled for g, so that the four gates take one exp:
    #   σ(z) = 1/(1 + e⁻ᶻ),   tanh(z) = 2σ(2z) − 1.
    def _lstm_forward(self, x, W, U, b, h0, c0):
        """Forward, per step j (time index t = j, or T−1−j with go_backwards):
            zₖ = [hᵣ, xₜ, 1]·[Uₖ; Wₖ; bₖ]  for the gates k = i, f, g, o  (the blocks of U, W, b)
            i, f, o = σ(zᵢ), σ(z_f), σ(zₒ);  g = tanh(z_g) = 2σ(2z_g) − 1
            cⱼ₊₁ = f·cⱼ + i·g;   hⱼ₊₁ = o·tanh(cⱼ₊₁)
        (hᵣ = hⱼ·rm with a recurrent dropout mask rm; where the mask is False, c and h keep their
        values).
        """
        N, T, D = x.shape
        u = U.shape[0]
        K = u + D + 1
        dt = np.result_type(x, W, U, b, h0, c0)
        Wc = np.concatenate([U, W, b[None]]).astype(dt, copy=False)                 # (K, 4u)
        Wc = Wc.reshape(K, 4, u).transpose(1, 0, 2)                                 # (4, K, u)
        Wn = np.ascontiguousarray(Wc * np.array([-1, -1, -2, -1], dtype=dt)[:, None, None])
        work = self.work = _Work()
        Hc = work.take((T + 1, N, K), dt)
        xt = x.transpose(1, 0, 2)
        if self.go_backwards:
            xt = xt[::-1]
        if self.xmask is None:
            Hc[:T, :, u:u + D] = xt
        else:
            np.multiply(xt, self.xmask, out=Hc[:T, :, u:u + D])
        Hc[:T, :, u + D] = 1                             # (Hc[T] holds only h_T)
        rm = self.rmask
        HR = Hc[:, :, :u]                                # recurrent inputs hᵣ
        if rm is None:
            H = HR
        else:
            H = work.take((T + 1, N, u), dt)
            np.multiply(h0, rm, out=HR[0])
        H[0] = h0
        A = work.take((4, T, N, u), dt)
        I, F, Gg, O = A
        C = work.take((T + 1, N, u), dt)
        AC = work.take((T, N, u), dt)
        C[0] = c0
        keep = None
        if self.mask is not None:
            keep = ~self.mask.T[::-1] if self.go_backwards else ~self.mask.T
            keep = keep[:, :, None]                      # (T, N, 1): rows whose state is frozen
        ig = work.take((N, u), dt)
        mul, add, subtract, divide = np.multiply, np.add, np.subtract, np.divide
        matmul, exp, tanh, copyto = np.matmul, np.exp, np.tanh, np.copyto
        with np.errstate(over="ignore"):                 # e⁻ᶻ = inf gives σ(z) = 0
            for j in range(T):
                a = A[:, j]
                matmul(Hc[j], Wn, out=a)                 # −z (−2z for g)
                exp(a, out=a)
                add(a, 1, out=a)
                divide(1, a, out=a)                      # σ(z) (σ(2z) for g)
                g = Gg[j]
                mul(g, 2, out=g)
                subtract(g, 1, out=g)
                c = C[j + 1]
                mul(F[j], C[j], out=c)
                mul(I[j], g, out=ig)
                c += ig
                tanh(c, out=AC[j])
                mul(O[j], AC[j], out=H[j + 1])
                if keep is not None:
                    copyto(c, C[j], where=keep[j])
                    copyto(H[j + 1], H[j], where=keep[j])
                if rm is not None:
                    mul(H[j + 1], rm, out=HR[j + 1])
        self.A, self.C, self.AC, self.Hc, self.keep, self.Wc = A, C, AC, Hc, keep, Wc
        # output: all hidden states (N, T, u) followed by the final c, packed on axis 1
        out = np.empty((N, T + 1, u), dtype=dt)
        out[:, :T] = H[1:].transpose(1, 0, 2)
        out[:, T] = C[T]
        return out

    def _lstm_backward(self, gout):
        """Backward, per step j in reverse, with gh = ∂L/∂hⱼ₊₁ and gc = ∂L/∂cⱼ₊₁ from step j+1:
            gh += upstream ∂L/∂hⱼ₊₁;   gcn = gc + gh·E,   E = o·(1 − tanh²(cⱼ₊₁))
            ∂z = [gcn·g·σ'(i), gcn·cⱼ·σ'(f), gcn·i·(1 − g²), gh·tanh(cⱼ₊₁)·σ'(o)]   (σ' = σ(1 − σ))
            gh ← (Σₖ ∂zₖ·Uₖᵀ)·rm;   gc ← gcn·f
        The factors E and R = [g·σ'(i), cⱼ·σ'(f), i·(1 − g²), tanh(cⱼ₊₁)·σ'(o)] are formed for
        all steps at once before the loop, so that a step's ∂z is gcn·R[i, f, g] and gh·R[o].
        Where the mask is False, E and R are zero, f is replaced by 1 and gh passes on unchanged.
        After the loop, over all steps at once:
            [∂U; ∂W; ∂b] = [Hᵣ, X, 1]ᵀ·∂Z,   ∂x = ∂Z·Wᵀ.
        """
        A, C, AC, Hc, keep, Wc = self.A, self.C, self.AC, self.Hc, self.keep, self.Wc
        _, T, N, u = A.shape
        K = Wc.shape[1]
        D = K - u - 1
        dt = A.dtype
        ghs = gout[:, :T]
        gc = np.array(gout[:, T], dtype=dt)
        live = ghs.any(axis=(0, 2))                      # steps with an upstream gradient on h
        GH = ghs.transpose(1, 0, 2)
        I, F, Gg, O = A
        R = _take((4, T, N, u), dt)
        for k in (slice(0, 2), 3):                       # σ' of i, f and o
            np.subtract(1, A[k], out=R[k])
            R[k] *= A[k]
        R[0] *= Gg
        R[1] *= C[:-1]
        R[3] *= AC
        np.multiply(Gg, Gg, out=R[2])
        np.subtract(1, R[2], out=R[2])
        R[2] *= I
        E = _take((T, N, u), dt)
        np.multiply(AC, AC, out=E)
        np.subtract(1, E, out=E)
        E *= O
        Fc = F
        temps = [R, E]
        if keep is not None:
            E *= ~keep
            R *= ~keep
            Fc = _take((T, N, u), dt)
            np.copyto(Fc, F)
            np.copyto(Fc, 1, where=keep)
            keepf = _take((T, N, 1), dt)
            np.copyto(keepf, keep)
            skip = _take((N, u), dt)
            temps += [Fc, keepf, skip]
        R3, Rs = R[3], R[:3]
        rm = self.rmask
        UT = np.ascontiguousarray(Wc[:, :u].transpose(0, 2, 1))   # (4, u, u): Uₖᵀ
        dZ = _take((4, T, N, u), dt)
        P = _take((4, N, u), dt)
        gcn = _take((N, u), dt)
        temps += [dZ, P, gcn]
        gh = np.zeros((N, u), dtype=dt)
        mul, matmul, addreduce = np.multiply, np.matmul, np.add.reduce
        for j in range(T - 1, -1, -1):
            if live[j]:
                gh += GH[j]
            mul(gh, E[j], out=gcn)
            gcn += gc
            d = dZ[:, j]
            mul(gcn, Rs[:, j], out=d[:3])
            mul(gh, R3[j], out=d[3])
            if keep is not None:
                mul(gh, keepf[j], out=skip)
            matmul(d, UT, out=P)
            addreduce(P, axis=0, out=gh)
            if rm is not None:
                gh *= rm
            if keep is not None:
                gh += skip
            mul(gcn, Fc[j], out=gc)
        needs = self.needs
        dZ3 = dZ.reshape(4, T * N, u)
        gx = gW = gU = gb = None
        if needs[0]:
            gxt = np.matmul(dZ3, Wc[:, u:u + D].transpose(0, 2, 1)).sum(axis=0).reshape(T, N, D)
            if self.go_backwards:
                gxt = gxt[::-1]
            gx = np.ascontiguousarray(gxt.transpose(1, 0, 2))
            if self.xmask is not None:
                gx *= self.xmask[:, None, :]
        if needs[1] or needs[2] or needs[3]:
            gP = np.matmul(Hc[:-1].reshape(T * N, K).T, dZ3)       # (4, K, u): [Hᵣ, X, 1]ᵀ·∂Zₖ
            gP = gP.transpose(1, 0, 2).reshape(K, 4 * u)
            gU = gP[:u] if needs[2] else None
            gW = gP[u:u + D] if needs[1] else None
            gb = gP[u + D] if needs[3] else None
        _give(*temps)
        return (gx, gW, gU, gb, gh if needs[4] else None, gc if needs[5] else None)

    # The compiled form of the same path: step-major work arrays, a step's four gates side by side
    # in one row (A[j] is (n, 4u), i f g o), so that the step's product is one (n, K)·(K, 4u) and
    # everything point-wise around it is one call of axone._kernels (see lstm_fwd / lstm_bwd in
    # _kernels.c for the equations, the same as _lstm_forward / _lstm_backward above).
    #   Hc (T+1, n, K)   [hᵣ, xₜ, 1] rows, as above;    H (T+1, n, u) h itself, with recurrent dropout
    #   A  (T, n, 4u)    z, then the gate activations;  C (T+1, n, u);  AC (T, n, u) = tanh(C[1:])
    #   fr (T, n)        uint8, 1 where the mask is False (the row keeps its state at that step)
    # The rows of a batch never meet in the recurrence, so a large batch is cut into shards of
    # rows, each run through all its steps on its own thread (the products and step kernels
    # release the GIL); the weight gradients of the shards are summed in shard order.
    def _lstm_forward_compiled(self, x, W, U, b, h0, c0, dt):
        N, T, D = x.shape
        u = U.shape[0]
        K = u + D + 1
        self.Wc = Wc = np.concatenate([U, W, b[None]]).astype(dt, copy=False)    # (K, 4u)
        self.work = _Work()
        keep = None
        if self.mask is not None:
            keep = self.mask.T[::-1] if self.go_backwards else self.mask.T         # (T, N)
        rm = None if self.rmask is None else np.ascontiguousarray(self.rmask, dtype=dt)
        out = np.empty((N, T + 1, u), dtype=dt)
        self.pin = _pin_blas(N, T, K, 4 * u)
        with _blas_scope(self.pin):
            self.shards = [_Shard(lo, hi) for lo, hi in _shard_bounds(N, T, K, 4 * u)]
            _run_shards(lambda sh: self._shard_forward(sh, x, Wc, h0, c0, keep, rm, out, dt),
                        self.shards)
        return out

    @staticmethod
    def lstm_infer_small(x, W, U, b, go_backwards=False):
        """An LSTM over a sequence of at most ``_SMALL_ROWS`` rows at inference (one sample: the
        serving case), from zero states, without a mask or dropout: the compiled step loop
        (``lstm_forward_seq``) called directly on arrays of its own, which is what
        ``_lstm_forward_compiled`` runs for such a batch (one shard; the loop's products for so
        few rows are its own, not the BLAS, so no BLAS threads to pin), without the node, the
        shards and the work pool around it: the same bits.  Returns (hₜ for every step as a
        (T, N, u) view, c_T), or None when the compiled loop is not in use or does not apply
        (another dtype, more rows)."""
        seq = _seq_kernels()
        dt = x.dtype
        if (seq is None or not (_FAST_LSTM and _COMPILED_LSTM) or x.ndim != 3
                or not 0 < x.shape[0] <= _SMALL_ROWS or dt not in _SEQ_FLOATS
                or W.dtype != dt or U.dtype != dt or b.dtype != dt):
            return None
        N, T, D = x.shape
        u = U.shape[0]
        K = u + D + 1
        Wc = np.concatenate([U, W, b[None]])                                     # (K, 4u)
        Hc = np.empty((T + 1, N, K), dtype=dt)
        xt = x.transpose(1, 0, 2)
        Hc[:T, :, u:u + D] = xt[::-1] if go_backwards else xt
        Hc[:T, :, u + D] = 1
        Hc[0, :, :u] = 0
        C = np.empty((T + 1, N, u), dtype=dt)
        C[0] = 0
        seq.lstm_forward_seq(np.empty((T, N, 4 * u), dtype=dt), C, np.empty((T, N, u), dtype=dt),
                             Hc, None, None, None, Wc)
        return Hc[1:, :, :u], C[T]

    def _shard_forward(self, sh, x, Wc, h0, c0, keep, rm, out, dt):
        lo, hi = sh.lo, sh.hi
        n, T, D = hi - lo, x.shape[1], x.shape[2]
        K = Wc.shape[0]
        u = K - D - 1
        work = self.work
        Hc = work.take((T + 1, n, K), dt)
        xt = x[lo:hi].transpose(1, 0, 2)
        if self.go_backwards:
            xt = xt[::-1]
        if self.xmask is None:
            Hc[:T, :, u:u + D] = xt
        else:
            np.multiply(xt, self.xmask[lo:hi], out=Hc[:T, :, u:u + D])
        Hc[:T, :, u + D] = 1
        H = None
        if rm is not None:
            rm = rm[lo:hi]
            H = work.take((T + 1, n, u), dt)
            H[0] = h0[lo:hi]
            np.multiply(h0[lo:hi], rm, out=Hc[0, :, :u])
        else:
            Hc[0, :, :u] = h0[lo:hi]
        fr = None if keep is None else np.ascontiguousarray(~keep[:, lo:hi], dtype=np.uint8)
        A = work.take((T, n, 4 * u), dt)
        C = work.take((T + 1, n, u), dt)
        AC = work.take((T, n, u), dt)
        C[0] = c0[lo:hi]
        seq = _seq_kernels()
        if seq is not None and _PRE_INPUT and n >= _PRE_MIN_ROWS:      # the whole loop in C
            # the input part [xₜ, 1]·[W; b] of every step at once (one product of T·n rows),
            # then each step adds hᵣ·U: a step's product is u deep instead of u + D + 1
            np.matmul(Hc[:T, :, u:].reshape(T * n, D + 1), Wc[u:], out=A.reshape(T * n, 4 * u))
            seq.lstm_forward_seq(A, C, AC, Hc, H, rm, fr, Wc, True)
        elif seq is not None:
            seq.lstm_forward_seq(A, C, AC, Hc, H, rm, fr, Wc)
        else:
            step, matmul = self.kernels.lstm_forward, np.matmul
            for j in range(T):
                matmul(Hc[j], Wc, out=A[j])
                step(j, A, C, AC, Hc, H, rm, fr)
        sh.A, sh.C, sh.AC, sh.Hc, sh.fr, sh.rm = A, C, AC, Hc, fr, rm
        out[lo:hi, :T] = (Hc[1:, :, :u] if H is None else H[1:]).transpose(1, 0, 2)
        out[lo:hi, T] = C[T]

    def _lstm_backward_compiled(self, gout):
        """The backward of _lstm_forward_compiled, shard by shard (see _shard_backward); then
        [∂U; ∂W; ∂b] is the sum of the shards' parts."""
        Wc, shards = self.Wc, self.shards
        sh0 = shards[0]
        T, _, G4 = sh0.A.shape
        u = G4 // 4
        K = Wc.shape[0]
        D = K - u - 1
        dt = sh0.A.dtype
        N = shards[-1].hi
        needs = self.needs
        G = np.ascontiguousarray(gout, dtype=dt)
        gx = np.empty((N, T, D), dtype=dt) if needs[0] else None
        gh = np.empty((N, u), dtype=dt)
        gc = np.empty((N, u), dtype=dt)
        overlap = len(shards) == 1
        with _blas_scope(self.pin):
            _run_shards(lambda sh: self._shard_backward(sh, G, gx, gh, gc, overlap), shards)
        gW = gU = gb = None
        if needs[1] or needs[2] or needs[3]:
            gP = shards[0].gP
            for sh in shards[1:]:
                gP += sh.gP                              # (K, 4u): [Hᵣ, X, 1]ᵀ·∂Z
            gU = gP[:u] if needs[2] else None
            gW = gP[u:u + D] if needs[1] else None
            gb = gP[u + D] if needs[3] else None
        for sh in shards:
            sh.gP = None
        if gx is not None and self.xmask is not None:
            gx *= self.xmask[:, None, :]
        return (gx, gW, gU, gb, gh if needs[4] else None, gc if needs[5] else None)

    def _shard_backward(self, sh, G, gx, gh_out, gc_out, overlap):
        """One shard's rows: per step j in reverse, one kernel call (which first finishes step
        j+1 with its product P = ∂zⱼ₊₁·Uᵀ) and that product; then [Hᵣ, X, 1]ᵀ·∂Z and ∂x = ∂Z·Wᵀ.

        Those two products need only finished steps, so with ``overlap`` they are formed block
        by block of steps on a second thread while the recurrence goes on; the blocks of
        [∂U; ∂W; ∂b] are summed in a fixed order."""
        A, C, AC, Hc, fr, rm, Wc = sh.A, sh.C, sh.AC, sh.Hc, sh.fr, sh.rm, self.Wc
        lo, hi = sh.lo, sh.hi
        T, n, G4 = A.shape
        u = G4 // 4
        K = Wc.shape[0]
        D = K - u - 1
        dt = A.dtype
        needs = self.needs
        Gs = G[lo:hi]
        live = Gs[:, :T].any(axis=(0, 2))               # steps with an upstream gradient on h
        gc = np.array(Gs[:, T], dtype=dt)
        gh = np.zeros((n, u), dtype=dt)
        UT = Wc[:u].T                                    # (4u, u)
        WT = Wc[u:u + D].T                               # (4u, D)
        dZ = _take((T, n, G4), dt)
        P = _take((n, u), dt)
        want_w = needs[1] or needs[2] or needs[3]
        gxt = np.empty((T, n, D), dtype=dt) if gx is not None else None
        parts = []                                       # [Hᵣ, X, 1]ᵀ·∂Z block by block

        def block(a, b):                                 # steps a … b−1, all finished
            z = dZ[a:b].reshape(-1, G4)
            if gxt is not None:
                np.matmul(z, WT, out=gxt[a:b].reshape(-1, D))
            return np.matmul(Hc[a:b].reshape(-1, K).T, z) if want_w else None

        every = _overlap_block(T, n, K, G4) if overlap else 0
        pool = _background() if every else None
        step, matmul = self.kernels.lstm_backward, np.matmul
        seq = _seq_kernels()
        end = T
        try:
            if seq is not None:                          # the loop in C, a block at a time
                live8 = live.astype(np.uint8)
                while every and end - every > every // 2:
                    seq.lstm_backward_seq(end, end - every, A, C, AC, dZ, gh, gc, P, Gs, live8,
                                          rm, fr, Wc)
                    parts.append(pool.submit(block, end - every, end))
                    end -= every
                seq.lstm_backward_seq(end, 0, A, C, AC, dZ, gh, gc, P, Gs, live8, rm, fr, Wc)
            else:
                prev = None
                for j in range(T - 1, -1, -1):
                    step(j, A, C, AC, dZ, gh, gc, prev, Gs if live[j] else None, rm, fr)
                    matmul(dZ[j], UT, out=P)
                    prev = P
                    if every and end - j >= every and j > every // 2:
                        parts.append(pool.submit(block, j, end))
                        end = j
            step(-1, A, C, AC, dZ, gh, gc, P, None, rm, fr)
            last = block(0, end)
            parts = [p.result() for p in parts] + [last]
        finally:
            for p in parts:                              # never give back buffers still in use
                if hasattr(p, "result"):
                    p.cancel() or p.exception()
        if gxt is not None:
            gx[lo:hi] = (gxt[::-1] if self.go_backwards else gxt).transpose(1, 0, 2)
        if want_w:
            gP = parts[0]
            for p in parts[1:]:
                gP += p
            sh.gP = gP
        gh_out[lo:hi] = gh
        gc_out[lo:hi] = gc
        _give(dZ, P)


# GRU (reset_after=True) and SimpleRNN with Keras's default activations run their step loops in
# C (RNNSequence._seq_forward) when NumPy's gemm is handed over; False keeps the NumPy loop.
_SEQ_GRU_SIMPLE = True
# The same for the GRU with reset_after=False (gru_rb_forward_seq / gru_rb_backward_seq);
# False keeps its NumPy loop.
_SEQ_GRU_RESET_BEFORE = True


def _seq_gru_simple(node, x, W, U, b, h0):
    """Sets node.seq to the dtype of the compiled GRU / SimpleRNN loop when it applies."""
    cell = node.cell
    if not _SEQ_GRU_SIMPLE or cell not in ("gru", "simple") or node.activation != "tanh":
        return False
    if cell == "gru" and node.recurrent_activation != "sigmoid":
        return False
    rb = cell == "gru" and not node.reset_after
    if rb and not _SEQ_GRU_RESET_BEFORE:
        return False
    dt = np.result_type(x, W, U, b, h0)
    if dt not in (np.float32, np.float64) or _seq_kernels() is None:
        return False
    if _compiled.kernels("gru_rb_forward_seq" if rb else "gru_forward_seq") is None:
        return False
    node.seq = dt
    return True


class _Shard:
    """Rows lo … hi−1 of a batch in the compiled LSTM path, and their work arrays."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi
        self.gP = None


# Batch shards: a batch of at least 2·_SHARD_MIN_ROWS rows and enough work per step is cut into
# as many shards as the compiled module may use threads (AXONE_NUM_THREADS, the CPUs this process
# may run on), at most _MAX_SHARDS, while OpenBLAS runs on one thread.  _SHARDS = False keeps one
# shard.
_SHARDS = True
_SHARD_MIN_ROWS = 16
_SHARD_MIN_WORK = 1 << 22
_MAX_SHARDS = 4


def _blas_single():
    """Shards only while NumPy's OpenBLAS runs on one thread (training's policy for small
    steps): with BLAS threading its own products, shard threads would compete with it."""
    from .. import backend
    return backend.get_blas_threads() == 1


def _shard_threads():
    """Threads the compiled module may use (AXONE_NUM_THREADS, else the CPUs available)."""
    return _native.get_num_threads()


# A batch large enough for shards, while OpenBLAS runs on several threads (training leaves it so
# for a large model step): the step loops run with OpenBLAS on one thread and the rows in shards
# on axone's threads instead.  A step's product (tens to hundreds of rows) is too small for
# OpenBLAS's threads to pay, and on a busy machine they mostly wait for each other; the shards
# never meet until their weight gradients are summed.  False leaves OpenBLAS as it is.
_PIN_BLAS = True
# Shards of at least _PRE_MIN_ROWS rows form the input part [xₜ, 1]·[W; b] of all steps in one
# product before the compiled loop, whose step products are then u deep instead of u + D + 1
# (the same sums split in two, so equal to rounding); smaller shards keep the one product a step
# (one row: the input product would cost more than it saves).  False: always one a step.
_PRE_INPUT = True
_PRE_MIN_ROWS = 16
# rows the compiled loop multiplies by itself, without the BLAS (SMALL_ROWS in _kernels.c)
_SMALL_ROWS = 2
_SEQ_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _pin_blas(N, T, K, G4):
    """True when the sequence is to run with OpenBLAS pinned to one thread (see _PIN_BLAS)."""
    if not (_PIN_BLAS and _SHARDS and _seq_kernels() is not None):
        return False
    from .. import backend
    blas = backend.get_blas_threads()
    return (blas is not None and blas > 1 and N * K * G4 * T >= _SHARD_MIN_WORK
            and min(_MAX_SHARDS, N // _SHARD_MIN_ROWS, _shard_threads()) >= 2)


def _blas_scope(pin):
    """OpenBLAS on one thread for the block when ``pin``, else a scope that changes nothing."""
    from .. import backend
    return backend.blas_threads(1 if pin else None)


def _shard_bounds(N, T, K, G4):
    k = 1
    if _SHARDS and N * K * G4 * T >= _SHARD_MIN_WORK and _blas_single():
        k = min(_MAX_SHARDS, N // _SHARD_MIN_ROWS, _shard_threads())
    if N <= 0:
        return [(0, 0)]
    size = -(-N // max(1, k))
    return [(lo, min(N, lo + size)) for lo in range(0, N, size)]


def _run_shards(fn, shards):
    """fn(shard) for every shard: the first on this thread, the others on the worker pool."""
    if len(shards) == 1:
        fn(shards[0])
        return
    pool = _background()
    futures = [pool.submit(fn, sh) for sh in shards[1:]]
    try:
        fn(shards[0])
    finally:
        for f in futures:                                # all done before anything is raised
            f.exception()
    for f in futures:
        f.result()


# The LSTM backward forms its weight and input gradients on a second thread while the recurrence
# runs (False: after the loop, on the calling thread); only with a single shard.  Worth it from
# about this many multiply-adds in those products; blocks of about 1/5 of the sequence.
_OVERLAP = True
_OVERLAP_MIN_WORK = 1 << 23
_BG = []


def _overlap_block(T, N, K, G4):
    """Steps per block for the overlapped products, or 0 to form them after the loop."""
    if not _OVERLAP or T < 10 or T * N * K * G4 < _OVERLAP_MIN_WORK:
        return 0
    return max(2, -(-T // 5))


_BG_LOCK = threading.Lock()


def _background():
    """The worker threads, started on first use (once, whichever thread gets here first)."""
    if not _BG:
        with _BG_LOCK:
            if not _BG:
                from concurrent.futures import ThreadPoolExecutor
                _BG.append(ThreadPoolExecutor(_MAX_SHARDS, thread_name_prefix="axone-lstm"))
    return _BG[0]


def _after_fork():                       # a forked child has no worker threads: start its own
    global _BG_LOCK, _pool_lock
    _BG.clear()
    _BG_LOCK = threading.Lock()
    _pool_lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


_LAYERS = {"simple": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


def rnn_sequence(cell, x, kernel, recurrent_kernel, bias, h0, c0=None, activation="tanh",
                 recurrent_activation="sigmoid", mask=None, go_backwards=False, reset_after=True,
                 input_dropout_mask=None, recurrent_dropout_mask=None):
    """Run a SimpleRNN (``cell="simple"``), LSTM or GRU over a whole sequence as one node.

    Returns ``(hidden_states, final_h, final_c)``: hidden_states (N, T, u) in processing order
    (reversed with ``go_backwards``), final_c None except for the LSTM.
    """
    if cell not in _LAYERS:
        raise ValueError(f"rnn_sequence: cell must be one of {sorted(_LAYERS)}, received {cell!r}")
    x = M._t(x, "rnn_sequence")
    if x.ndim != 3:
        raise ValueError(f"{_LAYERS[cell]}: expected inputs of shape (batch, timesteps, features), "
                         f"received {x.shape}")
    if x.shape[1] == 0:      # Keras has no result for it either (its loop indexes step 0)
        raise ValueError(f"{_LAYERS[cell]}: expected a sequence of at least one timestep, "
                         f"received inputs of shape {x.shape}")
    args = [x, M._t(kernel), M._t(recurrent_kernel), M._t(bias), M._t(h0)]
    if cell == "lstm":
        args.append(M._t(c0))
    m = None
    if mask is not None:
        m = mask.data if isinstance(mask, Tensor) else mask
        # a device mask stays on its device (the node moves a host one to the inputs' module)
        m = (m.astype(bool) if type(m) is not np.ndarray and array_module(m) is not np
             else np.asarray(m).astype(bool))
        if m.shape != x.shape[:2]:
            raise ValueError(f"rnn_sequence: mask must have shape {x.shape[:2]} (batch, timesteps), "
                             f"received {m.shape}")
    out = RNNSequence.apply(*args, cell=cell, activation=activation,
                            recurrent_activation=recurrent_activation, mask=m,
                            go_backwards=bool(go_backwards), reset_after=bool(reset_after),
                            xmask=input_dropout_mask, rmask=recurrent_dropout_mask)
    T = x.shape[1]
    if cell == "lstm":
        hs = M.get_item(out, (slice(None), slice(0, T)))
        c = M.get_item(out, (slice(None), T))
    else:
        hs, c = out, None
    h = M.get_item(out, (slice(None), T - 1))       # from the node's output: backward skips hs
    return hs, h, c
