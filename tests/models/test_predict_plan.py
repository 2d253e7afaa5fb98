"""A one-batch ``predict`` on the model's array plan (models/_inference.py) gives the bits the
graph gives, and every state the plan cannot serve (masks, add_loss, subclassed layers, other
dtypes, changed weights or activations) still predicts what the graph predicts."""
import numpy as np
import pytest

import axone
from axone import layers
from axone.autograd.function import no_grad
from axone.models import _inference


def _graph(model, x):
    """The outputs of the model's recorded graph on ``x`` (the path predict took before)."""
    with no_grad():
        out = model._output_structure(model._forward(model._prepare_x(x), training=False))
    if isinstance(out, (list, tuple)):
        return [np.asarray(o.data) for o in out]
    if isinstance(out, dict):
        return {k: np.asarray(v.data) for k, v in out.items()}
    return np.asarray(out.data)


def _iris(dtype="float32"):
    axone.utils.set_random_seed(0)
    m = axone.Sequential([layers.Input((4,), dtype=dtype)]
                         + [layers.Dense(64, activation="relu", dtype=dtype) for _ in range(3)]
                         + [layers.Dense(3, activation="softmax", dtype=dtype)])
    return m


@pytest.mark.parametrize("rows", [1, 3, 32])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_plan_equals_graph_bitwise(rows, dtype, monkeypatch):
    runs = []
    run = _inference.run_plan
    monkeypatch.setattr(_inference, "run_plan", lambda *a: runs.append(1) or run(*a))
    m = _iris(dtype)
    x = np.random.default_rng(1).normal(size=(rows, 4)).astype(dtype)
    first = m.predict(x, verbose=0)
    assert _inference.plan_of(m) is not None
    again = m.predict(x, verbose=0)           # the cached input signature's path
    assert len(runs) == 2
    want = _graph(m, x)
    assert first.dtype == np.dtype(dtype) and first.shape == (rows, 3)
    np.testing.assert_array_equal(first, want)
    np.testing.assert_array_equal(again, want)
    np.testing.assert_array_equal(np.asarray(m(x)), want)


def test_lenet_and_lstm_plans_equal_graph():
    axone.utils.set_random_seed(0)
    cnn = axone.Sequential([layers.Input((16, 16, 1)), layers.Conv2D(4, 3, activation="relu"),
                            layers.MaxPooling2D(2), layers.Flatten(), layers.Dropout(0.5),
                            layers.Dense(8, activation="tanh"), layers.Dense(2)])
    rnn = axone.Sequential([layers.Input((7, 3)), layers.LSTM(5), layers.Dense(1)])
    rng = np.random.default_rng(2)
    for m, shape in ((cnn, (2, 16, 16, 1)), (rnn, (2, 7, 3))):
        x = rng.normal(size=shape).astype("float32")
        for _ in range(2):
            np.testing.assert_array_equal(m.predict(x, verbose=0), _graph(m, x))
        assert _inference.plan_of(m) is not None


def test_functional_graph_with_branches():
    axone.utils.set_random_seed(0)
    inp = layers.Input((6,))
    a = layers.Dense(5, activation="relu")(inp)
    b = layers.Dense(5)(inp)
    out = layers.Dense(2, activation="sigmoid")(layers.Add()([a, b]))
    side = layers.Dense(3)(a)
    m = axone.Model(inp, {"main": out, "side": side})
    x = np.random.default_rng(3).normal(size=(4, 6)).astype("float32")
    got = m.predict(x, verbose=0)
    want = _graph(m, x)
    assert set(got) == {"main", "side"}
    for k in got:
        np.testing.assert_array_equal(got[k], want[k])


def test_outputs_are_fresh_arrays():
    m = axone.Sequential([layers.Input((3,)), layers.Flatten()])
    x = np.ones((2, 3), dtype="float32")
    y = m.predict(x, verbose=0)
    y[...] = 7
    assert (x == 1).all() and (m.predict(x, verbose=0) == 1).all()


def test_changed_weights_and_activation_are_seen():
    m = _iris()
    x = np.random.default_rng(4).normal(size=(1, 4)).astype("float32")
    m.predict(x, verbose=0)
    ws = [w * 0.5 for w in m.get_weights()]
    m.set_weights(ws)
    np.testing.assert_array_equal(m.predict(x, verbose=0), _graph(m, x))
    m.layers[-1].activation = axone.activations.get("linear")
    np.testing.assert_array_equal(m.predict(x, verbose=0), _graph(m, x))
    m.layers[0].trainable = False
    np.testing.assert_array_equal(m.predict(x, verbose=0), _graph(m, x))


