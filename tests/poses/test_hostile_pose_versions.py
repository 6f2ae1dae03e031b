"""A .pose file whose header declares a version pose-format does not read (issue 17, item 1
of the follow-up sweep): ``poses info``, ``poses show`` and ``render --pose`` give one error
line naming the version, exit code 2, no traceback and no output file."""

from __future__ import annotations

import math
import struct

import pytest
from conftest import GSG_A

from signgen.errors import SigngenError
from signgen.poses.io import read_pose

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def with_version(tmp_path, version: float):
    path = tmp_path / "versioned.pose"
    path.write_bytes(struct.pack("<f", version) + GSG_A.read_bytes()[4:])
    return path


@pytest.mark.parametrize("version", [9.9, math.nan, math.inf, -1.0, 0.3])
def test_read_pose_refuses_an_unknown_version(tmp_path, version):
    with pytest.raises(SigngenError, match="version"):
        read_pose(with_version(tmp_path, version))


@pytest.mark.parametrize("version", [9.9, math.nan])
def test_poses_info_and_show_are_one_line(tmp_path, version, run_cli, cli_error_line):
    path = with_version(tmp_path, version)
    code, out, err = run_cli("poses", "info", path)
    assert code == 2 and "version" in cli_error_line(err) and "Traceback" not in err
    code, out, err = run_cli("poses", "show", path, "-o", tmp_path / "out.mp4")
    assert code == 2 and "version" in cli_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["versioned.pose"]


def test_render_pose_with_an_unknown_version_is_one_line(tmp_path, run_cli, tiny_pipelines):
    path = with_version(tmp_path, 9.9)
    code, out, err = run_cli("render", "--pose", path, "--model", tiny_pipelines["frame_only"], "-o", tmp_path / "out.mp4")
    # render draws progress bars (cleared, not ended): the error starts a line of its own.
    lines = [line for line in err.split("\n") if line.strip()]
    assert code == 2 and "Traceback" not in err and err.count("signgen:") == 1, err
    assert lines[-1].startswith("signgen: error: ") and "version 9.9" in lines[-1], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["versioned.pose"]


def test_a_pose_format_refusal_after_the_version_check_is_one_line(tmp_path, monkeypatch):
    """pose-format's own NotImplementedError (a version it stops reading) is caught where it reads."""
    from pose_format import Pose

    def refuse(*args, **kwargs):
        raise NotImplementedError("Unknown version - 0.200000")

    monkeypatch.setattr(Pose, "read", refuse)
    with pytest.raises(SigngenError, match="not a readable .pose file"):
        read_pose(GSG_A)
