"""MediaPipe Holistic poses (543, 576 or 586 points) to the 178-point set, and the
conversion between a 178-point ``Pose`` and plain arrays for the models."""

from __future__ import annotations

import numpy as np
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderDimensions

from signgen.errors import SigngenError
from signgen.poses import skeleton

HOLISTIC_SIZES = {543, 553, 576, 586}  # 468 or 478 face points, with or without world landmarks


def pose_arrays(pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """First person's keypoints as ``xy`` (T, J, 2) float32 pixels and ``confidence``
    (T, J) float32, where a masked point has confidence 0 (its xy is meaningless)."""
    data = pose.body.data[:, 0, :, :2]
    mask = np.ma.getmaskarray(data).any(axis=-1)
    xy = np.ma.getdata(data).astype(np.float32)
    confidence = np.asarray(pose.body.confidence[:, 0], dtype=np.float32).copy()
    confidence[mask] = 0.0
    confidence[~np.isfinite(xy).all(axis=-1)] = 0.0
    xy[confidence <= 0] = 0.0
    return xy, confidence


def pose_from_arrays(xy: np.ndarray, confidence: np.ndarray, fps: float, width: int, height: int) -> Pose:
    """A 178-point ``Pose`` (XYC) from arrays; points with confidence 0 are masked."""
    xy = np.asarray(xy, dtype=np.float32)
    confidence = np.asarray(confidence, dtype=np.float32)
    if xy.ndim != 3 or xy.shape[1:] != (skeleton.NUM_POINTS, 2) or confidence.shape != xy.shape[:2]:
        raise ValueError(f"expected xy (T, {skeleton.NUM_POINTS}, 2) and confidence (T, {skeleton.NUM_POINTS}), got {xy.shape} and {confidence.shape}")
    header = PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width=int(width), height=int(height), depth=0),
                        components=list(skeleton.pose_header_components()))
    mask = np.repeat((confidence <= 0)[:, None, :, None], 2, axis=-1)
    data = np.ma.masked_array(xy[:, None], mask=mask)
    return Pose(header, NumPyPoseBody(fps=float(fps), data=data, confidence=confidence[:, None]))


def reduce_to_178(pose: Pose) -> Pose:
    """Reduce a MediaPipe Holistic pose to the 178-point set (2D, pixel coordinates).

    A pose already in the 178-point layout is returned in canonical form.
    """
    names = [c.name for c in pose.header.components]
    total = sum(len(c.points) for c in pose.header.components)
    if names[:4] != [c[0] for c in skeleton.COMPONENTS]:
        raise SigngenError(f"not a MediaPipe Holistic pose (components: {', '.join(names)})")
    if total != skeleton.NUM_POINTS:
        if total not in HOLISTIC_SIZES:
            raise SigngenError(f"unexpected number of holistic points: {total} (expected 543, 553, 576, 586 or 178)")
        from pose_format.utils.generic import reduce_holistic

        pose = reduce_holistic(pose)
    got = [p for c in pose.header.components for p in c.points]
    want = [p for _, points, _, _ in skeleton.COMPONENTS for p in points]
    if got != want:
        raise SigngenError("pose points do not match the 178-point holistic layout")
    xy, confidence = pose_arrays(pose)
    dims = pose.header.dimensions
    return pose_from_arrays(xy, confidence, pose.body.fps, dims.width, dims.height)
