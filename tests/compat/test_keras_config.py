"""keras.config and keras.backend through axone's alias, against Keras 3 on its PyTorch
backend: names, defaults, validation and messages, the data_format default of layers and ops,
fit's debugging caps, dtype policies, the session switches and get_uid / result_type."""
import importlib
import warnings

import numpy as np
import pytest

import keras
from keras.src.backend import config as keras_config_src
from keras.src.saving import serialization_lib as keras_serialization

import axone
from axone import config, layers, ops
from axone.compat import install_keras_alias, uninstall_keras_alias, keras_backend as kb

assert keras.backend.backend() == "torch", "these tests need KERAS_BACKEND=torch (tests/conftest.py)"

CONFIG_NAMES = [
    "backend", "disable_flash_attention", "disable_interactive_logging", "dtype_policy",
    "enable_flash_attention", "enable_interactive_logging", "enable_traceback_filtering",
    "enable_unsafe_deserialization", "disable_traceback_filtering", "epsilon", "floatx",
    "image_data_format", "is_flash_attention_enabled", "is_interactive_logging_enabled",
    "is_nnx_enabled", "is_traceback_filtering_enabled", "max_epochs", "max_steps_per_epoch",
    "set_backend", "set_dtype_policy", "set_epsilon", "set_floatx", "set_image_data_format",
    "set_max_epochs", "set_max_steps_per_epoch"]
BACKEND_NAMES = [
    "backend", "clear_session", "epsilon", "floatx", "get_uid", "image_data_format",
    "is_float_dtype", "is_int_dtype", "is_keras_tensor", "result_type", "set_epsilon",
    "set_floatx", "set_image_data_format", "standardize_dtype"]


@pytest.fixture
def alias():
    install_keras_alias()
    try:
        yield importlib.import_module("keras.config"), importlib.import_module("keras.backend")
    finally:
        uninstall_keras_alias()


@pytest.fixture
def restore():
    """Put every setting both libraries' tests change back afterwards."""
    yield
    config.set_image_data_format("channels_last")
    keras.config.set_image_data_format("channels_last")
    config.set_max_epochs(None)
    config.set_max_steps_per_epoch(None)
    keras.config.set_max_epochs(None)
    keras.config.set_max_steps_per_epoch(None)
    axone.backend.set_floatx("float32")
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")
    axone.backend.clear_session(free_memory=False)
    keras.backend.clear_session(free_memory=False)


def _message(fn, *args):
    with pytest.raises(Exception) as info:
        fn(*args)
    return type(info.value), str(info.value)


# ------------------------------------------------------------------ names
def test_alias_resolves_every_keras_name(alias):
    kc, kbk = alias
    assert sorted(CONFIG_NAMES) == sorted(n for n in dir(keras.config) if not n.startswith("_"))
    assert sorted(BACKEND_NAMES) == sorted(n for n in dir(keras.backend) if not n.startswith("_"))
    for n in CONFIG_NAMES:
        assert hasattr(kc, n) and callable(getattr(kc, n)), n
    for n in BACKEND_NAMES:
        assert hasattr(kbk, n) and callable(getattr(kbk, n)), n
    # axone.backend's own names stay reachable, read live
    assert kbk.rng() is axone.backend.rng() and kbk.set_seed is axone.backend.set_seed
    assert not hasattr(kbk, "no_such_name")
    with pytest.raises(AttributeError, match="no_such_name"):
        kbk.no_such_name
    import keras as aliased
    assert aliased.config.image_data_format() == "channels_last"


def test_defaults_match_keras():
    for name in ("image_data_format", "floatx", "epsilon", "max_epochs", "max_steps_per_epoch",
                 "is_traceback_filtering_enabled", "is_flash_attention_enabled",
                 "is_nnx_enabled", "is_interactive_logging_enabled"):
        assert getattr(config, name)() == getattr(keras.config, name)(), name
    assert config.backend() == "numpy" and kb.backend() == "numpy"
    assert repr(config.dtype_policy()) == repr(keras.config.dtype_policy())
    assert config.dtype_policy().compute_dtype == keras.config.dtype_policy().compute_dtype


