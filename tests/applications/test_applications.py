"""keras.applications: architectures against Keras 3 (layer names, classes, weight names and
shapes, parameter counts, outputs with the same weights), preprocess_input,
decode_predictions, the ImageNet weight cache and bad arguments."""
import functools
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

import axone
from axone import applications as A
from axone.applications import imagenet_utils

# layers Keras names automatically (zero_padding2d_3, global_average_pooling2d_1 ...): the
# counter part depends on what was built before, so it is left out of the comparison
_AUTO = re.compile(r"^(input_layer|zero_padding2d|global_average_pooling2d|global_max_pooling2d|"
                   r"max_pooling2d|conv2d|dense|flatten|rescaling|normalization|multiply|"
                   r"reshape|activation|add|dropout|batch_normalization|average_pooling2d|concatenate|re_lu)"
                   r"(_\d+)?$")


def _norm(name):
    m = _AUTO.match(name)
    return m.group(1) if m else name


def _structure(model):
    # axone lists the graph's tensor operations (x + 3.0) as OpLayer nodes; Keras lists only
    # layers
    names = [(_norm(l.name), type(l).__name__) for l in model.layers
             if type(l).__name__ != "OpLayer"]
    weights = [(_norm(w.path.split("/")[0]) + "/" + w.path.split("/")[-1], tuple(w.shape))
               for w in model.weights]
    return names, weights


def _keras(name, **kw):
    return getattr(keras.applications, name)(weights=None, **kw)


def _axone(name, **kw):
    return getattr(A, name)(weights=None, **kw)


SMALL = [
    ("VGG16", dict(include_top=False, input_shape=(32, 32, 3))),
    ("VGG19", dict(include_top=False, input_shape=(32, 32, 3), pooling="max")),
    ("ResNet50", dict(include_top=False, input_shape=(64, 64, 3), pooling="avg")),
    pytest.param("ResNet101", dict(include_top=False, input_shape=(32, 32, 3)), marks=pytest.mark.slow),
    pytest.param("ResNet152", dict(include_top=False, input_shape=(32, 32, 3)), marks=pytest.mark.slow),
    ("ResNet50V2", dict(include_top=False, input_shape=(32, 32, 3), pooling="max")),
    pytest.param("ResNet101V2", dict(include_top=False, input_shape=(32, 32, 3)), marks=pytest.mark.slow),
    pytest.param("ResNet152V2", dict(include_top=False, input_shape=(32, 32, 3)), marks=pytest.mark.slow),
    ("DenseNet121", dict(include_top=False, input_shape=(32, 32, 3), pooling="avg")),
    pytest.param("DenseNet169", dict(include_top=False, input_shape=(32, 32, 3)), marks=pytest.mark.slow),
    pytest.param("DenseNet201", dict(include_top=False, input_shape=(32, 32, 3)), marks=pytest.mark.slow),
    ("MobileNet", dict(include_top=True, input_shape=(64, 64, 3), classes=7, alpha=0.5,
                       depth_multiplier=2)),
    ("MobileNet", dict(include_top=False, input_shape=(65, 65, 3))),
    ("MobileNetV2", dict(include_top=True, input_shape=(64, 64, 3), classes=5, alpha=1.4)),
    ("MobileNetV2", dict(include_top=False, input_shape=(63, 63, 3), alpha=0.35, pooling="avg")),
    ("MobileNetV3Small", dict(include_top=True, input_shape=(64, 64, 3), classes=6)),
    ("MobileNetV3Small", dict(include_top=False, input_shape=(32, 32, 3), minimalistic=True,
                              alpha=0.75, pooling="max")),
    ("MobileNetV3Large", dict(include_top=False, input_shape=(32, 32, 3), alpha=1.25,
                              include_preprocessing=False)),
    ("EfficientNetB0", dict(include_top=True, input_shape=(32, 32, 3), classes=4)),
    pytest.param("EfficientNetB1", dict(include_top=False, input_shape=(32, 32, 3)),
                 marks=pytest.mark.slow),
    pytest.param("EfficientNetB2", dict(include_top=False, input_shape=(32, 32, 3)),
                 marks=pytest.mark.slow),
    pytest.param("EfficientNetB3", dict(include_top=False, input_shape=(32, 32, 3), pooling="avg"),
                 marks=pytest.mark.slow),
    ("InceptionV3", dict(include_top=False, input_shape=(75, 75, 3))),
    ("Xception", dict(include_top=False, input_shape=(71, 71, 3), pooling="max")),
]


