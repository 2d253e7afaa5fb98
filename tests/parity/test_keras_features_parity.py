"""Feature preprocessing layers against Keras 3 on its PyTorch backend.

Keras runs Normalization, Discretization (with given bin boundaries) and CategoryEncoding
without TensorFlow, so those are compared here on random inputs: outputs (values, dtypes,
shapes), symbolic output shapes, adapted state, weights (names, shapes, transfer both ways),
configs and the gradient of Normalization with respect to its input.  Discretization.adapt
needs TensorFlow in Keras, so axone's adapt is compared with Keras's own quantile-summary
functions (keras/src/layers/preprocessing/discretization.py) run batch by batch.  Hashing,
HashedCrossing and the lookups need TensorFlow in Keras; tests/layers/test_features.py checks
them against the values Keras documents.
"""
import zlib

import numpy as np
import pytest
import torch

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)
from keras.src.layers.preprocessing import discretization as keras_disc

import axone
from axone import Tensor
from axone import layers as L

assert keras.backend.backend() == "torch", (
    "the Keras parity tests need KERAS_BACKEND=torch (set by tests/conftest.py)")

KL = keras.layers


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


# ------------------------------------------------------------------ Normalization
@pytest.mark.parametrize("axis,shape", [(-1, (40, 3)), (None, (40, 3)), ((1, 2), (30, 2, 3)),
                                        (1, (30, 2, 3)), (0, (6, 4)), ((-1,), (20, 5))])
@pytest.mark.parametrize("invert", [False, True])
def test_normalization_adapt_matches_keras(axis, shape, invert):
    rng = np.random.default_rng(zlib.crc32(repr((axis, shape, invert)).encode()))
    data = (rng.normal(size=shape) * rng.uniform(0.1, 10) + rng.uniform(-5, 5)).astype("float32")
    x = rng.normal(size=shape).astype("float32")
    k = KL.Normalization(axis=axis, invert=invert)
    k.adapt(data)
    a = L.Normalization(axis=axis, invert=invert)
    a.adapt(data)
    assert [w.name for w in a.weights] == [w.name for w in k.weights]
    assert [tuple(w.shape) for w in a.weights] == [tuple(w.shape) for w in k.weights]
    for wa, wk in zip(a.get_weights(), k.get_weights()):
        np.testing.assert_allclose(wa, wk, rtol=1e-5, atol=1e-6)
    out = a(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), _np(k(x)), rtol=1e-5, atol=1e-5)


def test_normalization_float64_and_int_adapt_data_match_keras():
    rng = np.random.default_rng(7)
    for data in (rng.normal(size=(50, 4)) * 3 + 1, rng.integers(-20, 20, size=(50, 4))):
        k = KL.Normalization()
        k.adapt(data)
        a = L.Normalization()
        a.adapt(data)
        for wa, wk in zip(a.get_weights()[:2], k.get_weights()[:2]):
            np.testing.assert_allclose(wa, wk, rtol=1e-6)
        x = rng.integers(-5, 5, size=(3, 4))
        np.testing.assert_allclose(a(x).numpy(), _np(k(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis,mean,variance,shape", [
    (-1, 3.0, 2.0, (4, 1)), (-1, [1., 2., 3.], [1., 4., 0.], (5, 3)), (None, 0.5, 9.0, (3, 2)),
    ((1, 2), [1., -1.], [2., 3.], (2, 4, 2)), ((1, 2), [[1.], [2.]], [[1.], [4.]], (3, 2, 5)),
])
def test_normalization_given_mean_variance_matches_keras(axis, mean, variance, shape):
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape).astype("float32")
    for invert in (False, True):
        k = KL.Normalization(axis=axis, mean=mean, variance=variance, invert=invert)
        a = L.Normalization(axis=axis, mean=mean, variance=variance, invert=invert)
        np.testing.assert_allclose(a(x).numpy(), _np(k(x)), rtol=1e-6, atol=1e-6)
        assert a.weights == [] and len(k.weights) == 0
        ka, kk = a.get_config(), k.get_config()
        for key in ("mean", "variance", "invert"):
            assert ka[key] == kk[key], key
        assert tuple(ka["axis"]) == tuple(kk["axis"])


