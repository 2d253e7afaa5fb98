"""Connectionist temporal classification: the CTC loss and the CTC decoders (keras.ops names).

The loss is Graves et al.'s forward–backward algorithm in log space over the extended label
sequence l' = (blank, l₁, blank, l₂, …, blank) of length S = 2L + 1:

    α_t(s) = [α_{t−1}(s) ⊕ α_{t−1}(s−1) ⊕ α_{t−1}(s−2)·skip(s)] ⊗ log y_t(l'_s)
    β_t(s) = β_{t+1}(s) ⊗ log y_{t+1}(l'_s) ⊕ β_{t+1}(s+1) ⊗ log y_{t+1}(l'_{s+1})
             ⊕ β_{t+1}(s+2) ⊗ log y_{t+1}(l'_{s+2})·skip(s+2)

(⊕ = log-add, ⊗ = +; skip(s): l'_s is a label different from l'_{s−2}; β_t(s) here leaves
out y_t, so Σ_s e^(α_t(s) + β_t(s)) = p(l | x) at every t).  The loss is −log p(l | x), and
its gradient with respect to the logits x_t(k) is the closed form

    ∂L/∂x_t(k) = softmax(x_t)(k) − Σ_{s : l'_s = k} e^(α_t(s) + β_t(s)) / p(l | x)

for t below the sequence's length (0 beyond it).

Both compute with the array module of the logits (``xp = array_module(...)``): the labels and
lengths are checked on the host, the extended label sequence and its masks built there, then
moved to the logits' device, where the forward–backward recursions and the greedy decoder
run.  The beam search is a sequential search over small, data-dependent sets of prefixes
(rows merged with ``unique`` along an axis and ``logaddexp.at``, which CuPy's ufuncs lack):
it runs on the host and its results are moved to the logits' device.
"""
import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..device import array_module, to_numpy
from . import math as M

__all__ = ["ctc_loss", "ctc_decode"]

_NEG_INF = -np.inf


def _on(xp, a):
    """Host array ``a`` on the device of module ``xp`` (as it is on the host)."""
    return a if xp is np else xp.asarray(a)


def _int_array(x, name, fn):
    """Integer labels or lengths, checked on the host (a device array is copied back)."""
    a = x.data if isinstance(x, Tensor) else x
    a = np.asarray(a) if type(a) is np.ndarray or array_module(a) is np else to_numpy(a)
    if a.dtype.kind == "f":
        if a.size and not np.all(a == np.round(a)):
            raise TypeError(f"{fn}: `{name}` must hold integers, received non-integer values")
    elif a.dtype.kind not in "iub":
        raise TypeError(f"{fn}: `{name}` must hold integers, received dtype {a.dtype}")
    return a.astype(np.int64)


def _log_softmax(x):
    xp = array_module(x)
    s = x - xp.max(x, axis=-1, keepdims=True)
    return s - xp.log(xp.sum(xp.exp(s), axis=-1, keepdims=True))