# ------------------------------------------------------------------ data format
@pytest.mark.parametrize("value", [None, "channels_last", "channels_first", "Channels_First",
                                   "CHANNELS_LAST", "nhwc", "channels-last", 3, ""])
def test_standardize_data_format_matches_keras(value):
    try:
        want = keras_config_src.standardize_data_format(value)
    except ValueError as e:
        kind, msg = _message(config.standardize_data_format, value)
        assert kind is ValueError and msg == str(e)
        kind, msg = _message(config.standardize_data_format, value, "Conv2D 'c'")
        assert msg == f"Conv2D 'c': {e}"
        kind, msg = _message(config.set_image_data_format, value)
        assert kind is ValueError and msg == _message(keras.config.set_image_data_format, value)[1]
        return
    assert config.standardize_data_format(value) == want
    if value is not None:
        config.set_image_data_format(value)
        try:
            assert config.image_data_format() == want
        finally:
            config.set_image_data_format("channels_last")


def test_channels_first_default_reaches_layers_and_ops(restore):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8)).astype("float32")          # N, C, H, W
    before = layers.Conv2D(4, 3)
    config.set_image_data_format("channels_first")
    keras.config.set_image_data_format("channels_first")
    made = [layers.Conv2D(4, 3), layers.MaxPooling2D(), layers.AveragePooling2D(),
            layers.GlobalAveragePooling2D(), layers.Conv2DTranspose(2, 3),
            layers.DepthwiseConv2D(3), layers.SeparableConv2D(2, 3), layers.Flatten(),
            layers.ConvLSTM2D(2, 3), layers.AdaptiveAveragePooling2D(2),
            layers.RandomGrayscale(), layers.STFTSpectrogram()]
    assert all(m.data_format == "channels_first" for m in made), \
        [(type(m).__name__, m.data_format) for m in made]
    assert before.data_format == "channels_last"
    # Conv2D + MaxPooling2D built under the new default against Keras's, same weights
    conv, pool = made[0], made[1]
    kconv, kpool = keras.layers.Conv2D(4, 3), keras.layers.MaxPooling2D()
    assert kconv.data_format == "channels_first"
    kconv.build(x.shape)
    conv.build(x.shape)
    k, b = rng.standard_normal((3, 3, 3, 4)).astype("float32"), rng.standard_normal(4).astype("float32")
    kconv.set_weights([k, b])
    conv.set_weights([k, b])
    want = keras.ops.convert_to_numpy(kpool(kconv(x)))
    got = pool(conv(x)).numpy()
    assert got.shape == want.shape == (2, 4, 3, 3)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # ops with data_format=None follow it too, as Keras's do
    img = rng.random((2, 3, 6, 5)).astype("float32")
    np.testing.assert_allclose(ops.image.rgb_to_grayscale(img).numpy(),
                               keras.ops.convert_to_numpy(keras.ops.image.rgb_to_grayscale(img)),
                               rtol=1e-6)
    np.testing.assert_allclose(ops.image.resize(img, (4, 4)).numpy(),
                               ops.image.resize(img, (4, 4), data_format="channels_first").numpy())
    assert ops.image.resize(img, (4, 4)).shape == (2, 3, 4, 4)
    config.set_image_data_format("channels_last")
    assert layers.Conv2D(4, 3).data_format == "channels_last"
    assert ops.image.resize(img.transpose(0, 2, 3, 1), (4, 4)).shape == (2, 4, 4, 3)


def test_layer_and_op_errors_name_the_caller():
    with pytest.raises(ValueError, match=r"MaxPooling2D .*data_format=nchw"):
        layers.MaxPooling2D(data_format="NCHW")
    with pytest.raises(ValueError, match=r"Conv2D .*Received: data_format=bad"):
        layers.Conv2D(2, 3, data_format="bad")
    with pytest.raises(ValueError, match=r"^resize: The `data_format` argument"):
        ops.image.resize(np.zeros((4, 4, 3), "float32"), (2, 2), data_format="bad")
    with pytest.raises(ValueError, match=r"^rgb_to_hsv: The `data_format` argument"):
        ops.image.rgb_to_hsv(np.zeros((4, 4, 3), "float32"), data_format="x")
    with pytest.raises(ValueError, match=r"Flatten .*data_format"):
        layers.Flatten(data_format="last")
    assert layers.Conv2D(2, 3, data_format="Channels_First").data_format == "channels_first"


