"""Hand boxes of a pose (signgen.poses.regions)."""

from __future__ import annotations

import numpy as np

from signgen.poses import skeleton
from signgen.poses.regions import hand_boxes


def test_boxes_hold_every_visible_hand_and_skip_missing_ones(gsg_pose):
    from signgen.poses.holistic import pose_arrays, reduce_to_178

    pose = reduce_to_178(gsg_pose)
    xy, confidence = pose_arrays(pose)
    size = (pose.header.dimensions.width, pose.header.dimensions.height)
    boxes = hand_boxes(xy, confidence, size)
    assert len(boxes) == len(xy)
    for frame_xy, frame_confidence, frame_boxes in zip(xy, confidence, boxes):
        visible = [hand for hand in (skeleton.LEFT_HAND, skeleton.RIGHT_HAND) if (frame_confidence[hand] > 0).all()]
        assert len(frame_boxes) == len(visible)
        for hand, (x0, y0, x1, y1) in zip(visible, frame_boxes):
            points = frame_xy[hand]
            inside = (points[:, 0] >= x0 - 1) & (points[:, 0] <= x1 + 1) & (points[:, 1] >= y0 - 1) & (points[:, 1] <= y1 + 1)
            clipped = (points[:, 0] < 0) | (points[:, 0] > size[0]) | (points[:, 1] < 0) | (points[:, 1] > size[1])
            assert (inside | clipped).all()
            assert 0 <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1]
    assert sum(len(b) for b in boxes) > 0


def test_a_fist_still_gets_a_box_of_a_fair_size():
    xy = np.zeros((1, skeleton.NUM_POINTS, 2))
    confidence = np.zeros((1, skeleton.NUM_POINTS))
    xy[0, 0], xy[0, 1] = (50, 50), (150, 50)  # shoulders 100 px apart
    confidence[0, :2] = 1
    xy[0, skeleton.RIGHT_HAND] = (100, 120)  # all 21 points on one spot
    confidence[0, skeleton.RIGHT_HAND] = 1
    (box,), = hand_boxes(xy, confidence)
    assert box[2] - box[0] >= 35 and box[3] - box[1] >= 35
