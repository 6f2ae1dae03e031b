"""The hand stage of a render (issue #25): crop boxes and crops land where the keypoints say,
pasting leaves everything outside a hand's box untouched, an untrained model or a pose without
hands leaves the frames as they were, the caller's noise fixes the result, and the photo's
hands (or its skin colour) are the appearance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from signgen.errors import SigngenError
from signgen.models.hands import HandModel
from signgen.pipelines import hands as pipeline_hands
from signgen.pipelines.hands import photo_hand_appearance, redraw_hands
from signgen.poses import hands, skeleton

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HEIGHT, WIDTH = 260, 210
TINY = dict(crop_size=16, patch_size=1, block_out_channels=(8, 16), norm_num_groups=4, attention_head_dim=8)


def open_hand(cx: float, cy: float, scale: float = 10.0) -> np.ndarray:
    """21 MediaPipe-ordered points of an open hand, wrist below (cx, cy), fingers fanned up."""
    points = [(cx, cy + scale)]
    for finger, angle in enumerate(np.linspace(-1.0, 0.6, 5)):
        for joint in range(1, 5):
            reach = scale * (0.5 + 0.35 * joint)
            points.append((cx + reach * np.sin(angle), cy + scale - reach * np.cos(angle)))
    return np.asarray(points, np.float64)


def model(randomized: bool, paste: str = "hand") -> HandModel:
    torch.manual_seed(0)
    hand_model = HandModel(**TINY, paste=paste)
    if randomized:
        with torch.no_grad():
            for parameter in hand_model.unet.conv_out.parameters():
                parameter.normal_(0, 0.2)
    return hand_model.eval()


def video(frames: int = 3, seed: int = 0):
    """Random frames (T, 3, H, W) in [-1, 1] and hands: the right hand in every frame, the left
    in the first only."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(frames, 3, HEIGHT, WIDTH, generator=generator) * 2 - 1
    xy = np.zeros((frames, 42, 2))
    seen = np.zeros((frames, 42), bool)
    for t in range(frames):
        xy[t, 21:] = open_hand(60 + 10 * t, 150)
        seen[t, 21:] = True
    xy[0, :21], seen[0, :21] = open_hand(150, 120, 8), True
    return images, xy, seen


