"""An optimizer whose state lacks a buffer its configuration needs (state saved for Adam and
resumed with amsgrad=True, Adam's state under SGD with momentum or Nesterov, RMSprop centered or
with momentum, Adagrad) raises a clear ValueError at its step — with the compiled kernels and
without — instead of handing a missing buffer to a kernel (a segfault) or a KeyError.  The cases run in
a subprocess, so that a crash is a failed test naming the case."""
import os
import subprocess
import sys

import pytest

CASES = {
    "Adam amsgrad": ("Adam()", "Adam(amsgrad=True)", "vhat"),
    "SGD momentum": ("Adam()", "SGD(momentum=0.9)", "momentum"),
    "SGD Nesterov": ("SGD()", "SGD(momentum=0.9, nesterov=True)", "momentum"),
    "RMSprop centered": ("RMSprop()", "RMSprop(centered=True)", "average_gradient"),
    "RMSprop momentum": ("RMSprop()", "RMSprop(momentum=0.5)", "momentum"),
    "Adagrad": ("SGD()", "Adagrad()", "accumulator"),
    "Adadelta": ("Adam()", "Adadelta()", "accumulated_grad"),
    "Adamax": ("Adam()", "Adamax()", "u"),
}

CODE = """
import numpy as np
import axone
from axone import layers, optimizers as O

def case(first, second, missing):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    model = axone.Sequential([layers.Input((3,)), layers.Dense(4), layers.Dense(1)])
    model.compile(optimizer=eval("O." + first), loss="mse")
    model.train_on_batch(x, y)
    state = model.optimizer._flat_state
    # resumed under another configuration with the state of the first (as a loader did)
    opt = eval("O." + second)
    model.compile(optimizer=opt, loss="mse")
    opt._flat_state = state
    opt.iterations = 1
    try:
        model.train_on_batch(x, y)
    except ValueError as e:
        msg = str(e)
        assert missing in msg and type(opt).__name__ in msg, msg
    else:
        raise AssertionError("the step ran with state " + repr(sorted(state)))
    # the step on the flat buffers directly: state absent, or of another length
    w = np.zeros(5, np.float32)
    for st in ({}, {name: np.zeros(4, np.float32) for name in opt._state_names}):
        st["_size"], st["_tmp"] = 5, np.empty(5, np.float32)
        opt._flat_state = st
        try:
            opt.update_flat(w, np.ones(5, np.float32))
        except ValueError as e:
            assert "missing or of another shape" in str(e), e
        else:
            raise AssertionError("update_flat ran with state " + repr(sorted(st)))

for name, args in CASES.items():
    print("start", name, flush=True)
    try:
        case(*args)
        print("ok", name, flush=True)
    except Exception as e:
        print("failed", name, type(e).__name__, e, flush=True)
"""


@pytest.mark.parametrize("kernels", ["1", "0"])
def test_state_missing_for_the_configuration_raises(kernels):
    env = dict(os.environ, AXONE_KERNELS=kernels, PYTHONFAULTHANDLER="1")
    proc = subprocess.run([sys.executable, "-c", f"CASES = {CASES!r}\n" + CODE],
                          capture_output=True, text=True, env=env, timeout=300)
    lines = proc.stdout.splitlines()
    started = [line[6:] for line in lines if line.startswith("start ")]
    assert proc.returncode == 0, (f"exit {proc.returncode} in the case {started[-1:]}\n"
                                  f"{proc.stdout}\n{proc.stderr[-3000:]}")
    ok = {line[3:] for line in lines if line.startswith("ok ")}
    assert ok == set(CASES), "\n".join(line for line in lines if line.startswith("failed"))
