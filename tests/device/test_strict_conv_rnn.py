"""Every op of axone.ops.conv and axone.ops.recurrent on device arrays (the strict stand-in).

Each op runs twice on the same values: on host NumPy arrays (the workspace, batch blocks,
compiled kernels and banded lowerings as they are) and on ``StrictArray``s, which refuse any
NumPy call and any mixing with host arrays, so the device forms (plain im2col lowering, offset
slices, the general recurrent step loop) run.  Forward results, their dtypes and the gradients
of each node's own ``backward`` must agree; the ops composed with ``axone.ops.math``
(depthwise and separable convolutions, depth ↔ space, the channel-order transposes,
``rnn_sequence``'s outputs) run on the device through it.
"""
import importlib

import numpy as np
import pytest

from axone import Tensor

import strict_xp
from strict_xp import StrictArray, from_strict, to_strict

Cv = importlib.import_module("axone.ops.conv")
R = importlib.import_module("axone.ops.recurrent")


@pytest.fixture(autouse=True, scope="module")
def _registered():
    strict_xp.register()
    yield
    strict_xp.unregister()


_r = np.random.default_rng(11)


def _n(*shape, dtype=np.float64):
    return _r.normal(size=shape).astype(dtype)


def _ties(*shape):
    """Values with repeated maxima in pooling windows (a ReLU's zeros) and one NaN."""
    a = np.maximum(_n(*shape), 0)
    a.reshape(-1)[7] = np.nan
    return a


# ------------------------------------------------------------------ conv.py
def _conv(**kw):
    return lambda *a: Cv.conv(*a, **kw)


