"""Pose maps: 178-point keypoints rasterised into a few image channels at model resolution.

Channels (``POSE_MAP_CHANNELS`` = 4), values in [0, 1]:

0. body limbs (shoulders, arms, torso),
1. left hand,
2. right hand,
3. face contour (MediaPipe's FACEMESH_CONTOURS: eyes, brows, lips, face oval).

Every limb is an anti-aliased line and every body and hand keypoint an anti-aliased disc
slightly wider than the lines (face points only as their contour lines). A point with confidence 0 (or a non-finite coordinate) is missing: neither
it nor any limb that touches it is drawn, so a missing point never appears at (0, 0).

Hands encode finger identity as intensity, so that one channel per hand still tells the
fingers apart: palm 0.4, thumb 0.52, index 0.64, middle 0.76, ring 0.88, little finger 1.0
(``FINGER_INTENSITY``). Body and face are drawn at 1.0. Parts are drawn dimmest first,
so where two fingers cross the brighter one is on top.

Coordinates are continuous pixel coordinates of the source frame (MediaPipe's: pixel
``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``), scaled by ``out_size / frame_size`` per
axis. Drawing uses OpenCV (``cv2``, installed with mediapipe) with 4 bits of sub-pixel
precision; no torch is needed, and a 100-frame sequence at 64 x 52 takes a few tens of
milliseconds.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from signgen.poses import skeleton

POSE_MAP_CHANNELS = 4
BODY_CHANNEL, LEFT_HAND_CHANNEL, RIGHT_HAND_CHANNEL, FACE_CHANNEL = range(POSE_MAP_CHANNELS)

# Palm, then the fingers in MediaPipe's order (thumb, index, middle, ring, pinky).
FINGER_INTENSITY = (0.4, 0.52, 0.64, 0.76, 0.88, 1.0)

_SHIFT = 4  # cv2 fractional bits: coordinates are drawn at 1/16 pixel
_SCALE = 1 << _SHIFT
_COORD_LIMIT = 1 << 20  # keeps far-off points inside int32 after the shift; cv2 clips the rest


def default_thickness(out_size: tuple[int, int]) -> int:
    """Line width in pixels for a pose map of ``out_size`` (H, W): 1 up to about 150 x 150."""
    height, width = out_size
    return max(1, round(math.sqrt(height * width) / 100))


@lru_cache(maxsize=1)
def _layers() -> tuple[tuple[int, int, np.ndarray, np.ndarray], ...]:
    """Drawing layers as (channel, intensity 0-255, limbs (L, 2), points (P,)) in global
    indices, ordered dimmest first within each channel."""
    layers = []
    all_limbs = np.asarray(skeleton.limbs(), dtype=np.int64)

    def part_layer(channel, part, with_points):
        inside = ((all_limbs >= part.start) & (all_limbs < part.stop)).all(axis=1)
        points = np.arange(part.start, part.stop) if with_points else np.arange(0)
        return (channel, 255, all_limbs[inside], points)

    layers.append(part_layer(BODY_CHANNEL, skeleton.BODY, with_points=True))
    # Face contour points are denser than the pixels of a small pose map, and each lies on
    # a contour line: discs would only blur eyes and lips into one blob.
    layers.append(part_layer(FACE_CHANNEL, skeleton.FACE, with_points=False))

    # A hand point's finger is (index - 1) // 4 + 1 (thumb 1-4 -> 1, ..., pinky 17-20 -> 5),
    # the wrist is palm. A limb belongs to the finger of its far end, except the limbs that
    # join the wrist and the finger bases (the palm outline).
    palm_ring = {0, 5, 9, 13, 17}
    finger_of_point = np.array([0] + [(i - 1) // 4 + 1 for i in range(1, 21)])
    hand_limbs = np.asarray(skeleton.HAND_LIMBS, dtype=np.int64)
    finger_of_limb = np.array([0 if a in palm_ring and b in palm_ring else finger_of_point[max(a, b)]
                               for a, b in skeleton.HAND_LIMBS])
    for channel, part in ((LEFT_HAND_CHANNEL, skeleton.LEFT_HAND), (RIGHT_HAND_CHANNEL, skeleton.RIGHT_HAND)):
        for finger, intensity in enumerate(FINGER_INTENSITY):
            layers.append((channel, round(255 * intensity),
                           hand_limbs[finger_of_limb == finger] + part.start,
                           np.flatnonzero(finger_of_point == finger) + part.start))
    return tuple(layers)


def rasterize_pose_map(xy: np.ndarray, confidence: np.ndarray, frame_size: tuple[int, int],
                       out_size: tuple[int, int], thickness: int | None = None) -> np.ndarray:
    """Rasterise 178-point keypoints into pose maps.

    Args:
        xy: (178, 2) or (T, 178, 2) pixel coordinates in the source frame.
        confidence: (178,) or (T, 178); points with confidence 0 are missing.
        frame_size: (width, height) of the source frame, as in a ``.pose`` header.
        out_size: (H, W) of the pose map.
        thickness: line width in output pixels; ``None`` picks one from ``out_size``.

    Returns:
        float32 (4, H, W) for one frame or (T, 4, H, W) for a sequence, in [0, 1].
    """
    xy = np.asarray(xy, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    single = xy.ndim == 2
    if single:
        xy, confidence = xy[None], confidence[None]
    if xy.ndim != 3 or xy.shape[1:] != (skeleton.NUM_POINTS, 2) or confidence.shape != xy.shape[:2]:
        raise ValueError(f"expected xy (T, {skeleton.NUM_POINTS}, 2) and confidence (T, {skeleton.NUM_POINTS}), "
                         f"got {xy.shape} and {confidence.shape}")
    frame_width, frame_height = frame_size
    height, width = (int(v) for v in out_size)
    if frame_width <= 0 or frame_height <= 0 or height <= 0 or width <= 0:
        raise ValueError(f"sizes must be positive, got frame_size={frame_size}, out_size={out_size}")
    thickness = default_thickness((height, width)) if thickness is None else int(thickness)
    if thickness < 1:
        raise ValueError(f"thickness must be at least 1, got {thickness}")

    present = (confidence > 0) & np.isfinite(xy).all(axis=-1)
    scale = np.array([width / frame_width, height / frame_height])
    # cv2 puts integer coordinates at pixel centres, half a pixel in from our pixel corners.
    shown = np.where(present[..., None], xy, 0.0)
    fixed = np.clip((shown * scale - 0.5) * _SCALE, -_COORD_LIMIT, _COORD_LIMIT)
    fixed = np.round(fixed).astype(np.int32)

    maps = np.zeros((xy.shape[0], POSE_MAP_CHANNELS, height, width), dtype=np.uint8)
    for frame_index in range(xy.shape[0]):
        _draw_frame(maps[frame_index], fixed[frame_index], present[frame_index], thickness)
    maps = maps.astype(np.float32) / 255.0
    return maps[0] if single else maps


def _draw_frame(canvas: np.ndarray, points: np.ndarray, present: np.ndarray, thickness: int) -> None:
    import cv2

    for channel, intensity, limbs, point_indices in _layers():
        image = canvas[channel]
        limbs = limbs[present[limbs].all(axis=1)]
        if len(limbs):
            cv2.polylines(image, list(points[limbs]), False, intensity, thickness, cv2.LINE_AA, _SHIFT)
        dots = points[point_indices[present[point_indices]]]
        if len(dots):
            # A zero-length thick line is a round dot: one call draws every disc of the layer.
            segments = np.repeat(dots[:, None], 2, axis=1)
            cv2.polylines(image, list(segments), False, intensity, thickness + 1, cv2.LINE_AA, _SHIFT)


def rasterize_pose(pose, out_size: tuple[int, int], thickness: int | None = None) -> np.ndarray:
    """Pose maps (T, 4, H, W) of a holistic ``Pose`` (reduced to 178 points first),
    scaled from its header's frame size."""
    from signgen.poses.holistic import pose_arrays, reduce_to_178

    pose = reduce_to_178(pose)
    xy, confidence = pose_arrays(pose)
    dims = pose.header.dimensions
    return rasterize_pose_map(xy, confidence, (dims.width, dims.height), out_size, thickness)
