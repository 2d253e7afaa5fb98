"""Optimizer hyperparameters of the wrong kind fail when the optimizer is made, naming the
argument, not at the first training step."""
import inspect

import numpy as np
import pytest

from axone import optimizers as O

_CLASSES = [O.SGD, O.Adam, O.RMSprop, O.AdamW, O.Adagrad, O.Adadelta, O.Adamax, O.Nadam]
_FLAGS = {"amsgrad", "nesterov", "centered"}
_CASES = [(cls, name) for cls in _CLASSES for name in inspect.signature(cls.__init__).parameters
          if name not in ("self", "kwargs", "name", "lr", "learning_rate", "use_ema",
                          "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
                          "gradient_accumulation_steps")]


@pytest.mark.parametrize("cls,name", _CASES, ids=[f"{c.__name__}-{n}" for c, n in _CASES])
@pytest.mark.parametrize("bad", [[0.1], "x", float("nan"), {"a": 1}])
def test_bad_hyperparameter_is_refused_at_construction(cls, name, bad):
    with pytest.raises((ValueError, TypeError), match=name):
        cls(**{name: bad})


@pytest.mark.parametrize("name", ["weight_decay", "clipnorm", "clipvalue", "global_clipnorm"])
def test_negative_decay_or_clip_is_refused(name):
    with pytest.raises(ValueError, match=name):
        O.Adam(**{name: -1.0})


def test_numbers_and_flags_of_numpy_types_are_taken():
    opt = O.Adam(beta_1=np.float32(0.8), epsilon=np.float64(1e-6), amsgrad=np.bool_(True))
    assert opt.beta_1 == pytest.approx(0.8) and opt.amsgrad is True
    assert O.SGD(momentum=1, nesterov=1).nesterov is True
