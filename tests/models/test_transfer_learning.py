"""Transfer learning as Keras 3 does it: freezing (``trainable``) on layers, nested models and
variables, BatchNormalization in inference mode when frozen, a change of ``trainable`` with or
without recompiling, ``summary(show_trainable=True)`` and its totals, and course 004's head on a
VGG16-shaped convolutional base (feature extraction, then fine-tuning of the last block),
step for step against real Keras (``KERAS_BACKEND=torch``) from the same weights.

Course 004 writes ``model.layers[2:4].trainable = False``: ``model.layers`` is a Python list, and
setting an attribute on a list raises ``AttributeError`` (in Keras as in axone); freezing some
layers is a loop over them (SPEC §8).
"""
import warnings

import numpy as np
import pytest

import axone
from axone import layers as L


def _keras():
    return pytest.importorskip("keras")


def _np(t):
    t = getattr(t, "value", t)
    if hasattr(t, "detach"):
        t = t.detach()
        t = t.cpu().numpy() if hasattr(t, "cpu") else t
    return np.asarray(t)


def _paths(ws):
    return [w.path.split("/", 1)[-1] if w.path.count("/") > 1 else w.path for w in ws]


def _bn_model(ns):
    inp = ns.Input((4,))
    # no bias before the normalization: its gradient is zero up to rounding, which Adam would
    # turn into steps of either sign
    x = ns.layers.Dense(5, use_bias=False, name="a")(inp)
    x = ns.layers.BatchNormalization(name="bn")(x)
    out = ns.layers.Dense(2, name="b")(x)
    m = ns.Model(inp, out)
    w = [np.arange(np.prod(v.shape), dtype="float32").reshape(v.shape) / 50 - 0.3
         for v in m.weights]
    w[2] = np.linspace(0.5, 2, 5).astype("float32")    # beta
    w[3] = np.linspace(-1, 1, 5).astype("float32")     # moving mean
    w[4] = np.linspace(1, 3, 5).astype("float32")      # moving variance
    m.set_weights(w)
    return m


def _data(n=16):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, 4)).astype("float32") * 3 + 1,
            rng.normal(size=(n, 2)).astype("float32"))


# ------------------------------------------------------------------ trainable flags
def _flag_facts(ns):
    facts = {}
    d = ns.layers.Dense(3, name="d")
    d.build((None, 4))
    d.trainable = False
    facts["frozen vars"] = [w.trainable for w in d.weights]
    facts["frozen lists"] = (_paths(d.trainable_weights), _paths(d.non_trainable_weights))
    d.trainable = True
    facts["unfrozen vars"] = [w.trainable for w in d.weights]
    d.kernel.trainable = False
    facts["kernel frozen"] = (_paths(d.trainable_weights), _paths(d.non_trainable_weights))
    d.trainable = False
    d.trainable = True                  # unfreezing the layer sets its variables trainable again
    facts["toggled"] = _paths(d.trainable_weights)
    m = _bn_model(ns)
    facts["weights"] = _paths(m.weights)
    facts["tw"], facts["ntw"] = _paths(m.trainable_weights), _paths(m.non_trainable_weights)
    m.get_layer("bn").trainable = False
    facts["bn frozen"] = (_paths(m.trainable_weights), _paths(m.non_trainable_weights))
    m.trainable = False
    facts["model frozen"] = ([l.trainable for l in m.layers], _paths(m.trainable_weights),
                             _paths(m.non_trainable_weights))
    m.trainable = True
    facts["model unfrozen"] = ([l.trainable for l in m.layers], _paths(m.trainable_weights))
    base = ns.Sequential([ns.Input((4,)), ns.layers.Dense(3, name="c1"),
                          ns.layers.BatchNormalization(name="bn2")], name="base")
    base.trainable = False
    i = ns.Input((4,))
    n = ns.Model(i, ns.layers.Dense(2, name="head")(base(i, training=False)))
    facts["nested"] = ([l.trainable for l in n.layers], _paths(n.trainable_weights),
                       _paths(n.non_trainable_weights), n.count_params(),
                       [w.trainable for w in base.weights])
    return facts


