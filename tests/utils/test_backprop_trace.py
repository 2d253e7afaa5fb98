"""backprop_trace: the 004 worked exercise (SPEC §1) and the engine's own gradients."""
import numpy as np
import pytest

import axone
from axone import layers, losses
from axone.utils import backprop_trace

W_HIDDEN = np.array([[0.179, -0.186, -0.008, -0.448],
                     [0.044, -0.028, -0.063, -0.131],
                     [0.01, -0.035, -0.004, 0.088]])
PSI = np.array([[0.09], [-0.171], [0.005], [-0.04]])
X_OBS = np.array([7.0, 8.0, 10.0])


def _course_model():
    m = axone.Sequential([layers.Input((3,)), layers.Dense(4, activation="sigmoid", name="hidden"),
                          layers.Dense(1, activation="sigmoid", name="output")])
    m.compile(optimizer="sgd", loss="binary_crossentropy")
    m.layers[0].set_weights([W_HIDDEN, np.zeros(4)])
    m.layers[1].set_weights([PSI, np.zeros(1)])
    return m


def _blocks(text):
    """{layer number: (unit rows, dE/dW rows)} parsed from the printed table."""
    blocks, current = {}, None
    for line in text.splitlines():
        words = line.split()
        if line.startswith("layer "):
            current = int(words[1].rstrip(":"))
            blocks[current] = {"units": {}, "dW": {}, "cols": None, "in_dW": False}
        elif current is not None and words:
            b = blocks[current]
            if words[0] == "unit":
                b["cols"] = words
            elif words[0].startswith("dE/dW"):
                b["in_dW"] = True
            elif words[0].isdigit():
                (b["dW"] if b["in_dW"] else b["units"])[int(words[0])] = words[1:]
    return blocks


def test_course_exercise_values_printed_as_spec_gives_them():
    t = backprop_trace(_course_model(), X_OBS, 1)
    text = str(t)
    blocks = _blocks(text)
    hidden, out = blocks[1], blocks[2]
    z_col = hidden["cols"].index("z") - 1
    # hidden pre-activations (1.705, −1.876, −0.600, −3.304)
    got = [float(hidden["units"][j][z_col]) for j in (1, 2, 3, 4)]
    assert [f"{v:.3f}" for v in got] == ["1.705", "-1.876", "-0.600", "-3.304"]
    assert "E = 0.666612" in text.splitlines()[-1]
    assert "output = [0.513445]" in text
    db_col = hidden["cols"].index("dE/db") - 1
    assert hidden["units"][4][db_col] == "0.000665"                 # ∂E/∂b4
    assert hidden["dW"][3][3] == "0.006652"                         # ∂E/∂w34
    assert out["dW"][1][0] == "-0.411716"                           # ∂E/∂ψ1
    assert out["units"][1][out["cols"].index("dE/db") - 1] == "-0.486555"   # ∂E/∂b5
    # and the data behind it
    np.testing.assert_allclose(t[0].z, [1.705, -1.876, -0.600, -3.304], atol=1e-12)
    assert t.loss == pytest.approx(0.666612, abs=5e-7)
    assert t["output"].kernel_grad[0, 0] == pytest.approx(-0.411716, abs=5e-7)
    assert t[1].bias_grad[0] == pytest.approx(-0.486555, abs=5e-7)
    assert t[0].kernel_grad[2, 3] == pytest.approx(0.006652, abs=5e-7)
    assert t[0].bias_grad[3] == pytest.approx(0.000665, abs=5e-7)
    # the course's chain rule for the output: ∂E/∂f(Z) = −y/f(Z) + (1−y)/(1−f(Z))
    fz = t.output[0]
    assert t[1].grad_a[0] == pytest.approx(-1.0 / fz, rel=1e-6)
    assert t[1].delta[0] == pytest.approx(fz - 1.0, abs=1e-12)


def test_deltas_agree_with_the_engine_gradients_of_the_model():
    m = _course_model()
    t = backprop_trace(m, X_OBS, 1, dtype="float32")
    x = axone.ops.convert_to_tensor(X_OBS[None].astype("float32"))
    with axone.GradientTape() as tape:
        e = losses.get("binary_crossentropy")(np.ones((1, 1), "float32"), m(x))
        e = axone.ops.mean(e)
    grads = tape.gradient(e, m.trainable_weights)
    traced = [t[0].kernel_grad, t[0].bias_grad, t[1].kernel_grad, t[1].bias_grad]
    for g, tr in zip(grads, traced):
        np.testing.assert_allclose(np.asarray(g.data), tr, rtol=1e-5, atol=1e-8)
    assert float(e.data) == pytest.approx(t.loss, rel=1e-6)


