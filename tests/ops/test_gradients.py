"""Finite-difference gradient checks (float64, central differences) for every differentiable op.

Each case is ``(fn, inputs)``: ``check_gradients`` converts every floating input to a
float64 leaf, backpropagates Σ fn(...)·r for a fixed random r, and compares with
central differences.  Inputs are kept away from kinks (relu/abs at 0, clip bounds,
max/min ties, hard_sigmoid at ±3) so the finite differences are valid there.
"""
import numpy as np
import pytest

import axone
from axone import Function, Tensor, ops
from axone.utils import check_gradients

TOL = 1e-6


def _rng(seed):
    return np.random.default_rng(seed)


def rand(*shape, lo=-2.0, hi=2.0, seed=0):
    return _rng(seed).uniform(lo, hi, size=shape)


def away(*shape, kink=0.0, gap=0.2, span=2.0, seed=0):
    """Random values at least ``gap`` away from ``kink`` on both sides."""
    r = _rng(seed)
    mag = r.uniform(gap, span, size=shape)
    sgn = np.where(r.random(size=shape) < 0.5, -1.0, 1.0)
    return kink + sgn * mag


def distinct(*shape, seed=0):
    """Values spaced 0.1 apart in random order: no ties for max/min."""
    n = int(np.prod(shape)) if shape else 1
    return _rng(seed).permutation(np.linspace(-1.5, 1.5, n)).reshape(shape)


def positive(*shape, lo=0.5, hi=2.0, seed=0):
    return rand(*shape, lo=lo, hi=hi, seed=seed)


def probs(*shape, seed=0):
    e = np.exp(rand(*shape, seed=seed))
    return e / e.sum(axis=-1, keepdims=True)


def _check(fn, *inputs, tol=TOL):
    # float64 in, float64 out: an op that silently downcasts would spoil the check
    out = fn(*[Tensor(np.asarray(x, dtype=np.float64)) if np.asarray(x).dtype.kind == "f" else Tensor(x)
               for x in inputs])
    assert out.dtype == np.float64, f"float64 inputs gave a {out.dtype} output"
    res = check_gradients(fn, *inputs)
    assert res.max_error < tol, (
        f"max relative error {res.max_error:.3g} on {res.worst_input} (errors {res.errors})")
    # a gradient that is identically zero would pass trivially: require something flowed
    # back into at least one floating input.
    assert any(a is not None and np.any(a != 0) for a in res.analytic), "no gradient flowed back"
    return res


