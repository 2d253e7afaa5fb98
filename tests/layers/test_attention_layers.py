"""MultiHeadAttention, GroupQueryAttention, Attention and AdditiveAttention against Keras 3 (torch
backend) with the same weights: outputs, attention scores, and gradients for the inputs and every
weight; masks, causal masks, configs, functional graphs, PyTorch's MultiheadAttention, and bad
arguments."""
import numpy as np
import pytest

import axone
from axone import Tensor, layers
from axone.utils import check_gradients

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

rng = np.random.default_rng(7)


def _f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def _copy_weights(kl, al):
    kw = [np.asarray(w.value.detach()) for w in kl.weights]
    # random biases too, so every weight is exercised
    kw = [w + rng.standard_normal(w.shape).astype(np.float32) * 0.1 for w in kw]
    for w, v in zip(kl.weights, kw):
        w.assign(v)
    al.set_weights(kw)


def _keras_run(layer, xs, g, **kw):
    txs = [torch.tensor(x, requires_grad=True) for x in xs]
    out = layer(*txs, **kw)
    scores = None
    if isinstance(out, tuple):
        out, scores = out
    (out * torch.tensor(g)).sum().backward()
    return (out.detach().numpy(), None if scores is None else scores.detach().numpy(),
            [t.grad.numpy() for t in txs], [w.value.grad.numpy() for w in layer.trainable_weights])


def _axone_run(layer, xs, g, **kw):
    txs = [Tensor(x, requires_grad=True) for x in xs]
    out = layer(*txs, **kw)
    scores = None
    if isinstance(out, tuple):
        out, scores = out
    (out * g).sum().backward()
    return (out.data, None if scores is None else scores.data, [t.grad for t in txs],
            [w.grad for w in layer.trainable_weights])


def _compare(kl, al, xs, g, rtol=1e-4, atol=1e-5, **kw):
    ko, ks, kg, kwg = _keras_run(kl, xs, g, **kw)
    ao, as_, ag, awg = _axone_run(al, xs, g, **kw)
    np.testing.assert_allclose(ao, ko, rtol=1e-5, atol=1e-5)
    if ks is not None:
        np.testing.assert_allclose(as_, ks, rtol=1e-5, atol=1e-6)
    for a, k in zip(ag, kg):
        np.testing.assert_allclose(a, k, rtol=rtol, atol=atol)
    assert len(awg) == len(kwg)
    for a, k, w in zip(awg, kwg, kl.trainable_weights):
        np.testing.assert_allclose(a, k, rtol=rtol, atol=atol, err_msg=w.path)


def _built_pair(kcls, acls, args, shapes):
    kl, al = kcls(**args), acls(**args)
    dummies = [np.zeros(s, np.float32) for s in shapes]
    kl(*dummies)
    al(*dummies)
    _copy_weights(kl, al)
    return kl, al


# ------------------------------------------------------------ MultiHeadAttention
@pytest.mark.parametrize("args", [
    dict(num_heads=2, key_dim=3),
    dict(num_heads=3, key_dim=2, value_dim=4, output_shape=5),
    dict(num_heads=2, key_dim=3, use_bias=False),
    dict(num_heads=2, key_dim=3, use_gate=True),
    dict(num_heads=2, key_dim=3, sliding_window=2),
])
@pytest.mark.parametrize("call", [{}, {"use_causal_mask": True}, {"return_attention_scores": True}])
def test_multi_head_attention_matches_keras(args, call):
    q, v, k = _f32(2, 5, 6), _f32(2, 4, 7), _f32(2, 4, 8)
    kl, al = _built_pair(keras.layers.MultiHeadAttention, layers.MultiHeadAttention, args,
                         [q.shape, v.shape, k.shape])
    assert [w.shape for w in al.weights] == [tuple(w.shape) for w in kl.weights]
    assert [w.path.split("/", 1)[1] for w in al.weights] == [w.path.split("/", 1)[1] for w in kl.weights]
    out_dim = args.get("output_shape", 6)
    g = _f32(2, 5, out_dim)
    if call.get("use_causal_mask"):
        q, k, v = _f32(2, 4, 6), _f32(2, 4, 8), _f32(2, 4, 7)
        g = _f32(2, 4, out_dim)
    _compare(kl, al, [q, v, k], g, **call)


