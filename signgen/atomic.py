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


# What a temporary name adds to the final one: atomic_output's ".<stem>." + 8 random
# characters, atomic_folder's ".<name>.old." + 8. The final name must leave room for them,
# or the write fails on the temporary, after the work, with "File name too long".
FILE_TEMPORARY_EXTRA = 10
FOLDER_TEMPORARY_EXTRA = 14
# Where the file system does not say (no pathconf, or no folder to ask): Linux's limits.
_DEFAULT_NAME_MAX = 255
_DEFAULT_PATH_MAX = 4096


def _limit(folder: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError, AttributeError):  # no such folder, or no pathconf (Windows)
        return default


def check_name_length(path: str | os.PathLike, extra: int = FILE_TEMPORARY_EXTRA) -> None:
    """Refuse, in one line, an output name (or whole path) longer than the file system
    takes, less the ``extra`` bytes its temporary names add: the OSError would come only
    after the work, as "File name too long"."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    name = len(os.fsencode(path.name))
    name_max = _limit(next((p for p in (folder, *folder.parents) if p.is_dir()), Path(".")), "PC_NAME_MAX", _DEFAULT_NAME_MAX)
    if name > name_max - extra:
        shown = path.name if len(path.name) <= 40 else f"{path.name[:20]}…{path.name[-12:]}"
        raise SigngenError(f"output name {shown} is {name} bytes long; at most {name_max - extra} "
                           f"are written here (the file system's limit is {name_max})")
    full = len(os.fsencode(os.path.abspath(path)))
    path_max = _limit(Path("/"), "PC_PATH_MAX", _DEFAULT_PATH_MAX)
    if full > path_max - extra:
        raise SigngenError(f"output path is {full} bytes long; at most {path_max - extra} are written")


def _suffix_phrase(suffixes: tuple[str, ...]) -> str:
    """``(".mp4", ".gif")`` -> "an .mp4 (or .gif)", as a user reads it aloud."""
    first, *others = suffixes
    # ".mp4" is read "em-pee-four": "an"; ".pose", ".png", ".gif": "a".
    article = "an" if first[1:2].lower() in tuple("aefhilmnorsx") else "a"
    return f"{article} {first}" + (f" (or {', '.join(others)})" if others else "")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # either does not exist (yet): compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def check_output_path(path: str | os.PathLike, suffixes: tuple[str, ...], inputs=(), what: str = "-o") -> Path:
    """The one check of an output file, before any work: its suffix is one of
    ``suffixes`` (the format written: a pose never lands in an ``.mp4``), it is none of
    ``inputs`` (the files the command reads; None entries are skipped), its name fits the
    file system, and its folder exists and is writable. Every problem is one SigngenError
    line naming ``what`` (the option, e.g. ``-o``); returns ``path`` as a Path."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise SigngenError(f"{what} must name {_suffix_phrase(suffixes)} file, got {path}")
    # Room for two temporaries: a writer handed atomic_output's temporary (a skeleton video
    # drawn into it) writes through a temporary of its own. First: a stat() of it raises.
    check_name_length(path, 2 * FILE_TEMPORARY_EXTRA)
    for source in inputs:
        if source is not None and _same_file(path, Path(source)):
            raise SigngenError(f"{what} {path} is the input {source}; refusing to write over what is read")
    folder = path.parent if str(path.parent) else Path(".")
    _check_output_folder(folder)
    if path.is_dir():
        raise SigngenError(f"output path is a folder: {path}")
    if path.exists() and not path.is_file():
        raise SigngenError(f"refusing to write {path}: it exists and is not a regular file")
    if path.exists() and not os.access(path, os.W_OK):
        raise SigngenError(f"output path is not writable: {path}")
    return path


def check_output_folder(folder: str | os.PathLike, read_only=(), what: str = "--out") -> Path:
    """The check of an output folder before any work: not a file, a name that fits, and
    outside each folder of ``read_only`` (inputs documented as only read: a corpus must
    not gain a run folder). One SigngenError line naming ``what``; returns a Path."""
    folder = Path(folder)
    check_name_length(folder, FOLDER_TEMPORARY_EXTRA)  # first: stat() of a name too long raises
    if folder.exists() and not folder.is_dir():
        raise SigngenError(f"{what} is not a folder: {folder}")
    for source in read_only:
        if source is None:
            continue
        inner, outer = Path(os.path.realpath(folder)), Path(os.path.realpath(source))
        if inner == outer or outer in inner.parents:
            raise SigngenError(f"{what} {folder} is inside {source}, which is only read; choose a folder outside it")
    return folder


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
    check_name_length(path)
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
    check_name_length(folder, FOLDER_TEMPORARY_EXTRA)
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


# The lock file a writer holds in its output folder (hidden; removed when it is done).
LOCK_NAME = ".signgen.lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "--out") -> Iterator[Path]:
    """Hold ``folder/.signgen.lock`` while a command writes into ``folder``: a second
    process writing the same folder at once (which would delete the first one's
    half-written files as stale) is refused in one SigngenError line naming the holder's
    PID. The lock is the kernel's (flock): a process that dies, even by SIGKILL, releases
    it, so a lock file left behind is taken over. Where flock is missing (Windows), no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        yield Path(folder) / LOCK_NAME
        return
    path = Path(folder) / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise SigngenError(f"cannot lock {what} {folder}: {error.strerror or type(error).__name__}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise SigngenError(f"{what} {folder} is being written by another signgen process (PID {holder}); "
                               f"wait for it to finish or choose another {what}") from None
        # The holder before us may have removed the file between our open and our lock:
        # a lock on a name no longer there locks nothing.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)

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
