"""The coarse image: a photo warped part by part to a target pose (signgen.poses.warp)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from signgen.poses import skeleton
from signgen.poses.warp import warp_to_pose

SHOULDERS = {0: (70.0, 60.0), 1: (130.0, 60.0)}  # left, right: a shoulder width of 60 px
RIGHT_ELBOW, RIGHT_WRIST = 3, 5


def arm_pose(elbow, wrist) -> tuple[np.ndarray, np.ndarray]:
    xy = np.zeros((skeleton.NUM_POINTS, 2))
    confidence = np.zeros(skeleton.NUM_POINTS)
    for index, point in {**SHOULDERS, 2: (60.0, 110.0), 4: (60.0, 150.0), RIGHT_ELBOW: elbow, RIGHT_WRIST: wrist}.items():
        xy[index], confidence[index] = point, 1.0
    return xy, confidence


def test_warping_a_photo_to_its_own_pose_gives_the_photo_back(astronaut, astronaut_pose):
    from signgen.poses.holistic import pose_arrays, reduce_to_178

    xy, confidence = pose_arrays(reduce_to_178(astronaut_pose))
    coarse = warp_to_pose(astronaut, xy[0], confidence[0], xy[0], confidence[0])
    assert np.array_equal(coarse.image, astronaut)
    assert not coarse.uncovered.any()


def test_a_moved_forearm_lands_where_its_keypoints_say():
    image = np.full((200, 200, 3), 200, np.uint8)
    elbow, wrist, raised = (140.0, 110.0), (140.0, 160.0), (180.0, 80.0)
    cv2.line(image, (140, 110), (140, 160), (255, 0, 0), 5)  # a red forearm, thinner than its part
    source_xy, source_confidence = arm_pose(elbow, wrist)
    target_xy, target_confidence = arm_pose(elbow, raised)
    coarse = warp_to_pose(image, source_xy, source_confidence, target_xy, target_confidence)

    red = np.argwhere((coarse.image[..., 0] > 200) & (coarse.image[..., 1] < 80))[:, ::-1]  # (x, y)
    # The upper arm's round end at the elbow keeps the red under it: look past it.
    red = red[np.linalg.norm(red - np.array(elbow), axis=1) > 12]
    direction = (np.array(raised) - elbow) / np.linalg.norm(np.array(raised) - elbow)
    offsets = red - np.array(elbow)
    along, across = offsets @ direction, offsets @ np.array([-direction[1], direction[0]])
    assert len(red) > 100
    assert np.abs(across).max() <= 4  # on the line from the elbow to the raised wrist
    assert along.min() >= -4 and along.max() <= np.linalg.norm(np.array(raised) - elbow) + 4
    # Where the forearm was, nothing is left: those pixels are marked for the model to draw.
    assert coarse.uncovered[140, 140] and coarse.image[140, 140, 1] > 150
    assert not coarse.uncovered[20, 20]


def test_a_part_the_photo_does_not_show_is_marked_uncovered():
    image = np.full((200, 200, 3), 200, np.uint8)
    source_xy, source_confidence = arm_pose((140.0, 110.0), (140.0, 160.0))
    target_xy, target_confidence = source_xy.copy(), source_confidence.copy()
    hand = skeleton.RIGHT_HAND
    target_xy[hand] = np.array([150.0, 170.0]) + np.random.default_rng(0).uniform(-10, 10, (21, 2))
    target_confidence[hand] = 1.0
    coarse = warp_to_pose(image, source_xy, source_confidence, target_xy, target_confidence)
    assert coarse.uncovered[170, 150]
    assert coarse.uncovered.sum() < 40 * 40


def test_a_forearm_seen_end_on_is_not_blown_up_when_it_stretches_out():
    image = np.full((200, 200, 3), 200, np.uint8)
    elbow, wrist, stretched = (140.0, 110.0), (140.0, 115.0), (140.0, 165.0)
    cv2.circle(image, (140, 112), 4, (255, 0, 0), -1)  # the forearm's end, 9 px across
    source_xy, source_confidence = arm_pose(elbow, wrist)
    target_xy, target_confidence = arm_pose(elbow, stretched)
    coarse = warp_to_pose(image, source_xy, source_confidence, target_xy, target_confidence)
    red = np.argwhere((coarse.image[..., 0] > 200) & (coarse.image[..., 1] < 80))
    assert len(red) > 0
    # The upper arm's round end keeps a copy at the elbow; the forearm's copy is centred on
    # the stretched forearm. The exact similarity would scale it 10x (90 px across);
    # capped, it grows at most 1.5x.
    moved = red[red[:, 0] > 120]
    assert len(moved) > 0 and abs(moved[:, 0].mean() - 137.5) < 3
    assert np.ptp(moved[:, 1]) <= 9 * 1.5 + 2 and np.ptp(moved[:, 0]) <= 9 * 1.5 + 2


def test_a_hand_before_its_forearm_moves_with_the_hand_only():
    image = np.full((200, 200, 3), 200, np.uint8)
    source_xy, source_confidence = arm_pose((140.0, 100.0), (140.0, 160.0))
    hand = skeleton.RIGHT_HAND
    fingers = np.random.default_rng(1).uniform(-8, 8, (21, 2))
    source_xy[hand], source_confidence[hand] = np.array([140.0, 140.0]) + fingers, 1.0  # a hand held before the forearm
    cv2.circle(image, (140, 140), 8, (0, 0, 255), -1)  # ... blue
    target_xy, target_confidence = source_xy.copy(), source_confidence.copy()
    target_xy[hand] = np.array([40.0, 40.0]) + fingers  # the hand alone moves away
    coarse = warp_to_pose(image, source_xy, source_confidence, target_xy, target_confidence)
    blue = np.argwhere((coarse.image[..., 2] > 200) & (coarse.image[..., 0] < 80))[:, ::-1]  # (x, y)
    assert len(blue) > 50
    assert np.linalg.norm(blue - [40, 40], axis=1).max() < 14  # no copy left on the forearm
    assert coarse.uncovered[140, 140]  # the forearm the hand hid is for the model to draw


def test_steadying_smooths_the_torso_and_head_points_over_time_and_leaves_arms_and_hands():
    import pytest

    from signgen.errors import SigngenError
    from signgen.pipelines.settings import RenderSettings
    from signgen.poses.warp import FACE_POINTS, steady_torso

    rng = np.random.default_rng(0)
    still, confidence = arm_pose((140.0, 110.0), (140.0, 160.0))
    confidence[FACE_POINTS] = 1.0
    still[FACE_POINTS] = rng.uniform(80, 120, (len(FACE_POINTS), 2))
    xy = np.repeat(still[None], 30, axis=0) + rng.normal(0, 1.5, (30, skeleton.NUM_POINTS, 2))  # a pose estimator's jitter
    confidences = np.repeat(confidence[None], 30, axis=0)
    confidences[10, 1] = 0.0  # the right shoulder lost in one frame: its stored (0, 0) must not pull the others
    steady = steady_torso(xy, confidences, 3.0)

    rigid = np.r_[0, 1, FACE_POINTS]
    seen = confidences[:, rigid] > 0
    assert np.abs(steady - still)[:, rigid][seen].mean() < 0.5 * np.abs(xy - still)[:, rigid][seen].mean()
    assert np.abs(steady[:, 1] - still[1]).max() < 3.0  # no frame pulled towards the lost point's (0, 0)
    assert np.array_equal(steady[10, 1], xy[10, 1])  # an unseen point keeps what it had
    arms_and_hands = np.r_[2:6, skeleton.LEFT_HAND.start:skeleton.RIGHT_HAND.stop]
    assert np.array_equal(steady[:, arms_and_hands], xy[:, arms_and_hands])
    assert np.array_equal(steady_torso(xy, confidences, 0), xy)
    # The width's one check is the render setting's (steady_torso takes checked settings).
    for bad in (-1.0, 100.0, True, float("nan")):
        with pytest.raises(SigngenError, match="render setting steady_torso"):
            RenderSettings(steady_torso=bad)


def test_limb_regions_cover_each_frames_arms_and_hand_and_nothing_far_from_them():
    from signgen.errors import SigngenError
    from signgen.poses.warp import limb_regions

    frames = [arm_pose((140.0, 110.0), (140.0, 160.0)), arm_pose((140.0, 110.0), (180.0, 80.0))]
    xy = np.stack([f[0] for f in frames])
    confidence = np.stack([f[1] for f in frames])
    hand = skeleton.RIGHT_HAND
    xy[1, hand] = np.array([185.0, 70.0]) + np.random.default_rng(0).uniform(-6, 6, (21, 2))
    confidence[1, hand] = 1.0
    regions = limb_regions(xy, confidence, (200, 200))
    assert regions.shape == (2, 200, 200) and regions.dtype == bool
    assert regions[0, 135, 140] and regions[0, 155, 140]  # the hanging forearm (y, x)
    assert not regions[1, 155, 140]  # ... gone once it is raised
    assert regions[1, 80, 180] and regions[1, 70, 185]  # the raised wrist and its hand
    assert not regions[:, 20, 100].any() and not regions[:, 190, 10].any()  # above the head, a far corner
    # No arm points at all: nothing to leave alone.
    assert not limb_regions(np.zeros((1, skeleton.NUM_POINTS, 2)), np.zeros((1, skeleton.NUM_POINTS)), (50, 40)).any()
    with pytest.raises(SigngenError, match="expected xy"):
        limb_regions(xy[0], confidence[0], (200, 200))


def test_with_a_reach_only_the_limb_parts_that_move_are_covered():
    from signgen.poses.warp import limb_regions

    rng = np.random.default_rng(1)
    poses = []
    for t in range(9):
        xy, confidence = arm_pose((140.0, 110.0), (140.0 + 8 * t, 160.0 - 6 * t))  # the right forearm swings up
        xy[[2, 4]] += rng.normal(0, 0.3, (2, 2))  # the left arm rests, jittering a little
        poses.append((xy, confidence))
    xy, confidence = np.stack([p[0] for p in poses]), np.stack([p[1] for p in poses])
    every_part = limb_regions(xy, confidence, (200, 200))
    moving = limb_regions(xy, confidence, (200, 200), reach=2)
    assert every_part[4, 130, 60] and not moving[4, 130, 60]  # the resting left forearm
    assert moving[4, 123, 156]  # the swinging right forearm's middle, (y, x)
    # A hand that comes into view within the reach is moving, even where it is still.
    xy[:, skeleton.RIGHT_HAND] = np.array([150.0, 170.0]) + rng.uniform(-6, 6, (21, 2))
    confidence[3:, skeleton.RIGHT_HAND] = 1.0
    appearing = limb_regions(xy, confidence, (200, 200), reach=2)
    assert appearing[3, 170, 150] and not appearing[1, 170, 150]
