"""Parity with Keras 3 (PyTorch backend) of the 3-D, transposed, depthwise, separable, pooling,
reshaping, merging and ConvLSTM layers: the same constructor arguments, Keras's weights copied
into the axone layer (``set_weights``, so the weight order and shapes must match), the same
random input → the same output shape and values, and the same gradients for the input(s) and
every trainable weight under a fixed random upstream weighting G.
"""
import numpy as np
import pytest
import torch

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

import axone
from axone import Tensor

assert keras.backend.backend() == "torch", "these tests need KERAS_BACKEND=torch (tests/conftest.py)"

RTOL, ATOL = 1e-5, 1e-5


def _close(actual, expected, what, rtol=RTOL, atol=ATOL):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs Keras {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=what)


def _np(t):
    return t.detach().cpu().numpy()


def compare(name, kwargs, shapes, seed=0, training=None, call_kwargs=None, alayer=None):
    """Build Keras's and axone's ``name`` layer with ``kwargs`` on inputs of ``shapes``, copy
    Keras's weights into axone's and compare outputs and gradients."""
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=s).astype(np.float32) for s in shapes]
    call_kwargs = dict(call_kwargs or {})
    if training is not None:
        call_kwargs["training"] = training
    klayer = getattr(keras.layers, name)(**kwargs)
    txs = [torch.tensor(x, requires_grad=True) for x in xs]
    kout = klayer(txs if len(txs) > 1 else txs[0], **call_kwargs)
    kouts = list(kout) if isinstance(kout, (list, tuple)) else [kout]
    gs = [rng.normal(size=tuple(o.shape)).astype(np.float32) for o in kouts]
    sum(((o * torch.tensor(g)).sum() for o, g in zip(kouts, gs))).backward()
    alayer = alayer or getattr(axone.layers, name)(**kwargs)
    axs = [Tensor(x, requires_grad=True) for x in xs]
    alayer.build(tuple(shapes[0]) if len(shapes) == 1 else [tuple(s) for s in shapes])
    kw = klayer.get_weights()
    aw = alayer.get_weights()
    assert [w.shape for w in aw] == [w.shape for w in kw], \
        f"{name}: weight shapes {[w.shape for w in aw]} vs Keras {[w.shape for w in kw]}"
    assert [w.name.split("/")[-1] for w in alayer.weights] == \
        [w.name.split("/")[-1] for w in klayer.weights], f"{name}: weight names"
    if kw:
        alayer.set_weights(kw)
    aout = alayer(axs if len(axs) > 1 else axs[0], **call_kwargs)
    aouts = list(aout) if isinstance(aout, (list, tuple)) else [aout]
    assert len(aouts) == len(kouts)
    total = None
    for o, g in zip(aouts, gs):
        term = (o * Tensor(g)).sum()
        total = term if total is None else total + term
    total.backward()
    for i, (a, k) in enumerate(zip(aouts, kouts)):
        _close(a.data, _np(k), f"{name} output {i}")
    for i, (a, k) in enumerate(zip(axs, txs)):
        if k.grad is None:
            continue
        assert a.grad is not None, f"{name}: no gradient for input {i}"
        _close(a.grad, _np(k.grad), f"{name} d/dx[{i}]")
    kws = klayer.trainable_weights
    aws = alayer.trainable_weights
    assert len(aws) == len(kws)
    for i, (a, k) in enumerate(zip(aws, kws)):
        assert a.grad is not None, f"{name}: no gradient for weight {i}"
        _close(a.grad, _np(k.value.grad), f"{name} d/dw[{i}] ({k.name})")
    return alayer, klayer


def _norm(v):
    return [_norm(i) for i in v] if isinstance(v, (tuple, list)) else v


def _configs_match(alayer, klayer):
    kc, ac = klayer.get_config(), alayer.get_config()
    for key in kc:
        if key in ("dtype", "name", "trainable", "seed", "activity_regularizer"):
            continue
        assert key in ac, f"{type(alayer).__name__}: get_config lacks {key!r}"
        kv, av = kc[key], ac[key]
        if isinstance(kv, dict):        # serialized initializers etc.: the class name
            assert isinstance(av, dict) and av.get("class_name") == kv.get("class_name"), key
        else:
            assert _norm(av) == _norm(kv), f"{key}: {av!r} vs Keras {kv!r}"