def _ids(cases):
    return [f"{(c.values if hasattr(c, 'values') else c)[0]}-{i}" for i, c in enumerate(cases)]


@pytest.mark.parametrize("name,kw", SMALL, ids=_ids(SMALL))
def test_structure_matches_keras(name, kw):
    km, am = _keras(name, **kw), _axone(name, **kw)
    assert am.name == km.name
    assert am.count_params() == km.count_params()
    kn, kw_ = _structure(km)
    an, aw = _structure(am)
    assert an == kn
    assert aw == kw_
    assert tuple(am.output.shape) == tuple(km.output.shape)


@pytest.mark.parametrize("name,count", [pytest.param("VGG16", 138_357_544, marks=pytest.mark.slow), ("ResNet50", 25_636_712),
                                        ("DenseNet121", 8_062_504), ("MobileNet", 4_253_864),
                                        ("MobileNetV2", 3_538_984), ("ResNet50V2", 25_613_800),
                                        ("EfficientNetB0", 5_330_571),
                                        ("MobileNetV3Small", 2_554_968),
                                        ("MobileNetV3Large", 5_507_432),
                                        pytest.param("InceptionV3", 23_851_784,
                                                     marks=pytest.mark.slow),
                                        pytest.param("Xception", 22_910_480,
                                                     marks=pytest.mark.slow)])
def test_full_top_parameter_counts(name, count):
    assert _axone(name).count_params() == count


def test_vgg16_conv_base_count():
    assert _axone("VGG16", include_top=False).count_params() == 14_714_688


@pytest.mark.slow
@pytest.mark.parametrize("name", ["VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152",
                                  "ResNet50V2", "ResNet101V2", "ResNet152V2", "DenseNet121",
                                  "DenseNet169", "DenseNet201", "MobileNet", "MobileNetV2",
                                  "MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0",
                                  "EfficientNetB1", "EfficientNetB2", "EfficientNetB3",
                                  "InceptionV3", "Xception"])
def test_full_top_models_match_keras(name):
    km, am = _keras(name), _axone(name)
    assert am.count_params() == km.count_params()
    assert _structure(am) == _structure(km)


def _copy_random_weights(km, am, seed=0):
    """Keras's weights, with the batch norm statistics and scales moved off their initial
    values, copied layer by layer into the axone model (whose layer list matches)."""
    rng = np.random.default_rng(seed)
    alayers = [l for l in am.layers if type(l).__name__ != "OpLayer"]
    assert len(alayers) == len(km.layers)
    for kl, al in zip(km.layers, alayers):
        assert _norm(kl.name) == _norm(al.name)
        ws = [np.array(w) for w in kl.get_weights()]
        if type(kl).__name__ == "BatchNormalization":
            ws = [rng.uniform(0.5, 1.5, w.shape).astype("float32") if i in (0, 3)
                  else (0.1 * rng.standard_normal(w.shape)).astype("float32")
                  for i, w in enumerate(ws)]
        elif ws:
            ws = [w if i == 0 else (0.1 * rng.standard_normal(w.shape)).astype("float32")
                  for i, w in enumerate(ws)]
        kl.set_weights(ws)
        al.set_weights(ws)


PARITY = [("VGG16", dict(include_top=False, input_shape=(32, 32, 3), pooling="avg")),
          ("ResNet50", dict(include_top=False, input_shape=(32, 32, 3))),
          ("MobileNetV2", dict(include_top=True, input_shape=(64, 64, 3), classes=10)),
          ("DenseNet121", dict(include_top=False, input_shape=(32, 32, 3), pooling="max")),
          ("MobileNet", dict(include_top=False, input_shape=(33, 33, 3), alpha=0.25)),
          ("ResNet50V2", dict(include_top=False, input_shape=(32, 32, 3), pooling="avg")),
          ("EfficientNetB0", dict(include_top=False, input_shape=(32, 32, 3), pooling="avg")),
          ("MobileNetV3Small", dict(include_top=True, input_shape=(32, 32, 3), classes=3)),
          pytest.param("InceptionV3", dict(include_top=False, input_shape=(75, 75, 3)),
                       marks=pytest.mark.slow),
          pytest.param("Xception", dict(include_top=False, input_shape=(71, 71, 3)),
                       marks=pytest.mark.slow)]


