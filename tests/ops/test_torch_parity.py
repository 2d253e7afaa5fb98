"""Forward values and gradients of every op equal PyTorch's on random float32 inputs.

Each case is ``(axone_fn, torch_fn, inputs)``.  Floating inputs become float32 leaves
that require a gradient on both sides; integer inputs (labels, indices) stay constant.
The output is backpropagated with a random upstream gradient (not just ``.sum()``), so
every output element's gradient is compared.  Inputs avoid kinks (relu/abs at 0, clip
bounds, max/min ties, hard_sigmoid at ±3) where the two libraries may pick different
subgradients.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import axone  # noqa: E402
from axone import Tensor, ops  # noqa: E402

RTOL, ATOL = 1e-5, 1e-6
EPS = axone.backend.epsilon()


# -------------------------------------------------------------------- inputs
def _r(seed):
    return np.random.default_rng(seed)


def f32(*shape, lo=-2.0, hi=2.0, seed=0):
    return _r(seed).uniform(lo, hi, size=shape).astype(np.float32)


def away(*shape, kink=0.0, gap=0.2, span=2.0, seed=0):
    r = _r(seed)
    mag = r.uniform(gap, span, size=shape)
    sgn = np.where(r.random(size=shape) < 0.5, -1.0, 1.0)
    return (kink + sgn * mag).astype(np.float32)


def distinct(*shape, seed=0):
    n = int(np.prod(shape))
    return _r(seed).permutation(np.linspace(-1.5, 1.5, n)).reshape(shape).astype(np.float32)


def pos(*shape, lo=0.5, hi=2.0, seed=0):
    return f32(*shape, lo=lo, hi=hi, seed=seed)


def probs(*shape, seed=0):
    e = np.exp(f32(*shape, seed=seed).astype(np.float64))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def tkey(key):
    """The same index for torch: arrays become torch tensors."""
    def conv(k):
        if isinstance(k, np.ndarray):
            return torch.from_numpy(k)
        return k
    return tuple(conv(k) for k in key) if isinstance(key, tuple) else conv(key)


# -------------------------------------------------------------------- checker
def _as_list(y):
    return list(y) if isinstance(y, (list, tuple)) else [y]


def parity(ax_fn, th_fn, inputs, rtol=RTOL, atol=ATOL, seed=0, out_dtype=np.float32):
    ax_in, th_in = [], []
    for x in inputs:
        x = np.asarray(x)
        is_float = x.dtype.kind == "f"
        ax_in.append(Tensor(x.copy(), requires_grad=is_float))
        th_in.append(torch.tensor(x.copy(), requires_grad=is_float))
    ya = _as_list(ax_fn(*ax_in))
    yt = _as_list(th_fn(*th_in))
    assert len(ya) == len(yt)
    rng = _r(1000 + seed)
    loss_a, loss_t = None, None
    for a, t in zip(ya, yt):
        assert isinstance(a, Tensor)
        assert a.shape == tuple(t.shape), f"shape {a.shape} vs torch {tuple(t.shape)}"
        assert a.dtype == out_dtype, f"output dtype {a.dtype}, expected {np.dtype(out_dtype)}"
        np.testing.assert_allclose(a.numpy(), t.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg="forward values differ")
        g = rng.standard_normal(a.shape).astype(a.dtype)
        la = (a * Tensor(g)).sum()
        lt = (t * torch.from_numpy(g)).sum()
        loss_a = la if loss_a is None else loss_a + la
        loss_t = lt if loss_t is None else loss_t + lt
    if len(ya) == 1:
        # a single output: use backward(grad=g) directly on the non-scalar output
        for x in ax_in:
            x.grad = None
        for x in th_in:
            x.grad = None
        ya = _as_list(ax_fn(*ax_in))
        yt = _as_list(th_fn(*th_in))
        g = _r(2000 + seed).standard_normal(ya[0].shape).astype(ya[0].dtype)
        ya[0].backward(g)
        yt[0].backward(torch.from_numpy(g))
    else:
        loss_a.backward()
        loss_t.backward()
    n_checked = 0
    for i, (a, t) in enumerate(zip(ax_in, th_in)):
        if not a.requires_grad:
            continue
        if t.grad is None:  # torch says this input does not influence the output
            assert a.grad is None or not np.any(a.grad), f"input {i}: torch has no gradient"
            continue
        assert a.grad is not None, f"input {i}: axone computed no gradient"
        assert a.grad.shape == a.shape
        assert a.grad.dtype == a.dtype, f"input {i}: gradient dtype {a.grad.dtype}"
        np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i} differs")
        n_checked += 1
    assert n_checked > 0, "no gradient was compared"


def _run(cases, name, **kw):
    case = cases[name]
    ax_fn, th_fn, inputs = case[:3]
    opts = dict(case[3]) if len(case) > 3 else {}
    opts.update(kw)
    parity(ax_fn, th_fn, inputs, **opts)


def test_parity_checker_detects_a_wrong_gradient():
    # a mismatch in the backward pass (not the forward) must be reported
    class WrongExp(axone.Function):
        def forward(self, x):
            self.y = np.exp(x)
            return self.y

        def backward(self, g):
            return (g * self.y * 1.001,)

    with pytest.raises(AssertionError, match="gradient of input 0"):
        parity(lambda x: WrongExp.apply(x), torch.exp, [f32(3, 4, seed=1)])


# ----------------------------------------------------------------- arithmetic
ARITH = {
    "add": (ops.add, torch.add, [f32(3, 4, seed=1), f32(3, 4, seed=2)]),
    "add_bcast_row": (lambda a, b: a + b, lambda a, b: a + b, [f32(3, 4, seed=1), f32(4, seed=2)]),
    "add_bcast_outer": (ops.add, torch.add, [f32(3, 1, seed=1), f32(1, 4, seed=2)]),
    "add_scalar_tensor": (ops.add, torch.add, [f32(2, 3, seed=1), np.float32(0.3) * np.ones((), np.float32)]),
    "radd_python": (lambda a: 1.5 + a, lambda a: 1.5 + a, [f32(2, 3, seed=1)]),
    "subtract": (ops.subtract, torch.sub, [f32(3, 4, seed=1), f32(4, seed=2)]),
    "sub_operator_outer": (lambda a, b: a - b, lambda a, b: a - b, [f32(3, 1, seed=1), f32(1, 4, seed=2)]),
    "rsub_python": (lambda a: 2.0 - a, lambda a: 2.0 - a, [f32(2, 3, seed=1)]),
    "multiply": (ops.multiply, torch.mul, [f32(3, 1, seed=1), f32(1, 4, seed=2)]),
    "mul_operator_3d": (lambda a, b: a * b, lambda a, b: a * b, [f32(2, 3, 4, seed=1), f32(3, 1, seed=2)]),
    "rmul_python": (lambda a: 3.0 * a, lambda a: 3.0 * a, [f32(2, 3, seed=1)]),
    "divide": (ops.divide, torch.div, [f32(3, 4, seed=1), away(4, gap=0.5, seed=2)]),
    "div_operator": (lambda a, b: a / b, lambda a, b: a / b, [f32(3, 1, seed=1), away(1, 4, gap=0.5, seed=2)]),
    "rdiv_python": (lambda a: 1.0 / a, lambda a: 1.0 / a, [away(2, 3, gap=0.5, seed=1)]),
    "power": (ops.power, torch.pow, [pos(3, 4, seed=1), f32(3, 4, seed=2)]),
    "power_bcast": (lambda a, b: a ** b, lambda a, b: a ** b, [pos(3, 4, seed=1), f32(4, seed=2)]),
    "power_python_exponent": (lambda a: a ** 3, lambda a: a ** 3, [f32(2, 3, seed=1)]),
    "rpow_python": (lambda b: 2.0 ** b, lambda b: 2.0 ** b, [f32(2, 3, seed=1)]),
    "negative": (ops.negative, torch.neg, [f32(2, 3, seed=1)]),
    "neg_operator": (lambda a: -a * a, lambda a: -a * a, [f32(2, 3, seed=1)]),
}


@pytest.mark.parametrize("name", list(ARITH))
def test_arithmetic_parity(name):
    _run(ARITH, name)


# ------------------------------------------------------------------ unary math
UNARY = {
    "exp": (ops.exp, torch.exp, [f32(3, 4, seed=3)]),
    "log": (ops.log, torch.log, [pos(3, 4, lo=0.2, hi=3, seed=3)]),
    "sqrt": (ops.sqrt, torch.sqrt, [pos(3, 4, lo=0.2, hi=3, seed=3)]),
    "square": (ops.square, torch.square, [f32(3, 4, seed=3)]),
    "abs": (ops.abs, torch.abs, [away(3, 4, seed=3)]),
    "sin": (ops.sin, torch.sin, [f32(3, 4, lo=-3, hi=3, seed=3)]),
    "cos": (ops.cos, torch.cos, [f32(3, 4, lo=-3, hi=3, seed=3)]),
    "tanh": (ops.tanh, torch.tanh, [f32(3, 4, lo=-3, hi=3, seed=3)]),
    "sigmoid": (ops.sigmoid, torch.sigmoid, [f32(3, 4, lo=-6, hi=6, seed=3)]),
    "relu": (ops.relu, F.relu, [away(3, 4, seed=3)]),
    "leaky_relu": (ops.leaky_relu, lambda x: F.leaky_relu(x, negative_slope=0.2), [away(3, 4, seed=3)]),
    "leaky_relu_slope": (lambda x: ops.leaky_relu(x, negative_slope=0.01),
                         lambda x: F.leaky_relu(x, 0.01), [away(3, 4, seed=4)]),
    "elu": (ops.elu, F.elu, [away(3, 4, seed=3)]),
    "elu_alpha": (lambda x: ops.elu(x, alpha=0.7), lambda x: F.elu(x, alpha=0.7), [away(3, 4, seed=4)]),
    "selu": (ops.selu, F.selu, [away(3, 4, seed=3)]),
    "softplus": (ops.softplus, F.softplus, [f32(3, 4, lo=-5, hi=5, seed=3)]),
    "softsign": (ops.softsign, F.softsign, [away(3, 4, seed=3)]),
    "hard_sigmoid": (ops.hard_sigmoid, F.hardsigmoid,
                     [np.array([[-4.5, -2.5, -1.0, 0.3], [1.2, 2.6, 3.5, -0.2], [2.0, -3.4, 0.9, -2.2]],
                               np.float32)]),
    "gelu_tanh": (lambda x: ops.gelu(x, approximate=True), lambda x: F.gelu(x, approximate="tanh"),
                  [f32(3, 4, lo=-4, hi=4, seed=3)]),
    "gelu_default_is_tanh": (ops.gelu, lambda x: F.gelu(x, approximate="tanh"), [f32(3, 4, lo=-4, hi=4, seed=5)]),
    "gelu_exact": (lambda x: ops.gelu(x, approximate=False), lambda x: F.gelu(x, approximate="none"),
                   [f32(3, 4, lo=-4, hi=4, seed=3)]),
    "silu": (ops.silu, F.silu, [f32(3, 4, lo=-5, hi=5, seed=3)]),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_parity(name):
    _run(UNARY, name)


# ------------------------------------------------------------- binary / where
COND = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])
BINARY = {
    "maximum": (ops.maximum, torch.maximum, [distinct(3, 4, seed=1), distinct(3, 4, seed=2) + 0.05]),
    "maximum_bcast": (ops.maximum, torch.maximum, [distinct(3, 4, seed=1), distinct(4, seed=2) + 0.05]),
    "minimum": (ops.minimum, torch.minimum, [distinct(3, 4, seed=1), distinct(3, 4, seed=2) + 0.05]),
    "minimum_bcast": (ops.minimum, torch.minimum, [distinct(3, 1, seed=1) + 0.05, distinct(1, 4, seed=2)]),
    "clip": (lambda x: ops.clip(x, -0.5, 0.7), lambda x: torch.clamp(x, -0.5, 0.7),
             [away(3, 4, kink=0.1, gap=0.05, span=1.5, seed=3)]),
    "where": (lambda a, b: ops.where(COND, a, b), lambda a, b: torch.where(torch.from_numpy(COND), a, b),
              [f32(3, 4, seed=1), f32(3, 4, seed=2)]),
    "where_bcast": (lambda a, b: ops.where(COND[:, :1], a, b),
                    lambda a, b: torch.where(torch.from_numpy(COND[:, :1].copy()), a, b),
                    [f32(3, 4, seed=1), f32(4, seed=2)]),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_parity(name):
    _run(BINARY, name)


def test_clip_inputs_straddle_both_bounds():
    x = away(3, 4, kink=0.1, gap=0.05, span=1.5, seed=3)
    assert (x < -0.5).any() and (x > 0.7).any() and ((x > -0.5) & (x < 0.7)).any()
    assert np.abs(x + 0.5).min() > 1e-3 and np.abs(x - 0.7).min() > 1e-3


# At kinks and ties both libraries follow the same conventions: relu'(0) = 0, |x|'(0) = 0,
# leaky_relu/elu take the negative branch at 0, hard_sigmoid and clip pass the gradient
# inside the closed interval for clip and the open one for hard_sigmoid, and max/min
# split the gradient evenly between tied elements.
KINK = np.array([-3.0, -0.5, 0.0, 0.75, 3.0], np.float32)
TIE_A = np.array([[1.0, 2.0, 2.0], [3.0, 3.0, 3.0]], np.float32)
TIE_B = np.array([[1.0, 0.0, 2.0], [3.0, 5.0, 3.0]], np.float32)
KINKS = {
    "relu": (ops.relu, F.relu, [KINK]),
    "abs": (ops.abs, torch.abs, [KINK]),
    "leaky_relu": (ops.leaky_relu, lambda x: F.leaky_relu(x, 0.2), [KINK]),
    "elu": (ops.elu, F.elu, [KINK]),
    "selu": (ops.selu, F.selu, [KINK]),
    "hard_sigmoid": (ops.hard_sigmoid, F.hardsigmoid, [KINK]),
    "clip": (lambda x: ops.clip(x, -0.5, 0.75), lambda x: torch.clamp(x, -0.5, 0.75), [KINK]),
    "maximum_ties": (ops.maximum, torch.maximum, [TIE_A, TIE_B]),
    "minimum_ties": (ops.minimum, torch.minimum, [TIE_A, TIE_B]),
    "max_axis_ties": (lambda x: ops.max(x, axis=1), lambda x: torch.amax(x, 1), [TIE_A]),
    "min_all_ties": (ops.min, torch.amin, [TIE_A]),
}


@pytest.mark.parametrize("name", list(KINKS))
def test_kink_and_tie_conventions_parity(name):
    _run(KINKS, name)


# ------------------------------------------------------------- linear algebra
LINALG = {
    "matmul_2d": (ops.matmul, torch.matmul, [f32(3, 4, seed=1), f32(4, 2, seed=2)]),
    "matmul_operator": (lambda a, b: a @ b, lambda a, b: a @ b, [f32(2, 3, seed=1), f32(3, 4, seed=2)]),
    "matmul_batched": (ops.matmul, torch.matmul, [f32(2, 3, 4, seed=1), f32(2, 4, 2, seed=2)]),
    "matmul_bcast_batch": (ops.matmul, torch.matmul, [f32(2, 1, 3, 4, seed=1), f32(3, 4, 2, seed=2)]),
    "matmul_bcast_2d_rhs": (ops.matmul, torch.matmul, [f32(2, 3, 4, seed=1), f32(4, 2, seed=2)]),
    "matmul_vec_mat": (ops.matmul, torch.matmul, [f32(4, seed=1), f32(4, 3, seed=2)]),
    "matmul_mat_vec": (ops.matmul, torch.matmul, [f32(3, 4, seed=1), f32(4, seed=2)]),
    "matmul_batch_vec": (ops.matmul, torch.matmul, [f32(2, 3, 4, seed=1), f32(4, seed=2)]),
    # Regression (MatMul.backward, fixed in 7ebca09): 1-D @ 1-D backward raised AxisError.
    "matmul_vec_vec": (ops.matmul, torch.matmul, [f32(4, seed=1), f32(4, seed=2)]),
    # Regression: same, via dot -> matmul.
    "dot_vec_vec": (ops.dot, torch.dot, [f32(4, seed=1), f32(4, seed=2)]),
    "dot_mat_mat": (ops.dot, torch.matmul, [f32(2, 3, seed=1), f32(3, 4, seed=2)]),
    "dot_mat_vec": (ops.dot, torch.mv, [f32(2, 3, seed=1), f32(3, seed=2)]),
    "dot_nd": (ops.dot, lambda a, b: torch.tensordot(a, b, dims=([2], [1])),
               [f32(2, 3, 4, seed=1), f32(2, 4, 3, seed=2)]),
    "tensordot_int": (lambda a, b: ops.tensordot(a, b, axes=2), lambda a, b: torch.tensordot(a, b, dims=2),
                      [f32(2, 3, 4, seed=1), f32(3, 4, 2, seed=2)]),
    "tensordot_int1": (lambda a, b: ops.tensordot(a, b, axes=1), lambda a, b: torch.tensordot(a, b, dims=1),
                       [f32(3, 4, seed=1), f32(4, 2, seed=2)]),
    "tensordot_lists": (lambda a, b: ops.tensordot(a, b, axes=([1, 0], [0, 2])),
                        lambda a, b: torch.tensordot(a, b, dims=([1, 0], [0, 2])),
                        [f32(3, 4, 2, seed=1), f32(4, 5, 3, seed=2)]),
    "tensordot_single_lists": (lambda a, b: ops.tensordot(a, b, axes=([0], [1])),
                               lambda a, b: torch.tensordot(a, b, dims=([0], [1])),
                               [f32(3, 2, seed=1), f32(4, 3, seed=2)]),
}


@pytest.mark.parametrize("name", list(LINALG))
def test_linalg_parity(name):
    _run(LINALG, name)


# ------------------------------------------------------------------ shape ops
def _pad_torch(x, pw, value=0.0):
    flat = []
    for lo, hi in reversed(pw):
        flat += [lo, hi]
    return F.pad(x, tuple(flat), value=value)


SHAPE = {
    "concatenate_0": (lambda a, b: ops.concatenate([a, b], axis=0), lambda a, b: torch.cat([a, b], 0),
                      [f32(2, 3, seed=1), f32(1, 3, seed=2)]),
    "concatenate_neg1": (lambda a, b, c: ops.concatenate([a, b, c], axis=-1),
                         lambda a, b, c: torch.cat([a, b, c], -1),
                         [f32(2, 3, seed=1), f32(2, 1, seed=2), f32(2, 2, seed=3)]),
    "stack_0": (lambda a, b: ops.stack([a, b]), lambda a, b: torch.stack([a, b]),
                [f32(2, 3, seed=1), f32(2, 3, seed=2)]),
    "stack_neg1": (lambda a, b, c: ops.stack([a, b, c], axis=-1), lambda a, b, c: torch.stack([a, b, c], -1),
                   [f32(2, 3, seed=1), f32(2, 3, seed=2), f32(2, 3, seed=3)]),
    "split_sections": (lambda x: ops.split(x, 3, axis=1), lambda x: list(torch.tensor_split(x, 3, dim=1)),
                       [f32(2, 6, seed=1)]),
    "split_indices": (lambda x: ops.split(x, [1, 3], axis=0),
                      lambda x: list(torch.tensor_split(x, [1, 3], dim=0)), [f32(5, 2, seed=1)]),
    "expand_dims": (lambda x: ops.expand_dims(x, 1), lambda x: torch.unsqueeze(x, 1), [f32(2, 3, seed=1)]),
    "expand_dims_neg": (lambda x: ops.expand_dims(x, -1), lambda x: torch.unsqueeze(x, -1), [f32(2, 3, seed=1)]),
    "squeeze": (ops.squeeze, torch.squeeze, [f32(2, 1, 3, 1, seed=1)]),
    "squeeze_axis": (lambda x: ops.squeeze(x, axis=1), lambda x: torch.squeeze(x, 1), [f32(2, 1, 3, 1, seed=1)]),
    "pad": (lambda x: ops.pad(x, ((1, 2), (0, 1))), lambda x: _pad_torch(x, ((1, 2), (0, 1))),
            [f32(2, 3, seed=1)]),
    "pad_value": (lambda x: ops.pad(x, ((0, 1), (2, 0), (1, 1)), constant_values=1.5),
                  lambda x: _pad_torch(x, ((0, 1), (2, 0), (1, 1)), 1.5), [f32(2, 3, 2, seed=1)]),
    "reshape": (lambda x: ops.reshape(x, (6, 4)), lambda x: torch.reshape(x, (6, 4)), [f32(2, 3, 4, seed=1)]),
    "reshape_method": (lambda x: x.reshape(-1, 2), lambda x: x.reshape(-1, 2), [f32(2, 3, 4, seed=1)]),
    "reshape_method_varargs": (lambda x: x.reshape(4, 6), lambda x: x.reshape(4, 6), [f32(2, 3, 4, seed=1)]),
    "transpose": (ops.transpose, lambda x: x.permute(2, 1, 0), [f32(2, 3, 4, seed=1)]),
    "transpose_axes": (lambda x: ops.transpose(x, (1, 2, 0)), lambda x: x.permute(1, 2, 0), [f32(2, 3, 4, seed=1)]),
    "transpose_method": (lambda x: x.transpose(2, 0, 1), lambda x: x.permute(2, 0, 1), [f32(2, 3, 4, seed=1)]),
    "T": (lambda x: x.T, lambda x: x.T, [f32(3, 4, seed=1)]),
    "cast_f32_f64": (lambda x: ops.cast(x, "float64"), lambda x: x.to(torch.float64), [f32(3, 4, seed=1)],
                     {"out_dtype": np.float64}),
    "astype_f32_f64": (lambda x: x.astype("float64") * x.astype("float64"),
                       lambda x: x.to(torch.float64) * x.to(torch.float64), [f32(3, 4, seed=1)],
                       {"out_dtype": np.float64}),
}


@pytest.mark.parametrize("name", list(SHAPE))
def test_shape_parity(name):
    _run(SHAPE, name)


MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])
KEYS = {
    "int": 1,
    "negative_int": -1,
    "slice": slice(1, 3),
    "slice_step": (slice(None), slice(None, None, 2)),
    "ellipsis": (Ellipsis, 1),
    "newaxis": (None, 1),
    "int_pair": (2, 3),
    "int_list_repeated": [0, 0, 2, 0],
    "int_array_repeated": np.array([2, 2, 1]),
    "int_arrays_pairs": (np.array([0, 1, 0, 0]), np.array([2, 2, 2, 3])),
    "array_and_slice": (np.array([2, 0, 2]), slice(1, 3)),
    "slice_and_array": (slice(None), np.array([3, 3, 0])),
    "bool_mask": MASK,
    "bool_rows": np.array([True, False, True]),
}


@pytest.mark.parametrize("name", list(KEYS))
def test_get_item_parity(name):
    key = KEYS[name]
    parity(lambda x: x[key], lambda x: x[tkey(key)], [f32(3, 4, seed=11)])


def test_get_item_fn_parity():
    parity(lambda x: ops.get_item(x, (slice(0, 2), np.array([1, 1]))),
           lambda x: x[0:2, torch.tensor([1, 1])], [f32(3, 4, seed=11)])


TAKE = {
    "axis_none": (lambda x: ops.take(x, np.array([5, 0, 5, 11])),
                  lambda x: torch.take(x, torch.tensor([5, 0, 5, 11]))),
    "axis0": (lambda x: ops.take(x, np.array([2, 0, 2]), axis=0),
              lambda x: torch.index_select(x, 0, torch.tensor([2, 0, 2]))),
    "axis1_2d": (lambda x: ops.take(x, np.array([[0, 3], [3, 3]]), axis=1),
                 lambda x: x[:, torch.tensor([[0, 3], [3, 3]])]),
    "axis_neg1": (lambda x: ops.take(x, [1, 1, 2], axis=-1),
                  lambda x: torch.index_select(x, -1, torch.tensor([1, 1, 2]))),
}


@pytest.mark.parametrize("name", list(TAKE))
def test_take_parity(name):
    a, t = TAKE[name]
    parity(a, t, [f32(3, 4, seed=12)])


# ----------------------------------------------------------------- reductions
def _dims(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return axis if isinstance(axis, tuple) else (axis,)


TORCH_REDUCE = {
    "sum": lambda x, d, k: torch.sum(x, dim=d, keepdim=k),
    "mean": lambda x, d, k: torch.mean(x, dim=d, keepdim=k),
    "max": lambda x, d, k: torch.amax(x, dim=d, keepdim=k),
    "min": lambda x, d, k: torch.amin(x, dim=d, keepdim=k),
    "var": lambda x, d, k: torch.var(x, dim=d, correction=0, keepdim=k),
    "std": lambda x, d, k: torch.std(x, dim=d, correction=0, keepdim=k),
    "logsumexp": lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k),
}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)], ids=str)
@pytest.mark.parametrize("op", list(TORCH_REDUCE))
def test_reduction_parity(op, axis, keepdims):
    f = getattr(ops, op)
    parity(lambda x: f(x, axis=axis, keepdims=keepdims),
           lambda x: TORCH_REDUCE[op](x, _dims(axis, 3), keepdims),
           [distinct(2, 3, 4, seed=13) * 1.3])


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("axis,keepdims", [(None, False), (1, True), (0, False)])
def test_tensor_reduction_method_parity(op, axis, keepdims):
    parity(lambda x: getattr(x, op)(axis=axis, keepdims=keepdims),
           lambda x: TORCH_REDUCE[op](x, _dims(axis, 2), keepdims),
           [distinct(3, 4, seed=14)])


@pytest.mark.parametrize("axis", [-1, 0, 1, 2])
def test_softmax_parity(axis):
    parity(lambda x: ops.softmax(x, axis=axis), lambda x: F.softmax(x, dim=axis), [f32(2, 3, 4, lo=-3, hi=3, seed=15)])


@pytest.mark.parametrize("axis", [-1, 0, 1, 2])
def test_log_softmax_parity(axis):
    parity(lambda x: ops.log_softmax(x, axis=axis), lambda x: F.log_softmax(x, dim=axis),
           [f32(2, 3, 4, lo=-3, hi=3, seed=16)])


def test_softmax_default_axis_parity():
    parity(ops.softmax, lambda x: F.softmax(x, dim=-1), [f32(4, 5, lo=-3, hi=3, seed=17)])
    parity(ops.log_softmax, lambda x: F.log_softmax(x, dim=-1), [f32(4, 5, lo=-3, hi=3, seed=18)])


# -------------------------------------------------------------- comparisons
CMP = [("equal", torch.eq, lambda a, b: a == b), ("not_equal", torch.ne, lambda a, b: a != b),
       ("less", torch.lt, lambda a, b: a < b), ("less_equal", torch.le, lambda a, b: a <= b),
       ("greater", torch.gt, lambda a, b: a > b), ("greater_equal", torch.ge, lambda a, b: a >= b)]


@pytest.mark.parametrize("name,tfn,operator", CMP, ids=[c[0] for c in CMP])
def test_comparison_parity(name, tfn, operator):
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    b = np.array([1.0, 5.0, 6.0], np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    expected = tfn(ta, tb).numpy()
    for got in (getattr(ops, name)(Tensor(a, requires_grad=True), Tensor(b)),
                operator(Tensor(a, requires_grad=True), Tensor(b)),
                operator(Tensor(a), b)):
        assert isinstance(got, Tensor)
        assert got.dtype == np.bool_
        assert not got.requires_grad
        np.testing.assert_array_equal(got.numpy(), expected)


# ------------------------------------------------------------- fused nn ops
def _cce_torch_manual(t, p, axis=-1):
    p = p / p.sum(dim=axis, keepdim=True)
    p = torch.clamp(p, EPS, 1.0 - EPS)
    return -(t * torch.log(p)).sum(dim=axis)


def _scce_torch_manual(labels, p):
    p = p / p.sum(dim=-1, keepdim=True)
    p = torch.clamp(p, EPS, 1.0 - EPS)
    return -torch.log(p).gather(-1, labels.long()[..., None])[..., 0]


def _bce_torch_manual(t, p):
    p = torch.clamp(p, EPS, 1.0 - EPS)
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p))


LABELS = np.array([0, 2, 1, 2, 1])
LABELS_3D = np.array([[0, 3, 1], [2, 2, 0]])
NN = {
    "dense": (ops.dense, lambda x, w, b: x @ w + b, [f32(4, 3, seed=1), f32(3, 2, seed=2), f32(2, seed=3)]),
    "dense_no_bias": (ops.dense, lambda x, w: F.linear(x, w.T), [f32(4, 3, seed=1), f32(3, 2, seed=2)]),
    "dense_3d": (ops.dense, lambda x, w, b: F.linear(x, w.T, b),
                 [f32(2, 3, 4, seed=1), f32(4, 5, seed=2), f32(5, seed=3)]),
    "cce_logits": (lambda y, z: ops.categorical_crossentropy(y, z, from_logits=True),
                   lambda y, z: F.cross_entropy(z, y, reduction="none"),
                   [probs(5, 4, seed=1), f32(5, 4, lo=-3, hi=3, seed=2)]),
    "cce_logits_unnormalized_targets": (lambda y, z: ops.categorical_crossentropy(y, z, from_logits=True),
                                        lambda y, z: F.cross_entropy(z, y, reduction="none"),
                                        [f32(5, 4, lo=0, hi=1, seed=7), f32(5, 4, lo=-3, hi=3, seed=2)]),
    "cce_logits_3d": (lambda y, z: ops.categorical_crossentropy(y, z, from_logits=True),
                      lambda y, z: F.cross_entropy(z.permute(0, 2, 1), y.permute(0, 2, 1), reduction="none"),
                      [probs(2, 3, 4, seed=1), f32(2, 3, 4, lo=-3, hi=3, seed=2)]),
    "cce_logits_axis0": (lambda y, z: ops.categorical_crossentropy(y, z, from_logits=True, axis=0),
                         lambda y, z: F.cross_entropy(z.T, y.T, reduction="none"),
                         [probs(5, 4, seed=1).T.copy(), f32(4, 5, lo=-3, hi=3, seed=2)]),
    "cce_probs": (lambda y, p: ops.categorical_crossentropy(y, p, from_logits=False), _cce_torch_manual,
                  [probs(5, 4, seed=1), pos(5, 4, lo=0.1, hi=1.0, seed=2)]),
    "scce_logits": (lambda c, z: ops.sparse_categorical_crossentropy(c, z, from_logits=True),
                    lambda c, z: F.cross_entropy(z, c.long(), reduction="none"),
                    [LABELS, f32(5, 3, lo=-3, hi=3, seed=2)]),
    "scce_logits_3d": (lambda c, z: ops.sparse_categorical_crossentropy(c, z, from_logits=True),
                       lambda c, z: F.cross_entropy(z.permute(0, 2, 1), c.long(), reduction="none"),
                       [LABELS_3D, f32(2, 3, 4, lo=-3, hi=3, seed=2)]),
    "scce_probs": (lambda c, p: ops.sparse_categorical_crossentropy(c, p), _scce_torch_manual,
                   [LABELS, pos(5, 3, lo=0.1, hi=1.0, seed=2)]),
    "bce_logits": (lambda y, z: ops.binary_crossentropy(y, z, from_logits=True),
                   lambda y, z: F.binary_cross_entropy_with_logits(z, y, reduction="none"),
                   [f32(3, 4, lo=0, hi=1, seed=1), f32(3, 4, lo=-5, hi=5, seed=2)]),
    "bce_probs": (lambda y, p: ops.binary_crossentropy(y, p), _bce_torch_manual,
                  [f32(3, 4, lo=0, hi=1, seed=1), f32(3, 4, lo=0.02, hi=0.98, seed=2)]),
}


@pytest.mark.parametrize("name", list(NN))
def test_nn_parity(name):
    _run(NN, name)


def test_bce_probs_matches_torch_builtin_away_from_clipping():
    # inside [eps, 1 - eps] the clip is inactive, so torch's own BCE must agree too
    parity(lambda y, p: ops.binary_crossentropy(y, p),
           lambda y, p: F.binary_cross_entropy(p, y, reduction="none"),
           [f32(3, 4, lo=0, hi=1, seed=3), f32(3, 4, lo=0.02, hi=0.98, seed=4)])


def test_cce_probs_normalized_forward_matches_torch_nll():
    # already-normalized probabilities: the loss value is the plain −Σ y log p.  (Only the
    # value: the gradient includes the renormalization p / Σp, covered by "cce_probs".)
    y, p = probs(4, 3, seed=5), probs(4, 3, seed=6)
    got = ops.categorical_crossentropy(Tensor(y), Tensor(p)).numpy()
    want = -(torch.from_numpy(y) * torch.log(torch.from_numpy(p))).sum(-1).numpy()
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("rate", [0.3, 0.5])
def test_dropout_parity_with_same_mask(rate):
    x = away(6, 5, seed=19)

    def ax_fn(t):
        axone.backend.set_seed(99)
        return ops.dropout(t, rate)

    keep = ax_fn(Tensor(x)).numpy() != 0
    assert keep.any() and (~keep).any()
    mask = torch.from_numpy(keep.astype(np.float32))
    parity(ax_fn, lambda t: t * mask / (1.0 - rate), [x])


def test_dropout_inference_is_identity():
    x = Tensor(f32(3, 4, seed=20), requires_grad=True)
    y = ops.dropout(x, 0.5, training=False)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    y.backward(np.full((3, 4), 2.0, np.float32))
    np.testing.assert_array_equal(x.grad, np.full((3, 4), 2.0, np.float32))
