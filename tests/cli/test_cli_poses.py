"""``signgen poses extract | show | info``, run in-process through ``signgen.cli.main.main``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GSG_A

from signgen import __version__
from signgen.cli.main import main
from signgen.poses.io import read_pose


def test_version_through_the_installed_entry_point():
    script = Path(sys.executable).with_name("signgen")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == f"signgen {__version__}"


def test_info_describes_a_real_clip(run_cli_fd):
    code, out, err = run_cli_fd("poses", "info", str(GSG_A))
    assert code == 0 and err == ""
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert lines["frames"].split()[1] == "22"
    assert lines["fps"].split()[1] == "30"
    assert lines["duration"].split()[1] == "0.73"
    assert "500 x 500" in lines["size"]
    assert lines["LEFT_HAND_LANDMARKS"].split()[1:] == ["21", "XYZC", "0.0%", "of", "frames"]
    assert lines["RIGHT_HAND_LANDMARKS"].split()[1:] == ["21", "XYZC", "100.0%", "of", "frames"]
    assert lines["FACE_LANDMARKS"].split()[1] == "478"


def test_show_writes_a_skeleton_video_and_a_gif(run_cli_fd, tmp_path):
    from signgen.video.io import read_video

    output = tmp_path / "skeleton.mp4"
    code, out, err = run_cli_fd("poses", "show", str(GSG_A), "-o", str(output), "--gif")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["skeleton.gif", "skeleton.mp4"]
    for path in (output, output.with_suffix(".gif")):
        frames = read_video(path)
        assert frames.shape == (22, 500, 500, 3)
        assert (frames[:, 5, 5] > 240).all()  # white background
        assert (frames < 100).any()  # and a skeleton on it


def test_extract_writes_a_pose_file(run_cli_fd, tmp_path, astronaut_png):
    output = tmp_path / "astronaut.pose"
    code, out, err = run_cli_fd("poses", "extract", str(astronaut_png), "-o", str(output))
    assert code == 0, err
    pose = read_pose(output)
    assert pose.body.data.shape[:3] == (1, 1, 576)
    assert "body 100.0%" in out and "face 100.0%" in out
    assert [p.name for p in tmp_path.iterdir()] == ["astronaut.pose"]


# Each case: the arguments, given the fixtures; the output that must not appear; words of the message.
BAD_INPUTS = {
    "extract a missing file": (lambda f: ["extract", f["tmp"] / "missing.mp4", "-o", f["tmp"] / "out.pose"], "not found"),
    "extract a text file named .mp4": (lambda f: ["extract", f["text_named_mp4"], "-o", f["tmp"] / "out.pose"], "cannot read video"),
    "extract a video with zero frames": (lambda f: ["extract", f["zero_frame_mp4"], "-o", f["tmp"] / "out.pose"], "video"),
    "extract an empty frame folder": (lambda f: ["extract", f["empty_frame_folder"], "-o", f["tmp"] / "out.pose"], "no frame images"),
    "extract into a missing folder": (lambda f: ["extract", f["astronaut_png"], "-o", f["tmp"] / "nowhere" / "out.pose"], "output folder"),
    "extract under a regular file": (lambda f: ["extract", f["astronaut_png"], "-o", f["file_as_folder"] / "out.pose"], "output folder"),
    "show a missing file": (lambda f: ["show", f["tmp"] / "missing.pose", "-o", f["tmp"] / "out.mp4"], "not found"),
    "show a truncated pose": (lambda f: ["show", f["truncated_pose_path"], "-o", f["tmp"] / "out.mp4"], "truncated"),
    "show into a missing folder": (lambda f: ["show", GSG_A, "-o", f["tmp"] / "nowhere" / "out.mp4"], "output folder"),
    "show under a regular file": (lambda f: ["show", GSG_A, "-o", f["file_as_folder"] / "out.mp4"], "output folder"),
    "show into an unknown format": (lambda f: ["show", GSG_A, "-o", f["tmp"] / "out.avi"], "must name an .mp4 (or .gif) file"),
    "info on a missing file": (lambda f: ["info", f["tmp"] / "missing.pose"], "not found"),
    "info on a truncated pose": (lambda f: ["info", f["truncated_pose_path"]], "truncated"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gives_one_line_exit_2_and_no_output(case, run_cli_fd, tmp_path, request):
    make_args, words = BAD_INPUTS[case]
    fixtures = {"tmp": tmp_path}
    for name in ("text_named_mp4", "zero_frame_mp4", "empty_frame_folder", "truncated_pose_path",
                 "file_as_folder", "astronaut_png"):
        fixtures[name] = request.getfixturevalue(name)
    before = set(tmp_path.rglob("*"))
    code, out, err = run_cli_fd("poses", *map(str, make_args(fixtures)))
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("signgen: error: "), err
    assert words in err
    assert "Traceback" not in err
    assert set(tmp_path.rglob("*")) == before  # no output, no temporary file


LEXICON_FIXTURE = Path(__file__).parents[1] / "data" / "lexicon"


def test_compact_lexicon_help(capfd):
    with pytest.raises(SystemExit) as exit_info:
        main(["poses", "compact-lexicon", "--help"])
    assert exit_info.value.code == 0
    assert "usage: signgen poses compact-lexicon" in capfd.readouterr().out


def test_compact_lexicon_writes_a_readable_lexicon(tmp_path, run_cli_fd):
    from signgen.poses.lexicon import Lexicon

    out = tmp_path / "compact"
    code, stdout, err = run_cli_fd("poses", "compact-lexicon", str(LEXICON_FIXTURE / "index.csv"), str(out), "--language", "gsg")
    assert code == 0, err
    compact = Lexicon.from_csv(out / "index.csv")
    assert stdout.strip() == f"wrote {out / 'index.csv'} ({len(compact)} entries)"
    assert sorted(e.gloss for e in compact) == sorted(e.gloss for e in Lexicon.from_csv(LEXICON_FIXTURE / "index.csv"))


@pytest.mark.parametrize("case", ["missing source", "no such language"])
def test_compact_lexicon_bad_input_is_one_line_exit_2(tmp_path, run_cli_fd, case):
    source = tmp_path / "missing.csv" if case == "missing source" else LEXICON_FIXTURE / "index.csv"
    extra = ["--language", "xyz"] if case == "no such language" else []
    code, _, err = run_cli_fd("poses", "compact-lexicon", str(source), str(tmp_path / "compact"), *extra)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("signgen: error: "), err
    assert not (tmp_path / "compact").exists()