def test_trainable_flags_and_weight_lists_as_keras():
    keras = _keras()
    ref, got = _flag_facts(keras), _flag_facts(axone)
    assert got == ref
    assert got["toggled"] == ["d/kernel", "d/bias"]
    assert got["frozen vars"] == [False, False]


def test_layer_trainable_reaches_variables_and_gradients():
    d = L.Dense(2)
    d.build((None, 3))
    d.trainable = False
    assert not d.kernel.trainable and not d.kernel.requires_grad
    from axone.autograd.tensor import Tensor
    t = Tensor(np.ones((1, 3), "float32"), requires_grad=True)
    axone.ops.sum(d(t)).backward()
    assert d.kernel.grad is None and t.grad is not None
    d.trainable = True
    assert d.kernel.trainable and d.kernel.requires_grad


def test_course_list_slice_raises_and_the_loop_freezes():
    keras = _keras()
    for ns in (keras, axone):
        m = _bn_model(ns)
        with pytest.raises(AttributeError):
            m.layers[1:3].trainable = False
        assert all(l.trainable for l in m.layers)
        for layer in m.layers[1:3]:
            layer.trainable = False
        assert [l.trainable for l in m.layers] == [True, False, False, True]
        assert _paths(m.trainable_weights) == ["b/kernel", "b/bias"]


def test_trainable_config_round_trip():
    m = _bn_model(axone)
    m.get_layer("bn").trainable = False
    cfg = m.get_layer("bn").get_config()
    assert cfg["trainable"] is False
    back = L.BatchNormalization.from_config(cfg)
    assert back.trainable is False
    m2 = axone.Model.from_config(m.get_config())
    assert [l.trainable for l in m2.layers] == [True, True, False, True]


# ------------------------------------------------------------- BatchNormalization
def test_frozen_batchnorm_runs_in_inference_mode_as_keras():
    keras = _keras()
    x, _ = _data()
    outs = {}
    for name, ns in (("keras", keras), ("axone", axone)):
        m = _bn_model(ns)
        bn = m.get_layer("bn")
        bn.trainable = False
        y_train = _np(m(x, training=True))
        y_infer = _np(m(x, training=False))
        np.testing.assert_array_equal(y_train, y_infer)
        np.testing.assert_array_equal(_np(bn.moving_mean), np.linspace(-1, 1, 5).astype("float32"))
        bn.trainable = True
        y_batch = _np(m(x, training=True))
        outs[name] = (y_infer, y_batch, _np(bn.moving_mean), _np(bn.moving_variance))
    for a, k in zip(outs["axone"], outs["keras"]):
        np.testing.assert_allclose(a, k, rtol=1e-5, atol=1e-5)
    assert not np.allclose(outs["axone"][0], outs["axone"][1])


def _fit_record(ns, setup, steps, opt):
    """Weights, per-step losses and moving statistics after ``steps`` train_on_batch calls."""
    m = _bn_model(ns)
    setup(m)
    m.compile(optimizer=opt(ns), loss="mse")
    x, y = _data()
    losses = [float(np.asarray(m.train_on_batch(x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8])))
              for i in range(steps)]
    return m, losses, [_np(w) for w in m.weights]


@pytest.mark.parametrize("where", ["bn", "a", "model_bn"])
def test_fit_with_frozen_layers_matches_keras(where):
    keras = _keras()

    def setup(m):
        if where == "model_bn":
            m.get_layer("bn").trainable = False
            m.get_layer("a").trainable = False
        else:
            m.get_layer(where).trainable = False

    sgd = lambda ns: ns.optimizers.SGD(0.1, momentum=0.9)
    km, kl, kw = _fit_record(keras, setup, 2, sgd)
    am, al, aw = _fit_record(axone, setup, 2, sgd)
    np.testing.assert_allclose(al, kl, rtol=1e-5)
    for a, k in zip(aw, kw):
        np.testing.assert_allclose(a, k, rtol=1e-5, atol=1e-6)
    first = [_np(w) for w in _bn_model(axone).weights]
    frozen = {id(w) for l in am.layers if not l.trainable for w in l.weights}
    for w, a, f in zip(am.weights, aw, first):
        if id(w) in frozen:
            np.testing.assert_array_equal(a, f)     # frozen weights and statistics do not move
        else:
            assert not np.array_equal(a, f)


