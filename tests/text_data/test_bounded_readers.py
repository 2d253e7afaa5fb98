"""Dataset cache readers on malformed files: each raises axone.fileio.FileFormatError naming the
file and what is wrong, without reading (or allocating) more than the file really holds."""
import gzip
import io
import json
import os
import struct
import tarfile
import zipfile

import numpy as np
import pytest

from axone.datasets import cifar10, fashion_mnist, imdb, mnist
from axone.datasets.remote import hash_file, load_npz_arrays
from axone.fileio import FileFormatError

from .fakes import (IMDB_TEST, IMDB_TEST_Y, IMDB_TRAIN, IMDB_TRAIN_Y, cifar_records, idx_bytes,
                    mnist_arrays, write_cifar_binary, write_mnist_npz)


def _fifo(tmp_path, name):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    p = tmp_path / name
    os.mkfifo(p)
    return str(p)


# ------------------------------------------------------------------ only regular files
def test_readers_refuse_fifos_and_devices(tmp_path):
    # a FIFO would block forever on open, /dev/zero would grow without bound
    for reader, name in ((fashion_mnist.read_idx, "a-idx1-ubyte.gz"), (cifar10.read_archive, "c.tar.gz"),
                         (mnist.read_npz, "m.npz"), (imdb.read_word_index, "w.json"),
                         (hash_file, "h.bin")):
        with pytest.raises(FileFormatError, match="not a regular file"):
            reader(_fifo(tmp_path, name))
    if os.path.exists("/dev/zero"):
        with pytest.raises(FileFormatError, match="not a regular file"):
            fashion_mnist.read_idx("/dev/zero")
    with pytest.raises(FileNotFoundError):
        fashion_mnist.read_idx(str(tmp_path / "missing.gz"))


# ------------------------------------------------------------------ fashion-mnist IDX
def _gz(tmp_path, name, data):
    p = tmp_path / name
    with gzip.open(p, "wb") as f:
        f.write(data)
    return str(p)


def test_idx_header_beyond_the_file_is_rejected_before_reading(tmp_path):
    # dims whose product is 2^96 (overflows any fixed-size integer): rejected from the header
    huge = bytes([0, 0, 8, 3]) + struct.pack(">3I", 2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1) + b"\0" * 16
    for name, write in (("h.idx", lambda p, d: open(p, "wb").write(d)),
                        ("h.gz", lambda p, d: gzip.open(p, "wb").write(d))):
        p = tmp_path / name
        write(p, huge)
        with pytest.raises(FileFormatError, match="more than a file of"):
            fashion_mnist.read_idx(str(p))
    # a plain file whose header claims one byte more than it holds
    p = tmp_path / "short.idx"
    p.write_bytes(idx_bytes(np.zeros((2, 3), np.uint8))[:-1])
    with pytest.raises(FileFormatError, match=str(p.name)):
        fashion_mnist.read_idx(str(p))


def test_idx_gzip_is_decompressed_only_as_far_as_the_header_implies(tmp_path):
    # a valid 6-byte header and data, followed by 50 MB of zeros (a small gzip): not decompressed
    data = idx_bytes(np.arange(6, dtype=np.uint8)) + b"\0" * (50 << 20)
    p = _gz(tmp_path, "bomb.gz", data)
    assert os.path.getsize(p) < 200_000
    with pytest.raises(FileFormatError, match="more than 6 bytes"):
        fashion_mnist.read_idx(p)
    p = _gz(tmp_path, "trunc.gz", idx_bytes(np.arange(6, dtype=np.uint8))[:-2])
    with pytest.raises(FileFormatError, match="4 bytes of data, expected 6"):
        fashion_mnist.read_idx(p)
    p = tmp_path / "notgz.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(FileFormatError, match="notgz.gz"):
        fashion_mnist.read_idx(str(p))