# --------------------------------------------------------------- the checker itself
class _WrongSquare(Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return (g * self.x,)  # wrong on purpose: the true gradient is 2x


def test_check_gradients_detects_a_wrong_backward():
    res = check_gradients(lambda x: _WrongSquare.apply(x), rand(3, seed=1))
    assert res.max_error > 0.1
    assert res.worst_input == "x0"


# Regression (was a bug in axone/autograd/gradcheck.py, fixed in 7ebca09): the input is
# perturbed through ``x.reshape(-1)``, a copy rather than a view for a Fortran-ordered
# array, so the finite differences were all zero and a correct op got max_error == 1.0.
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_check_gradients_accepts_fortran_ordered_input(dtype):
    x = np.asfortranarray(rand(3, 2, seed=2).astype(dtype))
    assert not x.flags["C_CONTIGUOUS"]
    res = check_gradients(ops.exp, x)
    assert res.max_error < TOL


def test_check_gradients_accepts_strided_input():
    res = check_gradients(ops.exp, rand(3, 4, seed=2)[:, ::2])
    assert res.max_error < TOL


# -------------------------------------------------------------------- arithmetic
ARITH = {
    "add_same": (lambda a, b: a + b, [rand(3, 4, seed=1), rand(3, 4, seed=2)]),
    "add_row_bcast": (lambda a, b: ops.add(a, b), [rand(3, 4, seed=1), rand(4, seed=2)]),
    "add_outer_bcast": (lambda a, b: a + b, [rand(3, 1, seed=1), rand(1, 4, seed=2)]),
    "add_scalar_tensor": (lambda a, b: a + b, [rand(2, 3, seed=1), np.array(0.7)]),
    "add_python_scalar": (lambda a: 1.5 + a + 2, [rand(2, 3, seed=1)]),
    "add_ndarray_const": (lambda a: a + np.arange(3.0), [rand(2, 3, seed=1)]),
    "sub_row_bcast": (lambda a, b: ops.subtract(a, b), [rand(3, 4, seed=1), rand(4, seed=2)]),
    "sub_outer_bcast": (lambda a, b: a - b, [rand(3, 1, seed=1), rand(1, 4, seed=2)]),
    "rsub_python_scalar": (lambda a: 2.0 - a, [rand(2, 3, seed=1)]),
    "sub_scalar_tensor": (lambda a, b: b - a, [rand(2, 3, seed=1), np.array(-0.3)]),
    "mul_same": (lambda a, b: a * b, [rand(3, 4, seed=1), rand(3, 4, seed=2)]),
    "mul_outer_bcast": (lambda a, b: ops.multiply(a, b), [rand(3, 1, seed=1), rand(1, 4, seed=2)]),
    "mul_row_bcast": (lambda a, b: a * b, [rand(2, 3, 4, seed=1), rand(4, seed=2)]),
    "mul_scalar_tensor": (lambda a, b: a * b, [rand(2, 3, seed=1), np.array(1.3)]),
    "rmul_python_scalar": (lambda a: 3.0 * a, [rand(2, 3, seed=1)]),
    "div_same": (lambda a, b: a / b, [rand(3, 4, seed=1), away(3, 4, gap=0.5, seed=2)]),
    "div_row_bcast": (lambda a, b: ops.divide(a, b), [rand(3, 4, seed=1), away(4, gap=0.5, seed=2)]),
    "div_outer_bcast": (lambda a, b: a / b, [rand(3, 1, seed=1), away(1, 4, gap=0.5, seed=2)]),
    "rdiv_python_scalar": (lambda a: 1.0 / a, [away(2, 3, gap=0.5, seed=1)]),
    "div_by_scalar_tensor": (lambda a, b: a / b, [rand(2, 3, seed=1), np.array(1.7)]),
    "pow_both": (lambda a, b: a ** b, [positive(3, 4, seed=1), rand(3, 4, seed=2)]),
    "pow_bcast_exponent": (lambda a, b: ops.power(a, b), [positive(3, 4, seed=1), rand(4, seed=2)]),
    "pow_bcast_base": (lambda a, b: ops.power(a, b), [positive(4, seed=1), rand(3, 4, seed=2)]),
    "pow_int_exponent": (lambda a: a ** 3, [rand(2, 3, seed=1)]),
    "pow_float_exponent": (lambda a: a ** 0.5, [positive(2, 3, seed=1)]),
    "rpow_python_base": (lambda b: 2.0 ** b, [rand(2, 3, seed=1)]),
    "pow_scalar_exponent_tensor": (lambda a, b: a ** b, [positive(2, 3, seed=1), np.array(1.7)]),
    "neg_operator": (lambda a: -a, [rand(2, 3, seed=1)]),
    "negative": (lambda a: ops.negative(a) * a, [rand(2, 3, seed=1)]),
}


@pytest.mark.parametrize("name", list(ARITH))
def test_arithmetic_gradients(name):
    fn, inputs = ARITH[name]
    _check(fn, *inputs)


# ------------------------------------------------------------------- unary ops
UNARY = {
    "exp": (ops.exp, rand(3, 4, seed=3)),
    "log": (ops.log, positive(3, 4, lo=0.3, hi=3.0, seed=3)),
    "sqrt": (ops.sqrt, positive(3, 4, lo=0.3, hi=3.0, seed=3)),
    "square": (ops.square, rand(3, 4, seed=3)),
    "abs": (ops.abs, away(3, 4, seed=3)),
    "abs_operator": (lambda x: abs(x), away(3, 4, seed=4)),
    "sin": (ops.sin, rand(3, 4, lo=-3, hi=3, seed=3)),
    "cos": (ops.cos, rand(3, 4, lo=-3, hi=3, seed=3)),
    "tanh": (ops.tanh, rand(3, 4, seed=3)),
    "sigmoid": (ops.sigmoid, rand(3, 4, lo=-4, hi=4, seed=3)),
    "relu": (ops.relu, away(3, 4, seed=3)),
    "leaky_relu": (ops.leaky_relu, away(3, 4, seed=3)),
    "leaky_relu_slope": (lambda x: ops.leaky_relu(x, negative_slope=0.05), away(3, 4, seed=5)),
    "elu": (ops.elu, away(3, 4, seed=3)),
    "elu_alpha": (lambda x: ops.elu(x, alpha=0.5), away(3, 4, seed=5)),
    "selu": (ops.selu, away(3, 4, seed=3)),
    "softplus": (ops.softplus, rand(3, 4, lo=-4, hi=4, seed=3)),
    "softsign": (ops.softsign, away(3, 4, seed=3)),
    # both inside (-3, 3) and outside, away from the kinks at ±3
    "hard_sigmoid": (ops.hard_sigmoid, np.array([[-4.5, -2.5, -1.0, 0.3],
                                                 [1.2, 2.6, 3.5, -0.2],
                                                 [2.0, -3.4, 0.9, -2.2]])),
    "gelu_tanh": (lambda x: ops.gelu(x, approximate=True), rand(3, 4, lo=-3, hi=3, seed=3)),
    "gelu_exact": (lambda x: ops.gelu(x, approximate=False), rand(3, 4, lo=-3, hi=3, seed=3)),
    "gelu_default": (ops.gelu, rand(3, 4, lo=-3, hi=3, seed=6)),
    "silu": (ops.silu, rand(3, 4, lo=-4, hi=4, seed=3)),
    "swish": (ops.swish, rand(3, 4, lo=-4, hi=4, seed=7)),
    "tensor_method_exp": (lambda x: x.exp(), rand(3, 4, seed=8)),
    "tensor_method_tanh": (lambda x: x.tanh(), rand(3, 4, seed=8)),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_gradients(name):
    fn, x = UNARY[name]
    _check(fn, x)


def test_relu_and_hard_sigmoid_gradients_are_zero_in_their_flat_regions():
    x = Tensor(np.array([-2.0, -0.5, 0.5, 2.0]), requires_grad=True)
    ops.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0, 1.0])
    x = Tensor(np.array([-4.0, 0.0, 4.0]), requires_grad=True)
    ops.hard_sigmoid(x).sum().backward()
    np.testing.assert_allclose(x.grad, [0.0, 1 / 6, 0.0])


