"""The compiled exp (softmax rows, cross-entropy rows, LSTM gates) agrees with np.exp over the
whole float range: subnormal results where NumPy gives them, exactly 0 below them, inf above the
largest float (σ → 0 or 1, tanh → ±1), NaN for NaN."""
import numpy as np
import pytest

from axone import _native, ops
from axone.autograd.tensor import Tensor

K = _native.KERNELS
needs_kernels = pytest.mark.skipif(K is None, reason="axone._kernels is not built or AXONE_KERNELS=0")

# inputs of e^x over the whole range of each type: far below, around and in the subnormal range
# (results 0 and subnormal), the normal range, around the overflow, ±inf
SWEEP = {
    np.float32: [-1e30, -1e4, -200, -110, -104.5, -103.5, -103, -100, -95, -90, -88, -87.5, -87.3,
                 -87, -86, -50, -1, -1e-3, 0, 1e-3, 1, 50, 88, 88.5, 88.7, 89, 100, 1e30],
    np.float64: [-1e300, -1e4, -800, -746, -745.5, -745, -744, -740, -720, -709, -708.5, -708,
                 -700, -1, 0, 1, 700, 709, 709.7, 710, 800, 1e300],
}
RTOL = {np.float32: 4e-6, np.float64: 1e-13}
TYPES = [np.float32, np.float64]


def _close(got, ref, dt, atol=None):
    """Equal to NumPy's value within RTOL (a few units in the last place of a subnormal, or
    ``atol``), with the same zeros, infinities and NaNs."""
    got, ref = np.asarray(got), np.asarray(ref)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(got == 0, ref == 0)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
    ok = np.isfinite(ref)
    tiny = np.finfo(dt).smallest_subnormal
    np.testing.assert_allclose(got[ok], ref[ok], rtol=RTOL[dt], atol=4 * tiny if atol is None else atol)


def _softmax_ref(z):
    with np.errstate(invalid="ignore", over="ignore"):
        s = z - np.max(z, axis=-1, keepdims=True)
        e = np.exp(s)
        se = np.sum(e, axis=-1, keepdims=True)
        return e / se, s - np.log(se)


def _sweep(dt):
    x = np.array(SWEEP[dt], dtype=dt)
    return np.concatenate([x, np.array([np.inf, -np.inf, np.nan], dt)])


@needs_kernels
@pytest.mark.parametrize("dt", TYPES)
def test_softmax_rows_follow_np_exp_into_the_subnormals(dt):
    x = _sweep(dt)
    x = x[np.isfinite(x)]
    # rows [0, x, x/2]: the row's max is 0 or x, so e^(x − max) runs over the whole sweep
    z = np.stack([np.zeros_like(x), x, x / 2], axis=1)
    p, lp = np.empty_like(z), np.empty_like(z)
    K.softmax_rows(z, p, lp)
    pref, lpref = _softmax_ref(z)
    _close(p, pref, dt)
    _close(lp, lpref, dt)
    assert (p[:, 1][x <= (-104.5 if dt == np.float32 else -746)] == 0).all()
    sub = pref[(pref > 0) & (pref < np.finfo(dt).tiny)]
    assert sub.size >= 3                          # the sweep does reach subnormal results


@needs_kernels
@pytest.mark.parametrize("dt", TYPES)
def test_softmax_rows_nan_and_infinite_logits(dt):
    z = np.array([[0, np.nan, 1], [-np.inf, 0, 1], [np.inf, 0, 1], [-np.inf, -np.inf, -np.inf]], dt)
    p, lp = np.empty_like(z), np.empty_like(z)
    K.softmax_rows(z, p, lp)
    pref, lpref = _softmax_ref(z)
    _close(p, pref, dt)
    _close(lp, lpref, dt)


@needs_kernels
@pytest.mark.parametrize("dt", TYPES)
def test_cross_entropy_rows_and_gradient_follow_numpy(dt):
    x = _sweep(dt)
    x = x[np.isfinite(x)]
    z = np.stack([np.zeros_like(x), x, 0.5 * x], axis=1)
    y = np.zeros_like(z)
    y[:, 0] = 1
    p, lp = np.empty_like(z), np.empty_like(z)
    K.softmax_rows(z, p, lp)
    loss = np.empty(len(z), dt)
    K.xent_rows(y, lp, loss)
    gz = np.empty_like(z)
    g = np.ones(len(z), dt)
    K.xent_grad_rows(g, p, y, gz)
    pref, lpref = _softmax_ref(z)
    _close(loss, -np.sum(y * lpref, axis=-1), dt)
    _close(gz, g[:, None] * (pref * np.sum(y, axis=-1, keepdims=True) - y), dt)


@needs_kernels
@pytest.mark.parametrize("dt", TYPES)
def test_lstm_gates_follow_the_numpy_forms(dt):
    """One compiled step with the gate pre-activations z swept over the range: σ(z) and
    tanh(z) as the NumPy path forms them (1/(1 + e⁻ᶻ), 2σ(2z) − 1, with e^… = inf allowed)."""
    x = _sweep(dt)
    n = len(x)
    u = n
    A = np.empty((1, 1, 4 * u), dt)
    for q in range(4):                             # each gate gets the whole sweep
        A[0, 0, q * u:(q + 1) * u] = x
    C = np.zeros((2, 1, u), dt)
    AC = np.empty((1, 1, u), dt)
    Hc = np.zeros((2, 1, u), dt)
    K.lstm_forward(0, A, C, AC, Hc, None, None, None)
    with np.errstate(over="ignore", invalid="ignore"):
        sig = 1 / (1 + np.exp(-x))
        tanh = 2 / (1 + np.exp(-2 * x)) - 1
        c = sig * tanh                              # f·c₀ + i·g with c₀ = 0
        h = sig * np.tanh(c)
    gates = A[0, 0].reshape(4, u)
    for q, ref in enumerate([sig, sig, tanh, sig]):
        # (both tanh forms lose digits to cancellation near 0: there, units of eps)
        _close(gates[q], ref, dt, atol=2 * np.finfo(dt).eps if q == 2 else None)
    np.testing.assert_allclose(C[1, 0], c, rtol=RTOL[dt], atol=2 * np.finfo(dt).eps)
    np.testing.assert_allclose(Hc[1, 0], h, rtol=RTOL[dt] * 10, atol=np.finfo(dt).eps)
    very_negative = x < (-90 if dt == np.float32 else -710)
    assert (gates[0][very_negative] == 0).all() and (gates[2][very_negative] == -1).all()


@pytest.mark.parametrize("dt", TYPES)
def test_softmax_of_far_apart_logits_is_exactly_zero_as_numpy(dt):
    """The public op (compiled or not): softmax([0, −200]) (float32), softmax([0, −800])
    (float64) hold an exact 0, as NumPy's form and Keras do."""
    far = -200 if dt == np.float32 else -800
    x = np.array([[0, far, far / 2, -50]], dt)
    got = ops.softmax(Tensor(x)).data
    ref, _ = _softmax_ref(x)
    assert got[0, 1] == 0 and ref[0, 1] == 0
    _close(got, ref, dt)
