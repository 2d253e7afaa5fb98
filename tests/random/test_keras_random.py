"""keras.random on axone: shapes and dtypes as Keras 3's (torch backend), distributions,
seeding, gradients of the differentiable draws, bad arguments and the keras alias."""
import subprocess
import sys

import numpy as np
import pytest

import axone
from axone import Tensor
from axone import random as ar
from axone.autograd.gradcheck import check_gradients

N = 100_000


# ------------------------------------------------------------------ shapes and dtypes vs Keras
def _cases(x_float32, x_float64, x_int):
    return [
        ("normal", ((2, 3),), {}),
        ("normal", ((),), {}),
        ("normal", ([4],), {"dtype": "float64"}),
        ("normal", ((2, 0, 3),), {"mean": 1.0, "stddev": 2.0}),
        ("uniform", ((),), {}),
        ("uniform", ((3, 2),), {"minval": -1.0, "maxval": 3.0, "dtype": "float16"}),
        ("randint", ((2, 5), 0, 7), {}),
        ("randint", ((3,), -4, 4), {"dtype": "int64"}),
        ("truncated_normal", ((5,),), {}),
        ("truncated_normal", ((2, 2),), {"dtype": "float16"}),
        ("categorical", ([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]], 4), {}),
        ("categorical", ([[0.0, 1.0]], 3), {"dtype": "int64"}),
        ("gamma", ((3, 2), 2.0), {}),
        ("gamma", ((2,), 0.5), {"dtype": "float64"}),
        ("beta", ((3,), 2.0, 3.0), {}),
        ("binomial", ((4,), 5, 0.3), {}),
        ("binomial", ((2, 2), 3, 0.5), {"dtype": "float64"}),
        ("dropout", (x_float32, 0.5), {}),
        ("dropout", (x_float64, 0.3), {"noise_shape": (1, 3)}),
        ("dropout", (x_float32, 1.0), {}),
        ("shuffle", (x_int,), {}),
        ("shuffle", (x_float32,), {"axis": 1}),
    ]


def test_shapes_and_dtypes_match_keras():
    keras = pytest.importorskip("keras")
    torch = pytest.importorskip("torch")
    if keras.backend.backend() != "torch":
        pytest.skip("parity is checked against Keras's torch backend")
    base = np.arange(6).reshape(2, 3)
    ours = _cases(base.astype("float32"), base.astype("float64"), base)
    theirs = _cases(torch.tensor(base, dtype=torch.float32), torch.tensor(base, dtype=torch.float64),
                    torch.tensor(base))
    for (name, args, kw), (_, kargs, _) in zip(ours, theirs):
        want = getattr(keras.random, name)(*kargs, seed=3, **kw)
        got = getattr(ar, name)(*args, seed=3, **kw)
        assert isinstance(got, Tensor), name
        assert got.shape == tuple(want.shape), (name, args, kw, got.shape, want.shape)
        assert str(got.dtype) == str(want.dtype).replace("torch.", ""), (name, kw, got.dtype)


def test_default_dtype_follows_floatx():
    prev = axone.backend.floatx()
    try:
        axone.backend.set_floatx("float64")
        for x in (ar.normal((2,)), ar.uniform((2,)), ar.truncated_normal((2,)), ar.gamma((2,), 1.0),
                  ar.beta((2,), 1.0, 1.0), ar.binomial((2,), 2, 0.5)):
            assert x.dtype == np.float64
        assert ar.randint((2,), 0, 3).dtype == np.int32
        assert ar.categorical([[0.0, 0.0]], 2).dtype == np.int32
    finally:
        axone.backend.set_floatx(prev)


def test_public_names_are_those_of_keras_random():
    keras = pytest.importorskip("keras")
    names = {n for n in dir(keras.random) if not n.startswith("_")}
    assert names <= set(dir(ar)), names - set(dir(ar))
    assert set(ar.__all__) == names