CONV = {
    "conv_plain_bias_relu": (_conv(padding="same", relu=True), [_n(2, 7, 7, 3), _n(3, 3, 3, 20), _n(20)]),
    "conv_banded": (_conv(padding="same"), [_n(2, 8, 8, 4), _n(3, 3, 4, 4), _n(4)]),
    "conv_banded_no_bias": (_conv(padding="same"), [_n(2, 8, 8, 4), _n(3, 3, 4, 4)]),
    "conv_one_channel": (_conv(padding="same", relu=True), [_n(2, 7, 7, 1), _n(3, 3, 1, 20), _n(20)]),
    "conv_lenet": (_conv(), [_n(2, 9, 9, 1), _n(5, 5, 1, 6), _n(6)]),
    "conv_1x1": (_conv(), [_n(2, 5, 5, 6), _n(1, 1, 6, 20), _n(20)]),
    "conv_1x1_no_bias": (_conv(), [_n(2, 5, 5, 6), _n(1, 1, 6, 20)]),
    "conv_strides": (_conv(strides=2, padding="same"), [_n(2, 9, 9, 4), _n(3, 3, 4, 24), _n(24)]),
    "conv_dilation": (_conv(dilation_rate=2), [_n(2, 9, 9, 4), _n(3, 3, 4, 24), _n(24)]),
    "conv_groups": (_conv(groups=2, padding="same"), [_n(2, 6, 6, 8), _n(3, 3, 4, 24), _n(24)]),
    "conv_groups_relu": (_conv(groups=3, relu=True), [_n(2, 6, 6, 6), _n(3, 3, 2, 9), _n(9)]),
    "conv_channelwise": (_conv(groups=6, strides=2), [_n(2, 9, 9, 6), _n(3, 3, 1, 6), _n(6)]),
    "conv_causal_1d": (_conv(padding="causal", dilation_rate=2), [_n(2, 12, 5), _n(3, 5, 24), _n(24)]),
    "conv_3d": (_conv(padding="same"), [_n(2, 4, 4, 4, 2), _n(3, 3, 3, 2, 20), _n(20)]),
    "conv_float32": (_conv(padding="same", relu=True),
                     [_n(2, 7, 7, 3, dtype=np.float32), _n(3, 3, 3, 20, dtype=np.float32),
                      _n(20, dtype=np.float32)]),
    "conv2d": (lambda x, k, b: Cv.conv2d(x, k, b, strides=(1, 2), padding="same"),
               [_n(2, 6, 7, 3), _n(2, 3, 3, 5), _n(5)]),
    "conv1d": (lambda x, k: Cv.conv1d(x, k, padding="same"), [_n(2, 10, 3), _n(4, 3, 5)]),
    # pooling: every form of the host (block view, running maximum, flat-index scatter,
    # compiled 2-D kernels) against the device's offset slices
    "max_pool_disjoint": (lambda x: Cv.max_pool(x, 2), [_n(2, 8, 8, 3)]),
    "max_pool_ties_nan": (lambda x: Cv.max_pool(x, 2), [_ties(2, 6, 6, 3)]),
    "max_pool_overlap": (lambda x: Cv.max_pool(x, 3, strides=2), [_n(2, 9, 9, 3)]),
    "max_pool_overlap_ties": (lambda x: Cv.max_pool(x, 3, strides=1), [_ties(2, 6, 6, 2)]),
    "max_pool_same": (lambda x: Cv.max_pool(x, 2, padding="same"), [_n(2, 7, 7, 3)]),
    "max_pool_1d": (lambda x: Cv.max_pool(x, 3, strides=1), [_n(2, 11, 4)]),
    "max_pool_3d": (lambda x: Cv.max_pool(x, 2), [_n(2, 4, 4, 4, 3)]),
    "max_pool_float32": (lambda x: Cv.max_pool(x, 2), [_n(2, 6, 6, 3, dtype=np.float32)]),
    "average_pool": (lambda x: Cv.average_pool(x, 2), [_n(2, 8, 8, 3)]),
    "average_pool_same": (lambda x: Cv.average_pool(x, 3, strides=2, padding="same"), [_n(2, 9, 9, 3)]),
    "average_pool_1d": (lambda x: Cv.average_pool(x, 3, strides=2), [_n(2, 11, 4)]),
    "average_pool_3d_same": (lambda x: Cv.average_pool(x, 2, padding="same"), [_n(2, 5, 5, 5, 2)]),
    "average_pool_float32": (lambda x: Cv.average_pool(x, 3, padding="same"),
                             [_n(2, 6, 6, 3, dtype=np.float32)]),
    # transposed convolution
    "conv_transpose_same": (lambda x, k, b: Cv.conv_transpose(x, k, b, strides=2, padding="same"),
                            [_n(2, 4, 4, 3), _n(3, 3, 5, 3), _n(5)]),
    "conv_transpose_valid_dilated": (lambda x, k: Cv.conv_transpose(x, k, dilation_rate=2),
                                     [_n(2, 4, 4, 3), _n(2, 2, 4, 3)]),
    "conv_transpose_1d_output_padding": (
        lambda x, k: Cv.conv_transpose(x, k, strides=3, output_padding=1), [_n(2, 5, 3), _n(4, 4, 3)]),
    # unfold / fold
    "unfold": (lambda x: Cv.unfold(x, 3, padding=1, stride=2), [_n(2, 3, 7, 7)]),
    "unfold_dilated": (lambda x: Cv.unfold(x, (2, 3), dilation=2), [_n(2, 2, 6, 7)]),
    "fold": (lambda x: Cv.fold(x, (5, 5), 2), [_n(2, 12, 16)]),
    "fold_padded": (lambda x: Cv.fold(x, (6, 6), 3, padding=1, stride=2), [_n(2, 18, 9)]),
    # adaptive pooling
    "adaptive_average_pool": (
        lambda x: Cv.adaptive_average_pool(x, (3, 2), data_format="channels_last"), [_n(2, 7, 5, 3)]),
    "adaptive_max_pool": (
        lambda x: Cv.adaptive_max_pool(x, 3, data_format="channels_last"), [_n(2, 7, 5, 3)]),
    "adaptive_max_pool_1d": (
        lambda x: Cv.adaptive_max_pool(x, 4, data_format="channels_last"), [_n(2, 9, 3)]),
    "adaptive_average_pool_3d": (
        lambda x: Cv.adaptive_average_pool(x, 2, data_format="channels_last"), [_n(2, 3, 5, 4, 2)]),
    # composed with ops.math's reshape / transpose
    "depthwise_conv": (lambda x, k, b: Cv.depthwise_conv(x, k, b, padding="same"),
                       [_n(2, 6, 6, 3), _n(3, 3, 3, 2), _n(6)]),
    "depthwise_conv_1d": (lambda x, k: Cv.depthwise_conv(x, k, strides=2, dilation_rate=1),
                          [_n(2, 9, 4), _n(3, 4, 3)]),
    "separable_conv": (lambda x, d, p: Cv.separable_conv(x, d, p, padding="same",
                                                         data_format="channels_last"),
                       [_n(2, 6, 6, 3), _n(3, 3, 3, 2), _n(1, 1, 6, 5)]),
    "separable_conv_channels_first": (
        lambda x, d, p: Cv.separable_conv(x, d, p, strides=2, data_format="channels_first"),
        [_n(2, 3, 7, 7), _n(3, 3, 3, 1), _n(1, 1, 3, 4)]),
    "depth_to_space": (lambda x: Cv.depth_to_space(x, 2), [_n(2, 3, 3, 8)]),
    "space_to_depth": (lambda x: Cv.space_to_depth(x, 2), [_n(2, 4, 4, 3)]),
    "depth_to_space_channels_first": (
        lambda x: Cv.depth_to_space(x, 2, data_format="channels_first"), [_n(2, 8, 3, 3)]),
    "space_to_depth_channels_first": (
        lambda x: Cv.space_to_depth(x, 2, data_format="channels_first"), [_n(2, 3, 4, 4)]),
    "to_channels_last": (Cv.to_channels_last, [_n(2, 3, 4, 5)]),
    "to_channels_first": (Cv.to_channels_first, [_n(2, 4, 5, 3)]),
    "adaptive_average_pool_channels_first": (
        lambda x: Cv.adaptive_average_pool(x, 2, data_format="channels_first"), [_n(2, 3, 5, 4)]),
}


