"""Skeleton videos for people to look at (pose maps for models are in ``raster``).

Drawing is pose-format's ``PoseVisualizer`` (OpenCV, anti-aliased, one colour per
component, faded by confidence, missing points left out); writing goes through
``signgen.video.io`` so that every video of the project is encoded the same way.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterator

import numpy as np
from pose_format import Pose

from signgen.errors import SigngenError
from signgen.files import VIDEO_OUTPUT_SUFFIXES
from signgen.poses.holistic import pose_arrays, pose_from_arrays, reduce_to_178

WHITE = (255, 255, 255)


# The largest frame drawn (4096 x 4096): a header of 60,000 x 60,000 would ask for 10 GB
# for one frame before the first line is drawn.
MAX_DRAW_PIXELS = 4096 * 4096
# A GIF preview is written in one piece (every frame in memory): at most this many bytes.
MAX_GIF_BYTES = 1 << 30


def check_drawable(pose: Pose, size: tuple[int, int] | None = None, gif: bool = False) -> tuple[int, int]:
    """The (width, height) ``pose`` is drawn at, after refusing in one line what cannot be
    drawn within bounds: no frames, a frame size that is not positive or over
    :data:`MAX_DRAW_PIXELS`, more than the video length limit, or (``gif``) frames that
    together pass :data:`MAX_GIF_BYTES`. Reads only the
    header and the frame count: nothing is allocated before it passes."""
    from signgen.poses.transform import check_video_length

    frames = len(pose.body.data)
    if frames == 0:
        raise SigngenError("pose has no frames to draw")
    dims = pose.header.dimensions
    if dims.width <= 0 or dims.height <= 0:
        raise SigngenError(f"the pose's frame size is {dims.width} x {dims.height}; it cannot be drawn")
    width, height = (int(dims.width), int(dims.height)) if size is None else (int(v) for v in size)
    if width <= 0 or height <= 0:
        raise SigngenError(f"frame size must be positive, got {width} x {height}")
    if width * height > MAX_DRAW_PIXELS:
        raise SigngenError(f"the pose's frames would be drawn at {width} x {height} pixels; at most "
                           f"{MAX_DRAW_PIXELS:,} pixels (4096 x 4096) are drawn per frame")
    check_video_length(frames, float(pose.body.fps))
    if gif and frames * width * height * 3 > MAX_GIF_BYTES:
        raise SigngenError(f"a GIF of {frames} frames of {width} x {height} would take "
                           f"{frames * width * height * 3 / 2**30:.1f} GiB of memory (at most 1); write an .mp4")
    return width, height


def iter_skeleton_frames(pose: Pose, size: tuple[int, int] | None = None,
                         background: tuple[int, int, int] = WHITE, thickness: int | None = None) -> Iterator[np.ndarray]:
    """Draw a holistic pose as uint8 RGB (H, W, 3) frames, one at a time (see
    :func:`draw_skeleton_frames`); the size is checked (:func:`check_drawable`) first."""
    from pose_format.pose_visualizer import PoseVisualizer

    width, height = check_drawable(pose, size)
    pose = reduce_to_178(pose)
    dims = pose.header.dimensions
    # Drawn from its arrays: a point with non-finite coordinates is missing, and one far
    # outside the frame is pulled in to where OpenCV's integer pixels still hold it.
    xy, confidence = pose_arrays(pose)
    if size is not None:
        xy *= np.array([width / dims.width, height / dims.height], dtype=np.float32)
        confidence[~np.isfinite(xy).all(axis=-1)] = 0.0
        xy[confidence <= 0] = 0.0
    limit = 4.0 * max(width, height)
    np.clip(xy, -limit, limit, out=xy)
    pose = pose_from_arrays(xy, confidence, pose.body.fps, width, height)
    if thickness is None:
        # pose-format's own choice, which rounds to 0 (an OpenCV error) below about 100 x 100.
        thickness = max(1, round(math.sqrt(width * height) / 150))
    # PoseVisualizer draws on BGR images (OpenCV's order): background in, frames out.
    bgr_background = tuple(int(c) for c in background[::-1])
    for frame in PoseVisualizer(pose, thickness=thickness).draw(background_color=bgr_background):
        yield np.ascontiguousarray(frame[..., ::-1])


def draw_skeleton_frames(pose: Pose, size: tuple[int, int] | None = None,
                         background: tuple[int, int, int] = WHITE, thickness: int | None = None) -> np.ndarray:
    """Draw a holistic pose, frame by frame, as uint8 RGB (T, H, W, 3).

    The pose is drawn in its 178-point form (MediaPipe's world landmarks are not image
    coordinates, and the full face mesh hides the face contour): body red, face grey,
    left hand green, right hand blue (the colours of the 178-point header).

    Args:
        pose: a MediaPipe Holistic pose (543, 576, 586 or 178 points).
        size: (width, height) of the frames; ``None`` keeps the pose header's size.
            Coordinates are scaled from the header's size to this one.
        background: RGB colour behind the skeleton.
        thickness: line width in pixels; ``None`` picks one from the size (at least 1).
    """
    return np.stack(list(iter_skeleton_frames(pose, size, background, thickness)))


def render_skeleton_video(pose: Pose, path: str | os.PathLike, fps: float | None = None,
                          size: tuple[int, int] | None = None,
                          background: tuple[int, int, int] = WHITE) -> Path:
    """Write the skeleton video of ``pose`` to ``path``: H.264 mp4 (drawn and encoded a
    frame at a time), or GIF for a ``.gif`` path.

    ``fps`` defaults to the pose's own frame rate.
    """
    from signgen.video.io import write_gif, write_video

    path = Path(path)
    if path.suffix.lower() not in VIDEO_OUTPUT_SUFFIXES:
        raise SigngenError(f"a skeleton video is an .mp4 (or .gif) file, not {path.name}")
    fps = float(pose.body.fps) if fps is None else float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise SigngenError(f"frame rate must be a positive finite number, got {fps}")
    if path.suffix.lower() == ".gif":
        check_drawable(pose, size, gif=True)
        write_gif(draw_skeleton_frames(pose, size=size, background=background), path, fps=fps)
    else:
        write_video(iter_skeleton_frames(pose, size=size, background=background), path, fps=fps)
    return path
