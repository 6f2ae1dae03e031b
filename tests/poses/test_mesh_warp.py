"""The coarse image from one mesh of the photo's person (signgen.poses.mesh_warp), on drawn
scenes with their masks given: fast, and what each pixel should be is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.mesh_warp import MeshWarp, mesh_warp_to_pose, person_mask

SIZE = (230, 240)  # (H, W)
BACKGROUND, TORSO, ARM, BLUE, TIP, SKIN = (150, 150, 150), (40, 90, 200), (220, 40, 40), (30, 30, 230), (250, 230, 0), (230, 180, 140)
SHOULDERS = ((80.0, 60.0), (140.0, 60.0))  # left, right: a shoulder width of 60 px
RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST = 1, 3, 5
HAND = np.arange(skeleton.RIGHT_HAND.start, skeleton.RIGHT_HAND.stop)
ARM_WIDTH = 14
# A hand pointing down from its wrist (x, y offsets): palm, then four fingers and a thumb.
HAND_SHAPE = np.array([[0, 0], [-6, 4], [-8, 9], [-9, 13], [-10, 17], [-4, 12], [-4, 18], [-4, 22], [-4, 26],
                       [0, 12], [0, 19], [0, 24], [0, 28], [4, 12], [4, 18], [4, 22], [4, 25], [7, 11], [7, 16], [7, 19],
                       [7, 22]], float)


def rotation(degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def scene(elbow, wrist, hand_turn: float | None = 0.0, arm_width: int = ARM_WIDTH):
    """A drawn signer: torso, head, a left arm hanging, the right arm (``arm_width`` px)
    from its shoulder to ``elbow`` and ``wrist``, and (``hand_turn`` degrees from pointing
    down; None: no hand) a hand at the wrist with a yellow index fingertip. Returns image,
    mask, xy, confidence."""
    image = np.full((*SIZE, 3), BACKGROUND, np.uint8)
    xy, confidence = np.zeros((skeleton.NUM_POINTS, 2)), np.zeros(skeleton.NUM_POINTS)
    points = {0: SHOULDERS[0], 1: SHOULDERS[1], 2: (70.0, 115.0), 4: (70.0, 165.0), RIGHT_ELBOW: elbow, RIGHT_WRIST: wrist}
    for index, point in points.items():
        xy[index], confidence[index] = point, 1.0
    face = np.arange(skeleton.FACE.start, skeleton.FACE.stop)
    angles = np.linspace(0, 2 * np.pi, len(face), endpoint=False)
    xy[face], confidence[face] = np.stack([110 + 13 * np.cos(angles), 30 + 13 * np.sin(angles)], 1), 1.0
    cv2.rectangle(image, (78, 55), (142, SIZE[0] - 1), TORSO, -1)
    cv2.circle(image, (110, 30), 16, SKIN, -1)
    cv2.line(image, (80, 60), (70, 115), ARM, ARM_WIDTH)
    cv2.line(image, (70, 115), (70, 165), ARM, ARM_WIDTH)
    for a, b in ((SHOULDERS[1], elbow), (elbow, wrist)):
        cv2.line(image, np.round(a).astype(int), np.round(b).astype(int), ARM, arm_width)
    if hand_turn is not None:
        xy[HAND], confidence[HAND] = np.array(wrist) + HAND_SHAPE @ rotation(hand_turn).T, 1.0
        draw_hand(image, xy[HAND])
    mask = np.any(image != BACKGROUND, axis=-1)
    return image, mask, xy, confidence


def draw_hand(image, hand):
    cv2.fillConvexPoly(image, cv2.convexHull(np.round(hand[[0, 1, 5, 9, 13, 17]]).astype(np.int32)), BLUE)
    for finger in ([1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20]):
        cv2.polylines(image, [np.round(hand[finger]).astype(np.int32)], False, BLUE, 3)
    cv2.circle(image, np.round(hand[8]).astype(int), 2, TIP, -1)


def near(image, colour, tolerance=40):
    return (np.abs(image.astype(int) - colour) <= tolerance).all(-1)


def line_samples(a, b, step=1.0):
    a, b = np.asarray(a, float), np.asarray(b, float)
    count = int(np.ceil(np.linalg.norm(b - a) / step)) + 1
    return np.round(a + (b - a) * np.linspace(0, 1, count)[:, None]).astype(int)


def test_warping_a_photo_to_its_own_pose_gives_the_photo_back():
    image, mask, xy, confidence = scene((165.0, 110.0), (170.0, 160.0))
    coarse = mesh_warp_to_pose(image, xy, confidence, xy, confidence, mask=mask)
    assert np.array_equal(coarse.image, image)
    assert not coarse.uncovered.any()


def test_a_real_photo_comes_back_from_its_own_pose_with_the_pose_regions_as_mask(astronaut, astronaut_pose):
    from signgen.poses.holistic import pose_arrays, reduce_to_178

    xy, confidence = pose_arrays(reduce_to_178(astronaut_pose))
    nobody = lambda photo: np.zeros(photo.shape[:2], np.float32)  # noqa: E731  (the segmenter finds no one)
    mesh = MeshWarp(astronaut, xy[0], confidence[0], segmenter=nobody)
    assert mesh.mask.sum() > 0.05 * mesh.mask.size and len(mesh.triangles) > 100
    coarse = mesh.warp(xy[0], confidence[0])
    assert np.array_equal(coarse.image, astronaut) and not coarse.uncovered.any()


@pytest.mark.parametrize("bend", [45.0, 90.0, 135.0])
def test_a_bent_elbow_keeps_the_arm_in_one_piece(bend):
    from signgen.poses.warp import warp_to_pose

    elbow, wrist = np.array([165.0, 115.0]), np.array([165.0, 170.0])
    # A sleeve wider than signgen.poses.warp's limb parts, as real sleeves often are.
    image, mask, xy, confidence = scene(elbow, wrist, hand_turn=None, arm_width=22)
    bent = elbow + (wrist - elbow) @ rotation(-bend).T  # the forearm swung outwards and up
    drawn, _, target_xy, target_confidence = scene(elbow, bent, hand_turn=None, arm_width=22)
    coarse = MeshWarp(image, xy, confidence, mask=mask).warp(target_xy, target_confidence)

    along = np.concatenate([line_samples(SHOULDERS[1], elbow), line_samples(elbow, bent)])  # (x, y) pixels
    assert not coarse.uncovered[along[:, 1], along[:, 0]].any()
    assert near(coarse.image[along[:, 1], along[:, 0]], ARM).all()
    red = near(coarse.image, ARM).astype(np.uint8)
    _, components = cv2.connectedComponents(red)
    assert len({components[y, x] for x, y in along}) == 1
    # The arm as drawn bent, within 30 px of the elbow: the mesh fills nearly all of it (its
    # outer corner is a little squarer than the drawing's round one).
    ys, xs = np.nonzero(near(drawn, ARM) & (np.hypot(*np.meshgrid(np.arange(SIZE[1]) - elbow[0],
                                                                   np.arange(SIZE[0]) - elbow[1])) < 30))
    assert (~near(coarse.image[ys, xs], ARM)).mean() < 0.12
    # ... and nothing of the sleeve is left behind; the part-wise warp, whose parts are
    # narrower than this sleeve, leaves its edges hanging where the forearm was.
    left_behind = near(coarse.image, ARM) & ~near(drawn, ARM)
    parts = warp_to_pose(image, xy, confidence, target_xy, target_confidence)
    assert left_behind.sum() < 30 and (near(parts.image, ARM) & ~near(drawn, ARM)).sum() > 500
    # Where the forearm hung, nothing of it is left: the model draws what was behind it.
    hung = np.round(elbow + 0.7 * (wrist - elbow)).astype(int)
    assert coarse.uncovered[hung[1], hung[0]] and not near(coarse.image[hung[1], hung[0]], ARM, 20)


def test_a_moved_hand_lands_where_its_keypoints_say():
    image, mask, xy, confidence = scene((165.0, 110.0), (165.0, 160.0))
    raised_elbow, raised_wrist = (180.0, 100.0), (200.0, 55.0)
    target, _, target_xy, target_confidence = scene(raised_elbow, raised_wrist, hand_turn=160.0)
    coarse = MeshWarp(image, xy, confidence, mask=mask).warp(target_xy, target_confidence)

    hand = target_xy[HAND]
    tip = np.argwhere(near(coarse.image, TIP, 60))[:, ::-1]  # (x, y)
    assert len(tip) >= 3 and np.linalg.norm(tip.mean(0) - hand[8]) < 3.0
    blue = np.argwhere(near(coarse.image, BLUE))[:, ::-1]
    drawn = np.argwhere(near(target, BLUE))[:, ::-1]  # the hand drawn at the target pose
    assert len(blue) > 0.7 * len(drawn) and np.linalg.norm(blue.mean(0) - drawn.mean(0)) < 3.0
    hull = cv2.convexHull(hand.astype(np.float32))
    assert all(cv2.pointPolygonTest(hull, (float(x), float(y)), True) > -4 for x, y in blue)
    # Where the hand was, no copy is left.
    assert not near(coarse.image[150:200, 150:185], BLUE).any()


def test_a_hand_turned_over_is_moved_whole_mirrored_and_left_for_the_model_to_redraw():
    image, mask, xy, confidence = scene((165.0, 110.0), (165.0, 160.0))
    target_xy = xy.copy()
    target_xy[HAND] = np.array([120.0, 150.0]) + HAND_SHAPE * [-1, 1]  # its other face: thumb and little finger swap sides
    coarse = MeshWarp(image, xy, confidence, mask=mask).warp(target_xy, confidence)
    tip = np.argwhere(near(coarse.image, TIP, 60))[:, ::-1]
    assert len(tip) >= 3 and np.linalg.norm(tip.mean(0) - target_xy[HAND][8]) < 3.0
    blue = np.argwhere(near(coarse.image, BLUE))[:, ::-1]
    hull = cv2.convexHull(target_xy[HAND].astype(np.float32))
    near_hand = np.array([cv2.pointPolygonTest(hull, (float(x), float(y)), True) > -10 for x, y in blue])
    assert (~near_hand).sum() <= 3  # where the photo's hand lay, the forearm's spread texture took a few of its edge pixels
    blue = blue[near_hand]
    assert len(blue) > 0.7 * near(image, BLUE).sum()  # whole: no fold squeezes it
    assert coarse.uncovered[blue[:, 1], blue[:, 0]].all()  # the photo shows only its other face


def test_a_limb_the_hand_hid_in_the_photo_stays_whole_when_the_hand_moves_away():
    elbow, wrist = (165.0, 110.0), (165.0, 175.0)
    image, mask, xy, confidence = scene(elbow, wrist, hand_turn=180.0)  # the hand folded up over the forearm
    _, _, target_xy, target_confidence = scene(elbow, wrist, hand_turn=0.0)  # ... now hanging down from the wrist
    coarse = MeshWarp(image, xy, confidence, mask=mask).warp(target_xy, target_confidence)
    forearm = line_samples((165.0, 115.0), (165.0, 170.0))
    colours = coarse.image[forearm[:, 1], forearm[:, 0]].astype(int)
    assert (colours[:, 0] > 150).all() and (colours[:, 2] < 110).all()  # red all along: the arm's, spread over what was hidden
    hidden = line_samples((165.0, 150.0), (165.0, 165.0))  # ... where the hand lay in the photo
    assert not coarse.uncovered[hidden[:, 1], hidden[:, 0]].any()  # shown as spread: the model's redrawing smeared it


def test_where_an_arm_left_the_background_the_warp_says_so_and_shows_the_photos_background():
    elbow, wrist = (165.0, 115.0), (165.0, 170.0)  # the right arm hanging beside the torso
    image, mask, xy, confidence = scene(elbow, wrist, hand_turn=None)
    raised = (200.0, 40.0)  # ... the forearm swung up and out
    _, _, target_xy, target_confidence = scene(elbow, raised, hand_turn=None)
    mesh = MeshWarp(image, xy, confidence, mask=mask)
    assert not mesh.warp(xy, confidence).background.any()  # its own pose: nothing left
    coarse = mesh.warp(target_xy, target_confidence)
    assert not (coarse.background & ~coarse.uncovered).any()
    hung = line_samples((165.0, 135.0), (165.0, 160.0))  # where the forearm hung, off the torso
    assert coarse.background[hung[:, 1], hung[:, 0]].all()
    assert near(coarse.image[hung[:, 1], hung[:, 0]], BACKGROUND, 10).all()
    # Just below the elbow, where the forearm hung, the target's arm is still near: the
    # model's to draw (a limb the mesh reaches narrower than drawn), not background.
    assert coarse.uncovered[116:121, 165].all() and not coarse.background[116:121, 165].any()


def test_missing_keypoints_are_not_drawn_and_their_places_are_uncovered():
    elbow, wrist = (165.0, 110.0), (165.0, 160.0)
    image, mask, xy, confidence = scene(elbow, wrist)
    mesh = MeshWarp(image, xy, confidence, mask=mask)
    no_hand = confidence.copy()
    no_hand[HAND] = 0.0
    coarse = mesh.warp(xy, no_hand)
    # (A pixel or two of the hand stays with the forearm's end at the wrist.)
    assert near(coarse.image, BLUE).sum() < 0.02 * near(image, BLUE).sum() and coarse.uncovered[175, 165]
    assert near(coarse.image[130, 165], ARM) and not coarse.uncovered[130, 165]  # the forearm is still there

    no_elbow = confidence.copy()
    no_elbow[RIGHT_ELBOW] = 0.0
    coarse = mesh.warp(xy, no_elbow)
    assert coarse.uncovered[135, 165] and not coarse.uncovered[100, 110]  # the arm goes, the torso stays

    coarse = mesh.warp(np.zeros_like(xy), np.zeros_like(confidence))  # a frame without a pose
    assert coarse.image.shape == image.shape and coarse.uncovered[mask].all()

    # A hand the photo does not show but the target does: for the model to draw.
    handless = MeshWarp(image, xy, no_hand, mask=mask)
    moved = xy.copy()
    moved[HAND] += (-40.0, -60.0)
    assert handless.warp(moved, confidence).uncovered[int(moved[HAND, 1].mean()), int(moved[HAND, 0].mean())]

    # A photo without a pose: nothing can be moved; what the target shows is for the model.
    still = MeshWarp(image, np.zeros_like(xy), np.zeros_like(confidence), mask=mask)
    coarse = still.warp(np.zeros_like(xy), np.zeros_like(confidence))
    assert np.array_equal(coarse.image, image) and not coarse.uncovered.any()
    assert still.warp(xy, confidence).uncovered[[100, 135], [110, 165]].all()  # the torso, the forearm


def test_with_depth_the_nearer_arm_is_drawn_over_the_other():
    image, mask, xy, confidence = scene((165.0, 110.0), (165.0, 160.0), hand_turn=None)
    image[mask & (np.arange(SIZE[1]) < 78)] = (40, 200, 40)  # the left arm green
    crossed = xy.copy()
    crossed[3], crossed[5] = (165.0, 110.0), (90.0, 140.0)  # the right forearm across the body
    crossed[2], crossed[4] = (70.0, 115.0), (140.0, 145.0)  # ... and the left one the other way
    mesh = MeshWarp(image, xy, confidence, mask=mask)
    z = np.zeros(skeleton.NUM_POINTS)
    crossing = (110, 132)  # (x, y) where both forearms pass
    z[[0, 2, 4]] = -1.0  # the left arm nearer
    assert near(mesh.warp(crossed, confidence, target_z=z).image[crossing[1], crossing[0]], (40, 200, 40))
    z[[0, 2, 4]] = 1.0
    assert near(mesh.warp(crossed, confidence, target_z=z).image[crossing[1], crossing[0]], ARM)


def test_the_mask_is_the_segmenters_person_near_the_pose_else_the_pose_regions():
    image, mask, xy, confidence = scene((165.0, 110.0), (165.0, 160.0))
    everything = person_mask(image, xy, confidence, segmenter=lambda photo: np.ones(photo.shape[:2], np.float32))
    assert everything[100, 110] and not everything[5, 5] and not everything[200, 230]  # a far corner is not the signer
    drawn = person_mask(image, xy, confidence, segmenter=lambda photo: mask.astype(np.float32))
    assert (drawn == mask).mean() > 0.99
    nobody = person_mask(image, xy, confidence, segmenter=lambda photo: np.zeros(photo.shape[:2], np.float32))
    assert nobody[100, 110] and nobody[135, 165] and not nobody[5, 5]


def test_bad_inputs_are_one_line_errors():
    image, mask, xy, confidence = scene((165.0, 110.0), (165.0, 160.0))
    mesh = MeshWarp(image, xy, confidence, mask=mask)
    nan_xy = xy.copy()
    nan_xy[RIGHT_WRIST] = np.nan
    unseen_nan = xy.copy()
    unseen_nan[skeleton.LEFT_HAND] = np.nan  # unseen points may hold anything
    mesh.warp(unseen_nan, confidence)
    cases = [
        (lambda: MeshWarp(image[..., 0], xy, confidence, mask=mask), "photo must be uint8"),
        (lambda: MeshWarp(image.astype(np.float32), xy, confidence, mask=mask), "photo must be uint8"),
        (lambda: MeshWarp(image, xy[:100], confidence, mask=mask), "expected source xy"),
        (lambda: MeshWarp(image, xy, confidence, mask=mask[:10]), "person mask must be"),
        (lambda: MeshWarp(image, nan_xy, confidence, mask=mask), "non-finite"),
        (lambda: MeshWarp(image, xy, confidence, segmenter=lambda photo: np.ones((5, 5))), "segmenter returned"),
        (lambda: mesh.warp(xy, confidence[:-1]), "expected target xy"),
        (lambda: mesh.warp(nan_xy, confidence), "non-finite"),
        (lambda: mesh.warp(xy, np.full_like(confidence, np.nan)), "confidences must be finite"),
        (lambda: mesh.warp(xy, confidence, target_z=np.zeros(3)), "expected target_z"),
    ]
    for call, message in cases:
        with pytest.raises(SigngenError, match=message) as error:
            call()
        assert "\n" not in str(error.value)
