"""keras.datasets boston_housing, california_housing, reuters and cifar100: the readers on
small files in the published formats, Keras's split and processing, offline errors."""
import importlib
import io
import tarfile

import numpy as np
import pytest

from axone.datasets import boston_housing, california_housing, cifar100, reuters
from axone.datasets.imdb import PickledDatasetError
from axone.datasets.remote import DatasetUnavailableError
from axone.fileio import FileFormatError

keras = pytest.importorskip("keras")


def _keras_loader(monkeypatch, name, path):
    mod = importlib.import_module(f"keras.src.datasets.{name}")
    monkeypatch.setattr(mod, "get_file", lambda *a, **k: str(path))
    return mod.load_data


def test_housing_splits_equal_keras(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for name, mod, cols, kw in (("boston_housing", boston_housing, 13, {}),
                                ("california_housing", california_housing, 8,
                                 {"version": "small"})):
        p = tmp_path / f"{name}_copy.npz"      # another name: no published checksum applies
        np.savez(p, x=rng.normal(size=(700, cols)), y=rng.normal(size=700))
        ours = mod.load_data(path=str(p), test_split=0.25, seed=7, **kw)
        theirs = _keras_loader(monkeypatch, name, p)(test_split=0.25, seed=7, **kw)
        for a, b in zip(ours, theirs):
            for u, v in zip(a, b):
                np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="test_split"):
        boston_housing.load_data(path=str(tmp_path / "boston_housing_copy.npz"), test_split=1.0)
    with pytest.raises(ValueError, match="version"):
        california_housing.load_data(version="medium", path=str(p))
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((3, 5)), y=np.zeros(3))
    with pytest.raises(FileFormatError, match=r"\(n, 13\)"):
        boston_housing.load_data(path=str(bad))


def test_reuters_processing_equals_keras(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    seqs = [list(rng.integers(1, 60, size=rng.integers(1, 12))) for _ in range(50)]
    y = rng.integers(0, 46, 50)
    obj = np.empty(50, dtype=object)
    for i, s in enumerate(seqs):
        obj[i] = [int(v) for v in s]
    kpath = tmp_path / "reuters_keras.npz"
    np.savez(kpath, x=obj, y=y)
    with pytest.raises(PickledDatasetError, match="save_npz"):
        reuters.load_data(path=str(kpath))
    apath = reuters.save_npz(tmp_path / reuters.CONVERTED_NAME, seqs, y)
    for kw in ({}, {"num_words": 30, "skip_top": 2, "maxlen": 8}, {"oov_char": None,
                                                                   "num_words": 20}):
        ours = reuters.load_data(path=apath, test_split=0.3, seed=5, **kw)
        theirs = _keras_loader(monkeypatch, "reuters", kpath)(test_split=0.3, seed=5, **kw)
        for a, b in zip(ours, theirs):
            assert [list(s) for s in a[0]] == [list(s) for s in b[0]]
            np.testing.assert_array_equal(a[1], b[1])
    assert reuters.get_label_names() == keras.datasets.reuters.get_label_names()


def _cifar100_archive(path, n_train=5, n_test=3):
    rng = np.random.default_rng(2)
    recs = {}
    for name, n in (("train.bin", n_train), ("test.bin", n_test)):
        r = rng.integers(0, 256, size=(n, 3074), dtype=np.uint8)
        r[:, 0] = rng.integers(0, 20, n)
        r[:, 1] = rng.integers(0, 100, n)
        recs[name] = r
    with tarfile.open(path, "w:gz") as tar:
        for name, r in recs.items():
            data = r.tobytes()
            info = tarfile.TarInfo(f"cifar-100-binary/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return recs


def test_cifar100_reads_the_binary_records(tmp_path):
    p = tmp_path / "c100.tar.gz"
    recs = _cifar100_archive(p)
    (xf, yf), (xt, yt) = cifar100.load_data(path=str(p))
    assert xf.shape == (5, 32, 32, 3) and yf.shape == (5, 1) and xt.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(yf[:, 0], recs["train.bin"][:, 1])
    np.testing.assert_array_equal(xf[0, :, :, 0].reshape(-1), recs["train.bin"][0, 2:1026])
    (_, yc), _ = cifar100.load_data("coarse", path=str(p))
    np.testing.assert_array_equal(yc[:, 0], recs["train.bin"][:, 0])
    with pytest.raises(ValueError, match="label_mode"):
        cifar100.load_data("medium", path=str(p))
    with pytest.raises(ValueError, match="pickles"):
        cifar100.load_data(path="cifar-100-python.tar.gz")


def test_cifar100_rejects_bad_labels_and_sizes(tmp_path):
    p = tmp_path / "bad.tar.gz"
    with tarfile.open(p, "w:gz") as tar:
        for name, n in (("train.bin", 2), ("test.bin", 1)):
            r = np.zeros((n, 3074), np.uint8)
            r[:, 1] = 100 if name == "train.bin" else 0
            info = tarfile.TarInfo(name)
            info.size = r.nbytes
            tar.addfile(info, io.BytesIO(r.tobytes()))
    with pytest.raises(FileFormatError, match="fine labels"):
        cifar100.load_data(path=str(p))
    q = tmp_path / "short.tar.gz"
    with tarfile.open(q, "w:gz") as tar:
        info = tarfile.TarInfo("train.bin")
        info.size = 100
        tar.addfile(info, io.BytesIO(b"\0" * 100))
    with pytest.raises(FileFormatError, match="whole number"):
        cifar100.load_data(path=str(q))


@pytest.mark.parametrize("load,fname", [
    (lambda u: boston_housing.load_data(base_url=u), "boston_housing.npz"),
    (lambda u: california_housing.load_data(base_url=u), "california_housing.npz"),
    (lambda u: reuters.load_data(base_url=u), "reuters.npz"),
    (lambda u: reuters.get_word_index(base_url=u), "reuters_word_index.json"),
    (lambda u: cifar100.load_data(base_url=u), "cifar-100-binary.tar.gz")])
def test_offline_errors_name_the_file(load, fname, dead_url, axone_home):
    with pytest.raises(DatasetUnavailableError) as e:
        load(dead_url)
    assert f"{dead_url}/{fname}" in str(e.value)
    assert str(axone_home / "datasets" / fname) in str(e.value)
