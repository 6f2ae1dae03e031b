"""Reading and writing ``.pose`` files (pose-format), with one-line errors for bad files."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from pose_format import Pose

from signgen.atomic import atomic_output
from signgen.errors import SigngenError


def read_pose(path: str | os.PathLike) -> Pose:
    """Read a ``.pose`` file as written by pose-format (any version it reads)."""
    path = Path(path)
    if not path.is_file():
        raise SigngenError(f"pose file not found: {path}")
    data = path.read_bytes()
    if not data:
        raise SigngenError(f"pose file is empty: {path}")
    try:
        pose = Pose.read(data)
    # TypeError: numpy's "buffer is too small for requested array" when the body is cut short
    except (struct.error, ValueError, TypeError, IndexError, EOFError, UnicodeDecodeError, OverflowError,
            MemoryError) as error:
        raise SigngenError(f"not a readable .pose file (truncated or another format): {path} ({type(error).__name__})") from None
    expected = sum(len(c.points) for c in pose.header.components)
    if pose.body.data.ndim != 4 or pose.body.data.shape[2] != expected:
        raise SigngenError(f"pose file body does not match its header: {path}")
    return pose


def write_pose(pose: Pose, path: str | os.PathLike) -> Path:
    """Write ``pose`` to ``path`` atomically (no partial file on failure)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            pose.write(handle)
    return path