def test_backward_identities_and_finite_differences_float64():
    rng = np.random.default_rng(0)
    m = axone.Sequential([layers.Input((3,)), layers.Dense(5, activation="tanh"),
                          layers.Dense(4, activation="relu"), layers.Dense(3, activation="softmax")])
    m.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = rng.normal(size=3)
    y = np.array([0.0, 1.0, 0.0])
    t = backprop_trace(m, x, y)
    assert [lt.activation for lt in t] == ["tanh", "relu", "softmax"]
    for k, lt in enumerate(t):
        np.testing.assert_allclose(lt.kernel_grad, np.outer(lt.inputs, lt.delta), rtol=1e-12,
                                   atol=1e-15)
        np.testing.assert_allclose(lt.bias_grad, lt.delta, rtol=1e-12, atol=1e-15)
        if k + 1 < len(t):      # ∂E/∂a⁽ˡ⁾ = δ⁽ˡ⁺¹⁾ W⁽ˡ⁺¹⁾ᵀ
            np.testing.assert_allclose(lt.grad_a, t[k + 1].kernel @ t[k + 1].delta, rtol=1e-10,
                                       atol=1e-14)
    np.testing.assert_allclose(t[2].delta, t.output - y, atol=1e-12)     # softmax + CE: ŷ − y
    np.testing.assert_allclose(t[0].delta, t[0].grad_a * (1 - np.tanh(t[0].z) ** 2), rtol=1e-10)

    def forward(ws):
        a = x
        for (k, b), f in zip(ws, (np.tanh, lambda v: np.maximum(v, 0), None)):
            z = a @ k + b
            a = np.exp(z - z.max()) / np.exp(z - z.max()).sum() if f is None else f(z)
        return -np.log(a[1])

    ws = [(lt.kernel.copy(), lt.bias.copy()) for lt in t]
    assert forward(ws) == pytest.approx(t.loss, rel=1e-6)
    h = 1e-6
    for li in range(3):
        for idx in [(0, 0), (1, 2), (2, 1)]:
            plus = [(k.copy(), b.copy()) for k, b in ws]
            minus = [(k.copy(), b.copy()) for k, b in ws]
            plus[li][0][idx] += h
            minus[li][0][idx] -= h
            num = (forward(plus) - forward(minus)) / (2 * h)
            assert t[li].kernel_grad[idx] == pytest.approx(num, rel=1e-4, abs=1e-7)


def test_functional_model_with_activation_layer_and_loss_argument():
    inp = layers.Input((2,))
    h = layers.Dense(3, name="hidden")(inp)
    h = layers.Activation("sigmoid", name="act")(h)
    h = layers.Dropout(0.5)(h)
    out = layers.Dense(1, name="out")(h)
    m = axone.Model(inp, out)
    t = backprop_trace(m, [0.5, -1.0], [2.0], loss="mse")
    assert [lt.name for lt in t] == ["hidden", "act", "out"]
    assert t["act"].kernel is None and t["act"].kernel_grad is None
    np.testing.assert_allclose(t["act"].z, t["hidden"].a)
    np.testing.assert_allclose(t["act"].delta, t["hidden"].delta)
    np.testing.assert_allclose(t["out"].grad_a, 2 * (t.output - 2.0), rtol=1e-10)
    pred = m.predict(np.array([[0.5, -1.0]], "float32"), verbose=0)[0]
    np.testing.assert_allclose(t.output, pred, rtol=1e-5)
    assert "layer 2: act (Activation, activation sigmoid)" in str(t)
    # a Loss object, and a loss function
    t2 = backprop_trace(m, [0.5, -1.0], [2.0], loss=losses.MeanSquaredError())
    t3 = backprop_trace(m, [0.5, -1.0], [2.0], loss=losses.get("mean_squared_error"))
    assert t2.loss == pytest.approx(t.loss) and t3.loss == pytest.approx(t.loss)
    assert t.loss == pytest.approx(float((t.output[0] - 2.0) ** 2))


def test_layers_that_cannot_be_traced_are_named():
    conv = axone.Sequential([layers.Input((4, 4, 1)), layers.Conv2D(2, 3, name="my_conv"),
                             layers.Flatten(), layers.Dense(1)])
    with pytest.raises(ValueError, match=r"'my_conv' \(Conv2D\)"):
        backprop_trace(conv, np.zeros((4, 4, 1)), [0.0], loss="mse")
    drop = axone.Sequential([layers.Input((2,)), layers.Dense(2), layers.Dropout(0.3, name="drop"),
                             layers.Dense(1)])
    with pytest.raises(ValueError, match=r"'drop' \(Dropout\) with training=True"):
        backprop_trace(drop, [1.0, 2.0], [0.0], loss="mse", training=True)
    backprop_trace(drop, [1.0, 2.0], [0.0], loss="mse")        # identity at inference


