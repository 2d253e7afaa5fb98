"""Keras's file formats both ways: files written by real Keras 3 (torch backend) read by axone,
files written by axone read by Keras, and damaged or hostile files refused clearly."""
import json
import os
import warnings
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
h5py = pytest.importorskip("h5py")
keras = pytest.importorskip("keras")

import axone  # noqa: E402
from axone.fileio import FileFormatError  # noqa: E402

RNG = np.random.default_rng(0)
X6 = RNG.random((5, 8, 6)).astype("float32")


def _np(t):
    return keras.ops.convert_to_numpy(t)


def _keras_rich(K):
    """A functional model of the common layers, in Keras or axone (same code)."""
    L = K.layers
    inp = L.Input((8, 6), name="seq")
    x = L.LSTM(4, return_sequences=True)(inp)
    x = L.Bidirectional(L.GRU(3))(x)
    a = L.Dense(5, activation="relu")(x)
    b = L.BatchNormalization()(a)
    c = L.Concatenate()([a, b])
    d = L.LayerNormalization()(c)
    e = L.MultiHeadAttention(2, 3)(inp, inp)
    e = L.SimpleRNN(2)(L.Reshape((8, 6))(L.Flatten()(e)))
    shared = L.Dense(2)
    out = L.Add()([shared(L.Dense(2)(d)), shared(L.Dense(2)(e))])
    return K.Model(inp, [out, L.Dense(3, activation="tanh")(L.Dropout(0.1)(d))])