# ----------------------------------------------------------- binary / selection
BINARY = {
    "maximum": (ops.maximum, [distinct(3, 4, seed=1), distinct(3, 4, seed=2) + 0.05]),
    "maximum_bcast": (ops.maximum, [distinct(3, 4, seed=1), distinct(4, seed=2) + 0.05]),
    "maximum_scalar": (lambda a: ops.maximum(a, 0.25), [away(3, 4, kink=0.25, seed=3)]),
    "minimum": (ops.minimum, [distinct(3, 4, seed=1), distinct(3, 4, seed=2) + 0.05]),
    "minimum_bcast": (ops.minimum, [distinct(3, 1, seed=1) + 0.05, distinct(1, 4, seed=2)]),
    "clip": (lambda x: ops.clip(x, -0.5, 0.7),
             [np.array([[-1.5, -0.8, -0.3, 0.0], [0.4, 0.6, 0.9, 2.0]])]),
    "clip_no_upper": (lambda x: ops.clip(x, -0.5, None), [away(3, 4, kink=-0.5, seed=4)]),
    "where": (lambda a, b: ops.where(np.array([[True, False, True, False]] * 3), a, b),
              [rand(3, 4, seed=1), rand(3, 4, seed=2)]),
    "where_bcast": (lambda a, b: ops.where(np.array([[True], [False], [True]]), a, b),
                    [rand(3, 4, seed=1), rand(4, seed=2)]),
    "where_scalar_branch": (lambda a: ops.where(np.array([True, False, True]), a, 0.0),
                            [rand(3, seed=1)]),
    "where_tensor_condition": (lambda a, b: ops.where(a > b, a * b, a - b),
                               [distinct(2, 3, seed=1), distinct(2, 3, seed=2) + 0.05]),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_gradients(name):
    fn, inputs = BINARY[name]
    _check(fn, *inputs)


# -------------------------------------------------------------- linear algebra
LINALG = {
    "matmul_2d": (ops.matmul, [rand(3, 4, seed=1), rand(4, 2, seed=2)]),
    "matmul_operator": (lambda a, b: a @ b, [rand(2, 3, seed=1), rand(3, 4, seed=2)]),
    "matmul_batched": (ops.matmul, [rand(2, 3, 4, seed=1), rand(2, 4, 2, seed=2)]),
    "matmul_bcast_rhs_2d": (ops.matmul, [rand(2, 3, 4, seed=1), rand(4, 2, seed=2)]),
    "matmul_bcast_lhs_2d": (ops.matmul, [rand(3, 4, seed=1), rand(2, 4, 2, seed=2)]),
    "matmul_bcast_batch": (ops.matmul, [rand(2, 1, 3, 4, seed=1), rand(3, 4, 2, seed=2)]),
    "matmul_bcast_batch_ones": (ops.matmul, [rand(1, 3, 4, seed=1), rand(2, 4, 2, seed=2)]),
    "matmul_vec_mat": (ops.matmul, [rand(4, seed=1), rand(4, 3, seed=2)]),
    "matmul_mat_vec": (ops.matmul, [rand(3, 4, seed=1), rand(4, seed=2)]),
    "matmul_batch_vec": (ops.matmul, [rand(2, 3, 4, seed=1), rand(4, seed=2)]),
    "matmul_vec_batch": (ops.matmul, [rand(4, seed=1), rand(2, 4, 3, seed=2)]),
    # Regression (was a bug in MatMul.backward, fixed in 7ebca09): 1-D @ 1-D has a 0-d
    # output and np.expand_dims(g, -2) on the 0-d gradient raised numpy AxisError.
    "matmul_vec_vec": (ops.matmul, [rand(4, seed=1), rand(4, seed=2)]),
    # Regression: same, through dot(vector, vector) -> matmul.
    "dot_vec_vec": (ops.dot, [rand(4, seed=1), rand(4, seed=2)]),
    "dot_mat_mat": (ops.dot, [rand(2, 3, seed=1), rand(3, 4, seed=2)]),
    "dot_mat_vec": (ops.dot, [rand(2, 3, seed=1), rand(3, seed=2)]),
    "dot_nd": (ops.dot, [rand(2, 3, 4, seed=1), rand(2, 4, 3, seed=2)]),
    "dot_scalar": (ops.dot, [np.array(1.3), rand(2, 3, seed=2)]),
    "tensor_method_dot": (lambda a, b: a.dot(b), [rand(2, 3, seed=1), rand(3, 2, seed=2)]),
    "tensordot_int1": (lambda a, b: ops.tensordot(a, b, axes=1), [rand(3, 4, seed=1), rand(4, 2, seed=2)]),
    "tensordot_int2": (lambda a, b: ops.tensordot(a, b, axes=2),
                       [rand(2, 3, 4, seed=1), rand(3, 4, 2, seed=2)]),
    "tensordot_int0_outer": (lambda a, b: ops.tensordot(a, b, axes=0), [rand(3, seed=1), rand(2, seed=2)]),
    "tensordot_lists": (lambda a, b: ops.tensordot(a, b, axes=([1, 0], [0, 2])),
                        [rand(3, 4, 2, seed=1), rand(4, 5, 3, seed=2)]),
    "tensordot_single_lists": (lambda a, b: ops.tensordot(a, b, axes=([0], [1])),
                               [rand(3, 2, seed=1), rand(4, 3, seed=2)]),
    "tensordot_negative_axes": (lambda a, b: ops.tensordot(a, b, axes=([-1, -3], [1, 0])),
                                [rand(2, 3, 4, seed=1), rand(2, 4, 3, seed=2)]),
}


@pytest.mark.parametrize("name", list(LINALG))
def test_linalg_gradients(name):
    fn, inputs = LINALG[name]
    _check(fn, *inputs)


# ------------------------------------------------------------------- shape ops
def _split_sections(x):
    p = ops.split(x, 3, axis=1)
    return ops.concatenate([p[0] * 2.0, ops.square(p[1]), ops.sin(p[2])], axis=1)


def _split_indices(x):
    p = ops.split(x, [1, 3], axis=0)
    assert [t.shape for t in p] == [(1, 6), (2, 6), (1, 6)]
    return p[0].sum() * 3.0 + (p[1] * p[1]).sum() + ops.exp(p[2]).sum()


def _split_one_unused(x):
    a, _ = ops.split(x, 2, axis=-1)
    return a * a


SHAPE = {
    "concatenate_axis0": (lambda a, b, c: ops.concatenate([a, b, c], axis=0),
                          [rand(2, 3, seed=1), rand(1, 3, seed=2), rand(3, 3, seed=3)]),
    "concatenate_axis_neg1": (lambda a, b: ops.concatenate([a, b * b], axis=-1),
                              [rand(2, 3, seed=1), rand(2, 2, seed=2)]),
    "concatenate_same_twice": (lambda a: ops.concatenate([a, a * 2.0], axis=0), [rand(2, 3, seed=1)]),
    "stack_axis0": (lambda a, b: ops.stack([a, b]), [rand(2, 3, seed=1), rand(2, 3, seed=2)]),
    "stack_axis1": (lambda a, b, c: ops.stack([a, b, c], axis=1),
                    [rand(2, 3, seed=1), rand(2, 3, seed=2), rand(2, 3, seed=3)]),
    "stack_axis_neg1": (lambda a, b: ops.stack([a, b * a], axis=-1), [rand(2, 3, seed=1), rand(2, 3, seed=2)]),
    "split_sections": (_split_sections, [rand(2, 6, seed=1)]),
    "split_indices": (_split_indices, [rand(4, 6, seed=1)]),
    "split_one_piece_unused": (_split_one_unused, [rand(2, 4, seed=1)]),
    "expand_dims_0": (lambda x: ops.expand_dims(x, 0) * rand(1, 2, 3, seed=9), [rand(2, 3, seed=1)]),
    "expand_dims_1": (lambda x: ops.expand_dims(x, 1) + rand(2, 4, 3, seed=9), [rand(2, 3, seed=1)]),
    "expand_dims_neg1": (lambda x: ops.expand_dims(x, -1) * rand(2, 3, 2, seed=9), [rand(2, 3, seed=1)]),
    "squeeze_all": (lambda x: ops.squeeze(x) * rand(2, 3, seed=9), [rand(2, 1, 3, 1, seed=1)]),
    "squeeze_axis": (lambda x: ops.squeeze(x, axis=1) * rand(2, 3, 1, seed=9), [rand(2, 1, 3, 1, seed=1)]),
    "pad_zero": (lambda x: ops.pad(x, ((1, 2), (0, 1))) * rand(5, 4, seed=9), [rand(2, 3, seed=1)]),
    "pad_value": (lambda x: ops.square(ops.pad(x, ((0, 1), (2, 0)), constant_values=1.5)),
                  [rand(2, 3, seed=1)]),
    "pad_int": (lambda x: ops.pad(x, 1) * rand(4, 5, seed=9), [rand(2, 3, seed=1)]),
    "reshape": (lambda x: ops.reshape(x, (6, 4)) * rand(6, 4, seed=9), [rand(2, 3, 4, seed=1)]),
    "reshape_infer": (lambda x: ops.reshape(x, (-1, 2)) @ rand(2, 2, seed=9), [rand(2, 3, 4, seed=1)]),
    "tensor_reshape_varargs": (lambda x: x.reshape(4, 6) * rand(4, 6, seed=9), [rand(2, 3, 4, seed=1)]),
    "transpose_default": (lambda x: ops.transpose(x) * rand(4, 3, 2, seed=9), [rand(2, 3, 4, seed=1)]),
    "transpose_perm": (lambda x: ops.transpose(x, (1, 2, 0)) * rand(3, 4, 2, seed=9), [rand(2, 3, 4, seed=1)]),
    "transpose_method": (lambda x: x.transpose(2, 0, 1) * rand(4, 2, 3, seed=9), [rand(2, 3, 4, seed=1)]),
    "T_property": (lambda x: x.T @ x, [rand(3, 2, seed=1)]),
    "cast_float64_identity": (lambda x: ops.cast(x, "float64") * x, [rand(2, 3, seed=1)]),
}


@pytest.mark.parametrize("name", list(SHAPE))
def test_shape_gradients(name):
    fn, inputs = SHAPE[name]
    _check(fn, *inputs)


def test_cast_float32_to_float64_gradient():
    # check_gradients works in float64, so the float32 -> float64 cast is checked exactly:
    # the gradient of a cast is the upstream gradient cast back to the source dtype.
    x = Tensor(rand(2, 3, seed=1).astype(np.float32), requires_grad=True)
    y = ops.cast(x, "float64")
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y.numpy(), x.numpy().astype(np.float64))
    g = rand(2, 3, seed=2)
    (y * y).backward(g)
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, (2 * x.numpy().astype(np.float64) * g).astype(np.float32),
                               rtol=1e-6)
    x2 = Tensor(rand(4, seed=3).astype(np.float32), requires_grad=True)
    x2.astype("float64").sum().backward()
    np.testing.assert_array_equal(x2.grad, np.ones(4, np.float32))