def test_frozen_base_called_with_training_false_inside_a_new_model():
    keras = _keras()
    x, y = _data()
    res = {}
    for name, ns in (("keras", keras), ("axone", axone)):
        base = _bn_model(ns)
        base.trainable = False
        before = [_np(w) for w in base.weights]
        i = ns.Input((4,))
        h = base(i, training=False)
        out = ns.layers.Dense(1, name="head", kernel_initializer="ones")(h)
        model = ns.Model(i, out)
        model.compile(optimizer=ns.optimizers.SGD(0.05), loss="mse")
        hist = model.fit(x, y[:, :1], batch_size=8, epochs=2, shuffle=False, verbose=0)
        for b, w in zip(before, base.weights):
            np.testing.assert_array_equal(b, _np(w))
        res[name] = (hist.history["loss"], [_np(w) for w in model.get_layer("head").weights],
                     len(model.trainable_weights), len(model.non_trainable_weights))
    np.testing.assert_allclose(res["axone"][0], res["keras"][0], rtol=1e-5)
    for a, k in zip(res["axone"][1], res["keras"][1]):
        np.testing.assert_allclose(a, k, rtol=1e-5, atol=1e-6)
    assert res["axone"][2:] == res["keras"][2:] == (2, 7)


# ----------------------------------------------------- changing trainable and compile
def _two_fits(ns, between, recompile=None):
    m = _bn_model(ns)
    m.compile(optimizer=ns.optimizers.Adam(0.01), loss="mse")
    x, y = _data()
    m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    between(m)
    if recompile is not None:
        m.compile(optimizer=recompile(ns), loss="mse")
    h = m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    return h.history["loss"], [_np(w) for w in m.weights]


@pytest.mark.parametrize("recompile", [None, lambda ns: ns.optimizers.Adam(0.02)],
                         ids=["same_optimizer", "recompiled"])
def test_freezing_after_fit_with_and_without_recompiling_as_keras(recompile):
    keras = _keras()
    freeze = lambda m: setattr(m.get_layer("a"), "trainable", False)
    kl, kw = _two_fits(keras, freeze, recompile)
    al, aw = _two_fits(axone, freeze, recompile)
    # without recompiling, Adam keeps each remaining weight's moments (Keras's per-variable state)
    np.testing.assert_allclose(al, kl, rtol=1e-5)
    for a, k in zip(aw, kw):
        np.testing.assert_allclose(a, k, rtol=1e-5, atol=1e-6)


def test_unfreezing_needs_a_new_optimizer_as_keras():
    keras = _keras()
    x, y = _data()
    for ns in (keras, axone):
        m = _bn_model(ns)
        m.get_layer("a").trainable = False
        opt = ns.optimizers.Adam(0.01)
        m.compile(optimizer=opt, loss="mse")
        m.fit(x, y, batch_size=8, epochs=1, verbose=0)
        assert m.optimizer.built
        m.get_layer("a").trainable = True
        with pytest.raises(ValueError, match="Unknown variable"):
            m.fit(x, y, batch_size=8, epochs=1, verbose=0)
        m.compile(optimizer=opt, loss="mse")          # the same, built, optimizer instance
        with pytest.raises(ValueError, match="Unknown variable"):
            m.fit(x, y, batch_size=8, epochs=1, verbose=0)
        k0 = _np(m.get_layer("a").kernel).copy()
        m.compile(optimizer=ns.optimizers.Adam(0.01), loss="mse")
        m.fit(x, y, batch_size=8, epochs=1, verbose=0)
        assert not np.array_equal(k0, _np(m.get_layer("a").kernel))