@pytest.mark.parametrize("name,kw", PARITY, ids=_ids(PARITY))
def test_outputs_match_keras_with_same_weights(name, kw):
    import torch
    km, am = _keras(name, **kw), _axone(name, **kw)
    _copy_random_weights(km, am)
    x = np.random.default_rng(1).uniform(-1, 1, (2,) + kw["input_shape"]).astype("float32")
    with torch.no_grad():
        expected = km(torch.tensor(x), training=False).numpy()
    got = am.predict(x, verbose=0)
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)


def test_lenet5_is_the_course_model():
    m = A.LeNet5()
    assert m.count_params() == 61_706
    shapes = [tuple(l.output.shape[1:]) for l in m.layers[1:]]
    assert shapes == [(28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16), (400,), (120,), (84,),
                      (10,)]
    assert [l.count_params() for l in m.layers[1:]] == [156, 0, 2416, 0, 0, 48120, 10164, 850]
    out = m.predict(np.zeros((3, 32, 32, 1), "float32"), verbose=0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert A.LeNet5(include_top=False, pooling="avg").output.shape[1:] == (16,)
    with pytest.raises(ValueError, match="imagenet"):
        A.LeNet5(weights="imagenet")


# ---------------------------------------------------------------- preprocess_input

@pytest.mark.parametrize("module,mode", [("vgg16", "caffe"), ("vgg19", "caffe"),
                                         ("resnet", "caffe"), ("resnet50", "caffe"),
                                         ("resnet_v2", "tf"), ("densenet", "torch"),
                                         ("mobilenet", "tf"), ("mobilenet_v2", "tf"),
                                         ("inception_v3", "tf"), ("xception", "tf"),
                                         ("efficientnet", None), ("mobilenet_v3", None)])
@pytest.mark.parametrize("data_format", [None, "channels_first"])
@pytest.mark.parametrize("ndim", [3, 4])
def test_preprocess_input_matches_keras(module, mode, data_format, ndim):
    rng = np.random.default_rng(2)
    shape = (2, 5, 4, 3)[4 - ndim:] if data_format != "channels_first" else (2, 3, 5, 4)[4 - ndim:]
    x = rng.uniform(0, 255, shape).astype("float32")
    expected = getattr(keras.applications, module).preprocess_input(x.copy(), data_format=data_format)
    got = getattr(A, module).preprocess_input(x.copy(), data_format=data_format)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)
    if mode is None:      # a pass-through: the model preprocesses its inputs itself
        assert got is not None
        np.testing.assert_array_equal(got, x)
        return
    # on an axone Tensor: a new tensor with the same values
    t = getattr(A, module).preprocess_input(axone.Tensor(x.copy()), data_format=data_format)
    np.testing.assert_allclose(np.asarray(t.data), expected, rtol=1e-6, atol=1e-5)
    # integer images are converted to float32
    xi = x.astype("uint8")
    got_i = getattr(A, module).preprocess_input(xi, data_format=data_format)
    exp_i = getattr(keras.applications, module).preprocess_input(xi, data_format=data_format)
    assert got_i.dtype == np.float32
    np.testing.assert_allclose(got_i, exp_i, rtol=1e-6, atol=1e-5)


def test_preprocess_input_in_a_functional_model():
    inp = axone.layers.Input((4, 4, 3))
    out = A.resnet50.preprocess_input(inp)
    model = axone.Model(inp, out)
    x = np.random.default_rng(3).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               keras.applications.resnet50.preprocess_input(x.copy()), atol=1e-4)


def test_preprocess_input_bad_arguments():
    x = np.zeros((1, 2, 2, 3), "float32")
    with pytest.raises(ValueError, match="mode"):
        imagenet_utils.preprocess_input(x, mode="bgr")
    with pytest.raises(ValueError, match="data_format"):
        A.vgg16.preprocess_input(x, data_format="NHWC")