# -------------------------------------------------------------------- indexing
MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])
GETITEM = {
    "int": lambda x: x[1],
    "negative_int": lambda x: x[-1],
    "slice": lambda x: x[1:3],
    "slice_step": lambda x: x[:, ::2],
    "negative_step": lambda x: x[::-1, 1:],
    "ellipsis": lambda x: x[..., 1],
    "newaxis": lambda x: x[None, 1],
    "int_pair": lambda x: x[2, 3] * x[0, 1],
    "int_array_repeated": lambda x: x[[0, 0, 2, 0]],
    "int_ndarray_repeated": lambda x: x[np.array([2, 2, 1])],
    "int_arrays_pairs_repeated": lambda x: x[[0, 1, 0, 0], [2, 2, 2, 3]],
    "int_array_and_slice": lambda x: x[np.array([2, 0, 2]), 1:3],
    "slice_and_int_array": lambda x: x[:, [3, 3, 0]],
    "int_tensor_index": lambda x: x[Tensor(np.array([1, 1, 0]))],
    "bool_mask_2d": lambda x: x[MASK],
    "bool_mask_rows": lambda x: x[np.array([True, False, True])],
    "bool_tensor_mask": lambda x: x[Tensor(MASK)],
    "get_item_fn": lambda x: ops.get_item(x, (slice(0, 2), [1, 1])),
}