def _ctc_alpha_beta(logp, labels, label_length, input_length, blank):
    """Log α and β (B, T, S) and log p(l | x) (B,) for log-probabilities ``logp`` (B, T, C);
    the labels and lengths are host arrays, the recursions run on ``logp``'s device."""
    xp = array_module(logp)
    b_size, t_max, _ = logp.shape
    l_max = labels.shape[1]
    s_max = 2 * l_max + 1
    ext = np.full((b_size, s_max), blank, dtype=np.int64)
    ext[:, 1::2] = labels
    s_len = 2 * label_length + 1
    valid_s = np.arange(s_max)[None, :] < s_len[:, None]
    skip = np.zeros((b_size, s_max), dtype=bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    rows = np.arange(b_size)
    last = s_len - 1
    t_last = input_length - 1
    second = np.maximum(last - 1, 0)
    has_second = last >= 1
    has_label = label_length > 0
    if xp is not np:
        ext, valid_s, skip, rows, last, t_last, second, has_second, has_label = (
            xp.asarray(a) for a in (ext, valid_s, skip, rows, last, t_last, second, has_second,
                                    has_label))
    # log y_t(l'_s): (B, T, S)
    emit = xp.take_along_axis(logp, xp.broadcast_to(ext[:, None, :], (b_size, t_max, s_max)),
                              axis=2)
    emit = xp.where(valid_s[:, None, :], emit, _NEG_INF)

    alpha = xp.full((b_size, t_max, s_max), _NEG_INF)
    alpha[:, 0, 0] = emit[:, 0, 0]
    if s_max > 1:
        alpha[:, 0, 1] = xp.where(has_label, emit[:, 0, 1], _NEG_INF)
    with np.errstate(invalid="ignore"):
        for t in range(1, t_max):
            prev = alpha[:, t - 1]
            acc = prev.copy()
            acc[:, 1:] = xp.logaddexp(acc[:, 1:], prev[:, :-1])
            acc[:, 2:] = xp.where(skip[:, 2:], xp.logaddexp(acc[:, 2:], prev[:, :-2]), acc[:, 2:])
            alpha[:, t] = acc + emit[:, t]

    beta = xp.full((b_size, t_max, s_max), _NEG_INF)
    # which sequences end at step t, decided on the host (the lengths are host arrays there)
    host_t_last = input_length - 1
    with np.errstate(invalid="ignore"):
        for t in range(t_max - 1, -1, -1):
            cur = xp.full((b_size, s_max), _NEG_INF)
            if t + 1 < t_max:
                nxt = beta[:, t + 1] + emit[:, t + 1]
                cur = nxt.copy()
                cur[:, :-1] = xp.logaddexp(cur[:, :-1], nxt[:, 1:])
                cur[:, :-2] = xp.where(skip[:, 2:], xp.logaddexp(cur[:, :-2], nxt[:, 2:]),
                                       cur[:, :-2])
                cur[t > t_last] = _NEG_INF
            start = t == host_t_last
            if start.any():
                init = xp.full((b_size, s_max), _NEG_INF)
                init[rows, last] = 0.0
                init[rows, second] = xp.where(has_second, 0.0, init[rows, second])
                cur = xp.where(_on(xp, start)[:, None], init, cur)
            beta[:, t] = cur

    ends = alpha[rows, t_last, last]
    ends_prev = xp.where(has_second, alpha[rows, t_last, second], _NEG_INF)
    log_p = xp.logaddexp(ends, ends_prev)
    return alpha, beta, ext, log_p


class CTCLoss(Function):
    """L_b = −log p(l_b | x_b) by the forward–backward algorithm (see the module docstring);
    dL_b/dx_t(k) = softmax(x_t)(k) − (1/p) Σ_{s : l'_s = k} e^(α_t(s) + β_t(s)) for t < T_b."""

    def forward(self, logits):
        x = logits.astype(np.float64)
        logp = _log_softmax(x)
        alpha, beta, ext, log_p = _ctc_alpha_beta(logp, self.labels, self.label_length,
                                                  self.input_length, self.blank)
        self.state = (logp, alpha, beta, ext, log_p)
        return (-log_p).astype(logits.dtype)

    def backward(self, g):
        logp, alpha, beta, ext, log_p = self.state
        xp = array_module(logp)
        b_size, t_max, n_cls = logp.shape
        with np.errstate(invalid="ignore", over="ignore"):
            occ_s = xp.exp(alpha + beta - log_p[:, None, None])        # (B, T, S)
        occ_s = xp.where(xp.isfinite(log_p)[:, None, None], xp.nan_to_num(occ_s), 0.0)
        occ = xp.zeros((b_size, t_max, n_cls))
        idx = xp.broadcast_to(ext[:, None, :], occ_s.shape)
        bi = xp.broadcast_to(xp.arange(b_size)[:, None, None], occ_s.shape)
        ti = xp.broadcast_to(xp.arange(t_max)[None, :, None], occ_s.shape)
        xp.add.at(occ, (bi, ti, idx), occ_s)
        grad = xp.exp(logp) - occ
        in_seq = np.arange(t_max)[None, :] < self.input_length[:, None]
        finite = xp.isfinite(log_p)[:, None]
        grad = xp.where((_on(xp, in_seq) & finite)[:, :, None], grad, 0.0)
        g = xp.asarray(g, dtype=np.float64).reshape(b_size, 1, 1)
        return ((grad * g).astype(self.dtype),)


def ctc_loss(target, output, target_length, output_length, mask_index=0):
    """CTC loss per sequence, as ``keras.ops.ctc_loss``.

    ``target`` (batch, max_label_length) integer labels, of which the first ``target_length[b]``
    count; ``output`` (batch, max_time, num_classes) logits (a log-softmax is taken here), of
    which the first ``output_length[b]`` steps count; ``mask_index`` the blank class.  Returns
    (batch,) losses −log p(target | output); an impossible alignment gives +inf (and a zero
    gradient)."""
    fn = "ctc_loss"
    output = M._t(output, fn)
    if output.ndim != 3:
        raise ValueError(f"{fn}: `output` must have shape (batch_size, max_length, num_classes), "
                         f"received shape {output.shape}")
    if output.dtype.kind != "f":
        output = M.cast(output, "float32")
    labels = _int_array(target, "target", fn)
    if labels.ndim != 2 or labels.shape[0] != output.shape[0]:
        raise ValueError(f"{fn}: `target` must have shape (batch_size, max_label_length) with "
                         f"batch_size {output.shape[0]}, received shape {labels.shape}")
    b_size, t_max, n_cls = output.shape
    lab_len = _int_array(target_length, "target_length", fn).reshape(-1)
    in_len = _int_array(output_length, "output_length", fn).reshape(-1)
    for name, arr, top in (("target_length", lab_len, labels.shape[1]),
                           ("output_length", in_len, t_max)):
        if arr.shape != (b_size,):
            raise ValueError(f"{fn}: `{name}` must hold one length per sequence ({b_size}), "
                             f"received {arr.size}")
        if arr.size and (arr.min() < 0 or arr.max() > top):
            raise ValueError(f"{fn}: `{name}` values must lie in [0, {top}], received "
                             f"{arr.min()}..{arr.max()}")
    if in_len.size and in_len.min() < 1:
        raise ValueError(f"{fn}: `output_length` values must be at least 1, received "
                         f"{in_len.min()}")
    if isinstance(mask_index, bool) or not isinstance(mask_index, (int, np.integer)) \
            or not 0 <= mask_index < n_cls:
        raise ValueError(f"{fn}: `mask_index` must be a class index in [0, {n_cls}), received "
                         f"{mask_index!r}")
    used = np.arange(labels.shape[1])[None, :] < lab_len[:, None]
    if np.any(used & ((labels < 0) | (labels >= n_cls))):
        raise ValueError(f"{fn}: `target` labels must lie in [0, {n_cls}) within target_length")
    labels = np.where(used, labels, int(mask_index))
    return CTCLoss.apply(output, labels=labels, label_length=lab_len, input_length=in_len,
                         blank=int(mask_index), dtype=output.dtype)


# ------------------------------------------------------------------------ decoding
def _greedy_decode(x, lengths, merge_repeated, mask_index):
    """The best class per step on ``x``'s device (``lengths`` a host array)."""
    xp = array_module(x)
    b_size, t_max, _ = x.shape
    idx = xp.argmax(x, axis=-1).astype(np.int32)
    scores = xp.max(x, axis=-1)
    beyond = _on(xp, np.arange(t_max)[None, :] >= lengths[:, None])
    idx = xp.where(beyond, mask_index, idx)
    scores = xp.where(beyond, 0.0, scores)
    if merge_repeated:
        repeat = xp.zeros_like(beyond)
        repeat[:, 1:] = idx[:, 1:] == idx[:, :-1]
        idx = xp.where(repeat, mask_index, idx)
    blank = idx == mask_index
    idx = xp.where(blank, -1, idx)
    # the kept labels first, in time order, the −1 padding after them
    order = xp.argsort(xp.where(blank, t_max, xp.arange(t_max)[None, :]), axis=-1, kind="stable")
    idx = xp.take_along_axis(idx, order, axis=-1)
    total = -xp.sum(scores, axis=1)[:, None]
    return idx[None].astype(np.int32), total.astype(x.dtype)


def _unique_rows(paths, size, pad):
    """The distinct rows of ``paths`` (lexicographic order), padded with ``pad`` rows to
    ``size``, and for each input row the index of its distinct row."""
    uniq, inverse = np.unique(paths, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    if uniq.shape[0] < size:
        uniq = np.concatenate([uniq, np.full((size - uniq.shape[0], paths.shape[1]), pad,
                                             dtype=paths.dtype)])
    return uniq, inverse


def _merge(inverse, scores, n):
    """Log-sum of ``scores`` into ``n`` buckets."""
    out = np.full(n, _NEG_INF)
    np.logaddexp.at(out, inverse, scores)
    return out


def _beam_extend(paths, scores, masked, x, n_cls, mask_index, pad):
    paths = np.repeat(paths, n_cls, axis=0)
    scores = np.repeat(scores, n_cls)
    prev_masked = np.repeat(masked, n_cls)
    n = paths.shape[0]
    rows = np.arange(n)
    tail = np.argmax(paths == pad, axis=1)
    tails = np.where(tail == 0, pad, paths[rows, tail - 1])
    classes = np.arange(n_cls, dtype=paths.dtype)
    classes[mask_index] = pad
    classes = np.tile(classes, n // n_cls)
    masked = classes == pad
    classes = np.where(~prev_masked & (tails == classes), pad, classes)
    paths[rows, tail] = classes
    scores = scores + np.tile(x, n // n_cls)
    return paths, scores, masked


def _beam_prune(paths, scores, masked, n_cls, beam_width, pad):
    uniq, inverse = _unique_rows(paths, 2 * n_cls * beam_width, pad)
    n = uniq.shape[0]
    emit = _merge(inverse, np.where(masked, _NEG_INF, scores), n)
    blank = _merge(inverse, np.where(masked, scores, _NEG_INF), n)
    top = np.argsort(np.logaddexp(emit, blank), kind="stable")[-beam_width:]
    paths = np.concatenate([uniq[top], uniq[top]])
    scores = np.concatenate([emit[top], blank[top]])
    masked = np.concatenate([np.zeros(beam_width, dtype=bool), np.ones(beam_width, dtype=bool)])
    return paths, scores, masked


def _beam_search_decode(x, lengths, beam_width, top_paths, mask_index):
    b_size, t_max, n_cls = x.shape
    logp = _log_softmax(x.astype(np.float64))[:, :, ::-1]    # classes reversed: ties as Keras
    mask = n_cls - mask_index - 1
    pad = -1
    n_init = min(n_cls, beam_width)
    out_paths, out_scores = [], []
    for b in range(b_size):
        xb = logp[b]
        paths = np.full((2 * beam_width, t_max), pad, dtype=np.int64)
        best = np.argsort(xb[0], kind="stable")[-n_init:]
        paths[:n_init, 0] = np.where(best == mask, pad, best)
        scores = np.full(2 * beam_width, _NEG_INF)
        scores[:n_init] = xb[0, best]
        masked = paths[:, 0] == pad
        for t in range(1, int(lengths[b])):
            paths, scores, masked = _beam_extend(paths, scores, masked, xb[t], n_cls, mask, pad)
            paths, scores, masked = _beam_prune(paths, scores, masked, n_cls, beam_width, pad)
        uniq, inverse = _unique_rows(paths, 2 * n_cls * beam_width, pad)
        merged = _merge(inverse, scores, uniq.shape[0])
        top = np.argsort(merged, kind="stable")[-top_paths:][::-1]
        out_paths.append(uniq[top])
        out_scores.append(merged[top])
    paths = np.stack(out_paths)
    paths = np.where(paths == pad, pad, n_cls - paths - 1)
    return (np.transpose(paths, (1, 0, 2)).astype(np.int32),
            np.stack(out_scores).astype(x.dtype))


def ctc_decode(inputs, sequence_lengths, strategy="greedy", beam_width=100, top_paths=1,
               merge_repeated=True, mask_index=0):
    """Decode CTC outputs, as ``keras.ops.ctc_decode``.

    ``inputs`` (batch, max_length, num_classes) logits, ``sequence_lengths`` (batch,).
    ``"greedy"``: the best class per step, repeats merged (``merge_repeated``) and the blank
    ``mask_index`` dropped; returns decoded (1, batch, max_length) with −1 padding and
    scores (batch, 1), the negated sum of the chosen logits.  ``"beam_search"``: the
    ``top_paths`` most probable label sequences of a prefix beam search of width
    ``beam_width`` on the log-softmax; returns decoded (top_paths, batch, max_length) and
    their log-probabilities (batch, top_paths).  Not differentiable."""
    fn = "ctc_decode"
    x = inputs.data if isinstance(inputs, Tensor) else inputs
    xp = array_module(x)
    x = np.asarray(x) if xp is np else x
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    if x.ndim != 3:
        raise ValueError(f"{fn}: `inputs` must have shape (batch_size, max_length, num_classes), "
                         f"received shape {x.shape}")
    b_size, t_max, n_cls = x.shape
    lengths = _int_array(sequence_lengths, "sequence_lengths", fn).reshape(-1)
    if lengths.shape != (b_size,):
        raise ValueError(f"{fn}: `sequence_lengths` must hold one length per sequence "
                         f"({b_size}), received {lengths.size}")
    if lengths.size and (lengths.min() < 0 or lengths.max() > t_max):
        raise ValueError(f"{fn}: `sequence_lengths` values must lie in [0, {t_max}]")
    if mask_index is None:
        mask_index = n_cls - 1
    if isinstance(mask_index, bool) or not isinstance(mask_index, (int, np.integer)) \
            or not 0 <= mask_index < n_cls:
        raise ValueError(f"{fn}: `mask_index` must be a class index in [0, {n_cls}), received "
                         f"{mask_index!r}")
    if strategy == "greedy":
        d, s = _greedy_decode(x, lengths, merge_repeated, int(mask_index))
    elif strategy == "beam_search":
        for name, v in (("beam_width", beam_width), ("top_paths", top_paths)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{fn}: `{name}` must be an integer >= 1, received {v!r}")
        if top_paths > beam_width:
            raise ValueError(f"{fn}: `top_paths` ({top_paths}) cannot exceed `beam_width` "
                             f"({beam_width})")
        if lengths.size and lengths.min() < 1:
            raise ValueError(f"{fn}: beam search needs `sequence_lengths` of at least 1")
        d, s = _beam_search_decode(x if xp is np else to_numpy(x), lengths, int(beam_width),
                                   int(top_paths), int(mask_index))
        d, s = _on(xp, d), _on(xp, s)
    else:
        raise ValueError(f"Invalid strategy {strategy}. Supported values are 'greedy' and "
                         f"'beam_search'.")
    return Tensor(d), Tensor(s)
