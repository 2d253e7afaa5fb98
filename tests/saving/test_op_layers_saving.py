"""Functional models built with keras.ops and tensor operators on symbolic tensors save and load
(model files, to_json / model_from_json, clone_model); optimizers whose state is more than flat
vectors (LossScaleOptimizer, MultiOptimizer, Adafactor) resume training as if never saved."""
import json
import zipfile

import numpy as np
import pytest

import axone as keras
from axone import layers, optimizers
from axone.compat import keras_ops as ops
from axone.fileio import FileFormatError
from axone.layers.base import MAX_CONSTANT_ELEMENTS, OpLayer


def _rng():
    return np.random.default_rng(7)


# ---------------------------------------------------------------- models with ops
def _binary_constants():
    i = keras.Input((4,))
    x = layers.Dense(3)(i)
    y = 2.0 * x - 1.0                     # __rmul__, __sub__
    y = 1.0 - y / 3.0 + (x ** 2) * 0.5    # __rsub__, __truediv__, __pow__, __mul__
    y = -abs(y) + 2.0 ** (x * 0.1)        # __neg__, __abs__, __rpow__
    y = y @ np.arange(6, dtype="float32").reshape(3, 2)   # a constant array operand
    return keras.Model(i, layers.Dense(2)(y)), [(5, 4)]


def _two_inputs():
    i, j = keras.Input((4,)), keras.Input((4,))
    x = layers.Dense(3)(i) + layers.Dense(3)(j)
    return keras.Model([i, j], ops.relu(x * 2.0)), [(5, 4), (5, 4)]


def _unary():
    i = keras.Input((4,))
    x = layers.Dense(4)(i)
    y = ops.tanh(x) + ops.exp(-ops.square(x)) + ops.sqrt(ops.abs(x) + 1e-3)
    return keras.Model(i, ops.nn.sigmoid(y)), [(5, 4)]


def _reductions():
    i = keras.Input((3, 4))
    x = layers.Dense(4)(i)
    a = ops.mean(x, axis=-1, keepdims=True)
    b = ops.sum(x, axis=(1,), keepdims=False)
    c = ops.max(x, axis=1)
    y = ops.concatenate([ops.reshape(a, (-1, 3)), b, c], axis=-1)
    return keras.Model(i, y), [(5, 3, 4)]


def _getitem():
    i = keras.Input((3, 6))
    x = layers.Dense(6)(i)
    parts = [ops.reshape(x[:, 0], (-1, 6)), ops.reshape(x[..., None, 1:4], (-1, 9)),
             ops.reshape(x[:, ::2, -1], (-1, 2)), ops.reshape(x[:, 1:, 2], (-1, 2))]
    return keras.Model(i, ops.concatenate(parts, axis=1)), [(5, 3, 6)]


def _stack_concat():
    i = keras.Input((4,))
    a, b, c = layers.Dense(3)(i), layers.Dense(3)(i), layers.Dense(3)(i)
    s = ops.stack([a, b, c], axis=1)                     # (None, 3, 3)
    y = ops.concatenate((ops.reshape(s, (-1, 9)), a * b), axis=-1)
    return keras.Model(i, y), [(5, 4)]


def _keyword_tensors():
    i = keras.Input((4,))
    a, b = layers.Dense(3)(i), layers.Dense(3)(i)
    y = ops.where(condition=a > 0.0, x1=a, x2=b * 0.5)
    y = ops.clip(ops.maximum(x1=y, x2=b - 1.0), x_min=-1.0, x_max=1.5)
    return keras.Model(i, ops.cast(y, dtype="float32")), [(5, 4)]


def _image_nn():
    i = keras.Input((6, 6, 2))
    x = layers.Conv2D(3, 3, padding="same")(i)
    x = ops.image.resize(x, (4, 4), interpolation="bilinear")
    x = ops.nn.gelu(x)
    x = ops.nn.softmax(ops.reshape(x, (-1, 48)), axis=-1)
    return keras.Model(i, x), [(2, 6, 6, 2)]


