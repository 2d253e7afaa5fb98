"""Every op of axone.ops.nn, normalization and attention on device arrays (the strict stand-in).

Each op runs twice on the same values: on host NumPy arrays (where the compiled kernels and the
in-place buffers may run) and on ``StrictArray``s, which refuse any NumPy call and any mixing
with host arrays, so they take the plain formulas of the array module.  The forward results and
the backward gradients (each node's own ``backward``, walked without NumPy) must agree, and
where no compiled kernel or row path runs on the host they agree to the bit.
"""
import warnings

import numpy as np
import pytest

from axone import Tensor, backend
from axone.ops import attention as A
from axone.ops import nn
from axone.ops import normalization as N

import strict_xp
from strict_xp import StrictArray, from_strict, to_strict


@pytest.fixture(autouse=True, scope="module")
def _registered():
    strict_xp.register()
    yield
    strict_xp.unregister()


_r = np.random.default_rng(11)


def _n(*shape):
    return _r.normal(size=shape)


X = _n(4, 5) * 2.5                      # spans the kinks of the piecewise activations
X3 = _n(2, 3, 5)
W = _n(5, 3)
BIAS = _n(3)
LOGITS = _n(4, 5)
PROBS = np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)
ONEHOT = np.eye(5)[[1, 0, 4, 2]]
LABELS = np.array([1, 0, 4, 2], dtype=np.int64)
BIN_T = (_n(4, 5) > 0).astype(np.float64)
IMG = _n(2, 4, 4, 3)
GAMMA = _n(3) + 1.0
BETA = _n(3)
MEAN = _n(3)
Q, K, V = _n(2, 4, 2, 3), _n(2, 5, 2, 3), _n(2, 5, 2, 4)
KG, VG = _n(2, 5, 1, 3), _n(2, 5, 1, 4)          # one key/value head for two query heads
KEEP = _r.uniform(size=(2, 1, 4, 5)) > 0.3
KEEP[0, 0, 1] = False                            # a query row masked everywhere
DROP = (_r.uniform(size=(2, 2, 4, 5)) > 0.25) / 0.75


def _dropout(x):
    backend.set_seed(5)                 # the same draw for the host and the device run
    return nn.dropout(x, 0.4)


def _dropout_noise(x):
    backend.set_seed(6)
    return nn.dropout(x, 0.5, noise_shape=(None, 1))


def _with_stats(result):
    """batch_normalization's (y, batch mean, batch variance), the statistics as Tensors."""
    y, mean, var = result
    return y, Tensor(mean), Tensor(var)


def _rms_scaling(x, g):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # deprecated, and said so
        return N.layer_normalization(x, g, rms_scaling=True)


