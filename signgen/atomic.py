"""Write-then-rename, so that a crash or a user error never leaves a half-written file.

A dependency-free leaf shared by every room that writes user-visible files.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from signgen.errors import SigngenError


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary name keeps the final suffix, so writers that pick a format from the
    suffix (PyAV, imageio) behave as with the real name.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise SigngenError(f"output folder is not a folder: {folder}")
    if not folder.is_dir():
        raise SigngenError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise SigngenError(f"output folder is not writable: {folder}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
