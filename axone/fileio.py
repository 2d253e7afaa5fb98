"""File primitives under everything that reads or writes files (models, callbacks, datasets).

One error type for a file that is not what it claims to be, the check that a path names a
regular file before it is opened, atomic writes (a temporary file in the same folder, flushed,
then renamed over the target), and bounded reading of zip archives: every member's declared size
and compression ratio is checked before it is read, JSON members are bounded in size and nesting
depth, and a ``.npy`` member's header is read and checked against the shape expected of it before
exactly the bytes that shape implies are read.  Nothing here imports the rest of axone.

Temporary files of a write to ``folder/name`` are called ``folder/.name.axone-PID-START-RANDOM.tmp``
(``PID`` and ``START`` identify the writing process: its id and its start time); a write removes
those of earlier writers that are no longer running, so writes killed midway do not pile up, and
never touches those of a live writer.
"""
import ast
import io
import json
import os
import stat
import tempfile
import threading
import zipfile
import zlib

import numpy as np

__all__ = ["FileFormatError", "check_regular_file", "atomic_write", "atomic_write_zip", "remove_stale_temps",
           "ZipArchive", "loading_budget", "charge_weight", "check_json_depth"]

#: largest JSON member read (bytes), and its deepest nesting
MAX_JSON_BYTES = 64 << 20
MAX_JSON_DEPTH = 64
#: a member larger than MAX_RATIO_FLOOR bytes may be at most MAX_RATIO times its compressed size
MAX_RATIO = 100
MAX_RATIO_FLOOR = 1 << 20
#: the .npy header is at most this long (NumPy's own default limit)
MAX_NPY_HEADER = 10000
#: real float dtypes accepted for stored arrays
FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


class FileFormatError(ValueError):
    """A file that is truncated, corrupted, of another format or inconsistent with itself.

    Every reader of axone raises this (a ``ValueError``) for a malformed file, with the path and
    what is wrong; ``path`` holds the file's path.
    """

    def __init__(self, path, message):
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path!r}: {message}" if self.path is not None else message)


def _article(noun):
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def check_regular_file(path, what="file"):
    """Raise unless ``path`` names an existing regular file (not a folder, FIFO or device).

    Returns the path as a string.  ``FileNotFoundError`` when it does not exist, otherwise
    ``FileFormatError``.
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"No such {what}: {path!r}") from None
    except OSError as e:
        raise FileFormatError(path, f"cannot be read ({e}); expected {_article(what)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise FileFormatError(path, f"is a folder, not {_article(what)}")
    if not stat.S_ISREG(st.st_mode):
        raise FileFormatError(path, f"is not a regular file (a FIFO, socket or device), "
                                    f"so it is not read; expected {_article(what)}")
    return path


# --------------------------------------------------------------------------- atomic writes
def _process_start(pid):
    """Start time of process ``pid`` (clock ticks since boot), or None when it is not running."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        return int(raw[raw.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:
        pass
    return 0          # running (or unknown): treat as alive, start time unknown


def _temp_prefix(path):
    return "." + os.path.basename(path) + ".axone-"


def remove_stale_temps(path):
    """Remove temporary files left beside ``path`` by writes whose process is no longer running.

    Only files named by :class:`atomic_write` for this very target are considered; one whose
    writer (process id and start time in its name) still runs is left alone.  Returns the number
    of files removed.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(path)
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        parts = name[len(prefix):-4].split("-")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        pid, start = int(parts[0]), int(parts[1])
        running = _process_start(pid)
        if running is not None and (running == start or running == 0):
            continue
        try:
            os.unlink(os.path.join(folder, name))
            removed += 1
        except OSError:
            pass
    return removed


class atomic_write:
    """``with atomic_write(path) as f: f.write(…)`` writes ``path`` atomically.

    ``f`` is a binary file beside ``path`` under a temporary name (see the module docstring).
    When the block ends normally the file is flushed to disk and renamed over ``path`` (and the
    folder synced): a reader sees the old file or the new one, never a mix.  When it raises,
    the temporary file is removed and ``path`` is left as it was.  Stale temporary files of this
    target left by killed writers are removed first.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.folder = os.path.dirname(os.path.abspath(self.path))

    def __enter__(self):
        os.makedirs(self.folder, exist_ok=True)
        remove_stale_temps(self.path)
        pid = os.getpid()
        fd, self.tmp = tempfile.mkstemp(
            prefix=f"{_temp_prefix(self.path)}{pid}-{_process_start(pid) or 0}-", suffix=".tmp",
            dir=self.folder)
        self.file = os.fdopen(fd, "wb")
        return self.file

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if exc_type is None:
                os.replace(self.tmp, self.path)
                self.tmp = None
                try:
                    dfd = os.open(self.folder, os.O_RDONLY)
                    try:
                        os.fsync(dfd)
                    finally:
                        os.close(dfd)
                except OSError:
                    pass
        finally:
            if self.tmp is not None:
                try:
                    os.unlink(self.tmp)
                except OSError:
                    pass
        return False