def test_bad_models_and_inputs():
    a = layers.Input((2,))
    b = layers.Dense(2)(a)
    c = layers.Add()([b, layers.Dense(2)(a)])
    with pytest.raises(ValueError, match="not a chain|cannot trace"):
        backprop_trace(axone.Model(a, c), [1.0, 2.0], [0.0, 0.0], loss="mse")
    m = _course_model()
    uncompiled = axone.Sequential([layers.Input((3,)), layers.Dense(1)])
    with pytest.raises(ValueError, match="no loss"):
        backprop_trace(uncompiled, X_OBS, [1.0])
    with pytest.raises(ValueError, match="x must have 3 values"):
        backprop_trace(m, [1.0, 2.0], 1)
    with pytest.raises(ValueError, match="one observation"):
        backprop_trace(m, np.ones((2, 3)), 1)
    with pytest.raises(ValueError, match="y must have 1 values"):
        backprop_trace(m, X_OBS, [1.0, 0.0])
    with pytest.raises(TypeError, match="x must hold numbers"):
        backprop_trace(m, ["a", "b", "c"], 1)
    with pytest.raises(ValueError, match="dtype"):
        backprop_trace(m, X_OBS, 1, dtype="int32")
    with pytest.raises(ValueError, match="not built"):
        backprop_trace(axone.Sequential([layers.Dense(1)]), X_OBS, 1, loss="mse")


def test_gradients_match_keras_3_torch_backend():
    import sys
    for name in list(sys.modules):
        if (name == "keras" or name.startswith("keras.")) and getattr(sys.modules[name],
                                                                       "__axone_alias__", False):
            pytest.skip("the keras import alias is installed in this process")
    keras = pytest.importorskip("keras")
    torch = pytest.importorskip("torch")
    if keras.backend.backend() != "torch":
        pytest.skip("needs KERAS_BACKEND=torch")
    rng = np.random.default_rng(3)
    weights = [rng.normal(size=(3, 4)), rng.normal(size=4) * 0.1, rng.normal(size=(4, 2)),
               rng.normal(size=2) * 0.1]
    x = np.array([0.3, -1.2, 0.8])
    y = np.array([0.0, 1.0])
    ours = axone.Sequential([layers.Input((3,)), layers.Dense(4, activation="elu"),
                             layers.Dense(2, activation="softmax")])
    ours.compile(optimizer="sgd", loss="categorical_crossentropy")
    ours.set_weights([w.astype("float32") for w in weights])
    t = backprop_trace(ours, x, y)
    km = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="elu"),
                           keras.layers.Dense(2, activation="softmax")])
    km.set_weights([w.astype("float32") for w in weights])
    xt = torch.tensor(x[None].astype("float32"))
    e = keras.losses.categorical_crossentropy(torch.tensor(y[None].astype("float32")), km(xt))
    e = e.mean()
    e.backward()
    kgrads = [v.value.grad.detach().numpy() for v in km.trainable_weights]
    ours_grads = [t[0].kernel_grad, t[0].bias_grad, t[1].kernel_grad, t[1].bias_grad]
    for g, k in zip(ours_grads, kgrads):
        np.testing.assert_allclose(g, k, rtol=1e-4, atol=1e-6)
    assert t.loss == pytest.approx(float(e.detach()), rel=1e-5)


def test_nested_sequential_without_bias_and_softmax_activation_layer():
    inner = axone.Sequential([layers.Input((3,)), layers.Dense(2, use_bias=False,
                                                               activation="relu", name="inner")])
    m = axone.Sequential([layers.Input((3,)), inner, layers.Activation("softmax", name="soft")])
    m.layers[0].layers[0].set_weights([np.array([[1.0, -1.0], [0.5, -2.0], [0.0, 0.5]])])
    t = backprop_trace(m, [1.0, 2.0, 3.0], [0.0, 1.0], loss="categorical_crossentropy")
    assert [lt.name for lt in t] == ["inner", "soft"]
    assert t["inner"].bias is None and t["inner"].bias_grad is None
    np.testing.assert_allclose(t["inner"].z, [2.0, -3.5])
    np.testing.assert_array_equal(t["inner"].delta[1], 0.0)          # ReLU off: no gradient
    p = np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum()
    np.testing.assert_allclose(t.output, p)
    np.testing.assert_allclose(t["soft"].delta, p - [0.0, 1.0], atol=1e-12)
    text = str(t)
    assert "-0.000000" not in text and "dE/db" not in text.split("layer 2")[0]