def _dtypes_and_arrays():
    i = keras.Input((4,))
    x = layers.Dense(4)(i)
    y = ops.add(x, np.float32(0.25)) * np.array([1, 2, 3, 4], dtype="float32")
    y = ops.cast(y, np.float64)
    y = ops.cast(y, dtype=np.dtype("float32"))
    return keras.Model(i, y), [(5, 4)]


def _grad_cam():
    base_in = keras.Input((8, 8, 1))
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="last_conv")(base_in)
    h = layers.GlobalAveragePooling2D()(h)
    base = keras.Model(base_in, layers.Dense(3, activation="softmax")(h))
    conv = base.get_layer("last_conv").output
    pooled = ops.mean(conv, axis=(1, 2))                    # (None, 4)
    score = base.output[:, 1]                               # the class's score
    return keras.Model(base.inputs, [conv, ops.expand_dims(score, -1) * pooled]), [(2, 8, 8, 1)]


def _several_outputs():
    i = keras.Input((6,))
    x = layers.Dense(6)(i)
    a, b = ops.split(x, 2, axis=-1)
    q, r = ops.linalg.qr(ops.reshape(x, (-1, 3, 2)))
    return keras.Model(i, [a * b, ops.reshape(q, (-1, 6)), ops.sum(r, axis=(1, 2))]), [(5, 6)]


BUILDERS = [_several_outputs, _binary_constants, _two_inputs, _unary, _reductions, _getitem, _stack_concat,
            _keyword_tensors, _image_nn, _dtypes_and_arrays, _grad_cam]


def _inputs(shapes):
    rng = _rng()
    xs = [rng.normal(size=s).astype("float32") for s in shapes]
    return xs if len(xs) > 1 else xs[0]


def _predict(model, xs):
    out = model.predict(xs, verbose=0)
    return [np.asarray(o) for o in out] if isinstance(out, list) else [np.asarray(out)]


def _config(path):
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))


@pytest.mark.parametrize("build", BUILDERS, ids=lambda f: f.__name__.strip("_"))
def test_ops_model_round_trip(build, tmp_path):
    model, shapes = build()
    xs = _inputs(shapes)
    want = _predict(model, xs)
    assert any(isinstance(l, OpLayer) for l in model.layers)
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras")
    for a, b in zip(want, _predict(back, xs)):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    back.save(tmp_path / "again.keras")
    assert _config(tmp_path / "again.keras") == _config(tmp_path / "m.keras")
    # to_json / model_from_json and clone_model: the same graph, fresh weights
    for copy in (keras.models.model_from_json(model.to_json()), keras.models.clone_model(model)):
        copy.set_weights(model.get_weights())
        for a, b in zip(want, _predict(copy, xs)):
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    assert json.loads(keras.models.model_from_json(model.to_json()).to_json()) == \
        json.loads(model.to_json())


def test_op_config_names_the_public_op_and_operators():
    i = keras.Input((4,))
    y = ops.image.resize(ops.reshape(2.0 * i, (-1, 2, 2, 1)), (3, 3))[:, 1:, ..., None]
    model = keras.Model(i, y)
    cfgs = {l.get_config()["op"]: l.get_config() for l in model.layers if isinstance(l, OpLayer)}
    assert set(cfgs) == {"__rmul__", "reshape", "image.resize", "__getitem__"}
    # an operator's operands are kept in its own order: self first
    assert cfgs["__rmul__"]["args"] == [{"__tensor__": 0}, 2.0]
    assert cfgs["image.resize"]["args"][1] == {"__tuple__": [3, 3]}
    assert cfgs["__getitem__"]["args"][1] == {"__tuple__": [
        {"__slice__": [None, None, None]}, {"__slice__": [1, None, None]},
        {"__ellipsis__": True}, None]}
    assert cfgs["reshape"]["args"] == [{"__tensor__": 0}, {"__tuple__": [-1, 2, 2, 1]}]