# name: (function, inputs); float inputs are leaves that require a gradient
TABLE = {
    # ---- nn: dense
    "dense": (nn.dense, [X3, W, BIAS]),
    "dense_2d": (nn.dense, [X, W, BIAS]),
    "dense_no_bias": (nn.dense, [X3, W]),
    "dense_relu": (lambda x, w, b: nn.dense(x, w, b, relu=True), [X3, W, BIAS]),
    "dense_relu_2d": (lambda x, w, b: nn.dense(x, w, b, relu=True), [X, W, BIAS]),
    "dense_relu_no_bias": (lambda x, w: nn.dense(x, w, relu=True), [X, W]),
    "dense_float32": (nn.dense, [X3.astype(np.float32), W.astype(np.float32),
                                 BIAS.astype(np.float32)]),
    # ---- nn: cross-entropies from logits
    "categorical_crossentropy_logits": (
        lambda t, z: nn.categorical_crossentropy(t, z, from_logits=True), [PROBS[::-1], LOGITS]),
    "categorical_crossentropy_logits_axis0": (
        lambda t, z: nn.categorical_crossentropy(t, z, from_logits=True, axis=0),
        [PROBS[::-1], LOGITS]),
    "categorical_crossentropy_logits_float32": (
        lambda t, z: nn.categorical_crossentropy(t, z, from_logits=True),
        [ONEHOT.astype(np.float32), LOGITS.astype(np.float32)]),
    "sparse_categorical_crossentropy_logits": (
        lambda z, c: nn.sparse_categorical_crossentropy(c, z, from_logits=True), [LOGITS, LABELS]),
    "sparse_categorical_crossentropy_column": (
        lambda z, c: nn.sparse_categorical_crossentropy(c, z, from_logits=True),
        [LOGITS, LABELS[:, None].astype(np.int32)]),
    "binary_crossentropy_logits": (
        lambda t, z: nn.binary_crossentropy(t, z, from_logits=True), [BIN_T, LOGITS]),
    # ---- nn: cross-entropies of probabilities
    "categorical_crossentropy": (nn.categorical_crossentropy, [ONEHOT, PROBS]),
    "sparse_categorical_crossentropy": (
        lambda p, c: nn.sparse_categorical_crossentropy(c, p), [PROBS, LABELS]),
    "binary_crossentropy": (nn.binary_crossentropy, [BIN_T, 1 / (1 + np.exp(-LOGITS))]),
    # ---- nn: dropout (the mask from the backend generator, moved to the device)
    "dropout": (_dropout, [X]),
    "dropout_noise_shape": (_dropout_noise, [X]),
    "dropout_inference": (lambda x: nn.dropout(x, 0.4, training=False), [X]),
    # ---- nn: activations
    "relu6": (nn.relu6, [X]),
    "celu": (lambda x: nn.celu(x, 0.7), [X]),
    "hard_shrink": (nn.hard_shrink, [X]),
    "hard_silu": (nn.hard_silu, [X]),
    "hard_swish": (nn.hard_swish, [X]),
    "hard_tanh": (nn.hard_tanh, [X]),
    "log_sigmoid": (nn.log_sigmoid, [X]),
    "glu": (nn.glu, [X3[..., :4]]),
    "soft_shrink": (lambda x: nn.soft_shrink(x, 0.8), [X]),
    "sparse_plus": (nn.sparse_plus, [X]),
    "sparse_sigmoid": (nn.sparse_sigmoid, [X]),
    "squareplus": (lambda x: nn.squareplus(x, 2), [X]),
    "tanh_shrink": (nn.tanh_shrink, [X]),
    "threshold": (lambda x: nn.threshold(x, 0.3, -2.0), [X]),
    "activation_of_int": (nn.relu6, [np.array([[-2, 3, 7]], dtype=np.int32)]),
    "sparsemax": (nn.sparsemax, [X]),
    "sparsemax_axis0": (lambda x: nn.sparsemax(x, axis=0), [X]),
    "multi_hot": (lambda c: nn.multi_hot(c, 6), [np.array([[0, 2], [5, 5]], np.int64)]),
    "multi_hot_1d": (lambda c: nn.multi_hot(c, 4), [np.array([1, 3], np.int32)]),
    "polar": (nn.polar, [np.abs(X) + 0.1, X]),
    "polar_broadcast": (nn.polar, [np.abs(X[:1]) + 0.1, X]),
    "normalize": (nn.normalize, [X]),
    "normalize_order1": (lambda x: nn.normalize(x, order=1), [X]),
    "psnr": (lambda a, b: nn.psnr(a, b, 4.0), [X, X[::-1]]),
    # ---- normalization
    "batch_normalization": (lambda x, g, b: _with_stats(N.batch_normalization(x, g, b)),
                            [IMG, GAMMA, BETA]),
    "batch_normalization_axis1": (
        lambda x, g, b: _with_stats(N.batch_normalization(x, g, b, axis=1)),
        [_n(3, 4, 2), _n(4), _n(4)]),
    "batch_normalization_inference": (
        lambda x, g, b, m, v: N.batch_normalization(x, g, b, mean=m, variance=v)[0],
        [IMG, GAMMA, BETA, _n(3), np.abs(_n(3)) + 0.5]),
    "batch_normalization_host_statistics": (
        lambda x, g, b: N.batch_normalization(x, g, b, mean=MEAN, variance=np.ones(3))[0],
        [IMG, GAMMA, BETA]),
    "moments": (lambda x: N.moments(x, axes=(0, 1)), [IMG]),
    "layer_normalization": (lambda x, g, b: N.layer_normalization(x, g, b), [X3[..., :3] * 3,
                                                                            GAMMA, BETA]),
    "layer_normalization_plain": (N.layer_normalization, [X3]),
    "layer_normalization_gamma": (lambda x, g: N.layer_normalization(x, g), [IMG, GAMMA]),
    "layer_normalization_beta": (lambda x, b: N.layer_normalization(x, beta=b), [IMG, BETA]),
    "layer_normalization_axes": (lambda x, g, b: N.layer_normalization(x, g, b, axis=(1, 2)),
                                 [IMG, _n(1, 4, 4, 1), _n(1, 4, 4, 1)]),
    "layer_normalization_full_rank": (
        lambda x, g, b: N.layer_normalization(x, g, b, axis=(2, 3)),
        [IMG, _n(1, 1, 4, 3), _n(1, 1, 4, 3)]),
    "layer_normalization_float32": (
        lambda x, g, b: N.layer_normalization(x, g, b, epsilon=1e-5),
        [IMG.astype(np.float32), GAMMA.astype(np.float32), BETA.astype(np.float32)]),
    "layer_normalization_flat_gamma": (
        lambda x, g: N.layer_normalization(x, g, axis=(1, 2)), [IMG, _n(16)]),
    "layer_normalization_rms_scaling": (_rms_scaling, [X3[..., :3], GAMMA]),
    "rms_normalization": (lambda x, s: N.rms_normalization(x, s), [X3[..., :3], GAMMA]),
    "rms_normalization_plain": (lambda x: N.rms_normalization(x, axis=(1, 2)), [IMG]),
    # ---- attention
    "dot_product_attention": (A.dot_product_attention, [Q, K, V]),
    "dot_product_attention_grouped": (A.dot_product_attention, [_n(2, 4, 2, 3), KG, VG]),
    "dot_product_attention_bias": (
        lambda q, k, v, b: A.dot_product_attention(q, k, v, bias=b), [Q, K, V, _n(1, 2, 4, 5)]),
    "dot_product_attention_mask": (
        lambda q, k, v, m: A.dot_product_attention(q, k, v, mask=m), [Q, K, V, KEEP]),
    "dot_product_attention_host_mask": (
        lambda q, k, v: A.dot_product_attention(q, k, v, mask=KEEP), [Q, K, V]),
    "dot_product_attention_causal": (
        lambda q, k, v: A.dot_product_attention(q, k, v, is_causal=True, scale=0.3), [Q, K, V]),
    "dot_product_attention_causal_mask_grouped": (
        lambda q, k, v, m: A.dot_product_attention(q, k, v, mask=m, is_causal=True),
        [Q, KG, VG, KEEP]),
    "attention_core_dropout": (
        lambda q, k, v: A.attention_core(q, k, v, dropout_mask=DROP), [Q, K, V]),
    "attention_core_dropout_grouped": (
        lambda q, k, v: A.attention_core(q, k, v, dropout_mask=DROP, is_causal=True), [Q, KG, VG]),
    "attention_float32": (A.dot_product_attention,
                          [Q.astype(np.float32), K.astype(np.float32), V.astype(np.float32)]),
}