def test_unfreeze_after_a_frozen_phase_keeps_the_state_of_weights_trained_before():
    keras = _keras()
    x, y = _data()
    res = {}
    for name, ns in (("keras", keras), ("axone", axone)):
        m = _bn_model(ns)
        m.compile(optimizer=ns.optimizers.Adam(0.01), loss="mse")
        m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        m.get_layer("a").trainable = False
        m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        m.get_layer("a").trainable = True           # known to the optimizer: its moments resume
        h = m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        res[name] = (h.history["loss"], [_np(w) for w in m.weights])
    np.testing.assert_allclose(res["axone"][0], res["keras"][0], rtol=1e-5)
    for a, k in zip(res["axone"][1], res["keras"][1]):
        np.testing.assert_allclose(a, k, rtol=1e-5, atol=1e-6)


def test_trainable_changed_by_a_callback_takes_effect_at_the_next_step():
    keras = _keras()
    x, y = _data(32)
    res = {}
    for name, ns in (("keras", keras), ("axone", axone)):
        class FreezeAfterTwo(ns.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == 1:
                    self.model.get_layer("b").trainable = False

        m = _bn_model(ns)
        m.compile(optimizer=ns.optimizers.SGD(0.05, momentum=0.5), loss="mse")
        m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False, callbacks=[FreezeAfterTwo()])
        res[name] = [_np(w) for w in m.weights]
    for a, k in zip(res["axone"], res["keras"]):
        np.testing.assert_allclose(a, k, rtol=1e-5, atol=1e-6)


def test_no_trainable_weights_warns_as_keras():
    keras = _keras()
    x, y = _data()
    texts = {}
    for name, ns in (("keras", keras), ("axone", axone)):
        m = _bn_model(ns)
        m.trainable = False
        m.compile(optimizer="sgd", loss="mse")
        w0 = [_np(w).copy() for w in m.weights]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m.fit(x, y, batch_size=8, epochs=1, verbose=0)
        assert any("does not have any trainable weights" in str(w.message) for w in caught)
        for a, b in zip(w0, m.weights):
            np.testing.assert_array_equal(a, _np(b))
        texts[name] = _summary_text(m)
        m.trainable = True               # the optimizer was built on no weights
        with pytest.raises(ValueError, match="Unknown variable"):
            m.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert _keras_totals(texts["axone"]) == _keras_totals(texts["keras"])
    assert "Optimizer params" in texts["axone"]


# ------------------------------------------------------------------------ summary
def _keras_totals(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        for key in ("Total params", "Trainable params", "Non-trainable params", "Optimizer params"):
            if line.startswith(key + ":"):
                out[key] = line.split(":", 1)[1].strip()
    return out


def _summary_text(model, **kw):
    lines = []
    model.summary(print_fn=lambda s, **k: lines.append(s), **kw)
    return "\n".join(lines)


def _nested(ns):
    base = ns.Sequential([ns.Input((4,)), ns.layers.Dense(3, name="c1"),
                          ns.layers.BatchNormalization(name="bn2")], name="base")
    base.trainable = False
    i = ns.Input((4,))
    return base, ns.Model(i, ns.layers.Dense(2, name="head")(base(i, training=False)), name="n")


def test_summary_show_trainable_nested_and_totals_as_keras():
    keras = _keras()
    x, y = _data()
    texts = {}
    for name, ns in (("keras", keras), ("axone", axone)):
        base, n = _nested(ns)
        before = _summary_text(n, show_trainable=True, expand_nested=True)
        n.compile(optimizer="sgd", loss="mse")
        n.fit(x, y, batch_size=8, epochs=1, verbose=0)
        frozen = _summary_text(n, show_trainable=True, expand_nested=True)
        base.trainable = True
        n.compile(optimizer="adam", loss="mse")
        n.fit(x, y, batch_size=8, epochs=1, verbose=0)
        tuned = _summary_text(n, show_trainable=True)
        texts[name] = (before, frozen, tuned)
    for a, k in zip(texts["axone"], texts["keras"]):
        assert _keras_totals(a) == _keras_totals(k), a
    assert "Optimizer params" not in texts["axone"][0]
    assert _keras_totals(texts["axone"][2])["Optimizer params"] == "60 (240.00 B)"
    rows = [l.split() for l in texts["axone"][1].splitlines() if "(" in l and "Model" not in l
            and not l.lstrip().startswith(("Layer", "Total", "Trainable", "Non-", "Optimizer"))]
    assert [(r[0] if r[0] != "└" else r[1], r[-1]) for r in rows] == [
        (rows[0][0], "-"), ("base", "N"), ("c1", "N"), ("bn2", "N"), ("head", "Y")]
    assert "   └ c1 (Dense)" in texts["axone"][1]
    ktrain = [l for l in texts["keras"][2].splitlines() if "base (Sequential)" in l]
    assert "Y" in ktrain[0].split("│")[-2]
    assert [l.split()[-1] for l in texts["axone"][2].splitlines() if "(Sequential)" in l] == ["Y"]


# ---------------------------------------------------- course 004: VGG16 conv base
VGG_BLOCKS = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]


