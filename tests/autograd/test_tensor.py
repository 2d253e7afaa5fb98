"""Tensor construction, dtype rules, array protocol and the autograd bookkeeping."""
import numpy as np
import pytest

import axone
from axone import Tensor, ops


# ------------------------------------------------------------------ dtype rules
def test_numpy_float64_array_keeps_float64():
    a = np.array([1.0, 2.0, 3.0])
    t = Tensor(a)
    assert t.dtype == np.float64
    assert t.numpy() is a  # shared, not copied


def test_numpy_float32_and_int_arrays_keep_their_dtype():
    assert Tensor(np.ones(3, np.float32)).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.arange(3).dtype
    assert Tensor(np.float64(2.5)).dtype == np.float64


@pytest.mark.parametrize("data", [2.5, 3, [1.0, 2.0], [[1, 2], [3, 4]], (1.5, 2.5), True])
def test_python_scalars_and_lists_become_float32(data):
    t = Tensor(data)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.numpy(), np.asarray(data, dtype=np.float32))


def test_dtype_argument_converts():
    t = Tensor([1, 2, 3], dtype="float64")
    assert t.dtype == np.float64
    t = Tensor(np.arange(3), dtype=np.float32)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.numpy(), [0.0, 1.0, 2.0])
    t = Tensor(np.array([1.7, 2.2]), dtype="int32")
    assert t.dtype == np.int32
    np.testing.assert_array_equal(t.numpy(), [1, 2])


def test_dtype_argument_with_requires_grad():
    t = Tensor(np.arange(3), dtype="float32", requires_grad=True)
    assert t.requires_grad and t.dtype == np.float32


def test_tensor_from_tensor_shares_data():
    a = Tensor(np.arange(4.0))
    b = Tensor(a)
    assert b.numpy() is a.numpy()
    assert not b.requires_grad


def test_ragged_list_is_rejected():
    with pytest.raises(ValueError):
        Tensor([[1.0, 2.0], [3.0]])


def test_string_data_is_rejected():
    with pytest.raises(TypeError):
        Tensor(["a", "b"])


# -------------------------------------------------------------- array protocol
def test_shape_dtype_ndim_size():
    t = Tensor(np.zeros((2, 3, 4), np.float32))
    assert t.shape == (2, 3, 4)
    assert t.dtype == np.float32
    assert t.ndim == 3
    assert t.size == 24


def test_numpy_and_asarray():
    a = np.arange(6.0).reshape(2, 3)
    t = Tensor(a)
    assert isinstance(t.numpy(), np.ndarray)
    np.testing.assert_array_equal(np.asarray(t), a)
    assert np.asarray(t).dtype == np.float64
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    np.testing.assert_array_equal(np.array(t, dtype=np.int64), a.astype(np.int64))


def test_float_int_item_tolist():
    t = Tensor(np.array([[2.5]]))
    assert float(t) == 2.5 and isinstance(float(t), float)
    assert int(Tensor(np.array(3.0))) == 3
    assert t.item() == 2.5
    assert Tensor(np.array([[1.0, 2.0]])).tolist() == [[1.0, 2.0]]
    with pytest.raises(TypeError, match=r"\(2,\)"):
        float(Tensor(np.array([1.0, 2.0])))


def test_len_and_iteration():
    a = np.arange(6.0).reshape(3, 2)
    t = Tensor(a)
    assert len(t) == 3
    rows = list(t)
    assert len(rows) == 3
    for r, expected in zip(rows, a):
        assert isinstance(r, Tensor)
        np.testing.assert_array_equal(r.numpy(), expected)
    with pytest.raises(TypeError):
        len(Tensor(1.0))
    with pytest.raises(TypeError):
        iter(Tensor(1.0))


def test_iteration_is_differentiable():
    x = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    total = None
    for i, row in enumerate(x):
        s = row.sum() * float(i + 1)
        total = s if total is None else total + s
    total.backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 1.0], [2.0, 2.0]])


def test_repr_mentions_grad_state():
    assert "requires_grad=True" in repr(Tensor(np.ones(2), requires_grad=True))
    assert "grad_fn=" in repr(Tensor(np.ones(2), requires_grad=True) * 2.0)


# --------------------------------------------------------------- autograd core
def test_leaf_and_grad_fn():
    x = Tensor(np.ones(3), requires_grad=True)
    y = ops.exp(x)
    assert x.is_leaf and x.grad_fn is None
    assert not y.is_leaf and y.grad_fn is not None
    assert y.requires_grad


def test_result_of_constants_needs_no_grad():
    y = Tensor(np.ones(3)) * 2.0 + Tensor(np.ones(3))
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(ValueError):
        y.sum().backward()


def test_detach_cuts_the_graph_and_shares_data():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    d = (x * 3.0).detach()
    assert not d.requires_grad and d.grad_fn is None
    y = (x * d).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad, [3.0, 6.0])  # d treated as a constant, not 6x
    xd = x.detach()
    assert xd.numpy() is x.numpy()


def test_zero_grad_keeps_buffer():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward()
    buf = x.grad
    np.testing.assert_array_equal(buf, [2.0, 4.0])
    x.zero_grad()
    assert x.grad is buf
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    (x * 5.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [5.0, 5.0])


def test_zero_grad_without_grad_is_noop():
    x = Tensor(np.ones(2), requires_grad=True)
    x.zero_grad()
    assert x.grad is None


def test_no_grad_records_no_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with axone.no_grad():
        assert not axone.is_grad_enabled()
        y = ops.tanh(x * 2.0).sum()
    assert axone.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    with pytest.raises(ValueError, match="does not require a gradient"):
        y.backward()
    assert x.grad is None
    z = (x * 2.0).sum()  # grad mode restored: recorded again
    assert z.requires_grad