def test_masks_take_the_graph():
    axone.utils.set_random_seed(0)
    m = axone.Sequential([layers.Input((5,), dtype="int32"),
                          layers.Embedding(10, 4, mask_zero=True), layers.LSTM(3)])
    x = np.array([[1, 2, 0, 0, 0], [3, 4, 5, 6, 0]], dtype="int32")
    got = m.predict(x, verbose=0)
    assert _inference.plan_of(m) is None
    np.testing.assert_array_equal(got, _graph(m, x))


class _SetsMask(layers.Layer):
    def call(self, x):
        y = x * 1.0
        y._keras_mask = np.ones(x.shape[:2], dtype=bool)
        return y


def test_a_layer_that_sets_a_mask_itself_takes_the_graph():
    m = axone.Sequential([layers.Input((4, 2)), _SetsMask(), layers.LSTM(3)])
    x = np.random.default_rng(5).normal(size=(2, 4, 2)).astype("float32")
    got = m.predict(x, verbose=0)
    np.testing.assert_array_equal(got, _graph(m, x))
    assert _inference.plan_of(m) is None
    np.testing.assert_array_equal(m.predict(x, verbose=0), got)


class _AddsLoss(layers.Layer):
    def call(self, x):
        self.add_loss(axone.ops.sum(x))
        return x + 1.0


class _OwnDense(layers.Dense):
    def call(self, inputs):
        return super().call(inputs) * 2.0


def test_add_loss_and_subclassed_dense():
    axone.utils.set_random_seed(0)
    m = axone.Sequential([layers.Input((3,)), _AddsLoss(), _OwnDense(4), layers.Dense(2)])
    x = np.random.default_rng(6).normal(size=(2, 3)).astype("float32")
    for _ in range(3):
        np.testing.assert_array_equal(m.predict(x, verbose=0), _graph(m, x))