# ------------------------------------------------------------ convolutions
CONV_CASES = [
    ("Conv3D", dict(filters=3, kernel_size=2), (2, 4, 5, 4, 2)),
    ("Conv3D", dict(filters=2, kernel_size=(2, 3, 2), strides=2, padding="same"), (2, 5, 6, 4, 3)),
    ("Conv3D", dict(filters=4, kernel_size=2, dilation_rate=2, groups=2, activation="relu"),
     (1, 5, 5, 6, 4)),
    ("Conv3D", dict(filters=3, kernel_size=2, data_format="channels_first"), (2, 2, 4, 5, 3)),
    ("Convolution3D", dict(filters=2, kernel_size=3, padding="same"), (1, 3, 4, 5, 2)),
    ("Conv2D", dict(filters=3, kernel_size=3, data_format="channels_first", padding="same"),
     (2, 2, 6, 5)),
    ("Conv1D", dict(filters=3, kernel_size=3, padding="causal", data_format="channels_first"),
     (2, 4, 7)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=3), (2, 5, 4)),
    ("Conv1DTranspose", dict(filters=2, kernel_size=4, strides=2, padding="same"), (2, 5, 3)),
    ("Conv1DTranspose", dict(filters=2, kernel_size=3, strides=3, output_padding=1), (2, 4, 3)),
    ("Conv1DTranspose", dict(filters=2, kernel_size=3, dilation_rate=2, activation="tanh"),
     (2, 6, 3)),
    ("Convolution1DTranspose", dict(filters=2, kernel_size=2, data_format="channels_first"),
     (2, 3, 5)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2, data_format="channels_first"),
     (2, 3, 4, 5)),
    ("Convolution2DTranspose", dict(filters=3, kernel_size=(2, 3), padding="same", strides=(2, 1)),
     (2, 4, 3, 2)),
    ("Conv3DTranspose", dict(filters=2, kernel_size=2, strides=2), (1, 3, 2, 3, 3)),
    ("Conv3DTranspose", dict(filters=3, kernel_size=3, padding="same", strides=(1, 2, 2),
                             output_padding=(0, 1, 1)), (2, 3, 3, 2, 2)),
    ("Convolution3DTranspose", dict(filters=2, kernel_size=2, data_format="channels_first"),
     (1, 2, 3, 3, 2)),
    ("DepthwiseConv1D", dict(kernel_size=3), (2, 7, 3)),
    ("DepthwiseConv1D", dict(kernel_size=3, strides=2, padding="same", depth_multiplier=2,
                             activation="relu"), (2, 8, 3)),
    ("DepthwiseConv1D", dict(kernel_size=2, dilation_rate=2, data_format="channels_first"),
     (2, 3, 7)),
    ("DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=2, data_format="channels_first"),
     (2, 3, 6, 5)),
    ("SeparableConv1D", dict(filters=4, kernel_size=3), (2, 7, 3)),
    ("SeparableConv1D", dict(filters=2, kernel_size=3, strides=2, padding="same", depth_multiplier=2),
     (2, 9, 3)),
    ("SeparableConvolution1D", dict(filters=2, kernel_size=2, data_format="channels_first",
                                    use_bias=False), (2, 3, 6)),
    ("SeparableConvolution2D", dict(filters=3, kernel_size=2, dilation_rate=2, depth_multiplier=2),
     (2, 6, 5, 2)),
    ("SeparableConv2D", dict(filters=3, kernel_size=3, data_format="channels_first",
                             padding="same"), (2, 2, 5, 6)),
]


@pytest.mark.parametrize("name,kwargs,shape", CONV_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CONV_CASES)])
def test_conv_layers(name, kwargs, shape):
    alayer, klayer = compare(name, kwargs, [shape])
    _configs_match(alayer, klayer)
    assert alayer.compute_output_shape(shape) == tuple(klayer.compute_output_shape(shape))