# ---------------------------------------------------------------- decode_predictions

KNOWN = {0: "tench", 1: "goldfish", 2: "great_white_shark", 7: "cock", 100: "black_swan",
         134: "crane", 207: "golden_retriever", 248: "Eskimo_dog", 250: "Siberian_husky",
         281: "tabby", 282: "tiger_cat", 285: "Egyptian_cat", 291: "lion", 340: "zebra",
         386: "African_elephant", 409: "analog_clock", 444: "bicycle-built-for-two",
         517: "crane", 530: "digital_clock", 607: "jack-o'-lantern", 638: "maillot",
         639: "maillot", 717: "pickup", 739: "potter's_wheel", 817: "sports_car",
         948: "Granny_Smith", 954: "banana", 963: "pizza", 999: "toilet_tissue"}


def test_class_index_file():
    path = os.path.join(os.path.dirname(imagenet_utils.__file__), "imagenet_class_index.json")
    with open(path) as f:
        index = json.load(f)
    assert sorted(index, key=int) == [str(i) for i in range(1000)]
    wnids = [index[str(i)][0] for i in range(1000)]
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000
    assert index["0"] == ["n01440764", "tench"]
    assert index["999"] == ["n15075141", "toilet_tissue"]
    for i, name in KNOWN.items():
        assert index[str(i)][1] == name, i
    assert all(" " not in v[1] for v in index.values())


def test_decode_predictions():
    preds = np.full((2, 1000), 1e-4, "float32")
    preds[0, [281, 285, 282]] = [0.5, 0.3, 0.1]
    preds[1, 409] = 0.9
    res = A.vgg16.decode_predictions(preds, top=3)
    assert [r[:2] for r in res[0]] == [("n02123045", "tabby"), ("n02124075", "Egyptian_cat"),
                                       ("n02123159", "tiger_cat")]
    assert res[0][0][2] == pytest.approx(0.5)
    assert res[1][0][:2] == ("n02708093", "analog_clock")
    assert len(A.resnet.decode_predictions(preds)[0]) == 5
    with pytest.raises(ValueError, match=r"\(samples, 1000\)"):
        A.densenet.decode_predictions(np.zeros((2, 10)))
    with pytest.raises(ValueError, match=r"\(samples, 1000\)"):
        A.densenet.decode_predictions(np.zeros(1000))


# ---------------------------------------------------------------- argument checks

