"""imdb.load_data: Keras's algorithm on a tiny hand-made dataset, in axone's pickle-free layout."""
import ast
import importlib.util
import json
import os

import numpy as np
import pytest

from axone.datasets import imdb
from axone.datasets.imdb import PickledDatasetError

from .fakes import (IMDB_TEST, IMDB_TEST_Y, IMDB_TRAIN, IMDB_TRAIN_Y, md5, sha256,
                    write_keras_imdb_npz)


@pytest.fixture
def converted(tmp_path):
    return imdb.save_npz(tmp_path / "imdb_axone.npz", (IMDB_TRAIN, IMDB_TRAIN_Y),
                         (IMDB_TEST, IMDB_TEST_Y))


def lists(x):
    assert x.dtype == object and x.ndim == 1
    return [list(s) for s in x]


# np.random.RandomState(113) shuffles train indices to [1, 0, 3, 2, 4], then test to [1, 0, 2]:
#   train: [4,1] [1,2,3] [7] [2,2,5,6,1] [3,1,4,1,5,9]   labels 0 1 0 1 1
#   test:  [8,1,1,2] [2,3] [5,4,3,2,1,6,7]               labels 1 0 1

def test_defaults(converted):
    (x, y), (xt, yt) = imdb.load_data(path=converted)
    # + index_from 3, start_char 1 first; num_words=None → max index 12, and Keras keeps w < 12,
    # so that single highest index becomes oov_char 2
    assert lists(x) == [[1, 7, 4], [1, 4, 5, 6], [1, 10], [1, 5, 5, 8, 9, 4], [1, 6, 4, 7, 4, 8, 2]]
    assert lists(xt) == [[1, 11, 4, 4, 5], [1, 5, 6], [1, 8, 7, 6, 5, 4, 9, 10]]
    assert y.tolist() == [0, 1, 0, 1, 1] and yt.tolist() == [1, 0, 1]


def test_num_words(converted):
    (x, _), (xt, _) = imdb.load_data(path=converted, num_words=8)
    assert lists(x) == [[1, 7, 4], [1, 4, 5, 6], [1, 2], [1, 5, 5, 2, 2, 4], [1, 6, 4, 7, 4, 2, 2]]
    assert lists(xt) == [[1, 2, 4, 4, 5], [1, 5, 6], [1, 2, 7, 6, 5, 4, 2, 2]]


def test_skip_top_replaces_start_char_too(converted):
    (x, _), _ = imdb.load_data(path=converted, num_words=7, skip_top=5)
    assert lists(x) == [[2, 2, 2], [2, 2, 5, 6], [2, 2], [2, 5, 5, 2, 2, 2], [2, 6, 2, 2, 2, 2, 2]]


def test_maxlen_keeps_strictly_shorter(converted):
    (x, y), (xt, yt) = imdb.load_data(path=converted, maxlen=4)
    # lengths with the start char: train 3 4 2 6 7, test 5 3 8; then max index 10 → oov
    assert lists(x) == [[1, 7, 4], [1, 2]] and y.tolist() == [0, 0]
    assert lists(xt) == [[1, 5, 6]] and yt.tolist() == [0]
    with pytest.raises(ValueError, match="Increase maxlen"):
        imdb.load_data(path=converted, maxlen=2)


def test_raw_indices_no_start_no_oov(converted):
    (x, _), (xt, _) = imdb.load_data(path=converted, start_char=None, index_from=0, oov_char=None)
    assert lists(x) == [[4, 1], [1, 2, 3], [7], [2, 2, 5, 6, 1], [3, 1, 4, 1, 5]]     # 9 dropped
    assert lists(xt) == [[8, 1, 1, 2], [2, 3], [5, 4, 3, 2, 1, 6, 7]]


def test_seed_and_custom_chars(converted):
    (x, y), _ = imdb.load_data(path=converted, seed=0, start_char=5, oov_char=0, index_from=10,
                               num_words=14)
    order = np.arange(5)
    np.random.RandomState(0).shuffle(order)
    expected = [[5] + [w + 10 if w + 10 < 14 else 0 for w in IMDB_TRAIN[i]] for i in order]
    assert lists(x) == expected
    assert y.tolist() == [IMDB_TRAIN_Y[i] for i in order]


