"""Bad input fails early with an error that names the op, the shapes or the allowed range."""
import re

import numpy as np
import pytest

from axone import Tensor, ops


def _shape_re(shape):
    return re.escape(str(tuple(shape)))


def _assert_mentions(excinfo, *parts):
    msg = str(excinfo.value)
    for p in parts:
        assert p in msg, f"{p!r} not in error message {msg!r}"


# ---------------------------------------------------------- mismatched shapes
@pytest.mark.parametrize("op,name", [(ops.add, "add"), (ops.multiply, "multiply"),
                                     (ops.subtract, "subtract"), (ops.divide, "divide"),
                                     (ops.maximum, "maximum")])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_elementwise_shape_mismatch(op, name, requires_grad):
    a = Tensor(np.ones((2, 3)), requires_grad=requires_grad)
    b = Tensor(np.ones((4,)))
    with pytest.raises(ValueError) as e:
        op(a, b)
    _assert_mentions(e, name, "(2, 3)", "(4,)")


@pytest.mark.parametrize("operator,name", [(lambda a, b: a + b, "add"), (lambda a, b: a * b, "multiply"),
                                           (lambda a, b: a - b, "subtract"), (lambda a, b: a / b, "divide")])
def test_operator_shape_mismatch(operator, name):
    a = Tensor(np.ones((3, 2)), requires_grad=True)
    with pytest.raises(ValueError) as e:
        operator(a, np.ones((3, 5)))
    _assert_mentions(e, name, "(3, 2)", "(3, 5)")


def test_matmul_inner_dimension_mismatch():
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.ones((4, 5)))
    for call in (lambda: ops.matmul(a, b), lambda: a @ b):
        with pytest.raises(ValueError) as e:
            call()
        _assert_mentions(e, "matmul", "(2, 3)", "(4, 5)")


def test_matmul_vector_mismatch_and_batch_mismatch():
    with pytest.raises(ValueError) as e:
        ops.matmul(Tensor(np.ones(3)), Tensor(np.ones((4, 2))))
    _assert_mentions(e, "matmul", "(3,)", "(4, 2)")
    with pytest.raises(ValueError) as e:
        ops.matmul(Tensor(np.ones((2, 3, 4))), Tensor(np.ones((3, 4, 5))))
    _assert_mentions(e, "matmul", "(2, 3, 4)", "(3, 4, 5)")


def test_matmul_of_scalars_rejected():
    with pytest.raises(ValueError) as e:
        ops.matmul(Tensor(np.array(2.0)), Tensor(np.ones(3)))
    _assert_mentions(e, "matmul", "()", "(3,)")


def test_concatenate_shape_mismatch():
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.ones((2, 4)))
    with pytest.raises(ValueError) as e:
        ops.concatenate([a, b], axis=0)
    _assert_mentions(e, "concatenate", "(2, 3)", "(2, 4)")
    # along axis 1 the same pair is fine
    assert ops.concatenate([a, b], axis=1).shape == (2, 7)


def test_concatenate_rank_mismatch():
    with pytest.raises(ValueError) as e:
        ops.concatenate([Tensor(np.ones((2, 3))), Tensor(np.ones(3))])
    _assert_mentions(e, "concatenate", "(2, 3)", "(3,)")


def test_reshape_size_mismatch():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    for call in (lambda: ops.reshape(x, (4, 2)), lambda: x.reshape(4, 2)):
        with pytest.raises(ValueError) as e:
            call()
        _assert_mentions(e, "reshape", "(2, 3)", "(4, 2)")


def test_stack_shape_mismatch():
    with pytest.raises(ValueError) as e:
        ops.stack([Tensor(np.ones((2, 3))), Tensor(np.ones((3, 2)))])
    _assert_mentions(e, "stack", "(2, 3)", "(3, 2)")


def test_where_shape_mismatch():
    with pytest.raises(ValueError) as e:
        ops.where(np.ones((2, 3), bool), Tensor(np.ones((2, 3))), Tensor(np.ones((4,))))
    _assert_mentions(e, "where", "(2, 3)", "(4,)")


def test_tensordot_axes_mismatch():
    with pytest.raises(ValueError) as e:
        ops.tensordot(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5))), axes=1)
    _assert_mentions(e, "tensordot", "(2, 3)", "(4, 5)")


def test_dense_shape_mismatch():
    with pytest.raises(ValueError) as e:
        ops.dense(Tensor(np.ones((4, 3))), Tensor(np.ones((5, 2))))
    _assert_mentions(e, "dense", "(4, 3)", "(5, 2)")
    with pytest.raises(ValueError) as e:
        ops.dense(Tensor(np.ones((4, 3))), Tensor(np.ones((3, 2))), Tensor(np.ones(3)))
    _assert_mentions(e, "dense", "(3,)")


def test_crossentropy_target_shape_mismatch():
    with pytest.raises(ValueError) as e:
        ops.categorical_crossentropy(Tensor(np.ones((4, 3))), Tensor(np.ones((4, 2))))
    _assert_mentions(e, "categorical_crossentropy", "(4, 3)", "(4, 2)")
    with pytest.raises(ValueError) as e:
        ops.binary_crossentropy(Tensor(np.ones((4,))), Tensor(np.ones((4, 1))))
    _assert_mentions(e, "binary_crossentropy", "(4,)", "(4, 1)")


def test_axis_out_of_range():
    x = Tensor(np.ones((2, 3)))
    for f in (ops.sum, ops.mean, ops.max, ops.softmax):
        with pytest.raises(ValueError, match="axis 2"):
            f(x, axis=2)


