"""Keras model API on axone (SPEC.md §2): functional graphs, Sequential, weights, freezing,
naming, seeding, pandas inputs, evaluate / *_on_batch / predict."""
import numpy as np
import pandas as pd
import pytest

import axone
from axone.layers import Add, Concatenate, Dense, Dropout, Input, InputLayer
from axone.models import Model, Sequential
from axone.utils import clear_session, set_random_seed, to_categorical


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state (weights, dropout, shuffling)."""
    set_random_seed(1234)


@pytest.fixture
def iris():
    x, labels = axone.datasets.load_iris()
    x = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    return x.astype("float32"), labels, to_categorical(labels, 3)


def _summary(model):
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def _mlp(hidden=8, dropout=None, name=None):
    layers = [InputLayer(input_shape=(4,)), Dense(hidden, activation="relu")]
    if dropout:
        layers.append(Dropout(dropout))
    layers += [Dense(hidden, activation="relu"), Dense(3, activation="softmax")]
    return Sequential(layers, name=name)


def _np_forward(weights, x, acts):
    a = np.asarray(x, dtype=np.float64)
    for (k, b), act in zip(zip(weights[0::2], weights[1::2]), acts):
        a = a @ k.astype(np.float64) + b.astype(np.float64)
        if act == "relu":
            a = np.maximum(a, 0)
        elif act == "softmax":
            e = np.exp(a - a.max(axis=1, keepdims=True))
            a = e / e.sum(axis=1, keepdims=True)
    return a


# ---------------------------------------------------------------- functional API
def test_two_inputs_two_outputs_concatenate_add():
    clear_session()
    a, b = Input(shape=(3,), name="a"), Input(shape=(5,), name="b")
    ha = Dense(4, activation="relu")(a)
    hb = Dense(4, activation="relu")(b)
    s = Add()([ha, hb])
    c = Concatenate()([ha, hb, s])
    cls = Dense(2, activation="softmax", name="cls")(c)
    reg = Dense(1, name="reg")(s)
    model = Model([a, b], [cls, reg])
    assert c.shape == (None, 12) and s.shape == (None, 4)
    assert [t.shape for t in model.outputs] == [(None, 2), (None, 1)]
    assert model.count_params() == (3 * 4 + 4) + (5 * 4 + 4) + (12 * 2 + 2) + (4 + 1)
    text = _summary(model)
    assert "Total params: 71 (284.00 B)" in text
    assert "concatenate (Concatenate)" in text and "add (Add)" in text

    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(20, 3)), rng.normal(size=(20, 5))
    y1, y2 = to_categorical(np.arange(20) % 2, 2), rng.normal(size=(20, 1))
    # predict matches a hand-written forward pass of the same graph
    p1, p2 = model.predict([xa, xb], verbose=0)
    assert p1.shape == (20, 2) and p2.shape == (20, 1)
    w = {l.name: l.get_weights() for l in model.layers if l.get_weights()}
    da, db = w["dense"], w["dense_1"]
    ha_ = np.maximum(xa @ da[0] + da[1], 0)
    hb_ = np.maximum(xb @ db[0] + db[1], 0)
    s_ = ha_ + hb_
    z = np.concatenate([ha_, hb_, s_], axis=1) @ w["cls"][0] + w["cls"][1]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p1, e / e.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(p2, s_ @ w["reg"][0] + w["reg"][1], rtol=1e-4, atol=1e-5)

    model.compile(optimizer="adam", loss=["categorical_crossentropy", "mse"],
                  metrics=[["accuracy"], ["mae"]])
    hist = model.fit([xa, xb], [y1, y2], epochs=2, batch_size=8, verbose=0)
    assert {"loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"} <= set(hist.history)
    res = model.evaluate([xa, xb], [y1, y2], verbose=0)
    names = model.metrics_names
    assert names[0] == "loss" and len(res) == len(names)
    d = dict(zip(names, res))
    assert d["loss"] == pytest.approx(d["cls_loss"] + d["reg_loss"], rel=1e-5)
    # dict inputs by input name
    p1d, _ = model.predict({"a": xa, "b": xb}, verbose=0)
    np.testing.assert_allclose(p1d, model.predict([xa, xb], verbose=0)[0])


def test_shared_layer_counted_once_and_gets_both_gradients():
    clear_session()
    shared = Dense(3)
    i1, i2 = Input(shape=(4,)), Input(shape=(4,))
    model = Model([i1, i2], Add()([shared(i1), shared(i2)]))
    assert model.count_params() == 15
    assert len(model.weights) == 2 and len(model.trainable_weights) == 2
    assert "Total params: 15 (60.00 B)" in _summary(model)
    x1, x2 = np.ones((2, 4), "float32"), 2 * np.ones((2, 4), "float32")
    k, b = shared.get_weights()
    np.testing.assert_allclose(model.predict([x1, x2], verbose=0), (x1 + x2) @ k + 2 * b, rtol=1e-5,
                               atol=1e-6)
    # one SGD step: the shared kernel's gradient is the sum over both uses
    model.compile(optimizer=axone.optimizers.SGD(learning_rate=0.1), loss="mse")
    y = np.zeros((2, 3), "float32")
    model.train_on_batch([x1, x2], y)
    pred = (x1 + x2) @ k + 2 * b
    g_pred = 2 * (pred - y) / pred.size
    np.testing.assert_allclose(shared.get_weights()[0], k - 0.1 * (x1 + x2).T @ g_pred, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(shared.get_weights()[1], b - 0.1 * 2 * g_pred.sum(axis=0), rtol=1e-5,
                               atol=1e-6)


def test_model_used_as_a_layer():
    clear_session()
    inner = Sequential([InputLayer(input_shape=(4,)), Dense(5, activation="relu"), Dense(2)])
    x = Input(shape=(4,))
    outer = Model(x, Dense(1)(inner(x)))
    assert outer.count_params() == (4 * 5 + 5) + (5 * 2 + 2) + (2 + 1)
    assert inner in outer.layers
    assert len(outer.weights) == 6
    data = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    expected = inner.predict(data, verbose=0) @ outer.layers[-1].get_weights()[0] \
        + outer.layers[-1].get_weights()[1]
    np.testing.assert_allclose(outer.predict(data, verbose=0), expected, rtol=1e-5, atol=1e-6)
    # training the outer model trains the inner one
    w_inner = inner.get_weights()
    outer.compile(optimizer="sgd", loss="mse")
    outer.fit(data, np.ones((6, 1)), epochs=2, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(w_inner, inner.get_weights()))
    # freezing the nested model freezes all its weights
    inner.trainable = False
    assert len(outer.trainable_weights) == 2
    w_inner = inner.get_weights()
    outer.compile(optimizer="sgd", loss="mse")
    outer.fit(data, np.ones((6, 1)), epochs=2, verbose=0)
    for a, b in zip(w_inner, inner.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert "Non-trainable params: 37 (148.00 B)" in _summary(outer)


# ---------------------------------------------------------------- Sequential
def test_sequential_built_lazily_from_first_data():
    model = Sequential([Dense(5, activation="relu"), Dense(2)])
    assert not model.built
    assert model.weights == []
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(10, 7)).astype("float32")
    model.fit(x, np.zeros((10, 2)), epochs=1, verbose=0)
    assert model.built
    assert [w.shape for w in model.get_weights()] == [(7, 5), (5,), (5, 2), (2,)]
    assert model.count_params() == 52
    assert model.predict(x, verbose=0).shape == (10, 2)


def test_sequential_built_lazily_by_predict_and_by_build():
    m1 = Sequential([Dense(3)])
    assert m1.predict(np.ones((2, 6)), verbose=0).shape == (2, 3)
    assert [w.shape for w in m1.get_weights()] == [(6, 3), (3,)]
    m2 = Sequential([Dense(3)])
    m2.build((None, 9))
    assert [w.shape for w in m2.get_weights()] == [(9, 3), (3,)]


def test_sequential_add_and_legacy_input_shape():
    model = Sequential()
    model.add(InputLayer(input_shape=(4,)))
    model.add(Dense(3, activation="relu"))
    model.add(Dense(2))
    assert len(model.layers) == 2
    assert [w.shape for w in model.get_weights()] == [(4, 3), (3,), (3, 2), (2,)]
    assert model.output_shape == (None, 2)
    legacy = Sequential()
    legacy.add(Dense(64, input_shape=(10,)))
    assert legacy.count_params() == 704
    legacy_dim = Sequential([Dense(20, input_dim=10, activation="relu"), Dense(3)])
    assert legacy_dim.count_params() == 283
    with pytest.raises(TypeError):
        model.add("dense")


# ---------------------------------------------------------------- weights
def test_get_set_weights_order_and_shapes_as_keras():
    model = Sequential([InputLayer(input_shape=(4,)), Dense(6, activation="relu"),
                        Dense(5, activation="relu", use_bias=False), Dense(3, activation="softmax")])
    w = model.get_weights()
    assert [a.shape for a in w] == [(4, 6), (6,), (6, 5), (5, 3), (3,)]
    assert all(a.dtype == np.float32 for a in w)
    np.testing.assert_array_equal(w[1], 0)          # bias initialized to zeros
    # glorot_uniform kernel: |w| ≤ sqrt(6 / (fan_in + fan_out))
    assert np.abs(w[0]).max() <= np.sqrt(6 / 10) + 1e-6 and np.abs(w[0]).std() > 0
    rng = np.random.default_rng(1)
    new = [rng.normal(size=a.shape).astype("float32") for a in w]
    model.set_weights(new)
    for a, b in zip(new, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # get_weights returns copies
    model.get_weights()[0][:] = 99
    assert not (model.get_weights()[0] == 99).any()
    # the values are used in that order: kernel (in, out) then bias (out,)
    x = rng.normal(size=(7, 4))
    a1 = np.maximum(x @ new[0] + new[1], 0)
    a2 = np.maximum(a1 @ new[2], 0)
    z = a2 @ new[3] + new[4]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(model.predict(x, verbose=0), e / e.sum(axis=1, keepdims=True),
                               rtol=1e-4, atol=1e-6)
    # per-layer get/set weights address the same variables
    assert [a.shape for a in model.layers[0].get_weights()] == [(4, 6), (6,)]
    np.testing.assert_array_equal(model.layers[2].get_weights()[0], new[3])


def test_trainable_false_freezes_layer_and_summary_counts(iris):
    x, _, y = iris
    model = _mlp()
    model.layers[0].trainable = False
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    before = model.get_weights()
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert all(not np.array_equal(a, b) for a, b in zip(before[2:], after[2:]))
    text = _summary(model)
    frozen = 4 * 8 + 8
    total = model.count_params()
    assert f"Non-trainable params: {frozen} ({frozen * 4:.2f} B)" in text
    assert f"Trainable params: {total - frozen:,} " in text
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 2
    # unfreezing (then recompiling, as Keras requires) trains it again
    model.layers[0].trainable = True
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert not np.array_equal(model.get_weights()[0], after[0])


def test_whole_model_trainable_false(iris):
    x, _, y = iris
    model = _mlp()
    model.trainable = False
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    before = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    text = _summary(model)
    assert "Trainable params: 0 (0.00 B)" in text


def test_trainable_loop_versus_list_slice(iris):
    """SPEC §8: 004's `model.layers[2:4].trainable = False` has no effect on the layers (in Keras 3
    the slice is a plain list, so the assignment raises AttributeError); a loop freezes them."""
    x, _, y = iris
    model = Sequential([InputLayer(input_shape=(4,)), Dense(8, activation="relu"),
                        Dense(8, activation="relu"), Dense(8, activation="relu"),
                        Dense(8, activation="relu"), Dense(3, activation="softmax")])
    assert isinstance(model.layers, list)
    with pytest.raises(AttributeError):
        model.layers[2:4].trainable = False
    assert all(layer.trainable for layer in model.layers)
    assert len(model.trainable_weights) == 10
    for layer in model.layers[2:4]:
        layer.trainable = False
    assert [layer.trainable for layer in model.layers] == [True, True, False, False, True]
    assert len(model.trainable_weights) == 6
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    before = model.get_weights()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    after = model.get_weights()
    changed = [not np.array_equal(a, b) for a, b in zip(before, after)]
    assert changed == [True, True, True, True, False, False, False, False, True, True]


# ---------------------------------------------------------------- naming
def test_auto_names_after_clear_session():
    clear_session()
    model = Sequential([InputLayer(input_shape=(4,)), Dense(2), Dense(3), Dropout(0.1), Dense(1)])
    assert model.name == "sequential"
    assert [l.name for l in model.layers] == ["dense", "dense_1", "dropout", "dense_2"]
    other = Sequential([Dense(1)])
    assert other.name == "sequential_1" and other.layers[0].name == "dense_3"
    clear_session()
    assert Dense(1).name == "dense"
    inp = Input(shape=(2,))
    assert Model(inp, Dense(1)(inp)).name == "functional"
    assert Dense(1, name="custom").name == "custom"
    text = _summary(model)
    assert "dense (Dense)" in text and "dense_1 (Dense)" in text and 'Model: "sequential"' in text


# ---------------------------------------------------------------- layers alone
def test_calling_a_layer_on_an_array_returns_a_tensor():
    layer = Dense(3, activation="relu")
    out = layer(np.ones((2, 4), dtype="float32"))
    assert isinstance(out, axone.Tensor)
    assert out.shape == (2, 3)
    k, b = layer.get_weights()
    np.testing.assert_allclose(out.data, np.maximum(np.ones((2, 4)) @ k + b, 0), rtol=1e-6, atol=1e-6)
    assert layer.built and k.shape == (4, 3)
    # a symbolic input gives a symbolic tensor instead
    sym = Dense(3)(Input(shape=(4,)))
    assert isinstance(sym, axone.KerasTensor) and not isinstance(sym, axone.Tensor)
    assert sym.shape == (None, 3)


def test_standalone_layer_build_then_set_weights_then_call():
    layer = Dense(2)
    layer.build((None, 4))
    assert [w.shape for w in layer.get_weights()] == [(4, 2), (2,)]
    kernel = np.arange(8, dtype="float32").reshape(4, 2)
    bias = np.array([1.0, -1.0], dtype="float32")
    layer.set_weights([kernel, bias])
    x = np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype="float32")
    np.testing.assert_allclose(layer(x).data, x @ kernel + bias)
    np.testing.assert_allclose(layer(x).data, [[1.0, 0.0], [13.0, 15.0]])


# ---------------------------------------------------------------- seeding
def _seeded_run(iris, seed):
    x, _, y = iris
    set_random_seed(seed)
    model = _mlp(hidden=16, dropout=0.3)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=4, batch_size=16, validation_split=0.2, verbose=0)
    return hist.history, model.get_weights()


def test_set_random_seed_gives_identical_runs(iris):
    h1, w1 = _seeded_run(iris, 0)
    h2, w2 = _seeded_run(iris, 0)
    assert h1 == h2
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    h3, w3 = _seeded_run(iris, 1)
    assert h3["loss"] != h1["loss"]
    assert not np.array_equal(w3[0], w1[0])


# ---------------------------------------------------------------- data and evaluation
def test_pandas_dataframe_and_series_inputs():
    df = axone.datasets.load_iris(as_frame=True)
    X = df.drop(columns=["target"])
    X = (X - X.mean()) / X.std()
    assert isinstance(X, pd.DataFrame)
    set_random_seed(0)
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(X, df["target"], epochs=3, batch_size=30, verbose=0, validation_split=0.2)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # same results from the equivalent NumPy arrays
    set_random_seed(0)
    model2 = _mlp()
    model2.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist2 = model2.fit(X.to_numpy(), df["target"].to_numpy(), epochs=3, batch_size=30, verbose=0,
                       validation_split=0.2)
    np.testing.assert_allclose(hist.history["loss"], hist2.history["loss"], rtol=1e-6)
    # one-hot targets given as a DataFrame, evaluate and predict on DataFrames
    Y = pd.get_dummies(df["target"]).astype("float32")
    model3 = _mlp()
    model3.compile(optimizer="adam", loss="categorical_crossentropy")
    model3.fit(X, Y, epochs=1, verbose=0)
    assert model3.predict(X, verbose=0).shape == (150, 3)
    assert np.isfinite(model3.evaluate(X, Y, verbose=0))


def test_evaluate_returns_loss_and_accuracy_in_metrics_names_order(iris):
    x, labels, y = iris
    model = _mlp()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    assert model.metrics_names == ["loss", "accuracy"]
    res = model.evaluate(x, y, verbose=0)
    assert isinstance(res, list) and len(res) == 2
    p = _np_forward(model.get_weights(), x, ["relu", "relu", "softmax"])
    loss = float(-np.mean(np.log(p[np.arange(len(x)), labels])))
    acc = float(np.mean(p.argmax(axis=1) == labels))
    assert res[0] == pytest.approx(loss, rel=1e-4)
    assert res[1] == pytest.approx(acc)
    d = model.evaluate(x, y, verbose=0, return_dict=True)
    assert d == {"loss": pytest.approx(res[0]), "accuracy": pytest.approx(res[1])}
    # without metrics, evaluate returns the scalar loss
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    assert model.metrics_names == ["loss"]
    assert model.evaluate(x, y, verbose=0) == pytest.approx(loss, rel=1e-4)
    # batch size does not change the result (weighted mean over batches)
    assert model.evaluate(x, y, batch_size=7, verbose=0) == pytest.approx(loss, rel=1e-4)


def test_on_batch_methods(iris):
    x, labels, y = iris
    model = _mlp()
    model.compile(optimizer=axone.optimizers.SGD(learning_rate=0.1), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    xb, yb = x[:20], y[:20]
    w0 = model.get_weights()
    p0 = _np_forward(w0, xb, ["relu", "relu", "softmax"])
    expected_loss = float(-np.mean(np.log(p0[np.arange(20), labels[:20]])))
    # test_on_batch: loss and metric, no update
    loss, acc = model.test_on_batch(xb, yb)
    assert loss == pytest.approx(expected_loss, rel=1e-4)
    assert acc == pytest.approx(np.mean(p0.argmax(axis=1) == labels[:20]))
    for a, b in zip(w0, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # predict_on_batch = the forward pass
    np.testing.assert_allclose(model.predict_on_batch(xb), p0, rtol=1e-4, atol=1e-6)
    # train_on_batch: the pre-update loss, then one update that lowers it
    loss_t, _ = model.train_on_batch(xb, yb)
    assert loss_t == pytest.approx(expected_loss, rel=1e-4)
    assert any(not np.array_equal(a, b) for a, b in zip(w0, model.get_weights()))
    assert model.test_on_batch(xb, yb)[0] < loss_t
    assert model.train_on_batch(xb, yb, return_dict=True).keys() == {"loss", "accuracy"}


@pytest.mark.parametrize("n,batch_size", [(1, None), (7, 3), (33, None), (150, 64)])
def test_predict_output_shapes(iris, n, batch_size):
    x, _, _ = iris
    model = _mlp()
    kw = {} if batch_size is None else {"batch_size": batch_size}
    p = model.predict(x[:n], verbose=0, **kw)
    assert isinstance(p, np.ndarray) and p.shape == (n, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(p, model.predict(x[:n], verbose=0, batch_size=1000), rtol=1e-6,
                               atol=1e-7)
    # lists of rows are accepted like arrays
    np.testing.assert_allclose(model.predict(x[:n].tolist(), verbose=0), p, rtol=1e-6, atol=1e-7)


def test_predict_shapes_for_regression_and_multi_output():
    reg = Sequential([InputLayer(input_shape=(6,)), Dense(100, activation="relu"), Dense(1)])
    assert reg.count_params() == 801
    assert reg.predict(np.zeros((5, 6)), verbose=0).shape == (5, 1)
    inp = Input(shape=(4,))
    h = Dense(4)(inp)
    multi = Model(inp, [Dense(2)(h), Dense(3)(h)])
    out = multi.predict(np.zeros((9, 4)), verbose=0)
    assert isinstance(out, list) and [o.shape for o in out] == [(9, 2), (9, 3)]


def test_predict_after_compile_before_fit(iris):
    """Keras allows predict on a compiled model that was never trained (and on an uncompiled one)."""
    x, _, _ = iris
    model = _mlp()
    expected = _np_forward(model.get_weights(), x[:10], ["relu", "relu", "softmax"])
    np.testing.assert_allclose(model(x[:10]).data, expected, rtol=1e-4, atol=1e-6)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    np.testing.assert_allclose(model.predict(x[:10], verbose=0), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(x[:10]), expected, rtol=1e-4, atol=1e-6)


def test_compile_default_optimizer_is_rmsprop_like_keras(iris):
    x, _, y = iris
    model = _mlp()
    model.compile(loss="categorical_crossentropy")
    assert type(model.optimizer).__name__ == "RMSprop"
    hist = model.fit(x, y, epochs=2, verbose=0)
    assert hist.history["loss"][1] < hist.history["loss"][0]