def test_training_continues_the_same_after_load(tmp_path):
    keras.utils.set_random_seed(1)
    model, shapes = _two_inputs()
    model.compile(optimizer="adam", loss="mse")
    xs = _inputs(shapes)
    y = _rng().normal(size=(5, 3)).astype("float32")
    model.fit(xs, y, epochs=2, batch_size=5, verbose=0)
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras")
    model.fit(xs, y, epochs=3, batch_size=5, verbose=0, shuffle=False)
    back.fit(xs, y, epochs=3, batch_size=5, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    assert back.optimizer.iterations == model.optimizer.iterations == 5


# ---------------------------------------------------------------- bad input
def _rewrite(src, dst, edit):
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(members["config.json"])
    edit(cfg)
    members["config.json"] = json.dumps(cfg).encode()
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
        for n, data in members.items():
            z.writestr(n, data)


def _op_entries(cfg):
    return [l for l in cfg["config"]["layers"] if l["class_name"] == "OpLayer"]


@pytest.mark.parametrize("name", ["system", "os.system", "numpy.__class__", "_private",
                                  "nn.np", "math.add", "image.Resample", "__init__", 3])
def test_unknown_op_name_in_file(tmp_path, name):
    model, _ = _unary()
    model.save(tmp_path / "m.keras")

    def edit(cfg):
        _op_entries(cfg)[0]["config"]["op"] = name
    _rewrite(tmp_path / "m.keras", tmp_path / "bad.keras", edit)
    with pytest.raises(FileFormatError, match="unknown op|op must be a name") as e:
        keras.models.load_model(tmp_path / "bad.keras")
    assert repr(name) in str(e.value)


def test_bad_arguments_in_file(tmp_path):
    model, _ = _reductions()
    model.save(tmp_path / "m.keras")
    cases = [
        ({"__tensor__": 5}, "tensor argument"),
        ({"dtype": "object", "shape": [1], "values": [1]}, "unknown dtype"),
        ({"dtype": "float32", "shape": [100000], "values": [0.0]}, "constant array"),
        ({"dtype": "float32", "shape": [2], "values": [0.0]}, "needs a list of 2 numbers"),
        ({"dtype": "uint8", "shape": [1], "values": [-1]}, "do not fit its dtype"),
        ({"dtype": "int8", "shape": [4096] * 8, "values": []}, "more than"),
        ({"dtype": "int8", "shape": [1], "values": ["a"]}, "needs a list of 1 numbers"),
        ({"__dtype__": "object"}, "unknown dtype"),
        ({"__slice__": [0, "a", None]}, "slice"),
        ({"class_name": "Foo"}, "cannot read"),
    ]
    for value, match in cases:
        def edit(cfg):
            e = next(l for l in _op_entries(cfg) if l["config"]["op"] == "mean")
            e["config"]["kwargs"]["axis"] = value
        _rewrite(tmp_path / "m.keras", tmp_path / "bad.keras", edit)
        with pytest.raises(FileFormatError, match=match):
            keras.models.load_model(tmp_path / "bad.keras")


def test_oversized_constant_refused_at_save(tmp_path):
    i = keras.Input((4,))
    big = np.ones((4, MAX_CONSTANT_ELEMENTS // 4 + 1), "float32")
    model = keras.Model(i, i @ big)
    with pytest.raises(ValueError, match=r"__matmul__.*'#1'.*more than.*Lambda"):
        model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="more than"):
        keras.models.clone_model(model).to_json()
    keras.Model(i, i @ np.ones((4, 2), "float32")).save(tmp_path / "ok.keras")


def test_unserializable_argument_refused_at_save(tmp_path):
    i = keras.Input((4,))
    model = keras.Model(i, ops.vectorized_map(lambda r: r * 2.0, i))
    np.testing.assert_allclose(model.predict(np.ones((2, 4), "float32"), verbose=0), 2.0)
    with pytest.raises(TypeError, match=r"vectorized_map.*'function' is a function.*Lambda"):
        model.save(tmp_path / "m.keras")
    with pytest.raises(TypeError, match="function"):
        model.to_json()

    class Odd:
        pass
    model = keras.Model(i, ops.clip(i, x_min=0.0, x_max=1.0))
    layer = next(l for l in model.layers if isinstance(l, OpLayer))
    layer._template[1]["x_max"] = Odd()
    with pytest.raises(TypeError, match=r"'x_max' is a Odd object"):
        model.save(tmp_path / "m.keras")


def test_private_function_on_symbolic_tensors_is_refused():
    from axone.layers.base import symbolic_op

    def mine(x):
        return x * 2.0
    i = keras.Input((4,))
    model = keras.Model(i, symbolic_op(mine, (i,), {}))
    with pytest.raises(NotImplementedError, match="not a public keras.ops function.*Lambda"):
        model.to_json()


# ---------------------------------------------------------------- optimizers
def _compiled(opt):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((4,)), layers.Dense(5, activation="relu", name="d1"),
                          layers.Dense(2, name="d2")])
    m.compile(optimizer=opt, loss="mse")
    return m


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 2)).astype("float32")


