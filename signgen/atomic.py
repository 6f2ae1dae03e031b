"""Write-then-rename, so that a crash or a user error never leaves a half-written file or folder.

A dependency-free leaf shared by every room that writes user-visible files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from signgen.errors import SigngenError


def _check_output_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise SigngenError(f"output folder is not a folder: {folder}")
    if not folder.is_dir():
        raise SigngenError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise SigngenError(f"output folder is not writable: {folder}")


def _current_umask() -> int:
    # The only portable way to read the umask is to set it and set it back.
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _temporary_prefix(path: Path) -> str:
    return f".{path.stem}."


# mkstemp's random part: 8 characters of "a-z0-9_" (tempfile._RandomNameSequence).
_RANDOM_PART = r"[a-z0-9_]{8}"


def stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """The temporaries :func:`atomic_output` left beside ``path`` when its process was
    killed (SIGKILL runs no cleanup): ``.<stem>.<8 random characters><suffix>``, exactly
    that pattern, so that no other file (nor another output's temporary) matches."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    pattern = re.compile(re.escape(_temporary_prefix(path)) + _RANDOM_PART + re.escape(path.suffix))
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [folder / name for name in names if pattern.fullmatch(name) and (folder / name).is_file()]


def remove_stale_temporaries(paths) -> int:
    """Remove the stale temporaries of each of ``paths`` (the caller's own outputs, which
    no other live process is writing); returns how many were removed."""
    removed = 0
    for path in paths:
        for stale in stale_temporaries(path):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed += 1
    return removed


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary name (``.<stem>.XXXXXXXX<suffix>``, hidden) keeps the final suffix, so
    writers that pick a format from the suffix (PyAV, imageio) behave as with the real
    name. A process killed with SIGKILL leaves it behind: :func:`remove_stale_temporaries`
    clears it when the same output is written again.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    _check_output_folder(folder)
    if path.exists() and not path.is_file():
        # Renaming onto a device (/dev/null, /dev/full), a pipe or a folder would replace it.
        raise SigngenError(f"refusing to write {path}: it exists and is not a regular file")
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=path.suffix, dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the result the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``folder``; swap it into place only on success.

    The folder counterpart of :func:`atomic_output`: a crash mid-save leaves the previous
    folder (or nothing), never a half-written one. An existing ``folder`` is replaced;
    whether it may be is the caller's decision.
    """
    folder = Path(folder)
    parent = folder.parent if str(folder.parent) else Path(".")
    _check_output_folder(parent)
    if folder.exists() and not folder.is_dir():
        raise SigngenError(f"refusing to write the folder {folder}: a file of that name exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=parent))
    try:
        yield tmp
        # mkdtemp creates 0700; give the result the permissions a plain mkdir() would.
        os.chmod(tmp, 0o777 & ~_current_umask())
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=parent))
            os.replace(folder, old / folder.name)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_replaceable_folder(folder: str | os.PathLike, manifest_name: str, kind: str) -> bool:
    """Whether a save of ``kind`` may replace ``folder``: it is empty, or its manifest
    ``manifest_name`` (JSON) says it holds that kind. Anything else may be user data."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    if not any(folder.iterdir()):
        return True
    try:
        return json.loads((folder / manifest_name).read_text(encoding="utf-8")).get("kind") == kind
    except (OSError, ValueError, AttributeError):
        return False
