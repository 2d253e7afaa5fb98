"""Property test of the architecture and compile readers: any JSON value put anywhere in a valid
model file's config.json or compile.json gives a model or a FileFormatError, nothing else.

Hypothesis draws the value (numbers of every size, strings, nested lists and objects) and the
place; the byte-level mutations of ``test_fuzz_models.py`` complement it.
"""
import json
import zipfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

import axone  # noqa: E402
from axone import layers  # noqa: E402
from axone.fileio import FileFormatError  # noqa: E402

from _harness import n_inputs  # noqa: E402

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def _paths(obj, prefix=()):
    """Every place in a JSON document: (path of keys / indices)."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _replace(obj, path, value):
    if not path:
        return value
    obj = json.loads(json.dumps(obj))
    cur = obj
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return obj


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    axone.utils.set_random_seed(0)
    a = axone.Input((4,), name="a")
    h = layers.Dense(5, activation="relu", kernel_regularizer="l2", name="h")(a)
    o = layers.Dense(3, activation="softmax", name="o")(layers.Dropout(0.1)(h))
    m = axone.Model(a, o)
    m.compile(optimizer=axone.optimizers.Adam(amsgrad=True), loss="categorical_crossentropy",
              metrics=["accuracy"])
    x = np.random.default_rng(0).random((8, 4)).astype("float32")
    m.fit(x, np.eye(3, dtype="float32")[np.arange(8) % 3], epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("cfg") / "m.axone"
    m.save(path)
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    return entries, path.parent


@pytest.mark.parametrize("member", ["config.json", "compile.json"])
def test_any_json_value_anywhere_gives_a_model_or_a_format_error(saved, member):
    entries, folder = saved
    doc = json.loads(entries[member])
    places = list(_paths(doc))

    @settings(max_examples=n_inputs(150), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(place=st.sampled_from(places), value=_JSON)
    def check(place, value):
        mutated = dict(entries)
        mutated[member] = json.dumps(_replace(doc, place, value)).encode()
        path = folder / "mutated.axone"
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in mutated.items():
                zf.writestr(name, data)
        try:
            axone.models.load_model(path)
        except FileFormatError:
            pass

    check()
