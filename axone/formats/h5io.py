"""Bounded reading and plain writing of HDF5 files through the optional h5py.

Every Keras HDF5 reader of axone goes through :class:`H5Reader`: only regular files (or bytes
already bounded by the zip reader) are opened; a dataset is read only when it is a plain
numeric array stored in the file itself (no external storage, no virtual dataset, no
object, string, variable-length or compound type) and its declared size fits the bytes the file
really has; links are followed only inside the file (soft and external links are refused);
attributes are bounded in size.  Every problem is a :class:`axone.fileio.FileFormatError`
naming the file and the object.
"""
import io
import json
import os

import numpy as np

from ..fileio import FileFormatError, check_json_depth, check_regular_file

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: a compressed (chunked) dataset may expand at most this many times over the file's size
MAX_DATASET_RATIO = 100
MAX_ATTR_BYTES = 64 << 20
MAX_NAMES = 1 << 20


def h5py_module():
    """The h5py module, or ImportError with the install hint."""
    try:
        import h5py
    except ImportError:
        raise ImportError("reading and writing Keras's HDF5 files (.keras, .weights.h5, .h5) "
                          "needs h5py: pip install h5py   (or pip install axone[h5])") from None
    return h5py


def is_hdf5(path):
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


class H5Reader:
    """An HDF5 file opened for bounded reading (a path or bytes); a context manager.

    ``label`` is how messages name the file (its path, or ``path!model.weights.h5``)."""

    def __init__(self, source, label=None, what="HDF5 file"):
        h5py = h5py_module()
        self.h5py = h5py
        if isinstance(source, (bytes, bytearray)):
            self.size = len(source)
            self.path = label
            if not bytes(source[:8]) == HDF5_SIGNATURE:
                raise FileFormatError(label, f"the {what} is not an HDF5 file (no HDF5 signature)")
            raw = io.BytesIO(bytes(source))
        else:
            self.path = check_regular_file(source, what)
            self.size = os.path.getsize(self.path)
            if not is_hdf5(self.path):
                raise FileFormatError(self.path, f"is not an HDF5 file (no HDF5 signature)")
            raw = self.path
        try:
            self.f = h5py.File(raw, "r")
        except Exception as e:     # h5py raises OSError, ValueError, KeyError... for a bad file
            raise FileFormatError(self.path, f"is not a valid {what}: it is truncated or corrupted "
                                             f"({type(e).__name__}: {e})") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.f.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ navigation
    def _check_link(self, group, name, where):
        try:
            link = group.get(name, getlink=True)
        except Exception as e:
            raise FileFormatError(self.path, f"{where}: cannot be read ({type(e).__name__}: {e})") \
                from None
        if link is None:
            return None
        if isinstance(link, (self.h5py.ExternalLink, self.h5py.SoftLink)):
            raise FileFormatError(self.path, f"{where} is a {type(link).__name__}; links are not "
                                             f"followed")
        return link

    def get(self, group, name, where=None):
        """``group[name]`` (one level: ``name`` holds no '/'), or None when absent."""
        where = where or f"{group.name.rstrip('/')}/{name}"
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise FileFormatError(self.path, f"{where}: invalid member name {name!r}")
        try:
            present = name in group
        except Exception as e:
            raise FileFormatError(self.path, f"{where}: cannot be read ({type(e).__name__}: {e})") \
                from None
        if not present:
            return None
        self._check_link(group, name, where)
        try:
            return group[name]
        except Exception as e:
            raise FileFormatError(self.path, f"{where}: cannot be read ({type(e).__name__}: {e})") \
                from None

    def group(self, group, path, required=True, where=None):
        """The group at the '/'-separated ``path`` under ``group`` (None if absent and not
        ``required``)."""
        g = group
        for part in [p for p in path.split("/") if p]:
            nxt = self.get(g, part)
            if nxt is None or not isinstance(nxt, self.h5py.Group):
                if not required and nxt is None:
                    return None
                raise FileFormatError(self.path, f"{where or 'the file'}: has no group "
                                                 f"{(g.name.rstrip('/') + '/' + part)!r}")
            g = nxt
        return g

    def keys(self, group):
        try:
            names = list(group.keys())
        except Exception as e:
            raise FileFormatError(self.path, f"group {group.name!r} cannot be listed "
                                             f"({type(e).__name__}: {e})") from None
        if len(names) > MAX_NAMES:
            raise FileFormatError(self.path, f"group {group.name!r} holds {len(names)} members")
        return names

    # ------------------------------------------------------------------ data
    def array(self, obj, where, shape=None):
        """The whole numeric dataset ``obj`` as an ndarray, after every check."""
        if not isinstance(obj, self.h5py.Dataset):
            raise FileFormatError(self.path, f"{where} is not a dataset")
        try:
            dt = obj.dtype
            dshape = tuple(int(d) for d in obj.shape) if obj.shape is not None else None
            virtual = bool(getattr(obj, "is_virtual", False))
            external = obj.external
            compressed = obj.compression is not None or bool(obj.chunks)
        except Exception as e:
            raise FileFormatError(self.path, f"{where} cannot be read ({type(e).__name__}: {e})") \
                from None
        if dt.kind not in "fiub" or dt.fields is not None or dt.subdtype is not None or \
                self.h5py.check_vlen_dtype(dt) is not None or dt.hasobject:
            raise FileFormatError(self.path, f"{where} has dtype {dt}; weights must be real "
                                             f"numbers")
        if dshape is None:
            raise FileFormatError(self.path, f"{where} is an empty (null-shaped) dataset")
        if virtual or external:
            raise FileFormatError(self.path, f"{where} is stored outside the file (virtual or "
                                             f"external dataset); not read")
        if shape is not None and tuple(shape) != dshape:
            raise FileFormatError(self.path, f"{where} has shape {dshape}, expected "
                                             f"{tuple(shape)}")
        n = 1
        for d in dshape:
            n *= d
        nbytes = n * dt.itemsize
        limit = max(self.size, 1 << 12) * (MAX_DATASET_RATIO if compressed else 1)
        if nbytes > limit:
            raise FileFormatError(self.path, f"{where} declares shape {dshape} ({nbytes} bytes) "
                                             f"in a file of {self.size} bytes; not read")
        try:
            out = np.empty(dshape, dtype=dt.newbyteorder("=") if dt.byteorder not in "=|"
                           else dt)
            if n:
                obj.read_direct(out)
        except Exception as e:
            raise FileFormatError(self.path, f"{where} cannot be read: the file is truncated or "
                                             f"corrupted ({type(e).__name__}: {e})") from None
        return out

    def attr(self, obj, name, where, default=None):
        """An attribute decoded (bytes to str; an array of names to a list of str)."""
        try:
            if name not in obj.attrs:
                return default
            aid = obj.attrs.get_id(name)
            try:
                size = aid.get_storage_size()
            except Exception:           # an empty attribute has no storage
                size = 0
            if size > MAX_ATTR_BYTES:
                raise FileFormatError(self.path, f"{where}: attribute {name!r} holds {size} bytes")
            v = obj.attrs[name]
        except FileFormatError:
            raise
        except Exception as e:
            raise FileFormatError(self.path, f"{where}: attribute {name!r} cannot be read "
                                             f"({type(e).__name__}: {e})") from None
        return _decode(v)

    def json_attr(self, obj, name, where):
        v = self.attr(obj, name, where)
        if v is None:
            return None
        if not isinstance(v, str):
            raise FileFormatError(self.path, f"{where}: attribute {name!r} is not a JSON string")
        try:
            out = json.loads(v)
            check_json_depth(out)
        except (ValueError, RecursionError) as e:
            raise FileFormatError(self.path, f"{where}: attribute {name!r} is not valid JSON "
                                             f"({e})") from None
        return out


def _decode(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        if v.size == 0 and v.ndim == 1:
            return []
        if v.dtype.kind in "SUO":
            return [_decode(x) for x in v.reshape(-1).tolist()]
        return v
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_h5(path_or_file, fill):
    """Create an HDF5 file and call ``fill(h5file)``; ``path_or_file`` may be a file object."""
    h5py = h5py_module()
    with h5py.File(path_or_file, "w") as f:
        fill(f)


def h5_bytes(fill):
    buf = io.BytesIO()
    write_h5(buf, fill)
    return buf.getvalue()
