"""keras.metrics.Metric as users subclass it: add_weight / add_variable state, variables,
dtype, default reset_state, the call form, the stateless API, and custom metrics in
compile / fit / evaluate, each checked against real Keras 3 (torch backend)."""
import numpy as np
import pytest

import axone

keras = pytest.importorskip("keras")
rng = np.random.default_rng(5)


def make_rmse(lib):
    """The same user code, written once against a Keras-like module ``lib``."""

    class RMSE(lib.metrics.Metric):
        def __init__(self, name="rmse", **kw):
            super().__init__(name=name, **kw)
            self.mse_sum = self.add_weight(name="mse_sum", initializer="zeros")
            self.total = self.add_weight(name="total", initializer="zeros", dtype="int32")

        def update_state(self, y_true, y_pred, sample_weight=None):
            mse = lib.ops.sum(lib.ops.square(y_true - y_pred))
            self.mse_sum.assign_add(mse)
            self.total.assign_add(lib.ops.shape(y_pred)[0])

        def result(self):
            return lib.ops.sqrt(self.mse_sum / lib.ops.cast(self.total, "float32"))

        def reset_state(self):
            self.mse_sum.assign(0.)
            self.total.assign(0)
    return RMSE


def make_weighted_count(lib):
    """A metric relying on the default reset_state, with a vector state and a sub-metric."""

    class WeightedCount(lib.metrics.Metric):
        def __init__(self, name="weighted_count", **kw):
            super().__init__(name=name, **kw)
            self.counts = self.add_variable(shape=(3,), initializer="zeros", name="counts")
            self.mean = lib.metrics.Mean(name="inner_mean")

        def update_state(self, y_true, y_pred, sample_weight=None):
            onehot = lib.ops.one_hot(lib.ops.argmax(y_pred, axis=-1), 3)
            if sample_weight is not None:
                onehot = onehot * lib.ops.expand_dims(lib.ops.convert_to_tensor(
                    sample_weight, dtype="float32"), -1)
            self.counts.assign(self.counts + lib.ops.sum(onehot, axis=0))
            self.mean.update_state(lib.ops.max(y_pred, axis=-1))

        def result(self):
            return lib.ops.sum(self.counts) * self.mean.result()
    return WeightedCount


def _np(x):
    if isinstance(x, axone.Tensor):
        return x.numpy()
    return np.asarray(x.detach().cpu() if hasattr(x, "cpu") else x)


def _batches(n=3, shape=(8, 3)):
    r = np.random.default_rng(0)
    return [(r.normal(size=shape).astype(np.float32), r.normal(size=shape).astype(np.float32),
             r.uniform(0.1, 1, shape[0]).astype(np.float32)) for _ in range(n)]


@pytest.mark.parametrize("factory", [make_rmse, make_weighted_count])
def test_custom_metric_standalone_matches_keras(factory):
    k = factory(keras)()
    a = factory(axone)()
    for yt, yp, sw in _batches():
        k.update_state(yt, yp, sample_weight=sw)
        a.update_state(yt, axone.Tensor(yp), sample_weight=sw)      # a Tensor y_pred works
        np.testing.assert_allclose(_np(a.result()), _np(k.result()), rtol=1e-5)
    assert [v.path for v in a.variables] == [v.path for v in k.variables]
    assert [str(v.dtype) for v in a.variables] == [str(v.dtype) for v in k.variables]
    assert a.dtype == k.dtype == "float32"
    for m in (a, k):
        m.reset_state()
    for va, vk in zip(a.variables, k.variables):
        np.testing.assert_array_equal(va.numpy(), _np(vk.numpy()))