def test_input_checks_still_apply():
    m = _iris()
    x = np.random.default_rng(7).normal(size=(1, 4)).astype("float32")
    m.predict(x, verbose=0)
    bad = x.copy()
    bad[0, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.predict(bad, verbose=0)
    with pytest.raises(ValueError, match="expects input shape"):
        m.predict(np.zeros((1, 5), dtype="float32"), verbose=0)
    # another dtype is cast as before, and the float32 signature still serves afterwards
    x64 = x.astype("float64")
    np.testing.assert_array_equal(m.predict(x64, verbose=0), m.predict(x, verbose=0))
    # more rows than one batch: the batch loop, the same values row by row
    big = np.random.default_rng(8).normal(size=(70, 4)).astype("float32")
    np.testing.assert_allclose(m.predict(big, verbose=0)[:1], m.predict(big[:1], verbose=0),
                               rtol=1e-6)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "GRU_v1", "SimpleRNN"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("rows", [1, 20])
def test_recurrent_infer_equals_graph(kind, return_sequences, go_backwards, rows):
    axone.utils.set_random_seed(0)
    kw = dict(return_sequences=return_sequences, go_backwards=go_backwards)
    if kind == "GRU_v1":
        rnn = layers.GRU(6, reset_after=False, **kw)
    else:
        rnn = getattr(layers, kind)(6, **kw)
    m = axone.Sequential([layers.Input((9, 4)), rnn, layers.Dense(2)])
    x = np.random.default_rng(9).normal(size=(rows, 9, 4)).astype("float32")
    for _ in range(2):
        np.testing.assert_array_equal(m.predict(x, verbose=0), _graph(m, x))


def test_recurrent_states_and_stateful_take_the_call():
    axone.utils.set_random_seed(0)
    inp = layers.Input((5, 3))
    seq, h, c = layers.LSTM(4, return_state=True, return_sequences=True)(inp)
    m = axone.Model(inp, [seq, h, c])
    x = np.random.default_rng(10).normal(size=(2, 5, 3)).astype("float32")
    for g, w in zip(m.predict(x, verbose=0), _graph(m, x)):
        np.testing.assert_array_equal(g, w)
    s = axone.Sequential([layers.Input((5, 3), batch_size=2), layers.GRU(4, stateful=True)])
    first = s.predict(x, verbose=0)
    second = s.predict(x, verbose=0)          # from the states the first call left
    assert not np.array_equal(first, second)
    s.layers[0].reset_states()
    np.testing.assert_array_equal(s.predict(x, verbose=0), first)


@pytest.mark.parametrize("conv_kw", [
    dict(activation="relu"), dict(activation=None, use_bias=False),
    dict(activation="relu", strides=2, padding="same"), dict(activation="tanh"),
    dict(activation="relu", groups=2), dict(activation="relu", dilation_rate=2)])
@pytest.mark.parametrize("pool", ["MaxPooling2D", "AveragePooling2D"])
def test_conv_and_pool_steps_equal_graph(conv_kw, pool):
    axone.utils.set_random_seed(0)
    m = axone.Sequential([layers.Input((12, 12, 4)), layers.Conv2D(6, 3, **conv_kw),
                          getattr(layers, pool)(2, padding="same"), layers.Flatten(),
                          layers.Dense(3)])
    rng = np.random.default_rng(11)
    for rows in (1, 1, 3, 3):                 # a shape's first call, then its direct steps
        x = rng.normal(size=(rows, 12, 12, 4)).astype("float32")
        np.testing.assert_array_equal(m.predict(x, verbose=0), _graph(m, x))
    m.set_weights([w + 0.25 for w in m.get_weights()])
    np.testing.assert_array_equal(m.predict(x, verbose=0), _graph(m, x))


def test_conv1d_and_channels_first_equal_graph():
    axone.utils.set_random_seed(0)
    a = axone.Sequential([layers.Input((20, 3)), layers.Conv1D(4, 5, activation="relu"),
                          layers.MaxPooling1D(2), layers.GlobalAveragePooling1D()])
    b = axone.Sequential([layers.Input((3, 10, 10)),
                          layers.Conv2D(4, 3, activation="relu", data_format="channels_first"),
                          layers.MaxPooling2D(2, data_format="channels_first"), layers.Flatten()])
    rng = np.random.default_rng(12)
    for m, shape in ((a, (2, 20, 3)), (b, (2, 3, 10, 10))):
        for _ in range(3):
            x = rng.normal(size=shape).astype("float32")
            np.testing.assert_array_equal(m.predict(x, verbose=0), _graph(m, x))


def test_a_model_that_predicted_still_copies_and_pickles():
    import copy
    import pickle
    m = _iris()
    x = np.random.default_rng(13).normal(size=(1, 4)).astype("float32")
    want = m.predict(x, verbose=0)
    c = copy.deepcopy(m)
    np.testing.assert_array_equal(c.predict(x, verbose=0), want)
    c.set_weights([w * 0.5 for w in c.get_weights()])
    np.testing.assert_array_equal(c.predict(x, verbose=0), _graph(c, x))
    np.testing.assert_array_equal(m.predict(x, verbose=0), want)      # the original untouched
    p = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(p.predict(x, verbose=0), want)


def test_signature_path_finiteness_check():
    """The known-signature path checks finiteness by the input's sum, entry by entry when the
    sum overflows: an infinity is refused as a NaN is, large finite entries are predicted."""
    m = _iris()
    x = np.random.default_rng(12).normal(size=(1, 4)).astype("float32")
    m.predict(x, verbose=0)
    bad = x.copy()
    bad[0, 1] = np.inf
    with pytest.raises(ValueError):
        m.predict(bad, verbose=0)
    big = np.full((1, 4), 3e38, dtype="float32")       # finite entries, an overflowing sum
    np.testing.assert_array_equal(m.predict(big, verbose=0), _graph(m, big))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [1, 2, 3])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_small_lstm_inference_loop_equals_graph(monkeypatch, dtype, rows, go_backwards):
    """One or two rows through an LSTM at predict run the compiled loop on arrays of their own
    (RNNSequence.lstm_infer_small): the graph's bits; three rows take the node."""
    from axone.ops import recurrent as R
    calls = []
    real = R.RNNSequence.lstm_infer_small
    monkeypatch.setattr(R.RNNSequence, "lstm_infer_small",
                        staticmethod(lambda *a: calls.append(1) or real(*a)))
    axone.utils.set_random_seed(0)
    axone.backend.set_floatx(dtype)
    try:
        m = axone.Sequential([layers.Input((7, 3)), layers.LSTM(5, go_backwards=go_backwards),
                              layers.Dense(2)])
        x = np.random.default_rng(13).normal(size=(rows, 7, 3)).astype(dtype)
        for _ in range(2):
            np.testing.assert_array_equal(m.predict(x, verbose=0), _graph(m, x))
    finally:
        axone.backend.set_floatx("float32")
    used = R._seq_kernels() is not None and rows <= R._SMALL_ROWS
    assert bool(calls) and (real(x, *[w.astype(dtype) for w in m.layers[0].get_weights()],
                                 go_backwards) is not None) == used


