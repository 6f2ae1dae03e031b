"""Space and time transforms of 178-point poses: normalise and place into a frame,
resample to another frame rate, fill short gaps.

Every function takes and returns a 178-point ``Pose`` (see ``holistic.reduce_to_178``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pose_format import Pose

from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.holistic import pose_arrays, pose_from_arrays

TARGET_FPS = 25.0
# The longest video made at once: a longer pose is a mistake or an attack (100,000
# characters of glosses would be 25 hours of video and gigabytes of memory).
MAX_VIDEO_SECONDS = 30 * 60


def check_video_length(frames: int, fps: float = TARGET_FPS) -> None:
    """Refuse a video of ``frames`` at ``fps`` longer than :data:`MAX_VIDEO_SECONDS`, or
    with a frame rate that is not a positive finite number. Checked in seconds, before a
    pose is resampled: 50 frames at 0.001 fps would become 1.25 million frames."""
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise SigngenError(f"the pose's frame rate is {fps:g}, not a positive finite number")
    seconds = frames / fps
    if seconds > MAX_VIDEO_SECONDS:
        raise SigngenError(f"the video would be {seconds / 60:.4g} minutes long ({frames} frames at {fps:g} fps); "
                           f"at most {MAX_VIDEO_SECONDS // 60} minutes are made at once")


@dataclass(frozen=True)
class Framing:
    """Where a normalised signer sits in the output frame, in pixels.

    The default matches RWTH-PHOENIX-Weather 2014T's 210 x 260 frames: the signer's
    shoulders sit a little below the middle, about 40 % of the frame width apart.
    """

    width: int = 210
    height: int = 260
    shoulder_center: tuple[float, float] = (105.0, 165.0)
    shoulder_width: float = 84.0


PHOENIX_FRAMING = Framing()


def shoulder_reference(xy: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, float]:
    """Median shoulder centre and shoulder width over frames where both shoulders are seen.

    One reference per sequence (not per frame), so that the signer's own body motion
    survives normalisation.
    """
    both = (confidence[:, skeleton.LEFT_SHOULDER] > 0) & (confidence[:, skeleton.RIGHT_SHOULDER] > 0)
    if not both.any():
        raise SigngenError("cannot normalise a pose without any frame that shows both shoulders")
    left = xy[both, skeleton.LEFT_SHOULDER]
    right = xy[both, skeleton.RIGHT_SHOULDER]
    center = np.median((left + right) / 2, axis=0)
    width = float(np.median(np.linalg.norm(left - right, axis=-1)))
    if width <= 1e-6:
        raise SigngenError("cannot normalise a pose whose shoulders coincide")
    return center, width


def place(pose: Pose, framing: Framing = PHOENIX_FRAMING) -> Pose:
    """Scale and translate so that shoulder centre and width match ``framing``."""
    xy, confidence = pose_arrays(pose)
    center, width = shoulder_reference(xy, confidence)
    scale = framing.shoulder_width / width
    placed = (xy - center) * scale + np.asarray(framing.shoulder_center, dtype=np.float32)
    placed[confidence <= 0] = 0.0
    return pose_from_arrays(placed, confidence, pose.body.fps, framing.width, framing.height)


def normalize(pose: Pose) -> Pose:
    """Shoulder-centred coordinates in shoulder widths (shoulder centre at 0, width 1),
    the frame-free space in which models and distances work."""
    return place(pose, Framing(width=1, height=1, shoulder_center=(0.0, 0.0), shoulder_width=1.0))


def resample(pose: Pose, fps: float = TARGET_FPS) -> Pose:
    """Linear resampling in time to ``fps``; the duration is kept to within one frame.

    A point is present in an output frame only if it is present in both source frames it
    is interpolated from.
    """
    if not math.isfinite(fps) or fps <= 0:
        raise SigngenError(f"frame rate must be a positive finite number, got {fps}")
    source_fps = float(pose.body.fps)
    xy, confidence = pose_arrays(pose)
    frames = xy.shape[0]
    check_video_length(frames, source_fps)
    if frames == 0 or abs(source_fps - fps) < 1e-9:
        return pose_from_arrays(xy, confidence, fps, pose.header.dimensions.width, pose.header.dimensions.height)
    count = max(1, int(round(frames * fps / source_fps)))
    times = np.arange(count) * source_fps / fps
    lower = np.clip(np.floor(times).astype(int), 0, frames - 1)
    upper = np.clip(lower + 1, 0, frames - 1)
    weight = np.clip(times - lower, 0.0, 1.0).astype(np.float32)[:, None, None]
    new_xy = xy[lower] * (1 - weight) + xy[upper] * weight
    exact = weight[..., 0] == 0
    new_conf = np.where(exact, confidence[lower], np.minimum(confidence[lower], confidence[upper]))
    both = (confidence[lower] > 0) & ((confidence[upper] > 0) | exact)
    new_conf = np.where(both, new_conf, 0.0).astype(np.float32)
    return pose_from_arrays(new_xy, new_conf, fps, pose.header.dimensions.width, pose.header.dimensions.height)


def fill_gaps(pose: Pose, max_gap: int = 5) -> Pose:
    """Interpolate each point linearly across runs of at most ``max_gap`` missing frames
    that have a detection on both sides; longer gaps and open ends stay masked."""
    xy, confidence = pose_arrays(pose)
    present = confidence > 0
    for joint in range(xy.shape[1]):
        seen = np.flatnonzero(present[:, joint])
        if seen.size < 2:
            continue
        for before, after in zip(seen[:-1], seen[1:]):
            gap = after - before - 1
            if 0 < gap <= max_gap:
                weights = (np.arange(1, gap + 1, dtype=np.float32) / (gap + 1))[:, None]
                xy[before + 1:after, joint] = xy[before, joint] * (1 - weights) + xy[after, joint] * weights
                confidence[before + 1:after, joint] = min(confidence[before, joint], confidence[after, joint])
    return pose_from_arrays(xy, confidence, pose.body.fps, pose.header.dimensions.width, pose.header.dimensions.height)


def prepare(pose: Pose, fps: float = TARGET_FPS, framing: Framing = PHOENIX_FRAMING, max_gap: int = 5) -> Pose:
    """The usual path from any holistic pose to a model-ready one: reduce to 178 points,
    fill short gaps, resample to ``fps``, place into ``framing``."""
    from signgen.poses.holistic import reduce_to_178

    return place(resample(fill_gaps(reduce_to_178(pose), max_gap=max_gap), fps), framing)