def test_normalization_input_gradient_matches_keras():
    rng = np.random.default_rng(4)
    data = (rng.normal(size=(64, 3)) * [1., 5., .2]).astype("float32")
    x = rng.normal(size=(8, 3)).astype("float32")
    g = rng.normal(size=(8, 3)).astype("float32")
    for invert in (False, True):
        k = KL.Normalization(invert=invert)
        k.adapt(data)
        a = L.Normalization(invert=invert)
        a.adapt(data)
        tx = torch.tensor(x, requires_grad=True)
        (k(tx) * torch.tensor(g)).sum().backward()
        ax = Tensor(x, requires_grad=True)
        (a(ax) * Tensor(g)).sum().backward()
        np.testing.assert_allclose(ax.grad, _np(tx.grad), rtol=1e-5, atol=1e-6)


def test_normalization_weights_transfer_both_ways():
    rng = np.random.default_rng(5)
    data = rng.normal(size=(30, 2, 4)).astype("float32")
    x = rng.normal(size=(3, 2, 4)).astype("float32")
    k = KL.Normalization(axis=(1, 2))
    k.adapt(data)
    a = L.Normalization(axis=(1, 2))
    a.build((None, 2, 4))
    a.set_weights(k.get_weights())
    np.testing.assert_allclose(a(x).numpy(), _np(k(x)), rtol=1e-6, atol=1e-6)
    a2 = L.Normalization(axis=(1, 2))
    a2.adapt(data * 2 + 1)
    k2 = KL.Normalization(axis=(1, 2))
    k2.build((None, 2, 4))
    k2.set_weights([w.astype(kw.dtype) for w, kw in zip(a2.get_weights(), k2.get_weights())])
    k2.finalize_state()
    np.testing.assert_allclose(_np(k2(x)), a2(x).numpy(), rtol=1e-6, atol=1e-6)


def test_normalization_symbolic_shape_matches_keras():
    k = KL.Normalization(axis=(1,))
    a = L.Normalization(axis=(1,))
    assert tuple(a(axone.Input((4, 3))).shape) == tuple(k(keras.Input((4, 3))).shape)


# ------------------------------------------------------------------ Discretization
@pytest.mark.parametrize("output_mode", ["int", "one_hot", "multi_hot", "count"])
@pytest.mark.parametrize("shape", [(7,), (5, 1), (4, 6), (3, 4, 2), ()])
def test_discretization_matches_keras(output_mode, shape):
    rng = np.random.default_rng(11)
    bounds = np.sort(rng.normal(size=4)).round(2).tolist()
    x = rng.normal(size=shape) * 1.5
    if x.size >= 2:
        x.reshape(-1)[:2] = bounds[:2]          # values on the boundaries themselves
    k = KL.Discretization(bin_boundaries=bounds, output_mode=output_mode)
    a = L.Discretization(bin_boundaries=bounds, output_mode=output_mode)
    ko, ao = _np(k(x)), a(x)
    assert ao.dtype == ko.dtype, (ao.dtype, ko.dtype)
    np.testing.assert_array_equal(ao.numpy(), ko)
    if shape:
        ks = k(keras.Input(shape[1:], batch_size=shape[0])).shape if len(shape) > 1 else None
        if ks is not None:
            assert a.compute_output_shape(shape) == tuple(ks)
    assert a.compute_output_shape(shape) == tuple(k.compute_output_shape(shape))


