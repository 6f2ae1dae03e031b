"""Pose maps for models (raster) and skeleton videos for people (draw)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import GSG_A

from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.draw import draw_skeleton_frames, render_skeleton_video
from signgen.poses.holistic import pose_arrays, pose_from_arrays, reduce_to_178
from signgen.poses.io import read_pose
from signgen.poses.raster import (FINGER_INTENSITY, POSE_MAP_CHANNELS, rasterize_pose, rasterize_pose_map)
from signgen.poses.transform import prepare

FRAME = (210, 260)  # (width, height) of the source frame
LEFT_ELBOW = skeleton.BODY_POINTS.index("LEFT_ELBOW")
RIGHT_ELBOW = skeleton.BODY_POINTS.index("RIGHT_ELBOW")


def lone_point(index: int, x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
    """178-point arrays where only point ``index`` is present; all others sit at (0, 0)."""
    xy = np.zeros((178, 2), np.float32)
    confidence = np.zeros(178, np.float32)
    xy[index] = (x, y)
    confidence[index] = 1.0
    return xy, confidence


def centroid(image: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre in continuous pixel coordinates (pixel j covers [j, j + 1))."""
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return np.array([(cols * image).sum() / total + 0.5, (rows * image).sum() / total + 0.5])


@pytest.mark.parametrize("out_size", [(64, 52), (260, 210), (512, 416)])
@pytest.mark.parametrize("index, channel", [(skeleton.LEFT_WRIST, 0), (skeleton.LEFT_HAND.start + 8, 1),
                                            (skeleton.RIGHT_HAND.start, 2)])
def test_a_lone_keypoint_lands_within_one_pixel_of_its_coordinates(out_size, index, channel):
    x, y = 73.37, 151.81
    pose_map = rasterize_pose_map(*lone_point(index, x, y), frame_size=FRAME, out_size=out_size)
    assert pose_map.shape == (POSE_MAP_CHANNELS, *out_size) and pose_map.dtype == np.float32
    assert pose_map[channel].max() > 0
    assert np.delete(pose_map, channel, axis=0).max() == 0
    height, width = out_size
    expected = np.array([x * width / FRAME[0], y * height / FRAME[1]])
    # Well within one pixel: tight enough to catch a half-pixel convention error.
    assert np.abs(centroid(pose_map[channel]) - expected).max() < 0.35


def test_missing_points_and_their_limbs_are_never_drawn():
    xy, confidence = lone_point(skeleton.LEFT_SHOULDER, 60.0, 160.0)
    xy[LEFT_ELBOW] = (40.0, 220.0)
    confidence[LEFT_ELBOW] = 1.0
    with_limb = rasterize_pose_map(xy, confidence, FRAME, (260, 210))[0]
    midpoint = (190, 50)  # row, column halfway along the upper arm
    assert with_limb[midpoint] > 0.5

    confidence[LEFT_ELBOW] = 0.0
    without_limb = rasterize_pose_map(xy, confidence, FRAME, (260, 210))
    assert without_limb[0, midpoint[0], midpoint[1]] == 0
    assert without_limb[0, 210:230, 30:50].max() == 0  # the elbow itself is gone
    assert without_limb[0, 150:170, 50:70].max() > 0.9  # the shoulder stays
    # Every other point is missing with xy (0, 0): nothing near the origin, in any channel.
    assert without_limb[:, :20, :20].max() == 0


def test_non_finite_coordinates_count_as_missing():
    xy, confidence = lone_point(skeleton.RIGHT_WRIST, 100.0, 100.0)
    xy[RIGHT_ELBOW] = (np.nan, np.inf)
    confidence[RIGHT_ELBOW] = 1.0
    pose_map = rasterize_pose_map(xy, confidence, FRAME, (260, 210))
    reference = rasterize_pose_map(*lone_point(skeleton.RIGHT_WRIST, 100.0, 100.0), FRAME, (260, 210))
    np.testing.assert_array_equal(pose_map, reference)


def test_each_part_goes_to_its_own_channel():
    pose = prepare(read_pose(GSG_A))
    xy, confidence = pose_arrays(pose)
    frame = xy[5], confidence[5]
    full = rasterize_pose_map(*frame, FRAME, (260, 210))
    for channel, part in enumerate([skeleton.BODY, skeleton.LEFT_HAND, skeleton.RIGHT_HAND, skeleton.FACE]):
        only = frame[1].copy()
        only[np.arange(178) < part.start] = 0
        only[np.arange(178) >= part.stop] = 0
        single_part = rasterize_pose_map(frame[0], only, FRAME, (260, 210))
        np.testing.assert_array_equal(single_part[channel], full[channel])
        assert np.delete(single_part, channel, axis=0).max() == 0
    assert full[1].max() == 0  # the left hand is never detected in this clip
    assert min(full[0].max(), full[2].max(), full[3].max()) > 0.9


