"""The state of the wrapping optimizers (LossScaleOptimizer, MultiOptimizer) in Keras 3's
``.keras`` files, and optimizer weights in Keras 2's ``.h5`` files: written in Keras's layout,
read back so training resumes as if never saved, and exchanged with real Keras 3 both ways."""
import io
import os
import warnings
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
h5py = pytest.importorskip("h5py")

import axone  # noqa: E402
from axone.fileio import FileFormatError  # noqa: E402

RNG = np.random.default_rng(3)
X = RNG.normal(size=(12, 4)).astype("float32")
Y = RNG.normal(size=(12, 2)).astype("float32")


def _real_keras():
    return pytest.importorskip("keras")


def _np(t):
    if type(t).__module__.startswith(("keras", "torch")):
        return _real_keras().ops.convert_to_numpy(t)
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


def _model(K, weights=None):
    m = K.Sequential([K.Input((4,)), K.layers.Dense(3, activation="tanh", name="d1"),
                      K.layers.Dense(2, name="d2")])
    if weights is not None:
        m.set_weights(weights)
    return m


def _weights():
    r = np.random.default_rng(7)
    return [r.normal(size=(4, 3)).astype("float32"), r.normal(size=3).astype("float32"),
            r.normal(size=(3, 2)).astype("float32"), r.normal(size=2).astype("float32")]


def _lso(K):
    return K.optimizers.LossScaleOptimizer(K.optimizers.Adam(0.01), initial_scale=8.0,
                                           dynamic_growth_steps=2)


def _multi(K):
    return K.optimizers.MultiOptimizer(K.optimizers.OptimizerMap(
        K.optimizers.SGD(0.05, momentum=0.9), {".*d2/.*": K.optimizers.Adam(0.01)}))


def _lso_sched(K):
    sched = K.optimizers.schedules.ExponentialDecay(0.02, decay_steps=1, decay_rate=0.9)
    return K.optimizers.LossScaleOptimizer(K.optimizers.RMSprop(sched, momentum=0.5),
                                           initial_scale=4.0, dynamic_growth_steps=3)


MAKERS = {"lso": _lso, "multi": _multi, "lso_schedule": _lso_sched}


