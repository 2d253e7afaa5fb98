"""TensorBoard: the event files read back (TFRecord framing + tensorboardX's Event protobuf)
hold Keras 3's tags with the values History and the batch logs saw."""
import glob
import json
import os
import struct
import sys

import numpy as np
import pytest

pytest.importorskip("tensorboardX")

import axone  # noqa: E402
from axone import layers  # noqa: E402
from axone.callbacks import LambdaCallback, TensorBoard  # noqa: E402


def read_events(folder):
    """Every Event of the event files in ``folder``, in file order."""
    from tensorboardX.proto.event_pb2 import Event
    events = []
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        data = open(path, "rb").read()
        i = 0
        while i < len(data):
            n = struct.unpack("<Q", data[i:i + 8])[0]
            i += 12                                  # length, its CRC
            e = Event()
            e.ParseFromString(data[i:i + n])
            events.append(e)
            i += n + 4                               # payload, its CRC
    return events


def values(folder, kind=None):
    """{tag: [(step, value)]}: scalars as floats, other kinds as their protobuf field."""
    out = {}
    for e in read_events(folder):
        for v in e.summary.value:
            k = v.WhichOneof("value")
            if kind is not None and k != kind:
                continue
            item = v.simple_value if k == "simple_value" else getattr(v, k)
            out.setdefault(v.tag, []).append((e.step, item))
    return out


def _model():
    axone.utils.clear_session()
    axone.utils.set_random_seed(0)
    m = axone.Sequential([layers.Input((3,)), layers.Dense(2, activation="relu"), layers.Dense(1)])
    m.compile("sgd", "mse", metrics=["mae"])
    return m


def _data(n=20):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


def test_epoch_scalars_equal_history(tmp_path):
    m = _model()
    x, y = _data()
    tb = TensorBoard(str(tmp_path))
    h = m.fit(x, y, epochs=3, batch_size=5, validation_split=0.2, verbose=0, callbacks=[tb])
    train = values(str(tmp_path / "train"), "simple_value")
    val = values(str(tmp_path / "validation"), "simple_value")
    assert set(train) == {"epoch_loss", "epoch_mae", "epoch_learning_rate"}
    assert set(val) == {"epoch_loss", "epoch_mae", "evaluation_loss_vs_iterations",
                        "evaluation_mae_vs_iterations"}
    for name in ("loss", "mae"):
        assert [s for s, _ in train[f"epoch_{name}"]] == [0, 1, 2]
        np.testing.assert_allclose([v for _, v in train[f"epoch_{name}"]], h.history[name],
                                   rtol=1e-6)
        np.testing.assert_allclose([v for _, v in val[f"epoch_{name}"]], h.history[f"val_{name}"],
                                   rtol=1e-6)
        # evaluated after every epoch, at the optimizer's step count (4 batches an epoch)
        assert [s for s, _ in val[f"evaluation_{name}_vs_iterations"]] == [4, 8, 12]
        np.testing.assert_allclose([v for _, v in val[f"evaluation_{name}_vs_iterations"]],
                                   h.history[f"val_{name}"], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in train["epoch_learning_rate"]], [0.01] * 3, rtol=1e-6)
    # no batch-level scalars with update_freq="epoch"
    assert not any(t.startswith("batch_") for t in train)


def test_batch_scalars_every_n_batches(tmp_path):
    m = _model()
    x, y = _data()
    seen = []
    rec = LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(dict(logs)))
    tb = TensorBoard(str(tmp_path), update_freq=3, write_steps_per_second=True)
    m.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[rec, tb])   # 5 batches an epoch
    train = values(str(tmp_path / "train"), "simple_value")
    assert [s for s, _ in train["batch_loss"]] == [3, 6, 9]
    np.testing.assert_allclose([v for _, v in train["batch_loss"]],
                               [seen[i]["loss"] for i in (2, 5, 8)], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in train["batch_mae"]],
                               [seen[i]["mae"] for i in (2, 5, 8)], rtol=1e-6)
    assert [s for s, _ in train["batch_steps_per_second"]] == [3, 6, 9]
    assert all(v > 0 for _, v in train["epoch_steps_per_second"])
    assert [s for s, _ in train["epoch_steps_per_second"]] == [0, 1]


def test_update_freq_batch_is_every_batch(tmp_path):
    m = _model()
    x, y = _data(8)
    m.fit(x, y, epochs=1, batch_size=4, verbose=0,
          callbacks=[TensorBoard(str(tmp_path), update_freq="batch")])
    train = values(str(tmp_path / "train"), "simple_value")
    assert [s for s, _ in train["batch_loss"]] == [1, 2]


