"""Convolution and pooling on batch shards (ops._parallel.batch_blocks / run_blocks), with BLAS
on one thread as the thread policy runs them: the split node gives the unsplit node's pooling
results bit for bit, its convolution values and input gradients to rounding (each sample's
arithmetic is its own, but OpenBLAS picks its kernel from a product's row count, and a block's
products have fewer rows), and its kernel / bias gradients to float rounding (block sums added in
block order: rtol 2e-5 in float32, 1e-12 in float64); a fixed thread count gives the same bits
every run."""
import numpy as np
import pytest

from axone import Tensor, backend, layers, ops
from axone.autograd.gradcheck import check_gradients
from axone.ops import _parallel as P

@pytest.fixture
def forced(monkeypatch):
    """Split every node (any work) over ``threads`` blocks, with BLAS on one thread as the
    policy has it whenever nodes are split (with BLAS's own threads as well, a block's product
    may run on one or on several of them, as the other block keeps them busy or not, and the
    bits then depend on the timing)."""
    scope = backend.blas_threads(1)
    scope.__enter__()

    def force(threads):
        monkeypatch.setattr(P, "_threads", lambda: threads)
        monkeypatch.setattr(P, "_MIN_SHARD_WORK", 1)
        monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 1)
    yield force
    scope.__exit__(None, None, None)


def _conv_run(x, k, b, gy, split, **kw):
    """(y, dL/dx, dL/dK, dL/db, the node's batch blocks) of one conv with the split on or off."""
    old = P._ENABLED
    P._ENABLED = split
    try:
        xt = Tensor(x, requires_grad=True)
        kt = Tensor(k, requires_grad=True)
        bt = None if b is None else Tensor(b, requires_grad=True)
        y = ops.conv(xt, kt, bt, **kw)
        blocks = y._ctx.blocks               # the node's state is freed by backward
        y.backward(gy)
    finally:
        P._ENABLED = old
    return y.data.copy(), xt.grad.copy(), kt.grad.copy(), None if b is None else bt.grad.copy(), blocks


CONV_CASES = [
    # (input shape, kernel shape, conv keywords): every lowering the split node runs per block
    ((6, 12, 12, 3), (3, 3, 3, 32), dict(padding="same", relu=True)),          # plain, bias row
    ((5, 10, 10, 8), (3, 3, 8, 8), dict(padding="same")),                     # banded (few filters)
    ((7, 11, 11, 1), (3, 3, 1, 40), dict(padding="same", relu=True)),         # one input channel
    ((5, 9, 9, 1), (5, 5, 1, 6), dict()),                                     # LeNet's first conv
    ((5, 8, 8, 6), (1, 1, 6, 20), dict()),                                    # 1×1: rows are x
    ((5, 13, 13, 4), (3, 3, 4, 24), dict(strides=2, padding="same")),
    ((5, 13, 13, 4), (3, 3, 4, 24), dict(dilation_rate=2)),
    ((5, 12, 12, 8), (3, 3, 4, 24), dict(groups=2, padding="same")),
    ((7, 20, 5), (3, 5, 24), dict(padding="causal", dilation_rate=2)),         # conv1d
    ((3, 6, 6, 6, 2), (3, 3, 3, 2, 20), dict(padding="same")),                 # conv3d
]


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("xs, ks, kw", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_split_conv_equals_unsplit(threads, xs, ks, kw, bias, forced):
    forced(threads)
    rng = np.random.default_rng(0)
    x = rng.normal(size=xs).astype(np.float32)
    k = rng.normal(size=ks).astype(np.float32)
    b = rng.normal(size=ks[-1]).astype(np.float32) if bias else None
    y0 = ops.conv(Tensor(x), Tensor(k), None if b is None else Tensor(b), **kw)
    gy = rng.normal(size=y0.shape).astype(np.float32)
    ref = _conv_run(x, k, b, gy, False, **kw)
    got = _conv_run(x, k, b, gy, True, **kw)
    assert ref[4] is None
    assert got[4] is not None and len(got[4]) == min(threads, xs[0])
    assert got[0].dtype == np.float32 and got[0].shape == ref[0].shape
    # each sample's arithmetic is its own, but OpenBLAS (on one thread) picks its kernel from a
    # product's row count, and a block's products have fewer rows: equal to rounding
    np.testing.assert_allclose(got[0], ref[0], rtol=2e-5, atol=2e-6 * np.abs(ref[0]).max())
    np.testing.assert_allclose(got[1], ref[1], rtol=2e-5, atol=2e-6 * np.abs(ref[1]).max())
    np.testing.assert_allclose(got[2], ref[2], rtol=2e-5, atol=2e-5 * np.abs(ref[2]).max())
    if bias:
        np.testing.assert_allclose(got[3], ref[3], rtol=2e-5, atol=2e-5 * np.abs(ref[3]).max())


@pytest.mark.parametrize("threads", [2, 3])
def test_split_conv_float64(threads, forced):
    forced(threads)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 10, 10, 3))
    k = rng.normal(size=(3, 3, 3, 16))
    b = rng.normal(size=16)
    gy = rng.normal(size=(7, 10, 10, 16))
    ref = _conv_run(x, k, b, gy, False, padding="same", relu=True)
    got = _conv_run(x, k, b, gy, True, padding="same", relu=True)
    assert got[0].dtype == np.float64 and got[4] is not None
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12, atol=1e-12 * np.abs(ref[0]).max())
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12, atol=1e-12 * np.abs(ref[1]).max())
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-12, atol=1e-12 * np.abs(ref[2]).max())
    np.testing.assert_allclose(got[3], ref[3], rtol=1e-12, atol=1e-12 * np.abs(ref[3]).max())