@pytest.mark.parametrize("call,match", [
    (lambda: A.VGG16(weights="nope.h5"), "`weights` argument should be"),
    (lambda: A.ResNet50(weights="imagenet", classes=10), "`classes` should be 1000"),
    (lambda: A.DenseNet121(weights="imagenet", classes=10), "`classes` should be 1000"),
    (lambda: A.VGG16(weights=None, include_top=False, input_shape=(31, 64, 3)),
     "at least 32x32"),
    (lambda: A.ResNet50(weights="imagenet", input_shape=(128, 128, 3)),
     r"should be \(224, 224, 3\)"),
    (lambda: A.VGG16(weights="imagenet", include_top=False, input_shape=(64, 64, 1)),
     "3 channels"),
    (lambda: A.VGG16(weights=None, include_top=True, input_shape=(None, None, 3)),
     "static `input_shape`"),
    (lambda: A.VGG16(weights=None, include_top=False, input_shape=(64, 64)),
     "three integers"),
    (lambda: A.MobileNet(weights="imagenet", alpha=0.3), "alpha can be one of"),
    (lambda: A.MobileNet(weights="imagenet", depth_multiplier=2), "depth multiplier must be 1"),
    (lambda: A.MobileNetV2(weights="imagenet", alpha=0.3), "alpha must be one of"),
    (lambda: A.MobileNet(weights="imagenet", alpha=0.25, input_shape=(128, 128, 3),
                         classifier_activation="relu"),
     "Only `None` and `softmax`"),
    (lambda: A.VGG16(weights=None, include_top=False, pooling="sum"), "pooling"),
    (lambda: A.InceptionV3(weights=None, include_top=False, input_shape=(74, 80, 3)),
     "at least 75x75"),
    (lambda: A.Xception(weights=None, include_top=False, input_shape=(70, 80, 3)),
     "at least 71x71"),
    (lambda: A.MobileNetV3Small(weights=None, input_shape=(31, 64, 3)), "at least 32x32"),
    (lambda: A.MobileNetV3Small(weights="imagenet", alpha=0.5), "alpha can be one of"),
    (lambda: A.MobileNetV3Large(weights="imagenet", minimalistic=True, alpha=0.75),
     "alpha can be one of"),
    (lambda: A.EfficientNetB0(weights="imagenet", classes=3), "`classes` should be 1000"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_arguments_match_keras_messages():
    for kcall, acall in [
        (lambda: keras.applications.ResNet50(weights="imagenet", classes=10),
         lambda: A.ResNet50(weights="imagenet", classes=10)),
        (lambda: keras.applications.VGG16(weights=None, include_top=False, input_shape=(31, 64, 3)),
         lambda: A.VGG16(weights=None, include_top=False, input_shape=(31, 64, 3))),
        (lambda: keras.applications.MobileNetV2(weights="imagenet", alpha=0.3),
         lambda: A.MobileNetV2(weights="imagenet", alpha=0.3)),
    ]:
        with pytest.raises(ValueError) as ke:
            kcall()
        with pytest.raises(ValueError) as ae:
            acall()
        assert str(ae.value) == str(ke.value)


def test_input_tensor_and_transfer_learning():
    inp = axone.layers.Input((32, 32, 3))
    base = A.VGG16(weights=None, include_top=False, input_tensor=inp)
    assert base.inputs[0] is inp or base.input is inp
    # the course's transfer learning example: layers[1:18], GlobalMaxPooling2D, two Dense
    model = axone.Sequential([axone.layers.Input((224, 224, 3))])
    full = A.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
    for layer in full.layers[1:18]:
        layer.trainable = False
        model.add(layer)
    model.add(axone.layers.GlobalMaxPooling2D())
    model.add(axone.layers.Dense(256, activation="relu"))
    model.add(axone.layers.Dense(3, activation="softmax"))
    assert model.count_params() == 14_846_787
    with pytest.raises(TypeError, match="input_tensor"):
        A.VGG16(weights=None, include_top=False, input_tensor=np.zeros((1, 32, 32, 3)))


# ---------------------------------------------------------------- weight files

def test_weights_from_a_path(tmp_path):
    m = A.MobileNet(weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.25)
    path = str(tmp_path / "w.weights.h5")
    m.save_weights(path)
    m2 = A.MobileNet(weights=path, include_top=False, input_shape=(32, 32, 3), alpha=0.25)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)


class _Server:
    """A loopback HTTP server over one folder, counting the requests."""

    def __init__(self, root):
        self.hits = []
        hits = self.hits
        handler = functools.partial(_Handler, hits, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, hits, *a, **kw):
        self._hits = hits
        super().__init__(*a, **kw)

    def do_GET(self):
        self._hits.append(self.path)
        super().do_GET()

    def log_message(self, *a):
        pass


def test_imagenet_weights_download_cache_offline_and_checksum(tmp_path, monkeypatch):
    """weights="imagenet" fetches Keras's file name under Keras's folder once into the models
    cache, checks its hash, loads it, and then works from the cache with no network."""
    from axone.applications import resnet
    src = A.ResNet50(weights=None, include_top=False)
    served = tmp_path / "served" / "resnet"
    served.mkdir(parents=True)
    fname = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    src.save_weights(str(tmp_path / "w.weights.h5"))
    os.replace(tmp_path / "w.weights.h5", served / fname)
    md5 = hashlib.md5((served / fname).read_bytes()).hexdigest()
    monkeypatch.setitem(resnet.WEIGHTS_HASHES, "resnet50",
                        (resnet.WEIGHTS_HASHES["resnet50"][0], md5))
    monkeypatch.setenv("AXONE_HOME", str(tmp_path / "home"))
    server = _Server(tmp_path / "served")
    try:
        monkeypatch.setattr(imagenet_utils, "BASE_URL", server.url)
        m = A.ResNet50(weights="imagenet", include_top=False)
        assert server.hits == ["/resnet/" + fname]
        assert (tmp_path / "home" / "models" / fname).is_file()
        for a, b in zip(src.get_weights(), m.get_weights()):
            np.testing.assert_array_equal(a, b)
        A.ResNet50(weights="imagenet", include_top=False)
        assert len(server.hits) == 1          # from the cache
    finally:
        server.close()
    # offline: the cache is enough
    monkeypatch.setattr(imagenet_utils, "BASE_URL", "http://127.0.0.1:9/")
    A.ResNet50(weights="imagenet", include_top=False)
    # a corrupted cache and no network: the error names the file, the URL and the folder
    (tmp_path / "home" / "models" / fname).write_bytes(b"corrupted")
    with pytest.raises(OSError) as e:
        A.ResNet50(weights="imagenet", include_top=False)
    msg = str(e.value)
    assert fname in msg and str(tmp_path / "home" / "models") in msg and md5 in msg


def test_imagenet_weights_without_network_or_cache_say_where(tmp_path, monkeypatch):
    monkeypatch.setenv("AXONE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(imagenet_utils, "BASE_URL", "http://127.0.0.1:9/")
    with pytest.raises(OSError) as e:
        A.VGG16(weights="imagenet", include_top=False, input_shape=(32, 32, 3))
    msg = str(e.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg
    assert str(tmp_path / "home" / "models") in msg
    assert "6d6bbae143d832006294945121d1f1fc" in msg


def test_keras_published_file_names_and_urls(monkeypatch):
    """The URL asked for is Keras's, for each family (checked without downloading)."""
    asked = []

    def fake_get_file(fname, origin, cache_subdir, file_hash):
        asked.append((fname, origin, cache_subdir, file_hash))
        raise RuntimeError("stop")

    import axone.utils
    monkeypatch.setattr(axone.utils, "get_file", fake_get_file)
    base = "https://storage.googleapis.com/tensorflow/keras-applications/"
    cases = [
        (lambda: A.VGG16(include_top=False, input_shape=(32, 32, 3)),
         base + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
         "6d6bbae143d832006294945121d1f1fc"),
        (lambda: A.VGG19(include_top=False, input_shape=(32, 32, 3)),
         base + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
         "253f8cb515780f3b799900260a226db6"),
        (lambda: A.ResNet50V2(include_top=False, input_shape=(32, 32, 3)),
         base + "resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
         "fac2f116257151a9d068a22e544a4917"),
        (lambda: A.DenseNet121(include_top=False, input_shape=(32, 32, 3)),
         base + "densenet/densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
         "30ee3e1110167f948a6b9946edeeb738"),
        (lambda: A.MobileNet(alpha=0.25, input_shape=(128, 128, 3)),
         base + "mobilenet/mobilenet_2_5_128_tf.h5", None),
        (lambda: A.MobileNetV2(alpha=0.35, include_top=False, input_shape=(96, 96, 3)),
         base + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5",
         None),
    ]
    cases += [
        (lambda: A.EfficientNetB0(include_top=False, input_shape=(32, 32, 3)),
         "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
         "50bc09e76180e00e4465e1a485ddc09d"),
        (lambda: A.MobileNetV3Small(input_shape=(32, 32, 3)),
         base + "mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float.h5",
         "8768d4c2e7dee89b9d02b2d03d65d862"),
        (lambda: A.MobileNetV3Large(include_top=False, minimalistic=True),
         base + "mobilenet_v3/weights_mobilenet_v3_large_minimalistic_224_1.0_float_no_top_v2.h5",
         "ec5221f64a2f6d1ef965a614bdae7973"),
        (lambda: A.InceptionV3(include_top=False, input_shape=(75, 75, 3)),
         base + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
         "bcbd6486424b2319ff4ef7d526e38f63"),
        (lambda: A.Xception(include_top=False, input_shape=(71, 71, 3)),
         base + "xception/xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
         "b0042744bf5b25fce3cb969f33bebb97"),
    ]
    for call, url, h in cases:
        with pytest.raises(RuntimeError, match="stop"):
            call()
        fname, origin, subdir, file_hash = asked[-1]
        assert origin == url and fname == url.rsplit("/", 1)[1]
        assert subdir == "models" and file_hash == h


# ---------------------------------------------------------------- the keras alias

def test_keras_alias_resolves_applications():
    code = (
        "import axone.compat as c; c.install_keras_alias()\n"
        "import keras\n"
        "from keras.applications.vgg16 import VGG16, preprocess_input\n"
        "from keras.applications import ResNet50, MobileNetV2\n"
        "import tensorflow as tf\n"
        "m = tf.keras.applications.resnet50.ResNet50(weights=None, include_top=False)\n"
        "print(VGG16 is keras.applications.VGG16, m.count_params(),"
        " keras.applications.densenet.DenseNet121.__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "23587712", "axone.applications.densenet"]


@pytest.mark.parametrize("name,kw", [
    ("MobileNetV3Small", dict(input_shape=(32, 32, 3), classes=3)),
    ("EfficientNetB0", dict(include_top=False, input_shape=(32, 32, 3))),
    ("ResNet50V2", dict(include_top=False, input_shape=(32, 32, 3), pooling="avg"))])
def test_get_config_round_trip(name, kw):
    m = _axone(name, **kw)
    m2 = axone.Model.from_config(m.get_config())
    assert m2.name == m.name and m2.count_params() == m.count_params()
    assert sorted(l.name for l in m2.layers) == sorted(l.name for l in m.layers)
    for layer in m.layers:
        m2.get_layer(layer.name).set_weights(layer.get_weights())
    x = np.random.default_rng(4).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(m2.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-5)


def _keras_legacy_h5(kmodel, path):
    """Write ``kmodel``'s weights as Keras writes its published application files (the Keras 2
    HDF5 layout: one group per layer, in layer order)."""
    h5py = pytest.importorskip("h5py")
    from keras.src.legacy.saving import legacy_h5_format
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, kmodel)


@pytest.mark.parametrize("name,kw,subdir,fname", [
    ("MobileNetV2", dict(include_top=False, input_shape=(96, 96, 3), alpha=0.35), "mobilenet_v2/",
     "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"),
    ("MobileNetV3Small", dict(include_top=False, input_shape=(224, 224, 3), alpha=0.75),
     "mobilenet_v3/", "weights_mobilenet_v3_small_224_0.75_float_no_top_v2.h5"),
])
def test_imagenet_weights_in_keras_legacy_h5_format(name, kw, subdir, fname, tmp_path, monkeypatch):
    """A Keras-written legacy .h5 weight file, served under Keras's name, loads into the axone
    model (by layer order, as Keras loads it) and gives Keras's outputs."""
    import torch
    km = getattr(keras.applications, name)(weights=None, **kw)
    rng = np.random.default_rng(5)
    km.set_weights([(w + 0.05 * rng.standard_normal(w.shape)).astype("float32") if w.ndim == 1
                    else w for w in km.get_weights()])
    served = tmp_path / "served" / subdir.strip("/")
    served.mkdir(parents=True)
    _keras_legacy_h5(km, str(served / fname))
    if name == "MobileNetV3Small":
        from axone.applications import mobilenet_v3
        md5 = hashlib.md5((served / fname).read_bytes()).hexdigest()
        monkeypatch.setitem(mobilenet_v3.WEIGHTS_HASHES, "small_224_0.75_float",
                            (mobilenet_v3.WEIGHTS_HASHES["small_224_0.75_float"][0], md5))
    monkeypatch.setenv("AXONE_HOME", str(tmp_path / "home"))
    server = _Server(tmp_path / "served")
    try:
        monkeypatch.setattr(imagenet_utils, "BASE_URL", server.url)
        am = getattr(A, name)(weights="imagenet", **kw)
    finally:
        server.close()
    assert server.hits == ["/" + subdir + fname]
    for k, a in zip(km.weights, am.weights):
        assert a.path == k.path
        np.testing.assert_array_equal(np.asarray(a.numpy() if hasattr(a, "numpy") else a),
                                      np.asarray(k.numpy()))
    x = np.random.default_rng(6).uniform(0, 255, (1,) + kw["input_shape"]).astype("float32")
    x = A.mobilenet_v2.preprocess_input(x) if name == "MobileNetV2" else x
    with torch.no_grad():
        expected = km(torch.tensor(x), training=False).numpy()
    np.testing.assert_allclose(am.predict(x, verbose=0), expected, rtol=1e-4,
                               atol=1e-4 * max(1.0, float(np.abs(expected).max())))