# ---------------------------------------------------------------- fused normalization steps
def _randomize_statistics(model, seed):
    """Moving statistics and γ, β far from their initial values, so the affine map matters."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            ws = layer.get_weights()
            n = ws[-1].shape[0]
            new = []
            for w, name in zip(ws, [v.name for v in layer.weights]):
                if "variance" in name:
                    new.append((rng.random(n) + 0.3).astype(w.dtype))
                else:
                    new.append(rng.normal(size=n).astype(w.dtype) * 2)
            layer.set_weights(new)


def _inverted_residual(dtype):
    """A MobileNetV2 / ResNet-style graph: convolutions, each followed by BatchNormalization
    and a ReLU(6) / Activation("relu") or not, a shortcut Add, a BatchNormalization read twice,
    one reading the model input, one on axis 1, a leaky ReLU after one, and a normalization as
    a model output."""
    axone.utils.set_random_seed(0)
    inp = layers.Input((9, 9, 8), dtype=dtype)
    k = dict(dtype=dtype)
    h = layers.BatchNormalization(**k)(inp)                               # reads the input
    h = layers.Conv2D(16, 1, use_bias=False, **k)(h)
    h = layers.BatchNormalization(**k)(h)
    h = layers.ReLU(6.0, **k)(h)
    h = layers.DepthwiseConv2D(3, padding="same", use_bias=False, **k)(h)
    h = layers.BatchNormalization(**k)(h)
    h = layers.ReLU(**k)(h)
    h = layers.Conv2D(8, 1, use_bias=False, **k)(h)
    h = layers.BatchNormalization(**k)(h)                                 # then the Add
    h = layers.Add(**k)([inp, h])
    h = layers.Activation("relu", **k)(h)
    twice = layers.BatchNormalization(**k)(layers.Conv2D(8, 3, padding="same", **k)(h))
    a = layers.Activation("relu6", **k)(twice)                            # twice read twice
    b = layers.ReLU(negative_slope=0.1, **k)(layers.BatchNormalization(**k)(
        layers.Dense(8, **k)(twice)))
    c = layers.BatchNormalization(axis=1, **k)(layers.Conv2D(8, 1, **k)(a))
    d = layers.BatchNormalization(**k)(layers.Conv2D(4, 1, **k)(layers.Add(**k)([b, c])))
    m = axone.Model(inp, [d, layers.GlobalAveragePooling2D(**k)(a)])
    _randomize_statistics(m, 5)
    return m


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [1, 3])
def test_fused_normalization_steps_equal_graph_bitwise(dtype, rows):
    """The plan fuses a BatchNormalization at inference with the ReLU after it into one pass,
    and writes it over a convolution's output that nothing else reads: the graph's bits, the
    input left as it was, every other case (read twice, a model input, axis 1, a leaky ReLU)
    included."""
    m = _inverted_residual(dtype)
    x = np.random.default_rng(6).normal(size=(rows, 9, 9, 8)).astype(dtype)
    before = x.copy()
    got = m.predict(x, verbose=0)
    plan = _inference.plan_of(m)
    assert plan is not None and len(plan[1]) < len(m._plan())          # some calls fused
    want = _graph(m, x)
    for g, w in zip(got, want):
        assert g.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(x, before)
    again = m.predict(x, verbose=0)
    for g, w in zip(again, want):
        np.testing.assert_array_equal(g, w)


def test_fused_steps_see_changed_statistics_and_activations():
    m = _inverted_residual("float32")
    x = np.random.default_rng(7).normal(size=(2, 9, 9, 8)).astype("float32")
    m.predict(x, verbose=0)
    _randomize_statistics(m, 8)
    relu = next(la for la in m.layers if isinstance(la, layers.ReLU) and la.max_value == 6.0)
    relu.max_value = 3.0                                    # no longer a clip the pass takes
    act = next(la for la in m.layers if isinstance(la, layers.Activation))
    act.activation = axone.activations.get("tanh")
    for g, w in zip(m.predict(x, verbose=0), _graph(m, x)):
        np.testing.assert_array_equal(g, w)


def test_a_subclassed_normalization_is_not_fused():
    class Shifted(layers.BatchNormalization):
        def call(self, inputs, training=None):
            return super().call(inputs, training=training) + 1.0

    axone.utils.set_random_seed(0)
    inp = layers.Input((5, 5, 3))
    h = layers.ReLU()(Shifted()(layers.Conv2D(4, 3)(inp)))
    m = axone.Model(inp, h)
    x = np.random.default_rng(9).normal(size=(2, 5, 5, 3)).astype("float32")
    got = m.predict(x, verbose=0)
    np.testing.assert_array_equal(got, _graph(m, x))
    assert (got >= 1.0).all() or (got == 0).any()


def test_concatenate_and_multi_input_models_use_the_plan():
    axone.utils.set_random_seed(0)
    a, b = layers.Input((4,)), layers.Input((3,))
    h = layers.Concatenate()([layers.Dense(5)(a), b, a])
    h = layers.Activation("relu")(layers.BatchNormalization()(h))
    m = axone.Model([a, b], layers.Dense(2)(h))
    _randomize_statistics(m, 10)
    rng = np.random.default_rng(11)
    xa, xb = rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(3, 3)).astype("float32")
    got = m.predict([xa, xb], verbose=0)
    assert _inference.plan_of(m) is not None
    np.testing.assert_array_equal(got, _graph(m, [xa, xb]))


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_zero_padding_step_equals_graph(fmt):
    """ZeroPadding2D pads into a reused workspace array in the plan: the graph's values, and
    each prediction's output its own array."""
    axone.utils.set_random_seed(0)
    inp = layers.Input((40, 36, 24))
    pad = layers.ZeroPadding2D(((1, 2), (0, 3)), data_format=fmt)(inp)
    m = axone.Model(inp, [layers.DepthwiseConv2D(3, strides=2)(pad) if fmt == "channels_last"
                          else layers.Flatten()(pad), pad])
    x = np.random.default_rng(12).normal(size=(3, 40, 36, 24)).astype("float32")
    first = m.predict(x, verbose=0)
    second = m.predict(x, verbose=0)
    for a, b, w in zip(first, second, _graph(m, x)):
        np.testing.assert_array_equal(a, w)
        np.testing.assert_array_equal(b, w)
    assert not np.shares_memory(first[1], second[1])


