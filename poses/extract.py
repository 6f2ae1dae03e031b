"""MediaPipe Holistic pose extraction from videos, frame folders and single images.

The pose comes out exactly as pose-format's ``load_holistic`` writes it (the layout of
``video_to_pose`` and of the sign-language-datasets poses): 576 points (33 body, 468 face,
21 + 21 hands, 33 world landmarks), pixel coordinates, XYZC, and a component that was not
detected in a frame is masked with confidence 0, never a point at (0, 0).

MediaPipe runs offline: ``model_complexity=1`` uses the pose model shipped inside the
mediapipe wheel (0 and 2 would download theirs on first use).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
from pose_format import Pose

from signgen.errors import SigngenError
from signgen.files import IMAGE_SUFFIXES, read_image

DEFAULT_FPS = 25.0  # frame folders and images carry no rate; PHOENIX's is 25
MODEL_COMPLEXITY = 1


def extract_pose(input_path: str | os.PathLike, progress: bool = True, fps: float | None = None) -> Pose:
    """Run MediaPipe Holistic over a video file, a folder (or glob) of frames, or one image.

    Args:
        input_path: an mp4 (or any video PyAV reads), a folder of frame images such as a
            PHOENIX ``<name>/`` folder with ``images0001.png ...``, or a png/jpg image.
        progress: show a tqdm progress bar over the frames.
        fps: frame rate written to the pose; defaults to the video's own rate, and to 25
            for frame folders and images.
    """
    if fps is not None:
        _check_fps(fps)
    with _native_stderr_silenced():
        frames, source_fps, static = _read_input(input_path)
    if source_fps is not None and not (math.isfinite(source_fps) and source_fps > 0):
        source_fps = None  # a container's nonsense rate: the default, as for frame folders
    return extract_pose_from_frames(frames, fps=fps or source_fps or DEFAULT_FPS, progress=progress, static=static)


def _check_fps(fps: float) -> None:
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not math.isfinite(fps) or fps <= 0:
        raise SigngenError(f"frame rate must be a positive finite number, got {fps!r}")


def extract_pose_from_frames(frames: np.ndarray, fps: float = DEFAULT_FPS, progress: bool = True,
                             static: bool = False) -> Pose:
    """MediaPipe Holistic over frames already in memory, uint8 RGB (T, H, W, 3); ``static``
    for unrelated stills (detect afresh in each instead of tracking)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or 0 in frames.shape:
        raise SigngenError(f"frames must be non-empty uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    _check_fps(fps)
    with _native_stderr_silenced():
        from pose_format.utils.holistic import load_holistic

        height, width = frames.shape[1:3]
        # A fresh dict each call: load_holistic writes defaults into the one it is given.
        config = {"model_complexity": MODEL_COMPLEXITY, "static_image_mode": static}
        return load_holistic(list(frames), fps=float(fps), width=width,
                             height=height, progress=progress, additional_holistic_config=config)


def _read_input(input_path: str | os.PathLike) -> tuple[np.ndarray, float | None, bool]:
    """Frames uint8 (T, H, W, 3), their rate if known, and whether they are unrelated
    stills (MediaPipe then detects afresh in each instead of tracking)."""
    from signgen.video.io import read_video, video_info

    path = Path(input_path)
    is_glob = any(char in str(path) for char in "*?[")
    if path.suffix.lower() in IMAGE_SUFFIXES and not is_glob and not path.is_dir():
        return read_image(path)[None], None, True
    frames = read_video(path)
    source_fps = None if is_glob or path.is_dir() else video_info(path).fps
    return frames, source_fps, False


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send what native code writes to stderr to /dev/null (MediaPipe's TFLite and absl
    start-up warnings, logged before any log level can be set; FFmpeg's and decord's
    complaints about a file that is then reported as one SigngenError line), while Python's
    own stderr (the progress bar, warnings) still reaches the terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        python_stderr = os.fdopen(os.dup(saved), "w") if _writes_to_fd2(sys.stderr) else None
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        previous = sys.stderr
        if python_stderr is not None:
            sys.stderr = python_stderr
        try:
            yield
        finally:
            sys.stderr = previous
            if python_stderr is not None:
                python_stderr.close()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return False
