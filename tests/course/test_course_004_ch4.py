"""Course 004, chapter 4 (CNN architectures and transfer learning): its listings run through the
``tensorflow`` alias (``import tensorflow as tf`` gives ``tf.keras`` = axone).

The listings are copied as printed (trailing spaces included); ``test_listings_are_course_text``
checks that each occurs in the course file.  The harness changes only what cannot run as printed:

* ``weights='imagenet'`` becomes ``weights=None``: the fast tests do not download the ImageNet
  weight files, so every model starts from a random initialization; the architectures, layer
  names and parameter counts are those the course gives;
* the ResNet50 listing is printed as the bold call ``ResNet50()`` followed by its argument block
  ending in ``)``: the harness runs ``ResNet50(`` + the block;
* ``(...)`` in ``ResNet101(...)``, ``ResNet152(...)`` and ``DenseNetXXX(...)`` becomes
  ``(weights=None)``, and ``XXX`` each of the names the course lists;
* the annotation ``← Mode Apprentissage`` printed after ``s_model(inputs, training=True)`` is
  dropped (it is the slide's caption of that argument, not code);
* ``n`` of ``model.layers[4:n+1]`` is given by the harness.
"""
import os
import re

import numpy as np
import pytest

import axone
from axone.compat import install_keras_alias, uninstall_keras_alias

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# --------------------------------------------------------------------------- listings
VGG16_DEFAULT = (
    "tf.keras.applications.vgg16.VGG16(include_top=True,  \n"
    "weights='imagenet', input_tensor=None, input_shape=None,  \n"
    "pooling=None, classes=1000, classifier_activation='softmax')\n")

RESNET50_CALL = "tf.keras.applications.resnet50.ResNet50()"
RESNET50_ARGS = (
    "include_top=True,weights='imagenet', input_shape=None,  \n"
    "pooling=None, classes=1000, classifier_activation='softmax')\n")

RESNET101 = "tf.keras.applications.resnet.ResNet101(...)"
RESNET152 = "tf.keras.applications.resnet.ResNet152(...)"
DENSENET_XXX = "tf.keras.applications.densenet.DenseNetXXX(...)"
DENSENET_NAMES = ("121", "169", "201", "264")      # "XXX= 121 ou 169 ou 201 ou 264"

FROZEN = "model.trainable = False"
UNFROZEN = "model.trainable= True"
FINE_TUNE_LAYERS = ("model.layers[1].trainable= True",
                    "model.layers[2:4].trainable= False",
                    "model.layers[4:n+1].trainable= True")

TL_VGG = "model_vgg=tf.keras.applications.vgg16.VGG16(include_top=True, weights='imagenet')\n"
TL_S_MODEL = (
    "s_model= tf.keras.Sequential()  \n"
    "for layer in model_vgg.layers[1:18]:  \n"
    "    s_model.add(layer)  \n"
    "s_model.trainable=True\n")
TL_N_MODEL = (
    "inputs = tf.keras.Input(shape=(224, 224, 3))  \n"
    "x=s_model(inputs, training=True) \u2190 Mode Apprentissage  \n"
    "  \n"
    "x=tf.keras.layers.GlobalMaxPooling2D()(x)  \n"
    "x=tf.keras.layers.Dense(256, activation=\"relu\")(x)  \n"
    "outputs=tf.keras.layers.Dense(3, activation=\"softmax\")(x)  \n"
    "  \n"
    "n_model=tf.keras.Model(inputs, outputs)\n")

# the counts of the course / Keras 3
VGG16_PARAMS = 138_357_544
VGG16_CONV_BASE = 14_714_688
HEAD_MODEL = 14_846_787
HEAD_ONLY = 512 * 256 + 256 + 256 * 3 + 3        # Dense(256) on 512 channels, Dense(3)
RESNET_PARAMS = {"ResNet50": 25_636_712, "ResNet101": 44_707_176, "ResNet152": 60_419_944}
DENSENET_PARAMS = {"121": 8_062_504, "169": 14_307_880, "201": 20_242_984}


# --------------------------------------------------------------------------- harness
def _no_imagenet(code):
    """The one change for the fast tests: no ImageNet weight download."""
    assert "weights='imagenet'" in code
    return code.replace("weights='imagenet'", "weights=None")


def _strip_annotation(code):
    return code.replace(" \u2190 Mode Apprentissage", "")


@pytest.fixture
def tf():
    install_keras_alias()
    axone.utils.clear_session()
    try:
        import tensorflow
        yield tensorflow
    finally:
        uninstall_keras_alias()


def _run(code, ns):
    exec(compile(code, "<course 004 ch. 4 listing>", "exec"), ns)
    return ns


def _eval(code, ns):
    return eval(compile(code, "<course 004 ch. 4 listing>", "eval"), ns)


def _course_text():
    course_dir = os.path.join(os.path.dirname(REPO_ROOT), "shared", "course")
    if not os.path.isdir(course_dir):
        course_dir = "/work/shared/course"
    files = [f for f in os.listdir(course_dir) if f.startswith("004_")] if os.path.isdir(course_dir) else []
    if not files:
        pytest.skip("course 004 text not available")
    with open(os.path.join(course_dir, files[0]), encoding="utf-8") as f:
        return f.read()


