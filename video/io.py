"""Reading and writing videos: uint8 RGB frames (T, H, W, 3) at every boundary.

Containers (mp4, avi, webm, ...) are decoded with decord, which seeks and batches fast,
and with PyAV where decord is missing or refuses the file. Frame folders are the
PHOENIX-2014T layout (``<name>/images0001.png ...``) or a glob such as the corpus CSV's
``<name>/1/*.png``. Videos are written as H.264 mp4 in yuv420p (plays everywhere) with
PyAV; previews as GIF with imageio. Every writer goes through
:func:`signgen.atomic.atomic_output`, so a failure never leaves a half-written file.
"""

from __future__ import annotations

import glob
import itertools
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from signgen.atomic import atomic_output
from signgen.errors import SigngenError, first_line
from signgen.files import IMAGE_SUFFIXES, natural_key, open_image, read_image

_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float | None  # None for a frame folder: the folder does not say
    height: int
    width: int


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Read every frame of a video file, a frame folder or a frame glob as uint8 (T, H, W, 3)."""
    if _is_frame_folder(path):
        return read_frame_folder(path)
    path = Path(path)
    if not path.is_file():
        raise SigngenError(f"video not found: {path}")
    frames = _read_with_decord(path)
    if frames is None:
        frames = _read_with_pyav(path)
    if len(frames) == 0:
        raise SigngenError(f"video has no frames: {path}")
    return frames


def read_frame_folder(path: str | os.PathLike) -> np.ndarray:
    """Read a folder of frame images (or a glob of them), in natural order of their names.

    Natural order puts ``images10.png`` after ``images9.png`` even without zero padding.
    """
    frames = [read_image(file, "frame") for file in _frame_files(os.fspath(path))]
    shapes = {frame.shape for frame in frames}
    if len(shapes) > 1:
        raise SigngenError(f"frames of different sizes in {path}: {sorted(shapes)}")
    return np.stack(frames)


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame count, frame rate and size, without decoding the whole video where possible."""
    if _is_frame_folder(path):
        files = _frame_files(os.fspath(path))
        width, height = open_image(files[0], "frame").size  # upright, as read_video reads it
        return VideoInfo(len(files), None, height, width)
    path = Path(path)
    if not path.is_file():
        raise SigngenError(f"video not found: {path}")
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SigngenError(f"no video stream in {path}")
            stream = container.streams.video[0]
            # some containers do not store a frame count; counting packets needs no decoding
            num_frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
            fps = float(stream.average_rate) if stream.average_rate else None
            return VideoInfo(num_frames, fps, stream.height, stream.width)
    except av.FFmpegError as error:
        raise SigngenError(f"cannot read video {path}: {first_line(error)}") from None


def write_video(frames: np.ndarray | Iterator[np.ndarray], path: str | os.PathLike, fps: float = 25, crf: int = 18) -> None:
    """Write uint8 RGB frames (T, H, W, 3) as an H.264 mp4 (yuv420p).

    ``frames`` may also be an iterator of (H, W, 3) frames, encoded as they come: a long
    video is then never held in memory whole. yuv420p needs even sizes: an odd height or
    width is padded by one replicated row or column. ``crf`` 18 is visually lossless;
    lower is larger and closer to the input.
    """
    import av

    frames = _frame_iterator(frames)
    first = next(frames)
    height, width = first.shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_output(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            # "The same seed gives the same video" covers the file: with x264's macroblock-tree
            # rate control on, the same frames gave other bytes (up to 36/255 apart decoded)
            # from one write to the next, even on one thread; with it off they do not. One
            # thread makes the bytes independent of the machine's core count too.
            stream.options = {"crf": str(crf), "threads": "1", "x264-params": "mbtree=0"}
            for index, frame in enumerate(itertools.chain([first], frames)):
                if pad[0][1] or pad[1][1]:
                    frame = np.pad(frame, pad, mode="edge")
                video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
                video_frame.pts = index
                container.mux(stream.encode(video_frame))
            container.mux(stream.encode())


def _frame_iterator(frames) -> Iterator[np.ndarray]:
    """``frames`` (an array, a list or an iterator) as checked (H, W, 3) uint8 frames of
    one size; an empty or malformed one is a SigngenError, before anything is written."""
    if not isinstance(frames, Iterator):
        return iter(_check_frames(frames, "frames to write"))
    first = next(frames, None)
    if first is None:
        raise SigngenError("frames to write must be a non-empty (T, H, W, 3) array, got none")
    shape = _check_frames(np.asarray(first)[None], "frames to write").shape[1:]

    def checked() -> Iterator[np.ndarray]:
        yield np.ascontiguousarray(first)
        for frame in frames:
            if frame.shape != shape or frame.dtype != np.uint8:
                raise SigngenError(f"frames to write must all be uint8 {shape}, got {frame.dtype} {frame.shape}")
            yield np.ascontiguousarray(frame)

    return checked()


def write_gif(frames: np.ndarray, path: str | os.PathLike, fps: float = 25) -> None:
    """Write uint8 RGB frames (T, H, W, 3) as a looping GIF (for previews: 256 colours).

    GIF delays are whole hundredths of a second, so 25 fps is exact and 30 fps is not.
    """
    import imageio.v3 as iio

    frames = _check_frames(frames, "frames to write")
    with atomic_output(path) as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=1000 / fps, loop=0)


def _is_frame_folder(path: str | os.PathLike) -> bool:
    """A folder, or a glob that names no existing file (a literal ``[`` in a name stays literal)."""
    path = os.fspath(path)
    return os.path.isdir(path) or (not os.path.exists(path) and bool(_GLOB_CHARS.search(path)))


def _frame_files(pattern: str) -> list[str]:
    if os.path.isdir(pattern):
        files = [os.path.join(pattern, f) for f in os.listdir(pattern) if f.lower().endswith(IMAGE_SUFFIXES)]
        where = f"frame images ({', '.join(IMAGE_SUFFIXES)}) in {pattern}"
    elif _GLOB_CHARS.search(pattern):
        files = [f for f in glob.glob(pattern) if os.path.isfile(f)]
        folder, name_pattern = os.path.split(pattern)
        if not files and os.path.basename(folder) == "1":
            # PHOENIX-2014-T's CSV keeps PHOENIX-2014's "<name>/1/*.png", but its frames
            # lie in "<name>/" itself
            files = [f for f in glob.glob(os.path.join(os.path.dirname(folder), name_pattern)) if os.path.isfile(f)]
        where = f"frames match {pattern}"
    else:
        raise SigngenError(f"frame folder not found: {pattern}")
    if not files:
        raise SigngenError(f"no {where}")
    return sorted(files, key=natural_key)


def _read_with_decord(path: Path) -> np.ndarray | None:
    """All frames via decord, or None where decord is missing or cannot open the file."""
    try:
        import decord
    except ImportError:
        return None
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
        if len(reader) == 0:
            return None
        return reader.get_batch(list(range(len(reader)))).asnumpy()
    except Exception:  # decord raises bare RuntimeError/DECORDError; PyAV gets a second try
        return None


def _read_with_pyav(path: Path) -> np.ndarray:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SigngenError(f"no video stream in {path}")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    except av.FFmpegError as error:
        raise SigngenError(f"cannot read video {path}: {first_line(error)}") from None
    if not frames:
        return np.zeros((0, stream.height or 0, stream.width or 0, 3), np.uint8)
    return np.stack(frames)


def _check_frames(frames: np.ndarray, what: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise SigngenError(f"{what} must be a non-empty (T, H, W, 3) array, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise SigngenError(f"{what} must be uint8, got {frames.dtype}")
    return np.ascontiguousarray(frames)