@pytest.mark.parametrize("name", list(GETITEM))
def test_get_item_gradients(name):
    _check(GETITEM[name], rand(3, 4, seed=11))


def test_get_item_repeated_indices_accumulate_exactly():
    x = Tensor(np.arange(4.0), requires_grad=True)
    x[[0, 0, 3, 0]].backward(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [7.0, 0.0, 0.0, 3.0])


TAKE = {
    "axis_none": lambda x: ops.take(x, np.array([5, 0, 5, 11])),
    "axis0_repeated": lambda x: ops.take(x, np.array([2, 0, 2]), axis=0),
    "axis1_2d_indices": lambda x: ops.take(x, np.array([[0, 3], [3, 3]]), axis=1),
    "axis_neg1_list": lambda x: ops.take(x, [1, 1, 2], axis=-1),
    "axis_none_2d_indices": lambda x: ops.take(x, np.array([[1, 2], [1, 7]])),
}


@pytest.mark.parametrize("name", list(TAKE))
def test_take_gradients(name):
    _check(TAKE[name], rand(3, 4, seed=12))


# ------------------------------------------------------------------ reductions
REDUCTIONS = {
    "sum": ops.sum, "mean": ops.mean, "max": ops.max, "min": ops.min,
    "var": ops.var, "std": ops.std, "logsumexp": ops.logsumexp,
}
AXES = [None, 0, 1, -1, (0, 2), (2, 0, 1)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("op", list(REDUCTIONS))
def test_reduction_gradients(op, axis, keepdims):
    f = REDUCTIONS[op]
    x = distinct(2, 3, 4, seed=13)  # distinct values: no max/min ties

    def fn(t):
        y = f(t, axis=axis, keepdims=keepdims)
        return y * y if op in ("sum", "mean") else y  # a non-linear use for the linear ones

    _check(fn, x)
    out = f(Tensor(x), axis=axis, keepdims=keepdims)
    if op == "logsumexp":
        expected = np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
    else:
        expected = getattr(np, op)(x, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "var", "std"])