def _images(n, size=224, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, size=(n, size, size, 3)).astype("float32")


# --------------------------------------------------------------------------- text
def test_listings_are_course_text():
    text = _course_text()
    lines = text.splitlines()
    for block in (VGG16_DEFAULT, RESNET50_ARGS, TL_VGG, TL_S_MODEL, TL_N_MODEL):
        assert block.rstrip("\n") in text, f"listing not in course 004:\n{block}"
    assert f"**{RESNET50_CALL}**" in lines
    assert f"**{RESNET101}**" in lines and f"**{RESNET152}**" in lines
    assert f"`{DENSENET_XXX}`" in lines
    assert "XXX= " + " ou ".join(DENSENET_NAMES) in lines
    assert f"**{FROZEN}**" in lines and f"`{UNFROZEN}`" in lines
    for line in FINE_TUNE_LAYERS:
        assert f"`{line}`" in lines, line


# --------------------------------------------------------------------------- architectures
def test_vgg16_default_listing(tf):
    ns = {"tf": tf}
    model = _eval(_no_imagenet(VGG16_DEFAULT), ns)
    assert isinstance(model, axone.Model)
    assert model.name == "vgg16"
    assert model.count_params() == VGG16_PARAMS
    assert model.input_shape == (None, 224, 224, 3) and model.output_shape == (None, 1000)
    convs = [l for l in model.layers if type(l).__name__ == "Conv2D"]
    pools = [l for l in model.layers if type(l).__name__ == "MaxPooling2D"]
    dense = [l for l in model.layers if type(l).__name__ == "Dense"]
    # the course: 13 convolutions (all padding="same"), 3 fully connected layers
    assert len(convs) == 13 and all(c.padding == "same" for c in convs)
    assert len(pools) == 5 and len(dense) == 3
    assert [l.name for l in dense] == ["fc1", "fc2", "predictions"]
    assert dense[-1].get_config()["activation"] == "softmax"
    p = model.predict(_images(1), verbose=0)
    assert p.shape == (1, 1000)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_vgg16_bad_input_shape_with_top(tf):
    # include_top=True with ImageNet weights needs (224, 224, 3), as Keras
    with pytest.raises(ValueError, match="224"):
        tf.keras.applications.vgg16.VGG16(include_top=True, weights="imagenet",
                                          input_shape=(32, 32, 3))


def test_resnet50_listing(tf):
    ns = {"tf": tf}
    call = RESNET50_CALL[:-1] + _no_imagenet(RESNET50_ARGS)    # "ResNet50(" + the argument block
    model = _eval(call, ns)
    assert model.name == "resnet50"
    assert model.count_params() == RESNET_PARAMS["ResNet50"]
    assert model.output_shape == (None, 1000)
    adds = [l for l in model.layers if type(l).__name__ == "Add"]
    assert len(adds) == 16                      # 3 + 4 + 6 + 3 residual blocks
    p = model.predict(_images(1), verbose=0)
    assert p.shape == (1, 1000)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("listing,name", [(RESNET101, "ResNet101"), (RESNET152, "ResNet152")])
def test_resnet101_152_listings(tf, listing, name):
    model = _eval(listing.replace("(...)", "(weights=None)"), {"tf": tf})
    assert model.name == name.lower()
    assert model.count_params() == RESNET_PARAMS[name]
    blocks = {"ResNet101": 3 + 4 + 23 + 3, "ResNet152": 3 + 8 + 36 + 3}[name]
    assert len([l for l in model.layers if type(l).__name__ == "Add"]) == blocks


@pytest.mark.parametrize("xxx", DENSENET_NAMES)
def test_densenet_listing(tf, xxx):
    listing = DENSENET_XXX.replace("XXX", xxx).replace("(...)", "(weights=None)")
    if xxx not in DENSENET_PARAMS:
        # Keras 3 has DenseNet121, 169 and 201 only: DenseNet264 of the course's table is not
        # a keras.applications name, and the alias says so
        with pytest.raises(AttributeError, match="DenseNet264"):
            _eval(listing, {"tf": tf})
        return
    model = _eval(listing, {"tf": tf})
    assert model.name == f"densenet{xxx}"
    assert model.count_params() == DENSENET_PARAMS[xxx]
    assert model.output_shape == (None, 1000)
    assert type(model.layers[-2]).__name__ == "GlobalAveragePooling2D"


def test_densenet121_forward_on_small_images(tf):
    # the architecture of the listing on small images (include_top=False, 32x32, the minimum)
    model = tf.keras.applications.densenet.DenseNet121(include_top=False, weights=None,
                                                       input_shape=(32, 32, 3), pooling="avg")
    assert model.count_params() == DENSENET_PARAMS["121"] - (1024 * 1000 + 1000)
    out = model.predict(_images(2, 32), verbose=0)
    assert out.shape == (2, 1024) and np.isfinite(out).all()