def test_multi_head_attention_self_attention_and_masks_match_keras():
    x = _f32(3, 5, 8)
    kl, al = _built_pair(keras.layers.MultiHeadAttention, layers.MultiHeadAttention,
                         dict(num_heads=2, key_dim=4), [x.shape, x.shape])
    am = rng.random((3, 5, 5)) > 0.3
    am[..., 0] = True
    g = _f32(3, 5, 8)
    _compare(kl, al, [x, x], g, attention_mask=am)
    vm = np.ones((3, 5), bool)
    vm[1, 3:] = False
    _compare(kl, al, [x, x], g, value_mask=vm, use_causal_mask=True)
    _compare(kl, al, [x, x], g, attention_mask=am, return_attention_scores=True)


def test_multi_head_attention_query_mask_from_the_query_tensor_matches_keras():
    # Keras reads the query mask from the query tensor's mask (an explicit query_mask argument
    # is replaced by it); axone reads both, the argument first
    x = _f32(3, 5, 8)
    kl, al = _built_pair(keras.layers.MultiHeadAttention, layers.MultiHeadAttention,
                         dict(num_heads=2, key_dim=4), [x.shape, x.shape])
    qm = np.ones((3, 5), bool)
    qm[:, -1] = False
    vm = np.ones((3, 5), bool)
    vm[0, 2:] = False
    tq = torch.tensor(x, requires_grad=True)
    tv = torch.tensor(x, requires_grad=True)
    keras.src.backend.set_keras_mask(tq, torch.tensor(qm))
    ko = kl(tq, tv, value_mask=torch.tensor(vm))
    aq = Tensor(x, requires_grad=True)
    aq._keras_mask = qm
    ao = al(aq, Tensor(x), value_mask=vm)
    np.testing.assert_allclose(ao.data, ko.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ao._keras_mask, qm)        # the output carries the query mask
    np.testing.assert_allclose(al(Tensor(x), Tensor(x), query_mask=qm, value_mask=vm).data,
                               ao.data, rtol=1e-6, atol=1e-6)
    g = _f32(3, 5, 8)
    (ko * torch.tensor(g)).sum().backward()
    (ao * g).sum().backward()
    # a fully masked query row attends uniformly whatever its query: its gradient is 0 (torch's
    # kernel returns an artefact there)
    np.testing.assert_allclose(aq.grad[qm], tq.grad.numpy()[qm], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(aq.grad[~qm], 0)


def test_multi_head_attention_over_2d_attention_axes_matches_keras():
    q = _f32(2, 3, 4, 6)
    kl, al = _built_pair(keras.layers.MultiHeadAttention, layers.MultiHeadAttention,
                         dict(num_heads=2, key_dim=3, attention_axes=(1, 2)), [q.shape, q.shape])
    _compare(kl, al, [q, q], _f32(2, 3, 4, 6), return_attention_scores=True)
    kl, al = _built_pair(keras.layers.MultiHeadAttention, layers.MultiHeadAttention,
                         dict(num_heads=2, key_dim=3, attention_axes=2), [q.shape, q.shape])
    _compare(kl, al, [q, q], _f32(2, 3, 4, 6))


def test_multi_head_attention_matches_torch_multihead_attention():
    E, N = 8, 2
    tm = torch.nn.MultiheadAttention(E, N, batch_first=True)
    al = layers.MultiHeadAttention(num_heads=N, key_dim=E // N)
    q, v = _f32(2, 5, E), _f32(2, 6, E)
    al(q, v)
    W = tm.in_proj_weight.detach().numpy()
    b = (tm.in_proj_bias.detach().numpy() + _f32(3 * E) * 0.1).astype(np.float32)
    with torch.no_grad():
        tm.in_proj_bias.copy_(torch.tensor(b))
    ws = []
    for i in range(3):      # torch: y = x·Wᵢᵀ + bᵢ, heads split along the output features
        ws += [W[i * E:(i + 1) * E].T.reshape(E, N, E // N), b[i * E:(i + 1) * E].reshape(N, E // N)]
    ws += [tm.out_proj.weight.detach().numpy().T.reshape(N, E // N, E), tm.out_proj.bias.detach().numpy()]
    al.set_weights(ws)
    mask = rng.random((2, 6)) > 0.3
    mask[:, 0] = True
    tq, tv = torch.tensor(q, requires_grad=True), torch.tensor(v, requires_grad=True)
    to, tw = tm(tq, tv, tv, key_padding_mask=torch.tensor(~mask), average_attn_weights=False)
    g = _f32(2, 5, E)
    (to * torch.tensor(g)).sum().backward()
    aq, av = Tensor(q, requires_grad=True), Tensor(v, requires_grad=True)
    ao, aw = al(aq, av, value_mask=mask, return_attention_scores=True)
    (ao * g).sum().backward()
    np.testing.assert_allclose(ao.data, to.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(aw.data, tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(aq.grad, tq.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(av.grad, tv.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_multi_head_attention_config_round_trip_and_symbolic_shapes():
    al = layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=5, dropout=0.1,
                                   output_shape=(7,), attention_axes=1, kernel_regularizer="l2",
                                   seed=3, name="mha")
    kl = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=5, dropout=0.1,
                                         output_shape=(7,), attention_axes=1,
                                         kernel_regularizer="l2", seed=3, name="mha")
    ac, kc = al.get_config(), kl.get_config()
    for key in ("num_heads", "key_dim", "value_dim", "dropout", "use_bias", "use_gate",
                "output_shape", "sliding_window", "seed"):
        assert ac[key] == kc[key], key
    assert tuple(ac["attention_axes"]) == tuple(kc["attention_axes"])
    clone = layers.MultiHeadAttention.from_config(ac)
    assert clone.get_config() == ac
    q, v = axone.Input((5, 6)), axone.Input((4, 9))
    out, scores = layers.MultiHeadAttention(num_heads=2, key_dim=3)(q, v, return_attention_scores=True)
    assert out.shape == (None, 5, 6) and scores.shape == (None, 2, 5, 4)
    model = axone.Model([q, v], [out, scores])
    o, s = model.predict([_f32(3, 5, 6), _f32(3, 4, 9)], verbose=0)
    assert o.shape == (3, 5, 6) and s.shape == (3, 2, 5, 4)
    np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-5)
    assert len(al.losses) == 0


def test_multi_head_attention_dropout_only_while_training():
    x = _f32(2, 5, 4)
    al = layers.MultiHeadAttention(num_heads=2, key_dim=2, dropout=0.5, seed=1)
    a = al(x, x).data
    np.testing.assert_array_equal(a, al(x, x, training=False).data)
    b = al(x, x, training=True).data
    assert not np.allclose(a, b)
    # scores returned are the probabilities before dropout, as Keras
    _, s = al(x, x, training=True, return_attention_scores=True)
    np.testing.assert_allclose(s.data.sum(-1), 1.0, rtol=1e-5)


def test_multi_head_attention_bad_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        layers.MultiHeadAttention(num_heads=0, key_dim=2)
    with pytest.raises(ValueError, match="key_dim"):
        layers.MultiHeadAttention(num_heads=2, key_dim=2.5)
    with pytest.raises(ValueError, match="value_dim"):
        layers.MultiHeadAttention(num_heads=2, key_dim=2, value_dim=-1)
    with pytest.raises(ValueError, match="attention_axes"):
        layers.MultiHeadAttention(num_heads=2, key_dim=2, attention_axes="1")
    with pytest.raises(ValueError, match="sliding_window"):
        layers.MultiHeadAttention(num_heads=2, key_dim=2, sliding_window=0)
    with pytest.raises(ValueError, match="dropout"):
        layers.MultiHeadAttention(num_heads=2, key_dim=2, dropout=1.5)
    with pytest.raises(NotImplementedError, match="flash_attention"):
        layers.MultiHeadAttention(num_heads=2, key_dim=2, flash_attention=True)
    m = layers.MultiHeadAttention(num_heads=2, key_dim=2)
    with pytest.raises(ValueError, match="value and key"):
        m(_f32(2, 3, 4), _f32(2, 5, 4), _f32(2, 6, 4))
    with pytest.raises(ValueError, match="needs a value"):
        layers.MultiHeadAttention(num_heads=2, key_dim=2)(_f32(2, 3, 4))
    with pytest.raises(ValueError, match="rank 3"):
        layers.MultiHeadAttention(num_heads=2, key_dim=2)(_f32(2, 4), _f32(2, 4))
    m = layers.MultiHeadAttention(num_heads=2, key_dim=2)
    with pytest.raises(ValueError, match="mask must broadcast"):
        m(_f32(2, 3, 4), _f32(2, 3, 4), attention_mask=np.ones((2, 4, 4), bool))


# ------------------------------------------------------------ GroupQueryAttention
@pytest.mark.parametrize("args", [
    dict(head_dim=3, num_query_heads=4, num_key_value_heads=2),
    dict(head_dim=2, num_query_heads=3, num_key_value_heads=1, use_bias=False),
    dict(head_dim=2, num_query_heads=2, num_key_value_heads=2, use_gate=True),
])
@pytest.mark.parametrize("call", [{}, {"use_causal_mask": True}, {"return_attention_scores": True}])
def test_group_query_attention_matches_keras(args, call):
    q, v = _f32(2, 4, 6), _f32(2, 4, 6)
    kl, al = _built_pair(keras.layers.GroupQueryAttention, layers.GroupQueryAttention, args,
                         [q.shape, v.shape])
    assert [w.shape for w in al.weights] == [tuple(w.shape) for w in kl.weights]
    _compare(kl, al, [q, v], _f32(2, 4, 6), **call)
    vm = np.ones((2, 4), bool)
    vm[0, 2:] = False
    _compare(kl, al, [q, v], _f32(2, 4, 6), value_mask=vm, **call)


def test_group_query_attention_config_and_checks():
    al = layers.GroupQueryAttention(head_dim=2, num_query_heads=4, num_key_value_heads=2)
    kl = keras.layers.GroupQueryAttention(head_dim=2, num_query_heads=4, num_key_value_heads=2)
    ac, kc = al.get_config(), kl.get_config()
    for key in ("head_dim", "num_query_heads", "num_key_value_heads", "use_bias", "dropout",
                "use_gate", "sliding_window", "seed"):
        assert ac[key] == kc[key], key
    assert layers.GroupQueryAttention.from_config(ac).get_config() == ac
    assert al.name.startswith("grouped_query_attention")
    with pytest.raises(ValueError, match="divisible"):
        layers.GroupQueryAttention(head_dim=2, num_query_heads=3, num_key_value_heads=2)
    with pytest.raises(ValueError, match="last dimension"):
        layers.GroupQueryAttention(head_dim=2, num_query_heads=2,
                                   num_key_value_heads=1)(axone.Input((3, 4)), axone.Input((3, 5)))
    with pytest.raises(ValueError, match="rank 3"):
        layers.GroupQueryAttention(head_dim=2, num_query_heads=2,
                                   num_key_value_heads=1)(_f32(2, 3, 4, 4), _f32(2, 3, 4, 4))


# ------------------------------------------------------------ Attention layers
def _list_pair(kcls, acls, args, shapes):
    kl, al = kcls(**args), acls(**args)
    dummies = [np.zeros(s, np.float32) for s in shapes]
    kl(dummies)
    al(dummies)
    _copy_weights(kl, al)
    return kl, al


def _compare_list(kl, al, xs, g, **kw):
    txs = [torch.tensor(x, requires_grad=True) for x in xs]
    ko = kl(txs, **kw)
    ko = ko[0] if isinstance(ko, tuple) else ko
    (ko * torch.tensor(g)).sum().backward()
    axs = [Tensor(x, requires_grad=True) for x in xs]
    ao = al(axs, **kw)
    ao = ao[0] if isinstance(ao, tuple) else ao
    (ao * g).sum().backward()
    np.testing.assert_allclose(ao.data, ko.detach().numpy(), rtol=1e-5, atol=1e-5)
    for a, t in zip(axs, txs):
        np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-4, atol=1e-5)
    for a, k in zip(al.trainable_weights, kl.trainable_weights):
        np.testing.assert_allclose(a.grad, k.value.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls, args", [
    ("Attention", {}), ("Attention", {"use_scale": True}),
    ("Attention", {"score_mode": "concat"}), ("Attention", {"score_mode": "concat", "use_scale": True}),
    ("AdditiveAttention", {}), ("AdditiveAttention", {"use_scale": False}),
])
@pytest.mark.parametrize("with_key", [False, True])
def test_attention_layers_match_keras(cls, args, with_key):
    shapes = [(2, 3, 4), (2, 5, 4)] + ([(2, 5, 4)] if with_key else [])
    kl, al = _list_pair(getattr(keras.layers, cls), getattr(layers, cls), args, shapes)
    assert [w.shape for w in al.weights] == [tuple(w.shape) for w in kl.weights]
    xs = [_f32(*s) for s in shapes]
    g = _f32(2, 3, 4)
    _compare_list(kl, al, xs, g)
    qm = np.array([[True, True, False], [True, False, True]])
    vm = np.array([[True, True, True, False, False], [True, False, True, True, True]])
    _compare_list(kl, al, xs, g, mask=[qm, vm])
    _compare_list(kl, al, xs, g, use_causal_mask=True)
    _compare_list(kl, al, xs, g, mask=[None, vm], use_causal_mask=True)
    ko, ks = kl([torch.tensor(x) for x in xs], return_attention_scores=True, mask=[qm, vm])
    ao, as_ = al(xs, return_attention_scores=True, mask=[qm, vm])
    np.testing.assert_allclose(as_.data, ks.detach().numpy(), rtol=1e-5, atol=1e-6)
    cfg = al.get_config()
    kc = kl.get_config()
    assert {k: cfg[k] for k in kc if k not in ("name", "dtype", "trainable")} == \
        {k: kc[k] for k in kc if k not in ("name", "dtype", "trainable")}


def test_attention_layer_masks_flow_in_a_functional_model():
    ids = axone.Input((5,), dtype="int32")
    emb = layers.Embedding(10, 4, mask_zero=True)(ids)
    att = layers.Attention()([emb, emb])
    model = axone.Model(ids, att)
    x = np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0]])
    out = model.predict(x, verbose=0)
    e = model.layers[1].embeddings.data
    v = e[x]
    s = np.einsum("btd,bsd->bts", v, v) - 1e9 * (x == 0)[:, None, :]
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    want = np.einsum("bts,bsd->btd", w, v) * (x != 0)[..., None]
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    q, v = axone.Input((3, 4)), axone.Input((5, 4))
    o, s = layers.Attention()([q, v], return_attention_scores=True)
    assert o.shape == (None, 3, 4) and s.shape == (None, 3, 5)


def test_attention_layer_bad_arguments():
    with pytest.raises(ValueError, match="score_mode"):
        layers.Attention(score_mode="add")
    with pytest.raises(ValueError, match="list of inputs"):
        layers.Attention()(_f32(2, 3, 4))
    with pytest.raises(ValueError, match="length 2 or 3"):
        layers.Attention()([_f32(2, 3, 4)])
    a = layers.Attention()
    with pytest.raises(ValueError, match="mask must be a list"):
        a([_f32(2, 3, 4), _f32(2, 3, 4)], mask=np.ones((2, 3), bool))
    a = layers.AdditiveAttention(dropout=0.5, seed=0)
    x = [_f32(2, 3, 4), _f32(2, 3, 4)]
    np.testing.assert_array_equal(a(x).data, a(x, training=False).data)
    assert not np.allclose(a(x).data, a(x, training=True).data)


# ------------------------------------------------------------ masked rows, mask flow, saving
@pytest.mark.parametrize("args", [dict(num_heads=2, key_dim=4), dict(num_heads=2, key_dim=4, dropout=0.3)])
@pytest.mark.parametrize("scores", [False, True])
def test_multi_head_attention_fully_masked_query_rows_match_keras(args, scores):
    # Keras takes the fused node (a row masked everywhere attends uniformly) unless the layer has
    # dropout (even at inference) or returns scores: then its masked softmax gives zeros there
    x = _f32(3, 5, 8)
    kl, al = _built_pair(keras.layers.MultiHeadAttention, layers.MultiHeadAttention, args,
                         [x.shape, x.shape])
    qm = np.ones((3, 5), bool)
    qm[:, -1] = False
    tq = torch.tensor(x)
    keras.src.backend.set_keras_mask(tq, torch.tensor(qm))
    ko = kl(tq, torch.tensor(x), return_attention_scores=scores)
    aq = Tensor(x)
    aq._keras_mask = qm
    ao = al(aq, Tensor(x), return_attention_scores=scores)
    if scores:
        np.testing.assert_allclose(ao[1].data, ko[1].detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(ao[1].data[:, :, -1], 0)
        ao, ko = ao[0], ko[0]
    np.testing.assert_allclose(ao.data, ko.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_group_query_attention_fully_masked_query_rows_match_keras():
    x = _f32(2, 4, 6)
    qm = np.array([[True, True, False, True], [True, True, True, False]])
    for args in (dict(head_dim=2, num_query_heads=4, num_key_value_heads=2),
                 dict(head_dim=2, num_query_heads=4, num_key_value_heads=2, dropout=0.2)):
        kl, al = _built_pair(keras.layers.GroupQueryAttention, layers.GroupQueryAttention, args,
                             [x.shape, x.shape])
        for scores in (False, True):
            ko = kl(torch.tensor(x), torch.tensor(x), query_mask=torch.tensor(qm),
                    return_attention_scores=scores)
            ao = al(x, x, query_mask=qm, return_attention_scores=scores)
            if scores:
                np.testing.assert_allclose(ao[1].data, ko[1].detach().numpy(), rtol=1e-5, atol=1e-6)
                ao, ko = ao[0], ko[0]
            np.testing.assert_allclose(ao.data, ko.detach().numpy(), rtol=1e-5, atol=1e-5)


def _mask_flow_model(L, inp):
    e = L.Embedding(10, 8, mask_zero=True)(inp)
    h = L.MultiHeadAttention(num_heads=2, key_dim=4)(e, e)
    h = L.LayerNormalization()(h)
    # (Keras's MultiHeadAttention also deletes the masks of the tensors it is given, so a later
    # layer reading ``e`` would see no mask there; axone leaves its inputs alone)
    return L.GroupQueryAttention(head_dim=4, num_query_heads=2, num_key_value_heads=1)(h, h)


def test_embedding_masks_flow_into_attention_like_keras():
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 0], [1, 0, 0, 0, 0]])
    ki = keras.Input((5,), dtype="int32")
    km = keras.Model(ki, _mask_flow_model(keras.layers, ki))
    ai = axone.Input((5,), dtype="int32")
    am = axone.Model(ai, _mask_flow_model(layers, ai))
    assert [w.shape for w in am.weights] == [tuple(w.shape) for w in km.weights]
    ws = [np.asarray(w.value.detach()) + _f32(*w.shape) * 0.1 for w in km.weights]
    km.set_weights(ws)
    am.set_weights(ws)
    want = km.predict(ids, verbose=0)
    np.testing.assert_allclose(am.predict(ids, verbose=0), want, rtol=1e-5, atol=1e-5)
    # without the masks the result differs: the test can fail
    assert not np.allclose(am.predict(np.where(ids == 0, 9, ids), verbose=0), want, atol=1e-3)


def test_attention_layers_save_load_and_train(tmp_path):
    ids = rng.integers(1, 10, (16, 6))
    ids[:, -2:] = 0
    y = rng.integers(0, 3, (16,))
    inp = axone.Input((6,), dtype="int32")
    emb = layers.ReversibleEmbedding(10, 8, mask_zero=True)
    e = emb(inp)
    h = layers.MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.1, seed=1)(
        e, e, use_causal_mask=True)
    h = layers.LayerNormalization()(layers.Add()([h, e]))
    g, s = layers.GroupQueryAttention(head_dim=4, num_query_heads=2, num_key_value_heads=1)(
        h, h, e, return_attention_scores=True)
    a = layers.Attention(use_scale=True, score_mode="concat")([g, h])
    a = layers.AdditiveAttention()([a, h, e], use_causal_mask=True)
    a = layers.EinsumDense("abc,cd->abd", (None, 8), bias_axes="d", activation="relu")(a)
    a = layers.GroupNormalization(groups=2)(a)
    a = layers.UnitNormalization()(layers.RMSNormalization()(a))
    logits = emb(a, reverse=True)
    out = layers.Dense(3)(layers.GlobalAveragePooling1D()(logits))
    assert s.shape == (None, 2, 6, 6) and logits.shape == (None, None, 10)   # as Keras
    trained = axone.Model(inp, out)
    trained.compile("adam", axone.losses.SparseCategoricalCrossentropy(from_logits=True))
    hist = trained.fit(ids, y, epochs=8, batch_size=8, verbose=0).history["loss"]
    assert hist[-1] < hist[0]
    model = axone.Model(inp, [out, s])
    p = model.predict(ids, verbose=0)
    model.save(tmp_path / "m.keras")
    m2 = axone.models.load_model(tmp_path / "m.keras")
    p2 = m2.predict(ids, verbose=0)
    for a_, b_ in zip(p, p2):
        np.testing.assert_array_equal(a_, b_)
    mha = [l for l in m2.layers if isinstance(l, layers.MultiHeadAttention)][0]
    assert mha.get_build_config() == {"shapes_dict": {"query_shape": (None, 6, 8),
                                                      "value_shape": (None, 6, 8)}}


