"""Every function of the compiled module rejects every bad buffer with ValueError or TypeError.

The bad calls come from one table (kernel_cases.py): for each function and each of its buffer
arguments, None where it is required, a list, short and long on each axis, flattened or with an
extra axis, the other float type, int32, float16, big-endian, a strided view, read-only where it
is written, and sharing memory with each other argument where it is written; bad scalars (step
indices, flags, scalar tuples).  The calls run in a subprocess, so that a crash is seen as a
failed test naming the call (and the calls after it still run), not as a dead test run.
"""
import json
import os
import subprocess
import sys

import pytest

from axone import _native

from . import kernel_cases

HERE = os.path.dirname(os.path.abspath(__file__))
needs_kernels = pytest.mark.skipif(_native.KERNELS is None,
                                   reason="axone._kernels is not built or AXONE_KERNELS=0")


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONFAULTHANDLER="1"), timeout=120)


def test_table_covers_every_function_of_the_module():
    k = _native.KERNELS
    if k is None:
        pytest.skip("axone._kernels is not built or AXONE_KERNELS=0")
    public = {n for n in dir(k) if not n.startswith("_") and callable(getattr(k, n))}
    covered = {spec[0] for spec in kernel_cases.SPECS.values()}
    # the thread and BLAS settings have their own tests below
    # (gemm_many, copy_into and set_pool_spin: tests/ops/test_parallel_matmul.py; depthwise2d:
    # tests/conv/test_depthwise.py; affine_clip: tests/ops/test_dense_epilogues.py; band_add,
    # whose offsets are per sample: tests/conv/test_conv_lowerings.py)
    assert public - covered == {"set_num_threads", "get_num_threads", "set_gemm", "gemm_many", "copy_into", "depthwise2d",
                                "affine_clip", "band_add",
                                "set_pool_spin"}


def test_every_buffer_argument_gets_every_bad_kind():
    cases = {c for c, _ in kernel_cases.mutations("lstm_backward_seq")}
    for kind in ("short on axis 0", "long on axis 2", "float64", "int32", "float16",
                 "big-endian", "non-contiguous", "a list", "flattened"):
        assert f"A {kind}" in cases
    assert "dZ read-only" in cases and "P shares memory with gh" in cases
    assert "Wc short on axis 0" not in cases       # Wc may have any number of rows ≥ u there
    assert "vhat=None" in {c for c, _ in kernel_cases.mutations("adam[flags=1,f]")}
    assert "vhat=None" not in {c for c, _ in kernel_cases.mutations("adam[flags=0,f]")}


@pytest.fixture(scope="module")
def outcomes():
    """{"NAME: case": outcome} of every bad call, run in a subprocess that is started again after
    the call where one died (its outcome: "the process died (exit …)")."""
    results, skipped, after = {}, {}, None
    for _ in range(1000):
        args = [] if after is None else [after]
        env = dict(os.environ, PYTHONFAULTHANDLER="1")
        proc = subprocess.run([sys.executable, os.path.join(HERE, "kernel_cases.py"), *args],
                              capture_output=True, text=True, env=env, timeout=600)
        started = None
        for line in proc.stdout.splitlines():
            d = json.loads(line)
            if "skip" in d:
                pytest.skip(d["skip"])
            if "skipped" in d:
                skipped[d["skipped"]] = d["why"]
            started = d.get("start", started)
            if "case" in d:
                results[d["case"]] = d["outcome"]
        if proc.returncode == 0:
            return results, skipped
        assert started is not None and started not in results, proc.stderr[-3000:]
        results[started] = f"the process died (exit {proc.returncode})"
        after = started
    raise AssertionError("too many crashes")


@needs_kernels
@pytest.mark.parametrize("name", sorted(kernel_cases.SPECS))
def test_bad_buffers_raise_a_python_error(name, outcomes):
    results, skipped = outcomes
    if name in skipped:
        pytest.skip(skipped[name])
    mine = {c.split(": ", 1)[1]: o for c, o in results.items() if c.split(": ", 1)[0] == name}
    assert mine.pop("good call") == "ok"
    assert len(mine) == len(kernel_cases.mutations(name)) > 5
    wrong = {c: o for c, o in mine.items() if o not in ("raised ValueError", "raised TypeError")}
    assert not wrong, f"{name}: calls that did not raise ValueError/TypeError: {wrong}"


@needs_kernels
def test_messages_name_the_function_and_the_argument():
    import numpy as np
    k = _native.KERNELS
    w = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match=r"adam: vhat is required"):
        k.adam(False, 1, (w, w.copy(), w.copy(), w.copy(), None), (0.1,) * 5)
    with pytest.raises(TypeError, match=r"sgd: g must be a float32 array, received an array of dtype float64"):
        k.sgd(False, 0, (w, np.zeros(4), None), (0.1, 1.0, 0.0))
    with pytest.raises(ValueError, match=r"sgd: w and g share memory"):
        k.sgd(False, 0, (w, w, None), (0.1, 1.0, 0.0))
    with pytest.raises(ValueError, match=r"softmax_rows: p must be C-contiguous"):
        k.softmax_rows(np.zeros((2, 3)), np.zeros((2, 6))[:, ::2], None)
    y = np.zeros((2, 3), np.float32)
    y.flags.writeable = False
    with pytest.raises(ValueError, match=r"dense_forward: y is written and must be writable"):
        k.dense_forward(y, None, True)


@needs_kernels
def test_set_num_threads_rejects_bad_counts():
    code = """
import axone._native as n
k = n.KERNELS
prev = k.get_num_threads()
for args in [(0,), (-3,), (2, 0), (1, -1), ("x",), (2 ** 40,), ()]:
    try:
        k.set_num_threads(*args)
    except (ValueError, TypeError, OverflowError):
        continue
    raise SystemExit(f"set_num_threads{args} was accepted")
assert k.get_num_threads() == prev, k.get_num_threads()
k.set_num_threads(3, 1000)
assert k.get_num_threads() == (3, 1000)
"""
    proc = _run(code)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_kernels
def test_set_gemm_accepts_only_numpys_blas_gemm():
    """A wrong address handed to set_gemm would be called by the LSTM loops: it is refused, and
    a gemm once handed over stays."""
    code = """
import ctypes
import numpy as np
import axone._native as n
k = n.KERNELS
gemm = n.cblas_gemm()
libc = ctypes.CDLL(None)
other = ctypes.cast(libc.printf, ctypes.c_void_p).value
bad = [(0, 0, False), (1, 2, True), (other, other, False)]
if gemm is not None:
    s, d, ilp64 = gemm
    bad += [(d, s, ilp64), (s, d, not ilp64), (s + 16, d, ilp64), (s, s, ilp64), (s, other, ilp64)]
for args in bad:
    try:
        k.set_gemm(*args)
    except (ValueError, NotImplementedError):
        continue
    raise SystemExit(f"set_gemm{args} was accepted")
A = np.zeros((1, 1, 4), np.float32)
try:
    k.lstm_forward_seq(A, np.zeros((2, 1, 1), np.float32), np.zeros((1, 1, 1), np.float32),
                       np.zeros((2, 1, 2), np.float32), None, None, None, np.zeros((2, 4), np.float32))
except RuntimeError as e:
    assert "no BLAS" in str(e)
else:
    raise SystemExit("a loop ran without a gemm")
if gemm is not None:
    k.set_gemm(*gemm)
    k.set_gemm(*gemm)                       # the same again: fine
    assert n.check_seq(k)
"""
    proc = _run(code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
