"""Mean.update_state given a scalar loss (a 0-d Tensor or array, a number weight or none)
keeps the same state, bit for bit, as the general per-sample path."""
import numpy as np
import pytest

from axone import Tensor, metrics


def _general(m, value, weight):
    """The per-sample path: the same value given as a one-row array."""
    m.update_state(np.asarray([value], dtype=np.asarray(value).dtype),
                   sample_weight=None if weight is None else np.asarray([weight], dtype=np.float64))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("weight", [None, 30, 7.5, np.int64(12), np.float32(0.25), 0])
def test_scalar_loss_matches_the_general_path(dtype, weight):
    rng = np.random.default_rng(0)
    fast, slow = metrics.Mean(name="loss"), metrics.Mean(name="loss")
    for i, v in enumerate(rng.normal(size=20).astype(dtype)):
        # a 0-d array inside the Tensor, or a NumPy scalar as a reduced loss holds
        fast.update_state(Tensor(np.asarray(v)) if i % 2 else v, sample_weight=weight)
        _general(slow, np.asarray(v), weight)
    assert fast.total.data.tobytes() == slow.total.data.tobytes()
    assert fast.count.data.tobytes() == slow.count.data.tobytes()
    assert fast.result() == slow.result() or (np.isnan(fast.result()) and np.isnan(slow.result()))


def test_plain_0d_array_and_a_float_count_as_scalars():
    m = metrics.Mean()
    m.update_state(np.asarray(2.0, "float32"), sample_weight=3)
    m.update_state(Tensor(np.asarray(4.0, "float32")))
    m.update_state(1.0, sample_weight=2)
    assert m.result() == pytest.approx((6.0 + 4.0 + 2.0) / 6.0)


def test_bool_and_array_weights_and_non_float_values_take_the_general_path():
    m = metrics.Mean()
    m.update_state(Tensor(np.asarray(2.0, "float32")), sample_weight=True)
    m.update_state(Tensor(np.asarray(3, "int32")), sample_weight=2)
    m.update_state(Tensor(np.asarray(5.0, "float32")), sample_weight=np.asarray(2.0))
    assert float(m.count.data) == 5.0
    assert m.result() == pytest.approx((2.0 + 6.0 + 10.0) / 5.0)
    with pytest.raises(ValueError):
        m.update_state(Tensor(np.asarray(1.0, "float32")), sample_weight=np.ones(3))


def test_a_reduced_loss_tensor_takes_the_scalar_path():
    from axone import losses, ops
    p = ops.softmax(Tensor(np.random.default_rng(1).normal(size=(4, 3)).astype("float32")))
    loss = losses.CategoricalCrossentropy()(np.eye(3, dtype="float32")[[0, 1, 2, 0]], p)
    fast, slow = metrics.Mean(), metrics.Mean()
    fast.update_state(loss, sample_weight=4)
    _general(slow, np.asarray(loss.data), 4)
    assert fast.total.data.tobytes() == slow.total.data.tobytes()
    assert float(fast.count.data) == 4.0


def test_the_scalar_path_skips_the_per_sample_reduction(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("per-sample path taken")

    monkeypatch.setattr(metrics, "_reduce_samplewise", fail)
    m = metrics.Mean()
    m.update_state(Tensor(np.asarray(2.0, "float32")), sample_weight=3)
    m.update_state(np.float32(1.0))
    m.update_state(Tensor(np.asarray(4.0, "float64")), sample_weight=np.int32(2))
    assert m.result() == pytest.approx((6.0 + 1.0 + 8.0) / 6.0)
    with pytest.raises(AssertionError, match="per-sample"):
        m.update_state(np.ones(2, "float32"))