def test_add_written_over_a_fresh_input_equals_graph():
    """An Add writes its sum over its first or second input where that is a convolution's
    output read by nothing else; a three-input Add adds in order; an input read twice, or
    broadcast, keeps the sum in a new array."""
    axone.utils.set_random_seed(0)
    inp = layers.Input((6, 6, 4))
    c = [layers.Conv2D(4, 3, padding="same")(inp) for _ in range(4)]
    three = layers.Add()([c[0], c[1], c[2]])
    twice = layers.Add()([c[3], inp])
    again = layers.Multiply()([c[3], twice])
    row = layers.Dense(1)(layers.GlobalAveragePooling2D()(inp))
    wide = layers.Add()([layers.Conv2D(4, 1)(inp), layers.Reshape((1, 1, 1))(row)])
    m = axone.Model(inp, [three, again, wide])
    x = np.random.default_rng(13).normal(size=(2, 6, 6, 4)).astype("float32")
    before = x.copy()
    for _ in range(2):
        for g, w in zip(m.predict(x, verbose=0), _graph(m, x)):
            np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(x, before)


def _transfer(seed=0):
    """A frozen base with convolutions, BatchNormalization and ReLUs under a new head, the base
    called with training=False (the course's transfer-learning form)."""
    axone.utils.set_random_seed(seed)
    b_in = layers.Input((8, 8, 3))
    h = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, use_bias=False)(b_in)))
    h = layers.Add()([h, layers.BatchNormalization()(layers.Conv2D(8, 1)(h))])
    base = axone.Model(b_in, layers.Activation("relu")(h))
    _randomize_statistics(base, 14)
    base.trainable = False
    inp = layers.Input((8, 8, 3))
    out = layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(
        base(inp, training=False)))
    model = axone.Model(inp, out)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return base, model