def noise(frames: int, seed: int) -> torch.Tensor:
    return torch.randn(frames, 2, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


APPEARANCE = torch.zeros(2, 3, 16, 16)


def box_of(xy21: np.ndarray, hand_model: HandModel) -> tuple[float, float, float]:
    return hands.hand_crop_box(xy21, np.ones(21, bool), (WIDTH, HEIGHT), hand_model.config.margin, hand_model.config.min_side * HEIGHT)


def outside(box, shape) -> np.ndarray:
    """Pixels (H, W) outside a box (every pixel any part of which it covers is inside)."""
    x0, y0, side = box
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    return (columns < np.floor(x0)) | (columns >= np.ceil(x0 + side)) | (rows < np.floor(y0)) | (rows >= np.ceil(y0 + side))


def test_an_untrained_model_leaves_the_frames_unchanged():
    images, xy, seen = video()
    kept = images.clone()
    out = redraw_hands(images, xy, seen, model(randomized=False), APPEARANCE, noise(3, 0), num_steps=3)
    assert torch.equal(out, images) and torch.equal(images, kept)
    moved = redraw_hands(images, xy, seen, model(randomized=True), APPEARANCE, noise(3, 0), num_steps=3)
    assert not torch.equal(moved, images) and torch.equal(images, kept)  # the check above could fail; the input stays


def test_a_crop_lands_where_its_keypoints_say():
    import cv2

    frame = np.full((HEIGHT, WIDTH, 3), 20, np.uint8)
    cv2.circle(frame, (70, 140), 3, (255, 255, 255), -1)  # a blob centred on pixel (70, 140): point (70.5, 140.5)
    xy = open_hand(64, 140, 12)
    box = hands.hand_crop_box(xy, np.ones(21, bool), (WIDTH, HEIGHT), 0.35)
    crop = hands.crop_region(frame, box, 64).astype(np.float64)[..., 0] - 20
    rows, columns = np.mgrid[:64, :64]
    centroid = np.array([(columns * crop).sum(), (rows * crop).sum()]) / crop.sum() + 0.5
    assert np.allclose(centroid, hands.to_crop(np.array([70.5, 140.5]), box, 64), atol=0.25)
    # Every keypoint lies inside its crop, with the margin around the hand.
    in_crop = hands.to_crop(xy, box, 64)
    assert in_crop.min() > 64 * 0.35 / 1.7 - 1 and in_crop.max() < 64 - 64 * 0.35 / 1.7 + 1


def test_a_box_over_the_frame_edge_repeats_the_edge():
    frame = np.repeat(np.linspace(10, 250, HEIGHT)[:, None, None], WIDTH, axis=1).repeat(3, axis=2).astype(np.float32)
    box = hands.hand_crop_box(open_hand(3, 100, 12), np.ones(21, bool), (WIDTH, HEIGHT), 0.35)
    assert box[0] < 0
    crop = hands.crop_region(frame, box, 32)
    assert crop.min() > 5  # no black padding: each row of the crop is its frame row's value
    assert np.allclose(crop[:, 0], crop[:, -1], atol=1e-3)
    assert hands.hand_crop_box(open_hand(-100, 100), np.ones(21, bool), (WIDTH, HEIGHT)) is None  # off the frame


@pytest.mark.parametrize("with_base", [False, True])
def test_pasting_leaves_every_pixel_outside_the_box_untouched(with_base):
    rng = np.random.default_rng(0)
    frame = rng.uniform(-1, 1, (HEIGHT, WIDTH, 3)).astype(np.float32)
    xy = open_hand(100.3, 120.7, 15)
    box = hands.hand_crop_box(xy, np.ones(21, bool), (WIDTH, HEIGHT), 0.35)
    mask = hands.hand_mask(hands.to_crop(xy, box, 64), np.ones(21, bool), 64)
    crop = np.full((64, 64, 3), 5.0, np.float32)
    base = hands.crop_region(frame, box, 64) if with_base else None
    out = hands.paste_crop(frame, crop, box, mask, base)
    away = outside(box, frame.shape)
    assert np.array_equal(out[away], frame[away])
    assert (np.abs(out - frame).sum(-1) > 1.0).sum() > 0.3 * box[2] ** 2  # the hand's hull did change
    column, row = np.floor(xy.mean(axis=0)).astype(int)  # inside the hand: weight ~1
    change = out[row, column] - frame[row, column]
    if with_base:  # the change of the crop, 5 - base, moved back: 5 minus a value in [-1, 1]
        assert (change > 3.9).all() and (change < 6.1).all()
    else:
        assert np.allclose(out[row, column], 5.0, atol=0.1)


def test_redrawn_hands_change_only_their_boxes_and_the_noise_fixes_them():
    images, xy, seen = video()
    hand_model = model(randomized=True)
    first = redraw_hands(images, xy, seen, hand_model, APPEARANCE, noise(3, 7), num_steps=3)
    again = redraw_hands(images, xy, seen, hand_model, APPEARANCE, noise(3, 7), num_steps=3)
    other = redraw_hands(images, xy, seen, hand_model, APPEARANCE, noise(3, 8), num_steps=3)
    assert torch.equal(first, again) and not torch.equal(first, other)
    for t in range(3):
        away = outside(box_of(xy[t, 21:], hand_model), (HEIGHT, WIDTH))
        if t == 0:
            away &= outside(box_of(xy[t, :21], hand_model), (HEIGHT, WIDTH))
        changed = (first[t] != images[t]).any(dim=0).numpy()
        assert changed.any() and not (changed & away).any()
    assert first.min() >= -1 and first.max() <= 1


def test_pasting_the_whole_crop_reaches_past_the_hand_but_never_past_its_box():
    images, xy, seen = video()
    assert torch.equal(redraw_hands(images, xy, seen, model(False, paste="crop"), APPEARANCE, noise(3, 7), num_steps=3), images)
    by_hand = redraw_hands(images, xy, seen, model(True), APPEARANCE, noise(3, 7), num_steps=3)
    by_crop = redraw_hands(images, xy, seen, model(True, paste="crop"), APPEARANCE, noise(3, 7), num_steps=3)
    for t in range(1, 3):  # the right hand alone
        away = outside(box_of(xy[t, 21:], model(False)), (HEIGHT, WIDTH))
        hand, crop = ((out[t] - images[t]).abs().sum(dim=0).numpy() for out in (by_hand, by_crop))
        # The same drawing, weighted 1 over the crop's inside instead of only near the hand.
        assert not (crop[away] > 0).any() and crop.sum() > 1.1 * hand.sum()
    with pytest.raises(SigngenError, match="paste must be one of"):
        HandModel(**TINY, paste="frame")


def ring(cx: float, cy: float, radius: float, count: int = 16) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=-1)


