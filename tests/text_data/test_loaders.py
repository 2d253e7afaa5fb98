"""mnist / fashion_mnist / cifar10 loaders on small fake files served from 127.0.0.1."""
import gzip

import numpy as np
import pytest

from axone.datasets import cifar10, fashion_mnist, mnist
from axone.datasets.remote import ChecksumError, DatasetUnavailableError

from .fakes import (FASHION_FILES, idx_bytes, mnist_arrays, sha256, write_cifar_binary,
                    write_fashion, write_mnist_npz)


# ------------------------------------------------------------------ mnist
def test_mnist_download_shapes_and_values(server, axone_home):
    arrays = mnist_arrays()
    path = write_mnist_npz(server.root, arrays)
    (x_train, y_train), (x_test, y_test) = mnist.load_data(
        base_url=server.url, checksums={"mnist.npz": sha256(path)})
    for got, key in ((x_train, "x_train"), (y_train, "y_train"), (x_test, "x_test"), (y_test, "y_test")):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[key])
    assert x_train.shape == (6, 28, 28) and y_train.shape == (6,) and x_test.shape == (4, 28, 28)
    assert (axone_home / "datasets" / "mnist.npz").is_file()
    # offline afterwards: served from the cache
    server.stop()
    (x2, _), _ = mnist.load_data(base_url=server.url, checksums={"mnist.npz": sha256(path)})
    np.testing.assert_array_equal(x2, arrays["x_train"])


def test_mnist_known_checksum_is_enforced_and_env_mirror(server, monkeypatch, axone_home):
    write_mnist_npz(server.root)
    monkeypatch.setenv("AXONE_DATASETS_URL", server.url)
    keras_sha = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
    with pytest.raises(ChecksumError, match=keras_sha):
        mnist.load_data()                   # the fake is not Keras's mnist.npz
    assert server.requests == ["/mnist.npz"]
    assert not (axone_home / "datasets" / "mnist.npz").exists()
    (x, _), _ = mnist.load_data(checksums={"mnist.npz": None})     # verification skipped
    assert x.shape == (6, 28, 28)


def test_mnist_offline_error_message(dead_url, axone_home):
    with pytest.raises(DatasetUnavailableError) as e:
        mnist.load_data(base_url=dead_url)
    msg = str(e.value)
    assert f"{dead_url}/mnist.npz" in msg
    assert str(axone_home / "datasets" / "mnist.npz") in msg
    assert "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1" in msg


def test_mnist_refuses_object_arrays_and_wrong_keys(tmp_path):
    bad = tmp_path / "objects.npz"
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = [1], [2, 3]
    np.savez(bad, x_train=obj, y_train=np.zeros(2), x_test=obj, y_test=np.zeros(2))
    with pytest.raises(ValueError, match="object arrays"):
        mnist.load_data(path=str(bad))
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(2))
    with pytest.raises(ValueError, match="lacks"):
        mnist.load_data(path=str(other))


def test_mnist_local_absolute_path_needs_no_network(tmp_path):
    path = write_mnist_npz(tmp_path, name="my_mnist.npz")       # not named mnist.npz: no checksum
    (x, y), (xt, yt) = mnist.load_data(path=path, base_url="http://127.0.0.1:9")
    assert x.shape == (6, 28, 28) and yt.shape == (4,)


# ------------------------------------------------------------------ fashion-mnist
def test_fashion_mnist_idx_files(server, axone_home):
    arrays, paths = write_fashion(server.root)
    checks = {name: sha256(p) for name, p in paths.items()}
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(base_url=server.url, checksums=checks)
    assert x_train.shape == (5, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (5,) and y_train.dtype == np.uint8
    assert x_test.shape == (3, 28, 28) and y_test.shape == (3,)
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    assert sorted(server.requests) == sorted(f"/{f}" for f in FASHION_FILES)
    for f in FASHION_FILES:
        assert (axone_home / "datasets" / "fashion-mnist" / f).is_file()
    server.stop()                                          # cached: works offline (no checksum)
    (x2, _), _ = fashion_mnist.load_data(base_url=server.url)
    np.testing.assert_array_equal(x2, arrays["x_train"])


def test_fashion_mnist_bad_idx(server):
    write_fashion(server.root)
    with gzip.open(server.root / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x01\x02")     # truncated
    with pytest.raises(ValueError, match="expected 5"):
        fashion_mnist.load_data(base_url=server.url)


def test_read_idx_layout(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "a.idx"
    p.write_bytes(idx_bytes(a))
    np.testing.assert_array_equal(fashion_mnist.read_idx(str(p)), a)
    p.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        fashion_mnist.read_idx(str(p))


# ------------------------------------------------------------------ cifar-10 (binary version)
def test_cifar10_binary_archive(server, axone_home):
    path, (x_exp, y_exp), (xt_exp, yt_exp) = write_cifar_binary(server.root)
    (x_train, y_train), (x_test, y_test) = cifar10.load_data(
        base_url=server.url, checksums={"cifar-10-binary.tar.gz": sha256(path)})
    assert x_train.shape == (10, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (10, 1) and y_train.dtype == np.uint8
    assert x_test.shape == (3, 32, 32, 3) and y_test.shape == (3, 1)
    np.testing.assert_array_equal(x_train, x_exp)      # batches 1..5 in order, channels last
    np.testing.assert_array_equal(y_train[:, 0], y_exp)
    np.testing.assert_array_equal(x_test, xt_exp)
    np.testing.assert_array_equal(y_test[:, 0], yt_exp)
    assert server.requests == ["/cifar-10-binary.tar.gz"]
    assert (axone_home / "datasets" / "cifar-10-binary.tar.gz").is_file()


def test_cifar10_record_layout():
    # one record: label 7, then the R plane (all 10), G plane (all 20), B plane (row index)
    rec = bytes([7]) + bytes([10]) * 1024 + bytes([20]) * 1024 + bytes(np.repeat(np.arange(32), 32)
                                                                         .astype(np.uint8))
    x, y = cifar10.read_binary_batch(rec)
    assert x.shape == (1, 32, 32, 3) and y.tolist() == [7]
    assert (x[0, :, :, 0] == 10).all() and (x[0, :, :, 1] == 20).all()
    np.testing.assert_array_equal(x[0, :, 5, 2], np.arange(32))       # rows vary down the image
    with pytest.raises(ValueError, match="whole number"):
        cifar10.read_binary_batch(rec[:-1])


def test_cifar10_refuses_python_version_and_incomplete_archives(tmp_path):
    with pytest.raises(ValueError, match="binary version"):
        cifar10.load_data(path="cifar-10-python.tar.gz")
    import tarfile
    p = tmp_path / "partial.tar.gz"
    with tarfile.open(p, "w:gz"):
        pass
    with pytest.raises(ValueError, match="lacks"):
        cifar10.load_data(path=str(p))


def test_cifar10_known_checksum_and_origin():
    from axone.datasets import remote
    k = remote.KNOWN_FILES["cifar-10-binary.tar.gz"]
    assert k["origin"] == "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    assert k["sha256"] == "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
    assert k["md5"] == "c32a1d4ab5d03f1284b67883e8d87530"
