"""Write-then-rename helpers: results get ordinary permissions, failures leave nothing behind."""

from __future__ import annotations

import contextlib
import os
import stat

import pytest

from signgen.atomic import atomic_folder, atomic_output, is_replaceable_folder
from signgen.errors import SigngenError


@contextlib.contextmanager
def umask(mask: int):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_atomic_folder_gets_the_permissions_of_a_plain_mkdir(tmp_path, mask):
    with umask(mask):
        (tmp_path / "plain").mkdir()
        with atomic_folder(tmp_path / "atomic") as tmp:
            (tmp / "file.txt").write_text("x")
    assert mode(tmp_path / "atomic") == mode(tmp_path / "plain") == 0o777 & ~mask
    assert (tmp_path / "atomic" / "file.txt").read_text() == "x"


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_atomic_output_gets_the_permissions_of_a_plain_open(tmp_path, mask):
    with umask(mask):
        (tmp_path / "plain.txt").write_text("x")
        with atomic_output(tmp_path / "atomic.txt") as tmp:
            tmp.write_text("x")
    assert mode(tmp_path / "atomic.txt") == mode(tmp_path / "plain.txt") == 0o666 & ~mask


def test_atomic_folder_replaces_on_success_and_keeps_the_old_one_on_failure(tmp_path):
    target = tmp_path / "model"
    with atomic_folder(target) as tmp:
        (tmp / "version").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "version").write_text("2")
            raise RuntimeError("crash mid-save")
    assert (target / "version").read_text() == "1"
    with atomic_folder(target) as tmp:
        (tmp / "version").write_text("3")
    assert (target / "version").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "temporary folders left behind"


def test_atomic_folder_needs_an_existing_parent(tmp_path):
    with pytest.raises(SigngenError, match="does not exist"):
        with atomic_folder(tmp_path / "missing" / "model"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_only_empty_folders_and_folders_of_the_same_kind_are_replaceable(tmp_path):
    (tmp_path / "empty").mkdir()
    same, other, user = (tmp_path / name for name in ("same", "other", "user"))
    for folder, manifest in ((same, '{"kind": "signgen-x"}'), (other, '{"kind": "signgen-y"}'), (user, "not json")):
        folder.mkdir()
        (folder / "index.json").write_text(manifest, encoding="utf-8")
    (tmp_path / "file").write_text("data", encoding="utf-8")

    assert is_replaceable_folder(tmp_path / "empty", "index.json", "signgen-x")
    assert is_replaceable_folder(same, "index.json", "signgen-x")
    assert not is_replaceable_folder(other, "index.json", "signgen-x")
    assert not is_replaceable_folder(user, "index.json", "signgen-x")
    assert not is_replaceable_folder(tmp_path / "file", "index.json", "signgen-x")
    assert not is_replaceable_folder(tmp_path / "missing", "index.json", "signgen-x")


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_device_is_never_renamed_over(tmp_path):
    before = os.stat("/dev/null")
    with pytest.raises(SigngenError, match="not a regular file"):
        with atomic_output("/dev/null") as tmp:
            tmp.write_text("data", encoding="utf-8")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_a_folder_save_does_not_replace_a_file(tmp_path):
    (tmp_path / "model").write_text("user data", encoding="utf-8")
    with pytest.raises(SigngenError, match="a file of that name exists"):
        with atomic_folder(tmp_path / "model"):
            pass
    assert (tmp_path / "model").read_text(encoding="utf-8") == "user data"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