def test_call_form_and_array_or_tensor_inputs():
    values = rng.normal(size=(6, 2)).astype(np.float32)
    w = rng.uniform(size=6).astype(np.float32)
    for cls in ("Mean", "Sum"):
        k, a = getattr(keras.metrics, cls)(), getattr(axone.metrics, cls)()
        np.testing.assert_allclose(float(a(values)), _np(k(values)), rtol=1e-6)
        np.testing.assert_allclose(float(a(axone.Tensor(values), sample_weight=w)),
                                   _np(k(values, sample_weight=w)), rtol=1e-6)
        assert [v.name for v in a.variables] == [v.name for v in k.variables]
    m = axone.metrics.MeanSquaredError()
    yt, yp = values, values * 0.5
    np.testing.assert_allclose(m(yt, axone.Tensor(yp)), np.mean((yt - yp) ** 2), rtol=1e-6)


@pytest.mark.parametrize("make", [
    lambda lib: lib.metrics.Mean(),
    lambda lib: lib.metrics.Sum(),
    lambda lib: lib.metrics.AUC(num_thresholds=9, name="auc"),
    lambda lib: lib.metrics.Precision(thresholds=[0.3, 0.6], name="p"),
    lambda lib: lib.metrics.R2Score(),
    lambda lib: make_rmse(lib)(),
])
def test_stateless_api_matches_keras_and_leaves_the_state(make):
    k, a = make(keras), make(axone)
    r = np.random.default_rng(1)
    yt = r.integers(0, 2, (10, 2)).astype(np.float32)
    yp = r.uniform(size=(10, 2)).astype(np.float32)
    args = (yp,) if isinstance(a, (axone.metrics.Mean, axone.metrics.Sum)) else (yt, yp)
    # lazily built state (R2Score) exists after a first update
    k.update_state(*args)
    a.update_state(*args)
    before = [v.numpy().copy() for v in a.variables]
    kv = k.stateless_update_state(k.variables, *args)
    av = a.stateless_update_state(a.variables, *args)
    assert len(av) == len(a.variables)
    for x, y in zip(av, kv):
        np.testing.assert_allclose(_np(x.numpy() if hasattr(x, "numpy") else x), _np(y),
                                   rtol=1e-5, atol=1e-6)
    for v, b in zip(a.variables, before):
        np.testing.assert_array_equal(v.numpy(), b)          # own state untouched
    np.testing.assert_allclose(np.asarray(_np(a.stateless_result(av)), dtype=np.float64),
                               np.asarray(_np(k.stateless_result(kv)), dtype=np.float64),
                               rtol=1e-5, atol=1e-6)
    zeros = a.stateless_reset_state()
    assert all(not np.any(z.numpy()) for z in zeros)
    for v, b in zip(a.variables, before):
        np.testing.assert_array_equal(v.numpy(), b)
    with pytest.raises(ValueError, match="corresponding 1:1"):
        a.stateless_update_state(a.variables[:-1], *args)
    with pytest.raises(ValueError, match="corresponding 1:1"):
        a.stateless_result([])


def test_custom_metric_in_compile_fit_evaluate():
    RMSE = make_rmse(axone)
    axone.utils.set_random_seed(4)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    model = axone.Sequential([axone.layers.Input((3,)), axone.layers.Dense(1)])
    metric = RMSE()
    model.compile("sgd", "mse", metrics=[metric, make_weighted_count(axone)()])
    h = model.fit(x, y, epochs=3, batch_size=8, verbose=0, validation_data=(x[:16], y[:16]))
    assert set(h.history) == {"loss", "rmse", "weighted_count", "val_loss", "val_rmse",
                              "val_weighted_count"}
    np.testing.assert_allclose(h.history["val_rmse"][-1],
                               np.sqrt(np.mean((model.predict(x[:16], verbose=0) - y[:16]) ** 2)),
                               rtol=1e-5)
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    np.testing.assert_allclose(logs["rmse"], np.sqrt(np.mean((p - y) ** 2)), rtol=1e-5)
    np.testing.assert_allclose(logs["loss"] ** 0.5, logs["rmse"], rtol=1e-5)
    assert metric in model.metrics