def _vgg16_base(ns, size):
    """The 19 layers of Keras's VGG16 without its top (input_layer, block1_conv1 … block5_pool)."""
    inp = ns.Input((size, size, 3))
    x = inp
    for b, n, filters in VGG_BLOCKS:
        for c in range(1, n + 1):
            x = ns.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                 name=f"block{b}_conv{c}")(x)
        x = ns.layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
    return ns.Model(inp, x, name="vgg16")


def _course_model(ns, base, size):
    """004's listing: layers[1:18] into a Sequential, then GlobalMaxPooling2D and two Dense."""
    s_model = ns.Sequential(name="s_model")
    for layer in base.layers[1:18]:
        s_model.add(layer)
    s_model.trainable = True
    inputs = ns.Input(shape=(size, size, 3))
    x = s_model(inputs, training=True)
    x = ns.layers.GlobalMaxPooling2D()(x)
    x = ns.layers.Dense(256, activation="relu")(x)
    outputs = ns.layers.Dense(3, activation="softmax")(x)
    return s_model, ns.Model(inputs, outputs)


def _digits(size, n):
    x, y = axone.datasets.load_digits()
    keep = y < 3
    x, y = x[keep][:n], y[keep][:n]
    x = np.kron(x / 16.0, np.ones((size // 8, size // 8), np.float32)).astype("float32")
    x = np.repeat(x[..., None], 3, axis=-1)
    return x, np.eye(3, dtype="float32")[y]


def test_course_vgg16_head_parameter_count_and_layers():
    base = _vgg16_base(axone, 32)
    assert [l.name for l in base.layers][1:] == [
        f"block{b}_{k}" for b, n, _ in VGG_BLOCKS
        for k in [f"conv{c}" for c in range(1, n + 1)] + ["pool"]]
    assert len(base.layers) == 19 and base.count_params() == 14_714_688
    s_model, model = _course_model(axone, base, 32)
    assert len(s_model.layers) == 17 and s_model.layers[-1].name == "block5_conv3"
    assert model.count_params() == 14_846_787
    text = _summary_text(model)
    assert "Total params: 14,846,787 (56.64 MB)" in text


def test_course_vgg16_feature_extraction_then_fine_tuning_matches_keras():
    keras = _keras()
    size, n, batch = 32, 8, 4
    x, y = _digits(size, n)
    axone.utils.set_random_seed(0)
    a_base = _vgg16_base(axone, size)
    a_s, a_model = _course_model(axone, a_base, size)
    k_base = _vgg16_base(keras, size)
    k_s, k_model = _course_model(keras, k_base, size)
    # the same initial weights (small kernels keep the deep ReLU stack's activations moderate)
    rng = np.random.default_rng(1)
    init = [(rng.standard_normal(w.shape) * (np.sqrt(2.0 / np.prod(w.shape[:-1])) if w.ndim > 1
                                              else 0.01)).astype("float32")
            for w in a_model.get_weights()]
    a_model.set_weights(init)
    k_model.set_weights(init)
    conv = lambda m: [w for l in m.layers if l.name == "s_model" for w in l.weights]

    def phase(opt_lr, prepare):
        losses = {}
        for name, s, m, ns in (("axone", a_s, a_model, axone), ("keras", k_s, k_model, keras)):
            prepare(s)
            m.compile(optimizer=ns.optimizers.SGD(opt_lr), loss="categorical_crossentropy")
            losses[name] = [float(np.asarray(m.train_on_batch(x[i:i + batch], y[i:i + batch])))
                            for i in range(0, n, batch)]
        np.testing.assert_allclose(losses["axone"], losses["keras"], rtol=2e-5)
        for a, k in zip(a_model.get_weights(), k_model.get_weights()):
            np.testing.assert_allclose(a, _np(k), rtol=1e-4, atol=1e-6)
        return losses

    # feature extraction: the whole base frozen, only the head trains
    def freeze(s):
        s.trainable = False

    before = [_np(w).copy() for w in a_model.weights]
    phase(0.05, freeze)
    assert len(a_model.trainable_weights) == 4
    n_conv = len(conv(a_model))
    after = [_np(w) for w in a_model.weights]
    for b, a in zip(before[:n_conv], after[:n_conv]):
        np.testing.assert_array_equal(b, a)
    assert all(not np.array_equal(b, a) for b, a in zip(before[n_conv:], after[n_conv:]))

    # fine-tuning: the last block (block5_conv1..3) trains with the head (a loop, SPEC §8)
    def unfreeze_last_block(s):
        s.trainable = True
        for layer in s.layers[:-3]:
            layer.trainable = False

    before = after
    phase(0.01, unfreeze_last_block)
    assert [l.name for l in a_s.layers if l.trainable] == [
        "block5_conv1", "block5_conv2", "block5_conv3"]
    assert len(a_model.trainable_weights) == 10
    after = [_np(w) for w in a_model.weights]
    moved = [not np.array_equal(b, a) for b, a in zip(before, after)]
    assert moved == [False] * (n_conv - 6) + [True] * 6 + [True] * 4
    text = _summary_text(a_model, show_trainable=True)
    ref = _summary_text(k_model, show_trainable=True)
    assert _keras_totals(text) == _keras_totals(ref)


# ------------------------------------------------------- a training flag given in the graph
def test_a_training_flag_given_in_the_graph_is_used_as_keras_3_uses_it():
    """Keras 3 keeps ``training=`` of a functional call with its node and uses it only when the
    model is called without one: ``base(x, training=False)`` under fit still trains the
    unfrozen base's BatchNormalization statistics (fit's training=True wins), as real Keras
    from the same weights; a Dropout called with training=True is on in ``model(x)`` and off
    in predict; the flag survives get_config / from_config."""
    keras = _keras()
    axone.utils.set_random_seed(0)
    rng = np.random.default_rng(17)
    x = rng.normal(size=(8, 6, 6, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[rng.integers(0, 2, 8)]
    stats, init = {}, None
    for name, lib in (("axone", axone), ("keras", keras)):
        Lm = lib.layers
        b_in = Lm.Input((6, 6, 3))
        base = lib.Model(b_in, Lm.Activation("relu")(
            Lm.BatchNormalization(momentum=0.5)(Lm.Conv2D(4, 3)(b_in))))
        inp = Lm.Input((6, 6, 3))
        model = lib.Model(inp, Lm.Dense(2, activation="softmax")(
            Lm.GlobalAveragePooling2D()(base(inp, training=False))))
        if init is None:
            init = model.get_weights()
        else:
            model.set_weights(init)
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="categorical_crossentropy")
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        stats[name] = [_np(w) for w in base.layers[2].weights]
    assert np.abs(stats["keras"][2]).max() > 0                   # Keras updated the mean
    for a, b in zip(stats["axone"], stats["keras"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

    ones = np.ones((4, 50), np.float32)
    for lib in (axone, keras):
        inp = lib.layers.Input((50,))
        mc = lib.Model(inp, lib.layers.Dropout(0.5)(inp, training=True))
        assert (_np(mc(ones)) == 0).any()
        assert not (mc.predict(ones, verbose=0) == 0).any()
        again = lib.Model.from_config(mc.get_config())
        assert (_np(again(ones)) == 0).any()
