"""The focal, generalized, Huber, Dice, Tversky, Circle and CTC losses: values, gradients,
reductions and sample weights against Keras 3 (torch backend); finite differences; configs,
deserialize, compile by name and by object; bad input."""
import numpy as np
import pytest

import axone
from axone import Tensor
from axone.utils import check_gradients

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

B = 6
rng = np.random.default_rng(7)
BIN_T = rng.integers(0, 2, (B, 4)).astype(np.float32)
PROBS = rng.uniform(0.02, 0.98, (B, 4)).astype(np.float32)
LOGITS = (rng.normal(size=(B, 4)) * 2).astype(np.float32)
ONEHOT = np.eye(4, dtype=np.float32)[rng.integers(0, 4, B)]
DIST = rng.dirichlet(np.ones(4), B).astype(np.float32)
LABELS = rng.integers(0, 4, B)
EMB = rng.normal(size=(B, 5)).astype(np.float32)
EMB /= np.linalg.norm(EMB, axis=1, keepdims=True)
EMB_LABELS = np.array([0, 1, 0, 1, 2, 2])
SEG_T = rng.integers(0, 2, (B, 3, 3, 1)).astype(np.float32)
SEG_P = rng.uniform(0.01, 0.99, (B, 3, 3, 1)).astype(np.float32)
CTC_T = np.array([[1, 2, 2, 0], [3, 1, 0, 0], [2, 3, 1, 2], [1, 0, 0, 0], [4, 4, 1, 0],
                  [2, 1, 3, 0]])
CTC_P = rng.normal(size=(B, 9, 5)).astype(np.float32)
SW = rng.uniform(0.1, 1.0, B).astype(np.float32)

CASES = [
    ("Huber", {}, BIN_T, LOGITS),
    ("Huber", {"delta": 0.4}, BIN_T, LOGITS),
    ("BinaryFocalCrossentropy", {}, BIN_T, PROBS),
    ("BinaryFocalCrossentropy", {"apply_class_balancing": True, "alpha": 0.4, "gamma": 3.0,
                                 "from_logits": True, "label_smoothing": 0.1}, BIN_T, LOGITS),
    ("CategoricalFocalCrossentropy", {}, ONEHOT, DIST),
    ("CategoricalFocalCrossentropy", {"from_logits": True, "alpha": [0.1, 0.2, 0.3, 0.4],
                                      "gamma": 1.5, "label_smoothing": 0.2}, ONEHOT, LOGITS),
    ("CategoricalGeneralizedCrossEntropy", {}, LABELS, DIST),
    ("CategoricalGeneralizedCrossEntropy", {"q": 0.8}, LABELS, DIST),
    ("Dice", {}, SEG_T, SEG_P),
    ("Dice", {"axis": (1, 2, 3)}, SEG_T, SEG_P),
    ("Tversky", {"alpha": 0.3, "beta": 0.7}, SEG_T, SEG_P),
    ("Tversky", {"axis": (1, 2)}, SEG_T, SEG_P),
    ("Circle", {}, EMB_LABELS, EMB),
    ("Circle", {"gamma": 10.0, "margin": 0.25, "remove_diagonal": False}, EMB_LABELS, EMB),
    ("CTC", {}, CTC_T, CTC_P),
]
IDS = [f"{c}-{i}" for i, (c, *_rest) in enumerate(CASES)]


def _keras_value_and_grad(loss, yt, yp, sw):
    tp = torch.tensor(yp, requires_grad=True)
    v = loss(yt, tp, sample_weight=sw)
    v.sum().backward()
    return v.detach().numpy(), tp.grad.numpy()


def _axone_value_and_grad(loss, yt, yp, sw):
    x = Tensor(yp, requires_grad=True)
    v = loss(yt, x, sample_weight=sw)
    (v if v.ndim == 0 else axone.ops.sum(v)).backward()
    return v.data, x.grad


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", None,
                                       "mean_with_sample_weight"])
def test_loss_objects_match_keras(case, reduction):
    cls, kw, yt, yp = case
    k = getattr(keras.losses, cls)(reduction=reduction, **kw)
    a = getattr(axone.losses, cls)(reduction=reduction, **kw)
    # the Circle loss's scale (γ = 80) makes its values large: a relative tolerance
    rtol = 2e-5 if cls == "Circle" else 1e-5
    for sw in (None, SW):
        kv, kg = _keras_value_and_grad(k, yt, yp, sw)
        av, ag = _axone_value_and_grad(a, yt, yp, sw)
        np.testing.assert_allclose(av, kv, rtol=rtol, atol=1e-5)
        np.testing.assert_allclose(ag, kg, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(kg).max()))


FUNCTIONS = [("huber", {"delta": 0.7}, BIN_T, LOGITS),
             ("binary_focal_crossentropy", {"gamma": 2.5}, BIN_T, PROBS),
             ("categorical_focal_crossentropy", {"alpha": 0.5}, ONEHOT, DIST),
             ("categorical_generalized_cross_entropy", {"q": 0.3}, LABELS, DIST),
             ("dice", {"axis": (1, 2, 3)}, SEG_T, SEG_P),
             ("tversky", {"alpha": 0.2, "beta": 0.8, "axis": (1, 2, 3)}, SEG_T, SEG_P),
             ("circle", {"gamma": 20}, EMB_LABELS, EMB),
             ("ctc", {}, CTC_T, CTC_P)]