def test_add_weight_initializers_and_dtypes():
    class M(axone.metrics.Metric):
        def __init__(self):
            super().__init__(name="m")
            self.a = self.add_weight(shape=(2,), initializer="ones", name="a")
            self.b = self.add_variable(shape=(2, 2), initializer=lambda shape, dtype=None:
                                       np.full(shape, 3.0), dtype="float64", name="b")
            self.c = self.add_weight(initializer=axone.initializers.Constant(2.0), name="c")
            self.d = self.add_weight(shape=(3,), dtype="int32", name="d")

        def update_state(self, x):
            self.a.assign_add(x)
            self.d = self.d + 1            # a new value for a state attribute is written into it

        def result(self):
            return self.a

    m = M()
    assert [v.name for v in m.variables] == ["a", "b", "c", "d"]
    assert [str(v.dtype) for v in m.variables] == ["float32", "float64", "float32", "int32"]
    np.testing.assert_array_equal(m.b.numpy(), np.full((2, 2), 3.0))
    assert float(m.c.numpy()) == 2.0 and not m.a.trainable
    m.update_state(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(m.d.numpy(), [1, 1, 1])
    assert m.d is m.variables[3]
    m.reset_state()                              # the default: every variable zeroed
    assert all(not np.any(v.numpy()) for v in m.variables)


def test_metric_errors():
    class NoSuper(axone.metrics.Metric):
        def __init__(self):
            pass

    with pytest.raises(RuntimeError, match="super"):
        NoSuper().add_weight(name="x")
    with pytest.raises(RuntimeError, match="super"):
        NoSuper()(1.0)

    class Bare(axone.metrics.Metric):
        pass

    with pytest.raises(NotImplementedError, match="update_state"):
        Bare()(1.0)
    m = axone.metrics.Mean()
    with pytest.raises(ValueError, match="shape"):
        m.add_weight(shape=(-1,), name="bad")
    with pytest.raises(ValueError, match="aggregation"):
        m.add_variable((), "zeros", aggregation="max")
    with pytest.raises(TypeError, match="initializer"):
        m.add_variable((), object())
    with pytest.raises(ValueError, match="cannot assign"):
        m.total = np.zeros(3)


ALIAS_SCRIPT = r'''
import numpy as np
from axone.compat import install_keras_alias
install_keras_alias()
import keras

class RMSE(keras.metrics.Metric):
    def __init__(self, name="rmse", **kw):
        super().__init__(name=name, **kw)
        self.mse_sum = self.add_weight(name="mse_sum", initializer="zeros")
        self.total = self.add_weight(name="total", initializer="zeros", dtype="int32")
    def update_state(self, y_true, y_pred, sample_weight=None):
        mse = keras.ops.sum(keras.ops.square(y_true - y_pred))
        self.mse_sum.assign_add(mse)
        self.total.assign_add(keras.ops.shape(y_pred)[0])
    def result(self):
        return keras.ops.sqrt(self.mse_sum / keras.ops.cast(self.total, "float32"))
    def reset_state(self):
        self.mse_sum.assign(0.); self.total.assign(0)

import axone
assert keras.metrics.Metric is axone.metrics.Metric
r = np.random.default_rng(0)
x = r.normal(size=(24, 3)).astype("float32")
y = r.normal(size=(24, 1)).astype("float32")
model = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(1)])
model.compile("adam", "mse", metrics=[RMSE(), keras.metrics.R2Score(), "hinge"])
model.fit(x, y, epochs=2, batch_size=8, verbose=0)
logs = model.evaluate(x, y, verbose=0, return_dict=True)
p = model.predict(x, verbose=0)
assert abs(logs["rmse"] - float(np.sqrt(np.mean((p - y) ** 2)))) < 1e-5, logs
print("ok")
'''


def test_brief_custom_metric_through_the_keras_alias(tmp_path):
    import subprocess
    import sys
    script = tmp_path / "custom_metric.py"
    script.write_text(ALIAS_SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