# ------------------------------------------------------------------ the two runs
def _walk(roots):
    """dL/d(leaf) for the (output, seed) pairs, by each node's own backward (no NumPy here)."""
    order, seen = [], set()

    def visit(fn):
        if fn in seen:
            return
        seen.add(fn)
        for t in fn.inputs:
            if t._ctx is not None:
                visit(t._ctx)
        order.append(fn)

    grads, leaves = {}, {}
    for t, seed in roots:
        if t._ctx is not None:
            visit(t._ctx)
            grads[t._ctx] = seed if t._ctx not in grads else grads[t._ctx] + seed
    for fn in reversed(order):
        g = grads.pop(fn, None)
        if g is None:
            continue
        for t, gi, need in zip(fn.inputs, fn.backward(g), fn.needs):
            if gi is None or not need:
                continue
            store = leaves if t._ctx is None else grads
            key = id(t) if t._ctx is None else t._ctx
            store[key] = gi if key not in store else store[key] + gi
    return leaves


def _run(fn, inputs, device, backward=True):
    move = to_strict if device else np.array
    leaves = [Tensor(move(a), requires_grad=a.dtype.kind == "f") for a in inputs]
    out = fn(*leaves)
    outs = [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if o is not None]
    if not backward:
        return [o.data for o in outs], []
    seed_rng = np.random.default_rng(3)
    roots = []
    for o in outs:
        if o.requires_grad and o.dtype.kind in "fc":
            seed = seed_rng.normal(size=o.shape)
            if o.dtype.kind == "c":
                seed = seed + 1j * seed_rng.normal(size=o.shape)
            roots.append((o, move(seed.astype(o.dtype))))
    got = _walk(roots)
    return [o.data for o in outs], [got.get(id(t)) for t in leaves]


