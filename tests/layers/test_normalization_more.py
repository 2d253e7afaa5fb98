"""LayerNormalization, RMSNormalization, UnitNormalization, GroupNormalization,
SpectralNormalization, EinsumDense, ReversibleEmbedding and Embedding's mask against Keras 3
(torch backend) with the same weights: outputs, gradients for the inputs and weights, configs,
weight names and shapes, and bad arguments; float64 finite differences of the layers' math."""
import numpy as np
import pytest

import axone
from axone import Tensor, layers
from axone.utils import check_gradients

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

rng = np.random.default_rng(11)


def _f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def _pair(kl, al, shape, perturb=True):
    kl.build(shape)
    al.build(shape)
    ws = [np.asarray(w.value.detach()) for w in kl.weights]
    if perturb:
        ws = [w + (rng.standard_normal(w.shape) * 0.3).astype(w.dtype) if w.dtype.kind == "f" else w
              for w in ws]
        for w, v in zip(kl.weights, ws):
            w.assign(v)
    al.set_weights(ws)
    assert [w.shape for w in al.weights] == [tuple(w.shape) for w in kl.weights]
    assert [w.name for w in al.weights] == [w.name for w in kl.weights]
    return kl, al


def _compare(kl, al, x, rtol=1e-4, atol=1e-5, **kw):
    tx = torch.tensor(x, requires_grad=True)
    ky = kl(tx, **kw)
    up = rng.standard_normal(tuple(ky.shape)).astype(np.float32)
    (ky * torch.tensor(up)).sum().backward()
    ax = Tensor(x, requires_grad=True)
    ay = al(ax, **kw)
    (ay * up).sum().backward()
    np.testing.assert_allclose(ay.data, ky.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ax.grad, tx.grad.numpy(), rtol=rtol, atol=atol)
    assert len(al.trainable_weights) == len(kl.trainable_weights)
    for a, k in zip(al.trainable_weights, kl.trainable_weights):
        if k.value.grad is None:        # a weight the call does not use
            assert a.grad is None or not np.any(a.grad), k.path
            continue
        np.testing.assert_allclose(a.grad, k.value.grad.numpy(), rtol=rtol, atol=atol, err_msg=k.path)


def _config_matches(al, kl, skip=("name", "dtype", "trainable")):
    ac, kc = al.get_config(), kl.get_config()
    for k in kc:
        if k in skip:
            continue
        assert k in ac, k
        a, b = ac[k], kc[k]
        if isinstance(b, dict) and "class_name" in b:
            assert isinstance(a, (dict, str)), k
            continue
        if isinstance(b, (list, tuple)):
            a, b = list(a), list(b)
        assert a == b, (k, a, b)


# ------------------------------------------------------------ LayerNormalization
@pytest.mark.parametrize("shape, kw", [
    ((4, 6), {}), ((3, 4, 5), {}), ((3, 4, 5), {"axis": [1, 2]}), ((3, 4, 5), {"axis": -1, "center": False}),
    ((3, 4, 5), {"scale": False, "epsilon": 1e-5}), ((2, 3, 4, 5), {"axis": (-2, -1)}),
])
def test_layer_normalization_matches_keras(shape, kw):
    kl, al = _pair(keras.layers.LayerNormalization(**kw), layers.LayerNormalization(**kw),
                   (None,) + shape[1:])
    _compare(kl, al, _f32(*shape) * 2 + 1)
    _config_matches(al, kl)
    assert layers.LayerNormalization.from_config(al.get_config()).get_config() == al.get_config()


def test_layer_normalization_non_trailing_axis_by_definition_and_rms_scaling():
    # Keras's torch backend hands a single non-last axis to F.layer_norm (which normalizes the
    # last axes); axone normalizes the axis asked for, as Keras's other backends do
    x = rng.standard_normal((3, 4, 5))
    al = layers.LayerNormalization(axis=1, dtype="float64")
    al.build(x.shape)
    al.set_weights([rng.random(4) + 0.5, rng.standard_normal(4)])
    m, v = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    g, b = (w[None, :, None] for w in al.get_weights())
    np.testing.assert_allclose(al(x).data, (x - m) / np.sqrt(v + 1e-3) * g + b, rtol=1e-12)
    r = check_gradients(lambda x: al(x), x)
    assert r.max_error < 1e-7, r
    with pytest.warns(UserWarning, match="deprecated"):
        kl = keras.layers.LayerNormalization(rms_scaling=True)
    with pytest.warns(UserWarning, match="deprecated"):
        al = layers.LayerNormalization(rms_scaling=True)
    kl, al = _pair(kl, al, (None, 6))
    assert [w.name for w in al.weights] == ["gamma"]
    _compare(kl, al, _f32(4, 6) + 1)