# ------------------------------------------------------------------ distributions
def test_normal_and_uniform_moments():
    x = ar.normal((N,), mean=2.0, stddev=3.0, seed=1).data
    assert abs(x.mean() - 2.0) < 0.03 and abs(x.std() - 3.0) < 0.03
    u = ar.uniform((N,), minval=-1.0, maxval=3.0, seed=2).data
    assert u.min() >= -1.0 and u.max() < 3.0
    assert abs(u.mean() - 1.0) < 0.02 and abs(u.var() - 16 / 12) < 0.02


def test_normal_broadcasts_array_parameters():
    x = ar.normal((N, 2), mean=np.array([-5.0, 5.0]), stddev=np.array([1.0, 0.1]), seed=3).data
    np.testing.assert_allclose(x.mean(0), [-5.0, 5.0], atol=0.02)
    np.testing.assert_allclose(x.std(0), [1.0, 0.1], rtol=0.02)


def test_truncated_normal_within_two_stddev():
    x = ar.truncated_normal((N,), mean=1.0, stddev=0.5, seed=4).data
    assert x.min() >= 0.0 and x.max() <= 2.0
    # standard normal truncated to [-2, 2]: variance 1 − 4φ(2)/(Φ(2) − Φ(−2)) ≈ 0.7737
    assert abs(x.mean() - 1.0) < 0.01 and abs(x.std() - 0.5 * np.sqrt(0.7737)) < 0.01


def test_randint_range_and_frequencies():
    x = ar.randint((N,), -2, 3, seed=5).data
    assert x.min() == -2 and x.max() == 2
    np.testing.assert_allclose(np.bincount(x + 2) / N, 0.2, atol=0.01)


def test_categorical_frequencies_follow_softmax():
    logits = np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.0]])
    s = ar.categorical(logits, N, seed=6).data
    assert s.shape == (2, N)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    for i in range(2):
        np.testing.assert_allclose(np.bincount(s[i], minlength=3) / N, p[i], atol=0.01)


def test_categorical_never_draws_an_impossible_class():
    s = ar.categorical([[-np.inf, 0.0, -np.inf]], 1000, seed=0).data
    assert (s == 1).all()


def test_gamma_beta_binomial_moments():
    g = ar.gamma((N,), 3.0, seed=7).data
    assert abs(g.mean() - 3.0) < 0.05 and abs(g.var() - 3.0) < 0.1
    b = ar.beta((N,), 2.0, 5.0, seed=8).data
    assert abs(b.mean() - 2 / 7) < 0.005
    assert abs(b.var() - 10 / (49 * 8)) < 0.002
    k = ar.binomial((N,), 10, 0.3, seed=9).data
    assert abs(k.mean() - 3.0) < 0.03 and abs(k.var() - 2.1) < 0.05
    assert (k == np.round(k)).all() and k.min() >= 0 and k.max() <= 10