def test_tensor_reduction_methods(op):
    x = distinct(3, 4, seed=14)
    _check(lambda t: getattr(t, op)(axis=1, keepdims=True) * getattr(t, op)(), x)


def test_max_splits_gradient_evenly_on_ties():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]]), requires_grad=True)
    x.max(axis=1).backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])


SOFTMAX_AXES = [-1, 0, 1, 2]


@pytest.mark.parametrize("axis", SOFTMAX_AXES)
def test_softmax_gradients(axis):
    _check(lambda t: ops.softmax(t, axis=axis), rand(2, 3, 4, seed=15))


@pytest.mark.parametrize("axis", SOFTMAX_AXES)
def test_log_softmax_gradients(axis):
    _check(lambda t: ops.log_softmax(t, axis=axis), rand(2, 3, 4, seed=16))


def test_softmax_default_axis_and_large_logits():
    _check(ops.softmax, rand(3, 5, seed=17) + 500.0)
    _check(ops.log_softmax, rand(3, 5, seed=18) - 500.0)


# ------------------------------------------------------------------ fused nn ops
NN = {
    "dense_bias": (ops.dense, [rand(4, 3, seed=1), rand(3, 2, seed=2), rand(2, seed=3)]),
    "dense_no_bias": (ops.dense, [rand(4, 3, seed=1), rand(3, 2, seed=2)]),
    "dense_3d_input": (ops.dense, [rand(2, 3, 4, seed=1), rand(4, 2, seed=2), rand(2, seed=3)]),
    "dense_3d_no_bias": (ops.dense, [rand(2, 3, 4, seed=1), rand(4, 2, seed=2)]),
    "dense_1d_input": (ops.dense, [rand(3, seed=1), rand(3, 2, seed=2), rand(2, seed=3)]),
    "cce_logits": (lambda y, z: ops.categorical_crossentropy(y, z, from_logits=True),
                   [probs(4, 3, seed=1), rand(4, 3, seed=2)]),
    # targets that do not sum to 1: dL/dz = softmax(z)·Σy − y, not softmax(z) − y
    "cce_logits_unnormalized_targets": (lambda y, z: ops.categorical_crossentropy(y, z, from_logits=True),
                                        [rand(4, 3, lo=0.0, hi=1.0, seed=7), rand(4, 3, seed=2)]),
    "cce_logits_onehot": (lambda z: ops.categorical_crossentropy(np.eye(3)[[0, 2, 1, 2]], z,
                                                                 from_logits=True),
                          [rand(4, 3, seed=2)]),
    "cce_logits_axis0": (lambda y, z: ops.categorical_crossentropy(y, z, from_logits=True, axis=0),
                         [probs(4, 3, seed=1).T.copy(), rand(3, 4, seed=2)]),
    "cce_logits_3d": (lambda y, z: ops.categorical_crossentropy(y, z, from_logits=True),
                      [probs(2, 3, 4, seed=1), rand(2, 3, 4, seed=2)]),
    "cce_probs": (lambda y, p: ops.categorical_crossentropy(y, p),
                  [probs(4, 3, seed=1), positive(4, 3, lo=0.2, hi=1.0, seed=2)]),
    "cce_probs_normalized": (lambda y, p: ops.categorical_crossentropy(y, p, from_logits=False),
                             [probs(4, 3, seed=1), probs(4, 3, seed=2)]),
    "scce_logits": (lambda z: ops.sparse_categorical_crossentropy(np.array([0, 2, 1, 2]), z,
                                                                  from_logits=True),
                    [rand(4, 3, seed=2)]),
    "scce_logits_label_tensor": (lambda c, z: ops.sparse_categorical_crossentropy(c, z, from_logits=True),
                                 [np.array([[1], [0], [2]]), rand(3, 3, seed=2)]),
    "scce_logits_3d": (lambda z: ops.sparse_categorical_crossentropy(np.array([[0, 3, 1], [2, 2, 0]]), z,
                                                                     from_logits=True),
                       [rand(2, 3, 4, seed=2)]),
    "scce_probs": (lambda p: ops.sparse_categorical_crossentropy(np.array([0, 2, 1, 2]), p),
                   [positive(4, 3, lo=0.2, hi=1.0, seed=2)]),
    "bce_logits": (lambda y, z: ops.binary_crossentropy(y, z, from_logits=True),
                   [rand(3, 4, lo=0, hi=1, seed=1), rand(3, 4, lo=-4, hi=4, seed=2)]),
    "bce_probs": (lambda y, p: ops.binary_crossentropy(y, p),
                  [rand(3, 4, lo=0, hi=1, seed=1), rand(3, 4, lo=0.05, hi=0.95, seed=2)]),
    "bce_probs_hard_targets": (lambda p: ops.binary_crossentropy(np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]),
                                                                 p, from_logits=False),
                               [rand(2, 3, lo=0.05, hi=0.95, seed=2)]),
}


