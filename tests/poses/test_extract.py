"""MediaPipe Holistic extraction (offline, model complexity 1)."""

from __future__ import annotations

import numpy as np
import pytest

from signgen.errors import SigngenError
from signgen.poses.extract import extract_pose
from signgen.poses.holistic import pose_arrays, reduce_to_178
from signgen.poses.summary import summarize


def test_extraction_finds_the_astronauts_body_and_face(astronaut_pose):
    pose = astronaut_pose
    assert [(c.name, len(c.points)) for c in pose.header.components] == [
        ("POSE_LANDMARKS", 33), ("FACE_LANDMARKS", 468), ("LEFT_HAND_LANDMARKS", 21),
        ("RIGHT_HAND_LANDMARKS", 21), ("POSE_WORLD_LANDMARKS", 33)]
    assert (pose.header.dimensions.width, pose.header.dimensions.height) == (512, 512)
    assert len(pose.body.data) == 1 and pose.body.fps == 25
    summary = summarize(pose)
    assert summary.detected("POSE_LANDMARKS") == 1 and summary.detected("FACE_LANDMARKS") == 1

    # Pixel coordinates that make sense: the face is in the upper half, around the nose,
    # and the shoulders are below it, one on each side.
    nose = np.asarray(pose.body.data[0, 0, pose.header.get_point_index("POSE_LANDMARKS", "NOSE"), :2])
    face = np.asarray(pose.body.data[0, 0, 33:501, :2])
    assert (face.min(axis=0) < nose).all() and (nose < face.max(axis=0)).all()
    assert 100 < nose[0] < 400 and nose[1] < 256
    left = np.asarray(pose.body.data[0, 0, pose.header.get_point_index("POSE_LANDMARKS", "LEFT_SHOULDER"), :2])
    right = np.asarray(pose.body.data[0, 0, pose.header.get_point_index("POSE_LANDMARKS", "RIGHT_SHOULDER"), :2])
    assert left[1] > nose[1] and right[1] > nose[1]
    assert right[0] < nose[0] < left[0]  # the person faces the camera: their right is image left


def test_undetected_parts_are_masked_never_zeros(astronaut_pose):
    # MediaPipe finds no hand in this photo: both hand components are missing.
    confidence = astronaut_pose.body.confidence[0, 0]
    hands = slice(501, 543)
    assert (confidence[hands] == 0).all()
    assert astronaut_pose.body.data.mask[0, 0, hands].all()
    xy, reduced_confidence = pose_arrays(reduce_to_178(astronaut_pose))
    assert (reduced_confidence[0, 136:] == 0).all()


def test_a_frame_without_a_person_is_fully_masked(tmp_path):
    from PIL import Image

    path = tmp_path / "wall.png"
    Image.fromarray(np.full((96, 80, 3), 200, np.uint8)).save(path)
    pose = extract_pose(path, progress=False)
    assert pose.body.data.shape[:3] == (1, 1, 576)
    assert (pose.body.confidence == 0).all() and pose.body.data.mask.all()


@pytest.mark.parametrize("kind", ["mp4", "folder", "glob"])
def test_videos_and_frame_folders_give_one_pose_frame_per_frame(tmp_path, astronaut, kind):
    from PIL import Image

    from signgen.video.io import write_video

    frames = np.stack([astronaut[::8, ::8]] * 3)  # 64 x 64: the reading path, not the detector
    if kind == "mp4":
        source = tmp_path / "clip.mp4"
        write_video(frames, source, fps=30)
        expected_fps = 30
    else:
        folder = tmp_path / "01April_2010_Thursday_heute-6694" / "1"
        folder.mkdir(parents=True)
        for index, frame in enumerate(frames, start=1):
            Image.fromarray(frame).save(folder / f"images{index:04d}.png")
        source = folder if kind == "folder" else folder / "*.png"
        expected_fps = 25  # frame folders carry no rate: PHOENIX's
    pose = extract_pose(source, progress=False)
    assert pose.body.data.shape[:3] == (3, 1, 576)
    assert pose.body.fps == expected_fps
    assert (pose.header.dimensions.width, pose.header.dimensions.height) == (64, 64)


def test_the_frame_rate_can_be_given(astronaut_png):
    assert extract_pose(astronaut_png, progress=False, fps=50).body.fps == 50


@pytest.mark.parametrize("bad", ["missing.mp4", "missing.png", "text_named_mp4", "zero_frame_mp4", "empty_frame_folder"])
def test_bad_inputs_are_user_errors(request, tmp_path, bad):
    path = request.getfixturevalue(bad) if "_" in bad else tmp_path / bad
    with pytest.raises(SigngenError):
        extract_pose(path, progress=False)
