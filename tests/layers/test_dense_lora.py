"""Dense(lora_rank=…, lora_alpha=…) and enable_lora against Keras 3: frozen kernel, trainable
factors A (input_dim, r) and B (r, units), effective kernel K + (alpha/r)·A·B."""
import numpy as np
import pytest

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

import axone
from axone import layers as L

RNG = np.random.default_rng(5)


def _pair(**kw):
    # Keras 3's Dense.build calls enable_lora(lora_rank) without lora_alpha, so a lora_alpha given
    # to the constructor is dropped (its documentation says it scales the update): the Keras side
    # of a lora_alpha case enables LoRA with that alpha explicitly, as documented
    kkw = {} if "lora_alpha" in kw else kw
    km = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="tanh", **kkw),
                           keras.layers.Dense(2)])
    if "lora_alpha" in kw:
        km.layers[0].enable_lora(kw["lora_rank"], lora_alpha=kw["lora_alpha"])
    axone.utils.clear_session()
    am = axone.Sequential([L.Input((6,)), L.Dense(4, activation="tanh", **kw), L.Dense(2)])
    weights = [RNG.normal(size=w.shape).astype("float32") * 0.5 for w in km.get_weights()]
    km.set_weights(weights)
    am.set_weights(weights)
    return km, am


def test_weights_names_order_and_counts_match_keras():
    km, am = _pair(lora_rank=3, lora_alpha=6)
    kd, ad = km.layers[0], am.layers[0]
    names = lambda ws: [w.path.split("/")[-1] for w in ws]
    assert names(ad.weights) == names(kd.weights)
    assert names(ad.trainable_weights) == names(kd.trainable_weights)
    assert names(ad.non_trainable_weights) == ["kernel"]
    assert [w.shape for w in ad.weights] == [tuple(w.shape) for w in kd.weights]
    assert am.count_params() == km.count_params()
    assert ad.get_config()["lora_rank"] == 3 and ad.get_config()["lora_alpha"] == 6
    assert ad.lora_alpha == kd.lora_alpha == 6
    # a new layer's update starts at zero: B is zeros, A is He-uniform
    fresh = L.Dense(4, lora_rank=3)
    fresh.build((None, 6))
    assert not fresh.lora_kernel_b.data.any()
    assert 0 < np.abs(fresh.lora_kernel_a.data).max() <= np.sqrt(6 / 6) + 1e-6
    assert fresh.lora_alpha == 3


@pytest.mark.parametrize("kw", [dict(lora_rank=2), dict(lora_rank=3, lora_alpha=7.5)])
def test_forward_and_training_match_keras(kw):
    km, am = _pair(**kw)
    x = RNG.normal(size=(12, 6)).astype("float32")
    y = RNG.normal(size=(12, 2)).astype("float32")
    np.testing.assert_allclose(am.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(am.layers[0].kernel),
                               keras.ops.convert_to_numpy(km.layers[0].kernel), rtol=1e-6, atol=1e-6)
    frozen = am.layers[0]._kernel.data.copy()
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    am.compile(optimizer=axone.optimizers.SGD(0.1), loss="mse")
    km.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    am.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for a, k in zip(am.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, k, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(am.layers[0]._kernel.data, frozen)     # the kernel is frozen


def test_enable_lora_on_built_layer():
    d = L.Dense(3)
    x = RNG.normal(size=(4, 5)).astype("float32")
    before = d(x).data
    with pytest.raises(ValueError, match="built"):
        L.Dense(3).enable_lora(2)
    d.enable_lora(2)
    np.testing.assert_allclose(d(x).data, before, rtol=1e-6)     # B = 0: unchanged at first
    assert d.get_config()["lora_rank"] == 2
    with pytest.raises(ValueError, match="already"):
        d.enable_lora(2)
    c = L.Dense(3, kernel_constraint="non_neg")
    c.build((None, 5))
    with pytest.raises(ValueError, match="kernel_constraint"):
        c.enable_lora(2)


def test_lora_save_load_round_trip(tmp_path):
    _, am = _pair(lora_rank=2)
    x = RNG.normal(size=(5, 6)).astype("float32")
    am.compile(optimizer="sgd", loss="mse")
    am.save(tmp_path / "m.keras")
    m2 = axone.models.load_model(tmp_path / "m.keras")
    assert m2.layers[0].lora_enabled
    np.testing.assert_allclose(m2.predict(x, verbose=0), am.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("make,err", [
    (lambda: L.Dense(3, lora_rank=0), ValueError), (lambda: L.Dense(3, lora_rank=1.5), ValueError),
    (lambda: L.Dense(3, lora_rank=2, lora_alpha=-1), ValueError),
    (lambda: L.Dense(3, quantization_config={"mode": "int8"}), NotImplementedError),
    (lambda: L.Embedding(10, 3, lora_rank=2), NotImplementedError),
])
def test_unsupported_or_bad_arguments(make, err):
    with pytest.raises(err):
        make()
