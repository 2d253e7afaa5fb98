"""keras.initializers names (lower-case functions, compatibility classes, STFT) against Keras 3:
exact values for the deterministic ones, moments and limits over large draws for the random ones."""
import math

import numpy as np
import pytest

import axone.initializers as I

keras = pytest.importorskip("keras")

LOWER = ["constant", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "identity",
         "lecun_normal", "lecun_uniform", "ones", "orthogonal", "random_normal", "random_uniform",
         "truncated_normal", "variance_scaling", "zeros", "stft"]


@pytest.mark.parametrize("name", LOWER)
def test_lower_case_names_are_the_classes(name):
    obj = getattr(I, name)()
    assert isinstance(obj, I.Initializer)
    assert type(I.get(name)) is type(obj)
    assert type(getattr(keras.initializers, name)()).__name__ == type(obj).__name__


def test_compatibility_names():
    assert I.IdentityInitializer is I.Identity and I.OrthogonalInitializer is I.Orthogonal
    assert I.STFTInitializer is I.STFT
    for n in ("IdentityInitializer", "OrthogonalInitializer", "STFTInitializer"):
        assert type(I.get(n)) is getattr(I, n)


@pytest.mark.parametrize("kw", [{}, dict(side="imag"), dict(window="hamming", scaling="spectrum",
                                                            periodic=True),
                                dict(window=None), dict(window="blackman", scaling=None),
                                dict(window="bohman")])
def test_stft_matches_keras(kw):
    a = I.STFT(**kw)((16, 1, 9))
    k = np.asarray(keras.initializers.STFT(**kw)((16, 1, 9)))
    np.testing.assert_allclose(a, k, rtol=1e-5, atol=1e-6)
    assert a.dtype == np.float32
    assert I.STFT.from_config(I.STFT(**kw).get_config()).get_config() == I.STFT(**kw).get_config()


def test_stft_bad_arguments():
    with pytest.raises(ValueError, match="side"):
        I.STFT(side="both")
    with pytest.raises(ValueError, match="scaling"):
        I.STFT(scaling="l2")
    with pytest.raises(ValueError, match="window"):
        I.STFT(window=np.ones(3))((4, 1, 3))


def test_deterministic_values():
    np.testing.assert_array_equal(I.identity(gain=2.0)((3, 4)), 2 * np.eye(3, 4))
    np.testing.assert_array_equal(I.constant(0.5)((2, 2)), np.full((2, 2), 0.5, "float32"))
    np.testing.assert_array_equal(I.zeros()((3,)), np.zeros(3))
    np.testing.assert_array_equal(I.ones()((3,)), np.ones(3))
    q = I.orthogonal(seed=1)((6, 4))
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-5)
    with pytest.raises(ValueError, match="2D|2-D"):
        I.identity()((2, 2, 2))


@pytest.mark.parametrize("name,var,kind", [
    ("glorot_uniform", 2 / (300 + 200), "uniform"), ("glorot_normal", 2 / 500, "truncated"),
    ("he_uniform", 2 / 300, "uniform"), ("he_normal", 2 / 300, "truncated"),
    ("lecun_uniform", 1 / 300, "uniform"), ("lecun_normal", 1 / 300, "truncated")])
def test_variance_scaling_moments(name, var, kind):
    x = getattr(I, name)(seed=3)((300, 200)).astype(np.float64)
    assert abs(x.mean()) < 0.01 * math.sqrt(var) * 10
    assert x.std() == pytest.approx(math.sqrt(var), rel=0.02)
    if kind == "uniform":
        assert np.abs(x).max() <= math.sqrt(3 * var) + 1e-7
    else:
        assert np.abs(x).max() <= 2 * math.sqrt(var) / 0.87962566103423978 + 1e-6
    k = np.asarray(getattr(keras.initializers, name)(seed=3)((300, 200)))
    assert k.std() == pytest.approx(x.std(), rel=0.03)


def test_random_moments():
    x = I.random_normal(mean=1.0, stddev=2.0, seed=0)((200000,))
    assert x.mean() == pytest.approx(1.0, abs=0.03) and x.std() == pytest.approx(2.0, rel=0.01)
    u = I.random_uniform(minval=-1, maxval=3, seed=0)((200000,))
    assert u.min() >= -1 and u.max() < 3 and u.mean() == pytest.approx(1.0, abs=0.02)
    t = I.truncated_normal(stddev=1.0, seed=0)((200000,))
    assert np.abs(t).max() <= 2.0 and t.std() == pytest.approx(0.8796, rel=0.01)


def test_get_accepts_arrays():
    init = I.get(np.arange(4.0).reshape(2, 2))
    np.testing.assert_array_equal(init((2, 2)), np.arange(4.0).reshape(2, 2))
    with pytest.raises(ValueError, match="shape"):
        init((3, 3))