def test_dropout_rate_and_scale():
    x = ar.dropout(np.ones(N, "float32"), 0.25, seed=10).data
    assert set(np.unique(x)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((x == 0).mean() - 0.25) < 0.01
    assert (ar.dropout(np.ones((2, 3)), 1.0).data == 0).all()
    x = np.ones((2, 3))
    assert ar.dropout(x, 0.0).data is not None and (ar.dropout(x, 0.0).data == x).all()


def test_dropout_noise_shape_broadcasts_the_mask():
    y = ar.dropout(np.ones((50, 40)), 0.5, noise_shape=(None, 1), seed=11).data
    assert ((y == 0).all(1) | (y == 2).all(1)).all()      # one decision per row
    assert 0 < (y[:, 0] == 0).sum() < 50


def test_shuffle_is_a_permutation_along_the_axis():
    x = np.arange(24).reshape(4, 6)
    y = ar.shuffle(x, seed=12).data
    assert sorted(map(tuple, y)) == sorted(map(tuple, x))        # whole rows move
    y = ar.shuffle(x, axis=1, seed=12).data
    for r in range(4):
        assert sorted(y[r]) == list(x[r])                        # each row permuted
    assert any(list(y[r]) != list(x[r]) for r in range(4))
    z = ar.shuffle(np.arange(24).reshape(2, 3, 4), axis=-2, seed=1).data
    assert z.shape == (2, 3, 4)
    assert (np.diff(z, axis=2) == 1).all()                       # trailing axis moves together


def test_shuffle_permutes_uniformly():
    counts = np.zeros((3, 3))
    gen = ar.SeedGenerator(0)
    for _ in range(3000):
        y = ar.shuffle(np.arange(3), seed=gen).data
        counts[np.arange(3), y] += 1
    np.testing.assert_allclose(counts / 3000, 1 / 3, atol=0.04)


# ------------------------------------------------------------------ seeding
ALL_DRAWS = [
    lambda s: ar.normal((3, 4), seed=s),
    lambda s: ar.uniform((5,), seed=s),
    lambda s: ar.randint((6,), 0, 100, seed=s),
    lambda s: ar.truncated_normal((5,), seed=s),
    lambda s: ar.categorical(np.zeros((2, 10)), 8, seed=s),
    lambda s: ar.gamma((5,), 2.0, seed=s),
    lambda s: ar.beta((5,), 2.0, 2.0, seed=s),
    lambda s: ar.binomial((5,), 20, 0.5, seed=s),
    lambda s: ar.dropout(np.ones((4, 5)), 0.5, seed=s),
    lambda s: ar.shuffle(np.arange(20), seed=s),
]


@pytest.mark.parametrize("draw", ALL_DRAWS)
def test_int_seed_repeats_and_seed_generator_advances(draw):
    a, b = draw(42).data, draw(42).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, draw(43).data)
    g1, g2 = ar.SeedGenerator(7), ar.SeedGenerator(7)
    first, second = draw(g1).data, draw(g1).data
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, draw(g2).data)
    np.testing.assert_array_equal(second, draw(g2).data)


@pytest.mark.parametrize("draw", ALL_DRAWS)
def test_set_random_seed_reproduces_global_draws(draw):
    axone.utils.set_random_seed(123)
    a, b = draw(None).data, draw(None).data
    axone.utils.set_random_seed(123)
    np.testing.assert_array_equal(a, draw(None).data)
    np.testing.assert_array_equal(b, draw(None).data)
    assert not np.array_equal(a, b)


def test_seed_generator_state_next_and_config():
    g = ar.SeedGenerator(seed=42, name="gen")
    assert g.name == "gen"
    assert g.state.shape == (2,) and g.state.dtype == np.int32 and not g.state.trainable
    np.testing.assert_array_equal(g.next().data, [42, 0])
    np.testing.assert_array_equal(g.next().data, [42, 1])
    np.testing.assert_array_equal(g.state.data, [42, 2])
    assert g.get_config() == {"seed": 42, "name": "gen"}
    h = ar.SeedGenerator.from_config(g.get_config())
    np.testing.assert_array_equal(h.state.data, [42, 0])
    u = ar.SeedGenerator(3)
    u.next(ordered=False)
    np.testing.assert_array_equal(u.state.data, [(3 + 1) * 5387 % 933199, 5387 % 933199])


def test_seed_generator_auto_names_and_unseeded():
    a, b = ar.SeedGenerator(), ar.SeedGenerator()
    assert a.name.startswith("seed_generator") and a.name != b.name
    assert a.get_config()["seed"] is None
    axone.utils.set_random_seed(5)
    s1 = ar.SeedGenerator().state.data.copy()
    axone.utils.set_random_seed(5)
    np.testing.assert_array_equal(s1, ar.SeedGenerator().state.data)


def test_large_and_negative_int_seeds_are_accepted():
    np.testing.assert_array_equal(ar.normal((3,), seed=2 ** 40 + 1).data,
                                  ar.normal((3,), seed=2 ** 40 + 1).data)
    assert ar.normal((3,), seed=-5).shape == (3,)
    assert ar.SeedGenerator(2 ** 31 + 3).state.dtype == np.int32


