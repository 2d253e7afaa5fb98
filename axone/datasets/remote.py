"""Download-once, verify, cache: ``get_file`` (as ``keras.utils.get_file``) and the dataset sources.

Files are cached under ``$AXONE_HOME/<cache_subdir>/`` (default
``~/.axone/datasets/``).  A cached file whose checksum matches is used as is,
with no network access at all, so a machine without internet works once the
files are in place.  A download goes to a temporary file in the cache folder,
its SHA-256 (or MD5) is checked, and only then is it moved into place with
``os.replace`` — an interrupted or corrupted download never leaves a bad file
behind.  Without network and without the file, :class:`DatasetUnavailableError`
(an ``OSError``) says which file to fetch from which URL, its checksum, and the
full path where to put it.

Set ``AXONE_DATASETS_URL`` to a base URL (a mirror, a local server) to fetch
every dataset file from ``<base>/<file name>`` instead of its usual origin.
"""
import hashlib
import os
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from ..fileio import _ZIP_ERRORS as _READ_ERRORS
from ..fileio import FileFormatError, ZipArchive, atomic_write, check_regular_file

__all__ = ["get_file", "fetch_dataset_file", "cache_path", "dataset_origin", "hash_file",
           "npz_dtypes", "load_npz_arrays", "check_labels", "DatasetUnavailableError", "ChecksumError",
           "KERAS_DATASETS_URL", "KNOWN_FILES", "HOME_ENV", "DATASETS_URL_ENV"]

HOME_ENV = "AXONE_HOME"
DATASETS_URL_ENV = "AXONE_DATASETS_URL"
DEFAULT_TIMEOUT = 60.0

KERAS_DATASETS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"