def test_layer_normalization_passes_masks_and_checks_arguments():
    x = Tensor(_f32(2, 3, 4))
    x._keras_mask = np.array([[True, True, False], [True, False, False]])
    y = layers.LayerNormalization()(x)
    np.testing.assert_array_equal(y._keras_mask, x._keras_mask)
    with pytest.raises(TypeError, match="axis"):
        layers.LayerNormalization(axis="x")
    with pytest.raises(ValueError, match="out of bounds"):
        layers.LayerNormalization(axis=3)(_f32(2, 3))
    with pytest.raises(ValueError, match="known size"):
        layers.LayerNormalization(axis=1).build((None, None, 3))


# ------------------------------------------------------------ RMS / Unit
@pytest.mark.parametrize("shape, kw", [((4, 6), {}), ((3, 4, 5), {"axis": [1, 2], "epsilon": 1e-4})])
def test_rms_normalization_matches_keras(shape, kw):
    kl, al = _pair(keras.layers.RMSNormalization(**kw), layers.RMSNormalization(**kw),
                   (None,) + shape[1:])
    _compare(kl, al, _f32(*shape))
    _config_matches(al, kl)


@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_unit_normalization_matches_keras(axis):
    kl, al = keras.layers.UnitNormalization(axis=axis), layers.UnitNormalization(axis=axis)
    _compare(kl, al, _f32(3, 4, 5))
    _config_matches(al, kl)
    x = rng.standard_normal((3, 4))
    r = check_gradients(lambda x: layers.UnitNormalization(dtype="float64")(x), x)
    assert r.max_error < 1e-7, r
    np.testing.assert_array_equal(layers.UnitNormalization()(np.zeros((2, 3), np.float32)).data, 0)
    with pytest.raises(TypeError, match="axis"):
        layers.UnitNormalization(axis=1.5)


# ------------------------------------------------------------ GroupNormalization
@pytest.mark.parametrize("shape, kw", [
    ((2, 6), {"groups": 3}), ((2, 5, 6), {"groups": 2}), ((2, 4, 4, 6), {"groups": -1}),
    ((2, 6, 5), {"groups": 3, "axis": 1}), ((2, 5, 8), {"groups": 4, "center": False, "epsilon": 1e-5}),
])
def test_group_normalization_matches_keras(shape, kw):
    kl, al = _pair(keras.layers.GroupNormalization(**kw), layers.GroupNormalization(**kw),
                   (None,) + shape[1:])
    _compare(kl, al, _f32(*shape) * 3 - 1)
    _config_matches(al, kl)


def test_group_normalization_gradients_and_checks():
    gn = layers.GroupNormalization(groups=2, dtype="float64")
    gn.build((None, 3, 4))
    gn.set_weights([rng.random(4) + 0.5, rng.standard_normal(4)])
    r = check_gradients(lambda x: gn(x), rng.standard_normal((2, 3, 4)))
    assert r.max_error < 1e-7, r
    with pytest.raises(ValueError, match="groups"):
        layers.GroupNormalization(groups=0)
    with pytest.raises(ValueError, match="multiple"):
        layers.GroupNormalization(groups=4)(_f32(2, 6))
    with pytest.raises(ValueError, match="more than"):
        layers.GroupNormalization(groups=8)(_f32(2, 6))
    with pytest.raises(ValueError, match="axis 2 of input shape to have value 4"):
        gn(_f32(2, 3, 5).astype(np.float64))