def _tol(a):
    return (1e-5, 1e-6) if a.dtype in (np.float32, np.complex64) else (1e-12, 1e-12)


def _check(name, fn, inputs, backward=True):
    host_out, host_grads = _run(fn, inputs, device=False, backward=backward)
    dev_out, dev_grads = _run(fn, inputs, device=True, backward=backward)
    assert len(dev_out) == len(host_out)
    for i, (h, d) in enumerate(zip(host_out, dev_out)):
        assert type(d) is StrictArray, f"{name}: output {i} left the device ({type(d).__name__})"
        assert d.dtype == h.dtype and d.shape == h.shape, f"{name}: output {i}"
        rtol, atol = _tol(h)
        np.testing.assert_allclose(from_strict(d), h, rtol=rtol, atol=atol,
                                   err_msg=f"{name}: output {i}")
    for i, (h, d) in enumerate(zip(host_grads, dev_grads)):
        assert (h is None) == (d is None), f"{name}: gradient {i} present on one side only"
        if h is not None:
            assert type(d) is StrictArray, f"{name}: gradient {i} left the device"
            assert d.dtype == h.dtype and d.shape == h.shape, f"{name}: gradient {i}"
            rtol, atol = _tol(h)
            np.testing.assert_allclose(from_strict(d), h, rtol=rtol * 100, atol=atol,
                                       err_msg=f"{name}: gradient {i}")
    return host_grads


@pytest.mark.parametrize("name", sorted(TABLE))
def test_op_on_device_arrays(name):
    fn, inputs = TABLE[name]
    _check(name, fn, inputs)


def test_gradients_flow_in_the_table():
    # every float input of these ops gets a gradient on the device
    for name in ("dense_relu", "categorical_crossentropy_logits", "dropout", "celu",
                 "sparsemax", "polar", "layer_normalization", "layer_normalization_axes",
                 "rms_normalization", "dot_product_attention_bias", "attention_core_dropout",
                 "batch_normalization", "glu", "binary_crossentropy_logits", "log_sigmoid"):
        fn, inputs = TABLE[name]
        _, grads = _run(fn, inputs, device=True)
        assert all(g is not None for g, a in zip(grads, inputs) if a.dtype.kind == "f"), name


# ------------------------------------------------------------------ exact agreements
def test_dropout_mask_is_the_host_draw_bit_for_bit():
    backend.set_seed(21)
    host = nn.dropout(Tensor(X.astype(np.float32)), 0.3).data
    backend.set_seed(21)
    dev = nn.dropout(Tensor(to_strict(X.astype(np.float32))), 0.3).data
    assert type(dev) is StrictArray
    np.testing.assert_array_equal(from_strict(dev), host)
    after_device = backend.rng().random()
    backend.set_seed(21)
    nn.dropout(Tensor(X.astype(np.float32)), 0.3)
    assert backend.rng().random() == after_device       # the device run drew as much


def test_plain_formulas_match_the_host_bits_where_no_kernel_runs():
    # the device formulas are the host's operations: without a compiled or row path they agree
    # to the bit (dense without the epilogue kernel, the general layer norm, sparsemax)
    for name in ("dense_no_bias", "celu", "sparsemax", "layer_normalization_axes",
                 "rms_normalization", "polar"):
        fn, inputs = TABLE[name]
        h_out, h_grads = _run(fn, inputs, device=False)
        d_out, d_grads = _run(fn, inputs, device=True)
        for h, d in zip(h_out + h_grads, d_out + d_grads):
            if h is not None:
                np.testing.assert_array_equal(from_strict(d), h, err_msg=name)


def test_label_and_mask_metadata_stay_checked_on_the_host():
    z = Tensor(to_strict(LOGITS))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        nn.sparse_categorical_crossentropy(to_strict(np.array([0, 1, 2, 7])), z, from_logits=True)
    with pytest.raises(ValueError, match="mask must broadcast"):
        A.dot_product_attention(*(Tensor(to_strict(a)) for a in (Q, K, V)),
                                mask=to_strict(np.ones((3, 4), bool)))


def test_layer_normalization_row_path_stays_on_the_host():
    x = Tensor(to_strict(X3), requires_grad=True)
    out = N.layer_normalization(x)
    assert type(out.data) is StrictArray and not out._ctx.rows
    host = N.layer_normalization(Tensor(X3, requires_grad=True))
    assert host._ctx.rows                                   # the host takes its row path