def test_fingers_are_told_apart_by_intensity():
    xy = np.zeros((178, 2), np.float32)
    confidence = np.zeros(178, np.float32)
    hand = skeleton.RIGHT_HAND.start
    # An open hand, fingers spread like a fan, wrist at the bottom.
    xy[hand] = (105, 240)
    for finger in range(5):
        angle = np.deg2rad(150 - 30 * finger)
        for joint in range(4):
            radius = 40 + 30 * joint
            xy[hand + 1 + 4 * finger + joint] = (105 + radius * np.cos(angle), 240 - radius * np.sin(angle))
    confidence[skeleton.RIGHT_HAND] = 1
    pose_map = rasterize_pose_map(xy, confidence, FRAME, (260, 210), thickness=3)[2]
    for finger in range(5):
        # Halfway between the finger's last two joints: far from every other finger.
        tip, before = xy[hand + 4 + 4 * finger], xy[hand + 3 + 4 * finger]
        column, row = ((tip + before) / 2).astype(int)
        assert pose_map[row - 1:row + 2, column - 1:column + 2].max() == pytest.approx(FINGER_INTENSITY[finger + 1], abs=0.01)


def test_a_sequence_is_rasterised_frame_by_frame():
    xy, confidence = pose_arrays(prepare(read_pose(GSG_A)))
    maps = rasterize_pose_map(xy, confidence, FRAME, (64, 52))
    assert maps.shape == (len(xy), POSE_MAP_CHANNELS, 64, 52) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    np.testing.assert_array_equal(maps[3], rasterize_pose_map(xy[3], confidence[3], FRAME, (64, 52)))
    np.testing.assert_array_equal(rasterize_pose(prepare(read_pose(GSG_A)), (64, 52)), maps)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError):
        rasterize_pose_map(np.zeros((136, 2)), np.zeros(136), FRAME, (64, 52))
    with pytest.raises(ValueError):
        rasterize_pose_map(np.zeros((178, 2)), np.zeros(178), FRAME, (0, 52))


# ---- skeleton videos for people ----

def test_skeleton_frames_show_each_part_in_its_colour():
    from pose_format import Pose

    pose = read_pose(GSG_A)  # full holistic: drawn in its 178-point form
    pose = Pose(pose.header, pose.body.select_frames(list(range(0, 22, 4))))
    frames = draw_skeleton_frames(pose)
    assert frames.shape == (6, 500, 500, 3) and frames.dtype == np.uint8
    assert (frames[:, 0, 0] == 255).all()  # white background
    pixels = frames.reshape(-1, 3).astype(int)
    red = (pixels[:, 0] > 200) & (pixels[:, 1] < 80) & (pixels[:, 2] < 80)
    blue = (pixels[:, 2] > 200) & (pixels[:, 0] < 80) & (pixels[:, 1] < 80)
    green = (pixels[:, 1] > 200) & (pixels[:, 0] < 80) & (pixels[:, 2] < 80)
    assert red.sum() > 500 and blue.sum() > 100  # body, right hand
    assert green.sum() == 0  # the left hand is never detected in this clip


def test_skeleton_frames_scale_to_a_given_size_and_background():
    pose = reduce_to_178(read_pose(GSG_A))
    small = draw_skeleton_frames(pose, size=(100, 150), background=(0, 0, 0))
    assert small.shape == (22, 150, 100, 3)
    assert (small[:, 0, 0] == 0).all()
    # The right wrist is drawn where its scaled coordinates say.
    xy, confidence = pose_arrays(pose)
    x, y = xy[0, skeleton.RIGHT_WRIST] * np.array([100 / 500, 150 / 500])
    assert small[0, int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3].max() > 100


def test_drawing_a_pose_without_frames_is_a_user_error():
    empty = pose_from_arrays(np.zeros((0, 178, 2)), np.zeros((0, 178)), 25, 210, 260)
    with pytest.raises(SigngenError, match="no frames"):
        draw_skeleton_frames(empty)


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_render_skeleton_video_writes_every_frame(tmp_path, suffix):
    from signgen.video.io import read_video

    pose = prepare(read_pose(GSG_A))
    path = render_skeleton_video(pose, tmp_path / f"skeleton{suffix}")
    frames = read_video(path)
    assert frames.shape == (len(pose.body.data), 260, 210, 3)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