# ------------------------------------------------------------ SpectralNormalization
@pytest.mark.parametrize("inner, shape", [
    (lambda m: m.Dense(4), (3, 5)), (lambda m: m.Conv1D(3, 2), (2, 6, 4)),
    (lambda m: m.Embedding(7, 3), (2, 4)),
])
def test_spectral_normalization_matches_keras(inner, shape):
    kl = keras.layers.SpectralNormalization(inner(keras.layers), power_iterations=2)
    al = layers.SpectralNormalization(inner(layers), power_iterations=2)
    kl.build((None,) + shape[1:])
    al.build((None,) + shape[1:])
    assert [w.name for w in al.weights] == [w.name for w in kl.weights]
    # seeded weights (Keras's own draws are not), so the test does the same every run
    seeded = np.random.default_rng(5)
    ws = [seeded.standard_normal(tuple(w.shape)).astype(np.float32) * 0.3 for w in kl.weights]
    for w, v in zip(kl.weights, ws):
        w.assign(v)
    al.set_weights(ws)
    x = rng.integers(0, 7, shape) if "Embedding" in type(al.layer).__name__ else _f32(*shape)
    ky = kl(torch.tensor(x), training=True)
    ay = al(x, training=True)
    if x.dtype.kind != "f":
        # Keras casts a wrapped Embedding's output to the indices' integer dtype; axone keeps the
        # float vectors, which are the inner layer's output with the normalized table
        ky = kl.layer(torch.tensor(x))
    np.testing.assert_allclose(ay.data, ky.detach().numpy(), rtol=1e-5, atol=1e-6)
    for a, k in zip(al.get_weights(), kl.get_weights()):    # normalized kernel and u stored alike
        np.testing.assert_allclose(a, k, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(al(x).data, keras.ops.convert_to_numpy(kl.layer(x)), rtol=1e-5,
                               atol=1e-6)
    w2 = al.kernel.data.reshape(-1, al.kernel.shape[-1])
    for _ in range(20):
        al(x, training=True)
    assert abs(np.linalg.svd(al.kernel.data.reshape(-1, al.kernel.shape[-1]), compute_uv=False)[0] - 1) < 1e-2
    assert w2.shape[0] > 0
    cfg = al.get_config()
    assert cfg["power_iterations"] == 2 and cfg["layer"]["class_name"] == type(al.layer).__name__
    clone = layers.SpectralNormalization.from_config(cfg)
    assert clone.power_iterations == 2


def test_spectral_normalization_trains_the_inner_kernel_and_checks_arguments():
    sn = layers.SpectralNormalization(layers.Dense(2))
    x = Tensor(_f32(4, 3))
    sn(x)
    y = sn(x, training=True)
    y.sum().backward()
    assert sn.layer.kernel.grad is not None and np.abs(sn.layer.kernel.grad).sum() > 0
    assert [w.name for w in sn.weights] == ["kernel", "vector_u", "bias"]
    with pytest.raises(ValueError, match="power_iterations"):
        layers.SpectralNormalization(layers.Dense(2), power_iterations=0)
    with pytest.raises(ValueError, match="Layer"):
        layers.SpectralNormalization("dense")
    with pytest.raises(ValueError, match="kernel"):
        layers.SpectralNormalization(layers.Flatten())(_f32(2, 3))


# ------------------------------------------------------------ EinsumDense
@pytest.mark.parametrize("eq, out, bias, shape", [
    ("ab,bc->ac", 4, "c", (3, 5)),
    ("abc,cd->abd", (None, 4), "d", (2, 3, 5)),
    ("abc,cde->abde", (None, 2, 3), "de", (2, 3, 5)),
    ("...b,bc->...c", 4, None, (2, 3, 5)),
    ("ab...,bc->ac...", (4,), "c", (2, 5, 3)),
    ("abcd,cde->abe", (None, 4), "e", (2, 3, 2, 5)),
])
def test_einsum_dense_matches_keras(eq, out, bias, shape):
    kw = dict(equation=eq, output_shape=out, bias_axes=bias, activation="tanh")
    kl, al = _pair(keras.layers.EinsumDense(**kw), layers.EinsumDense(**kw), (None,) + shape[1:])
    _compare(kl, al, _f32(*shape))
    assert al.compute_output_shape((None,) + shape[1:]) == tuple(kl.compute_output_shape((None,) + shape[1:]))
    _config_matches(al, kl, skip=("name", "dtype", "trainable", "quantization_config"))
    x = rng.standard_normal(shape)
    d = layers.EinsumDense(dtype="float64", **kw)
    r = check_gradients(lambda x: d(x), x)
    assert r.max_error < 1e-7, r


def test_einsum_dense_initializer_fans_follow_the_equation():
    # glorot: Var = 2 / (fan_in + fan_out) with fan_in = 64 (contracted), fan_out = 4·16
    d = layers.EinsumDense("abc,cde->abde", output_shape=(None, 4, 16))
    d.build((None, 3, 64))
    want = 2.0 / (64 + 64)
    assert abs(d.kernel.data.var() / want - 1) < 0.1


def test_einsum_dense_bad_arguments():
    with pytest.raises(ValueError, match="invalid einsum equation"):
        layers.EinsumDense("ab->b", 3)(_f32(2, 3))
    with pytest.raises(ValueError, match="bias dimension"):
        layers.EinsumDense("ab,bc->ac", 3, bias_axes="x")(_f32(2, 3))
    with pytest.raises(ValueError, match="matches neither"):
        layers.EinsumDense("ab,bz->ab", (3,))(_f32(2, 3))
    with pytest.raises(ValueError, match="shared"):
        layers.EinsumDense("abc,cd->abd", (7, 4))(_f32(2, 3, 5))
    with pytest.raises(NotImplementedError, match="lora_rank"):
        layers.EinsumDense("ab,bc->ac", 3, lora_rank=2)
    with pytest.raises(TypeError, match="output_shape"):
        layers.EinsumDense("ab,bc->ac", "3")
    with pytest.raises(TypeError, match="output_shape"):
        layers.EinsumDense("ab,bc->ac", (2.5,))
    with pytest.raises(ValueError, match="does not fit"):
        layers.EinsumDense("ab...,bc->ac...", (4, 3))(_f32(2, 5, 3))
    d = layers.EinsumDense("abc,cd->abd", (None, 4))
    d(_f32(2, 3, 5))
    with pytest.raises(ValueError, match="ndim"):
        d(_f32(2, 3, 3, 5))


# ------------------------------------------------------------ ReversibleEmbedding
@pytest.mark.parametrize("kw", [{}, {"tie_weights": False}, {"logit_soft_cap": 2.0},
                                {"mask_zero": True, "reverse_dtype": "float32"}])
def test_reversible_embedding_matches_keras(kw):
    kl = keras.layers.ReversibleEmbedding(9, 4, **kw)
    al = layers.ReversibleEmbedding(9, 4, **kw)
    kl, al = _pair(kl, al, (None, 5))
    ids = rng.integers(0, 9, (2, 5))
    ids[0, -1] = 0
    np.testing.assert_allclose(al(ids).data, keras.ops.convert_to_numpy(kl(ids)), rtol=1e-6)
    if kw.get("mask_zero"):
        np.testing.assert_array_equal(al(ids)._keras_mask, ids != 0)
    h = _f32(2, 5, 4)
    _compare(kl, al, h, reverse=True)
    _config_matches(al, kl)
    with pytest.raises(ValueError, match="output_dim"):
        al(_f32(2, 3), reverse=True)


def test_reversible_embedding_in_a_functional_model_ties_the_weights():
    ids = axone.Input((6,), dtype="int32")
    emb = layers.ReversibleEmbedding(12, 8)
    h = emb(ids)
    h = layers.LayerNormalization()(h)
    logits = emb(h, reverse=True)
    assert logits.shape == (None, 6, 12)
    model = axone.Model(ids, logits)
    assert len(model.trainable_weights) == 3       # one embedding table, gamma, beta
    model.compile("adam", axone.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.integers(1, 12, (32, 6))
    hist = model.fit(x, x, epochs=15, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


def test_embedding_mask_zero_reaches_the_next_layers():
    ids = np.array([[3, 1, 0, 0], [2, 0, 0, 0]])
    e = layers.Embedding(5, 3, mask_zero=True)
    y = e(ids)
    np.testing.assert_array_equal(y._keras_mask, ids != 0)
    z = layers.LayerNormalization()(y)
    np.testing.assert_array_equal(z._keras_mask, ids != 0)


# ------------------------------------------------------------ more: torch, finite differences
def test_layer_normalization_matches_torch_layer_norm():
    tl = torch.nn.LayerNorm(6, eps=1e-5)
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(rng.random(6) + 0.5))
        tl.bias.copy_(torch.tensor(rng.standard_normal(6)))
    al = layers.LayerNormalization(epsilon=1e-5)
    al.build((None, 4, 6))
    al.set_weights([tl.weight.detach().numpy(), tl.bias.detach().numpy()])
    x = _f32(3, 4, 6) * 3 + 1
    tx = torch.tensor(x, requires_grad=True)
    up = _f32(3, 4, 6)
    (tl(tx) * torch.tensor(up)).sum().backward()
    ax = Tensor(x, requires_grad=True)
    ay = al(ax)
    (ay * up).sum().backward()
    np.testing.assert_allclose(ay.data, tl(tx).detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ax.grad, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(al.gamma.grad, tl.weight.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(al.beta.grad, tl.bias.grad.numpy(), rtol=1e-4, atol=1e-5)


def _fd_weights(layer, call, eps=1e-6, tol=1e-6):
    """Central differences of Σ call()·r for every trainable weight entry of ``layer``."""
    out = call()
    r = np.random.default_rng(0).standard_normal(out.shape)
    for w in layer.trainable_weights:
        w.grad = None
    (out * r).sum().backward()
    for w in layer.trainable_weights:
        num = np.zeros(w.shape)
        for idx in np.ndindex(*w.shape):
            old = w.data[idx]
            w.data[idx] = old + eps
            fp = (call().data * r).sum()
            w.data[idx] = old - eps
            fm = (call().data * r).sum()
            w.data[idx] = old
            num[idx] = (fp - fm) / (2 * eps)
        got = np.zeros(w.shape) if w.grad is None else w.grad
        err = np.abs(got - num).max() / max(1.0, np.abs(num).max())
        assert err < tol, (w.path, err)


@pytest.mark.parametrize("make, shape", [
    (lambda: layers.LayerNormalization(axis=[1, 2], dtype="float64"), (2, 3, 4)),
    (lambda: layers.LayerNormalization(center=False, dtype="float64"), (2, 3, 4)),
    (lambda: layers.RMSNormalization(dtype="float64"), (2, 3, 4)),
    (lambda: layers.RMSNormalization(axis=[1, 2], dtype="float64"), (2, 3, 4)),
    (lambda: layers.GroupNormalization(groups=2, axis=1, dtype="float64"), (2, 4, 3)),
    (lambda: layers.EinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de", dtype="float64"),
     (2, 3, 4)),
])
def test_normalization_layers_weights_by_finite_differences(make, shape):
    layer = make()
    x = rng.standard_normal(shape)
    layer(x)
    for w in layer.trainable_weights:
        w.data[...] = rng.random(w.shape) + 0.5
    r = check_gradients(lambda x: layer(x), x)
    assert r.max_error < 1e-7, r
    _fd_weights(layer, lambda: layer(x))


@pytest.mark.parametrize("kw", [{}, {"tie_weights": False}, {"logit_soft_cap": 1.5}])
def test_reversible_embedding_gradients_by_finite_differences(kw):
    emb = layers.ReversibleEmbedding(7, 3, dtype="float64", **kw)
    emb.build((None, 4))
    for w in emb.trainable_weights:
        w.data[...] = rng.standard_normal(w.shape)
    h = rng.standard_normal((2, 4, 3))
    r = check_gradients(lambda h: emb(h, reverse=True), h)
    assert r.max_error < 1e-7, r
    _fd_weights(emb, lambda: emb(h, reverse=True))
    ids = rng.integers(0, 7, (2, 4))
    _fd_weights(emb, lambda: emb(ids))


def test_spectral_normalization_gradients_fit_and_custom_layer_config(tmp_path):
    sn = layers.SpectralNormalization(layers.Dense(3, dtype="float64"), dtype="float64")
    x = rng.standard_normal((4, 5))
    sn(x)
    r = check_gradients(lambda x: sn(x), x)
    assert r.max_error < 1e-7, r
    _fd_weights(sn.layer, lambda: sn(x))

    @axone.saving.register_keras_serializable(package="att_tests")
    class MyDense(layers.Dense):
        pass

    sn = layers.SpectralNormalization(MyDense(4), power_iterations=3)
    model = axone.Sequential([axone.Input((5,)), sn, layers.Dense(1)])
    model.compile("sgd", "mse")
    xs = rng.standard_normal((64, 5)).astype("float32")
    model.fit(xs, xs.sum(1, keepdims=True), epochs=3, batch_size=16, verbose=0)
    sigma = np.linalg.svd(sn.kernel.data, compute_uv=False)[0]
    assert abs(sigma - 1) < 0.05, sigma        # normalized at every training step
    model.save(tmp_path / "m.keras")
    m2 = axone.models.load_model(tmp_path / "m.keras")
    assert type(m2.layers[0].layer) is MyDense and m2.layers[0].power_iterations == 3
    np.testing.assert_array_equal(m2.predict(xs, verbose=0), model.predict(xs, verbose=0))


def test_layer_normalization_op_with_beta_only_and_the_keras_alias():
    import axone.ops as O
    x = rng.standard_normal((3, 5))
    b = rng.standard_normal(5)
    want = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-3) + b
    np.testing.assert_allclose(O.layer_normalization(x, beta=b, epsilon=1e-3).data, want, rtol=1e-12)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.layer_normalization(x, beta=b, epsilon=1e-3)), want,
        rtol=1e-6)
    r = check_gradients(lambda x, b: O.layer_normalization(x, beta=b, epsilon=1e-3), x, b)
    assert r.max_error < 1e-7, r


@pytest.mark.parametrize("inner, shape", [
    (lambda m: m.Dense(4), (3, 5)), (lambda m: m.Conv1D(3, 2), (2, 6, 4)),
])
def test_spectral_normalization_gradients_match_keras(inner, shape):
    kl = keras.layers.SpectralNormalization(inner(keras.layers))
    al = layers.SpectralNormalization(inner(layers))
    kl.build((None,) + shape[1:])
    al.build((None,) + shape[1:])
    ws = [np.asarray(w.value.detach()) for w in kl.weights]
    ws[-1] = ws[-1] + _f32(*ws[-1].shape) * 0.1              # a non-zero bias
    for w, v in zip(kl.weights, ws):
        w.assign(v)
    al.set_weights(ws)
    x = _f32(*shape)
    tx = torch.tensor(x, requires_grad=True)
    ky = kl(tx, training=True)
    up = _f32(*ky.shape)
    (ky * torch.tensor(up)).sum().backward()
    ax = Tensor(x, requires_grad=True)
    ay = al(ax, training=True)
    (ay * up).sum().backward()
    np.testing.assert_allclose(ay.data, ky.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ax.grad, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for a, k in zip(al.layer.trainable_weights, kl.layer.trainable_weights):
        np.testing.assert_allclose(a.grad, k.value.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=k.path)


def test_normalization_layers_train_in_a_sequential_model_and_reload(tmp_path):
    model = axone.Sequential([
        axone.Input((5, 4)), layers.LayerNormalization(),
        layers.EinsumDense("abc,cd->abd", (5, 6), bias_axes="d", activation="relu"),
        layers.GroupNormalization(groups=3), layers.RMSNormalization(axis=[1, 2]),
        layers.UnitNormalization(), layers.Flatten(), layers.Dense(1)])
    model.compile("adam", "mse")
    x = rng.standard_normal((64, 5, 4)).astype("float32")
    y = x.sum((1, 2))[:, None]
    hist = model.fit(x, y, epochs=6, batch_size=16, verbose=0).history["loss"]
    assert hist[-1] < hist[0]
    model.save(tmp_path / "s.keras")
    again = axone.models.load_model(tmp_path / "s.keras")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [type(l).__name__ for l in again.layers] == [type(l).__name__ for l in model.layers]


def test_reversible_embedding_forward_and_reverse_calls_from_two_threads():
    import threading
    emb = layers.ReversibleEmbedding(9, 4, mask_zero=True)
    ids = np.array([[1, 2, 0], [3, 0, 0]])
    h = Tensor(_f32(2, 3, 4))
    h._keras_mask = ids != 0
    bad = []

    def forward():
        for _ in range(300):
            if not np.array_equal(emb(ids)._keras_mask, ids != 0):
                bad.append("forward")

    def reverse():
        for _ in range(300):
            y = emb(h, reverse=True)
            if y.shape != (2, 3, 9) or getattr(y, "_keras_mask", None) is not None:
                bad.append("reverse")

    ts = [threading.Thread(target=f) for f in (forward, reverse)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not bad
