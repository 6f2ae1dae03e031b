"""Output paths every writing command refuses before any work (issue 26, class 1), and
error lines safe for a terminal (class 10): an output whose suffix is not the format
written, an output that is the command's own input (by another name too), a name longer
than the file system takes, and control bytes echoed from user input. Each is one
`signgen: error:` line, exit 2, nothing written and every input unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GSG_A

from signgen.atomic import atomic_folder, atomic_output, check_output_path
from signgen.cli.main import one_line
from signgen.errors import SigngenError

LEXICON = Path(__file__).parents[1] / "data" / "lexicon"

def snapshot(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def inputs(tmp_path):
    """A user's folder: a pose, an mp4 that is not ours to replace, a GIF photo."""
    from PIL import Image

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "in.pose").write_bytes(GSG_A.read_bytes())
    (folder / "video.mp4").write_bytes(b"my holiday video, not pose bytes")
    Image.new("RGB", (210, 260), (200, 40, 40)).save(folder / "me.gif")
    return folder


# Every command that writes a file: its arguments with OUT as the output to test.
WRITERS = {
    "poses extract": lambda d, out: ["poses", "extract", d / "video.mp4", "-o", out],
    "poses show": lambda d, out: ["poses", "show", d / "in.pose", "-o", out],
    "poses show --gif": lambda d, out: ["poses", "show", d / "in.pose", "--gif", "-o", out],
    "poses from-gloss": lambda d, out: ["poses", "from-gloss", "A", "-o", out],
    "poses from-gloss --video": lambda d, out: ["poses", "from-gloss", "A", "-o", d.parent / "ok.pose", "--video", out],
    "render": lambda d, out: ["render", "--gloss", "A", "--signer", d / "me.gif", "-o", out],
    "data signer-photo": lambda d, out: ["data", "signer-photo", "-o", out],
}
SUFFIX = {"poses extract": ".pose", "poses from-gloss": ".pose", "data signer-photo": ".png"}


def refused(run_cli_fd, cli_error_line, args, folder, before) -> str:
    code, out, err = run_cli_fd(*args)
    assert code == 2, out + err
    line = cli_error_line(err)
    assert snapshot(folder) == before, "an input or a user's file changed"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["mine"], "something was written"
    return line


@pytest.mark.parametrize("command", WRITERS)
def test_an_output_of_another_format_is_refused_and_the_file_there_kept(command, inputs, run_cli_fd, cli_error_line):
    before = snapshot(inputs)
    # video.mp4 for a pose or a PNG; a .pose name for a video: the bytes would not be what the name says.
    target = inputs / ("video.mp4" if command in SUFFIX else "in.pose")
    line = refused(run_cli_fd, cli_error_line, WRITERS[command](inputs, target), inputs, before)
    expected = SUFFIX.get(command, ".mp4 (or .gif)")
    assert f"must name a{'n' if expected.startswith('.mp4') else ''} {expected} file" in line


def test_extract_onto_its_own_input_is_refused_by_suffix_and_by_identity(inputs, run_cli_fd, cli_error_line):
    before = snapshot(inputs)
    line = refused(run_cli_fd, cli_error_line, ["poses", "extract", inputs / "video.mp4", "-o", inputs / "video.mp4"], inputs, before)
    assert "must name a .pose file" in line
    # The right suffix, but the input itself, under its own name and through a link.
    (inputs / "link.pose").symlink_to(inputs / "in.pose")
    before = snapshot(inputs)
    for out in (inputs / "in.pose", inputs / "link.pose"):
        line = refused(run_cli_fd, cli_error_line, ["poses", "extract", inputs / "in.pose", "-o", out], inputs, before)
        assert f"{out} is the input {inputs / 'in.pose'}" in line


def test_render_onto_its_own_signer_photo_is_refused(inputs, run_cli_fd, cli_error_line):
    before = snapshot(inputs)
    line = refused(run_cli_fd, cli_error_line, WRITERS["render"](inputs, inputs / "me.gif"), inputs, before)
    assert "is the input" in line and "me.gif" in line


@pytest.mark.parametrize("command", WRITERS)
def test_a_300_character_output_name_is_one_line(command, inputs, run_cli_fd, cli_error_line):
    before = snapshot(inputs)
    suffix = SUFFIX.get(command, ".mp4")
    line = refused(run_cli_fd, cli_error_line, WRITERS[command](inputs, inputs / ("x" * 300 + suffix)), inputs, before)
    assert f"is {300 + len(suffix)} bytes long; at most" in line and "File name too long" not in line


@pytest.mark.parametrize("args", [["data", "synth", "--videos", "4", "--out"], ["eval", "--data", "DATA", "--out"],
                                  ["train", "g2p", "--data", "DATA", "--out"],
                                  ["poses", "compact-lexicon", LEXICON / "index.csv"]])
def test_a_300_character_output_folder_is_one_line(args, inputs, run_cli_fd, cli_error_line):
    before = snapshot(inputs)
    args = [inputs if a == "DATA" else a for a in args]
    line = refused(run_cli_fd, cli_error_line, [*args, inputs.parent / ("c" * 300)], inputs, before)
    assert "is 300 bytes long; at most" in line


def test_a_path_too_long_anywhere_else_is_one_line_too(tmp_path, run_cli_fd, cli_error_line):
    """The command line's net for a name no guard saw (an input here): never a traceback."""
    code, _, err = run_cli_fd("poses", "info", tmp_path / ("p" * 300 + ".pose"))
    assert code == 2
    assert cli_error_line(err).startswith(f"signgen: error: file name too long for the file system: {tmp_path}")


def test_the_guard_and_the_writers_refuse_a_long_name_through_the_api(tmp_path):
    long = tmp_path / ("x" * 250 + ".pose")  # fits the file system, not beside its temporary
    for write in (atomic_output, atomic_folder):
        with pytest.raises(SigngenError, match="bytes long"):
            with write(long):
                pytest.fail("the work ran")
    with pytest.raises(SigngenError, match="bytes long"):
        check_output_path(tmp_path / ("x" * 240 + ".pose"), (".pose",))  # room for two temporaries
    assert check_output_path(tmp_path / ("x" * 230 + ".pose"), (".pose",)).name.startswith("x")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- control bytes


def test_control_bytes_in_a_gloss_reach_the_terminal_escaped(tmp_path, run_cli_fd, cli_error_line):
    gloss = "HALLO\x1b[2J\x1b]0;owned\x07\x7f\x9b31m\u202eX"
    code, _, err = run_cli_fd("poses", "from-gloss", gloss, "--on-missing", "error", "-o", tmp_path / "x.pose")
    assert code == 2
    line = cli_error_line(err)
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in line), repr(line)
    assert "HALLO\\x1b[2J\\x1b]0;owned\\x07\\x7f\\x9b31m\\u202eX" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, shown", [("a\tb\nc", "a b c"), ("bell\x07", "bell\\x07"), ("nul\x00", "nul\\x00"),
                                         ("über ✓ 日本", "über ✓ 日本")])
def test_one_line_escapes_controls_and_keeps_printable_text(text, shown):
    assert one_line(text) == shown
