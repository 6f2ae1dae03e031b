"""Image regions named by a pose: the boxes around each visible hand.

Sign language lives in the hands, so every whole-frame figure stands beside one measured
inside these boxes (``signgen.video.metrics.region_ssim``, SignViP's Hand-SSIM).
"""

from __future__ import annotations

import numpy as np

from signgen.poses import skeleton

# A hand's box: the box of its 21 points grown by this share of its larger side on every
# side, and at least this share of the shoulder width across (a fist is still a hand).
HAND_BOX_MARGIN = 0.2
HAND_BOX_MIN_SIDE = 0.35


def hand_boxes(xy: np.ndarray, confidence: np.ndarray, frame_size: tuple[int, int] | None = None) -> list[list[tuple[int, int, int, int]]]:
    """Per frame, the ``(x0, y0, x1, y1)`` pixel boxes (end exclusive) around each hand
    of the pose ``xy`` (T, 178, 2) / ``confidence`` (T, 178) that is visible (every point
    of the hand present), clipped to ``frame_size`` (width, height) when given."""
    xy, confidence = np.asarray(xy, np.float64), np.asarray(confidence)
    boxes = []
    for frame_xy, frame_confidence in zip(xy, confidence):
        shoulders = frame_xy[[0, 1]]
        unit = float(np.linalg.norm(shoulders[0] - shoulders[1])) if (frame_confidence[[0, 1]] > 0).all() else 0.0
        frame_boxes = []
        for hand in (skeleton.LEFT_HAND, skeleton.RIGHT_HAND):
            if not (frame_confidence[hand] > 0).all():
                continue
            low, high = frame_xy[hand].min(0), frame_xy[hand].max(0)
            side = max((high - low).max() * (1 + 2 * HAND_BOX_MARGIN), HAND_BOX_MIN_SIDE * unit, 1.0)
            centre = (low + high) / 2
            x0, y0 = np.floor(centre - side / 2).astype(int)
            x1, y1 = np.ceil(centre + side / 2).astype(int)
            if frame_size is not None:
                width, height = frame_size
                x0, x1 = max(x0, 0), min(x1, width)
                y0, y1 = max(y0, 0), min(y1, height)
            if x1 > x0 and y1 > y0:
                frame_boxes.append((int(x0), int(y0), int(x1), int(y1)))
        boxes.append(frame_boxes)
    return boxes