@pytest.mark.parametrize("name", list(NN))
def test_nn_gradients(name):
    fn, inputs = NN[name]
    _check(fn, *inputs)


def _seeded_dropout(rate, noise_shape=None):
    def fn(x):
        axone.backend.set_seed(1234)
        return ops.dropout(x, rate, noise_shape=noise_shape)
    return fn


@pytest.mark.parametrize("rate,noise_shape", [(0.4, None), (0.25, None), (0.5, (None, 1))])
def test_dropout_gradients_with_fixed_mask(rate, noise_shape):
    x = away(6, 5, seed=19)
    fn = _seeded_dropout(rate, noise_shape)
    y = fn(Tensor(x)).numpy()
    dropped = y == 0
    # the mask really drops something and scales the kept values by 1/(1 - rate)
    assert dropped.any() and (~dropped).any()
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - rate), rtol=1e-12)
    if noise_shape is not None:
        assert (dropped == dropped[:, :1]).all()
    _check(fn, x)


def test_dropout_gradient_matches_its_mask():
    x = Tensor(away(4, 5, seed=20), requires_grad=True)
    y = _seeded_dropout(0.5)(x)
    y.sum().backward()
    kept = y.numpy() != 0
    np.testing.assert_allclose(x.grad, np.where(kept, 2.0, 0.0))


