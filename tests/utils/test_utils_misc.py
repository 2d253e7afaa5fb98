"""keras.utils odds and ends: Config, standardize_dtype, is_keras_tensor, get_source_inputs,
and the interactive-logging switch, against real Keras 3 where it has them."""
import json
import logging
import sys

import numpy as np
import pytest

import axone
from axone import layers, utils


def _real_keras():
    for name in list(sys.modules):
        if (name == "keras" or name.startswith("keras.")) and getattr(sys.modules[name],
                                                                       "__axone_alias__", False):
            pytest.skip("the keras import alias is installed in this process")
    return pytest.importorskip("keras")


# --------------------------------------------------------------------------- Config
def _exercise(Config):
    out = []
    c = Config(learning_rate=0.1, momentum=0.9)
    c.use_ema = True
    c["seed"] = 123
    out += [c.seed, c["learning_rate"], c.use_ema, sorted(c.keys()), list(c), len(c),
            "seed" in c, "nope" in c, c.get("nope", 5), c.as_dict(), json.loads(c.to_json()),
            repr(Config(a=1))]
    c.freeze()
    out.append(c.frozen)
    for action in (lambda: setattr(c, "x", 1), lambda: c.__setitem__("x", 1),
                   lambda: c.pop("seed"), lambda: c.update(a=1), lambda: c.__delitem__("seed")):
        with pytest.raises(ValueError, match="frozen") as e:
            action()
        out.append(str(e.value))
    c.unfreeze()
    out += [c.frozen, c.pop("seed"), c.update(z=2), c.z]
    del c["z"]
    out.append(sorted(c))
    with pytest.raises(AttributeError) as e:
        c.learning_rat
    out.append(str(e.value))
    with pytest.raises(AttributeError) as e:
        c.zzz
    out.append(str(e.value))
    d = c.as_dict()
    d["new"] = 1
    out.append("new" in c)
    return out


def test_config_matches_keras():
    keras = _real_keras()
    assert _exercise(utils.Config) == _exercise(keras.utils.Config)


# --------------------------------------------------------------------------- dtypes
DTYPES = [None, int, float, bool, str, complex, "int", "float32", "float64", "int8", "uint16",
          "bfloat16", "bool", "string", np.float32, np.int64, np.dtype("float16"),
          np.dtype("complex128")]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_standardize_dtype_matches_keras(dtype):
    keras = _real_keras()
    assert utils.standardize_dtype(dtype) == keras.utils.standardize_dtype(dtype)


def test_standardize_dtype_torch_and_bad():
    torch = pytest.importorskip("torch")
    assert utils.standardize_dtype(torch.float16) == "float16"
    assert utils.standardize_dtype(torch.int32) == "int32"
    for bad in ("float", "foo", np.dtype("U3"), object, 3):
        with pytest.raises(ValueError, match="Invalid dtype"):
            utils.standardize_dtype(bad)


# --------------------------------------------------------------------------- graph helpers
def _graph(L, M):
    a = L.Input((3,), name="a")
    b = L.Input((2,), name="b")
    c = L.Input((4,), name="c")                     # not used by y
    x = L.Dense(4)(a)
    y = L.Concatenate()([L.Dense(2)(x), b, L.Dense(2)(a)])
    return a, b, c, x, y


def test_get_source_inputs_and_is_keras_tensor():
    a, b, c, x, y = _graph(axone.layers, axone.models)
    src = utils.get_source_inputs(y)
    assert len(src) == 2 and src[0] is a and src[1] is b
    assert utils.get_source_inputs(x)[0] is a and len(utils.get_source_inputs(x)) == 1
    assert utils.get_source_inputs(a) == [a]
    arr = np.ones(3)
    assert utils.get_source_inputs(arr) is arr
    assert utils.is_keras_tensor(a) and utils.is_keras_tensor(y)
    assert not utils.is_keras_tensor(arr)
    assert not utils.is_keras_tensor(axone.ops.ones((2,)))
    model = axone.Model([a, b], y)
    assert utils.is_keras_tensor(model.outputs[0])


def test_get_source_inputs_matches_keras():
    keras = _real_keras()
    ka = _graph(keras.layers, keras.models)
    aa = _graph(axone.layers, axone.models)
    for kt, at in zip(ka, aa):
        assert [t.name for t in utils.get_source_inputs(at)] == \
            [t.name for t in keras.utils.get_source_inputs(kt)]


# --------------------------------------------------------------------------- logging switch
@pytest.fixture
def quiet():
    utils.disable_interactive_logging()
    yield
    utils.enable_interactive_logging()


def _model():
    m = axone.Sequential([layers.Input((3,)), layers.Dense(1)])
    m.compile("sgd", "mse")
    return m


def test_interactive_logging_flag():
    assert utils.is_interactive_logging_enabled()
    utils.disable_interactive_logging()
    try:
        assert not utils.is_interactive_logging_enabled()
    finally:
        utils.enable_interactive_logging()
    assert utils.is_interactive_logging_enabled()


def test_enabled_prints(capsys):
    m = _model()
    x = np.ones((8, 3), "float32")
    m.fit(x, x[:, :1], epochs=2, verbose=2)
    m.summary()
    utils.Progbar(3, verbose=2).update(3, [("a", 1.0)])
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "Total params" in out and "3/3" in out


def test_disabled_silences_bars_summary_and_messages(quiet, capsys, caplog):
    m = _model()
    x = np.ones((8, 3), "float32")
    with caplog.at_level(logging.INFO, logger="axone"):
        m.fit(x, x[:, :1], epochs=2, verbose=1, validation_split=0.25,
              callbacks=[axone.callbacks.EarlyStopping(monitor="loss", patience=0, verbose=1)])
        m.evaluate(x, x[:, :1], verbose=1)
        m.predict(x, verbose=1)
        m.summary()
        bar = utils.Progbar(5, verbose=1)
        for i in range(1, 6):
            bar.update(i, [("a", float(i))])
        utils.Progbar(2, verbose=2).update(2)
    assert capsys.readouterr().out == ""
    messages = [r.getMessage() for r in caplog.records if r.name == "axone"]
    text = "\n".join(messages)
    # what would have been printed goes to the "axone" logger instead, one record a line
    assert "Epoch 1/2" in text and "Total params" in text and 'Model: "sequential' in text
    assert any("5/5" in msg for msg in messages) and any("2/2" in msg for msg in messages)
    # the live redraws of a bar are not logged, only its last line
    assert sum("/5" in msg for msg in messages) == 1


def test_summary_print_fn_still_wins(quiet):
    lines = []
    _model().summary(print_fn=lines.append)
    assert any("Total params" in s for s in lines)