def atomic_write_zip(path, entries):
    """Write ``entries`` {name: bytes} as an uncompressed zip at ``path`` atomically
    (:class:`atomic_write`)."""
    with atomic_write(path) as raw:
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, data in entries.items():
                zf.writestr(name, data)


# --------------------------------------------------------------------------- bounded reading
def check_json_depth(obj, limit=MAX_JSON_DEPTH):
    """Depth of nested lists/dicts in ``obj`` (iteratively); ValueError past ``limit``."""
    stack = [(obj, 1)]
    deepest = 0
    while stack:
        o, d = stack.pop()
        if isinstance(o, (list, dict)):
            if d > limit:
                raise ValueError(f"nested deeper than {limit} levels")
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return deepest


_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError,
               ValueError, KeyError, IndexError, OverflowError, UnicodeError, TypeError)


class ZipArchive:
    """A zip archive opened for bounded reading; every problem is a :class:`FileFormatError`.

    ``what`` names the kind of file in messages ("axone model file").  Use as a context manager.
    """

    def __init__(self, path, what="zip archive"):
        self.path = check_regular_file(path, what)
        self.what = what
        try:
            size = os.path.getsize(self.path)
            with open(self.path, "rb") as f:
                head = f.read(8)
            if head.startswith(b"\x89HDF"):
                raise FileFormatError(self.path, f"is an HDF5 (.h5) file, not an {what}; open it "
                                                 f"with load_model / load_weights, which read "
                                                 f"Keras's HDF5 files")
            self._zf = zipfile.ZipFile(self.path, "r")
            infos = self._zf.infolist()
        except FileFormatError:
            raise
        except _ZIP_ERRORS as e:
            raise FileFormatError(self.path, f"is not a valid {what}: it is truncated, corrupted or "
                                             f"of another format ({type(e).__name__}: {e})") from None
        self._infos = {}
        for info in infos:
            if info.filename in self._infos:
                self.close()
                raise FileFormatError(self.path, f"holds the member {info.filename!r} twice")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                self.close()
                raise FileFormatError(self.path, f"member {info.filename!r} uses compression "
                                                 f"method {info.compress_type}; only stored and "
                                                 f"deflated members are read")
            if info.flag_bits & 0x1:
                self.close()
                raise FileFormatError(self.path, f"member {info.filename!r} is encrypted")
            if info.compress_size > size or info.header_offset > size:
                self.close()
                raise FileFormatError(self.path, f"member {info.filename!r} declares "
                                                 f"{info.compress_size} compressed bytes at offset "
                                                 f"{info.header_offset} in a file of {size} bytes")
            self._check_ratio(info)
            self._infos[info.filename] = info

    def _check_ratio(self, info):
        if info.file_size > MAX_RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise FileFormatError(self.path, f"member {info.filename!r} declares {info.file_size} "
                                             f"bytes from {info.compress_size} compressed bytes (a "
                                             f"ratio above {MAX_RATIO}); not read")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        zf = getattr(self, "_zf", None)
        if zf is not None:
            zf.close()

    def names(self):
        return list(self._infos)

    def __contains__(self, name):
        return name in self._infos

    def _info(self, name):
        info = self._infos.get(name)
        if info is None:
            raise FileFormatError(self.path, f"the {self.what} has no member {name!r}")
        return info

    def read(self, name, max_bytes):
        """The bytes of member ``name``, at most ``max_bytes`` (checked before reading)."""
        info = self._info(name)
        if info.file_size > max_bytes:
            raise FileFormatError(self.path, f"member {name!r} declares {info.file_size} bytes, more "
                                             f"than the {max_bytes} it may hold")
        try:
            with self._zf.open(info) as f:
                data = f.read(info.file_size)
                rest = f.read(1)
        except _ZIP_ERRORS as e:
            raise FileFormatError(self.path, f"member {name!r} is corrupted "
                                             f"({type(e).__name__}: {e})") from None
        if len(data) != info.file_size or rest:
            raise FileFormatError(self.path, f"member {name!r} holds {len(data)} bytes but declares "
                                             f"{info.file_size}")
        return data

    def read_json(self, name, max_bytes=MAX_JSON_BYTES, max_depth=MAX_JSON_DEPTH):
        """Member ``name`` parsed as JSON, bounded in size and nesting depth."""
        raw = self.read(name, max_bytes)
        try:
            obj = json.loads(raw.decode("utf-8"))
            check_json_depth(obj, max_depth)
        except (ValueError, UnicodeError, RecursionError) as e:
            raise FileFormatError(self.path, f"member {name!r} is not valid JSON "
                                             f"({type(e).__name__}: {e})") from None
        return obj

    def read_npy(self, name, shape=None, dtypes=FLOAT_DTYPES):
        """Member ``name`` as a NumPy array, reading its header first.

        The header's dtype must be one of ``dtypes`` (real floats by default: complex, integer,
        bool, string, datetime and object arrays are rejected, not cast) and its shape ``shape``
        when given; the member's declared size must be exactly header plus data, and only then
        are the data bytes read.  Returns a native-byte-order, writable, C-ordered array.
        """
        info = self._info(name)
        try:
            with self._zf.open(info) as f:
                arr_shape, fortran, dtype, offset = self._npy_header(f, name, dtypes)
                if shape is not None and tuple(arr_shape) != tuple(shape):
                    raise FileFormatError(self.path, f"array {name!r} has shape {tuple(arr_shape)}, "
                                                     f"expected {tuple(shape)}")
                count = 1
                for d in arr_shape:
                    count *= d
                nbytes = count * dtype.itemsize
                if info.file_size != offset + nbytes:
                    raise FileFormatError(self.path, f"array {name!r} of shape {tuple(arr_shape)} "
                                                     f"and dtype {dtype} needs {offset + nbytes} "
                                                     f"bytes but its member declares "
                                                     f"{info.file_size}")
                data = f.read(nbytes)
                rest = f.read(1)
        except FileFormatError:
            raise
        except _ZIP_ERRORS as e:
            raise FileFormatError(self.path, f"array {name!r} is corrupted "
                                             f"({type(e).__name__}: {e})") from None
        if len(data) != nbytes or rest:
            raise FileFormatError(self.path, f"array {name!r} is truncated")
        arr = np.frombuffer(data, dtype=dtype).reshape(arr_shape, order="F" if fortran else "C")
        return np.array(arr, dtype=dtype.newbyteorder("="), order="C")

    def _npy_header(self, f, name, dtypes=FLOAT_DTYPES):
        def bad(why):
            return FileFormatError(self.path, f"array {name!r} has a bad .npy header ({why})")
        magic = f.read(8)
        if len(magic) != 8 or magic[:6] != b"\x93NUMPY" or magic[6] not in (1, 2, 3):
            raise bad("no .npy magic")
        n = 2 if magic[6] == 1 else 4
        raw = f.read(n)
        if len(raw) != n:
            raise bad("truncated")
        hlen = int.from_bytes(raw, "little")
        if hlen > MAX_NPY_HEADER:
            raise bad(f"header of {hlen} bytes")
        header = f.read(hlen)
        if len(header) != hlen:
            raise bad("truncated")
        try:
            text = header.decode("utf-8" if magic[6] == 3 else "latin1")
            d = ast.literal_eval(text)
        except Exception as e:       # any parse error of a bounded, untrusted string
            raise bad(f"{type(e).__name__}") from None
        if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
            raise bad("not a dict of descr, fortran_order and shape")
        shape, fortran, descr = d["shape"], d["fortran_order"], d["descr"]
        if not isinstance(shape, tuple) or not all(type(s) is int and s >= 0 for s in shape) \
                or len(shape) > 32:
            raise bad(f"shape {shape!r}")
        if not isinstance(fortran, bool):
            raise bad(f"fortran_order {fortran!r}")
        if not isinstance(descr, str) or len(descr) > 16:
            raise bad(f"descr {descr!r}")
        try:
            dtype = np.dtype(descr)
        except (TypeError, ValueError) as e:
            raise bad(f"descr {descr!r}") from None
        if dtype.newbyteorder("=") not in dtypes:
            if dtypes is FLOAT_DTYPES:
                raise FileFormatError(self.path, f"array {name!r} has dtype {dtype}; weights and "
                                                 f"states must be real floats "
                                                 f"({', '.join(map(str, FLOAT_DTYPES))})")
            raise FileFormatError(self.path, f"array {name!r} has dtype {dtype}; expected one of "
                                             f"{', '.join(map(str, dtypes))}")
        return shape, fortran, dtype, 8 + n + hlen


# --------------------------------------------------------------------------- loading budget
_budget = threading.local()


class loading_budget:
    """While active on this thread, weights created (``charge_weight``) may total at most
    ``elements`` values: the number the file being loaded really holds.

    So a configuration that declares more (``Dense(units=50_000_000)`` in a 4 KB file) fails
    before anything is allocated, with a :class:`FileFormatError` naming the layer.
    """

    def __init__(self, path, elements):
        self.path, self.left = path, int(elements)

    def __enter__(self):
        self._outer = getattr(_budget, "active", None)
        _budget.active = self
        return self

    def __exit__(self, *exc):
        _budget.active = self._outer


def charge_weight(owner, shape):
    """Count a weight of ``shape`` about to be created by ``owner`` (a layer name) against the
    active loading budget, if any; FileFormatError when it does not fit."""
    b = getattr(_budget, "active", None)
    if b is None:
        return
    n = 1
    for d in shape:
        n *= int(d)
    if n > b.left:
        raise FileFormatError(b.path, f"the architecture declares a weight of shape {tuple(shape)} "
                                      f"for layer {owner!r}, but the file holds only {b.left} more "
                                      f"weight values; the configuration and the weights disagree")
    b.left -= n
