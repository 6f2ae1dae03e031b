"""The finished frames' hands sharpened (``hand_sharpen``): only inside each hand's box."""

from __future__ import annotations

import numpy as np

from signgen.pipelines.postprocess import sharpened_hands
from signgen.poses import skeleton

HEIGHT, WIDTH = 260, 210


def frames_with_an_edge(count: int = 2) -> np.ndarray:
    """Frames whose left half is dark and right half light: one vertical edge at column 105."""
    frames = np.full((count, HEIGHT, WIDTH, 3), 60, np.uint8)
    frames[:, :, WIDTH // 2 :] = 180
    return frames


def right_hand_on_the_edge(count: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A right hand of 21 points, 20 x 20 pixels, centred on the edge at row 100."""
    xy, confidence = np.zeros((count, skeleton.NUM_POINTS, 2)), np.zeros((count, skeleton.NUM_POINTS))
    grid = np.stack(np.meshgrid(np.linspace(-10, 10, 7), np.linspace(-10, 10, 3)), -1).reshape(-1, 2)
    xy[:, skeleton.RIGHT_HAND] = grid + (WIDTH // 2, 100)
    confidence[:, skeleton.RIGHT_HAND] = 1.0
    return xy, confidence


def test_the_edge_steepens_inside_the_hands_box_and_nothing_changes_outside_it():
    frames = frames_with_an_edge()
    xy, confidence = right_hand_on_the_edge()
    sharp = sharpened_hands(frames, xy, confidence, 1.0)
    changed = (sharp != frames).any(axis=(0, 3))
    rows, columns = np.nonzero(changed)
    # The box: 1.35 x 20 pixels plus 4 either side of the hand's centre (105, 100): 17.5 pixels.
    assert rows.min() >= 100 - 18 and rows.max() <= 100 + 18 and columns.min() >= 105 - 18 and columns.max() <= 105 + 18
    assert changed[90:110, 104].all() and changed[90:110, 105].all()  # along the edge, inside the box
    assert (sharp[:, 90:110, 104] < 60).all() and (sharp[:, 90:110, 105] > 180).all()  # darker before it, lighter after
    assert np.array_equal(sharp[:, 90:110, 90:100], frames[:, 90:110, 90:100])  # flat colour stays
    assert np.array_equal(sharp[:, 150:, 104:106], frames[:, 150:, 104:106])  # the same edge, below the box
    assert np.array_equal(frames, frames_with_an_edge())  # the input stays as it was


def test_no_amount_no_hands_and_unseen_points_change_nothing_more():
    frames = frames_with_an_edge()
    xy, confidence = right_hand_on_the_edge()
    assert sharpened_hands(frames, xy, confidence, 0.0) is frames
    assert np.array_equal(sharpened_hands(frames, xy, np.zeros_like(confidence), 1.0), frames)
    # A point the pose does not see (at the origin) does not stretch the box.
    hidden = confidence.copy()
    xy[:, skeleton.RIGHT_HAND.start] = 0.0
    hidden[:, skeleton.RIGHT_HAND.start] = 0.0
    assert np.array_equal(sharpened_hands(frames, xy, hidden, 1.0)[:, :60], frames[:, :60])


def test_a_frame_twice_the_height_gets_a_box_and_a_blur_twice_as_wide():
    frames = frames_with_an_edge(1)
    xy, confidence = right_hand_on_the_edge(1)
    small = sharpened_hands(frames, xy, confidence, 1.0)
    large_frames = np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2)
    large = sharpened_hands(large_frames, xy * 2, confidence, 1.0)
    def changed_columns(before, after):
        return np.nonzero((after != before).any(axis=(0, 1, 3)))[0]
    # Along the edge, the overshoot spreads about twice as wide ...
    assert abs(np.ptp(changed_columns(large_frames, large)) - 2 * np.ptp(changed_columns(frames, small))) <= 2
    # ... and reaches about twice as far from it.
    reach = lambda image, edge: int((np.abs(image[0, 100 * image.shape[1] // HEIGHT, :edge, 0].astype(int) - 60) > 2).sum())  # noqa: E731
    assert 1.5 * reach(small, 105) <= reach(large, 210) <= 2.5 * reach(small, 105)


def changed_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int]:
    rows, columns = np.nonzero((after != before).any(axis=-1))
    return rows.min(), rows.max(), columns.min(), columns.max()


def test_each_hand_of_each_frame_is_sharpened_in_its_own_box_and_only_there():
    rng = np.random.default_rng(0)
    frames = rng.integers(40, 216, (2, HEIGHT, WIDTH, 3), dtype=np.uint8)  # texture: every pixel of a box changes
    xy, confidence = right_hand_on_the_edge()
    xy[1, skeleton.RIGHT_HAND] += (-60, 80)  # the second frame's right hand elsewhere
    xy[1, skeleton.LEFT_HAND] = xy[0, skeleton.RIGHT_HAND] + (40, -50)  # ... and a left hand
    confidence[1, skeleton.LEFT_HAND] = 1.0
    xy[1, skeleton.LEFT_HAND.start + 3] = np.nan  # a seen point without a place is left out
    sharp = sharpened_hands(frames, xy, confidence, 1.0)
    # Right hand, frame 0: centre (105, 100), extent 20: half 13.5 + 4 = 17.5, rows and columns 82..117 (end excluded).
    assert changed_box(frames[0], sharp[0]) == (82, 117 - 1, 87, 122 - 1)
    changed = (sharp[1] != frames[1]).any(axis=-1)
    expected = np.zeros_like(changed)
    expected[162:197, 27:62] = True  # the right hand moved to (45, 180)
    left = xy[1, skeleton.LEFT_HAND][np.isfinite(xy[1, skeleton.LEFT_HAND]).all(-1)]
    (cx, cy), half = left.mean(0), np.ptp(left, 0).max() * 1.35 / 2 + 4
    expected[int(cy - half):int(cy + half), int(cx - half):int(cx + half)] = True
    assert changed.sum() > 0.9 * expected.sum() and not (changed & ~expected).any()


def test_a_hand_over_the_frames_edge_is_sharpened_up_to_the_edge():
    rng = np.random.default_rng(1)
    frames = rng.integers(40, 216, (1, HEIGHT, WIDTH, 3), dtype=np.uint8)
    xy, confidence = right_hand_on_the_edge(1)
    xy[0, skeleton.RIGHT_HAND] += (-WIDTH // 2, -100)  # centred on the top left corner
    sharp = sharpened_hands(frames, xy, confidence, 1.0)
    assert changed_box(frames[0], sharp[0]) == (0, 16, 0, 16)
    xy[0, skeleton.RIGHT_HAND] -= 100  # wholly off the frame
    assert np.array_equal(sharpened_hands(frames, xy, confidence, 1.0), frames)
