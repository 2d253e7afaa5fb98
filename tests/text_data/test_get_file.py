"""get_file against a local HTTP server on 127.0.0.1: download, checksum, cache, offline errors."""
import os

import pytest

from axone.datasets import remote
from axone.datasets.remote import ChecksumError, DatasetUnavailableError, get_file
from axone.utils import get_file as utils_get_file

from .fakes import md5, no_temp_files, sha256

PAYLOAD = b"axone test payload\n" * 100


@pytest.fixture
def served(server):
    (server.root / "data.bin").write_bytes(PAYLOAD)
    return server


def test_exported_from_utils_and_datasets():
    import axone
    assert utils_get_file is get_file is axone.datasets.get_file


def test_download_into_cache_then_cache_hit_without_request(served, axone_home):
    url = f"{served.url}/data.bin"
    path = get_file("data.bin", url, file_hash=sha256(PAYLOAD))
    assert path == str(axone_home / "datasets" / "data.bin")
    assert open(path, "rb").read() == PAYLOAD
    assert served.requests == ["/data.bin"]
    assert no_temp_files(os.path.dirname(path))
    assert get_file("data.bin", url, file_hash=sha256(PAYLOAD)) == path
    assert served.requests == ["/data.bin"]                 # no second request


def test_cache_hit_works_offline(served):
    url = f"{served.url}/data.bin"
    path = get_file("data.bin", url, file_hash=sha256(PAYLOAD))
    served.stop()
    assert get_file("data.bin", url, file_hash=sha256(PAYLOAD)) == path
    assert get_file("data.bin", url) == path                # no hash: any cached file is used


def test_wrong_checksum_raises_and_keeps_nothing(served, axone_home):
    bad = "0" * 64
    with pytest.raises(ChecksumError) as e:
        get_file("data.bin", f"{served.url}/data.bin", file_hash=bad)
    assert isinstance(e.value, ValueError)
    msg = str(e.value)
    assert sha256(PAYLOAD) in msg and bad in msg and "discarded" in msg
    folder = axone_home / "datasets"
    assert not (folder / "data.bin").exists()
    assert no_temp_files(folder)


def test_md5_and_auto_algorithms(served):
    url = f"{served.url}/data.bin"
    assert get_file("a.bin", url, file_hash=md5(PAYLOAD), hash_algorithm="md5")
    assert get_file("b.bin", url, file_hash=md5(PAYLOAD), hash_algorithm="auto")
    assert get_file("c.bin", url, file_hash=sha256(PAYLOAD).upper(), hash_algorithm="auto")
    assert get_file("e.bin", url, file_hash=md5(PAYLOAD))   # "auto" by default, as Keras
    assert get_file("f.bin", url, md5_hash=md5(PAYLOAD))    # Keras's legacy argument
    with pytest.raises(ValueError, match="md5"):
        get_file("d.bin", url, file_hash=md5(PAYLOAD), hash_algorithm="sha256")
    with pytest.raises(ValueError, match="hash_algorithm"):
        get_file("d.bin", url, file_hash=md5(PAYLOAD), hash_algorithm="sha1")


def test_corrupted_cache_is_downloaded_again(served, axone_home):
    target = axone_home / "datasets" / "data.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated")
    path = get_file("data.bin", f"{served.url}/data.bin", file_hash=sha256(PAYLOAD))
    assert open(path, "rb").read() == PAYLOAD
    assert served.requests == ["/data.bin"]


def test_corrupted_cache_offline_raises_and_says_so(axone_home, dead_url):
    target = axone_home / "datasets" / "data.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated")
    with pytest.raises(DatasetUnavailableError) as e:
        get_file("data.bin", f"{dead_url}/data.bin", file_hash=sha256(PAYLOAD))
    msg = str(e.value)
    assert str(target) in msg and sha256(b"truncated") in msg and sha256(PAYLOAD) in msg
    assert target.read_bytes() == b"truncated"              # left for the user to replace


def test_offline_without_cache_names_file_url_path_and_checksum(axone_home, dead_url):
    url = f"{dead_url}/mnist.npz"
    digest = remote.KNOWN_FILES["mnist.npz"]["sha256"]
    with pytest.raises(OSError) as e:
        get_file("mnist.npz", url, file_hash=digest)
    assert isinstance(e.value, DatasetUnavailableError)
    msg = str(e.value)
    assert "'mnist.npz'" in msg
    assert url in msg
    assert str(axone_home / "datasets" / "mnist.npz") in msg
    assert digest in msg
    assert no_temp_files(axone_home / "datasets")


def test_http_404_is_unavailable_and_nothing_cached(server, axone_home):
    with pytest.raises(DatasetUnavailableError, match="404"):
        get_file("missing.bin", f"{server.url}/missing.bin")
    assert not (axone_home / "datasets" / "missing.bin").exists()
    assert no_temp_files(axone_home / "datasets")


def test_no_origin_and_no_file():
    with pytest.raises(DatasetUnavailableError, match="no origin"):
        get_file("nothing.bin")


def test_fname_from_origin_cache_dir_and_subdir(served, tmp_path):
    path = get_file(origin=f"{served.url}/data.bin", cache_dir=tmp_path / "c", cache_subdir="sub")
    assert path == str(tmp_path / "c" / "sub" / "data.bin")
    assert open(path, "rb").read() == PAYLOAD


def test_force_download(served):
    url = f"{served.url}/data.bin"
    get_file("data.bin", url)
    get_file("data.bin", url, force_download=True)
    assert served.requests == ["/data.bin", "/data.bin"]


def test_default_home_is_dot_axone(monkeypatch, tmp_path):
    monkeypatch.delenv("AXONE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert remote.cache_path("x.npz") == str(tmp_path / "user" / ".axone" / "datasets" / "x.npz")


def test_dataset_origin(monkeypatch):
    monkeypatch.delenv("AXONE_DATASETS_URL")
    assert remote.dataset_origin("mnist.npz") == \
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
    assert remote.dataset_origin("cifar-10-binary.tar.gz") == \
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    assert remote.dataset_origin("mnist.npz", base_url="http://127.0.0.1:1/m/") == \
        "http://127.0.0.1:1/m/mnist.npz"
    monkeypatch.setenv("AXONE_DATASETS_URL", "http://127.0.0.1:2/mirror")
    assert remote.dataset_origin("imdb.npz") == "http://127.0.0.1:2/mirror/imdb.npz"
    monkeypatch.delenv("AXONE_DATASETS_URL")
    with pytest.raises(ValueError):
        remote.dataset_origin("unknown.bin")