def _resumes(make, tmp_path, epochs=2):
    x, y = _data()
    model = _compiled(make())
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0)
    model.save(tmp_path / "o.axone")       # axone's archive holds these optimizers' whole state
    back = keras.models.load_model(tmp_path / "o.axone")
    assert type(back.optimizer) is type(model.optimizer)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    back.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    for a, b in zip(model.optimizer.get_weights(), back.optimizer.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    return model, back


def test_adafactor_factored_state_resumes(tmp_path):
    model, back = _resumes(lambda: optimizers.Adafactor(learning_rate=0.05), tmp_path)
    names = [v.name for v in back.optimizer.variables]
    assert any(n.endswith("_r") for n in names) and any(n.endswith("_c") for n in names)


def test_loss_scale_optimizer_resumes(tmp_path):
    def make():
        return optimizers.LossScaleOptimizer(optimizers.Adam(0.01), initial_scale=8.0,
                                             dynamic_growth_steps=3)
    x, y = _data()
    model = _compiled(make())
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert model.optimizer.loss_scale_factor != 8.0          # the scale has grown
    model.save(tmp_path / "o.axone")
    with zipfile.ZipFile(tmp_path / "o.axone") as z:
        entry = json.loads(z.read("compile.json"))["optimizer"]
    assert set(entry["config"]) == {"name", "inner_optimizer", "initial_scale",
                                    "dynamic_growth_steps"}
    assert entry["config"]["inner_optimizer"]["class_name"] == "Adam"
    back = keras.models.load_model(tmp_path / "o.axone")
    assert back.optimizer.loss_scale_factor == model.optimizer.loss_scale_factor
    assert int(back.optimizer._counter) == int(model.optimizer._counter)
    assert back.optimizer.initial_scale == 8.0 and back.optimizer.dynamic_growth_steps == 3
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    back.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    assert back.optimizer.loss_scale_factor == model.optimizer.loss_scale_factor
    # around Adafactor too (state saved as its variables)
    _resumes(lambda: optimizers.LossScaleOptimizer(optimizers.Adafactor(0.05),
                                                   dynamic_growth_steps=2), tmp_path)


def test_multi_optimizer_resumes(tmp_path):
    def make():
        return optimizers.MultiOptimizer(optimizers.OptimizerMap(
            optimizers.SGD(0.05, momentum=0.9), {"d1/.*": optimizers.Adam(0.01)}))
    model, back = _resumes(make, tmp_path)
    assert [type(o).__name__ for o in back.optimizer.optimizers] == ["Adam", "SGD"]
    assert [o.iterations for o in back.optimizer.optimizers] == \
        [o.iterations for o in model.optimizer.optimizers] == [16, 16]
    assert back.optimizer.iterations == model.optimizer.iterations


def test_wrapping_optimizers_saved_before_training(tmp_path):
    for opt in (optimizers.LossScaleOptimizer(optimizers.SGD(0.1)),
                optimizers.MultiOptimizer(optimizers.OptimizerMap(optimizers.Adam())),
                optimizers.Adafactor()):
        model = _compiled(opt)
        model.save(tmp_path / "u.axone")
        back = keras.models.load_model(tmp_path / "u.axone")
        assert type(back.optimizer) is type(opt) and back.optimizer.iterations == 0
        x, y = _data()
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
        back.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
        for a, b in zip(model.get_weights(), back.get_weights()):
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def test_bad_wrapping_optimizer_entries(tmp_path):
    model = _compiled(optimizers.LossScaleOptimizer(optimizers.Adam(0.01)))
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "o.axone")

    def rewrite(edit):
        with zipfile.ZipFile(tmp_path / "o.axone") as z:
            members = {n: z.read(n) for n in z.namelist()}
        comp = json.loads(members["compile.json"])
        edit(comp["optimizer"])
        members["compile.json"] = json.dumps(comp).encode()
        with zipfile.ZipFile(tmp_path / "bad.axone", "w") as z:
            for n, data in members.items():
                z.writestr(n, data)
    for edit, match in [
            (lambda o: o["config"].update(inner_optimizer=3), "inner_optimizer must be"),
            (lambda o: o["config"]["inner_optimizer"]["config"].update(beta_1="x"), "beta_1"),
            (lambda o: o["state"].update(loss_scale=-1.0), "loss scale"),
            (lambda o: o["state"].update(step_counter=1.5), "step_counter")]:
        rewrite(edit)
        with pytest.raises(FileFormatError, match=match):
            keras.models.load_model(tmp_path / "bad.axone")


