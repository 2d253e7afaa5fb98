"""get_file(extract=True / untar=True): Keras 3's paths, safe extraction, bad archives."""
import io
import os
import tarfile
import zipfile

import pytest

from axone.datasets.remote import extract_archive, get_file
from axone.fileio import FileFormatError


def _tar(path, members, mode="w:gz"):
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_extract_tar_and_zip_with_keras_paths(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _tar(src / "pack.tar.gz", {"pack/a.txt": b"A", "pack/sub/b.txt": b"BB"})
    with zipfile.ZipFile(src / "z.zip", "w") as zf:
        zf.writestr("z/c.txt", "CCC")
    cache = tmp_path / "cache"
    out = get_file("pack.tar.gz", (src / "pack.tar.gz").as_uri(), extract=True, cache_dir=cache)
    assert out == str(cache / "datasets" / "pack_extracted")
    assert open(os.path.join(out, "pack", "sub", "b.txt"), "rb").read() == b"BB"
    assert os.path.isfile(cache / "datasets" / "pack.tar.gz")
    out = get_file("z", (src / "z.zip").as_uri(), extract=True, cache_dir=cache)
    assert out == str(cache / "datasets" / "z")
    assert os.path.isfile(cache / "datasets" / "z_archive")
    assert open(os.path.join(out, "z", "c.txt")).read() == "CCC"
    out = get_file("u", (src / "pack.tar.gz").as_uri(), untar=True, cache_dir=cache)
    assert os.path.isfile(os.path.join(out, "pack", "a.txt"))


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_members_outside_the_folder_are_refused(tmp_path, name):
    arc = tmp_path / "bad.tar"
    _tar(arc, {"ok.txt": b"x", name: b"evil"}, mode="w")
    with pytest.raises(FileFormatError, match="outside"):
        extract_archive(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".out")] == []


def test_links_are_refused(tmp_path):
    arc = tmp_path / "link.tar"
    with tarfile.open(arc, "w") as tar:
        info = tarfile.TarInfo("l")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(FileFormatError, match="link"):
        extract_archive(arc, tmp_path / "out")
    zarc = tmp_path / "bad.zip"
    with zipfile.ZipFile(zarc, "w") as zf:
        zf.writestr("../x.txt", "x")
    with pytest.raises(FileFormatError, match="outside"):
        extract_archive(zarc, tmp_path / "zout")


def test_not_an_archive_and_unknown_format(tmp_path):
    f = tmp_path / "plain.bin"
    f.write_bytes(b"not an archive")
    assert extract_archive(f, tmp_path / "o") is False
    with pytest.raises(NotImplementedError, match="rar"):
        extract_archive(f, tmp_path / "o", archive_format="rar")