def test_idx_labels_out_of_range_or_of_another_type_are_rejected(tmp_path):
    p = _gz(tmp_path, "labels.gz", idx_bytes(np.array([0, 9, 10], np.uint8)))
    with pytest.raises(FileFormatError, match="labels from 0 to 10"):
        fashion_mnist.read_labels(p)
    p = _gz(tmp_path, "labels2.gz", idx_bytes(np.zeros((2, 2), np.uint8)))
    with pytest.raises(FileFormatError, match="labels are uint8"):
        fashion_mnist.read_labels(p)
    p = _gz(tmp_path, "images.gz", idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(FileFormatError, match="images are uint8"):
        fashion_mnist.read_images(p)
    np.testing.assert_array_equal(
        fashion_mnist.read_labels(_gz(tmp_path, "ok.gz", idx_bytes(np.array([3, 9], np.uint8)))), [3, 9])


# ------------------------------------------------------------------ mnist .npz
def _npz_with_member(path, name, data, others):
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in others.items():
            buf = io.BytesIO()
            np.save(buf, v)
            zf.writestr(k + ".npy", buf.getvalue())
        zf.writestr(name, data)


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_mnist_npy_header_checked_against_the_member_size(tmp_path):
    a = mnist_arrays()
    good = _npy(a["x_train"])
    # the header claims (10^9, 28, 28): 784 GB from a member of a few kB
    grown = b"(1000000000, 28, 28)"
    extra = len(grown) - len(b"(6, 28, 28)")
    big = good.replace(b"(6, 28, 28)", grown).replace(b" " * extra + b"\n", b"\n", 1)
    assert len(big) == len(good)
    assert np.lib.format.read_array_header_1_0(_header(big))[0] == (10 ** 9, 28, 28)
    p = tmp_path / "big.npz"
    _npz_with_member(p, "x_train.npy", big, {k: v for k, v in a.items() if k != "x_train"})
    with pytest.raises(FileFormatError, match="x_train.*needs 784000000"):
        mnist.read_npz(str(p))


def _header(npy):
    f = io.BytesIO(npy)
    np.lib.format.read_magic(f)
    return f


def test_mnist_labels_dtypes_and_shapes_are_checked(tmp_path):
    a = mnist_arrays()
    bad = dict(a, y_train=np.array([0, 1, 2, 3, 4, 12], np.uint8))
    with pytest.raises(FileFormatError, match="labels from 0 to 12"):
        mnist.read_npz(write_mnist_npz(str(tmp_path), bad, name="labels.npz"))
    bad = dict(a, x_test=a["x_test"].astype(np.complex64))
    with pytest.raises(FileFormatError, match="complex64"):
        mnist.read_npz(write_mnist_npz(str(tmp_path), bad, name="complex.npz"))
    bad = dict(a, x_test=a["x_test"][:, :27])
    with pytest.raises(FileFormatError, match=r"\(n, 28, 28\)"):
        mnist.read_npz(write_mnist_npz(str(tmp_path), bad, name="shape.npz"))
    bad = dict(a, y_test=a["y_test"][:3])
    with pytest.raises(FileFormatError, match="expected"):
        mnist.read_npz(write_mnist_npz(str(tmp_path), bad, name="count.npz"))
    p = tmp_path / "notzip.npz"
    p.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(FileFormatError, match="notzip.npz"):
        mnist.read_npz(str(p))


def test_npz_member_declaring_more_than_it_holds(tmp_path):
    p = tmp_path / "a.npz"
    np.savez(p, a=np.arange(10, dtype=np.int64))
    raw = bytearray(p.read_bytes())
    # the central directory's uncompressed size of the member, raised to 2 GB
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = struct.pack("<I", 2 ** 31)
    p.write_bytes(bytes(raw))
    with pytest.raises(FileFormatError):
        load_npz_arrays(str(p), ["a"], "test")


# ------------------------------------------------------------------ cifar-10 tar
def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def _batches(label=None):
    out = {f"data_batch_{i}.bin": cifar_records(2, i)[0] for i in range(1, 6)}
    out["test_batch.bin"] = cifar_records(2, 9)[0]
    if label is not None:
        rec = bytearray(out["data_batch_3.bin"])
        rec[0] = label
        out["data_batch_3.bin"] = bytes(rec)
    return out


def test_cifar_label_bytes_above_nine_are_rejected(tmp_path):
    with pytest.raises(FileFormatError, match="labels from .* to 200"):
        cifar10.read_archive(_tar(tmp_path / "a.tar.gz", _batches(label=200)))
    (x, y), (xt, yt) = cifar10.read_archive(_tar(tmp_path / "b.tar.gz", _batches()))
    assert x.shape == (10, 32, 32, 3) and y.max() <= 9


def test_cifar_member_sizes_checked_before_reading(tmp_path):
    b = _batches()
    b["data_batch_2.bin"] = b["data_batch_2.bin"][:-5]
    with pytest.raises(FileFormatError, match="whole number"):
        cifar10.read_archive(_tar(tmp_path / "odd.tar.gz", b))
    # a member declaring 10001 records (over the limit) is refused from its header
    path, _, _ = write_cifar_binary(str(tmp_path), name="big.tar.gz")
    raw = bytearray(gzip.decompress(open(path, "rb").read()))
    at = raw.find(b"cifar-10-batches-bin/data_batch_1.bin")
    raw[at + 124:at + 136] = b"%011o\0" % (10001 * 3073)
    chk = sum(raw[at:at + 148]) + 8 * 32 + sum(raw[at + 156:at + 512])
    raw[at + 148:at + 156] = b"%06o\0 " % chk
    p = tmp_path / "declared.tar.gz"
    p.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(FileFormatError, match="at most 10000"):
        cifar10.read_archive(str(p))
    p = tmp_path / "junk.tar.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(64))
    with pytest.raises(FileFormatError, match="junk.tar.gz"):
        cifar10.read_archive(str(p))


# ------------------------------------------------------------------ imdb
def _imdb(tmp_path, name="imdb_axone.npz", **override):
    path = imdb.save_npz(str(tmp_path / name), (IMDB_TRAIN, IMDB_TRAIN_Y), (IMDB_TEST, IMDB_TEST_Y))
    if override:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        arrays.update(override)
        np.savez(path, **arrays)
    return path


def test_imdb_lengths_whose_sum_overflows_are_rejected(tmp_path):
    n_tokens = sum(map(len, IMDB_TRAIN))
    # four lengths of 2^62 and one of n_tokens: the int64 sum wraps around to n_tokens
    wrap = np.array([2 ** 62] * 4 + [n_tokens], dtype=np.int64)
    assert int(wrap.sum()) == n_tokens
    path = _imdb(tmp_path, x_train_lengths=wrap)
    with pytest.raises(FileFormatError, match="x_train_lengths does not match"):
        imdb.load_data(path=path)
    path = _imdb(tmp_path, "neg.npz", x_test_lengths=np.array([-1, 6, 8], np.int64))
    with pytest.raises(FileFormatError, match="x_test_lengths"):
        imdb.load_data(path=path)
    path = _imdb(tmp_path, "negtok.npz", x_test_tokens=-np.ones(13, np.int32))
    with pytest.raises(FileFormatError, match="negative word index"):
        imdb.load_data(path=path)
    path = _imdb(tmp_path, "float.npz", y_test=np.zeros(3, np.float32))
    with pytest.raises(FileFormatError, match="integers"):
        imdb.load_data(path=path)
    (x, y), _ = imdb.load_data(path=_imdb(tmp_path, "ok.npz"))
    assert len(x) == len(IMDB_TRAIN)


def test_imdb_word_index_is_bounded_and_checked(tmp_path):
    p = tmp_path / "w.json"
    p.write_text(json.dumps({"the": 1, "a": 2}))
    assert imdb.read_word_index(str(p)) == {"the": 1, "a": 2}
    for bad in (b"{\"the\": 1", b"\xff\xfe", b"[1, 2]", b"{\"the\": \"1\"}", b"{\"the\": -4}",
                b"[" * 100000):
        p.write_bytes(bad)
        with pytest.raises(FileFormatError, match="w.json"):
            imdb.read_word_index(str(p))


def test_pickled_imdb_is_a_file_format_error(tmp_path):
    from .fakes import write_keras_imdb_npz
    with pytest.raises(FileFormatError, match="pickle"):
        imdb.load_data(path=write_keras_imdb_npz(str(tmp_path), name="keras_imdb.npz"))