def test_discretization_int_inputs_and_config_match_keras():
    k = KL.Discretization(bin_boundaries=[-1.5, 0.0, 2.5], output_mode="count", name="d")
    a = L.Discretization(bin_boundaries=[-1.5, 0.0, 2.5], output_mode="count", name="d")
    x = np.array([[-3, -1, 0, 2, 3, 3]])
    np.testing.assert_array_equal(a(x).numpy(), _np(k(x)))
    ka, kk = a.get_config(), k.get_config()
    assert set(ka) == set(kk)
    for key in ("bin_boundaries", "num_bins", "epsilon", "output_mode", "sparse", "name"):
        assert ka[key] == kk[key], key


def _keras_adapt(batches, num_bins, epsilon):
    """What Keras's Discretization.adapt computes, from its own module-level functions."""
    summary = np.array([[], []], dtype="float32")
    for b in batches:
        s = keras_disc.summarize(np.array(b).astype("float32"), epsilon)
        summary = keras_disc.merge_summaries(s, summary, epsilon)
    return keras_disc.get_bin_boundaries(summary, num_bins).tolist()


@pytest.mark.parametrize("num_bins,epsilon", [(4, 0.01), (3, 0.1), (10, 0.001), (1, 0.01)])
def test_discretization_adapt_matches_keras_algorithm(num_bins, epsilon):
    rng = np.random.default_rng(num_bins)
    data = rng.gamma(2.0, size=(800, 3)).astype("float32")
    a = L.Discretization(num_bins=num_bins, epsilon=epsilon)
    a.adapt(data)
    np.testing.assert_allclose(a.bin_boundaries, _keras_adapt([data], num_bins, epsilon), rtol=1e-6)
    batches = [data[i:i + 128] for i in range(0, 800, 128)]
    g = L.Discretization(num_bins=num_bins, epsilon=epsilon)
    g.adapt(iter(batches))
    np.testing.assert_allclose(g.bin_boundaries, _keras_adapt(batches, num_bins, epsilon), rtol=1e-6)
    # an adapted layer buckets like Keras's layer given the same boundaries
    k = KL.Discretization(bin_boundaries=g.bin_boundaries)
    np.testing.assert_array_equal(g(data).numpy(), _np(k(data)))


# ------------------------------------------------------------------ CategoryEncoding
@pytest.mark.parametrize("output_mode", ["one_hot", "multi_hot", "count"])
@pytest.mark.parametrize("shape", [(), (6,), (5, 1), (4, 3), (2, 3, 2)])
def test_category_encoding_matches_keras(output_mode, shape):
    rng = np.random.default_rng(21)
    x = rng.integers(0, 5, size=shape)
    k = KL.CategoryEncoding(num_tokens=5, output_mode=output_mode)
    a = L.CategoryEncoding(num_tokens=5, output_mode=output_mode)
    ko, ao = _np(k(x)), a(x)
    assert ao.dtype == ko.dtype
    np.testing.assert_array_equal(ao.numpy(), ko)
    assert a.compute_output_shape(shape) == tuple(k.compute_output_shape(shape))


@pytest.mark.parametrize("shape", [(6,), (4, 3)])
def test_category_encoding_count_weights_match_keras(shape):
    rng = np.random.default_rng(22)
    x = rng.integers(0, 4, size=shape)
    w = rng.uniform(0, 2, size=shape).astype("float32")
    k = KL.CategoryEncoding(num_tokens=4, output_mode="count")
    a = L.CategoryEncoding(num_tokens=4, output_mode="count")
    np.testing.assert_allclose(a(x, count_weights=w).numpy(), _np(k(x, count_weights=w)),
                               rtol=1e-6, atol=1e-6)


def test_category_encoding_config_and_symbolic_shape_match_keras():
    k = KL.CategoryEncoding(num_tokens=7, output_mode="one_hot", name="ce")
    a = L.CategoryEncoding(num_tokens=7, output_mode="one_hot", name="ce")
    for key in ("num_tokens", "output_mode", "name", "trainable"):
        assert a.get_config()[key] == k.get_config()[key]
    assert tuple(a(axone.Input((1,), dtype="int64")).shape) == \
        tuple(k(keras.Input((1,), dtype="int64")).shape)
