"""Recurrent layers on tasks: learning that needs memory, the runnable examples, and bad input.

* An LSTM classifies the sign of the FIRST element of a 50-step Gaussian noise sequence (the
  other 49 steps are distractors with the same distribution); a Dense model on the last step
  cannot do better than chance.
* examples/sequence_classification.py and examples/forecasting.py run in subprocesses, through
  ``python -m axone run`` (their ``import keras`` resolves to axone) and directly.
* Bad input: ValueError / TypeError naming the layer, what it expected and what it received.
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import axone
from axone import Tensor, layers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 50
EPOCHS = 16    # about 12 s on one core; every seed tried (0, 1, 2) reached 0.96-0.98


def first_sign_data(n, seed):
    """x: (n, 50, 1) standard normal noise; y = 1 where the first element is positive."""
    x = np.random.default_rng(seed).normal(size=(n, STEPS, 1)).astype(np.float32)
    return x, (x[:, 0, 0] > 0).astype(np.float32)


# ------------------------------------------------------------------ the memory task
def test_lstm_remembers_the_first_element_dense_on_last_step_cannot():
    x_train, y_train = first_sign_data(3000, seed=1)
    x_test, y_test = first_sign_data(1000, seed=2)

    axone.utils.set_random_seed(0)
    lstm = layers.LSTM(16)
    model = axone.Sequential([layers.Input((STEPS, 1)), lstm, layers.Dense(1, activation="sigmoid")])
    # forget-gate bias 5 (f ≈ 0.993) instead of Keras's 1 (f ≈ 0.73, 0.73⁵⁰ ≈ 1e-7): the gradient
    # of the first step then survives 50 steps from the start (with bias 1 the LSTM stays at
    # chance for many epochs); everything else is Keras's default initialization.  Errors that
    # remain are first elements within about ±0.1 of zero.
    k, rk, b = lstm.get_weights()
    b[16:32] = 5.0
    lstm.set_weights([k, rk, b])
    steps_per_epoch = int(np.ceil(len(x_train) / 64))
    lr = axone.optimizers.schedules.ExponentialDecay(0.01, decay_steps=steps_per_epoch, decay_rate=0.85)
    model.compile(loss="binary_crossentropy", optimizer=axone.optimizers.Adam(lr, clipnorm=1.0),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=EPOCHS, batch_size=64, verbose=0)
    _, acc = model.evaluate(x_test, y_test, verbose=0)

    axone.utils.set_random_seed(0)
    dense = axone.Sequential([layers.Input((1,)), layers.Dense(16, activation="relu"),
                              layers.Dense(1, activation="sigmoid")])
    dense.compile(loss="binary_crossentropy", optimizer=axone.optimizers.Adam(0.01),
                  metrics=["accuracy"])
    dense.fit(x_train[:, -1], y_train, epochs=10, batch_size=64, verbose=0)
    _, dense_acc = dense.evaluate(x_test[:, -1], y_test, verbose=0)
    print(f"first-element sign: LSTM held-out accuracy {acc:.3f}, Dense on the last step "
          f"{dense_acc:.3f}")
    assert acc >= 0.95, f"LSTM held-out accuracy {acc:.3f} < 0.95"
    assert dense_acc <= 0.60, f"Dense on the last step reached {dense_acc:.3f}: the task leaks"



# ------------------------------------------------------------------ the examples
def _run(args, timeout=300):
    env = dict(os.environ)
    env.pop("KERAS_BACKEND", None)
    env.pop("EXAMPLE_BACKEND", None)
    # single-threaded BLAS: the per-step products are small and the machine may be shared
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable] + args, cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "running on axone" in r.stdout, f"the example did not run on axone:\n{r.stdout[-2000:]}"
    return r.stdout


def test_sequence_classification_example_through_the_keras_alias():
    out = _run(["-m", "axone", "run", "examples/sequence_classification.py", "--quick"])
    m = re.search(r"test accuracy: LSTM ([\d.]+)\s+bag-of-words baseline ([\d.]+)", out)
    assert m, f"no accuracy line in the output:\n{out[-2000:]}"
    acc, bow = float(m.group(1)), float(m.group(2))
    assert acc >= 0.9, f"LSTM test accuracy {acc} < 0.9"
    assert acc >= bow + 0.2, f"LSTM {acc} does not beat the bag-of-words baseline {bow} clearly"
    m = re.search(r"post- vs pre-padding: ([\d.e+-]+)", out)
    assert m and float(m.group(1)) < 1e-5, f"padding changes the predictions: {m and m.group(1)}"
    assert "Total params" in out and "lstm" in out      # model.summary() ran


def test_forecasting_example_beats_repeat_last_baseline():
    out = _run(["-m", "axone", "run", "examples/forecasting.py", "--quick"])
    m = re.search(r"test MSE: model ([\d.]+)\s+repeat-last baseline ([\d.]+)", out)
    assert m, f"no MSE line in the output:\n{out[-2000:]}"
    mse, baseline = float(m.group(1)), float(m.group(2))
    assert mse <= 0.5 * baseline, f"model MSE {mse} is not below half the baseline's {baseline}"


def test_forecasting_example_runs_directly():
    out = _run(["examples/forecasting.py", "--epochs", "1", "--series", "600"])
    assert re.search(r"test MSE: model [\d.]+\s+repeat-last baseline [\d.]+", out), out[-2000:]


# ------------------------------------------------------------------ bad input
def _raises(exc, fn, *fragments):
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in the error message: {msg}"
    return msg


@pytest.mark.parametrize("cls", [layers.SimpleRNN, layers.LSTM, layers.GRU])
def test_two_dimensional_input_is_refused(cls):
    layer = cls(4, name="rec")
    _raises(ValueError, lambda: layer(np.zeros((2, 5), np.float32)),
            "'rec'", "ndim=3", "found ndim=2", "(2, 5)")
    _raises(ValueError, lambda: axone.Sequential([layers.Input((5,)), cls(3, name="rec2")]),
            "'rec2'", "ndim=3", "(None, 5)")


def test_bidirectional_and_time_distributed_refuse_low_rank_input():
    _raises(ValueError, lambda: layers.Bidirectional(layers.LSTM(3, name="inner"))(
        np.zeros((2, 5), np.float32)), "ndim=3", "(2, 5)")
    _raises(ValueError, lambda: layers.TimeDistributed(layers.Dense(2), name="td")(
        np.zeros((2, 3), np.float32)), "'td'", "rank", "(2, 3)")


@pytest.mark.parametrize("cls", [layers.SimpleRNN, layers.LSTM, layers.GRU])
def test_feature_size_changing_after_build_is_refused(cls):
    layer = cls(3, name="rec")
    layer(np.zeros((2, 4, 5), np.float32))
    _raises(ValueError, lambda: layer(np.zeros((2, 4, 6), np.float32)),
            "'rec'", "axis -1", "value 5", "(2, 4, 6)")
    # the time dimension may change freely
    assert layer(np.zeros((2, 9, 5), np.float32)).shape == (2, 3)


def test_model_refuses_a_different_feature_size():
    m = axone.Sequential([layers.Input((4, 5)), layers.LSTM(3)])
    m.compile(loss="mse")
    _raises(ValueError, lambda: m.predict(np.zeros((2, 4, 6), np.float32), verbose=0),
            "(None, 4, 5)", "(2, 4, 6)")


def test_embedding_indices_out_of_range_or_not_integers():
    e = layers.Embedding(10, 3, name="emb")
    _raises(ValueError, lambda: e(np.array([[1, 10]])), "'emb'", "[0, 10)", "10")
    _raises(ValueError, lambda: e(np.array([[1, -1]])), "'emb'", "[0, 10)", "-1")
    _raises(ValueError, lambda: e(np.array([[1.0, 2.5]])), "'emb'", "integer", "float64", "2.5")
    _raises(ValueError, lambda: e(np.array([[np.nan, 2.0]])), "'emb'", "integer", "nan")
    _raises(TypeError, lambda: e(np.array([["a", "b"]])), "'emb'", "<U1")
    # integer-valued floats are accepted (Keras casts them)
    np.testing.assert_array_equal(e(np.array([[1.0, 2.0]])).data, e(np.array([[1, 2]])).data)
    m = axone.Sequential([layers.Input((3,), dtype="int32"), layers.Embedding(10, 3, name="emb2"),
                          layers.LSTM(2)])
    _raises(ValueError, lambda: m.predict(np.array([[1, 2, 11]]), verbose=0), "'emb2'", "11")


@pytest.mark.parametrize("bad", [(2, 4), (5, 2), (2, 5, 1)])
def test_mask_of_the_wrong_shape_is_refused(bad):
    x = np.zeros((2, 5, 3), np.float32)
    layer = layers.GRU(3, name="rec")
    _raises(ValueError, lambda: layer(x, mask=np.ones(bad, bool)),
            "'rec'", "(2, 5)", str(bad))
    bi = layers.Bidirectional(layers.LSTM(3, name="inner"), name="bi")
    _raises(ValueError, lambda: bi(x, mask=np.ones(bad, bool)), "inner", "(2, 5)", str(bad))


def test_initial_state_of_the_wrong_shape_or_count_is_refused():
    x = np.zeros((2, 5, 3), np.float32)
    layer = layers.LSTM(4, name="rec")
    _raises(ValueError, lambda: layer(x, initial_state=[np.zeros((2, 4))]), "'rec'", "2", "1")
    _raises(ValueError, lambda: layer(x, initial_state=[np.zeros((2, 3)), np.zeros((2, 3))]),
            "'rec'", "(2, 4)", "(2, 3)")


def test_stateful_layer_refuses_a_new_batch_size():
    layer = layers.GRU(3, stateful=True, name="rec")
    layer(np.zeros((4, 5, 2), np.float32))
    _raises(ValueError, lambda: layer(np.zeros((3, 5, 2), np.float32)), "'rec'", "4", "3")


def test_bad_constructor_arguments():
    _raises(ValueError, lambda: layers.LSTM(0), "units", "0")
    _raises(ValueError, lambda: layers.GRU(3, dropout=1.5), "dropout", "1.5")
    _raises(ValueError, lambda: layers.LSTM(3, activation="softmax"), "softmax", "tanh")
    _raises(ValueError, lambda: layers.Bidirectional(layers.Dense(2)), "recurrent", "Dense")
    _raises(ValueError, lambda: layers.Bidirectional(layers.LSTM(2), merge_mode="max"), "max")
    _raises(ValueError, lambda: layers.Embedding(0, 3), "input_dim", "0")


def test_masked_sequences_match_unpadded_ones():
    """Masking really skips steps: a padded batch gives each row's unpadded result."""
    rng = np.random.default_rng(0)
    axone.utils.set_random_seed(0)
    emb = layers.Embedding(20, 4, mask_zero=True)
    lstm = layers.LSTM(5)
    ids = rng.integers(1, 20, size=(3, 8))
    ids[0, 5:] = 0
    ids[1, :3] = 0
    padded = lstm(emb(ids)).data
    for i in range(3):
        row = ids[i][ids[i] != 0][None]
        np.testing.assert_allclose(padded[i], lstm(emb(row)).data[0], rtol=1e-5, atol=1e-6)
    # and without the mask the padding does change the result
    unmasked = layers.LSTM(5)
    unmasked(Tensor(emb(ids).data)), unmasked.set_weights(lstm.get_weights())
    assert np.abs(unmasked(Tensor(emb(ids).data)).data[0] - padded[0]).max() > 1e-4