# ------------------------------------------------------------------ fit's caps
def _counting(lib):
    class Count(lib.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs, self.batches, self.val_batches = 0, [], 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs += 1
            self.batches.append(0)

        def on_train_batch_end(self, batch, logs=None):
            self.batches[-1] += 1

        def on_test_batch_end(self, batch, logs=None):
            self.val_batches += 1
    return Count()


def _fit_counts(lib, cap_epochs, cap_steps, **fit_kw):
    lib.config.set_max_epochs(cap_epochs)
    lib.config.set_max_steps_per_epoch(cap_steps)
    model = lib.Sequential([lib.Input((3,)), lib.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    cb = _counting(lib)
    x = np.random.default_rng(1).standard_normal((100, 3)).astype("float32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = model.fit(x, x[:, :1], verbose=0, callbacks=[cb], **fit_kw)
    msgs = sorted({str(w.message) for w in caught if str(w.message).startswith("Limiting")})
    return cb.epochs, cb.batches, cb.val_batches, len(hist.history.get("loss", [])), msgs


@pytest.mark.parametrize("caps,fit_kw", [
    ((2, None), dict(epochs=5)),
    ((7, None), dict(epochs=3)),
    ((2, None), dict(epochs=5, initial_epoch=3)),
    ((None, 3), dict(epochs=2)),
    ((None, 3), dict(epochs=2, batch_size=10)),
    ((None, 30), dict(epochs=1, batch_size=10, steps_per_epoch=5)),
    ((2, 1), dict(epochs=3, batch_size=10, validation_split=0.2)),
])
def test_max_epochs_and_steps_cap_fit_as_keras(restore, caps, fit_kw):
    got = _fit_counts(axone, *caps, **fit_kw)
    want = _fit_counts(keras, *caps, **fit_kw)
    assert got == want


def test_limit_steps_for_evaluate_and_predict(restore):
    assert config.limit_steps(None) is None and config.limit_steps(9) == 9
    config.set_max_steps_per_epoch(4)
    with pytest.warns(UserWarning, match="Limiting steps_per_epoch to 4"):
        assert config.limit_steps(None) == 4
    with pytest.warns(UserWarning, match="Limiting steps_per_epoch to 4"):
        assert config.limit_steps(10) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert config.limit_steps(3) == 3


def test_max_epochs_validation_and_env(restore):
    assert config.max_epochs() is None
    config.set_max_epochs(4)
    assert config.max_epochs() == 4
    for bad in (-1, 2.5, "3", True):
        with pytest.raises(ValueError, match="set_max_epochs"):
            config.set_max_epochs(bad)
        with pytest.raises(ValueError, match="set_max_steps_per_epoch"):
            config.set_max_steps_per_epoch(bad)
    config.set_max_epochs(0)                       # falsy: no cap, as Keras
    assert _fit_counts(axone, 0, None, epochs=2)[0] == 2
    import subprocess
    import sys
    code = "import axone.config as c; print(c.max_epochs(), c.max_steps_per_epoch())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"KERAS_MAX_EPOCHS": "3", "KERAS_MAX_STEPS_PER_EPOCH": "7",
                              "PATH": "/usr/bin:/bin"}, check=True).stdout.split()
    assert out == ["3", "7"]


# ------------------------------------------------------------------ dtype policy
def test_dtype_policy_sets_floatx(restore):
    config.set_dtype_policy("float64")
    assert config.floatx() == "float64" and config.dtype_policy() == config.DTypePolicy("float64")
    assert repr(config.dtype_policy()) == '<DTypePolicy "float64">'
    d = layers.Dense(2)
    d.build((None, 3))
    assert d.kernel.numpy().dtype == np.float64
    config.set_dtype_policy(config.DTypePolicy("float16"))
    assert config.floatx() == "float16"
    config.set_dtype_policy("float32")
    assert config.floatx() == "float32"


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "int8_from_float32",
                                    "bfloat16", "int32"])