# ------------------------------------------------------------------ backward
def test_backward_on_non_scalar_without_grad():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2.0
    with pytest.raises(ValueError, match=_shape_re((2, 3))) as e:
        y.backward()
    _assert_mentions(e, "backward")
    assert x.grad is None


def test_backward_with_wrongly_shaped_grad():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2.0
    with pytest.raises(ValueError) as e:
        y.backward(np.ones((3, 2)))
    _assert_mentions(e, "(2, 3)", "(3, 2)")
    with pytest.raises(ValueError):
        y.backward(np.ones(6))
    with pytest.raises(ValueError):  # a broadcastable grad is still the wrong shape
        y.backward(np.ones(3))
    assert x.grad is None
    y.backward(np.ones((2, 3)))  # the right shape works afterwards
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


def test_backward_without_requires_grad():
    with pytest.raises(ValueError, match="does not require a gradient"):
        Tensor(np.array(1.0)).backward()


# -------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("data", [np.array([1, 2]), np.array([True, False]), np.arange(3, dtype=np.uint8)])
def test_integer_tensor_cannot_require_grad(data):
    with pytest.raises(TypeError, match="dtype") as e:
        Tensor(data, requires_grad=True)
    _assert_mentions(e, str(data.dtype))


# ----------------------------------------------------------- operand types
@pytest.mark.parametrize("bad", ["abc", object(), None, {"a": 1}], ids=["str", "object", "None", "dict"])
@pytest.mark.parametrize("operator,name", [
    (lambda t, o: t + o, "add"), (lambda t, o: o + t, "add"),
    (lambda t, o: t * o, "multiply"), (lambda t, o: t - o, "subtract"),
    (lambda t, o: t / o, "divide"), (lambda t, o: t @ o, "matmul"),
], ids=["add", "radd", "mul", "sub", "div", "matmul"])
def test_unsupported_operand_type(operator, name, bad):
    t = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(TypeError) as e:
        operator(t, bad)
    _assert_mentions(e, name, type(bad).__name__)


def test_ops_function_with_unsupported_operand():
    with pytest.raises(TypeError) as e:
        ops.add(Tensor(np.ones(2)), "abc")
    _assert_mentions(e, "add", "str")
    with pytest.raises(TypeError) as e:
        ops.exp(object())
    _assert_mentions(e, "exp", "object")


def test_float_index_array_rejected():
    x = Tensor(np.ones((3, 2)))
    with pytest.raises(TypeError, match="float"):
        x[np.array([0.0, 1.0])]


def test_index_out_of_range_names_shape():
    x = Tensor(np.ones((3, 2)))
    with pytest.raises(IndexError, match=_shape_re((3, 2))):
        x[5]


# ------------------------------------------------------------------- labels
@pytest.mark.parametrize("labels", [np.array([0, 3, 1]), np.array([-1, 0, 1])], ids=["too_big", "negative"])
def test_one_hot_labels_out_of_range(labels):
    with pytest.raises(ValueError) as e:
        ops.one_hot(labels, 3)
    _assert_mentions(e, "one_hot", "[0, 3)")


def test_one_hot_non_integer_labels():
    with pytest.raises(ValueError, match="integer"):
        ops.one_hot(np.array([0.5, 1.0]), 3)


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("labels", [np.array([0, 4, 1]), np.array([0, -1, 1])], ids=["too_big", "negative"])
def test_sparse_crossentropy_labels_out_of_range(labels, from_logits):
    out = Tensor(np.full((3, 4), 0.25), requires_grad=True)
    with pytest.raises(ValueError) as e:
        ops.sparse_categorical_crossentropy(labels, out, from_logits=from_logits)
    _assert_mentions(e, "sparse_categorical_crossentropy", "[0, 4)")


def test_sparse_crossentropy_label_shape_mismatch():
    with pytest.raises(ValueError) as e:
        ops.sparse_categorical_crossentropy(np.array([0, 1]), Tensor(np.ones((3, 4))), from_logits=True)
    _assert_mentions(e, "sparse_categorical_crossentropy", "(3,)", "(2,)")


# ------------------------------------------------------------------ dropout
@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1])
def test_dropout_rate_out_of_range(rate):
    with pytest.raises(ValueError) as e:
        ops.dropout(Tensor(np.ones((2, 3))), rate)
    _assert_mentions(e, "dropout", "[0, 1)")


def test_dropout_rate_zero_is_allowed():
    x = Tensor(np.ones((2, 3)))
    np.testing.assert_array_equal(ops.dropout(x, 0.0).numpy(), x.numpy())


# -------------------------------------------------------------------- misc
def test_clip_bounds_reversed():
    with pytest.raises(ValueError, match="clip"):
        ops.clip(Tensor(np.ones(3)), 1.0, 0.0)


def test_split_uneven_sections():
    with pytest.raises(ValueError) as e:
        ops.split(Tensor(np.ones((5, 2))), 2)
    _assert_mentions(e, "split", "5")


def test_squeeze_non_unit_axis():
    with pytest.raises(ValueError) as e:
        ops.squeeze(Tensor(np.ones((2, 3))), axis=1)
    _assert_mentions(e, "squeeze", "(2, 3)")


def test_transpose_bad_permutation():
    with pytest.raises(ValueError, match="transpose"):
        ops.transpose(Tensor(np.ones((2, 3, 4))), (0, 0, 1))
