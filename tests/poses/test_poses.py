"""The pose core: 178-point layout, holistic reduction, .pose I/O, resampling, gap filling, placement."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ASE_A, CLIPS_30_FPS, GSG_A

from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.holistic import pose_arrays, pose_from_arrays, reduce_to_178
from signgen.poses.io import read_pose, write_pose
from signgen.poses.transform import PHOENIX_FRAMING, Framing, fill_gaps, normalize, place, prepare, resample


def synthetic_pose(xy: np.ndarray, confidence: np.ndarray | None = None, fps: float = 25.0):
    confidence = np.ones(xy.shape[:2], np.float32) if confidence is None else confidence
    return pose_from_arrays(xy, confidence, fps=fps, width=210, height=260)


def source_points(pose, component: str, point: str) -> tuple[np.ndarray, np.ndarray]:
    """xy (T, 2) and confidence (T,) of one named point of a full holistic pose."""
    index = pose.header.get_point_index(component, point)
    return np.ma.getdata(pose.body.data[:, 0, index, :2]), pose.body.confidence[:, 0, index]


# ---- the 178-point layout ----

def test_layout_has_178_uniquely_named_points():
    names = skeleton.point_names()
    assert len(names) == skeleton.NUM_POINTS == 178
    assert len(set(names)) == 178
    parts = [skeleton.BODY, skeleton.FACE, skeleton.LEFT_HAND, skeleton.RIGHT_HAND]
    assert [p.stop - p.start for p in parts] == [8, 128, 21, 21]
    assert names[skeleton.LEFT_SHOULDER] == "POSE_LANDMARKS.LEFT_SHOULDER"
    assert names[skeleton.RIGHT_HAND.start + 4] == "RIGHT_HAND_LANDMARKS.THUMB_TIP"
    limbs = np.asarray(skeleton.limbs())
    assert limbs.min() >= 0 and limbs.max() < 178


def test_layout_matches_installed_mediapipe():
    from mediapipe.python.solutions import holistic
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_CONTOURS

    contour_points = sorted({p for edge in FACEMESH_CONTOURS for p in edge})
    assert skeleton.FACE_CONTOUR_LANDMARKS == contour_points
    local = {p: i for i, p in enumerate(contour_points)}
    assert {frozenset((local[a], local[b])) for a, b in FACEMESH_CONTOURS} == {frozenset(e) for e in skeleton.FACE_LIMBS}
    assert {frozenset(e) for e in holistic.HAND_CONNECTIONS} == {frozenset(e) for e in skeleton.HAND_LIMBS}
    assert skeleton.HAND_POINTS == holistic.HandLandmark._member_names_
    assert set(skeleton.BODY_POINTS) <= set(holistic.PoseLandmark._member_names_)


# ---- reduction ----

@pytest.mark.parametrize("face_points", [478, 468], ids=["586-points", "543-points"])
def test_reduce_real_clip_to_178_named_points(face_points):
    full = read_pose(GSG_A)
    if face_points == 468:  # PHOENIX's layout: unrefined face, no world landmarks
        components = ["POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS"]
        full = full.get_components(components, {"FACE_LANDMARKS": [str(i) for i in range(468)]})
        assert full.body.data.shape[2] == 543
    reduced = reduce_to_178(full)
    assert [p for c in reduced.header.components for p in c.points] == [n.split(".", 1)[1] for n in skeleton.point_names()]
    xy, confidence = pose_arrays(reduced)
    assert xy.shape == (22, 178, 2) and confidence.shape == (22, 178)
    assert reduced.body.fps == full.body.fps
    assert (reduced.header.dimensions.width, reduced.header.dimensions.height) == (500, 500)
    names = skeleton.point_names()
    for component, point in [("POSE_LANDMARKS", "RIGHT_WRIST"), ("FACE_LANDMARKS", "10"),
                             ("RIGHT_HAND_LANDMARKS", "INDEX_FINGER_TIP")]:
        want_xy, want_confidence = source_points(full, component, point)
        index = names.index(f"{component}.{point}")
        np.testing.assert_allclose(xy[:, index], want_xy, atol=1e-3)
        np.testing.assert_array_equal(confidence[:, index] > 0, want_confidence > 0)
    # This clip never detects the left hand: it stays masked, never a point at (0, 0).
    assert (confidence[:, skeleton.LEFT_HAND] == 0).all()
    assert reduced.body.data.mask[:, 0, skeleton.LEFT_HAND].all()


def test_reduce_keeps_a_178_point_pose():
    reduced = reduce_to_178(read_pose(GSG_A))
    again = reduce_to_178(reduced)
    np.testing.assert_array_equal(pose_arrays(again)[0], pose_arrays(reduced)[0])


def test_reduce_rejects_a_pose_that_is_not_holistic():
    from pose_format import Pose
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent

    pose = read_pose(GSG_A)
    body = pose.header.components[0]
    components = [PoseHeaderComponent("BODY_25", body.points, body.limbs, body.colors, body.format)]
    header = PoseHeader(pose.header.version, pose.header.dimensions, components + pose.header.components[1:])
    with pytest.raises(SigngenError, match="not a MediaPipe Holistic pose"):
        reduce_to_178(Pose(header, pose.body))


# ---- .pose I/O ----

def test_write_then_read_gives_the_same_pose(tmp_path):
    pose = reduce_to_178(read_pose(GSG_A))
    path = write_pose(pose, tmp_path / "clip.pose")
    again = read_pose(path)
    for got, want in zip(pose_arrays(again), pose_arrays(pose)):
        np.testing.assert_allclose(got, want, atol=1e-4)
    assert again.body.fps == pose.body.fps
    assert [p.name for p in tmp_path.iterdir()] == ["clip.pose"]  # no temporary file left


@pytest.mark.parametrize("content", [None, b"", b"not a pose file", "half"])
def test_reading_a_bad_pose_file_is_a_user_error(tmp_path, content):
    path = tmp_path / "bad.pose"
    if content == "half":
        data = GSG_A.read_bytes()
        content = data[: len(data) // 2]
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SigngenError):
        read_pose(path)


# ---- resampling ----

@pytest.mark.parametrize("path", CLIPS_30_FPS, ids=lambda p: p.stem[-6:])
def test_resample_30_to_25_fps_keeps_the_duration_within_one_frame(path):
    pose = reduce_to_178(read_pose(path))
    assert pose.body.fps == 30
    resampled = resample(pose, 25)
    assert resampled.body.fps == 25
    source_duration = len(pose.body.data) / 30
    assert abs(len(resampled.body.data) / 25 - source_duration) <= 1 / 25


def test_resample_interpolates_linear_motion_exactly():
    frames = 31  # one second at 30 fps
    xy = np.zeros((frames, 178, 2), np.float32)
    xy[..., 0] = (np.arange(frames) / 30 * 100)[:, None]  # 100 px per second
    resampled = resample(synthetic_pose(xy, fps=30), 25)
    got, confidence = pose_arrays(resampled)
    assert len(got) == 26 and (confidence > 0).all()
    np.testing.assert_allclose(got[:, 0, 0], np.arange(26) / 25 * 100, atol=1e-3)


def test_resample_masks_frames_interpolated_from_a_missing_point():
    xy = np.ones((30, 178, 2), np.float32)
    confidence = np.ones((30, 178), np.float32)
    confidence[12, 5] = 0  # source time 0.4 s
    resampled = resample(synthetic_pose(xy, confidence, fps=30), 25)
    _, got = pose_arrays(resampled)
    output_times = np.arange(len(got)) / 25
    touches_missing = np.abs(output_times - 12 / 30) < 1 / 30 - 1e-9
    assert touches_missing.any()
    assert (got[touches_missing, 5] == 0).all()
    assert (got[~touches_missing, 5] > 0).all()
    assert (np.delete(got, 5, axis=1) > 0).all()


def test_resample_at_the_same_rate_changes_nothing():
    pose = reduce_to_178(read_pose(ASE_A))
    assert pose.body.fps == 25
    same = resample(pose, 25)
    for got, want in zip(pose_arrays(same), pose_arrays(pose)):
        np.testing.assert_array_equal(got, want)


# ---- gap filling ----

def test_fill_gaps_fills_short_gaps_and_keeps_long_ones_masked():
    frames = 30
    xy = np.zeros((frames, 178, 2), np.float32)
    xy[..., 0] = np.arange(frames, dtype=np.float32)[:, None] * 2
    xy[..., 1] = 50
    confidence = np.ones((frames, 178), np.float32)
    confidence[:2, 3] = 0      # open start: stays masked
    confidence[5:8, 3] = 0     # 3 missing frames: filled
    confidence[12:20, 3] = 0   # 8 missing frames: longer than max_gap, stays masked
    filled_xy, filled = pose_arrays(fill_gaps(synthetic_pose(xy, confidence), max_gap=5))
    assert (filled[:2, 3] == 0).all()
    assert (filled[5:8, 3] > 0).all()
    np.testing.assert_allclose(filled_xy[5:8, 3], xy[5:8, 3], atol=1e-4)  # linear motion: exact
    assert (filled[12:20, 3] == 0).all()
    assert (filled[:, 4] > 0).all()


# ---- placement ----

def shoulder_geometry(pose) -> tuple[np.ndarray, float]:
    xy, confidence = pose_arrays(pose)
    left, right = xy[:, skeleton.LEFT_SHOULDER], xy[:, skeleton.RIGHT_SHOULDER]
    both = (confidence[:, skeleton.LEFT_SHOULDER] > 0) & (confidence[:, skeleton.RIGHT_SHOULDER] > 0)
    return np.median((left[both] + right[both]) / 2, axis=0), float(np.median(np.linalg.norm(left - right, axis=-1)[both]))


@pytest.mark.parametrize("framing", [PHOENIX_FRAMING, Framing(width=256, height=256, shoulder_center=(128, 150), shoulder_width=100)],
                         ids=["phoenix", "square"])
def test_place_puts_the_shoulders_where_the_framing_says(framing):
    source = reduce_to_178(read_pose(GSG_A))
    placed = place(source, framing)
    center, width = shoulder_geometry(placed)
    np.testing.assert_allclose(center, framing.shoulder_center, atol=0.05)
    assert width == pytest.approx(framing.shoulder_width, abs=0.05)
    assert (placed.header.dimensions.width, placed.header.dimensions.height) == (framing.width, framing.height)
    np.testing.assert_array_equal(pose_arrays(placed)[1], pose_arrays(source)[1])


def test_normalize_gives_unit_shoulders_at_the_origin():
    center, width = shoulder_geometry(normalize(reduce_to_178(read_pose(GSG_A))))
    np.testing.assert_allclose(center, (0, 0), atol=1e-4)
    assert width == pytest.approx(1.0, abs=1e-4)


def test_place_without_shoulders_is_a_user_error():
    confidence = np.ones((3, 178), np.float32)
    confidence[:, skeleton.LEFT_SHOULDER] = 0
    with pytest.raises(SigngenError, match="shoulders"):
        place(synthetic_pose(np.ones((3, 178, 2), np.float32), confidence))


def test_prepare_makes_a_real_clip_model_ready():
    prepared = prepare(read_pose(GSG_A))
    xy, confidence = pose_arrays(prepared)
    assert prepared.body.fps == 25
    assert xy.shape[1:] == (178, 2)
    assert abs(len(xy) / 25 - 22 / 30) <= 1 / 25
    assert (prepared.header.dimensions.width, prepared.header.dimensions.height) == (210, 260)
    center, width = shoulder_geometry(prepared)
    np.testing.assert_allclose(center, PHOENIX_FRAMING.shoulder_center, atol=0.5)
    assert (confidence[:, skeleton.LEFT_HAND] == 0).all()  # never detected in this clip
    assert (confidence[:, [skeleton.LEFT_SHOULDER, skeleton.RIGHT_SHOULDER]] > 0).all()