def test_dtype_policy_not_implemented(policy):
    with pytest.raises(NotImplementedError, match=policy):
        config.set_dtype_policy(policy)
    assert config.floatx() == "float32"


@pytest.mark.parametrize("policy", ["foo", 3, None])
def test_dtype_policy_errors_match_keras(restore, policy):
    want = _message(keras.config.set_dtype_policy, policy)
    assert _message(config.set_dtype_policy, policy) == want


# ------------------------------------------------------------------ switches
def test_backend_and_set_backend():
    config.set_backend("numpy")
    assert config.backend() == "numpy"
    with pytest.raises(NotImplementedError, match="'torch'"):
        config.set_backend("torch")
    with pytest.raises(TypeError, match="set_backend"):
        config.set_backend(None)
    assert config.is_nnx_enabled() is False


def test_flash_attention_switch_as_keras(restore):
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=4)
    q = np.random.default_rng(2).standard_normal((1, 5, 8)).astype("float32")
    before = mha(q, q).numpy()
    for lib in (config, keras.config):
        lib.disable_flash_attention()
    assert config.is_flash_attention_enabled() is keras.config.is_flash_attention_enabled() is False
    np.testing.assert_array_equal(mha(q, q).numpy(), before)
    with pytest.warns(UserWarning, match="no flash attention kernel"):
        config.enable_flash_attention()
    keras.config.enable_flash_attention()
    assert config.is_flash_attention_enabled() is keras.config.is_flash_attention_enabled()
    np.testing.assert_array_equal(mha(q, q).numpy(), before)
    with pytest.raises(NotImplementedError, match="flash_attention"):
        layers.MultiHeadAttention(num_heads=2, key_dim=4, flash_attention=True)
    config.disable_flash_attention()
    keras.config.disable_flash_attention()
    kb.clear_session(free_memory=False)
    keras.backend.clear_session(free_memory=False)
    assert config.is_flash_attention_enabled() is keras.config.is_flash_attention_enabled()


def test_traceback_filtering_switch_as_keras(restore):
    for lib in (config, keras.config):
        lib.disable_traceback_filtering()
    assert config.is_traceback_filtering_enabled() is False
    assert keras.config.is_traceback_filtering_enabled() is False
    kb.clear_session(free_memory=False)
    keras.backend.clear_session(free_memory=False)
    assert config.is_traceback_filtering_enabled() is keras.config.is_traceback_filtering_enabled()
    config.disable_traceback_filtering()
    config.enable_traceback_filtering()
    assert config.is_traceback_filtering_enabled() is True


def test_interactive_logging_is_io_utils():
    from axone import io_utils
    assert config.disable_interactive_logging is io_utils.disable_interactive_logging
    config.disable_interactive_logging()
    try:
        assert io_utils.is_interactive_logging_enabled() is False
    finally:
        config.enable_interactive_logging()
    assert config.is_interactive_logging_enabled() is True


def _double(x):
    return x * 2


def test_unsafe_deserialization_overrides_safe_mode(restore, tmp_path):
    path = str(tmp_path / "lam.keras")
    m = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.save(path)
    assert config.in_safe_mode() is keras_serialization.in_safe_mode() is None
    with pytest.raises(ValueError, match="bytecode") as safe:
        axone.saving.load_model(path)
    assert "also with safe_mode=False" not in str(safe.value)
    config.enable_unsafe_deserialization()
    keras.config.enable_unsafe_deserialization()
    assert config.in_safe_mode() is keras_serialization.in_safe_mode() is False
    assert keras.saving.load_model(path, safe_mode=True) is not None   # Keras now runs it
    with pytest.raises(ValueError, match="bytecode") as unsafe:
        axone.saving.load_model(path, safe_mode=True)
    assert "also with safe_mode=False" in str(unsafe.value)
    kb.clear_session(free_memory=False)
    keras.backend.clear_session(free_memory=False)
    assert config.in_safe_mode() is keras_serialization.in_safe_mode() is None
    with pytest.raises(ValueError) as again:
        axone.saving.load_model(path)
    assert str(again.value) == str(safe.value)


