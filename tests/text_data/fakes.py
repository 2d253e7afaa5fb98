"""Small fake dataset files with the real layouts, written under a test's folder."""
import gzip
import hashlib
import io
import os
import struct
import tarfile

import numpy as np


def sha256(path_or_bytes):
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb").read()
    return hashlib.sha256(data).hexdigest()


def md5(path_or_bytes):
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb").read()
    return hashlib.md5(data).hexdigest()


def no_temp_files(folder):
    """No temporary file of an interrupted write (``.NAME.axone-….tmp``, or the older
    ``.axone-….tmp`` / ``.part``) is left in ``folder``."""
    return not os.path.isdir(folder) or not [
        n for n in os.listdir(folder)
        if n.startswith(".") and ".axone-" in n and (n.endswith(".tmp") or n.endswith(".part"))]


def mnist_arrays(n_train=6, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    return {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
            "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "y_test": rng.integers(0, 10, n_test).astype(np.uint8)}


def write_mnist_npz(folder, arrays=None, name="mnist.npz"):
    arrays = mnist_arrays() if arrays is None else arrays
    path = os.path.join(folder, name)
    np.savez(path, **arrays)
    return path


def idx_bytes(arr):
    """IDX encoding of a uint8 array: magic 0x0000 08 <ndim>, big-endian dims, data."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


FASHION_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")


def write_fashion(folder, arrays=None):
    a = mnist_arrays(5, 3, seed=1) if arrays is None else arrays
    data = dict(zip(FASHION_FILES, (a["y_train"], a["x_train"], a["y_test"], a["x_test"])))
    paths = {}
    for name, arr in data.items():
        paths[name] = os.path.join(folder, name)
        with gzip.open(paths[name], "wb") as f:
            f.write(idx_bytes(arr))
    return a, paths


def cifar_records(n, seed):
    """n CIFAR binary records, and the (images HWC, labels) they encode."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    planes = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)     # R, G, B planes
    rec = np.concatenate([labels[:, None], planes.reshape(n, -1)], axis=1)
    return rec.tobytes(), planes.transpose(0, 2, 3, 1), labels


def write_cifar_binary(folder, per_batch=2, n_test=3, name="cifar-10-binary.tar.gz"):
    """A cifar-10-binary.tar.gz with cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin."""
    path = os.path.join(folder, name)
    xs, ys = [], []
    with tarfile.open(path, "w:gz") as tar:
        def add(member, data):
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("batches.meta.txt", b"airplane\nautomobile\n")
        for i in range(1, 6):
            data, x, y = cifar_records(per_batch, seed=i)
            add(f"data_batch_{i}.bin", data)
            xs.append(x)
            ys.append(y)
        data, x_test, y_test = cifar_records(n_test, seed=99)
        add("test_batch.bin", data)
    return path, (np.concatenate(xs), np.concatenate(ys)), (x_test, y_test)


# A tiny IMDB: raw word indices (before index_from), as in Keras's imdb.npz.
IMDB_TRAIN = [[1, 2, 3], [4, 1], [2, 2, 5, 6, 1], [7], [3, 1, 4, 1, 5, 9]]
IMDB_TRAIN_Y = [1, 0, 1, 0, 1]
IMDB_TEST = [[2, 3], [8, 1, 1, 2], [5, 4, 3, 2, 1, 6, 7]]
IMDB_TEST_Y = [0, 1, 1]


def write_keras_imdb_npz(folder, name="imdb.npz"):
    """Keras's layout: ragged reviews as object arrays (numpy pickles them; only the test writes this)."""
    def obj(seqs):
        arr = np.empty(len(seqs), dtype=object)
        for i, s in enumerate(seqs):
            arr[i] = list(s)
        return arr
    path = os.path.join(folder, name)
    np.savez(path, x_train=obj(IMDB_TRAIN), y_train=np.array(IMDB_TRAIN_Y, dtype=np.int64),
             x_test=obj(IMDB_TEST), y_test=np.array(IMDB_TEST_Y, dtype=np.int64))
    return path