# ------------------------------------------------------------ graph behaviour
def test_gradient_accumulates_when_a_tensor_is_used_twice():
    v = rand(5, seed=21)
    x = Tensor(v, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * v)


def test_gradient_accumulates_through_shared_intermediate():
    v = rand(4, seed=22)
    x = Tensor(v, requires_grad=True)
    h = ops.tanh(x)
    y = (h * h + 3.0 * h + ops.exp(h)).sum()
    y.backward()
    t = np.tanh(v)
    np.testing.assert_allclose(x.grad, (2 * t + 3 + np.exp(t)) * (1 - t * t), rtol=1e-12)
    _check(lambda a: (ops.tanh(a) * ops.tanh(a) + 3.0 * ops.tanh(a)).sum(), v)


def test_diamond_graph_gradient():
    _check(lambda a, b: (a * b + a / b) * (a - b), rand(3, seed=23), away(3, gap=0.5, seed=24))


def test_add_same_tensor_twice():
    x = Tensor(rand(3, seed=25), requires_grad=True)
    (x + x).backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])


def test_non_scalar_backward_with_explicit_grad():
    v = rand(2, 3, seed=26)
    g = rand(2, 3, seed=27)
    x = Tensor(v, requires_grad=True)
    y = ops.sin(x) * 2.0
    y.backward(g)
    np.testing.assert_allclose(x.grad, 2.0 * np.cos(v) * g, rtol=1e-12)
    x2 = Tensor(v, requires_grad=True)
    (x2 @ Tensor(np.ones((3, 2)))).backward(Tensor(np.ones((2, 2))))
    np.testing.assert_allclose(x2.grad, np.full((2, 3), 2.0))


def test_gradient_skips_constants_and_reaches_only_leaves_that_want_it():
    a = Tensor(rand(3, seed=28), requires_grad=True)
    b = Tensor(rand(3, seed=29))
    (a * b).sum().backward()
    assert b.grad is None
    np.testing.assert_allclose(a.grad, b.numpy())


def test_dense_relu_node_matches_dense_then_relu_and_finite_differences():
    import axone.ops as ops
    from axone.utils import check_gradients
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 4))
    w = rng.standard_normal((4, 3))
    b = rng.standard_normal(3)
    xs = [axone.Tensor(a.copy(), requires_grad=True) for a in (x, w, b)]
    ys = [axone.Tensor(a.copy(), requires_grad=True) for a in (x, w, b)]
    fused = ops.dense(*xs, relu=True)
    plain = ops.relu(ops.dense(*ys))
    np.testing.assert_array_equal(fused.data, plain.data)
    up = rng.standard_normal(fused.shape)
    (fused * up).sum().backward()
    (plain * up).sum().backward()
    for a, c in zip(xs, ys):
        np.testing.assert_allclose(a.grad, c.grad, rtol=1e-12, atol=1e-12)
    res = check_gradients(lambda a, k, c: ops.dense(a, k, c, relu=True), x, w, b)
    assert res.max_error < 1e-6


@pytest.mark.parametrize("cin,filters", [(1, 6), (3, 4), (2, 32)])
def test_conv_relu_node_matches_conv_then_relu_and_finite_differences(cin, filters):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 7, 6, cin))
    k = rng.standard_normal((3, 3, cin, filters))
    b = rng.standard_normal(filters)
    xs = [Tensor(a.copy(), requires_grad=True) for a in (x, k, b)]
    ys = [Tensor(a.copy(), requires_grad=True) for a in (x, k, b)]
    fused = ops.conv(*xs, padding="same", relu=True)
    plain = ops.relu(ops.conv(*ys, padding="same"))
    np.testing.assert_allclose(fused.data, plain.data, rtol=1e-12, atol=1e-12)
    assert (fused.data == 0).any() and (fused.data > 0).any()
    up = rng.standard_normal(fused.shape)
    (fused * up).sum().backward()
    (plain * up).sum().backward()
    for a, c in zip(xs, ys):
        np.testing.assert_allclose(a.grad, c.grad, rtol=1e-10, atol=1e-10)
    res = check_gradients(lambda a, kk, c: ops.conv(a, kk, c, padding="same", relu=True), x, k, b)
    assert res.max_error < 1e-6
