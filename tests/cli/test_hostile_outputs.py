"""Hostile output paths of `signgen poses show`, `poses compact-lexicon` and `data synth`
(issue 17): one `signgen: error:` line, exit 2, no traceback, and nothing written where it
must not be: no output of a command that failed, no user file overwritten."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import GSG_A

LEXICON = Path(__file__).parents[1] / "data" / "lexicon"


def snapshot(folder: Path) -> dict:
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None for path in sorted(folder.rglob("*"))}


# ---------------------------------------------------------------- poses show --gif


@pytest.mark.parametrize("blocker", ["folder", "missing folder"])
def test_show_checks_the_gif_before_writing_the_mp4(blocker, tmp_path, run_cli_fd, cli_error_line):
    output = tmp_path / "x.mp4"
    if blocker == "folder":
        (tmp_path / "x.gif").mkdir()  # the gif's name is taken by a folder
    else:
        output = tmp_path / "nowhere" / "x.mp4"
    code, _, err = run_cli_fd("poses", "show", GSG_A, "-o", output, "--gif")
    assert code == 2
    assert "output" in cli_error_line(err)
    assert not output.exists()
    assert [p.name for p in tmp_path.iterdir()] == (["x.gif"] if blocker == "folder" else [])


def test_show_refuses_a_gif_name_that_is_a_device(tmp_path, run_cli_fd, cli_error_line):
    (tmp_path / "x.gif").symlink_to("/dev/null")
    code, _, err = run_cli_fd("poses", "show", GSG_A, "-o", tmp_path / "x.mp4", "--gif")
    assert code == 2 and "not a regular file" in cli_error_line(err)
    assert not (tmp_path / "x.mp4").exists() and (tmp_path / "x.gif").is_symlink()


# ---------------------------------------------------------------- poses compact-lexicon


def test_compact_lexicon_into_a_device_or_file_is_one_line(tmp_path, run_cli_fd, cli_error_line):
    code, _, err = run_cli_fd("poses", "compact-lexicon", LEXICON / "index.csv", "/dev/null")
    assert code == 2 and "is not a folder: /dev/null" in cli_error_line(err)
    mine = tmp_path / "notes.txt"
    mine.write_text("mine\n")
    for out in (mine, mine / "compact"):
        code, _, err = run_cli_fd("poses", "compact-lexicon", LEXICON / "index.csv", out)
        assert code == 2 and "not a folder" in cli_error_line(err)
    assert mine.read_text() == "mine\n" and [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_compact_lexicon_refuses_a_users_folder(tmp_path, run_cli_fd, cli_error_line):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "index.csv").write_text("name,phone\nme,123\n")
    (out / "gsg").mkdir()
    (out / "gsg" / "letter.txt").write_text("keep me\n")
    before = snapshot(out)
    code, _, err = run_cli_fd("poses", "compact-lexicon", LEXICON / "index.csv", out)
    assert code == 2
    assert "not empty and not a compact lexicon" in cli_error_line(err)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary folder left


def test_compact_lexicon_writes_a_new_or_empty_folder_and_rewrites_its_own(tmp_path, run_cli_fd):
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (tmp_path / "new", empty):
        code, out_text, err = run_cli_fd("poses", "compact-lexicon", LEXICON / "index.csv", out)
        assert code == 0, err
        assert (out / "index.csv").is_file() and (out / "LICENSE").is_file()
    # A compact lexicon written before is rewritten as a whole; a README beside it stays.
    (empty / "README.md").write_text("about these clips\n")
    (empty / "gsg" / "stale.npz").write_bytes(b"old clip")
    code, _, err = run_cli_fd("poses", "compact-lexicon", LEXICON / "index.csv", empty)
    assert code == 0, err
    assert (empty / "README.md").read_text() == "about these clips\n"
    assert not (empty / "gsg" / "stale.npz").exists()
    assert snapshot(empty) == {**snapshot(tmp_path / "new"), "README.md": b"about these clips\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "new"]


def test_compact_lexicon_failure_leaves_the_old_lexicon(tmp_path, run_cli_fd, cli_error_line):
    out = tmp_path / "compact"
    assert run_cli_fd("poses", "compact-lexicon", LEXICON / "index.csv", out)[0] == 0
    before = snapshot(out)
    source = tmp_path / "source"
    shutil.copytree(LEXICON, source)
    clips = sorted(source.rglob("*.pose"))
    clips[-1].write_bytes(clips[-1].read_bytes()[:100])  # one clip damaged: the copy fails mid-way
    code, _, err = run_cli_fd("poses", "compact-lexicon", source / "index.csv", out)
    assert code == 2 and "Traceback" not in err
    cli_error_line(err)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compact", "source"]


# ---------------------------------------------------------------- data synth --videos


@pytest.mark.parametrize("videos", ["100001", "10000000"])
def test_synth_limits_the_number_of_videos(videos, tmp_path, run_cli_fd, cli_error_line):
    code, _, err = run_cli_fd("data", "synth", "--out", tmp_path / "c", "--videos", videos)
    assert code == 2
    assert "--videos must be at most 100,000" in cli_error_line(err)
    assert not (tmp_path / "c").exists()