# ------------------------------------------------------------------ recurrent.py
N, T, D, U_ = 4, 5, 3, 3
GATES = {"simple": 1, "lstm": 4, "gru": 3}
MASK = np.ones((N, T), bool)
MASK[0, 3:] = False
MASK[2, 1] = False
XMASK = (_r.random((N, D)) < 0.7) / 0.7
RMASK = (_r.random((N, U_)) < 0.7) / 0.7


def _rnn_inputs(cell, reset_after=True, dtype=np.float64):
    g = GATES[cell] * U_
    b = _n(2, g, dtype=dtype) if cell == "gru" and reset_after else _n(g, dtype=dtype)
    arrs = [_n(N, T, D, dtype=dtype), _n(D, g, dtype=dtype) * 0.5, _n(U_, g, dtype=dtype) * 0.5,
            b, _n(N, U_, dtype=dtype)]
    if cell == "lstm":
        arrs.append(_n(N, U_, dtype=dtype))
    return arrs


def _node(cell, act="tanh", ract="sigmoid", reset_after=True, mask=None, go_backwards=False,
          dropout=False, device_masks=False):
    """The RNNSequence node itself (rnn_sequence's outputs go through ops.math's get_item)."""
    def run(*a):
        move = to_strict if device_masks and type(a[0].data) is StrictArray else (lambda v: v)
        xm = rm = None
        if dropout:
            xm, rm = move(XMASK.astype(a[0].dtype)), move(RMASK.astype(a[0].dtype))
        return R.RNNSequence.apply(
            *a, cell=cell, activation=act, recurrent_activation=ract,
            mask=None if mask is None else move(mask), go_backwards=go_backwards,
            reset_after=reset_after, xmask=xm, rmask=rm)
    return run


RNN = {}
for _cell in GATES:
    for _act, _ract in (("tanh", "sigmoid"), ("relu", "hard_sigmoid"), ("linear", "sigmoid"),
                        ("sigmoid", "tanh")):
        for _ra in ((True, False) if _cell == "gru" else (True,)):
            _tag = f"{_cell}_{_act}_{_ract}" + ("" if _cell != "gru" else f"_reset_after_{_ra}")
            RNN[_tag] = (_node(_cell, _act, _ract, _ra), _rnn_inputs(_cell, _ra))
            RNN[_tag + "_mask_backwards"] = (_node(_cell, _act, _ract, _ra, MASK, True),
                                             _rnn_inputs(_cell, _ra))
            RNN[_tag + "_mask_dropout"] = (_node(_cell, _act, _ract, _ra, MASK, False, True),
                                           _rnn_inputs(_cell, _ra))
    RNN[f"{_cell}_device_masks"] = (_node(_cell, mask=MASK, dropout=True, device_masks=True),
                                    _rnn_inputs(_cell))
    RNN[f"{_cell}_float32"] = (_node(_cell, mask=MASK), _rnn_inputs(_cell, dtype=np.float32))

    # rnn_sequence: (hs, h, c) picked out of the node's output with ops.math's get_item
    RNN[f"rnn_sequence_{_cell}"] = (
        lambda *a, cell=_cell: R.rnn_sequence(cell, *a[:5], a[5] if len(a) > 5 else None, mask=MASK),
        _rnn_inputs(_cell))
    RNN[f"rnn_sequence_{_cell}_backwards_dropout"] = (
        lambda *a, cell=_cell: R.rnn_sequence(
            cell, *a[:5], a[5] if len(a) > 5 else None, go_backwards=True,
            input_dropout_mask=XMASK, recurrent_dropout_mask=RMASK),
        _rnn_inputs(_cell))

TABLE = {**CONV, **RNN}


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


def _run(fn, inputs, device):
    move = to_strict if device else np.array
    leaves = [Tensor(move(a), requires_grad=a.dtype.kind == "f") for a in inputs]
    out = fn(*leaves)
    outs = [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if o is not None]
    seed_rng = np.random.default_rng(3)
    roots = []
    for o in outs:
        if o.requires_grad and o.dtype.kind in "fc":
            roots.append((o, move(seed_rng.normal(size=o.shape).astype(o.dtype))))
    got = _walk(roots)
    return [o.data for o in outs], [got.get(id(t)) for t in leaves]


