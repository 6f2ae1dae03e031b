"""Reading and writing ``.pose`` files (pose-format), with one-line errors for bad files."""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import numpy as np
from pose_format import Pose
from pose_format.pose_header import PoseHeader
from pose_format.utils.reader import BufferReader

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
    _check_version(data, path)
    try:
        _check_length(data, path)
        pose = Pose.read(data)
    # TypeError: numpy's "buffer is too small for requested array" when the body is cut short;
    # NotImplementedError: pose-format's "Unknown version" (a version it does not read).
    except (struct.error, ValueError, TypeError, IndexError, EOFError, UnicodeDecodeError, OverflowError,
            MemoryError, NotImplementedError):
        # The parsers' own words ("error", "unpack requires a buffer of 12 bytes") say nothing to a user.
        raise SigngenError(f"not a readable .pose file (truncated or another format): {path}") from None
    expected = sum(len(c.points) for c in pose.header.components)
    if pose.body.data.ndim != 4 or pose.body.data.shape[2] != expected:
        raise SigngenError(f"pose file body does not match its header: {path}")
    fps = float(pose.body.fps)
    if not math.isfinite(fps) or fps <= 0:
        raise SigngenError(f"pose file has frame rate {fps:g}, not a positive finite number: {path}")
    dims = pose.header.dimensions
    if dims.width <= 0 or dims.height <= 0:
        raise SigngenError(f"pose file has frame size {dims.width} x {dims.height}: {path}")
    values = np.ma.getdata(pose.body.data)
    seen = np.asarray(pose.body.confidence) > 0
    if not np.isfinite(pose.body.confidence).all() or not np.isfinite(values[seen]).all():
        raise SigngenError(f"pose file holds non-finite values (NaN or infinity) in seen points: {path}")
    return pose


# The header versions pose-format reads (its first field, a little-endian float32).
KNOWN_VERSIONS = (0.0, 0.1, 0.2)


def _check_version(data: bytes, path: Path) -> None:
    """Refuse a file whose header version is not a finite version pose-format reads, before
    its bytes are handed to pose-format (which fails with a NotImplementedError)."""
    if len(data) < 4:
        raise SigngenError(f"not a readable .pose file (truncated or another format): {path}")
    (version,) = struct.unpack_from("<f", data)
    if not math.isfinite(version) or round(version, 3) not in KNOWN_VERSIONS:
        shown = f"{version:g}" if math.isfinite(version) else str(version)
        raise SigngenError(f"not a readable .pose file: its header declares version {shown}, not one of "
                           f"{', '.join(f'{v:g}' for v in KNOWN_VERSIONS)} (another format or damaged): {path}")


# The body's own header: frame rate, frame count and people (pose-format's v0.1 and v0.2 layouts).
_BODY_HEADERS = {0.1: struct.Struct("<HHH"), 0.2: struct.Struct("<fIH")}


def _check_length(data: bytes, path: Path) -> None:
    """Refuse a file whose length is not what its header and its body's frame count say:
    a cut-off file must not load as fewer frames with confidences read from coordinates.

    pose-format v0.2 declares the frame count (uint32); v0.1 declares it as a uint16 but
    reads as many frames as the bytes left hold, so a v0.1 file is checked against its
    count modulo 2**16 and for whole frames."""
    reader = BufferReader(data)
    header = PoseHeader.read(reader)
    version = round(header.version, 3)
    layout = _BODY_HEADERS.get(version)
    if layout is None:  # v0.0 reads frame by frame and fails on a short file by itself
        return
    start = reader.read_offset
    if len(data) < start + layout.size:
        raise SigngenError(f"pose file is truncated (no body after its header): {path}")
    _, frames, people = layout.unpack_from(data, start)
    points = sum(len(c.points) for c in header.components)
    frame_bytes = people * points * (header.num_dims() + 1) * 4
    body = len(data) - start - layout.size
    if version == 0.2:
        expected = frames * frame_bytes
        if body != expected:
            state = "truncated" if body < expected else "longer than its header says"
            raise SigngenError(f"pose file is {state}: {path} (its header declares {frames} frames, "
                               f"{start + layout.size + expected} bytes; the file has {len(data)})")
    elif frame_bytes and (body % frame_bytes or (body // frame_bytes) % 2**16 != frames):
        raise SigngenError(f"pose file is truncated or damaged: {path} (its header declares {frames} frames; "
                           f"the file holds {body / frame_bytes:.1f})")


def write_pose(pose: Pose, path: str | os.PathLike) -> Path:
    """Write ``pose`` to ``path`` atomically (no partial file on failure)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            pose.write(handle)
    return path
