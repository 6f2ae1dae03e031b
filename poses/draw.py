"""Skeleton videos for people to look at (pose maps for models are in ``raster``).

Drawing is pose-format's ``PoseVisualizer`` (OpenCV, anti-aliased, one colour per
component, faded by confidence, missing points left out); writing goes through
``signgen.video.io`` so that every video of the project is encoded the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from pose_format import Pose

from signgen.errors import SigngenError
from signgen.poses.holistic import pose_arrays, pose_from_arrays, reduce_to_178

WHITE = (255, 255, 255)


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
        thickness: line width in pixels; ``None`` lets pose-format pick one from the size.
    """
    from pose_format.pose_visualizer import PoseVisualizer

    pose = reduce_to_178(pose)
    if len(pose.body.data) == 0:
        raise SigngenError("pose has no frames to draw")
    dims = pose.header.dimensions
    if dims.width <= 0 or dims.height <= 0:
        raise SigngenError(f"the pose's frame size is {dims.width} x {dims.height}; it cannot be drawn")
    # Drawn from its arrays: a point with non-finite coordinates is missing, and one far
    # outside the frame is pulled in to where OpenCV's integer pixels still hold it.
    xy, confidence = pose_arrays(pose)
    width, height = dims.width, dims.height
    if size is not None:
        width, height = (int(v) for v in size)
        if width <= 0 or height <= 0:
            raise SigngenError(f"frame size must be positive, got {width} x {height}")
        xy *= np.array([width / dims.width, height / dims.height], dtype=np.float32)
        confidence[~np.isfinite(xy).all(axis=-1)] = 0.0
        xy[confidence <= 0] = 0.0
    limit = 4.0 * max(width, height)
    np.clip(xy, -limit, limit, out=xy)
    pose = pose_from_arrays(xy, confidence, pose.body.fps, width, height)
    # PoseVisualizer draws on BGR images (OpenCV's order): background in, frames out.
    bgr_background = tuple(int(c) for c in background[::-1])
    frames = PoseVisualizer(pose, thickness=thickness).draw(background_color=bgr_background)
    return np.ascontiguousarray(np.stack(list(frames))[..., ::-1])


def render_skeleton_video(pose: Pose, path: str | os.PathLike, fps: float | None = None,
                          size: tuple[int, int] | None = None,
                          background: tuple[int, int, int] = WHITE) -> Path:
    """Write the skeleton video of ``pose`` to ``path``: H.264 mp4, or GIF for a ``.gif`` path.

    ``fps`` defaults to the pose's own frame rate.
    """
    from signgen.video.io import write_gif, write_video

    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise SigngenError(f"a skeleton video is an .mp4 (or .gif) file, not {path.name}")
    fps = float(pose.body.fps) if fps is None else float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise SigngenError(f"frame rate must be a positive finite number, got {fps}")
    frames = draw_skeleton_frames(pose, size=size, background=background)
    if path.suffix.lower() == ".gif":
        write_gif(frames, path, fps=fps)
    else:
        write_video(frames, path, fps=fps)
    return path