CONFIGS = [dict(), dict(num_words=8), dict(num_words=7, skip_top=5), dict(maxlen=4),
           dict(start_char=None, index_from=0, oov_char=None), dict(seed=7, num_words=9, oov_char=None),
           dict(start_char=None, index_from=2, maxlen=5)]


def keras_load_data(keras_file):
    """Keras's own ``imdb.load_data`` (and ``remove_long_seq``), taken from the installed Keras
    source and run without importing the keras package (which takes ~30 s here); its file
    reader is Keras's npz_utils (restricted unpickler), ``get_file`` returns our local file."""
    spec = importlib.util.find_spec("keras")
    if spec is None or spec.origin is None:
        pytest.skip("keras is not installed")
    root = os.path.join(os.path.dirname(spec.origin), "src")

    def function(relpath, name):
        tree = ast.parse(open(os.path.join(root, relpath)).read())
        fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
        fn.decorator_list = []
        return fn

    npz_spec = importlib.util.spec_from_file_location(
        "_keras_npz_utils", os.path.join(root, "datasets", "npz_utils.py"))
    npz_utils = importlib.util.module_from_spec(npz_spec)
    npz_spec.loader.exec_module(npz_utils)
    module = ast.Module(body=[function(os.path.join("utils", "python_utils.py"), "remove_long_seq"),
                              function(os.path.join("datasets", "imdb.py"), "load_data")],
                        type_ignores=[])
    ns = {"np": np, "npz_utils": npz_utils, "get_file": lambda *a, **k: keras_file}
    exec(compile(module, os.path.join(root, "datasets", "imdb.py"), "exec"), ns)
    return ns["load_data"]


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_matches_keras(tmp_path, converted, kwargs):
    keras_imdb_load_data = keras_load_data(write_keras_imdb_npz(tmp_path))
    (kx, ky), (kxt, kyt) = keras_imdb_load_data(**kwargs)
    (x, y), (xt, yt) = imdb.load_data(path=converted, **kwargs)
    assert lists(x) == [[int(w) for w in s] for s in kx]
    assert lists(xt) == [[int(w) for w in s] for s in kxt]
    np.testing.assert_array_equal(y, ky)
    np.testing.assert_array_equal(yt, kyt)


def test_keras_object_array_file_is_refused_with_instructions(tmp_path, server):
    keras_file = write_keras_imdb_npz(tmp_path, name="keras_imdb.npz")
    with pytest.raises(PickledDatasetError):
        imdb.load_data(path=keras_file)
    # Keras's file under its own name, checksum as given: downloaded, then refused with instructions
    write_keras_imdb_npz(server.root)
    keras_file = str(server.root / "imdb.npz")
    with pytest.raises(PickledDatasetError) as e:
        imdb.load_data(base_url=server.url, checksums={"imdb.npz": sha256(keras_file)})
    msg = str(e.value)
    assert isinstance(e.value, ValueError)
    assert "pickle" in msg and "imdb.save_npz" in msg and "imdb_axone.npz" in msg


def test_download_through_local_server(server, axone_home, converted):
    data = open(converted, "rb").read()
    (server.root / "imdb_axone.npz").write_bytes(data)
    (server.root / "imdb.npz").write_bytes(data)
    # a differently named file: fetched from <base>/imdb.npz, checksummed only on request
    (x, _), _ = imdb.load_data(base_url=server.url, checksums={"imdb.npz": sha256(data)})
    assert len(x) == 5 and (axone_home / "datasets" / "imdb.npz").is_file()
    # Keras's checksum is enforced for the default name
    (axone_home / "datasets" / "imdb.npz").unlink()
    with pytest.raises(ValueError, match="69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"):
        imdb.load_data(base_url=server.url)


def test_word_index(server):
    index = {"the": 1, "and": 2}
    data = json.dumps(index).encode()
    (server.root / "imdb_word_index.json").write_bytes(data)
    assert imdb.get_word_index(base_url=server.url,
                               checksums={"imdb_word_index.json": md5(data)}) == index


def test_save_npz_validation(tmp_path):
    with pytest.raises(ValueError, match="labels"):
        imdb.save_npz(tmp_path / "a.npz", ([[1]], [0, 1]), ([[1]], [0]))
    p = imdb.save_npz(tmp_path / "b.npz", ([[1, 2], []], [0, 1]), ([[3]], [1]))
    with np.load(p, allow_pickle=False) as f:
        assert f["x_train_tokens"].tolist() == [1, 2] and f["x_train_lengths"].tolist() == [2, 0]
