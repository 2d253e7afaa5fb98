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
"""
import numpy as np

from ..autograd.function import Function
from . import math as M

__all__ = ["rnn_sequence", "ACTIVATIONS"]


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


def _act(name):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"recurrent layers support the activations {sorted(ACTIVATIONS)}, "
                         f"received {name!r}") from None


class RNNSequence(Function):
    """One recurrent layer over a whole sequence: inputs x, W, U, b, h0 (and c0 for LSTM)."""

    def forward(self, x, W, U, b, h0, c0=None):
        cell, T = self.cell, x.shape[1]
        u = U.shape[0]
        act, dact = _act(self.activation)
        ract, dract = _act(self.recurrent_activation)
        if self.xmask is not None:
            x = x * self.xmask[:, None, :]
        self.x = x
        if cell == "gru" and self.reset_after:
            xp = x @ W + b[0]
        else:
            xp = x @ W + b
        hs = np.empty((x.shape[0], T, u), dtype=xp.dtype)
        rm = self.rmask
        h = h0
        c = c0
        steps = range(T - 1, -1, -1) if self.go_backwards else range(T)
        saved = []
        mask = self.mask
        for j, t in enumerate(steps):
            hr = h if rm is None else h * rm
            if cell == "simple":
                pre = xp[:, t] + hr @ U
                hn = act(pre)
                st = (h, hr, pre, hn)
            elif cell == "lstm":
                z = xp[:, t] + hr @ U
                zi, zf, zc, zo = z[:, :u], z[:, u:2 * u], z[:, 2 * u:3 * u], z[:, 3 * u:]
                i, f, o = ract(zi), ract(zf), ract(zo)
                g = act(zc)
                cn = f * c + i * g
                ac = act(cn)
                hn = o * ac
                st = (h, hr, c, zi, zf, zc, zo, i, f, g, o, cn, ac)
            else:  # gru
                xz, xr, xh = xp[:, t, :u], xp[:, t, u:2 * u], xp[:, t, 2 * u:]
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
                hn = np.where(m, hn, h)
                if cell == "lstm":
                    cn = np.where(m, cn, c)
            h = hn
            if cell == "lstm":
                c = cn
            hs[:, j] = h
            saved.append(st)
        self.saved, self.hs, self.xp_dtype = saved, hs, xp.dtype
        self.W, self.U, self.b, self.h0, self.c0 = W, U, b, h0, c0
        self.hT, self.cT = h, c
        # output: all hidden states (N, T, u) followed by the final c for LSTM, packed on axis 1
        if cell == "lstm":
            return np.concatenate([hs, c[:, None, :]], axis=1)
        return hs

    def backward(self, gout):
        cell, x, W, U, b = self.cell, self.x, self.W, self.U, self.b
        u = U.shape[0]
        T = x.shape[1]
        act, dact = _act(self.activation)
        ract, dract = _act(self.recurrent_activation)
        if cell == "lstm":
            ghs, gc = gout[:, :T], gout[:, T].copy()
        else:
            ghs, gc = gout, None
        G = W.shape[1]
        gxp = np.zeros((x.shape[0], T, G), dtype=gout.dtype)
        gU = np.zeros_like(U)
        gb1 = np.zeros(G, dtype=gout.dtype) if (cell == "gru" and self.reset_after) else None
        gh = np.zeros((x.shape[0], u), dtype=gout.dtype)
        rm, mask = self.rmask, self.mask
        steps = list(range(T - 1, -1, -1) if self.go_backwards else range(T))
        for j in range(T - 1, -1, -1):
            t = steps[j]
            gh = gh + ghs[:, j]
            st = self.saved[j]
            if mask is not None:
                m = mask[:, t][:, None]
                gh_skip = np.where(m, 0, gh)
                gh = np.where(m, gh, 0)
                if cell == "lstm":
                    gc_skip = np.where(m, 0, gc)
                    gc = np.where(m, gc, 0)
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
                gz = np.concatenate([gi * dract(i, zi), gf * dract(f, zf), gg * dact(g, zc),
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
                    grec = np.concatenate([gpz, gpr, grh], axis=1)
                    gxp[:, t] = np.concatenate([gpz, gpr, gph], axis=1)
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
                    g2 = np.concatenate([gpz, gpr], axis=1)
                    gU[:, :2 * u] += hr.T @ g2
                    gxp[:, t] = np.concatenate([gpz, gpr, gph], axis=1)
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
            gb = np.stack([gb0, gb1]) if gb1 is not None else gb0
        gh0 = gh if needs[4] else None
        res = [gx, gW, gU if needs[2] else None, gb, gh0]
        if cell == "lstm":
            res.append(gc if needs[5] else None)
        return tuple(res)


def rnn_sequence(cell, x, kernel, recurrent_kernel, bias, h0, c0=None, activation="tanh",
                 recurrent_activation="sigmoid", mask=None, go_backwards=False, reset_after=True,
                 input_dropout_mask=None, recurrent_dropout_mask=None):
    """Run a SimpleRNN (``cell="simple"``), LSTM or GRU over a whole sequence as one node.

    Returns ``(hidden_states, final_h, final_c)``: hidden_states (N, T, u) in processing order
    (reversed with ``go_backwards``), final_c None except for the LSTM.
    """
    x = M._t(x, "rnn_sequence")
    if x.ndim != 3:
        raise ValueError(f"rnn_sequence: expected inputs of shape (batch, timesteps, features), "
                         f"received {x.shape}")
    args = [x, M._t(kernel), M._t(recurrent_kernel), M._t(bias), M._t(h0)]
    if cell == "lstm":
        args.append(M._t(c0))
    m = None
    if mask is not None:
        m = np.asarray(mask.data if hasattr(mask, "data") else mask).astype(bool)
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
    h = M.get_item(hs, (slice(None), T - 1))
    return hs, h, c
