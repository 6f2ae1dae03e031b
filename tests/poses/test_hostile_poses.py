"""Corrupt pose files and images (issue 17, class 4): a .pose file cut short, with
trailing bytes, with infinite coordinates or a NaN frame rate is one error line, never
data; a 16-bit grayscale photo is detected as well as its 8-bit version."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from conftest import GSG_A
from pose_format.pose_header import PoseHeader
from pose_format.utils.reader import BufferReader

from signgen.cli.main import main
from signgen.errors import SigngenError
from signgen.poses.io import read_pose


def header_length(data: bytes) -> int:
    reader = BufferReader(data)
    PoseHeader.read(reader)
    return reader.read_offset


def as_version_0_1(data: bytes) -> bytes:
    """The v0.2 file ``data`` in pose-format's v0.1 layout (ushort fps and frame count; the
    reader takes as many frames as the bytes hold)."""
    start = header_length(data)
    fps, frames, people = struct.unpack_from("<fIH", data, start)
    header = bytearray(data[:start])
    header[:4] = struct.pack("<f", 0.1)
    return bytes(header) + struct.pack("<HHH", int(fps), frames, people) + data[start + 10:]


def one_line_error(capsys, args) -> str:
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("signgen: error: ") and "Traceback" not in err, err
    return err


def test_a_version_0_1_file_reads_whole_and_cut_in_half_is_refused(tmp_path):
    whole = as_version_0_1(GSG_A.read_bytes())
    (tmp_path / "whole.pose").write_bytes(whole)
    assert len(read_pose(tmp_path / "whole.pose").body.data) == len(read_pose(GSG_A).body.data)
    # Cut at a whole number of frames' worth of bytes, as pose-format would silently read it.
    (tmp_path / "half.pose").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SigngenError, match="truncated or damaged"):
        read_pose(tmp_path / "half.pose")


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_a_cut_version_0_2_file_is_refused_naming_the_declared_size(tmp_path, cut, capsys):
    data = GSG_A.read_bytes()
    path = tmp_path / "cut.pose"
    path.write_bytes(data[: int(len(data) * cut)])
    assert "truncated" in one_line_error(capsys, ["poses", "info", path])
    assert "declares 22 frames" in one_line_error(capsys, ["poses", "show", path, "-o", tmp_path / "out.mp4"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.pose"]


def test_trailing_bytes_are_refused(tmp_path):
    path = tmp_path / "long.pose"
    path.write_bytes(GSG_A.read_bytes() + b"\0" * 64)
    with pytest.raises(SigngenError, match="longer than its header says"):
        read_pose(path)


def write_damaged(tmp_path, name, change) -> object:
    from signgen.poses.io import write_pose

    pose = read_pose(GSG_A)
    change(pose)
    return write_pose(pose, tmp_path / name)


def test_infinite_coordinates_and_a_nan_frame_rate_are_one_line(tmp_path, capsys):
    def infinite(pose):
        pose.body.data.data[3, 0, 10, 0] = np.inf
        pose.body.confidence[3, 0, 10] = 1.0

    def nan_rate(pose):
        pose.body.fps = float("nan")

    for name, change, message in [("inf.pose", infinite, "non-finite values"), ("nan.pose", nan_rate, "frame rate nan")]:
        path = write_damaged(tmp_path, name, change)
        assert message in one_line_error(capsys, ["poses", "show", path, "-o", tmp_path / "out.mp4"])
        assert message in one_line_error(capsys, ["poses", "info", path])
    assert not (tmp_path / "out.mp4").exists()


def test_drawing_a_pose_in_memory_with_infinite_coordinates_leaves_the_point_out():
    from signgen.poses.draw import draw_skeleton_frames

    pose = read_pose(GSG_A)
    pose.body.data.data[:, 0, :5, :2] = np.inf
    pose.body.data.data[:, 0, 5:8, :2] = 1e30
    frames = draw_skeleton_frames(pose)
    assert frames.shape[0] == len(pose.body.data) and frames.dtype == np.uint8


def test_a_16_bit_grayscale_photo_is_detected_like_the_8_bit_one(astronaut, tmp_path):
    """PIL reads a 16-bit grayscale PNG as mode I;16 or I: it is scaled to 8 bits
    (signgen.files.to_rgb), not clipped to white."""
    from PIL import Image

    from signgen.poses.extract import extract_pose
    from signgen.poses.summary import summarize

    gray = np.asarray(Image.fromarray(astronaut).convert("L"), dtype=np.uint16)
    Image.fromarray(gray.astype(np.uint8)).save(tmp_path / "gray8.png")
    Image.fromarray(gray * 257).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I")
    detected = {}
    for name in ("gray8", "gray16"):
        summary = summarize(extract_pose(tmp_path / f"{name}.png", progress=False))
        detected[name] = {c.name: c.detected for c in summary.components}
    assert detected["gray16"]["POSE_LANDMARKS"] == detected["gray8"]["POSE_LANDMARKS"] == 1.0
    assert detected["gray16"]["FACE_LANDMARKS"] == detected["gray8"]["FACE_LANDMARKS"]
