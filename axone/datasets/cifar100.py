"""CIFAR-100, as ``keras.datasets.cifar100`` — read from the *binary* version of the dataset.

As for CIFAR-10 (:mod:`axone.datasets.cifar10`), Keras reads the Python-pickle archive and axone
reads the dataset authors' binary version instead, ``cifar-100-binary.tar.gz`` (same images,
order and labels, from https://www.cs.toronto.edu/~kriz/cifar.html): ``cifar-100-binary/train.bin``
(50000 records) and ``test.bin`` (10000) of 3074 bytes — the coarse label (0..19), the fine
label (0..99), then the 32×32 red, green and blue planes.  Members are read straight from the
archive, their declared sizes checked first.
"""
import lzma
import tarfile
import zlib

import numpy as np

from ..fileio import FileFormatError, check_regular_file
from .remote import DEFAULT_TIMEOUT, check_labels, fetch_dataset_file

__all__ = ["load_data", "read_archive", "read_binary_batch", "ARCHIVE"]

ARCHIVE = "cifar-100-binary.tar.gz"
_RECORD = 2 + 3 * 32 * 32
_FILES = {"train.bin": 50000, "test.bin": 10000}


def read_binary_batch(data, label_mode="fine", name="batch", path=None):
    """Records of a CIFAR-100 binary file → (images uint8 (n, 32, 32, 3), labels uint8 (n, 1))."""
    if len(data) % _RECORD:
        raise FileFormatError(path, f"cifar100: {name} holds {len(data)} bytes, not a whole "
                                    f"number of {_RECORD}-byte records")
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, _RECORD)
    coarse, fine = rec[:, 0].copy(), rec[:, 1].copy()
    check_labels(path, coarse, 20, f"cifar100: {name} coarse labels")
    check_labels(path, fine, 100, f"cifar100: {name} fine labels")
    images = np.ascontiguousarray(rec[:, 2:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, (fine if label_mode == "fine" else coarse).reshape(-1, 1)


def load_data(label_mode="fine", *, path=ARCHIVE, base_url=None, checksums=None, cache_dir=None,
              timeout=DEFAULT_TIMEOUT):
    """Load CIFAR-100: ``(x_train, y_train), (x_test, y_test)``; x uint8 (50000, 32, 32, 3) and
    (10000, 32, 32, 3), y uint8 (n, 1): the 100 fine classes, or the 20 superclasses with
    ``label_mode="coarse"``.  ``cifar-100-binary.tar.gz`` (≈160 MB) is downloaded once into
    ``~/.axone/datasets/`` and checked against the dataset page's MD5."""
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f'`label_mode` must be one of `"fine"`, `"coarse"`. Received: '
                         f'label_mode={label_mode}.')
    if str(path).endswith("cifar-100-python.tar.gz"):
        raise ValueError("cifar100.load_data: cifar-100-python.tar.gz holds Python pickles, which "
                         "axone does not read; use the binary version cifar-100-binary.tar.gz "
                         "(https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz)")
    path = fetch_dataset_file(ARCHIVE, path, base_url=base_url, checksums=checksums,
                              cache_dir=cache_dir, timeout=timeout)
    return read_archive(path, label_mode)


def read_archive(path, label_mode="fine"):
    """The two files of a ``cifar-100-binary.tar.gz``; every problem is a FileFormatError."""
    path = check_regular_file(path, "CIFAR-100 archive")
    found = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if not (member.isfile() and base in _FILES and base not in found):
                    continue
                if member.size % _RECORD or member.size > _FILES[base] * _RECORD:
                    raise FileFormatError(path, f"cifar100: member {member.name!r} declares "
                                                f"{member.size} bytes; expected a whole number of "
                                                f"{_RECORD}-byte records, at most {_FILES[base]}")
                data = tar.extractfile(member).read(member.size)
                if len(data) != member.size:
                    raise FileFormatError(path, f"cifar100: member {member.name!r} is truncated "
                                                f"({len(data)} of {member.size} bytes)")
                found[base] = data
    except FileFormatError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError,
            OverflowError, UnicodeError) as e:
        raise FileFormatError(path, f"cifar100.load_data: not a readable tar archive "
                                    f"({type(e).__name__}: {e}); delete it to download it "
                                    f"again") from None
    missing = sorted(set(_FILES) - set(found))
    if missing:
        raise FileFormatError(path, f"cifar100.load_data: lacks {missing}; expected the binary "
                                    f"version of CIFAR-100 (cifar-100-binary/*.bin)")
    train = read_binary_batch(found["train.bin"], label_mode, "train.bin", path)
    test = read_binary_batch(found["test.bin"], label_mode, "test.bin", path)
    return train, test