def test_split_conv_gradcheck_float64(forced):
    forced(2)
    rng = np.random.default_rng(2)
    x = Tensor(rng.normal(size=(3, 5, 5, 2)), requires_grad=True)
    k = Tensor(rng.normal(size=(3, 3, 2, 3)), requires_grad=True)
    b = Tensor(rng.normal(size=3), requires_grad=True)
    assert ops.conv(x, k, b, padding="same")._ctx.blocks is not None
    check_gradients(lambda x, k, b: ops.conv(x, k, b, padding="same"), x, k, b)


def test_split_conv_same_bits_every_run(forced):
    forced(2)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(9, 12, 12, 4)).astype(np.float32)
    k = rng.normal(size=(3, 3, 4, 32)).astype(np.float32)
    b = rng.normal(size=32).astype(np.float32)
    gy = rng.normal(size=(9, 12, 12, 32)).astype(np.float32)
    first = _conv_run(x, k, b, gy, True, padding="same", relu=True)
    for _ in range(3):
        again = _conv_run(x, k, b, gy, True, padding="same", relu=True)
        for a, c in zip(first[:4], again[:4]):
            np.testing.assert_array_equal(a, c)


def test_split_conv_only_kernel_or_only_input_gradient(forced):
    forced(2)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    k = rng.normal(size=(3, 3, 3, 20)).astype(np.float32)
    for x_grad in (True, False):
        xt, kt = Tensor(x, requires_grad=x_grad), Tensor(k, requires_grad=not x_grad)
        y = ops.conv(xt, kt, padding="same")
        assert y._ctx.blocks is not None
        y.backward(np.ones(y.shape, np.float32))
        assert (xt.grad is not None) == x_grad and (kt.grad is not None) != x_grad


def _layer_run(layer, x, split):
    old = P._ENABLED
    P._ENABLED = split
    try:
        xt = Tensor(x, requires_grad=True)
        y = layer(xt)
        y.backward(np.cos(np.arange(y.data.size, dtype=np.float32)).reshape(y.shape))
    finally:
        P._ENABLED = old
    grads = [w.grad.copy() if getattr(w, "grad", None) is not None else None
             for w in (layer.kernel, layer.bias)]
    for w in (layer.kernel, layer.bias):
        w.grad = None
    return y.data.copy(), xt.grad.copy(), grads


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_split_conv2d_layer_data_formats(fmt, forced):
    forced(2)
    shape = (5, 3, 10, 10) if fmt == "channels_first" else (5, 10, 10, 3)
    x = np.random.default_rng(5).normal(size=shape).astype(np.float32)
    layer = layers.Conv2D(24, 3, padding="same", activation="relu", data_format=fmt)
    layer(Tensor(x[:1]))
    ref = _layer_run(layer, x, False)
    got = _layer_run(layer, x, True)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    for a, c in zip(got[2], ref[2]):
        np.testing.assert_allclose(a, c, rtol=2e-5, atol=2e-5 * np.abs(c).max())


def _pool_run(x, g, split, kind, pool, strides, padding):
    old = P._ENABLED
    P._ENABLED = split
    try:
        xt = Tensor(x, requires_grad=True)
        f = ops.max_pool if kind == "max" else ops.average_pool
        y = f(xt, pool, strides, padding)
        parts = y._ctx.parts
        y.backward(g)
    finally:
        P._ENABLED = old
    return y.data.copy(), xt.grad.copy(), parts