def test_saved_call_kwargs_are_checked(tmp_path):
    import json
    import zipfile
    q = axone.Input((3, 4))
    model = axone.Model(q, layers.MultiHeadAttention(num_heads=1, key_dim=2)(q, q))
    model.save(tmp_path / "m.axone")
    with zipfile.ZipFile(tmp_path / "m.axone") as z:
        members = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(members["config.json"])
    node = [l for l in cfg["config"]["layers"] if l["class_name"] == "MultiHeadAttention"][0]
    assert node["inbound_nodes"][0][-1]["kwargs"] == {"value": {"__tensor__": 1}}
    node["inbound_nodes"][0][-1]["kwargs"] = {"value": {"__tensor__": 7}}
    members["config.json"] = json.dumps(cfg).encode()
    with zipfile.ZipFile(tmp_path / "bad.axone", "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    with pytest.raises(axone.fileio.FileFormatError, match="__tensor__"):
        axone.models.load_model(tmp_path / "bad.axone")


# ------------------------------------------------------------ float64 finite differences
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


def _f64(*shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize("args, call", [
    (dict(num_heads=2, key_dim=2), {}),
    (dict(num_heads=2, key_dim=2, value_dim=3, use_gate=True), {"use_causal_mask": True}),
    (dict(num_heads=2, key_dim=2), {"return_attention_scores": True}),
])
def test_multi_head_attention_gradients_by_finite_differences(args, call):
    q, v, k = _f64(2, 3, 3), _f64(2, 4, 2), _f64(2, 4, 3)
    mha = layers.MultiHeadAttention(dtype="float64", **args)
    vm = np.array([[True, True, False, True], [True, True, True, True]])
    first = (lambda o: o[0]) if call.get("return_attention_scores") else (lambda o: o)
    r = check_gradients(lambda q, v, k: first(mha(q, v, k, value_mask=vm, **call)), q, v, k)
    assert r.max_error < 1e-6, r
    for w, x in zip(mha.trainable_weights, rng.standard_normal(99)):
        w.data[...] += x * 0.1           # non-zero biases
    _fd_weights(mha, lambda: first(mha(q, v, k, value_mask=vm, **call)))


def test_multi_head_attention_2d_axes_and_group_query_gradients_by_finite_differences():
    x = _f64(2, 2, 3, 3)
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=2, attention_axes=(1, 2), dtype="float64")
    r = check_gradients(lambda a, b: mha(a, b), x, _f64(2, 2, 3, 3))
    assert r.max_error < 1e-6, r
    _fd_weights(mha, lambda: mha(x, x))
    gqa = layers.GroupQueryAttention(head_dim=2, num_query_heads=4, num_key_value_heads=2,
                                     dtype="float64")
    q, v = _f64(2, 3, 4), _f64(2, 5, 4)
    for call in ({}, {"return_attention_scores": True}, {"use_causal_mask": True}):
        first = (lambda o: o[0]) if call else (lambda o: o)
        r = check_gradients(lambda q, v: first(gqa(q, v, **call)), q, v)
        assert r.max_error < 1e-6, (call, r)
    _fd_weights(gqa, lambda: gqa(q, v))


def _functional(acls, args):
    """A layer in float64 with weights and inputs drawn; gradcheck over query, value, key."""
    al = acls(dtype="float64", **args)
    xs = [_f64(2, 3, 4), _f64(2, 5, 4), _f64(2, 5, 4)]
    al(xs)
    for w in al.trainable_weights:
        w.data[...] = rng.random(w.shape) + 0.5
    return al, xs


@pytest.mark.parametrize("cls, args", [
    ("Attention", {"use_scale": True}), ("Attention", {"score_mode": "concat", "use_scale": True}),
    ("AdditiveAttention", {}),
])
def test_attention_layers_gradients_by_finite_differences(cls, args):
    al, xs = _functional(getattr(layers, cls), args)
    qm = np.array([[True, True, False], [True, False, True]])
    vm = np.array([[True, True, True, False, False], [True, False, True, True, True]])
    r = check_gradients(lambda q, v, k: al([q, v, k], mask=[qm, vm]), *xs)
    assert r.max_error < 1e-6, r
    _fd_weights(al, lambda: al(xs, use_causal_mask=True))


def test_attention_layer_bad_shapes():
    a = layers.Attention()
    with pytest.raises(ValueError, match="same last dimension"):
        a([_f32(2, 3, 4), _f32(2, 5, 4), _f32(2, 5, 3)])
    with pytest.raises(ValueError, match="same rank"):
        a([_f32(2, 3, 4), _f32(5, 4)])
    with pytest.raises(ValueError, match="value mask"):
        a([_f32(2, 3, 4), _f32(2, 5, 4)], mask=[None, np.ones((2, 4), bool)])
    with pytest.raises(ValueError, match="query mask"):
        a([_f32(2, 3, 4), _f32(2, 5, 4)], mask=[np.ones((2, 5), bool), None])
    m = layers.MultiHeadAttention(num_heads=2, key_dim=2)
    with pytest.raises(ValueError, match="MultiHeadAttention 'multi_head_attention.*mask"):
        m(_f32(2, 3, 4), _f32(2, 5, 4), value_mask=np.ones((2, 4), bool))
    m = layers.MultiHeadAttention(num_heads=2, key_dim=2, dropout=0.1)
    with pytest.raises(ValueError, match="MultiHeadAttention .*mask must broadcast"):
        m(_f32(2, 3, 4), _f32(2, 5, 4), value_mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="attention mask must broadcast"):
        m(_f32(2, 3, 4), _f32(2, 5, 4), value_mask=np.ones((2, 4), bool),
          return_attention_scores=True)
    g = layers.GroupQueryAttention(head_dim=2, num_query_heads=2, num_key_value_heads=1)
    with pytest.raises(ValueError, match="GroupedQueryAttention.*mask"):
        g(_f32(2, 3, 4), _f32(2, 5, 4), value_mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="head_dim"):
        layers.GroupQueryAttention(head_dim=0, num_query_heads=2, num_key_value_heads=1)


def test_compute_output_spec_like_keras():
    q, v = axone.layers.base.KerasTensor((None, 5, 6)), axone.layers.base.KerasTensor((None, 4, 9))
    for kl, al in ((keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, output_shape=7),
                    layers.MultiHeadAttention(num_heads=2, key_dim=3, output_shape=7)),):
        kq, kv = keras.KerasTensor((None, 5, 6)), keras.KerasTensor((None, 4, 9))
        assert al.compute_output_spec(q, v).shape == tuple(kl.compute_output_spec(kq, kv).shape)
        o, s = al.compute_output_spec(q, v, return_attention_scores=True)
        assert o.shape == (None, 5, 7) and s.shape == (None, 2, 5, 4)
    g = layers.GroupQueryAttention(head_dim=2, num_query_heads=4, num_key_value_heads=2)
    kg = keras.layers.GroupQueryAttention(head_dim=2, num_query_heads=4, num_key_value_heads=2)
    q, v = axone.layers.base.KerasTensor((None, 5, 6)), axone.layers.base.KerasTensor((None, 4, 6))
    kq, kv = keras.KerasTensor((None, 5, 6)), keras.KerasTensor((None, 4, 6))
    a, b = g.compute_output_spec(q, v, return_attention_scores=True)
    c, d = kg.compute_output_spec(kq, kv, return_attention_scores=True)
    assert (a.shape, b.shape) == (tuple(c.shape), tuple(d.shape))