# ------------------------------------------------------------ pooling
POOL_CASES = [
    ("MaxPooling3D", dict(), (2, 4, 5, 4, 3)),
    ("MaxPooling3D", dict(pool_size=(2, 3, 2), strides=1, padding="same"), (2, 4, 5, 3, 2)),
    ("MaxPool3D", dict(pool_size=2, data_format="channels_first"), (2, 3, 4, 4, 5)),
    ("AveragePooling3D", dict(pool_size=2, strides=(1, 2, 1)), (2, 4, 5, 3, 2)),
    # "same" padding split evenly: Keras's torch backend pads unevenly split windows by
    # replicating the edge before averaging, where TF, JAX and axone average the valid entries
    ("AvgPool3D", dict(pool_size=3, strides=2, padding="same"), (1, 5, 3, 5, 2)),
    ("AveragePooling2D", dict(pool_size=2, data_format="channels_first"), (2, 3, 6, 5)),
    ("MaxPooling1D", dict(pool_size=2, data_format="channels_first"), (2, 3, 7)),
    ("GlobalMaxPooling3D", dict(), (2, 3, 4, 2, 5)),
    ("GlobalAveragePooling3D", dict(keepdims=True), (2, 3, 4, 2, 5)),
    ("GlobalMaxPool3D", dict(data_format="channels_first", keepdims=True), (2, 3, 4, 2, 5)),
    ("GlobalAvgPool3D", dict(data_format="channels_first"), (2, 3, 4, 2, 5)),
    ("GlobalAveragePooling2D", dict(data_format="channels_first"), (2, 3, 4, 5)),
    ("AdaptiveAveragePooling1D", dict(output_size=3), (2, 7, 3)),
    ("AdaptiveAveragePooling2D", dict(output_size=(3, 2)), (2, 7, 5, 3)),
    ("AdaptiveAveragePooling2D", dict(output_size=4, data_format="channels_first"), (2, 3, 9, 6)),
    ("AdaptiveAveragePooling3D", dict(output_size=(2, 3, 2)), (1, 5, 7, 4, 2)),
    ("AdaptiveMaxPooling1D", dict(output_size=4, data_format="channels_first"), (2, 3, 9)),
    ("AdaptiveMaxPooling2D", dict(output_size=(2, 3)), (2, 5, 7, 3)),
    ("AdaptiveMaxPooling3D", dict(output_size=2, data_format="channels_first"), (1, 2, 5, 4, 3)),
]


@pytest.mark.parametrize("name,kwargs,shape", POOL_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(POOL_CASES)])
def test_pooling_layers(name, kwargs, shape):
    alayer, klayer = compare(name, kwargs, [shape])
    _configs_match(alayer, klayer)
    assert alayer.compute_output_shape(shape) == tuple(klayer.compute_output_shape(shape))


# ------------------------------------------------------ reshaping, identity
RESHAPE_CASES = [
    ("ZeroPadding3D", dict(), (2, 2, 3, 2, 3)),
    ("ZeroPadding3D", dict(padding=(1, 0, 2)), (2, 2, 3, 2, 3)),
    ("ZeroPadding3D", dict(padding=((0, 1), (2, 0), (1, 1)), data_format="channels_first"),
     (2, 3, 2, 3, 2)),
    ("Cropping3D", dict(), (2, 4, 5, 3, 2)),
    ("Cropping3D", dict(cropping=((0, 1), (2, 1), (1, 0)), data_format="channels_first"),
     (2, 2, 4, 5, 3)),
    ("Cropping3D", dict(cropping=2), (1, 5, 6, 5, 2)),
    ("UpSampling3D", dict(), (2, 2, 3, 2, 3)),
    ("UpSampling3D", dict(size=(1, 3, 2), data_format="channels_first"), (2, 3, 2, 2, 3)),
    ("Permute", dict(dims=(2, 1)), (2, 3, 4)),
    ("Permute", dict(dims=(3, 1, 2)), (2, 3, 4, 5)),
    ("RepeatVector", dict(n=3), (4, 5)),
    ("Identity", dict(), (3, 4, 2)),
    ("ActivityRegularization", dict(l1=0.1, l2=0.2), (3, 4)),
]


@pytest.mark.parametrize("name,kwargs,shape", RESHAPE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(RESHAPE_CASES)])
def test_reshaping_layers(name, kwargs, shape):
    alayer, klayer = compare(name, kwargs, [shape])
    _configs_match(alayer, klayer)
    assert alayer.compute_output_shape(shape) == tuple(klayer.compute_output_shape(shape))


def test_activity_regularization_penalty_matches_keras():
    x = np.random.default_rng(3).normal(size=(4, 5)).astype(np.float32)
    k = keras.layers.ActivityRegularization(l1=0.1, l2=0.2)
    k(torch.tensor(x))
    a = axone.layers.ActivityRegularization(l1=0.1, l2=0.2)
    a(Tensor(x))
    assert len(a.losses) == 1
    _close(float(a.losses[0].data), float(_np(k.losses[0])), "activity penalty")


# ------------------------------------------------------------------ Dot
DOT_CASES = [
    (dict(axes=1), [(3, 4), (3, 4)]),
    (dict(axes=-1, normalize=True), [(3, 4), (3, 4)]),
    (dict(axes=(2, 1)), [(2, 3, 5), (2, 5, 4)]),
    (dict(axes=(1, 2)), [(2, 3, 5), (2, 4, 3)]),
    (dict(axes=(2, 2), normalize=True), [(2, 3, 5), (2, 4, 5)]),
    (dict(axes=(1, 1)), [(2, 4), (2, 4, 3)]),
    (dict(axes=(3, 1)), [(2, 3, 2, 4), (2, 4, 3)]),
]


