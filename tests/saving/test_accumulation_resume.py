"""A model saved partway through a gradient-accumulation cycle resumes at the same point."""
import numpy as np
import pytest

import axone
from axone import layers as L


def _model(steps):
    axone.utils.set_random_seed(0)
    m = axone.Sequential([axone.Input((3,)), L.Dense(2)])
    m.compile(optimizer=axone.optimizers.SGD(0.1, momentum=0.5, gradient_accumulation_steps=steps),
              loss="mse")
    return m


@pytest.mark.parametrize("steps", [2, 3])
def test_resume_mid_cycle_equals_uninterrupted(tmp_path, steps):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 3)).astype("float32")
    y = rng.normal(size=(10, 2)).astype("float32")
    whole, first = _model(steps), _model(steps)
    whole.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0)     # 10 calls
    first.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0)     # 5 calls: mid-cycle
    first.save(tmp_path / "m.axone")
    resumed = axone.models.load_model(tmp_path / "m.axone")
    assert resumed.optimizer.iterations == first.optimizer.iterations == 5 // steps
    resumed.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