def test_attention_inputs_of_wrong_rank_or_batch_name_the_layer():
    x = _f32(2, 3, 4)
    for layer in (layers.MultiHeadAttention(num_heads=2, key_dim=2, name="mha"),
                  layers.GroupQueryAttention(head_dim=2, num_query_heads=2, num_key_value_heads=1,
                                             name="mha")):
        with pytest.raises(ValueError, match="'mha'.*rank 3 or more"):
            layer(x, _f32(2, 3))
        with pytest.raises(ValueError, match="'mha'.*batch size"):
            layer(x, _f32(3, 3, 4))
    with pytest.raises(ValueError, match="batch axes"):
        layers.Attention()([x, _f32(3, 3, 4)])
    with pytest.raises(ValueError, match="UnitNormalization 'un'.*out of bounds"):
        layers.UnitNormalization(axis=5, name="un")(x)


def test_masks_that_do_not_broadcast_name_the_layer():
    m = layers.MultiHeadAttention(num_heads=2, key_dim=2, name="mha")
    x = _f32(2, 3, 4)
    with pytest.raises(ValueError, match="'mha': the masks do not broadcast"):
        m(x, x, query_mask=np.ones((3, 3), bool), value_mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="'mha'.*mask must broadcast"):
        m(x, x, query_mask=np.ones((2, 5), bool))
