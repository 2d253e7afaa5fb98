import numpy as np
import pytest

import axone


@pytest.fixture
def float64():
    """Run a test with floatx = float64 (finite differences), restoring the previous value."""
    old = axone.backend.floatx()
    axone.backend.set_floatx("float64")
    try:
        yield
    finally:
        axone.backend.set_floatx(old)


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return (rng.random((4, 9, 12, 3)) * 255).astype(np.float32)