def _check(name, fn, inputs):
    host_out, host_grads = _run(fn, inputs, device=False)
    dev_out, dev_grads = _run(fn, inputs, device=True)
    single = any(a.dtype == np.float32 for a in inputs)
    rtol, atol = (2e-5, 2e-6) if single else (1e-10, 1e-12)
    assert len(dev_out) == len(host_out)
    for i, (h, d) in enumerate(zip(host_out, dev_out)):
        assert type(d) is StrictArray, f"{name}: output {i} left the device ({type(d).__name__})"
        assert d.dtype == h.dtype and d.shape == h.shape, f"{name}: output {i}"
        np.testing.assert_allclose(from_strict(d), h, rtol=rtol, atol=atol,
                                   err_msg=f"{name}: output {i}")
    for i, (h, d) in enumerate(zip(host_grads, dev_grads)):
        assert (h is None) == (d is None), f"{name}: gradient {i} present on one side only"
        if h is not None:
            assert type(d) is StrictArray, f"{name}: gradient {i} left the device"
            assert d.dtype == h.dtype and d.shape == h.shape, f"{name}: gradient {i}"
            np.testing.assert_allclose(from_strict(d), h, rtol=rtol, atol=atol,
                                       err_msg=f"{name}: gradient {i}")
    return host_grads


@pytest.mark.parametrize("name", sorted(TABLE))
def test_op_on_device_arrays(name):
    fn, inputs = TABLE[name]
    grads = _check(name, fn, inputs)
    # every float input of these ops gets a gradient
    assert all(g is not None for g, a in zip(grads, inputs) if a.dtype.kind == "f"), name


def test_every_public_op_is_covered():
    names = " ".join(sorted(TABLE))
    arithmetic = {"conv_output_length", "pool_output_length", "same_padding"}   # no arrays
    for op in set(Cv.__all__) - arithmetic:
        assert op in names, op
    assert "rnn_sequence" in names and all(c in names for c in GATES)


# ------------------------------------------------------------------ the host machinery stays on the host
class _Refuse:
    def __init__(self, what):
        self.what = what

    def __call__(self, *a, **k):
        raise AssertionError(f"the device path reached {self.what}")

    def __getattr__(self, name):
        raise AssertionError(f"the device path reached {self.what}.{name}")


def test_device_path_takes_no_host_machinery(monkeypatch):
    # the workspace, the batch blocks, the compiled kernels and the recurrent pools are the
    # host's: a device array never reaches them, even where the host would split the node
    P = importlib.import_module("axone.ops._parallel")
    monkeypatch.setattr(P, "_threads", lambda: 4)
    monkeypatch.setattr(P, "_MIN_SHARD_WORK", 1)
    monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 1)
    monkeypatch.setattr(Cv, "_WS", _Refuse("the workspace"))
    monkeypatch.setattr(Cv._parallel, "batch_blocks", _Refuse("batch_blocks"))
    monkeypatch.setattr(Cv, "_pool_kernels", _Refuse("the compiled pooling"))
    monkeypatch.setattr(Cv._compiled, "kernels", _Refuse("the compiled module"))
    monkeypatch.setattr(R, "_seq_kernels", _Refuse("the compiled loops"))
    monkeypatch.setattr(R, "_take", _Refuse("the work-array pool"))
    for name in ("conv_plain_bias_relu", "conv_banded", "max_pool_disjoint", "average_pool_same",
                 "conv_transpose_same", "lstm_tanh_sigmoid_mask_dropout",
                 "gru_tanh_sigmoid_reset_after_True", "gru_tanh_sigmoid_reset_after_False",
                 "simple_tanh_sigmoid"):
        fn, inputs = TABLE[name]
        outs, grads = _run(fn, inputs, device=True)
        assert all(type(o) is StrictArray for o in outs), name
        assert all(type(g) is StrictArray for g in grads if g is not None), name


def test_device_mask_in_rnn_sequence_stays_on_the_device(monkeypatch):
    # rnn_sequence checks a device mask's shape without copying it to the host
    x, W, U, b, h0 = (Tensor(to_strict(a)) for a in _rnn_inputs("simple"))
    node_mask = []
    orig = R.RNNSequence.apply

    def spy(*a, **kw):
        node_mask.append(kw["mask"])
        return orig(*a, **kw)
    monkeypatch.setattr(R.RNNSequence, "apply", staticmethod(spy))
    R.rnn_sequence("simple", x, W, U, b, h0, mask=to_strict(MASK))
    monkeypatch.undo()
    assert type(node_mask[0]) is StrictArray and node_mask[0].dtype == bool
    with pytest.raises(ValueError, match="mask must have shape"):
        R.rnn_sequence("simple", x, W, U, b, h0, mask=to_strict(MASK[:, :2]))
