"""In fit, a custom step's repeated ``apply_gradients`` over the model's whole trainable set and
the flat gradient buffer skips its checks (it reuses the last call's plan): the updates equal the
full path's, and any change of the variables or the gradient arrays takes the full path again."""
import numpy as np
import pytest

import axone
from axone import layers, optimizers


class _Step(axone.Model):
    def __init__(self, copy_grads, freeze_at=None):
        super().__init__()
        self.d1, self.d2 = layers.Dense(4), layers.Dense(2)
        self.copy_grads, self.freeze_at, self.steps = copy_grads, freeze_at, 0

    def call(self, x):
        return self.d2(self.d1(x))

    def train_step(self, data):
        x, y = data
        if self.steps == self.freeze_at:
            self.d1.trainable = False
        self.steps += 1
        with axone.GradientTape() as tape:
            loss = self.compute_loss(y=y, y_pred=self(x, training=True))
        tv = self.trainable_variables
        grads = tape.gradient(loss, tv)
        if self.copy_grads == "arrays":          # new arrays every step: the per-weight path
            grads = [np.array(g.data) for g in grads]
        elif self.copy_grads:                    # the fused path with its checks, every step
            self.optimizer.__dict__.pop("_apply_plan", None)
        self.optimizer.apply_gradients(zip(grads, tv))
        return {"loss": loss}


def _fit(copy_grads, opt, freeze_at=None):
    axone.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 3)).astype("float32"), rng.normal(size=(32, 2)).astype("float32")
    m = _Step(copy_grads, freeze_at)
    m.compile(optimizer=opt, loss="mse")
    m.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    return m


@pytest.mark.parametrize("kw", [{}, {"clipnorm": 0.5}, {"global_clipnorm": 0.1}])
def test_repeated_apply_equals_the_full_path(kw):
    a = _fit(False, optimizers.Adam(1e-2, **kw))
    b = _fit(True, optimizers.Adam(1e-2, **kw))
    c = _fit("arrays", optimizers.Adam(1e-2, **kw))
    assert a.optimizer.__dict__.get("_apply_plan") is not None      # the plan was taken
    assert int(a.optimizer.iterations) == int(b.optimizer.iterations) == 8
    for wa, wb, wc in zip(a.get_weights(), b.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_allclose(wa, wc, rtol=1e-6, atol=1e-7)


def test_plan_is_left_when_the_variables_change():
    a = _fit(False, optimizers.SGD(0.1), freeze_at=3)
    b = _fit("arrays", optimizers.SGD(0.1), freeze_at=3)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    frozen = _fit("arrays", optimizers.SGD(0.1), freeze_at=0)
    # the frozen layer stopped moving at step 3: differs from a model frozen from the start
    assert not np.array_equal(a.d1.get_weights()[0], frozen.d1.get_weights()[0])


def test_bad_gradient_after_a_plan_still_rejected():
    m = _fit(False, optimizers.SGD(0.1))
    tv = m.trainable_variables
    with pytest.raises(ValueError):
        m.optimizer.apply_gradients(zip([np.ones((5, 5), np.float32)] +
                                        [np.zeros(v.shape, np.float32) for v in tv[1:]], tv))