# --------------------------------------------------------------------------- transfer learning
def _transfer_listing(tf):
    ns = {"tf": tf}
    _run(_no_imagenet(TL_VGG), ns)
    _run(TL_S_MODEL, ns)
    _run(_strip_annotation(TL_N_MODEL), ns)
    return ns


def test_transfer_learning_listing(tf):
    ns = _transfer_listing(tf)
    model_vgg, s_model, n_model = ns["model_vgg"], ns["s_model"], ns["n_model"]
    assert model_vgg.count_params() == VGG16_PARAMS
    # layers[1:18]: the 13 convolutions and the first 4 poolings, up to block5_conv3
    names = [l.name for l in s_model.layers]
    assert names[0] == "block1_conv1" and names[-1] == "block5_conv3" and len(names) == 17
    # the layers are shared, not copied: s_model uses model_vgg's weights
    assert all(a is b for a, b in zip(s_model.layers, model_vgg.layers[1:18]))
    assert s_model.count_params() == VGG16_CONV_BASE
    assert n_model.count_params() == HEAD_MODEL == VGG16_CONV_BASE + HEAD_ONLY
    assert n_model.output_shape == (None, 3)
    assert s_model.output_shape == (None, 14, 14, 512)
    assert [type(l).__name__ for l in n_model.layers[-3:]] == [
        "GlobalMaxPooling2D", "Dense", "Dense"]
    x = _images(2)
    p = n_model.predict(x, verbose=0)
    assert p.shape == (2, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    # the same features through model_vgg's own graph (shared layers, same weights)
    feat = tf.keras.Model(model_vgg.input, model_vgg.get_layer("block5_conv3").output)
    np.testing.assert_allclose(s_model.predict(x, verbose=0), feat.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_frozen_then_unfrozen_pretrained_model(tf):
    """Frozen: ``model.trainable = False`` on the conv base trains only the new head;
    unfrozen: ``model.trainable= True`` trains every weight (course § Fine-tuning)."""
    ns = _transfer_listing(tf)
    n_model = ns["n_model"]
    ns["model"] = ns["s_model"]
    _run(FROZEN, ns)
    assert sum(int(np.prod(w.shape)) for w in n_model.trainable_weights) == HEAD_ONLY
    assert len(n_model.non_trainable_weights) == 26
    n_model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = _images(2, seed=1)
    y = np.eye(3, dtype="float32")[[0, 2]]
    base0 = [w.copy() for w in ns["s_model"].get_weights()]
    head0 = [w.copy() for w in n_model.get_weights()[-4:]]
    loss = n_model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert all(np.array_equal(a, b) for a, b in zip(base0, ns["s_model"].get_weights()))
    assert all(not np.array_equal(a, b) for a, b in zip(head0, n_model.get_weights()[-4:]))
    _run(UNFROZEN, ns)
    assert sum(int(np.prod(w.shape)) for w in n_model.trainable_weights) == HEAD_MODEL


def test_fine_tuning_some_layers(tf):
    """``model.layers[1].trainable= True`` runs as printed.  The two slice lines, as printed, set
    an attribute of a Python list and fail exactly as they do with Keras (``model.layers`` is a
    list); the loop over the slice is what they mean."""
    ns = {"tf": tf, "n": 6}
    ns["model"] = tf.keras.applications.vgg16.VGG16(include_top=False, weights=None,
                                                    input_shape=(32, 32, 3))
    model = ns["model"]
    _run(FROZEN, ns)
    _run(FINE_TUNE_LAYERS[0], ns)
    # the model stays frozen: a frozen container freezes all its layers' weights (Keras 3)
    assert model.layers[1].trainable and not model.trainable
    assert model.trainable_weights == []
    _run(UNFROZEN, ns)
    for line in FINE_TUNE_LAYERS[1:]:
        with pytest.raises(AttributeError, match="list"):
            _run(line, ns)
    for layer in model.layers[2:4]:
        layer.trainable = False
    for layer in model.layers[4:ns["n"] + 1]:
        layer.trainable = True
    frozen = {l.name for l in model.layers if l.weights and not l.trainable}
    assert frozen == {"block1_conv2"}            # layers[3] is block1_pool, without weights
    assert len(model.trainable_weights) == 26 - 2


# --------------------------------------------------------------------------- ImageNet weights
@pytest.mark.slow
def test_transfer_listing_verbatim_with_imagenet_weights(tf):
    """The listing with ``weights='imagenet'`` as printed: needs the Keras weight file
    ``vgg16_weights_tf_dim_ordering_tf_kernels.h5`` in the Keras cache (and h5py)."""
    pytest.importorskip("h5py")
    cache = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models",
                         "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
    if not os.path.exists(cache):
        pytest.skip("ImageNet VGG16 weight file not in the Keras cache")
    ns = {"tf": tf}
    _run(TL_VGG, ns)
    _run(TL_S_MODEL, ns)
    _run(_strip_annotation(TL_N_MODEL), ns)
    assert ns["n_model"].count_params() == HEAD_MODEL
    assert ns["n_model"].predict(_images(1), verbose=0).shape == (1, 3)
