"""Keras's file formats, read and written through the optional h5py (``pip install h5py``).

One module per format: :mod:`.keras_v3` (the ``.keras`` archive and ``.weights.h5``),
:mod:`.legacy_h5` (Keras 2's ``.h5``), over :mod:`.h5io` (bounded HDF5 reading) and
:mod:`.keras_config` (the one translation of the architecture between axone's and Keras's
forms).

Which format a path gets, as Keras 3 chooses it:

* ``model.save(path)``: ``.keras`` → Keras 3 archive; ``.h5`` / ``.hdf5`` → Keras 2 HDF5 (with
  Keras's "legacy" warning); any other name → axone's own zip archive
  (:mod:`axone.models.saving`, conventionally ``.axone``; ``save_format="axone"`` asks for it and
  refuses a Keras extension);
* ``save_weights(path)``: ``.weights.h5`` → Keras 3 weights; other ``.h5`` / ``.hdf5`` → Keras 2
  weights (Keras 3 refuses these names; axone writes the layout Keras 3 still reads); any other
  name → axone's weights archive;
* ``load_model`` / ``load_weights`` look at the content, whatever the name: an HDF5 file is a
  Keras 3 weights file (``vars`` / ``layers`` groups) or a Keras 2 file (``layer_names`` /
  ``model_config``); a zip is axone's (``axone.json``) or Keras's (``config.json`` +
  ``model.weights.h5``).

axone's own format is never written under a Keras extension.
"""
import os

from ..fileio import FileFormatError, check_regular_file, remove_stale_temps
from ..models import saving as _saving

_KERAS_EXT = (".keras", ".h5", ".hdf5")


def _name(path):
    return os.fspath(path).lower() if isinstance(path, (str, os.PathLike)) else ""


def save_kind(path, save_format=None, what="save"):
    """"keras", "h5" or "axone" for writing a model to ``path``."""
    name = _name(path)
    if save_format not in (None, "axone", "keras", "h5", "tf"):
        raise ValueError(f"{what}: unknown save_format {save_format!r}; expected 'axone', "
                         f"'keras' or 'h5'")
    if save_format == "tf":
        raise NotImplementedError("save: save_format='tf' (a TensorFlow SavedModel) is not "
                                  "implemented in axone")
    if save_format == "axone":
        if name.endswith(_KERAS_EXT):
            raise ValueError(f"{what}: save_format='axone' writes axone's own archive, which is "
                             f"never given a Keras extension; name the file '*.axone' "
                             f"(received {os.fspath(path)!r})")
        return "axone"
    if name.endswith(".keras"):
        if save_format == "h5":
            raise NotImplementedError(f"{what}: save_format='h5' with a '.keras' path "
                                      f"({os.fspath(path)!r}) is not implemented: the "
                                      f"extension chooses the format, as in Keras 3")
        return "keras"
    if name.endswith((".h5", ".hdf5")):
        return "h5"
    if save_format == "keras":
        raise ValueError(f"{what}: save_format='keras' needs a path ending in '.keras', "
                         f"received {os.fspath(path)!r}")
    if save_format == "h5":
        raise ValueError(f"{what}: save_format='h5' needs a path ending in '.h5' or '.hdf5', "
                         f"received {os.fspath(path)!r}")
    return "axone"


def weights_kind(path):
    name = _name(path)
    if name.endswith(".weights.h5"):
        return "keras"
    if name.endswith((".h5", ".hdf5")):
        return "h5"
    if name.endswith(".keras"):
        raise ValueError(f"save_weights: the filename must end in '.weights.h5' for Keras's "
                         f"weights file (received {os.fspath(path)!r}); a '.keras' file is "
                         f"written by model.save")
    return "axone"


def sniff(path):
    """"axone", "keras" (a .keras zip), "weights.h5" (a Keras 3 HDF5 weights file), "h5"
    (Keras 2 HDF5), or None for anything else (the axone reader then says what is wrong)."""
    try:
        p = check_regular_file(path)
    except (FileFormatError, FileNotFoundError):
        return None
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    from .h5io import HDF5_SIGNATURE, H5Reader
    if head == HDF5_SIGNATURE:
        with H5Reader(p) as r:
            from .legacy_h5 import is_legacy
            if is_legacy(r) or r.get(r.f, "model_weights") is not None:
                return "h5"
            if r.get(r.f, "layers") is not None or r.get(r.f, "vars") is not None:
                return "weights.h5"
        raise FileFormatError(p, "is an HDF5 file but neither a Keras weights file nor a Keras "
                                 "model file (no 'layers', 'vars', 'layer_names' or "
                                 "'model_config')")
    if head[:2] == b"PK":
        import zipfile
        try:
            with zipfile.ZipFile(p) as zf:
                names = set(zf.namelist())
        except Exception:
            return None
        if "axone.json" in names:
            return "axone"
        from .keras_v3 import is_keras_archive
        if is_keras_archive(names):
            return "keras"
    return None


def dispatch(op, path, *args, **kwargs):
    """The hook :mod:`axone.models.saving` calls first: handle ``op`` in a Keras format, or
    return NotImplemented for axone's own."""
    from . import keras_v3, legacy_h5
    if op == "save_model":
        kind = save_kind(path, kwargs.pop("save_format", None))
        if kind == "axone":
            return NotImplemented
        return (keras_v3 if kind == "keras" else legacy_h5).save_model(*args, path, **kwargs)
    if op == "save_weights":
        kind = weights_kind(path)
        if kind == "axone":
            return NotImplemented
        return (keras_v3 if kind == "keras" else legacy_h5).save_weights(*args, path)
    remove_stale_temps(path)
    kind = sniff(path)
    if kind in (None, "axone"):
        return NotImplemented
    if op == "load_model":
        if kind == "weights.h5":
            raise FileFormatError(path, "is a Keras weights file (.weights.h5), not a model "
                                        "file: build the model and call load_weights")
        return (keras_v3 if kind == "keras" else legacy_h5).load_model(path, **kwargs)
    if op == "load_weights":
        model = args[0]
        by_name, skip = kwargs.get("by_name", False), kwargs.get("skip_mismatch", False)
        if kind == "h5":
            return legacy_h5.load_weights(model, path, by_name=by_name, skip_mismatch=skip)
        if by_name:
            raise ValueError("load_weights: by_name=True applies to Keras 2 '.h5' files only "
                             "(Keras 3 refuses it for its own formats)")
        if kind == "keras":
            return keras_v3.load_weights_from_archive(model, path, skip_mismatch=skip)
        return keras_v3.load_weights(model, path, skip_mismatch=skip)
    raise ValueError(f"unknown file operation {op!r}")


_saving.register_format_dispatch(dispatch)
