"""Fuzzing the dataset cache readers: mutated mnist .npz, fashion-mnist IDX (gzipped and plain),
CIFAR-10 binary tar archives (gzipped and plain), IMDB .npz and word-index JSON files raise
FileFormatError (or FileNotFoundError) and nothing else — no other exception, no crash, no
time-out, no memory blow-up (each input runs in a worker under a 1 GiB address-space cap and a
2 s time cap).  ``AXONE_FUZZ_INPUTS`` sets the inputs per test (default: a short pass).
"""
import gzip
import io
import json
import os
import struct
import tarfile

import numpy as np
import pytest

from axone.datasets import cifar10, fashion_mnist, imdb, mnist

from _harness import fuzz, mutants, n_inputs

SHORT = 300


# ----------------------------------------------------------------- loaders (run in the workers)
def mnist_loader(path):
    mnist.read_npz(path)


def idx_loader(path):
    # the same file read as a labels file and as an images file (both checks run); it is
    # malformed when it is neither
    from axone.fileio import FileFormatError
    errors = []
    for read in (fashion_mnist.read_labels, fashion_mnist.read_images):
        try:
            read(path)
        except FileFormatError as e:
            errors.append(e)
    if len(errors) == 2:
        raise errors[1]


def cifar_loader(path):
    cifar10.read_archive(path)


def imdb_loader(path):
    imdb.load_data(path=path, num_words=6, maxlen=10, checksums={"imdb.npz": None})


def word_index_loader(path):
    imdb.read_word_index(path)


# ----------------------------------------------------------------- seeds, built here
def _idx(arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def _cifar_tar(compress):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            rec = np.concatenate([rng.integers(0, 10, (1, 1)), rng.integers(0, 256, (1, 3072))],
                                 axis=1).astype(np.uint8).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(rec)
            tar.addfile(info, io.BytesIO(rec))
    return buf.getvalue()


def _npz(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.fixture(scope="module")
def seeds():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    y = np.array([0, 9, 4], np.uint8)
    mn = _npz(x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    labels, images = _idx(y), _idx(rng.integers(0, 256, (3, 4, 5)))
    tokens = np.array([1, 2, 3, 4, 1, 5, 2], np.int32)
    im = _npz(x_train_tokens=tokens, x_train_lengths=np.array([3, 4], np.int64),
              y_train=np.array([1, 0], np.int64), x_test_tokens=tokens[:4],
              x_test_lengths=np.array([1, 3], np.int64), y_test=np.array([0, 1], np.int64))
    return {
        "mnist": [mn],
        "idx_gz": [gzip.compress(labels, mtime=0), gzip.compress(images, mtime=0)],
        "idx": [labels, images],
        "cifar": [_cifar_tar(True), _cifar_tar(False)],
        "imdb": [im],
        "word_index": [json.dumps({"the": 1, "and": 2, "a": 3, "of": 4}).encode()],
    }


def _check(report, label):
    print(f"{label}: {report.summary()}")
    folder = os.environ.get("AXONE_FUZZ_FAILURES")
    if folder:
        report.save_failures(os.path.join(folder, label))
    assert not report.failures, report.summary()


CASES = [("mnist", mnist_loader, "mnist.npz", 21), ("idx_gz", idx_loader, "labels-idx1-ubyte.gz", 22),
         ("idx", idx_loader, "labels-idx1-ubyte", 23), ("cifar", cifar_loader, "cifar.tar.gz", 24),
         ("imdb", imdb_loader, "imdb_axone.npz", 25), ("word_index", word_index_loader, "w.json", 26)]


@pytest.mark.parametrize("kind,loader,filename,seed", CASES, ids=[c[0] for c in CASES])
def test_fuzz_dataset_reader(seeds, kind, loader, filename, seed):
    n = n_inputs(SHORT)
    report = fuzz(loader, mutants(seeds[kind], n, seed=seed), filename=filename)
    assert report.count == n
    _check(report, kind)


@pytest.mark.parametrize("kind,loader,filename,seed", CASES, ids=[c[0] for c in CASES])
def test_seeds_load_cleanly(seeds, tmp_path, kind, loader, filename, seed):
    """The unmutated seeds load (so the fuzz inputs start from valid files)."""
    for i, data in enumerate(seeds[kind]):
        d = tmp_path / str(i)
        d.mkdir()
        (d / filename).write_bytes(data)
        loader(str(d / filename))
