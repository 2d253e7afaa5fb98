"""Loading a file whose op nodes were edited to compute huge arrays fails before the arrays are
made, with a FileFormatError naming the op; legitimate graphs of ordinary size load."""
import json
import zipfile

import numpy as np
import pytest

import axone
from axone import layers
from axone.compat import keras_ops as ops
from axone.fileio import FileFormatError


def _save(model, path):
    model.save(path)
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _rewrite(path, members, edit):
    cfg = json.loads(members["config.json"])
    edit(cfg)
    members = dict(members, **{"config.json": json.dumps(cfg).encode()})
    with zipfile.ZipFile(path, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)


def _op_entry(cfg, op):
    def walk(o):
        if isinstance(o, dict):
            if o.get("class_name") == "OpLayer" and o["config"].get("op") == op:
                return o
            for v in o.values():
                r = walk(v)
                if r is not None:
                    return r
        elif isinstance(o, list):
            for v in o:
                r = walk(v)
                if r is not None:
                    return r
        return None
    return walk(cfg)


def _model():
    i = layers.Input((8, 8, 3), batch_size=3)
    x = ops.image.resize(i, (64, 64))
    x = ops.tile(x, (1, 1, 1, 2))
    x = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    x = ops.broadcast_to(ops.mean(x, axis=(1, 2, 3), keepdims=True), (3, 4, 4, 1))
    return axone.Model(i, x)


def test_ordinary_graph_loads(tmp_path):
    m = _model()
    p = str(tmp_path / "m.keras")
    m.save(p)
    m2 = axone.models.load_model(p)
    x = np.random.default_rng(0).random((3, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(m2.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("op,edit", [
    ("tile", lambda e: e["config"]["args"].__setitem__(1, {"__tuple__": [1, 100000, 100000, 1]})),
    ("broadcast_to", lambda e: e["config"]["args"].__setitem__(
        1, {"__tuple__": [3, 100000, 100000, 1]})),
    ("image.resize", lambda e: e["config"]["args"].__setitem__(1, {"__tuple__": [300000, 300000]})),
    ("pad", lambda e: e["config"]["args"].__setitem__(
        1, [[0, 0], [100000, 100000], [100000, 100000], [0, 0]])),
])
def test_edited_sizes_are_refused_before_allocation(tmp_path, op, edit):
    p = str(tmp_path / "m.keras")
    members = _save(_model(), p)
    _rewrite(p, members, lambda cfg: edit(_op_entry(cfg, op)))
    with pytest.raises(FileFormatError, match=op.split(".")[-1]):
        axone.models.load_model(p)


def test_huge_input_feeding_an_op_is_refused(tmp_path):
    i = layers.Input((4,))
    m = axone.Model(i, i * 2.0)
    p = str(tmp_path / "m.keras")
    members = _save(m, p)

    def edit(cfg):
        s = json.dumps(cfg).replace("[null, 4]", "[null, 4000000000]")
        cfg.clear()
        cfg.update(json.loads(s))
    _rewrite(p, members, edit)
    with pytest.raises(FileFormatError):
        axone.models.load_model(p)