# ------------------------------------------------------------------ keras.backend
def test_get_uid_shares_layer_counters_as_keras(restore):
    kb.clear_session(free_memory=False)
    keras.backend.clear_session(free_memory=False)
    got = [kb.get_uid("dense"), layers.Dense(1).name, kb.get_uid("dense"), layers.Dense(1).name,
           kb.get_uid(), kb.get_uid()]
    want = [keras.backend.get_uid("dense"), keras.layers.Dense(1).name,
            keras.backend.get_uid("dense"), keras.layers.Dense(1).name,
            keras.backend.get_uid(), keras.backend.get_uid()]
    assert got == want
    kb.clear_session(free_memory=False)
    keras.backend.clear_session(free_memory=False)
    assert kb.get_uid("dense") == keras.backend.get_uid("dense") == 1


_DTYPES = [None, "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32",
           "int64", "uint8", "uint16", "uint32", "uint64", "bool", "complex64", "complex128",
           int, float, bool, np.float64, np.dtype("int16"), "float8_e4m3fn"]


def _same(fn_a, fn_b, *args):
    try:
        want = fn_b(*args)
    except ValueError as e:
        with pytest.raises(ValueError) as info:
            fn_a(*args)
        assert str(info.value) == str(e), args
        return
    assert fn_a(*args) == want, args


@pytest.mark.parametrize("floatx", ["float32", "float16", "float64"])
def test_dtype_helpers_match_keras(restore, floatx):
    axone.backend.set_floatx(floatx)
    keras.config.set_floatx(floatx)
    for d in _DTYPES + ["string", "float", "no_type"]:
        for fa, fk in ((kb.standardize_dtype, keras.backend.standardize_dtype),
                       (kb.is_float_dtype, keras.backend.is_float_dtype),
                       (kb.is_int_dtype, keras.backend.is_int_dtype)):
            _same(fa, fk, d)
    _same(kb.result_type, keras.backend.result_type)
    for a in _DTYPES:
        _same(kb.result_type, keras.backend.result_type, a)
        for b in _DTYPES:
            _same(kb.result_type, keras.backend.result_type, a, b)
    for triple in [(int, float, "int8"), ("uint8", "int8", "float16"), (bool, "bool", int),
                   ("int64", "uint64", float), ("bfloat16", "float16", int)]:
        _same(kb.result_type, keras.backend.result_type, *triple)


def test_is_keras_tensor():
    x = layers.Input((3,))
    assert kb.is_keras_tensor(x) and not kb.is_keras_tensor(np.zeros(3))


@pytest.mark.slow
def test_coverage_script_counts_every_name():
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "keras_coverage.py"
    spec = importlib.util.spec_from_file_location("keras_coverage", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    result = script.coverage(["keras.config", "keras.backend"])
    for mod, (covered, missing) in result.items():
        assert not missing, (mod, missing)


def test_max_steps_per_epoch_caps_evaluate_and_predict_as_keras():
    import warnings
    import numpy as np
    import axone
    from axone import config, layers
    m = axone.Sequential([layers.Input((2,)), layers.Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((10, 2), "float32"), np.ones((10, 1), "float32")
    seen = []
    cb = axone.callbacks.LambdaCallback(on_test_batch_end=lambda b, logs: seen.append(b),
                                        on_predict_batch_end=lambda b, logs: seen.append(b))
    config.set_max_steps_per_epoch(2)
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m.evaluate(x, y, batch_size=2, verbose=0, callbacks=[cb])
            assert seen == [0, 1]
            out = m.predict(x, batch_size=2, verbose=0, callbacks=[cb])
        assert seen == [0, 1, 0, 1] and out.shape == (4, 1)
        assert sum("Limiting steps_per_epoch to 2" in str(x.message) for x in w) == 2
    finally:
        config.set_max_steps_per_epoch(None)
    assert m.predict(x, batch_size=2, verbose=0).shape == (10, 1)