def test_pasting_the_whole_crop_leaves_the_face_outside_the_hand_as_it_was():
    images, xy, seen = video()
    torch.manual_seed(0)
    hand_model = HandModel(**{**TINY, "crop_size": 32}, paste="crop").eval()
    with torch.no_grad():
        hand_model.unet.conv_out.weight.normal_(0, 0.2)
    size, drawn = 32, torch.randn(3, 2, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    boxes = [box_of(xy[t, 21:], hand_model) for t in range(3)]
    face = np.stack([ring(x0 + 0.75 * side, y0 + 0.75 * side, 0.3 * side) for x0, y0, side in boxes])  # the crop's lower right
    frames = images.permute(0, 2, 3, 1).numpy().copy()
    plain, kept = (pipeline_hands.gather_crops(frames, xy, seen, hand_model, None, given) for given in (None, face))
    for index, (t, hand, box) in enumerate(kept.where):
        if hand == 0:  # the left hand, far from the face: pasted as before
            assert np.array_equal(kept.masks[index], plain.masks[index])
            continue
        in_face, hull = pipeline_hands.kept_face(face[t], box, size), kept.hulls[index]
        # Over the face, outside the hand, next to nothing is pasted; away from the face, as before.
        only_face, no_face = (in_face > 0.99) & (hull < 0.05), in_face == 0
        assert only_face.sum() >= 10 and no_face.sum() >= 300
        assert plain.masks[index][only_face].min() > 0.5 and kept.masks[index][only_face].max() < 0.05
        assert np.array_equal(kept.masks[index][no_face], plain.masks[index][no_face])
    appearance = torch.zeros(2, 3, size, size)
    whole = redraw_hands(images, xy, seen, hand_model, appearance, drawn, 3)
    with_face = redraw_hands(images, xy, seen, hand_model, appearance, drawn, 3, face)
    assert not torch.equal(whole, with_face) and torch.equal(whole[0, :, :100], with_face[0, :, :100])  # the left hand's box
    # Fewer than 8 face points seen: nothing kept; a face of another shape: one line.
    few = np.full_like(face, np.nan)
    few[:, :7] = face[:, :7]
    assert torch.equal(redraw_hands(images, xy, seen, hand_model, appearance, drawn, 3, few), whole)
    with pytest.raises(SigngenError, match=r"face_xy must be \(3, K, 2\)"):
        redraw_hands(images, xy, seen, hand_model, appearance, drawn, 3, face[:2])


def test_a_pose_without_hands_leaves_the_frames_unchanged():
    images, xy, seen = video()
    hand_model = model(randomized=True)
    none = redraw_hands(images, xy, np.zeros_like(seen), hand_model, APPEARANCE, noise(3, 0))
    assert torch.equal(none, images)
    partly = seen.copy()
    partly[:, [0, 21]] = False  # every hand misses its wrist: not redrawn
    assert torch.equal(redraw_hands(images, xy, partly, hand_model, APPEARANCE, noise(3, 0)), images)


def test_inputs_of_the_wrong_shape_are_one_line():
    images, xy, seen = video()
    with pytest.raises(SigngenError, match=r"noise must be \(3, 2, 3, 16, 16\)") as error:
        redraw_hands(images, xy, seen, model(False), APPEARANCE, torch.zeros(3, 2, 3, 64, 64))
    assert "\n" not in str(error.value)
    with pytest.raises(SigngenError, match=r"hand_xy must be \(3, 42, 2 or 3\)"):
        redraw_hands(images, xy[:, :21], seen, model(False), APPEARANCE, noise(3, 0))


def photo_pose(face_centre=(100.0, 60.0), right_hand=None) -> tuple[np.ndarray, np.ndarray]:
    xy = np.zeros((skeleton.NUM_POINTS, 2))
    confidence = np.zeros(skeleton.NUM_POINTS)
    angles = np.linspace(0, 2 * np.pi, skeleton.FACE.stop - skeleton.FACE.start, endpoint=False)
    xy[skeleton.FACE] = np.stack([face_centre[0] + 20 * np.cos(angles), face_centre[1] + 25 * np.sin(angles)], axis=1)
    confidence[skeleton.FACE] = 1
    if right_hand is not None:
        xy[skeleton.RIGHT_HAND], confidence[skeleton.RIGHT_HAND] = right_hand, 1
    return xy, confidence


def test_the_photo_gives_its_hands_or_its_skin_colour():
    import cv2

    photo = np.full((200, 200, 3), 30, np.uint8)
    cv2.ellipse(photo, (100, 60), (22, 27), 0, 0, 360, (200, 150, 120), -1)  # the face's skin
    cv2.circle(photo, (60, 150), 3, (0, 0, 255), -1)  # a blue mark in the right hand
    xy, confidence = photo_pose()
    skin = photo_hand_appearance(photo, xy, confidence)
    assert skin.shape == (2, 3, 64, 64)
    expected = torch.tensor([200, 150, 120]) / 127.5 - 1
    assert torch.allclose(skin.mean(dim=(2, 3)), expected.expand(2, 3), atol=1e-6)

    xy, confidence = photo_pose(right_hand=open_hand(56, 150, 12))
    crops = photo_hand_appearance(photo, xy, confidence)
    blue = crops[1, 2] - crops[1, 0]  # blue minus red: the mark inside the right hand
    assert blue.max() > 0.5 and skin.sub(crops).abs().amax() > 0.5
    assert torch.equal(crops[0], crops[1].flip(-1))  # the unseen left hand: the right one mirrored


def test_a_hand_the_photo_cuts_off_gives_way_to_the_skin_colour():
    """synthsign-00303's photo: the pose puts the raised right hand beyond the left edge, where
    its crop would be sleeve and background; a thumb past the edge keeps the hand."""
    import cv2

    photo = np.full((200, 200, 3), 30, np.uint8)
    cv2.ellipse(photo, (100, 60), (22, 27), 0, 0, 360, (200, 150, 120), -1)
    face_only = photo_hand_appearance(photo, *photo_pose())
    beyond_edge = open_hand(-14, 150, 12)  # every point left of the photo, its grown box not
    assert (beyond_edge[:, 0] < 0).all() and hands.hand_crop_box(beyond_edge, np.ones(21, bool), (200, 200)) is not None
    outside = photo_hand_appearance(photo, *photo_pose(right_hand=beyond_edge))
    assert torch.equal(outside, face_only)

    thumb_out = open_hand(12, 150, 12)
    assert 0 < (thumb_out[:, 0] < 0).sum() <= 5  # the thumb and the index tip: under a quarter
    crops = photo_hand_appearance(photo, *photo_pose(right_hand=thumb_out))
    assert torch.allclose(crops[1], torch.tensor(30 / 127.5 - 1))  # the photo's own (dark) crop


def test_a_cut_off_hand_borrows_the_other_hand_the_photo_shows():
    import cv2

    photo = np.full((200, 200, 3), 30, np.uint8)
    cv2.circle(photo, (150, 150), 3, (0, 0, 255), -1)  # a blue mark in the left hand
    xy, confidence = photo_pose(right_hand=open_hand(-14, 150, 12))
    xy[skeleton.LEFT_HAND], confidence[skeleton.LEFT_HAND] = open_hand(146, 150, 12), 1
    crops = photo_hand_appearance(photo, xy, confidence)
    assert (crops[0, 2] - crops[0, 0]).max() > 0.5  # the left hand's own crop, with its mark
    assert torch.equal(crops[1], crops[0].flip(-1))


def test_a_nearer_finger_covers_a_farther_one_where_they_cross():
    xy = np.full((21, 2), 2.0)
    seen = np.zeros(21, bool)
    xy[5:9] = [(4, 16.5), (12, 16.5), (20, 16.5), (28, 16.5)]  # the index finger, across pixel row 16
    xy[9:13] = [(16.5, 4), (16.5, 12), (16.5, 20), (16.5, 28)]  # the middle finger, down pixel column 16
    seen[5:13] = True
    z = np.zeros(21)
    z[9:13] = -1.0  # the middle finger nearer
    near_middle = hands.hand_keypoint_map(xy, seen, 32, z)
    z[9:13], z[5:9] = 0.0, -1.0
    near_index = hands.hand_keypoint_map(xy, seen, 32, z)
    index, middle = hands.HAND_PARTS.index("index"), hands.HAND_PARTS.index("middle")
    crossing = (16, 16)  # (row, column) of the pixel where they cross
    assert near_middle[middle][crossing] > 0.9 and near_middle[index][crossing] < 0.1
    assert near_index[index][crossing] > 0.9 and near_index[middle][crossing] < 0.1
    assert near_middle[index][16, 6] > 0.9  # away from the crossing both are drawn


def test_without_warp_hands_each_hand_the_pose_shows_is_left_to_the_models():
    from signgen.pipelines.signer import hands_uncovered
    from signgen.poses import skeleton
    from signgen.poses.warp import CoarseImage

    xy, confidence = np.zeros((skeleton.NUM_POINTS, 2)), np.zeros(skeleton.NUM_POINTS)
    xy[:2], confidence[:2] = [[60, 60], [140, 60]], 1  # shoulders: the hull grows with their width
    xy[skeleton.RIGHT_HAND], confidence[skeleton.RIGHT_HAND] = open_hand(60, 150), 1
    xy[skeleton.LEFT_HAND] = open_hand(150, 150)  # not seen
    image = np.full((HEIGHT, WIDTH, 3), 7, np.uint8)
    photo_hole = np.zeros((HEIGHT, WIDTH), bool)
    photo_hole[:5] = True
    coarse = hands_uncovered(lambda *_: CoarseImage(image=image, uncovered=photo_hole), xy, confidence)
    assert np.array_equal(coarse.image, image) and coarse.uncovered[:5].all()
    right = np.round(xy[skeleton.RIGHT_HAND]).astype(int)
    assert coarse.uncovered[right[:, 1], right[:, 0]].all()
    left = np.round(xy[skeleton.LEFT_HAND]).astype(int)
    assert not coarse.uncovered[left[:, 1], left[:, 0]].any()
    assert coarse.uncovered.mean() < 0.2


def test_a_model_that_draws_the_hand_itself_starts_from_the_crop_without_it():
    crop = np.full((32, 32, 3), 40, np.uint8)
    crop[12:20, 12:20] = 250  # the hand
    weight = np.zeros((32, 32), np.float32)
    weight[10:22, 10:22] = 1.0
    hidden = hands.hide_hand(crop, weight)
    assert np.array_equal(hidden[weight == 0], crop[weight == 0]) and np.abs(hidden[12:20, 12:20].astype(int) - 40).max() < 20
    images, xy, seen = video()
    untrained = redraw_hands(images, xy, seen, HandModel(**TINY, hide_hand=True).eval(), APPEARANCE, noise(3, 0), num_steps=2)
    for t in range(3):
        away = outside(box_of(xy[t, 21:], model(False)), (HEIGHT, WIDTH))
        if t == 0:
            away &= outside(box_of(xy[t, :21], model(False)), (HEIGHT, WIDTH))
        changed = (untrained[t] != images[t]).any(dim=0).numpy()
        assert changed.any() and not (changed & away).any()  # the hand painted over, nothing outside its box


def test_a_crop_drawn_in_another_colour_keeps_the_frames_colour_around_the_hand(monkeypatch):
    # A model whose every crop comes out 0.3 lighter than its base: the square it would paste
    # shows; matched to its surroundings, only the hand keeps the change.
    hand_model = HandModel(**dict(TINY, crop_size=32), hide_hand=True, paste="crop").eval()
    with torch.no_grad():
        hand_model.unet.conv_out.bias.fill_(0.3)
    images = torch.full((1, 3, HEIGHT, WIDTH), -0.2)
    images[0, 0] = torch.linspace(-0.5, 0.5, WIDTH)  # a gradient the hand stage has to continue
    xy, seen = np.zeros((1, 42, 2)), np.zeros((1, 42), bool)
    xy[0, 21:], seen[0, 21:] = open_hand(100, 150, 6), True  # small in its crop (the crop's least side)
    box = box_of(xy[0, 21:], hand_model)
    appearance, drawn_from = torch.zeros(2, 3, 32, 32), torch.randn(1, 2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    matched = redraw_hands(images, xy, seen, hand_model, appearance, drawn_from, num_steps=1)
    with monkeypatch.context() as unmatched:
        unmatched.setattr(pipeline_hands, "matched_to_surroundings", lambda drawn, base, hull: drawn)
        square = redraw_hands(images, xy, seen, hand_model, appearance, drawn_from, num_steps=1)
    size = hand_model.crop_size
    in_crop = hands.to_crop(xy[0, 21:], box, size)
    hull = hands.hand_mask(in_crop, np.ones(21, bool), size)
    window = hands.edge_window(size)
    crop = lambda frames: hands.crop_region(frames[0].permute(1, 2, 0).numpy(), box, size)  # noqa: E731
    before, lighter, kept = crop(images), crop(square), crop(matched)
    around, hand = (hull < 0.01) & (window == 1), hull > 0.999
    assert around.sum() > 100 and hand.sum() > 20
    assert np.abs(lighter - before)[around].mean() > 0.25  # the square
    assert np.abs(kept - before)[around].max() < 0.02  # gone around the hand
    assert np.abs(kept - lighter)[hand].max() < 0.01  # the hand as drawn
    # A model that corrects its base adds its change as it is: nothing to match.
    corrector = HandModel(**dict(TINY, crop_size=32), hide_hand=False, paste="crop").eval()
    corrector.load_state_dict(hand_model.state_dict())
    corrected = redraw_hands(images, xy, seen, corrector, appearance, drawn_from, num_steps=1)
    with monkeypatch.context() as unmatched:
        unmatched.setattr(pipeline_hands, "matched_to_surroundings", lambda drawn, base, hull: drawn + 1.0)
        assert torch.equal(redraw_hands(images, xy, seen, corrector, appearance, drawn_from, num_steps=1), corrected)