@pytest.mark.parametrize("kwargs,shapes", DOT_CASES)
def test_dot(kwargs, shapes):
    alayer, klayer = compare("Dot", kwargs, shapes)
    _configs_match(alayer, klayer)
    assert alayer.compute_output_shape(shapes) == tuple(klayer.compute_output_shape(shapes))


def test_dot_function():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(2, 3, 4)).astype(np.float32), rng.normal(size=(2, 4, 5)).astype(np.float32)
    a = axone.layers.dot([Tensor(x), Tensor(y)], axes=(2, 1)).data
    k = _np(keras.layers.dot([torch.tensor(x), torch.tensor(y)], axes=(2, 1)))
    _close(a, k, "dot")


# ------------------------------------------------------------ ConvLSTM
CONVLSTM_CASES = [
    ("ConvLSTM2D", dict(filters=3, kernel_size=3), (2, 3, 5, 6, 2)),
    ("ConvLSTM2D", dict(filters=2, kernel_size=(3, 2), padding="same", return_sequences=True),
     (2, 3, 4, 5, 3)),
    ("ConvLSTM2D", dict(filters=2, kernel_size=2, strides=2, return_state=True, go_backwards=True),
     (2, 4, 5, 4, 2)),
    ("ConvLSTM2D", dict(filters=2, kernel_size=2, dilation_rate=2, data_format="channels_first",
                        return_sequences=True, activation="relu", unit_forget_bias=False),
     (1, 3, 2, 5, 5)),
    ("ConvLSTM1D", dict(filters=3, kernel_size=3, return_sequences=True, return_state=True),
     (2, 4, 7, 2)),
    ("ConvLSTM1D", dict(filters=2, kernel_size=2, padding="same", use_bias=False,
                        go_backwards=True), (2, 3, 6, 3)),
    ("ConvLSTM3D", dict(filters=2, kernel_size=2, return_sequences=True), (1, 3, 3, 4, 3, 2)),
    ("ConvLSTM3D", dict(filters=2, kernel_size=(1, 2, 2), padding="same", return_state=True,
                        data_format="channels_first"), (1, 2, 2, 2, 3, 3)),
]


@pytest.mark.parametrize("name,kwargs,shape", CONVLSTM_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CONVLSTM_CASES)])
def test_conv_lstm(name, kwargs, shape):
    alayer, klayer = compare(name, kwargs, [shape])
    _configs_match(alayer, klayer)
    ks = klayer.compute_output_shape(shape)
    as_ = alayer.compute_output_shape(shape)
    if kwargs.get("return_state"):
        assert [tuple(s) for s in as_] == [tuple(s) for s in ks]
    else:
        assert as_ == tuple(ks)


def test_conv_lstm_initial_state_matches_keras():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, 3, 4, 4, 2)).astype(np.float32)
    h0, c0 = (rng.normal(size=(2, 4, 4, 3)).astype(np.float32) for _ in range(2))
    k = keras.layers.ConvLSTM2D(3, 3, padding="same")
    ky = _np(k(torch.tensor(x), initial_state=[torch.tensor(h0), torch.tensor(c0)]))
    a = axone.layers.ConvLSTM2D(3, 3, padding="same")
    a.build(x.shape)
    a.set_weights(k.get_weights())
    _close(a(Tensor(x), initial_state=[Tensor(h0), Tensor(c0)]).data, ky, "ConvLSTM2D initial_state")


def test_conv_lstm_default_bias_is_unit_forget():
    a = axone.layers.ConvLSTM2D(4, 3)
    a.build((1, 2, 5, 5, 2))
    np.testing.assert_array_equal(a.bias.data, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])


CHANNELS_FIRST_2D = [
    ("ZeroPadding1D", dict(padding=(1, 2), data_format="channels_first"), (2, 3, 5)),
    ("ZeroPadding2D", dict(padding=((1, 0), (2, 1)), data_format="channels_first"), (2, 3, 4, 5)),
    ("Cropping2D", dict(cropping=((1, 0), (2, 1)), data_format="channels_first"), (2, 3, 5, 6)),
    ("UpSampling2D", dict(size=(2, 3), data_format="channels_first"), (2, 3, 2, 4)),
    ("UpSampling2D", dict(size=2, data_format="channels_first", interpolation="bilinear"),
     (2, 3, 3, 4)),
]


@pytest.mark.parametrize("name,kwargs,shape", CHANNELS_FIRST_2D,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CHANNELS_FIRST_2D)])
def test_channels_first_reshaping(name, kwargs, shape):
    alayer, klayer = compare(name, kwargs, [shape])
    assert alayer.compute_output_shape(shape) == tuple(klayer.compute_output_shape(shape))