def _fit(m, K):
    m.compile(optimizer=K.optimizers.Adam(1e-3), loss=["mean_squared_error", "mae"],
              metrics=[["mae"], ["mse"]])
    y = [RNG.random((5, 2)).astype("float32"), RNG.random((5, 3)).astype("float32")]
    m.fit(X6, y, epochs=2, batch_size=5, verbose=0)
    return m


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("kfiles")
    keras.utils.set_random_seed(1)
    m = _fit(_keras_rich(keras), keras)
    m.save(d / "k.keras")
    m.save_weights(d / "k.weights.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.save(d / "k.h5")
    from keras.src.legacy.saving import legacy_h5_format
    with h5py.File(d / "kw.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, m)
    preds = [_np(p) for p in m(X6)]
    weights = [_np(w) for w in m.weights]
    opt_vars = [_np(v) for v in m.optimizer.variables]
    return d, preds, weights, opt_vars


@pytest.fixture(scope="module")
def axone_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("afiles")
    axone.utils.set_random_seed(2)
    m = _fit(_keras_rich(axone), axone)
    m.save(d / "a.keras")
    m.save_weights(d / "a.weights.h5")
    with pytest.warns(UserWarning, match="legacy"):
        m.save(d / "a.h5")
    m.save_weights(d / "aw.h5")
    return d, m, m.predict(X6, verbose=0)


# ------------------------------------------------------------------ Keras -> axone
def test_axone_loads_a_keras_archive_with_equal_predictions_weights_and_compile(keras_files):
    d, preds, weights, opt_vars = keras_files
    m = axone.saving.load_model(d / "k.keras")
    for p, q in zip(preds, m.predict(X6, verbose=0)):
        np.testing.assert_allclose(q, p, atol=1e-5)
    assert sorted(w.size for w in m.get_weights()) == sorted(w.size for w in weights)
    assert type(m.optimizer).__name__ == "Adam"
    assert m.optimizer.iterations == int(opt_vars[0]) == 2
    np.testing.assert_allclose(float(m.optimizer.learning_rate), 1e-3, rtol=1e-6)
    # the moments Keras stored went into axone's state: one more step matches Keras's step
    st = m.optimizer._flat_state
    assert st is not None and np.abs(st["m"]).sum() > 0
    total_keras = sum(np.abs(v).sum() for v in opt_vars[2::2])
    np.testing.assert_allclose(np.abs(st["m"]).sum(), total_keras, rtol=1e-5)


def test_axone_loads_keras_weights_h5_and_legacy_files(keras_files):
    d, preds, weights, _ = keras_files
    fresh = _keras_rich(axone)
    fresh.load_weights(d / "k.weights.h5")
    np.testing.assert_allclose(fresh.predict(X6, verbose=0)[0], preds[0], atol=1e-5)
    fresh = _keras_rich(axone)
    fresh.load_weights(d / "kw.h5")                  # Keras 2 layout, by topological order
    np.testing.assert_allclose(fresh.predict(X6, verbose=0)[1], preds[1], atol=1e-5)
    fresh = _keras_rich(axone)
    fresh.load_weights(d / "k.keras")                # weights out of a .keras archive
    np.testing.assert_allclose(fresh.predict(X6, verbose=0)[0], preds[0], atol=1e-5)
    m = axone.saving.load_model(d / "k.h5")
    np.testing.assert_allclose(m.predict(X6, verbose=0)[0], preds[0], atol=1e-5)
    assert m.compiled and type(m.optimizer).__name__ == "Adam"


def test_keras_sequential_nested_and_conv_models_load_in_axone(tmp_path):
    L = keras.layers
    keras.utils.set_random_seed(3)
    inner = keras.Sequential([L.Input((6, 6, 2)), L.Conv2D(3, 3, padding="same",
                                                          activation="relu"),
                              L.MaxPooling2D()], name="inner")
    a = L.Input((6, 6, 2), name="img")
    b = L.Input((4,), dtype="int32", name="tok")
    x = L.GlobalAveragePooling2D()(inner(a))
    y = L.GlobalMaxPooling1D()(L.Embedding(10, 3)(b))
    z = L.Dense(2)(L.Concatenate()([x, y]))
    m = keras.Model([a, b], z)
    seq = keras.Sequential([L.Input((5,)), L.Rescaling(0.5), L.Dense(4, activation="relu"),
                            L.Dropout(0.2), L.Dense(1)])
    xa = RNG.random((3, 6, 6, 2)).astype("float32")
    xb = RNG.integers(0, 10, (3, 4)).astype("int32")
    m.save(tmp_path / "n.keras")
    seq.save(tmp_path / "s.keras")
    got = axone.saving.load_model(tmp_path / "n.keras")
    np.testing.assert_allclose(got.predict([xa, xb], verbose=0), _np(m([xa, xb])), atol=1e-5)
    xs = RNG.random((3, 5)).astype("float32")
    got = axone.saving.load_model(tmp_path / "s.keras")
    assert type(got).__name__ == "Sequential"
    np.testing.assert_allclose(got.predict(xs, verbose=0), _np(seq(xs)), atol=1e-5)


# ------------------------------------------------------------------ axone -> Keras
def test_keras_loads_axone_archive_with_equal_predictions_and_optimizer(axone_files):
    d, m, pred = axone_files
    k = keras.models.load_model(d / "a.keras")
    for p, q in zip(pred, k(X6)):
        np.testing.assert_allclose(_np(q), p, atol=1e-5)
    assert int(_np(k.optimizer.iterations)) == m.optimizer.iterations == 2
    kv = [_np(v) for v in k.optimizer.variables]
    np.testing.assert_allclose(sum(np.abs(v).sum() for v in kv[2::2]),
                               np.abs(m.optimizer._flat_state["m"]).sum(), rtol=1e-5)
    assert k.loss == ["mean_squared_error", "mae"]
    with zipfile.ZipFile(d / "a.keras") as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        cfg = json.loads(zf.read("config.json"))
    assert cfg["class_name"] == "Functional" and cfg["compile_config"]["optimizer"][
        "class_name"] == "Adam"
    assert all(l["module"] == "keras.layers" for l in cfg["config"]["layers"])


def test_keras_loads_axone_weights_h5_and_legacy_files(axone_files):
    d, m, pred = axone_files
    k = _keras_rich(keras)
    k.load_weights(d / "a.weights.h5")
    np.testing.assert_allclose(_np(k(X6)[0]), pred[0], atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k2 = keras.models.load_model(d / "a.h5", compile=False)
    np.testing.assert_allclose(_np(k2(X6)[1]), pred[1], atol=1e-5)
    from keras.src.legacy.saving import legacy_h5_format
    k3 = _keras_rich(keras)
    with h5py.File(d / "aw.h5", "r") as f:
        legacy_h5_format.load_weights_from_hdf5_group(f, k3)
    np.testing.assert_allclose(_np(k3(X6)[0]), pred[0], atol=1e-5)


def test_axone_round_trips_its_keras_files(axone_files):
    d, m, pred = axone_files
    for name in ("a.keras", "a.h5"):
        got = axone.saving.load_model(d / name)
        np.testing.assert_allclose(got.predict(X6, verbose=0)[0], pred[0], atol=1e-6)
        assert got.optimizer.iterations == 2        # legacy .h5 keeps optimizer_weights too


# ------------------------------------------------------------------ legacy h5 by name
def test_legacy_weights_by_name_and_skip_mismatch(tmp_path):
    L = keras.layers
    keras.utils.set_random_seed(4)
    k = keras.Sequential([L.Input((4,)), L.Dense(3, name="a"), L.Dense(2, name="b")])
    from keras.src.legacy.saving import legacy_h5_format
    with h5py.File(tmp_path / "w.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, k)
    AL = axone.layers
    # other order, an extra layer, one of another shape
    m = axone.Sequential([AL.Input((4,)), AL.Dense(3, name="a"), AL.Dense(7, name="new"),
                          AL.Dense(2, name="c")])
    m.load_weights(tmp_path / "w.h5", by_name=True)
    np.testing.assert_array_equal(m.layers[0].get_weights()[0], _np(k.layers[0].kernel))
    other = axone.Sequential([AL.Input((4,)), AL.Dense(3, name="a"), AL.Dense(5, name="b")])
    with pytest.raises(ValueError, match=r"'b'.*\(3, 5\).*\(3, 2\)"):
        other.load_weights(tmp_path / "w.h5", by_name=True)
    with pytest.warns(UserWarning, match="Skipping"):
        other.load_weights(tmp_path / "w.h5", by_name=True, skip_mismatch=True)
    np.testing.assert_array_equal(other.layers[0].get_weights()[1], _np(k.layers[0].bias))
    short = axone.Sequential([AL.Input((4,)), AL.Dense(3)])
    with pytest.raises(ValueError, match="Layer count mismatch"):
        short.load_weights(tmp_path / "w.h5")


# ------------------------------------------------------------------ extension choice
def test_extensions_choose_the_format(tmp_path):
    m = axone.Sequential([axone.layers.Input((3,)), axone.layers.Dense(2)])
    m.save(tmp_path / "m.axone")
    with zipfile.ZipFile(tmp_path / "m.axone") as zf:
        assert "axone.json" in zf.namelist()
    m.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        assert "axone.json" not in zf.namelist()
    with pytest.raises(ValueError, match="never given a Keras extension"):
        m.save(tmp_path / "x.keras", save_format="axone")
    with pytest.raises(ValueError, match="weights.h5"):
        m.save_weights(tmp_path / "x.keras")
    m.save_weights(tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "m.weights.h5") as f:
        assert "layers" in f and "dense" in f["layers"]
    for name in ("m.axone", "m.keras"):
        got = axone.saving.load_model(tmp_path / name)
        np.testing.assert_array_equal(got.get_weights()[0], m.get_weights()[0])
    with pytest.raises(FileFormatError, match="weights file"):
        axone.saving.load_model(tmp_path / "m.weights.h5")


def test_model_checkpoint_writes_each_keras_format(tmp_path):
    x = RNG.random((8, 3)).astype("float32")
    y = RNG.random((8, 1)).astype("float32")
    m = axone.Sequential([axone.layers.Input((3,)), axone.layers.Dense(1)])
    m.compile("sgd", "mse")
    cbs = [axone.callbacks.ModelCheckpoint(str(tmp_path / "c{epoch}.keras")),
           axone.callbacks.ModelCheckpoint(str(tmp_path / "c{epoch}.weights.h5"),
                                           save_weights_only=True),
           axone.callbacks.ModelCheckpoint(str(tmp_path / "c{epoch}.h5"))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(x, y, epochs=1, verbose=0, callbacks=cbs)
        k = keras.models.load_model(tmp_path / "c1.keras")
        k2 = keras.models.load_model(tmp_path / "c1.h5", compile=False)
    np.testing.assert_allclose(_np(k(x)), m.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(_np(k2(x)), m.predict(x, verbose=0), atol=1e-6)
    k.load_weights(tmp_path / "c1.weights.h5")


# ------------------------------------------------------------------ damaged and hostile files
@pytest.fixture
def small(tmp_path):
    m = axone.Sequential([axone.layers.Input((3,)), axone.layers.Dense(2, name="d")])
    m.save(tmp_path / "s.keras")
    m.save_weights(tmp_path / "s.weights.h5")
    return m, tmp_path


def _rewrite_weights(tmp_path, fill):
    with h5py.File(tmp_path / "bad.weights.h5", "w") as f:
        g = f.create_group("layers/dense/vars")
        fill(f, g)
        f.create_group("vars")
    return tmp_path / "bad.weights.h5"


@pytest.mark.parametrize("kind", ["huge", "object", "vlen", "string", "shape", "missing",
                                  "external", "soft", "complex"])
def test_hostile_weights_h5_is_a_clear_format_error(small, kind):
    m, tmp = small

    def fill(f, g):
        if kind == "huge":
            g.create_dataset("0", shape=(10 ** 6, 10 ** 5), dtype="f4", chunks=(10, 10),
                             compression="gzip")
        elif kind == "object":
            g.create_dataset("0", data=np.array([b"a", b"b"], dtype=object),
                             dtype=h5py.string_dtype())
        elif kind == "vlen":
            g.create_dataset("0", shape=(2,), dtype=h5py.vlen_dtype(np.float32))
        elif kind == "string":
            g.create_dataset("0", data=np.array([b"abc"] * 3))
        elif kind == "shape":
            g.create_dataset("0", data=np.zeros((4, 2), "f4"))
        elif kind == "complex":
            g.create_dataset("0", data=np.zeros((3, 2), "c8"))
        elif kind == "external":
            g["0"] = h5py.ExternalLink(str(tmp / "s.weights.h5"), "/layers/dense/vars/0")
        elif kind == "soft":
            f.create_dataset("elsewhere", data=np.zeros((3, 2), "f4"))
            g["0"] = h5py.SoftLink("/elsewhere")
        if kind != "missing":
            g.create_dataset("1", data=np.zeros((2,), "f4"))
    path = _rewrite_weights(tmp, fill)
    with pytest.raises(FileFormatError, match="bad.weights.h5") as e:
        m.load_weights(path)
    assert "'d'" in str(e.value) or "dense" in str(e.value)


@pytest.mark.parametrize("damage", ["truncate", "garbage_member", "no_config", "huge_units"])
def test_damaged_keras_archives_are_format_errors(small, damage):
    m, tmp = small
    data = (tmp / "s.keras").read_bytes()
    bad = tmp / "bad.keras"
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    else:
        with zipfile.ZipFile(tmp / "s.keras") as zf:
            members = {n: zf.read(n) for n in zf.namelist()}
        if damage == "garbage_member":
            members["model.weights.h5"] = b"\x89HDF\r\n\x1a\n" + b"\x07" * 300
        elif damage == "no_config":
            del members["config.json"]
            members["axone-like.json"] = b"{}"
        else:
            cfg = json.loads(members["config.json"])
            cfg["config"]["layers"][1]["config"]["units"] = 50_000_000
            members["config.json"] = json.dumps(cfg).encode()
        with zipfile.ZipFile(bad, "w") as zf:
            for n, v in members.items():
                zf.writestr(n, v)
    with pytest.raises(ValueError, match="bad.keras"):
        axone.saving.load_model(bad)


def test_truncated_h5_is_a_format_error(small):
    m, tmp = small
    data = (tmp / "s.weights.h5").read_bytes()
    (tmp / "t.weights.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(FileFormatError, match="t.weights.h5"):
        m.load_weights(tmp / "t.weights.h5")


def test_keras_lambda_bytecode_is_refused_in_either_safe_mode(tmp_path):
    L = keras.layers
    k = keras.Sequential([L.Input((3,)), L.Lambda(lambda t: t * 2.0)])
    k.save(tmp_path / "lam.keras")
    for safe in (True, False):
        with pytest.raises(FileFormatError, match="bytecode"):
            axone.saving.load_model(tmp_path / "lam.keras", safe_mode=safe)


def test_missing_h5py_names_the_install(small, monkeypatch):
    m, tmp = small
    import sys
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match="pip install h5py"):
        m.load_weights(tmp / "s.weights.h5")
    with pytest.raises(ImportError, match="pip install h5py"):
        m.save(tmp / "again.keras")


@pytest.mark.parametrize("opt", ["adam", "sgd_momentum", "rmsprop_centered", "adam_amsgrad",
                                 "adafactor"])
def test_training_resumes_alike_across_the_keras_archive_both_ways(tmp_path, opt):
    """Keras trains, saves; axone loads and both take the same next step (optimizer slots in
    Keras's order); then axone saves and Keras resumes from axone's state."""
    make = {"adam": lambda K: K.optimizers.Adam(0.01),
            "sgd_momentum": lambda K: K.optimizers.SGD(0.1, momentum=0.9),
            "rmsprop_centered": lambda K: K.optimizers.RMSprop(0.01, momentum=0.5,
                                                               centered=True),
            "adam_amsgrad": lambda K: K.optimizers.Adam(0.01, amsgrad=True),
            "adafactor": lambda K: K.optimizers.Adafactor(0.05)}[opt]
    x = RNG.random((6, 4)).astype("float32")
    y = RNG.random((6, 2)).astype("float32")
    keras.utils.set_random_seed(0)
    k = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"),
                          keras.layers.Dense(2)])
    k.compile(make(keras), "mean_squared_error")
    k.fit(x, y, batch_size=6, epochs=2, verbose=0, shuffle=False)
    k.save(tmp_path / "k.keras")
    a = axone.saving.load_model(tmp_path / "k.keras")
    k.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
    a.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
    for v, w in zip(k.weights, a.get_weights()):
        np.testing.assert_allclose(w, _np(v), atol=1e-6)
    a.save(tmp_path / "a.keras")
    k2 = keras.models.load_model(tmp_path / "a.keras")
    assert int(_np(k2.optimizer.iterations)) == a.optimizer.iterations == 3
    k2.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
    a.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
    for v, w in zip(k2.weights, a.get_weights()):
        np.testing.assert_allclose(w, _np(v), atol=1e-6)


def test_keras2_model_file_with_kernel_colon_zero_names_loads(tmp_path):
    """A Keras 2 file as the pretrained-weight files are: batch_input_shape on the first
    layer, `<layer>/<layer>/kernel:0` datasets, layer_names / weight_names attributes."""
    dense = {"trainable": True, "dtype": "float32", "use_bias": True,
             "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
             "bias_initializer": {"class_name": "Zeros", "config": {}},
             "kernel_regularizer": None, "bias_regularizer": None,
             "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
    cfg = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "Dense", "config": dict(dense, name="dense", units=3, activation="relu",
                                               batch_input_shape=[None, 4])},
        {"class_name": "Dense", "config": dict(dense, name="dense_1", units=2,
                                               activation="linear")}]}}
    W = [RNG.random((4, 3), dtype="float32"), RNG.random(3, dtype="float32"),
         RNG.random((3, 2), dtype="float32"), RNG.random(2, dtype="float32")]
    with h5py.File(tmp_path / "k2.h5", "w") as f:
        f.attrs["model_config"] = json.dumps(cfg).encode()
        f.attrs["keras_version"] = b"2.4.0"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [b"dense", b"dense_1"]
        for i, n in enumerate(["dense", "dense_1"]):
            lg = g.create_group(n)
            lg.attrs["weight_names"] = [f"{n}/kernel:0".encode(), f"{n}/bias:0".encode()]
            lg.create_dataset(f"{n}/kernel:0", data=W[2 * i])
            lg.create_dataset(f"{n}/bias:0", data=W[2 * i + 1])
    m = axone.saving.load_model(tmp_path / "k2.h5")
    x = RNG.random((2, 4), dtype="float32")
    want = np.maximum(x @ W[0] + W[1], 0) @ W[2] + W[3]
    np.testing.assert_allclose(m.predict(x, verbose=0), want, rtol=1e-6)
    other = axone.Sequential([axone.layers.Input((4,)), axone.layers.Dense(3),
                              axone.layers.Dense(2)])
    other.load_weights(tmp_path / "k2.h5")            # the weights of a full-model file
    np.testing.assert_array_equal(other.get_weights()[2], W[2])


_LAYER_CASES = {
    "conv_pool": ((8, 8, 3), lambda L, x: L.Dense(3)(L.GlobalAveragePooling2D()(
        L.MaxPooling2D()(L.Conv2D(4, 3, padding="same", activation="relu")(x))))),
    "sepconv": ((8, 8, 3), lambda L, x: L.Flatten()(L.DepthwiseConv2D(3)(
        L.SeparableConv2D(4, 3, padding="same")(L.Conv2DTranspose(3, 3)(x))))),
    "convlstm": ((3, 5, 5, 2), lambda L, x: L.Flatten()(L.ConvLSTM2D(2, 3)(x))),
    "gqa": ((4, 6), lambda L, x: L.GroupQueryAttention(4, 4, 2)(x, x)),
    "stacked_cells": ((4, 6), lambda L, x: L.RNN([L.GRUCell(3), L.SimpleRNNCell(2)])(x)),
    "time_distributed": ((4, 5), lambda L, x: L.TimeDistributed(L.Dense(3))(x)),
    "normalization": ((6,), lambda L, x: L.Dense(2)(
        L.Normalization(mean=np.arange(6.0), variance=np.ones(6))(x))),
    "einsum_attention": ((4, 6), lambda L, x: L.Attention()(
        [L.EinsumDense("abc,cd->abd", output_shape=(None, 3), bias_axes="d")(x),
         L.EinsumDense("abc,cd->abd", output_shape=(None, 3))(x)])),
}


@pytest.mark.parametrize("case", sorted(_LAYER_CASES))
def test_layer_families_cross_the_keras_archive_both_ways(tmp_path, case):
    shape, build = _LAYER_CASES[case]
    keras.utils.set_random_seed(5)
    inp = keras.layers.Input(shape)
    k = keras.Model(inp, build(keras.layers, inp))
    x = RNG.random((3,) + shape).astype("float32")
    want = _np(k(x))
    k.save(tmp_path / "k.keras")
    a = axone.saving.load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(a.predict(x, verbose=0), want, atol=1e-5)
    a.save(tmp_path / "a.keras")
    back = keras.models.load_model(tmp_path / "a.keras")
    np.testing.assert_allclose(_np(back(x)), want, atol=1e-5)