def test_histograms_and_images(tmp_path):
    m = _model()
    x, y = _data()
    kernels = []
    rec = LambdaCallback(on_epoch_end=lambda e, logs: kernels.append(m.layers[0].kernel.data.copy()))
    tb = TensorBoard(str(tmp_path), histogram_freq=2, write_images=True)
    m.fit(x, y, epochs=3, batch_size=5, verbose=0, callbacks=[rec, tb])
    hist = values(str(tmp_path / "train"), "histo")
    assert set(hist) == {"dense/kernel/histogram", "dense/bias/histogram",
                         "dense_1/kernel/histogram", "dense_1/bias/histogram"}
    h = hist["dense/kernel/histogram"]
    assert [s for s, _ in h] == [0, 2]
    for (step, proto), k in zip(h, (kernels[0], kernels[2])):
        assert proto.num == k.size
        np.testing.assert_allclose([proto.min, proto.max, proto.sum], [k.min(), k.max(), k.sum()],
                                   rtol=1e-5)
    images = values(str(tmp_path / "train"), "image")
    # a (3, 2) kernel is drawn with its longer side across; a bias as a column; a (2, 1) kernel
    # squeezes to a column; a (1,) bias squeezes to a scalar, which Keras does not draw
    assert set(images) == {"dense/kernel/image", "dense/bias/image", "dense_1/kernel/image"}
    img = images["dense/kernel/image"][0][1]
    assert (img.height, img.width) == (2, 3)
    img = images["dense/bias/image"][0][1]
    assert (img.height, img.width) == (2, 1)


def test_weight_image_shapes():
    f = TensorBoard._weight_image
    assert f(np.zeros((5,))).shape == (1, 5, 1, 1)
    assert f(np.zeros((4, 7))).shape == (1, 4, 7, 1)
    assert f(np.zeros((7, 4))).shape == (1, 4, 7, 1)
    assert f(np.zeros((3, 3, 8))).shape == (8, 3, 3, 1)
    assert f(np.zeros((3, 3, 2, 8))) is None          # 4-D conv kernels are not drawn
    assert f(np.zeros((1,))) is None


def test_graph_is_the_model_json(tmp_path):
    m = _model()
    x, y = _data(8)
    m.fit(x, y, epochs=1, verbose=0, callbacks=[TensorBoard(str(tmp_path))])
    tensors = values(str(tmp_path / "train"), "tensor")
    (step, t), = tensors["keras"]
    assert step == 0
    assert json.loads(t.string_val[0].decode()) == json.loads(m.to_json())
    ev = [v for e in read_events(str(tmp_path / "train")) for v in e.summary.value if v.tag == "keras"]
    assert ev[0].metadata.plugin_data.plugin_name == "graph_keras_model"


def test_no_graph(tmp_path):
    m = _model()
    x, y = _data(8)
    m.fit(x, y, epochs=1, verbose=0, callbacks=[TensorBoard(str(tmp_path), write_graph=False)])
    assert "keras" not in values(str(tmp_path / "train"))


def test_evaluate_alone(tmp_path):
    m = _model()
    x, y = _data(8)
    m.fit(x, y, epochs=1, batch_size=4, verbose=0)
    result = m.evaluate(x, y, verbose=0, callbacks=[TensorBoard(str(tmp_path))],
                        return_dict=True)
    val = values(str(tmp_path / "validation"), "simple_value")
    assert val["evaluation_loss_vs_iterations"][0][0] == 2
    np.testing.assert_allclose(val["evaluation_loss_vs_iterations"][0][1], result["loss"],
                               rtol=1e-6)


@pytest.mark.parametrize("kwargs, name", [(dict(profile_batch=3), "profile_batch"),
                                          (dict(profile_batch=(2, 4)), "profile_batch"),
                                          (dict(profile_batch="2,4"), "profile_batch"),
                                          (dict(embeddings_freq=1), "embeddings_freq")])
def test_unsupported_arguments(kwargs, name):
    with pytest.raises(NotImplementedError, match=name):
        TensorBoard(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(profile_batch=-1), dict(profile_batch=(4, 2)),
                                    dict(profile_batch="a"), dict(update_freq="often"),
                                    dict(update_freq=0), dict(histogram_freq=-1)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="TensorBoard"):
        TensorBoard(**kwargs)


def test_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match="pip install tensorboardX"):
        TensorBoard()


def test_epoch_mode_skips_batch_hooks():
    from axone.callbacks import CallbackList
    tb = TensorBoard()
    assert CallbackList([tb], None, {}).hooks("train") == []
    assert CallbackList([TensorBoard(update_freq=2)], None, {}).hooks("train") != []