# ------------------------------------------------------------------ gradients (float64)
def test_normal_reparameterization_gradient():
    def fn(mean, stddev):
        return ar.normal((3, 4), mean=mean, stddev=stddev, dtype="float64", seed=1)
    r = check_gradients(fn, np.array([0.5, -1.0, 2.0, 0.0]), np.array([[1.0], [0.5], [2.0]]))
    assert r.ok(1e-6), r


def test_vae_reparameterization_with_tensor_mean_and_logvar():
    mean = Tensor(np.array([[0.1, -0.2]]), requires_grad=True)
    logvar = Tensor(np.array([[0.3, 0.4]]), requires_grad=True)
    eps = ar.normal((1, 2), dtype="float64", seed=9)
    z = axone.ops.add(mean, axone.ops.multiply(axone.ops.exp(axone.ops.multiply(logvar, 0.5)), eps))
    axone.ops.sum(z).backward()
    np.testing.assert_allclose(mean.grad, 1.0)
    np.testing.assert_allclose(logvar.grad, 0.5 * np.exp(0.5 * logvar.data) * eps.data)
    # same draw when the location and scale are tensors inside normal itself
    z2 = ar.normal((1, 2), mean=mean, stddev=axone.ops.exp(axone.ops.multiply(logvar, 0.5)),
                   dtype="float64", seed=9)
    np.testing.assert_allclose(z2.data, z.data)
    assert z2.requires_grad


def test_normal_float32_output_from_float64_parameters_keeps_gradients():
    m = Tensor(np.zeros(3), requires_grad=True)
    y = ar.normal((2, 3), mean=m, seed=0)
    assert y.dtype == np.float32
    axone.ops.sum(y).backward()
    assert m.grad.dtype == np.float64
    np.testing.assert_allclose(m.grad, 2.0)


def test_uniform_and_truncated_normal_gradients():
    def fu(lo, hi):
        return ar.uniform((5, 2), minval=lo, maxval=hi, dtype="float64", seed=2)
    assert check_gradients(fu, np.array([0.0, -1.0]), np.array(3.0)).ok(1e-6)

    def ft(m, s):
        return ar.truncated_normal((4, 2), mean=m, stddev=s, dtype="float64", seed=3)
    assert check_gradients(ft, np.array([1.0, 2.0]), np.array([0.5, 1.5])).ok(1e-6)


def test_dropout_gradient():
    def f(x):
        return ar.dropout(x, 0.4, seed=4)
    r = check_gradients(f, np.random.default_rng(0).normal(size=(6, 5)))
    assert r.ok(1e-6), r
    x = Tensor(np.ones((6, 5)), requires_grad=True)
    y = ar.dropout(x, 0.4, seed=4)
    axone.ops.sum(y).backward()
    np.testing.assert_allclose(x.grad, y.data)          # dL/dx = m/(1 − rate) = y/x


def test_shuffle_gradient():
    def f(x):
        return ar.shuffle(x, axis=1, seed=5)
    r = check_gradients(f, np.random.default_rng(1).normal(size=(3, 4, 2)))
    assert r.ok(1e-6), r


def test_non_differentiable_draws_accept_tensor_parameters():
    a = Tensor(np.array([2.0, 3.0]), requires_grad=True)
    g = ar.gamma((4, 2), a, seed=0)
    assert g.shape == (4, 2) and not g.requires_grad


