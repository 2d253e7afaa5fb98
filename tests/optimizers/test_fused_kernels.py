"""The compiled fused updates (axone._kernels) against the NumPy reference updates.

Both forms do the same arithmetic in the same order and precision, so they must agree bit for
bit, on every optimizer and option, in float32 and float64, on buffers small enough to run on
one thread and large enough to be split across threads, with NaN and infinite gradients.
"""
import shutil
import sysconfig

import numpy as np
import pytest

import axone
import axone.optimizers as O

CONFIGS = [
    (O.SGD, {}), (O.SGD, dict(momentum=0.9)), (O.SGD, dict(momentum=0.9, nesterov=True)),
    (O.SGD, dict(momentum=0.5, weight_decay=0.05)),
    (O.Adam, {}), (O.Adam, dict(amsgrad=True)), (O.Adam, dict(weight_decay=0.1, beta_1=0.5)),
    (O.AdamW, {}), (O.AdamW, dict(amsgrad=True)),
    (O.RMSprop, {}), (O.RMSprop, dict(momentum=0.3)), (O.RMSprop, dict(centered=True)),
    (O.RMSprop, dict(centered=True, momentum=0.5, rho=0.8)),
    (O.Adagrad, {}), (O.Adagrad, dict(initial_accumulator_value=0.5, weight_decay=0.01)),
    (O.Adadelta, dict(learning_rate=1.0)), (O.Adamax, {}), (O.Adamax, dict(beta_2=0.5)),
    (O.Nadam, {}), (O.Nadam, dict(weight_decay=0.02)),
]

needs_kernels = pytest.mark.skipif(not O.fused_kernels_available(),
                                   reason="axone._kernels is not built (no C compiler at install)")


def _ids(c):
    cls, kw = c
    return cls.__name__ + "".join(f"-{k}={v}" for k, v in kw.items())


def _run(opt, w, grads):
    w = w.copy()
    for g in grads:
        opt.update_flat(w, g.copy())
    return w


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1_001, 300_017])
@pytest.mark.parametrize("config", CONFIGS, ids=[_ids(c) for c in CONFIGS])
def test_fused_update_matches_numpy_bit_for_bit(config, size, dtype):
    cls, kw = config
    rng = np.random.default_rng(size)
    w0 = rng.standard_normal(size).astype(dtype)
    grads = [rng.standard_normal(size).astype(dtype) for _ in range(4)]
    fused, ref = cls(**kw), cls(**kw)
    ref.use_fused = False
    a, b = _run(fused, w0, grads), _run(ref, w0, grads)
    assert not np.array_equal(a, w0)
    assert np.array_equal(a, b)
    for name, arr in ref._flat_state.items():
        if name[0] != "_":
            assert np.array_equal(fused._flat_state[name], arr), name


@needs_kernels
@pytest.mark.parametrize("config", CONFIGS, ids=[_ids(c) for c in CONFIGS])
def test_fused_update_propagates_nan_and_inf_like_numpy(config):
    cls, kw = config
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal(64).astype(np.float32)
    grads = [rng.standard_normal(64).astype(np.float32) for _ in range(3)]
    grads[1][:4] = [np.nan, np.inf, -np.inf, 0.0]
    fused, ref = cls(**kw), cls(**kw)
    ref.use_fused = False
    with np.errstate(all="ignore"):
        a, b = _run(fused, w0, grads), _run(ref, w0, grads)
    assert np.array_equal(a, b, equal_nan=True)
    assert np.isnan(a[0])


@needs_kernels
def test_apply_gradients_uses_the_same_rule():
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal((5, 7)).astype(np.float32)
    gs = [rng.standard_normal((5, 7)).astype(np.float32) for _ in range(3)]
    va, vb = axone.Variable(w0.copy()), axone.Variable(w0.copy())
    fused, ref = O.Adam(0.01), O.Adam(0.01)
    ref.use_fused = False
    for g in gs:
        fused.apply_gradients([(g, va)])
        ref.apply_gradients([(g, vb)])
    assert np.array_equal(np.asarray(va.numpy()), np.asarray(vb.numpy()))


@needs_kernels
def test_fused_and_numpy_training_give_identical_models():
    x = np.random.default_rng(3).standard_normal((64, 4)).astype(np.float32)
    y = (x.sum(axis=1) > 0).astype(np.int64)
    weights = []
    for fused in (True, False):
        axone.utils.set_random_seed(0)
        model = axone.Sequential([axone.layers.Input((4,)), axone.layers.Dense(8, activation="relu"),
                                  axone.layers.Dense(2, activation="softmax")])
        opt = O.Nadam(0.01)
        opt.use_fused = fused
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        assert np.array_equal(a, b)


def test_numpy_fallback_when_kernels_are_off(monkeypatch):
    monkeypatch.setattr(O, "_KERNELS", None)
    w = np.ones(10, np.float32)
    opt = O.Adam(0.1)
    opt.update_flat(w, np.ones(10, np.float32))
    np.testing.assert_allclose(w, 0.9, rtol=1e-6)


def test_kernels_are_built_where_a_compiler_exists():
    cc = (sysconfig.get_config_var("CC") or "").split()
    if not cc or shutil.which(cc[0]) is None:
        pytest.skip("no C compiler on this machine: the NumPy updates are used")
    import os
    if os.environ.get("AXONE_KERNELS", "1") == "0":
        pytest.skip("AXONE_KERNELS=0 turns the kernels off")
    assert O.fused_kernels_available(), ("a C compiler is present but axone._kernels is not built: "
                                         "install with `pip install -e .` (or `pip install .`)")


@needs_kernels
def test_kernel_rejects_mismatched_buffers():
    from axone import _kernels
    with pytest.raises(ValueError, match="different lengths"):
        _kernels.sgd(False, 0, (np.zeros(4, np.float32), np.zeros(5, np.float32), None), (0.1, 1.0, 0.0))
    with pytest.raises(TypeError, match="buffers"):
        _kernels.adam(False, 0, (np.zeros(4, np.float32),), (0.1,))