# file name → its origin and checksum(s).  The hashes of mnist.npz, imdb.npz,
# imdb_word_index.json and cifar-10-python.tar.gz are the ones in Keras's
# source; those of cifar-10-binary.tar.gz are the dataset page's MD5 and the
# archive's SHA-256.  Keras publishes no checksum for its Fashion-MNIST copies:
# they are not verified (as in Keras); the MD5 digests below are those the
# Fashion-MNIST authors publish for their own copies, kept for reference.
KNOWN_FILES = {
    "mnist.npz": {
        "origin": KERAS_DATASETS_URL + "mnist.npz",
        "sha256": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"},
    "imdb.npz": {
        "origin": KERAS_DATASETS_URL + "imdb.npz",
        "sha256": "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"},
    "imdb_word_index.json": {
        "origin": KERAS_DATASETS_URL + "imdb_word_index.json",
        "md5": "bfafd718b763782e994055a2d397834f"},
    "train-labels-idx1-ubyte.gz": {
        "origin": KERAS_DATASETS_URL + "train-labels-idx1-ubyte.gz",
        "upstream_md5": "25c81989df183df01b3e8a0aad5dffbe"},
    "train-images-idx3-ubyte.gz": {
        "origin": KERAS_DATASETS_URL + "train-images-idx3-ubyte.gz",
        "upstream_md5": "8d4fb7e6c68d591d4c3dfef9ec88bf0d"},
    "t10k-labels-idx1-ubyte.gz": {
        "origin": KERAS_DATASETS_URL + "t10k-labels-idx1-ubyte.gz",
        "upstream_md5": "bb300cfdad3c16e7a12a480ee83cd310"},
    "t10k-images-idx3-ubyte.gz": {
        "origin": KERAS_DATASETS_URL + "t10k-images-idx3-ubyte.gz",
        "upstream_md5": "bef4ecab320f06d8554ea6380940ec79"},
    "boston_housing.npz": {
        "origin": KERAS_DATASETS_URL + "boston_housing.npz",
        "sha256": "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5"},
    "california_housing.npz": {
        "origin": KERAS_DATASETS_URL + "california_housing.npz",
        "sha256": "1a2e3a52e0398de6463aebe6f4a8da34fb21fbb6b934cf88c3425e766f2a1a6f"},
    "reuters.npz": {
        "origin": KERAS_DATASETS_URL + "reuters.npz",
        "sha256": "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"},
    "reuters_word_index.json": {
        "origin": KERAS_DATASETS_URL + "reuters_word_index.json",
        "md5": "4d44cc38712099c9e383dc6e5f11a921"},
    # the *binary* CIFAR-100 (fixed-size records: coarse label, fine label, pixels)
    "cifar-100-binary.tar.gz": {
        "origin": CIFAR_URL + "cifar-100-binary.tar.gz",
        "md5": "03b5dce01913d631647c71ecec9e9cb8"},
    "cifar-100-python.tar.gz": {
        "origin": CIFAR_URL + "cifar-100-python.tar.gz",
        "sha256": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"},
    # the *binary* CIFAR-10 (fixed-size records) — what axone reads
    "cifar-10-binary.tar.gz": {
        "origin": CIFAR_URL + "cifar-10-binary.tar.gz",
        "sha256": "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
        "md5": "c32a1d4ab5d03f1284b67883e8d87530"},
    # the python-pickle CIFAR-10 that Keras reads — axone does not unpickle it
    "cifar-10-python.tar.gz": {
        "origin": CIFAR_URL + "cifar-10-python.tar.gz",
        "sha256": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"},
}

_HASH_LENGTHS = {"sha256": 64, "md5": 32}


class DatasetUnavailableError(OSError):
    """The file is not in the cache and could not be downloaded (no network, server error…)."""


class ChecksumError(ValueError):
    """A downloaded file does not have the expected checksum; it was discarded."""


def _home():
    return os.path.expanduser(os.environ.get(HOME_ENV) or os.path.join("~", ".axone"))


def _writable_dir(folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def cache_path(fname, cache_dir=None, cache_subdir="datasets"):
    """Full path where :func:`get_file` keeps ``fname``: ``<cache_dir>/<cache_subdir>/<fname>``.

    ``cache_dir`` defaults to ``$AXONE_HOME`` or ``~/.axone``; when that folder
    cannot be written, ``<tmp>/.axone`` is used (as Keras falls back to
    ``/tmp/.keras``).  An absolute ``fname`` is used as it is.
    """
    fname = os.fspath(fname)
    base = os.path.expanduser(os.fspath(cache_dir)) if cache_dir is not None else _home()
    folder = os.path.join(base, cache_subdir) if cache_subdir else base
    path = os.path.join(folder, fname)
    if os.path.isabs(fname) or os.path.exists(path):
        return os.path.abspath(path)
    if not _writable_dir(os.path.dirname(os.path.abspath(path))):
        folder = os.path.join(tempfile.gettempdir(), ".axone", cache_subdir or "")
        path = os.path.join(folder, fname)
    return os.path.abspath(path)


def dataset_origin(fname, base_url=None):
    """URL of a known dataset file: ``<base_url>/<fname>`` when a base URL is given (argument, else
    the ``AXONE_DATASETS_URL`` environment variable), else its usual origin."""
    base = base_url if base_url is not None else os.environ.get(DATASETS_URL_ENV)
    if base:
        return base.rstrip("/") + "/" + urllib.parse.quote(fname)
    if fname not in KNOWN_FILES:
        raise ValueError(f"dataset_origin: unknown dataset file {fname!r}; known: {sorted(KNOWN_FILES)}")
    return KNOWN_FILES[fname]["origin"]


def _resolve_algorithm(file_hash, hash_algorithm):
    algo = (hash_algorithm or "auto").lower()
    if algo not in ("sha256", "md5", "auto"):
        raise ValueError(f"get_file: hash_algorithm must be 'sha256', 'md5' or 'auto', "
                         f"received {hash_algorithm!r}")
    n = len(file_hash)
    if algo == "auto":
        algo = "sha256" if n == 64 else "md5" if n == 32 else None
        if algo is None:
            raise ValueError(f"get_file: file_hash must be a SHA-256 (64 hex digits) or MD5 (32 hex "
                             f"digits) digest, received {file_hash!r}")
    elif n != _HASH_LENGTHS[algo]:
        other = {64: "a SHA-256", 32: "an MD5"}.get(n)
        hint = f" ({n} hex digits is {other} digest)" if other else ""
        raise ValueError(f"get_file: file_hash {file_hash!r} has {n} characters, not the "
                         f"{_HASH_LENGTHS[algo]} hex digits of a {algo} digest{hint}; pass the "
                         f"matching hash_algorithm ('sha256' or 'md5') or 'auto'")
    try:
        int(file_hash, 16)
    except ValueError:
        raise ValueError(f"get_file: file_hash must be hexadecimal, received {file_hash!r}") from None
    return algo


def hash_file(path, algorithm="sha256", chunk_size=1 << 20):
    """Hex digest of the file at ``path`` (``"sha256"`` or ``"md5"``)."""
    h = hashlib.new(algorithm)
    with open(check_regular_file(path), "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def _manual_instructions(fname, origin, path, algo, file_hash):
    lines = [f"Download it by hand from\n    {origin}\nand place it at\n    {path}"]
    if file_hash:
        lines.append(f"(expected {algo}: {file_hash}).")
    lines.append("axone then uses it from there without any network access.")
    return "\n".join(lines)


def _download(origin, path, algo, file_hash, timeout):
    """Stream ``origin`` into a temp file next to ``path``, check it, move it into place
    (``fileio.atomic_write``: nothing is written to ``path`` unless every check passes)."""
    with atomic_write(path) as out:
        h = hashlib.new(algo) if algo else None
        received = 0
        with urllib.request.urlopen(origin, timeout=timeout) as resp:
            expected_len = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                if h is not None:
                    h.update(chunk)
        if expected_len is not None and expected_len.isdigit() and int(expected_len) != received:
            raise DatasetUnavailableError(
                f"Incomplete download of {origin}: received {received} of {expected_len} bytes")
        if h is not None and h.hexdigest() != file_hash.lower():
            raise ChecksumError(
                f"The file downloaded from {origin} has {algo} {h.hexdigest()}, not the expected "
                f"{file_hash.lower()}: it is corrupted or not the expected version. It was discarded "
                f"(nothing was written to {path}).")


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None,
             cache_subdir="datasets", hash_algorithm="auto", extract=False, archive_format="auto",
             cache_dir=None, force_download=False, timeout=DEFAULT_TIMEOUT):
    """Path of ``fname`` in the cache, downloaded from ``origin`` first if needed (``keras.utils.get_file``).

    Args:
        fname: file name in the cache (default: the last part of ``origin``'s
            path); an absolute path is used as it is.
        origin: URL to download from (``http(s)://``, ``file://``).
        file_hash: expected hex digest; ``None`` skips verification.
        hash_algorithm: ``"sha256"`` (default), ``"md5"`` or ``"auto"`` (by the
            length of ``file_hash``).
        cache_dir: cache root (default ``$AXONE_HOME`` or ``~/.axone``).
        cache_subdir: folder under the root (default ``"datasets"``).
        timeout: seconds allowed to connect and between received blocks.
        force_download: download even when a good cached copy exists.
        extract / untar: the file is an archive (tar, tar.gz, tar.bz2, tar.xz or zip, per
            ``archive_format``: "auto", "tar", "zip" or a list); it is downloaded beside a
            folder it is extracted into, whose path is returned — Keras 3's layout: ``fname``
            "data.tar.gz" gives "data.tar.gz" and the folder "data_extracted"; a ``fname``
            without a dot gives "<fname>_archive" and the folder "<fname>".  Extraction is
            safe: members with absolute paths, ``..``, links, devices, or sizes beyond the
            bounds are refused, and the folder appears complete or not at all.
        md5_hash: legacy form of ``file_hash`` with ``hash_algorithm="md5"``.

    A cached file with the right checksum (or any cached file when
    ``file_hash`` is None) is returned with no network access.  A cached file
    with a wrong checksum is downloaded again.

    Raises:
        DatasetUnavailableError (OSError): the file is missing (or its cached
            copy is bad) and could not be downloaded; the message names the
            URL, the full target path and the expected checksum.
        ChecksumError (ValueError): the downloaded file has the wrong checksum
            (it is not kept).
    """
    if fname is None:
        if origin is None:
            raise ValueError("get_file: give fname or origin")
        fname = os.path.basename(urllib.parse.urlparse(origin).path)
        if not fname:
            raise ValueError(f"get_file: cannot tell a file name from origin {origin!r}; pass fname")
    fname = os.fspath(fname)
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    if extract or untar:
        archive = fname + "_archive" if "." not in os.path.basename(fname) else fname
        folder = (fname if "." not in os.path.basename(fname)
                  else os.path.join(os.path.dirname(fname),
                                    os.path.basename(fname).split(".")[0] + "_extracted"))
        apath = get_file(archive, origin, file_hash=file_hash, cache_subdir=cache_subdir,
                         hash_algorithm=hash_algorithm, cache_dir=cache_dir,
                         force_download=force_download, timeout=timeout)
        target = os.path.join(os.path.dirname(apath), os.path.basename(folder))
        if force_download or not os.path.isdir(target):
            extract_archive(apath, target, "tar" if untar else archive_format)
        return target
    algo = _resolve_algorithm(file_hash, hash_algorithm) if file_hash else None
    if file_hash:
        file_hash = file_hash.lower()
    path = cache_path(fname, cache_dir, cache_subdir)
    stale = None
    if os.path.exists(path) and not force_download:
        if not os.path.isfile(path):
            raise DatasetUnavailableError(f"get_file: {path} exists but is not a regular file")
        if file_hash is None:
            return path
        actual = hash_file(path, algo)
        if actual == file_hash:
            return path
        stale = actual
    if origin is None:
        raise DatasetUnavailableError(
            f"{fname!r} is not at {path} and no origin URL was given to download it from."
            + (f" (expected {algo}: {file_hash})" if file_hash else ""))
    try:
        _download(origin, path, algo, file_hash, timeout)
    except ChecksumError:
        raise
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError,
            ValueError) as e:
        reason = getattr(e, "reason", None) or e
        if stale is not None:
            head = (f"The cached file {path} has {algo} {stale}, not the expected {file_hash} "
                    f"(corrupted or another version), and downloading it again from {origin} "
                    f"failed: {reason}.")
        else:
            head = f"Could not download {fname!r} from {origin}: {reason}."
        raise DatasetUnavailableError(
            head + "\nIf this machine has no internet access: "
            + _manual_instructions(fname, origin, path, algo, file_hash)) from e
    return path


#: an archive may extract to at most this many bytes and members
MAX_EXTRACTED_BYTES = 64 << 30
MAX_MEMBERS = 1_000_000


def _safe_name(name, path):
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or os.path.isabs(name) or ".." in parts or (parts and ":" in parts[0]):
        raise FileFormatError(path, f"the archive member {name!r} would be written outside the "
                                    f"extraction folder; nothing was extracted")
    return "/".join(p for p in parts if p not in ("", "."))


def extract_archive(file_path, path, archive_format="auto"):
    """Extract a tar or zip archive into the folder ``path`` (created whole or not at all);
    ``True`` when it was one of ``archive_format``'s kinds, else ``False`` (Keras's
    ``extract_archive``).  Only regular files and folders are written, under ``path``: absolute
    names, ``..``, links and devices are refused, and the total size and member count are
    bounded (every problem is a :class:`~axone.fileio.FileFormatError`)."""
    import shutil
    import tarfile
    import zipfile
    if archive_format is None:
        return False
    kinds = ["tar", "zip"] if archive_format == "auto" else (
        [archive_format] if isinstance(archive_format, str) else list(archive_format))
    for k in kinds:
        if k not in ("tar", "zip"):
            raise NotImplementedError(f"extract_archive: archive_format {k!r}; use 'tar' or 'zip'")
    file_path = check_regular_file(os.fspath(file_path), "archive")
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(parent, exist_ok=True)
    for kind in kinds:
        if kind == "tar" and not tarfile.is_tarfile(file_path):
            continue
        if kind == "zip" and not zipfile.is_zipfile(file_path):
            continue
        tmp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".axone-", dir=parent)
        try:
            total, count = 0, 0
            if kind == "tar":
                with tarfile.open(file_path, "r:*") as tar:
                    for m in tar:
                        count += 1
                        if count > MAX_MEMBERS:
                            raise FileFormatError(file_path, f"more than {MAX_MEMBERS} members")
                        name = _safe_name(m.name, file_path)
                        if m.isdir():
                            os.makedirs(os.path.join(tmp, name), exist_ok=True)
                            continue
                        if not m.isfile():
                            raise FileFormatError(file_path, f"the archive member {m.name!r} is "
                                                             f"a link or a special file; refused")
                        total += m.size
                        if total > MAX_EXTRACTED_BYTES:
                            raise FileFormatError(file_path, f"extracts to more than "
                                                             f"{MAX_EXTRACTED_BYTES} bytes")
                        dest = os.path.join(tmp, name)
                        os.makedirs(os.path.dirname(dest), exist_ok=True)
                        src = tar.extractfile(m)
                        with open(dest, "wb") as out:
                            shutil.copyfileobj(src, out, 1 << 20)
            else:
                with zipfile.ZipFile(file_path) as zf:
                    infos = zf.infolist()
                    if len(infos) > MAX_MEMBERS:
                        raise FileFormatError(file_path, f"more than {MAX_MEMBERS} members")
                    for info in infos:
                        name = _safe_name(info.filename, file_path)
                        if (info.external_attr >> 16) & 0o170000 == 0o120000:
                            raise FileFormatError(file_path, f"the archive member "
                                                             f"{info.filename!r} is a link; refused")
                        if info.is_dir():
                            os.makedirs(os.path.join(tmp, name), exist_ok=True)
                            continue
                        total += info.file_size
                        if total > MAX_EXTRACTED_BYTES or (
                                info.file_size > (1 << 20)
                                and info.file_size > 1000 * max(info.compress_size, 1)):
                            raise FileFormatError(file_path, f"the archive member "
                                                             f"{info.filename!r} declares "
                                                             f"{info.file_size} bytes; refused")
                        dest = os.path.join(tmp, name)
                        os.makedirs(os.path.dirname(dest), exist_ok=True)
                        with zf.open(info) as src, open(dest, "wb") as out:
                            left = info.file_size
                            while True:
                                chunk = src.read(1 << 20)
                                if not chunk:
                                    break
                                left -= len(chunk)
                                if left < 0:
                                    raise FileFormatError(file_path, f"the archive member "
                                                                     f"{info.filename!r} holds "
                                                                     f"more than it declares")
                                out.write(chunk)
            if os.path.isdir(path):
                shutil.rmtree(path)
            os.replace(tmp, path)
            return True
        except FileFormatError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileFormatError(file_path, f"could not extract the {kind} archive "
                                             f"({type(e).__name__}: {e})") from None
    return False


def fetch_dataset_file(remote_name, path=None, base_url=None, checksums=None, cache_dir=None,
                       cache_subdir="datasets", timeout=DEFAULT_TIMEOUT):
    """``get_file`` for one of the :data:`KNOWN_FILES`, as the ``load_data`` functions use it.

    ``path`` is the cache file name (default ``remote_name``; absolute: used as
    is).  ``base_url`` (or ``$AXONE_DATASETS_URL``) replaces the origin folder.
    ``checksums`` maps remote file names to hex digests (SHA-256 or MD5, told
    apart by length; ``None`` skips verification) and overrides the known ones,
    which otherwise apply when the cache file keeps the remote file's name.
    """
    path = os.fspath(path) if path is not None else remote_name
    origin = dataset_origin(remote_name, base_url)
    known = KNOWN_FILES.get(remote_name, {})
    if checksums is not None and remote_name in checksums:
        file_hash = checksums[remote_name]
    elif os.path.basename(path) == remote_name:
        file_hash = known.get("sha256") or known.get("md5")
    else:
        file_hash = None
    return get_file(path, origin, file_hash=file_hash, hash_algorithm="auto", cache_dir=cache_dir,
                    cache_subdir=cache_subdir, timeout=timeout)


# ------------------------------------------------------------------ .npz files without pickle
class _AnyDtype:
    """Accepts every dtype (the headers are read to report them, objects included)."""

    def __contains__(self, dtype):
        return True


#: dtypes a dataset array may have: integers, unsigned integers and real floats
NUMERIC_DTYPES = tuple(np.dtype(c) for c in ("u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8",
                                             "f2", "f4", "f8"))


def npz_dtypes(path):
    """``{array name: dtype}`` of an ``.npz`` archive, read from the ``.npy`` headers only.

    The archive is opened through :class:`axone.fileio.ZipArchive` (a regular file, members'
    declared sizes and compression ratios checked); anything malformed raises
    :class:`~axone.fileio.FileFormatError`."""
    return {name: dtype for name, (_, dtype) in _npz_headers(path).items()}


def _npz_headers(path):
    out = {}
    with ZipArchive(path, "dataset .npz archive") as zf:
        for name in zf.names():
            if not name.endswith(".npy"):
                continue
            try:
                with zf._zf.open(zf._info(name)) as f:
                    shape, _, dtype, offset = zf._npy_header(f, name, _AnyDtype())
            except FileFormatError:
                raise
            except _READ_ERRORS as e:
                raise FileFormatError(path, f"array {name!r} is corrupted "
                                            f"({type(e).__name__}: {e})") from None
            out[name[:-4]] = (shape, dtype)
    return out


def load_npz_arrays(path, keys, who, dtypes=NUMERIC_DTYPES):
    """The arrays ``keys`` of a numeric ``.npz``; object (pickled) arrays are refused, never loaded.

    Each member's ``.npy`` header is read first and its shape and dtype checked against the
    member's declared size before exactly those bytes are read (a member may not claim more
    than it holds); every problem is a :class:`~axone.fileio.FileFormatError` naming the file.
    """
    headers = _npz_headers(path)
    missing = [k for k in keys if k not in headers]
    if missing:
        raise FileFormatError(path, f"{who}: lacks the arrays {missing}; it holds "
                                    f"{sorted(headers)}")
    pickled = [k for k in keys if headers[k][1].hasobject]
    if pickled:
        raise FileFormatError(path, f"{who}: the arrays {pickled} are Python object arrays, "
                                    f"which only pickle can read; axone never unpickles data files")
    with ZipArchive(path, "dataset .npz archive") as zf:
        return tuple(zf.read_npy(k + ".npy", dtypes=dtypes) for k in keys)


def check_labels(path, y, n_classes, name):
    """Raise unless the labels ``y`` are integers in 0 … n_classes − 1."""
    if y.dtype.kind not in "ui":
        raise FileFormatError(path, f"{name} has dtype {y.dtype}; labels must be integers")
    if y.size and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise FileFormatError(path, f"{name} holds labels from {int(y.min())} to {int(y.max())}; "
                                    f"expected 0 to {n_classes - 1}")
