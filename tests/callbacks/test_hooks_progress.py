"""The callback hooks of fit (with validation), evaluate and predict fire in Keras 3's order
with Keras's logs; evaluate and predict draw Keras's progress bar."""
import re

import numpy as np
import pytest

import axone

keras = pytest.importorskip("keras")

HOOKS = ["on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
         "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin",
         "on_test_batch_end", "on_predict_begin", "on_predict_end", "on_predict_batch_begin",
         "on_predict_batch_end"]


def _recorder(base):
    """A callback class that logs (hook, batch/epoch, sorted log keys) for every hook."""
    def make(hook):
        def f(self, *args, logs=None):
            if args and isinstance(args[-1], dict):
                *args, logs = args
            self.events.append((hook, *args, tuple(sorted(logs)) if logs is not None else None))
        return f
    ns = {h: make(h) for h in HOOKS}
    ns["__init__"] = lambda self: (base.__init__(self), setattr(self, "events", []))[0]
    return type("Recorder", (base,), ns)


def _models():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 50)]
    out = []
    for lib in (keras, axone):
        m = lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, activation="softmax")])
        m.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
        out.append(m)
    out[1].set_weights(out[0].get_weights())
    return out, x, y


def _run_both(call):
    (km, am), x, y = _models()
    seqs = []
    for lib, m in ((keras, km), (axone, am)):
        rec = _recorder(lib.callbacks.Callback)()
        call(m, x, y, rec)
        seqs.append(rec.events)
    return seqs


def test_fit_with_validation_fires_keras_hooks():
    k, a = _run_both(lambda m, x, y, rec: m.fit(
        x, y, epochs=2, batch_size=20, verbose=0, validation_data=(x[:30], y[:30]),
        validation_batch_size=16, callbacks=[rec]))
    assert a == k
    assert ("on_test_begin", ()) in a and ("on_test_batch_end", 1, ("accuracy", "loss")) in a


def test_fit_validation_steps_and_freq_fire_keras_hooks():
    k, a = _run_both(lambda m, x, y, rec: m.fit(
        x, y, epochs=3, batch_size=16, verbose=0, validation_split=0.2, validation_steps=1,
        validation_freq=[2, 3], steps_per_epoch=2, callbacks=[rec]))
    assert a == k


def test_evaluate_fires_keras_hooks_and_steps_limit_batches():
    k, a = _run_both(lambda m, x, y, rec: m.evaluate(x, y, batch_size=16, steps=2, verbose=0,
                                                      callbacks=[rec]))
    assert a == k
    assert [e[1] for e in a if e[0] == "on_test_batch_end"] == [0, 1]


def test_predict_fires_keras_hooks_with_the_outputs():
    (km, am), x, _ = _models()
    got = []
    for lib, m in ((keras, km), (axone, am)):
        rec = _recorder(lib.callbacks.Callback)()
        outs = []
        rec.on_predict_batch_end = lambda batch, logs=None, rec=rec, outs=outs: (
            rec.events.append(("on_predict_batch_end", batch, tuple(sorted(logs)))),
            outs.append(np.asarray(logs["outputs"])))
        p = m.predict(x, batch_size=16, steps=3, verbose=0, callbacks=[rec])
        got.append((rec.events, outs, p))
    (ke, ko, kp), (ae, ao, ap) = got
    assert ae == ke
    assert [o.shape for o in ao] == [o.shape for o in ko] == [(16, 3)] * 3
    np.testing.assert_allclose(np.concatenate(ao), ap)
    np.testing.assert_allclose(ap, kp, rtol=1e-5, atol=1e-6)


BAR = re.compile(r"(\d+)/(\d+) ━{20} \d+s \d+[mu]?s/step")


def test_evaluate_and_predict_progress_bars(capsys):
    (_, m), x, y = _models()
    capsys.readouterr()
    m.evaluate(x, y, batch_size=10, verbose=1)
    out = capsys.readouterr().out.split("\r")[-1]
    assert BAR.search(out) and BAR.search(out).groups() == ("5", "5"), out
    assert " - accuracy: " in out and " - loss: " in out
    m.evaluate(x, y, batch_size=10, verbose="auto")
    assert BAR.search(capsys.readouterr().out)
    m.evaluate(x, y, batch_size=10, verbose=2)
    line = capsys.readouterr().out
    assert re.fullmatch(r"5/5 - \d+s - \d+[mu]?s/step - accuracy: [\d.]+ - loss: [\d.]+\n", line), line
    m.evaluate(x, y, verbose=0)
    assert capsys.readouterr().out == ""
    m.predict(x, batch_size=10, steps=3, verbose=1)
    out = capsys.readouterr().out.split("\r")[-1]
    assert BAR.search(out).groups() == ("3", "3") and "loss" not in out, out
    m.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_fit_validation_is_silent_and_one_epoch_has_no_header(capsys):
    (_, m), x, y = _models()
    capsys.readouterr()
    m.fit(x, y, epochs=1, batch_size=10, verbose=2, validation_data=(x, y))
    out = capsys.readouterr().out
    assert "Epoch" not in out                       # Keras: no "Epoch 1/1" header
    assert len(out.strip().splitlines()) == 1 and "val_loss" in out
    m.fit(x, y, epochs=2, batch_size=10, verbose=2)
    out = capsys.readouterr().out
    assert out.startswith("Epoch 1/2\n") and "Epoch 2/2" in out