def _fit(m, steps):
    """``steps`` optimizer steps of 6 samples, always in the same order."""
    for _ in range(steps // 2):
        m.fit(X, Y, batch_size=6, epochs=1, verbose=0, shuffle=False)


def _compiled(K, kind):
    m = _model(K, _weights())
    m.compile(MAKERS[kind](K), "mean_squared_error")
    return m


def _opt_values(opt):
    return [_np(v) for v in opt.variables]


def _keras_order(model):
    """axone's optimizer values in the order of Keras's ``optimizer.variables`` (axone's own
    ``variables`` interleaves some slots that Keras lists group by group, as RMSprop's)."""
    from axone.formats.keras_v3 import optimizer_plan
    return [np.asarray(s.value()) for s in optimizer_plan(model.optimizer, model)]


def _members(path):
    with zipfile.ZipFile(path) as z:
        return h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_wrapping_optimizer_resumes_from_a_keras_archive(tmp_path, kind):
    straight = _compiled(axone, kind)
    _fit(straight, 4)
    m = _compiled(axone, kind)
    _fit(m, 2)
    m.save(tmp_path / "m.keras")
    back = axone.saving.load_model(tmp_path / "m.keras")
    assert type(back.optimizer) is type(m.optimizer)
    for a, b in zip(_opt_values(m.optimizer), _opt_values(back.optimizer)):
        np.testing.assert_array_equal(b, a)
    _fit(back, 2)
    for a, b in zip(straight.get_weights(), back.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    for a, b in zip(_opt_values(straight.optimizer), _opt_values(back.optimizer)):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    if kind.startswith("lso"):
        assert back.optimizer.loss_scale_factor == straight.optimizer.loss_scale_factor
        assert back.optimizer.iterations == straight.optimizer.iterations == 4


def test_layout_is_keras_layout(tmp_path):
    m = _compiled(axone, "lso")
    _fit(m, 4)
    m.save(tmp_path / "m.keras")
    with _members(tmp_path / "m.keras") as f:
        g, inner = f["optimizer/vars"], f["optimizer/inner_optimizer/vars"]
        assert g.attrs["name"] == m.optimizer.name
        assert len(g) == 4 + 2 + 2 * 4 and len(inner) == 2 + 2 * 4
        assert int(g["0"][()]) == 0 and float(g["1"][()]) == 0.0     # the wrapper's own
        assert int(g["2"][()]) == int(m.optimizer.step_counter.numpy())
        assert float(g["3"][()]) == m.optimizer.loss_scale_factor == 32.0
        assert int(g["4"][()]) == int(inner["0"][()]) == 4
        for i in range(len(inner)):
            np.testing.assert_array_equal(g[str(i + 4)][()], inner[str(i)][()])
    m = _compiled(axone, "multi")
    _fit(m, 2)
    m.save(tmp_path / "mm.keras")
    with _members(tmp_path / "mm.keras") as f:
        assert sorted(f["optimizer/optimizers"]) == ["adam", "sgd"]
        # own 2, Adam on d2 (2 + 2 slots x 2 variables), SGD on d1 (2 + 1 slot x 2 variables)
        assert len(f["optimizer/vars"]) == 2 + 6 + 4
        assert len(f["optimizer/optimizers/adam/vars"]) == 6
        np.testing.assert_array_equal(f["optimizer/vars/10"][()],
                                      f["optimizer/optimizers/sgd/vars/2"][()])


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_real_keras_loads_the_axone_archive_and_resumes_alike(tmp_path, kind):
    keras = _real_keras()
    a = _compiled(axone, kind)
    _fit(a, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # no "Skipping variable loading"
        a.save(tmp_path / "a.keras")
        k = keras.saving.load_model(tmp_path / "a.keras")
    assert type(k.optimizer).__name__ == type(a.optimizer).__name__
    kv, av = _opt_values(k.optimizer), _keras_order(a)
    assert [v.shape for v in kv] == [v.shape for v in av]
    for x, y in zip(kv, av):
        np.testing.assert_allclose(x, y, rtol=1e-6)
    _fit(k, 2)
    _fit(a, 2)
    for v, w in zip(k.get_weights(), a.get_weights()):
        np.testing.assert_allclose(w, v, rtol=1e-5, atol=1e-6)
    for x, y in zip(_opt_values(k.optimizer), _keras_order(a)):
        np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_axone_loads_a_keras_archive_and_resumes_alike(tmp_path, kind):
    keras = _real_keras()
    k = _compiled(keras, kind)
    _fit(k, 2)
    k.save(tmp_path / "k.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = axone.saving.load_model(tmp_path / "k.keras")
    assert len(_keras_order(a)) == len(k.optimizer.variables)
    for x, y in zip(_opt_values(k.optimizer), _keras_order(a)):
        np.testing.assert_allclose(y, x, rtol=1e-6)
    _fit(k, 2)
    _fit(a, 2)
    for v, w in zip(k.get_weights(), a.get_weights()):
        np.testing.assert_allclose(w, v, rtol=1e-5, atol=1e-6)
    if kind.startswith("lso"):
        assert a.optimizer.loss_scale_factor == float(_np(k.optimizer.dynamic_scale))


def _rewrite_member(src, dst, edit):
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buf, "r+") as f:
        edit(f)
    members["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def _replace(f, name, value):
    del f[name]
    f.create_dataset(name, data=value)


def test_bad_wrapping_optimizer_values_are_refused(tmp_path):
    m = _compiled(axone, "lso")
    _fit(m, 2)
    m.save(tmp_path / "m.keras")
    cases = [(lambda f: _replace(f, "optimizer/vars/3", np.float32(-2.0)), "positive"),
             (lambda f: _replace(f, "optimizer/vars/2", np.float32(1.5)), "integer"),
             (lambda f: _replace(f, "optimizer/vars/6", np.zeros((2, 2), np.float32)), "shape"),
             (lambda f: _replace(f, "optimizer/vars/7", np.full((4, 3), np.nan, np.float32)),
              "finite")]
    for edit, match in cases:
        _rewrite_member(tmp_path / "m.keras", tmp_path / "bad.keras", edit)
        with pytest.raises(FileFormatError, match=match):
            axone.saving.load_model(tmp_path / "bad.keras")
    # a list of another length: Keras's warning, and the state starts fresh
    _rewrite_member(tmp_path / "m.keras", tmp_path / "short.keras",
                    lambda f: f.__delitem__("optimizer/vars/13"))
    with pytest.warns(UserWarning, match="Skipping variable loading"):
        back = axone.saving.load_model(tmp_path / "short.keras")
    assert back.optimizer.loss_scale_factor == 8.0


def test_wrapping_optimizers_saved_before_training(tmp_path):
    for kind in sorted(MAKERS):
        m = _compiled(axone, kind)
        m.save(tmp_path / "u.keras")
        back = axone.saving.load_model(tmp_path / "u.keras")
        _fit(m, 2)
        _fit(back, 2)
        for a, b in zip(m.get_weights(), back.get_weights()):
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ Keras 2 .h5 files
def _adam(K):
    return K.optimizers.Adam(0.01)


def _rmsprop(K):
    return K.optimizers.RMSprop(0.01, momentum=0.5, centered=True)


H5_MAKERS = {"adam": _adam, "rmsprop": _rmsprop, "lso": _lso, "multi": _multi}


def _compiled_h5(K, kind):
    m = _model(K, _weights())
    m.compile(H5_MAKERS[kind](K), "mean_squared_error")
    return m


def _save_h5(m, path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # Keras's "legacy format" warning
        m.save(path, **kw)


@pytest.mark.parametrize("kind", sorted(H5_MAKERS))
def test_optimizer_weights_in_a_keras2_file_resume_training(tmp_path, kind):
    straight = _compiled_h5(axone, kind)
    _fit(straight, 4)
    m = _compiled_h5(axone, kind)
    _fit(m, 2)
    _save_h5(m, tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as f:
        names = [n.decode() for n in f["optimizer_weights"].attrs["weight_names"]]
        assert len(names) == len(_keras_order(m)) and len(set(names)) == len(names)
        assert names[0] == f"{m.optimizer.name}/iteration"
    back = axone.saving.load_model(tmp_path / "m.h5")
    for a, b in zip(_keras_order(m), _keras_order(back)):
        np.testing.assert_array_equal(b, a)
    _fit(back, 2)
    for a, b in zip(straight.get_weights(), back.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    # include_optimizer=False: no optimizer_weights, the optimizer starts fresh
    _save_h5(m, tmp_path / "n.h5", include_optimizer=False)
    with h5py.File(tmp_path / "n.h5", "r") as f:
        assert "optimizer_weights" not in f


@pytest.mark.parametrize("kind", ["adam", "rmsprop", "multi"])
def test_real_keras_reads_the_optimizer_weights_of_an_axone_h5(tmp_path, kind):
    """Keras's own reader of optimizer_weights on axone's file gives axone's variables, and
    Keras resumes from them as axone does. (Keras 3.15's load_model(compile=True) of a legacy
    file builds the optimizer on ``model._trainable_variables``, empty for a Sequential or
    functional model, so it restores the counters only: the same from its own files, checked
    here too.)"""
    keras = _real_keras()
    from keras.src.legacy.saving import legacy_h5_format
    a = _compiled_h5(axone, kind)
    _fit(a, 2)
    _save_h5(a, tmp_path / "a.h5")
    with h5py.File(tmp_path / "a.h5", "r") as f:
        vals = legacy_h5_format.load_optimizer_weights_from_hdf5_group(f)
        vals = [np.asarray(v) for v in vals]
    assert [v.shape for v in vals] == [v.shape for v in _keras_order(a)]
    for x, y in zip(vals, _keras_order(a)):
        np.testing.assert_array_equal(x, y)
    k = keras.saving.load_model(tmp_path / "a.h5", compile=True)
    assert type(k.optimizer).__name__ == type(a.optimizer).__name__
    kr = _compiled_h5(keras, kind)
    _fit(kr, 2)
    _save_h5(kr, tmp_path / "k.h5")
    k_own = keras.saving.load_model(tmp_path / "k.h5", compile=True)
    assert len(k.optimizer.variables) == len(k_own.optimizer.variables)
    if kind != "multi":          # (a MultiOptimizer's sub-optimizers built on nothing misalign)
        for x, y in zip(_opt_values(k.optimizer), _keras_order(a)):
            np.testing.assert_allclose(x, y, rtol=1e-6)
    k = keras.saving.load_model(tmp_path / "a.h5", compile=False)
    k.compile(H5_MAKERS[kind](keras), "mean_squared_error")
    k.optimizer.build(k.trainable_variables)
    k.optimizer.set_weights(vals)
    for x, y in zip(_opt_values(k.optimizer), _keras_order(a)):
        np.testing.assert_allclose(x, y, rtol=1e-6)
    _fit(k, 2)
    _fit(a, 2)
    for v, w in zip(k.get_weights(), a.get_weights()):
        np.testing.assert_allclose(w, v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(H5_MAKERS))
def test_axone_resumes_from_the_optimizer_weights_of_a_keras_h5(tmp_path, kind):
    keras = _real_keras()
    k = _compiled_h5(keras, kind)
    _fit(k, 2)
    _save_h5(k, tmp_path / "k.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = axone.saving.load_model(tmp_path / "k.h5")
    assert len(_keras_order(a)) == len(k.optimizer.variables)
    for x, y in zip(_opt_values(k.optimizer), _keras_order(a)):
        np.testing.assert_allclose(y, x, rtol=1e-6)
    _fit(k, 2)           # (the model Keras trained on, not reloaded: Keras's LossScaleOptimizer
    _fit(a, 2)           # set_weights restores only its own counters)
    for v, w in zip(k.get_weights(), a.get_weights()):
        np.testing.assert_allclose(w, v, rtol=1e-5, atol=1e-6)


def test_keras_reload_of_a_loss_scale_h5_restores_only_its_counters(tmp_path):
    """Keras's own behaviour, which axone's files do not change: Keras writes every variable
    of a LossScaleOptimizer to optimizer_weights but its set_weights restores the first four
    (the wrapper's own), so the inner optimizer of a Keras-loaded .h5 starts fresh."""
    keras = _real_keras()
    a = _compiled_h5(axone, "lso")
    _fit(a, 2)
    _save_h5(a, tmp_path / "a.h5")
    k = keras.saving.load_model(tmp_path / "a.h5", compile=True)
    kv, av = _opt_values(k.optimizer), _keras_order(a)
    for x, y in zip(kv[:4], av[:4]):
        np.testing.assert_allclose(x, y, rtol=1e-6)
    assert int(kv[4]) == 0 and int(av[4]) == 2           # the inner iteration: fresh in Keras


def test_bad_optimizer_weights_in_an_h5_are_refused(tmp_path):
    m = _compiled_h5(axone, "adam")
    _fit(m, 2)
    _save_h5(m, tmp_path / "m.h5")

    def edited(edit):
        import shutil
        shutil.copy(tmp_path / "m.h5", tmp_path / "bad.h5")
        with h5py.File(tmp_path / "bad.h5", "r+") as f:
            edit(f["optimizer_weights"])
        return tmp_path / "bad.h5"
    first = [n.decode() for n in h5py.File(tmp_path / "m.h5", "r")["optimizer_weights"].attrs[
        "weight_names"]]
    cases = [
        (lambda g: g.attrs.__setitem__("weight_names", [b"adam/nothing"] + [
            n.encode() for n in first[1:]]), "does not hold"),
        (lambda g: g.attrs.__setitem__("weight_names", [b"../model_weights"]), "invalid"),
        (lambda g: (g.__delitem__(first[2]),
                    g.__setitem__(first[2], h5py.ExternalLink("other.h5", "/x"))), "link"),
        (lambda g: (g.__delitem__(first[2]),
                    g.create_dataset(first[2], data=np.array([b"ab"] * 3))), "dtype"),
        (lambda g: (g.__delitem__(first[2]),
                    g.create_dataset(first[2], data=np.zeros((2, 2), "f4"))), "shape"),
        (lambda g: (g.__delitem__(first[0]),
                    g.create_dataset(first[0], data=np.int64(-3))), "integer")]
    for edit, match in cases:
        with pytest.raises(FileFormatError, match=match):
            axone.saving.load_model(edited(edit))
    with pytest.warns(UserWarning, match="Skipping variable loading"):
        axone.saving.load_model(edited(lambda g: g.attrs.__setitem__(
            "weight_names", [n.encode() for n in first[:-1]])))


def test_long_name_lists_are_chunked_as_keras_does(tmp_path):
    from axone.formats import legacy_h5
    from axone.formats.h5io import H5Reader
    names = [f"adam/layer_{i:05d}_kernel_momentum" for i in range(3000)]
    with h5py.File(tmp_path / "n.h5", "w") as f:
        legacy_h5._save_names_attr(f, "weight_names", names)
        assert "weight_names" not in f.attrs and "weight_names1" in f.attrs
    with H5Reader(tmp_path / "n.h5") as r:
        assert legacy_h5._load_names_attr(r, r.f, "weight_names", "the file") == names