def test_a_frozen_base_runs_its_plan_in_fit_with_the_graphs_results(monkeypatch):
    """A nested model with nothing to differentiate (frozen weights, inputs that need no
    gradient, and no layer whose call depends on training: Keras 3's fit calls the base with
    training=True) runs its array plan: fit gives the losses and weights the graph gives, bit
    for bit."""
    rng = np.random.default_rng(15)
    x = rng.normal(size=(12, 8, 8, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 12)]
    runs = []
    real = _inference.run_plan
    monkeypatch.setattr(_inference, "run_plan", lambda *a: runs.append(1) or real(*a))
    _, planned = _transfer()
    h1 = planned.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    assert len(runs) >= 6                       # every training step ran the base's plan
    monkeypatch.setattr(axone.Model, "_frozen_call", lambda self, flat, training=None: None)
    _, graph = _transfer()
    h2 = graph.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    assert h1 == h2
    for a, b in zip(planned.get_weights(), graph.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_base_with_dropout_or_trainable_statistics_runs_its_graph_in_fit(monkeypatch):
    """training=True reaches a Dropout or a trainable BatchNormalization: no plan runs."""
    runs = []
    real = _inference.run_plan
    monkeypatch.setattr(_inference, "run_plan", lambda *a: runs.append(1) or real(*a))
    x = np.random.default_rng(17).normal(size=(8, 8, 8, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(8) % 3]
    for extra in (layers.Dropout(0.5), layers.BatchNormalization()):
        b_in = layers.Input((8, 8, 3))
        base = axone.Model(b_in, extra(layers.Conv2D(4, 3)(b_in)))
        for layer in base.layers:
            layer.trainable = isinstance(layer, layers.BatchNormalization)
        inp = layers.Input((8, 8, 3))
        model = axone.Model(inp, layers.Dense(3)(layers.Flatten()(base(inp))))
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        assert not runs
        with axone.no_grad():
            base(x)                             # training=None: the plan, at inference
        assert runs
        runs.clear()


def test_an_eager_call_of_a_frozen_base_equals_its_graph(monkeypatch):
    """base(x) and the outer predict / evaluate run the plan; results equal the graph's."""
    runs = []
    real = _inference.run_plan
    monkeypatch.setattr(_inference, "run_plan", lambda *a: runs.append(1) or real(*a))
    base, model = _transfer()
    x = np.random.default_rng(18).normal(size=(5, 8, 8, 3)).astype("float32")
    a = np.asarray(base(x).data)
    assert runs
    first = a.copy()
    base(x[::-1].copy())                         # a later call leaves the earlier result alone
    np.testing.assert_array_equal(a, first)
    p = model.predict(x, verbose=0)
    monkeypatch.setattr(axone.Model, "_frozen_call", lambda self, flat, training=None: None)
    np.testing.assert_array_equal(a, np.asarray(base(x).data))
    np.testing.assert_allclose(p, model.predict(x, verbose=0), rtol=1e-6, atol=1e-7)


def test_a_frozen_base_still_differentiates_what_is_asked():
    """A watched input or weight, a trainable base, training=True: the graph runs, gradients
    flow."""
    from axone.autograd import GradientTape, Tensor
    base, _ = _transfer()
    x = Tensor(np.random.default_rng(16).normal(size=(2, 8, 8, 3)).astype("float32"))
    with GradientTape() as tape:
        tape.watch(x)
        y = axone.ops.sum(base(x, training=False))
    gx = tape.gradient(y, x)
    assert gx is not None and np.abs(np.asarray(gx.data)).sum() > 0
    kernel = base.layers[1].kernel
    with GradientTape() as tape:
        tape.watch(kernel)
        y = axone.ops.sum(base(x, training=False))
    assert tape.gradient(y, kernel) is not None
    base.trainable = True
    with GradientTape() as tape:
        y = axone.ops.sum(base(x, training=False))
    assert all(g is not None for g in tape.gradient(y, base.trainable_weights))