POOL_CASES = [
    ((7, 12, 12, 8), "max", 2, None, "valid"),       # disjoint windows: the block path
    ((5, 13, 13, 8), "max", 2, None, "valid"),       # a row / column past the last window
    ((5, 13, 13, 8), "max", 3, 2, "same"),           # overlapping, −∞ padding
    ((5, 12, 12, 8), "max", 2, 3, "valid"),          # gaps between windows: the scatter path
    ((5, 12, 12, 8), "avg", 2, None, "valid"),
    ((5, 13, 13, 8), "avg", 3, 2, "same"),
    ((7, 21, 6), "max", 3, None, "valid"),           # 1-D
    ((3, 6, 6, 6, 4), "avg", 2, None, "valid"),      # 3-D
]


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("xs, kind, pool, strides, padding", POOL_CASES)
def test_split_pool_equals_unsplit(threads, xs, kind, pool, strides, padding, forced):
    forced(threads)
    rng = np.random.default_rng(6)
    x = rng.normal(size=xs).astype(np.float32)
    x[0, 0, :2] = 0.0                                # ties: the first maximum takes the gradient
    f = ops.max_pool if kind == "max" else ops.average_pool
    g = rng.normal(size=f(Tensor(x), pool, strides, padding).shape).astype(np.float32)
    ref = _pool_run(x, g, False, kind, pool, strides, padding)
    got = _pool_run(x, g, True, kind, pool, strides, padding)
    assert ref[2] is None and got[2] is not None
    assert len(got[2]) == min(threads, xs[0])
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])


def test_split_pool_layer_channels_first(forced):
    forced(2)
    x = np.random.default_rng(7).normal(size=(5, 4, 10, 10)).astype(np.float32)
    layer = layers.MaxPooling2D(2, data_format="channels_first")
    outs = []
    for split in (False, True):
        P._ENABLED = split
        try:
            xt = Tensor(x, requires_grad=True)
            y = layer(xt)
            y.backward(np.ones(y.shape, np.float32))
        finally:
            P._ENABLED = True
        outs.append((y.data, xt.grad))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


def test_blocks_decided_from_the_node_work(monkeypatch):
    monkeypatch.setattr(P, "_threads", lambda: 2)
    monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 1)
    assert P.batch_blocks(64, P._MIN_SHARD_WORK - 1) is None          # too little work
    assert P.batch_blocks(64, 2 * P._MIN_SHARD_WORK) == [(0, 32), (32, 64)]
    assert P.batch_blocks(1, 100 * P._MIN_SHARD_WORK) is None          # one sample
    assert P.batch_blocks(5, 100 * P._MIN_SHARD_WORK) == [(0, 3), (3, 5)]
    monkeypatch.setattr(P, "_threads", lambda: 1)
    assert P.batch_blocks(64, 100 * P._MIN_SHARD_WORK) is None         # one thread
    monkeypatch.setattr(P, "_threads", lambda: 2)
    monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 2)
    assert P.batch_blocks(64, 100 * P._MIN_SHARD_WORK) is None         # BLAS has its threads
    # a small convolution stays whole, a wide one is split
    monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 1)
    small = ops.conv(Tensor(np.ones((4, 8, 8, 1), np.float32)),
                     Tensor(np.ones((3, 3, 1, 4), np.float32), requires_grad=True))
    big = ops.conv(Tensor(np.ones((32, 16, 16, 32), np.float32)),
                   Tensor(np.ones((3, 3, 32, 32), np.float32), requires_grad=True), padding="same")
    assert small._ctx.blocks is None and big._ctx.blocks == [(0, 16), (16, 32)]


def test_run_blocks_reraises_a_block_error():
    def fn(i, lo, hi):
        if i == 1:
            raise ValueError("block 1 failed")
        return lo
    with pytest.raises(ValueError, match="block 1 failed"):
        P.run_blocks(fn, [(0, 2), (2, 4), (4, 5)])
    assert P.run_blocks(lambda i, lo, hi: (i, hi - lo), [(0, 2), (2, 5)]) == [(0, 2), (1, 3)]


def test_fit_with_split_nodes_matches_unsplit(forced):
    """A small CNN trained a few steps: the same loss curve split or not, to rounding."""
    import axone
    forced(2)
    rng = np.random.default_rng(8)
    x = rng.random((40, 12, 12, 3), dtype=np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 40)]
    losses = []
    for split in (False, True):
        P._ENABLED = split
        try:
            axone.utils.set_random_seed(0)
            m = axone.Sequential([layers.InputLayer(input_shape=(12, 12, 3)),
                                  layers.Conv2D(16, 3, padding="same", activation="relu"),
                                  layers.MaxPooling2D(2), layers.GlobalAveragePooling2D(),
                                  layers.Dense(4, activation="softmax")])
            m.compile(loss="categorical_crossentropy", optimizer="adam")
            losses.append(m.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
                          .history["loss"])
        finally:
            P._ENABLED = True
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    assert backend.get_num_threads() >= 1