def test_wrapping_optimizer_configs_match_keras():
    real = pytest.importorskip("keras")
    k = real.optimizers.LossScaleOptimizer(real.optimizers.Adam(0.01), initial_scale=8.0,
                                           dynamic_growth_steps=5)
    a = optimizers.LossScaleOptimizer(optimizers.Adam(0.01), initial_scale=8.0,
                                      dynamic_growth_steps=5)
    kc, ac = k.get_config(), a.get_config()
    assert set(kc) == set(ac)
    assert kc["initial_scale"] == ac["initial_scale"] and \
        kc["dynamic_growth_steps"] == ac["dynamic_growth_steps"]
    assert kc["inner_optimizer"]["class_name"] == ac["inner_optimizer"]["class_name"] == "Adam"
    # Keras's config (inner optimizer as Keras serializes it) builds the same optimizer here
    back = optimizers.LossScaleOptimizer.from_config(kc)
    assert back.initial_scale == 8.0 and back.dynamic_growth_steps == 5
    assert back.inner_optimizer.learning_rate == pytest.approx(0.01)
    km = real.optimizers.MultiOptimizer(real.optimizers.OptimizerMap(
        real.optimizers.SGD(0.1), {"d1/.*": real.optimizers.Adam(0.01)}))
    am = optimizers.MultiOptimizer(optimizers.OptimizerMap(
        optimizers.SGD(0.1), {"d1/.*": optimizers.Adam(0.01)}))
    assert set(km.get_config()) == set(am.get_config())


@pytest.mark.parametrize("make", [
    lambda: optimizers.LossScaleOptimizer(optimizers.Adafactor(0.05), dynamic_growth_steps=2),
    lambda: optimizers.MultiOptimizer(optimizers.OptimizerMap(
        optimizers.Adafactor(0.05), {"d2/.*": optimizers.Adam(0.01)}))], ids=["lso", "multi"])
def test_backup_restores_wrapping_optimizers(tmp_path, make):
    from axone.models import saving as model_saving
    x, y = _data()
    model = _compiled(make())
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model_saving.save_backup(model, tmp_path / "b.keras", {"epoch": 1})
    other = _compiled(make())
    assert model_saving.load_backup(other, tmp_path / "b.keras") == {"epoch": 1}
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    other.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def test_wrapped_optimizers_keep_their_schedules(tmp_path):
    sch = optimizers.schedules.ExponentialDecay(0.05, 4, 0.5)
    model, back = _resumes(lambda: optimizers.LossScaleOptimizer(optimizers.Adam(sch)), tmp_path)
    assert type(back.optimizer.inner_optimizer._learning_rate).__name__ == "ExponentialDecay"
    model, back = _resumes(lambda: optimizers.MultiOptimizer(optimizers.OptimizerMap(
        optimizers.SGD(sch, momentum=0.5))), tmp_path)
    assert type(back.optimizer.optimizers[0]._learning_rate).__name__ == "ExponentialDecay"