@pytest.mark.parametrize("name, kw, yt, yp", FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_loss_functions_match_keras(name, kw, yt, yp):
    tp = torch.tensor(yp, requires_grad=True)
    kv = getattr(keras.losses, name)(torch.tensor(yt), tp, **kw)
    g = rng.normal(size=tuple(kv.shape)).astype(np.float32)
    (kv * torch.tensor(g)).sum().backward()
    x = Tensor(yp, requires_grad=True)
    av = getattr(axone.losses, name)(yt, x, **kw)
    np.testing.assert_allclose(av.data, kv.detach().numpy(), rtol=2e-5, atol=1e-5)
    av.backward(g)
    np.testing.assert_allclose(x.grad, tp.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, kw, yt, yp", FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_loss_gradients_by_finite_differences(name, kw, yt, yp):
    fn = getattr(axone.losses, name)
    yt64 = yt.astype(np.float64) if yt.dtype.kind == "f" else yt
    if name == "circle":
        # a smaller scale keeps the log-sum-exp away from its kinks for the difference step
        kw = {"gamma": 2.0}
    r = check_gradients(lambda p: fn(yt64, p, **kw), yp.astype(np.float64))
    assert r.max_error < 1e-6, r


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_configs_match_keras_and_round_trip(case):
    cls, kw, _, _ = case
    k = getattr(keras.losses, cls)(**kw)
    a = getattr(axone.losses, cls)(**kw)
    assert a.get_config() == k.get_config()
    again = axone.losses.deserialize(axone.losses.serialize(a))
    assert type(again) is type(a) and again.get_config() == a.get_config()


def test_deserialize_names_functions_and_custom_objects():
    assert axone.losses.deserialize("huber") is axone.losses.huber
    assert isinstance(axone.losses.deserialize("Tversky"), axone.losses.Tversky)
    assert axone.losses.deserialize("BCE") is axone.losses.binary_crossentropy
    fn_entry = keras.losses.serialize(keras.losses.dice)
    assert axone.losses.deserialize(fn_entry) is axone.losses.dice
    cfg = keras.losses.serialize(keras.losses.BinaryFocalCrossentropy(gamma=4.0, alpha=0.1))
    obj = axone.losses.deserialize(cfg)
    assert isinstance(obj, axone.losses.BinaryFocalCrossentropy) and obj.gamma == 4.0

    def my_loss(y, p):
        return axone.ops.mean(axone.ops.abs(p - y), axis=-1)
    assert axone.losses.deserialize("my_loss", custom_objects={"my_loss": my_loss}) is my_loss
    with pytest.raises(ValueError, match="Unknown loss"):
        axone.losses.deserialize("no_such_loss")
    with pytest.raises(ValueError, match="Unknown loss"):
        axone.losses.deserialize({"class_name": "NoSuchLoss", "config": {}})
    with pytest.raises(TypeError, match="deserialize"):
        axone.losses.deserialize(3)


@pytest.mark.parametrize("loss", ["huber", "binary_focal_crossentropy", "dice", "tversky",
                                  "BinaryFocalCrossentropy", axone.losses.Huber(delta=0.5),
                                  axone.losses.Tversky(alpha=0.7, beta=0.3)])
def test_compile_and_fit_with_new_losses(loss):
    axone.utils.set_random_seed(1)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    model = axone.Sequential([axone.layers.Input((3,)), axone.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", loss)
    h = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert len(h.history["loss"]) == 3 and np.all(np.isfinite(h.history["loss"]))
    value = model.evaluate(x, y, verbose=0)
    want = axone.losses.get(loss) if not isinstance(loss, axone.losses.Loss) else loss
    p = model.predict(x, verbose=0)
    expected = want(y, p) if isinstance(want, axone.losses.Loss) else \
        axone.losses.as_loss_object(want)(y, p)
    np.testing.assert_allclose(value, float(expected.data), rtol=1e-5)


def test_ctc_loss_object_trains_a_sequence_model():
    axone.utils.set_random_seed(2)
    x = rng.normal(size=(8, 9, 4)).astype(np.float32)
    y = CTC_T[:8 // 4 * 4][:, :3].repeat(2, axis=0)[:8]
    model = axone.Sequential([axone.layers.Input((9, 4)), axone.layers.Dense(5)])
    model.compile("adam", axone.losses.CTC())
    h = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_bad_input():
    with pytest.raises(ValueError, match="q must be in the interval"):
        axone.losses.CategoricalGeneralizedCrossEntropy(q=1.5)
    with pytest.raises(ValueError, match="reduction"):
        axone.losses.Dice(reduction="average")
    with pytest.raises(ValueError, match="same shape"):
        axone.losses.huber(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(TypeError, match="delta"):
        axone.losses.huber(np.zeros((3, 2)), np.zeros((3, 2)), delta="big")
    with pytest.raises(ValueError, match="`axis` must be of type `int`"):
        axone.losses.categorical_focal_crossentropy(ONEHOT, DIST, axis=True)
    with pytest.raises(ValueError, match="one integer label per row"):
        axone.losses.categorical_generalized_cross_entropy(np.zeros((B, 2)), DIST, q=0.5)
    with pytest.raises(ValueError, match="2D"):
        axone.losses.circle(EMB_LABELS, EMB[:, :, None])
    with pytest.raises(ValueError, match="one label per embedding"):
        axone.losses.circle(EMB_LABELS[:4], EMB)
    with pytest.raises(ValueError, match=r"\(batch_size, max_length\)"):
        axone.losses.ctc(CTC_T[:, :, None], CTC_P)
    with pytest.raises(ValueError, match=r"\(batch_size, max_length, num_classes\)"):
        axone.losses.ctc(CTC_T, CTC_P[:, :, 0])


@pytest.mark.parametrize("cls", ["Huber", "Dice", "Circle", "CTC", "BinaryFocalCrossentropy",
                                 "MeanSquaredError"])
def test_serialize_matches_keras(cls):
    k = getattr(keras.losses, cls)(name="l")
    a = getattr(axone.losses, cls)(name="l")
    assert axone.losses.serialize(a) == keras.losses.serialize(k)
