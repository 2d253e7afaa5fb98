"""ops.ctc_loss and ops.ctc_decode against Keras 3 (torch backend) and PyTorch's CTC loss:
values and gradients on random inputs with ragged lengths, finite differences in float64,
greedy and beam-search decoding with several blank indices, and bad input."""
import numpy as np
import pytest

import axone
from axone import Tensor
from axone.utils import check_gradients

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

rng = np.random.default_rng(3)
B, T, C, L = 5, 11, 6, 4


def _batch(seed, blank=0):
    r = np.random.default_rng(seed)
    logits = r.normal(scale=1.5, size=(B, T, C)).astype(np.float32)
    classes = [c for c in range(C) if c != blank]
    labels = r.choice(classes, size=(B, L))
    label_len = np.array([4, 2, 0, 3, 4])
    labels[1, 2:] = blank
    labels[3, 3:] = blank
    out_len = np.array([11, 7, 3, 9, 11])
    return logits, labels, label_len, out_len


@pytest.mark.parametrize("seed, blank", [(0, 0), (1, 0), (2, 3), (3, C - 1)])
def test_ctc_loss_values_and_gradients_match_torch(seed, blank):
    logits, labels, label_len, out_len = _batch(seed, blank)
    tx = torch.tensor(logits, requires_grad=True)
    want = torch.nn.functional.ctc_loss(torch.log_softmax(tx.transpose(0, 1), -1),
                                        torch.tensor(labels), torch.tensor(out_len),
                                        torch.tensor(label_len), blank=blank, reduction="none")
    g = rng.normal(size=B).astype(np.float32)
    (want * torch.tensor(g)).sum().backward()
    x = Tensor(logits, requires_grad=True)
    got = axone.ops.ctc_loss(labels, x, label_len, out_len, mask_index=blank)
    assert got.dtype == np.float32 and got.shape == (B,)
    np.testing.assert_allclose(got.data, want.detach().numpy(), rtol=1e-5, atol=1e-5)
    got.backward(g)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_ctc_loss_matches_keras_ops():
    logits, labels, label_len, out_len = _batch(5)
    want = keras.ops.ctc_loss(labels, logits, label_len, out_len, mask_index=0)
    got = axone.ops.ctc_loss(labels, logits, label_len, out_len, mask_index=0)
    np.testing.assert_allclose(got.data, np.asarray(want), rtol=1e-5, atol=1e-5)
    assert axone.ops.nn.ctc_loss is axone.ops.ctc_loss


def test_ctc_loss_gradient_by_finite_differences():
    logits, labels, label_len, out_len = _batch(6)
    w = rng.normal(size=B)
    r = check_gradients(
        lambda x: axone.ops.sum(axone.ops.ctc_loss(labels, x, label_len, out_len) * w),
        logits.astype(np.float64))
    assert r.max_error < 1e-6, r


def test_impossible_alignment_is_infinite_with_zero_gradient():
    # three repeated labels need at least five steps; two are given
    logits = rng.normal(size=(1, 2, 3))
    x = Tensor(logits, requires_grad=True)
    loss = axone.ops.ctc_loss(np.array([[1, 1, 1]]), x, np.array([3]), np.array([2]))
    assert np.isinf(loss.data[0])
    loss.backward(np.ones(1))
    assert np.all(x.grad == 0)


@pytest.mark.parametrize("mask_index", [0, 2, C - 1])
@pytest.mark.parametrize("merge_repeated", [True, False])
def test_greedy_decode_matches_keras(mask_index, merge_repeated):
    logits, _, _, out_len = _batch(7)
    logits[:, 3] = logits[:, 2]          # repeats to merge
    kd, ks = keras.ops.ctc_decode(logits, out_len, strategy="greedy",
                                  merge_repeated=merge_repeated, mask_index=mask_index)
    ad, as_ = axone.ops.ctc_decode(logits, out_len, strategy="greedy",
                                   merge_repeated=merge_repeated, mask_index=mask_index)
    np.testing.assert_array_equal(ad.data, kd.numpy())
    np.testing.assert_allclose(as_.data, ks.numpy(), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("beam_width, top_paths, mask_index", [(4, 1, 0), (6, 3, 0), (5, 2, 3),
                                                                (10, 4, C - 1)])
def test_beam_search_decode_matches_keras(beam_width, top_paths, mask_index):
    logits, _, _, out_len = _batch(8)
    kd, ks = keras.ops.ctc_decode(logits, out_len, strategy="beam_search",
                                  beam_width=beam_width, top_paths=top_paths,
                                  mask_index=mask_index)
    ad, as_ = axone.ops.ctc_decode(logits, out_len, strategy="beam_search",
                                   beam_width=beam_width, top_paths=top_paths,
                                   mask_index=mask_index)
    assert ad.shape == (top_paths, B, T) and as_.shape == (B, top_paths)
    np.testing.assert_array_equal(ad.data, kd.numpy())
    np.testing.assert_allclose(as_.data, ks.numpy(), rtol=1e-5, atol=1e-5)


def test_beam_search_best_path_scores_are_log_probabilities():
    # with a beam wide enough for every prefix, the best path's score is log p(labels | x)
    r = np.random.default_rng(9)
    logits = r.normal(size=(1, 4, 3)).astype(np.float64)
    d, s = axone.ops.ctc_decode(logits, np.array([4]), strategy="beam_search", beam_width=50,
                                top_paths=1, mask_index=0)
    path = d.data[0, 0]
    labels = path[path >= 0][None]
    loss = axone.ops.ctc_loss(labels, logits, np.array([labels.shape[1]]), np.array([4]))
    np.testing.assert_allclose(s.data[0, 0], -loss.data[0], rtol=1e-6)


def test_bad_input():
    logits, labels, label_len, out_len = _batch(0)
    with pytest.raises(ValueError, match="output"):
        axone.ops.ctc_loss(labels, logits[0], label_len, out_len)
    with pytest.raises(ValueError, match="target"):
        axone.ops.ctc_loss(labels[:2], logits, label_len, out_len)
    with pytest.raises(ValueError, match="target_length"):
        axone.ops.ctc_loss(labels, logits, label_len + 3, out_len)
    with pytest.raises(ValueError, match="output_length"):
        axone.ops.ctc_loss(labels, logits, label_len, out_len[:3])
    with pytest.raises(ValueError, match="mask_index"):
        axone.ops.ctc_loss(labels, logits, label_len, out_len, mask_index=C)
    with pytest.raises(TypeError, match="integers"):
        axone.ops.ctc_loss(labels + 0.5, logits, label_len, out_len)
    with pytest.raises(ValueError, match="labels must lie"):
        axone.ops.ctc_loss(labels + C, logits, label_len, out_len)
    with pytest.raises(ValueError, match="Invalid strategy"):
        axone.ops.ctc_decode(logits, out_len, strategy="best")
    with pytest.raises(ValueError, match="top_paths"):
        axone.ops.ctc_decode(logits, out_len, strategy="beam_search", beam_width=2, top_paths=3)
    with pytest.raises(ValueError, match="beam_width"):
        axone.ops.ctc_decode(logits, out_len, strategy="beam_search", beam_width=0)
    with pytest.raises(ValueError, match="sequence_lengths"):
        axone.ops.ctc_decode(logits, out_len + T, strategy="greedy")