# ------------------------------------------------------------------ bad arguments
@pytest.mark.parametrize("call,exc,words", [
    (lambda: ar.normal((2, -1)), ValueError, ["normal", "shape", "negative"]),
    (lambda: ar.uniform("ab"), TypeError, ["uniform", "shape"]),
    (lambda: ar.normal((2.5,)), TypeError, ["normal", "shape"]),
    (lambda: ar.normal((2,), dtype="int32"), ValueError, ["normal", "dtype"]),
    (lambda: ar.uniform((2,), dtype="int32"), ValueError, ["uniform", "dtype"]),
    (lambda: ar.randint((2,), 0, 3, dtype="float32"), ValueError, ["randint", "dtype", "integer"]),
    (lambda: ar.randint((2,), 3, 3), ValueError, ["randint", "minval", "maxval"]),
    (lambda: ar.randint((2,), 5, 1), ValueError, ["randint", "minval", "maxval"]),
    (lambda: ar.randint((2,), 0.5, 3), TypeError, ["randint", "minval"]),
    (lambda: ar.randint((2,), 0, 300, dtype="uint8"), ValueError, ["randint", "uint8"]),
    (lambda: ar.normal((2,), seed=1.5), ValueError, ["normal", "seed", "SeedGenerator"]),
    (lambda: ar.normal((2,), seed="a"), ValueError, ["normal", "seed"]),
    (lambda: ar.SeedGenerator(1.5), ValueError, ["SeedGenerator", "seed", "integer"]),
    (lambda: ar.SeedGenerator(1, foo=2), ValueError, ["SeedGenerator", "foo"]),
    (lambda: ar.SeedGenerator(1, backend="jax"), NotImplementedError, ["SeedGenerator", "backend"]),
    (lambda: ar.normal((2,), stddev=-1.0), ValueError, ["normal", "stddev"]),
    (lambda: ar.normal((2, 3), mean=np.zeros(4)), ValueError, ["normal", "mean", "(2, 3)"]),
    (lambda: ar.normal((3,), mean=np.zeros((2, 3))), ValueError, ["normal", "mean", "(3,)"]),
    (lambda: ar.dropout(np.ones(3), 1.5), ValueError, ["dropout", "rate"]),
    (lambda: ar.dropout(np.ones(3), -0.1), ValueError, ["dropout", "rate"]),
    (lambda: ar.dropout(np.ones(3), "x"), TypeError, ["dropout", "rate"]),
    (lambda: ar.dropout(np.ones((2, 3)), 0.5, noise_shape=(2,)), ValueError, ["dropout", "noise_shape"]),
    (lambda: ar.dropout(np.ones((2, 3)), 0.5, noise_shape=(2, 2)), ValueError, ["dropout", "noise_shape"]),
    (lambda: ar.shuffle(np.ones((2, 3)), axis=2), ValueError, ["shuffle", "axis"]),
    (lambda: ar.shuffle(np.ones((2, 3)), axis=0.5), TypeError, ["shuffle", "axis"]),
    (lambda: ar.shuffle(np.float64(1.0)), ValueError, ["shuffle", "scalar"]),
    (lambda: ar.categorical([0.0, 1.0], 3), ValueError, ["categorical", "logits", "2-D"]),
    (lambda: ar.categorical([[0.0, 1.0]], -1), ValueError, ["categorical", "num_samples"]),
    (lambda: ar.categorical([[np.nan, 1.0]], 2), ValueError, ["categorical", "logits"]),
    (lambda: ar.gamma((2,), -1.0), ValueError, ["gamma", "alpha", "positive"]),
    (lambda: ar.gamma((2,), "a"), TypeError, ["gamma", "alpha"]),
    (lambda: ar.beta((2,), 1.0, 0.0), ValueError, ["beta", "beta", "positive"]),
    (lambda: ar.beta((2, 3), np.ones(2), 1.0), ValueError, ["beta", "alpha", "broadcast"]),
    (lambda: ar.binomial((2,), 5, 1.5), ValueError, ["binomial", "probabilities"]),
    (lambda: ar.binomial((2,), 2.5, 0.5), ValueError, ["binomial", "counts"]),
    (lambda: ar.binomial((2,), -1, 0.5), ValueError, ["binomial", "counts"]),
])
def test_bad_arguments_name_the_argument(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value), (w, str(info.value))


# ------------------------------------------------------------------ alias
def test_keras_random_through_the_alias():
    code = ("import axone.compat; axone.compat.install_keras_alias()\n"
            "import keras\n"
            "from keras.random import SeedGenerator\n"
            "x = keras.random.normal((2, 3))\n"
            "g = SeedGenerator(1)\n"
            "print(type(x).__module__, x.shape, keras.random.uniform((4,), seed=g).dtype)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["axone.autograd.tensor", "(2,", "3)", "float32"]