def test_no_grad_restored_after_exception():
    with pytest.raises(RuntimeError):
        with axone.no_grad():
            raise RuntimeError("boom")
    assert axone.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = Tensor(np.ones(2), requires_grad=True)
    with axone.no_grad():
        with axone.enable_grad():
            y = x * 2.0
        z = x * 2.0
    assert y.requires_grad and not z.requires_grad


def test_intermediate_grad_not_kept_without_retain_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3.0
    (h * h).sum().backward()
    assert h.grad is None
    np.testing.assert_array_equal(x.grad, [18.0, 36.0])


def test_retain_grad_keeps_intermediate_gradient():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3.0
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_array_equal(h.grad, [6.0, 12.0])   # d(h²)/dh = 2h
    np.testing.assert_array_equal(x.grad, [18.0, 36.0])


def test_retain_grad_on_root_and_on_multiply_used_intermediate():
    x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    h = ops.sin(x)
    h.retain_grad()
    y = h * 2.0 + h * h
    y.retain_grad()
    g = np.array([1.0, 3.0])
    y.backward(g)
    np.testing.assert_allclose(y.grad, g)
    np.testing.assert_allclose(h.grad, g * (2.0 + 2 * np.sin([0.5, -1.0])))


# Regression (was a bug in axone/autograd/tensor.py, fixed in 7ebca09): after a first
# backward() without retain_graph each Function's ``inputs`` is None, and _toposort's
# iter(None) raised TypeError instead of the intended RuntimeError.
def test_second_backward_without_retain_graph_raises_runtime_error():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (ops.exp(x) * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_second_backward_and_accumulates():
    v = np.array([1.0, 2.0])
    x = Tensor(v, requires_grad=True)
    y = (ops.exp(x) * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    np.testing.assert_allclose(first, np.exp(v) * (1 + v))
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * first)


def test_gradients_accumulate_across_two_backward_calls():
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0 + 3.0, -4.0 + 3.0])


def test_backward_on_leaf_with_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_scalar_backward_default_grad_is_one():
    x = Tensor(np.array(3.0), requires_grad=True)
    (x * x * x).backward()
    assert float(x.grad) == 27.0


def test_size_one_non_scalar_backward_without_grad():
    x = Tensor(np.array([[2.0]]), requires_grad=True)
    (x * x).backward()
    np.testing.assert_array_equal(x.grad, [[4.0]])


def test_grad_dtype_follows_leaf_dtype():
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    (x * np.array([1.0, 2.0])).sum().backward()  # float64 constant
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])


def test_requires_grad_flag_and_setter():
    x = Tensor(np.ones(2))
    assert not x.requires_grad
    assert x.requires_grad_() is x
    assert x.requires_grad
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    with pytest.raises(TypeError, match="int"):
        Tensor(np.arange(2)).requires_grad_()


def test_deep_chain_backward_does_not_recurse():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0
    y.backward()
    assert float(x.grad) == 1.0


# -------------------------------------------------------------- numpy interop
def test_np_exp_of_tensor_is_differentiable():
    v = np.array([0.5, -1.0])
    x = Tensor(v, requires_grad=True)
    y = np.exp(x)
    assert isinstance(y, Tensor) and y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.exp(v))


def test_ndarray_plus_tensor_is_differentiable():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = np.array([10.0, 20.0]) + x
    assert isinstance(y, Tensor) and y.requires_grad
    np.testing.assert_array_equal(y.numpy(), [11.0, 22.0])
    z = np.array([2.0, 3.0]) * y - np.array([1.0, 1.0]) / x
    z.sum().backward()
    np.testing.assert_allclose(x.grad, [2.0 + 1.0, 3.0 + 0.25])


def test_ndarray_matmul_tensor_is_differentiable():
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    x = Tensor(np.array([[1.0, 0.0]]), requires_grad=True)
    y = x @ w
    y2 = w @ ops.transpose(x)
    assert isinstance(y2, Tensor)
    (y.sum() + y2.sum()).backward()
    np.testing.assert_allclose(x.grad, [[3.0 + 4.0, 7.0 + 6.0]])


def test_np_maximum_and_square_on_tensors():
    x = Tensor(np.array([-1.0, 2.0]), requires_grad=True)
    y = np.maximum(x, 0.5) + np.square(x)
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [-2.0, 1.0 + 4.0])


# -------------------------------------------------------------- comparisons
@pytest.mark.parametrize("op,expected", [
    (lambda a, b: a == b, [False, True, False]),
    (lambda a, b: a != b, [True, False, True]),
    (lambda a, b: a < b, [True, False, False]),
    (lambda a, b: a <= b, [True, True, False]),
    (lambda a, b: a > b, [False, False, True]),
    (lambda a, b: a >= b, [False, True, True]),
], ids=["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparisons_return_boolean_tensors_without_grad(op, expected):
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([2.0, 2.0, 2.0]), requires_grad=True)
    for r in (op(a, b), op(a, 2.0), op(a, np.array([2.0, 2.0, 2.0]))):
        assert isinstance(r, Tensor)
        assert r.dtype == np.bool_
        assert not r.requires_grad and r.grad_fn is None
        np.testing.assert_array_equal(r.numpy(), expected)


def test_tensors_stay_hashable():
    a, b = Tensor(np.ones(2)), Tensor(np.ones(2))
    assert len({a, b}) == 2


def test_second_backward_through_a_shared_freed_node_raises_runtime_error():
    import numpy as np
    from axone import Tensor
    x = Tensor(np.ones(3), requires_grad=True)
    z = x * x
    a = z.sum()
    b = (z * 2.0).sum()
    a.backward()
    import pytest
    with pytest.raises(RuntimeError, match="retain_graph"):
        b.backward()
