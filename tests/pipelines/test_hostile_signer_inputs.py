"""The signer photo and its pose as a render reads them (issue 26, classes 2, 3, 7 and 9):
a camera photo whose EXIF tag says "rotate 90" is read upright wherever a photo is read;
a `--signer-pose` of another picture size is refused naming both sizes; coordinates far
outside the picture are taken as missing; a pose without visible keypoints or shoulders
is one line that says what is wrong with the pose given (not "give --signer-pose")."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from signgen.errors import SigngenError
from signgen.pipelines.signer_image import DEFAULT_SIGNER_PHOTO, DEFAULT_SIGNER_POSE, photo_keypoints, signer_photo
from signgen.poses import skeleton
from signgen.poses.holistic import pose_arrays, pose_from_arrays
from signgen.poses.io import read_pose, write_pose

ROOT = Path(__file__).parents[2]
ORIENTATION = 0x0112
RED, BLUE = (220, 30, 30), (30, 30, 220)


# ---------------------------------------------------------------- EXIF orientation


def upright_pattern() -> np.ndarray:
    """210 x 260 (width x height), red on top, blue below: which way is up is plain."""
    image = np.empty((260, 210, 3), np.uint8)
    image[:80], image[80:] = RED, BLUE
    return image


@pytest.fixture
def sideways_jpeg(tmp_path) -> Path:
    """What a phone writes: the pixels stored turned 90 degrees, with orientation 6 ("rotate
    90 clockwise to show") in the EXIF block."""
    from PIL import Image

    stored = Image.fromarray(upright_pattern()).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    path = tmp_path / "frames" / "phone.jpg"
    path.parent.mkdir()
    stored.save(path, quality=95, exif=exif)
    assert Image.open(path).size == (260, 210)  # stored sideways
    return path


def is_upright(pixels: np.ndarray) -> bool:
    top, bottom = pixels[: len(pixels) // 5].reshape(-1, 3).mean(0), pixels[-len(pixels) // 5:].reshape(-1, 3).mean(0)
    return bool(top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0])


def test_every_photo_reader_turns_a_camera_photo_upright(sideways_jpeg):
    from PIL import Image

    from signgen.files import read_image
    from signgen.video.io import read_video, video_info

    pixels = read_image(sideways_jpeg)
    assert pixels.shape == (260, 210, 3) and is_upright(pixels)
    assert is_upright(signer_photo(sideways_jpeg, (260, 210)).pixels)
    with Image.open(sideways_jpeg) as opened:  # an API caller's own PIL image still carries the tag
        assert is_upright(signer_photo(opened, (260, 210)).pixels)
    frames = read_video(sideways_jpeg.parent)
    info = video_info(sideways_jpeg.parent)
    assert frames.shape[1:3] == (info.height, info.width) == (260, 210) and is_upright(frames[0])


def test_no_module_opens_an_image_but_the_one_reader():
    """Every photo goes through signgen.files.open_image (EXIF, size checks, one-line errors)."""
    readers = []
    for folder in ("signgen", "cli", "poses", "video"):
        for path in (ROOT / folder).rglob("*.py"):
            if path != ROOT / "signgen" / "files.py" and re.search(r"Image\.open\(|imread\(", path.read_text(encoding="utf-8")):
                readers.append(str(path.relative_to(ROOT)))
    assert readers == []


# ---------------------------------------------------------------- the signer's pose


def bundled(change=None, size=(210, 260)) -> object:
    """The bundled signer's pose, its arrays changed by ``change(xy, confidence)``, with a
    header of ``size``."""
    xy, confidence = pose_arrays(read_pose(DEFAULT_SIGNER_POSE))
    if change is not None:
        change(xy, confidence)
    return pose_from_arrays(xy, confidence, 25.0, *size)


def scale_to_420(xy, confidence):
    xy[..., 0] *= 2


def zero_confidences(xy, confidence):
    confidence[:] = 0


def times_a_million(xy, confidence):
    xy *= 1e6


def shoulders_far_away(xy, confidence):
    xy[:, [skeleton.LEFT_SHOULDER, skeleton.RIGHT_SHOULDER]] = -5000


BAD_POSES = {
    "420 x 260 pose of a 210 x 260 photo": (dict(change=scale_to_420, size=(420, 260)),
                                            "is of a 420 x 260 picture, the signer photo is 210 x 260"),
    "1 x 1 header": (dict(size=(1, 1)), "is of a 1 x 1 picture, the signer photo is 210 x 260"),
    "every confidence 0": (dict(change=zero_confidences), "has no visible keypoints in its first frame"),
    "coordinates x 1e6": (dict(change=times_a_million), "has no keypoint within its 210 x 260 picture"),
    "shoulders far outside": (dict(change=shoulders_far_away), "shows no shoulders within its 210 x 260 picture"),
}


@pytest.mark.parametrize("case", BAD_POSES)
def test_a_bad_signer_pose_is_refused_saying_what_is_wrong_with_it(case):
    make, message = BAD_POSES[case]
    photo = signer_photo(DEFAULT_SIGNER_PHOTO, (64, 52))
    with pytest.raises(SigngenError, match=re.escape(message)) as error:
        photo_keypoints(photo, bundled(**make))
    assert "give its pose with --signer-pose" not in str(error.value)


@pytest.mark.parametrize("case", BAD_POSES)
def test_a_bad_signer_pose_on_the_command_line_is_one_line_and_no_video(case, tmp_path, run_cli_fd, cli_error_line):
    make, message = BAD_POSES[case]
    path = write_pose(bundled(**make), tmp_path / "signer.pose")
    before = path.read_bytes()
    code, _, err = run_cli_fd("render", "--gloss", "A", "--signer-pose", path, "-o", tmp_path / "out.mp4")
    assert code == 2
    line = cli_error_line(err, only=False)
    assert message in line and f"signer pose {path}" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signer.pose"] and path.read_bytes() == before


def test_points_far_outside_the_photo_are_missing_and_near_ones_kept():
    def hands_out(xy, confidence):
        xy[:, skeleton.NUM_POINTS - 1] = (-150, 10)  # within a frame's width of the edge: a hand just out of view
        xy[:, skeleton.NUM_POINTS - 2] = (1e6, 1e6)

    photo = signer_photo(DEFAULT_SIGNER_PHOTO, (64, 52))
    reference_xy, reference_confidence = photo_keypoints(photo, DEFAULT_SIGNER_POSE)
    xy, confidence = photo_keypoints(photo, bundled(hands_out))
    assert confidence[-1] == reference_confidence[-1] > 0 and confidence[-2] == 0
    assert np.all(np.abs(xy) < 1e3)
    np.testing.assert_allclose(xy[:-2], reference_xy[:-2])
