"""CIFAR-10, as ``keras.datasets.cifar10`` — read from the *binary* version of the dataset.

Keras reads ``cifar-10-python.tar.gz``, whose batches are Python pickles;
axone never unpickles data files, so it reads the dataset authors' **binary
version** instead, ``cifar-10-binary.tar.gz`` (same images, same order, same
labels, from https://www.cs.toronto.edu/~kriz/cifar.html).  That archive holds
``cifar-10-batches-bin/data_batch_1.bin`` … ``data_batch_5.bin`` and
``test_batch.bin``: 10000 fixed-size records of 3073 bytes each — one label
byte (0..9), then the 32×32 red plane, the green plane and the blue plane
(row-major).  The members are read straight from the archive (nothing is
extracted to disk).
"""
import lzma
import tarfile
import zlib

import numpy as np

from ..fileio import FileFormatError, check_regular_file
from .remote import DEFAULT_TIMEOUT, check_labels, fetch_dataset_file

__all__ = ["load_data", "read_archive", "read_binary_batch", "ARCHIVE", "CLASS_NAMES"]

ARCHIVE = "cifar-10-binary.tar.gz"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")
_RECORD = 1 + 3 * 32 * 32
_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_TEST = "test_batch.bin"
#: records a batch may hold (the dataset's batches hold 10000 each)
MAX_RECORDS = 10000


def read_binary_batch(data, name="batch", path=None):
    """Records of a CIFAR-10 binary batch (bytes) → (images uint8 (n, 32, 32, 3), labels uint8 (n,)).

    A length that is not a whole number of records, or a label byte above 9, is a
    :class:`axone.fileio.FileFormatError`."""
    if len(data) % _RECORD:
        raise FileFormatError(path, f"cifar10: {name} holds {len(data)} bytes, not a whole number "
                                    f"of {_RECORD}-byte records")
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, _RECORD)
    labels = rec[:, 0].copy()
    check_labels(path, labels, len(CLASS_NAMES), f"cifar10: {name}")
    images = np.ascontiguousarray(rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


def load_data(*, path=ARCHIVE, base_url=None, checksums=None, cache_dir=None,
              timeout=DEFAULT_TIMEOUT):
    """Load CIFAR-10: ``(x_train, y_train), (x_test, y_test)``, channels last as Keras's default.

    x: uint8 (50000, 32, 32, 3) and (10000, 32, 32, 3); y: uint8 (50000, 1)
    and (10000, 1), classes 0..9 (:data:`CLASS_NAMES`).  ``cifar-10-binary.tar.gz``
    (≈170 MB) is downloaded once from the dataset page into
    ``~/.axone/datasets/`` and checked against its SHA-256
    ``c4a38c50…a1dd`` (MD5 ``c32a1d4a…7530``).

    Args:
        path: archive file name in the cache (or an absolute path).
        base_url: fetch from ``<base_url>/cifar-10-binary.tar.gz`` (default
            ``$AXONE_DATASETS_URL`` or https://www.cs.toronto.edu/~kriz/).
        checksums: ``{"cifar-10-binary.tar.gz": hex digest or None}``.
        cache_dir: cache root instead of ``$AXONE_HOME`` / ``~/.axone``.
    """
    if str(path).endswith("cifar-10-python.tar.gz"):
        raise ValueError("cifar10.load_data: cifar-10-python.tar.gz holds Python pickles, which axone "
                         "does not read; use the binary version cifar-10-binary.tar.gz "
                         "(https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz)")
    path = fetch_dataset_file(ARCHIVE, path, base_url=base_url, checksums=checksums,
                              cache_dir=cache_dir, timeout=timeout)
    return read_archive(path)


def read_archive(path):
    """The six batches of a ``cifar-10-binary.tar.gz``, read from the archive.

    Only a regular file is opened; each wanted member's declared size is checked (a whole
    number of records, at most :data:`MAX_RECORDS` of them) before it is read, and reading
    stops at that size; every problem is an :class:`axone.fileio.FileFormatError`."""
    path = check_regular_file(path, "CIFAR-10 archive")
    wanted = set(_TRAIN) | {_TEST}
    found = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if not (member.isfile() and base in wanted and base not in found):
                    continue
                if member.size % _RECORD or member.size > MAX_RECORDS * _RECORD:
                    raise FileFormatError(path, f"cifar10: member {member.name!r} declares "
                                                f"{member.size} bytes; a batch is a whole number "
                                                f"of {_RECORD}-byte records, at most {MAX_RECORDS}")
                data = tar.extractfile(member).read(member.size)
                if len(data) != member.size:
                    raise FileFormatError(path, f"cifar10: member {member.name!r} is truncated "
                                                f"({len(data)} of {member.size} bytes)")
                found[base] = data
    except FileFormatError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError,
            OverflowError, UnicodeError) as e:
        raise FileFormatError(path, f"cifar10.load_data: not a readable tar archive "
                                    f"({type(e).__name__}: {e}); delete it to download it "
                                    f"again") from None
    missing = sorted(wanted - set(found))
    if missing:
        raise FileFormatError(path, f"cifar10.load_data: lacks {missing}; expected the binary "
                                    f"version of CIFAR-10 (cifar-10-batches-bin/*.bin)")
    train = [read_binary_batch(found[n], n, path) for n in _TRAIN]
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train]).reshape(-1, 1)
    x_test, y_test = read_binary_batch(found[_TEST], _TEST, path)
    return (x_train, y_train), (x_test, y_test.reshape(-1, 1))
