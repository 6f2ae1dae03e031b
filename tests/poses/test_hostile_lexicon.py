"""Hostile lexicons (issue 17): a link inside a lexicon folder that leads out of it is
refused (the CSV's ``../`` and absolute paths already are), links that stay inside are
followed; unreadable clips and pose files are real one-line messages, not a parser's
"(error)". Through ``signgen poses from-gloss`` (exit 2, one line, nothing written) and
the API."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from signgen.errors import SigngenError
from signgen.poses.lexicon import COLUMNS, Lexicon


def write_lexicon(folder: Path, *paths: str) -> Path:
    """An index.csv in ``folder`` with one row per clip path: glosses A, B, C, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [",".join(COLUMNS)] + [f"{path},de,gsg,0,0,{chr(65 + i)},{chr(65 + i)},0" for i, path in enumerate(paths)]
    index = folder / "index.csv"
    index.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return index


def from_gloss(run_cli, cli_error_line, index: Path, glosses: str, output: Path) -> str:
    code, _, err = run_cli("poses", "from-gloss", glosses, "--lexicon", index, "--on-missing", "error", "-o", output)
    assert code == 2, err
    assert "Traceback" not in err
    return cli_error_line(err)


def test_a_clip_linked_outside_the_lexicon_folder_is_refused(tmp_path, gsg_pose_path, run_cli, cli_error_line):
    outside = tmp_path / "private" / "clip.pose"
    outside.parent.mkdir()
    shutil.copy(gsg_pose_path, outside)
    lexicon_dir = tmp_path / "lexicon"
    lexicon_dir.mkdir()
    os.symlink(outside, lexicon_dir / "a.pose")
    index = write_lexicon(lexicon_dir, "a.pose")
    lexicon = Lexicon.from_csv(index)
    with pytest.raises(SigngenError, match=r"clip of lexicon entry 'A' \(line 2\) is a link to .*private/clip\.pose, "
                                           r"outside the lexicon folder"):
        lexicon.clip(lexicon.lookup("A"))
    output = tmp_path / "out.pose"
    assert "outside the lexicon folder" in from_gloss(run_cli, cli_error_line, index, "A", output)
    assert not output.exists() and not list(tmp_path.glob(".out*"))


def test_a_subfolder_linked_outside_the_lexicon_folder_is_refused(tmp_path, gsg_pose_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(gsg_pose_path, elsewhere / "a.pose")
    lexicon_dir = tmp_path / "lexicon"
    lexicon_dir.mkdir()
    os.symlink(elsewhere, lexicon_dir / "gsg")
    lexicon = Lexicon.from_csv(write_lexicon(lexicon_dir, "gsg/a.pose"))
    with pytest.raises(SigngenError, match="outside the lexicon folder"):
        lexicon.clip(lexicon.lookup("A"))


def test_links_inside_the_lexicon_and_a_lexicon_reached_through_a_link_are_followed(tmp_path, gsg_pose_path, run_cli):
    real = tmp_path / "real-lexicon"
    (real / "clips").mkdir(parents=True)
    shutil.copy(gsg_pose_path, real / "clips" / "a.pose")
    os.symlink("clips/a.pose", real / "alias.pose")
    write_lexicon(real, "clips/a.pose", "alias.pose")
    os.symlink(real, tmp_path / "linked-lexicon")
    lexicon = Lexicon.from_csv(tmp_path / "linked-lexicon" / "index.csv")
    a, b = lexicon.clip(lexicon.lookup("A")), lexicon.clip(lexicon.lookup("B"))
    np.testing.assert_array_equal(a.body.data, b.body.data)
    code, _, err = run_cli("poses", "from-gloss", "A B", "--lexicon", tmp_path / "linked-lexicon" / "index.csv",
                           "-o", tmp_path / "out.pose")
    assert code == 0, err
    assert (tmp_path / "out.pose").is_file()


def test_unreadable_clips_are_real_messages(tmp_path, gsg_pose_path, run_cli, cli_error_line):
    lexicon_dir = tmp_path / "lexicon"
    lexicon_dir.mkdir()
    (lexicon_dir / "cut.pose").write_bytes(gsg_pose_path.read_bytes()[:300])  # cut inside its header
    np.savez(lexicon_dir / "no-xy.npz", confidence=np.zeros((3, 178), np.uint8), fps=np.float32(25), size=np.array([10, 10]))
    (lexicon_dir / "not-a-zip.npz").write_bytes(b"not a zip")
    index = write_lexicon(lexicon_dir, "cut.pose", "no-xy.npz", "not-a-zip.npz")
    messages = [from_gloss(run_cli, cli_error_line, index, gloss, tmp_path / "out.pose") for gloss in "ABC"]
    for message in messages:
        assert not message.rstrip().endswith(("(error)", "(KeyError)", "(BadZipFile)")), message
    assert "not a readable .pose file" in messages[0] and "cut.pose" in messages[0]
    assert "lacks the array 'xy'" in messages[1]
    assert "not a readable compact clip" in messages[2]
    assert not (tmp_path / "out.pose").exists()
