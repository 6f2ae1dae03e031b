"""Hostile and real-world corpora (issue 17): paths from the CSV confined to the corpus
folder (links resolved), the dev split's poses under ``holistic/validation/``, extracted
poses cached outside the corpus with a line that says where, and a split without frame
folders as one error line. Each case through the API or ``signgen eval``: exit 2, one
stderr line, no traceback, nothing written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from signgen.corpora.phoenix import (
    PhoenixCorpus,
    annotation_path,
    frame_file_name,
    frame_folder,
    pose_path,
)
from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.holistic import pose_from_arrays
from signgen.poses.io import write_pose

HEADER = "name|video|start|end|speaker|orth|translation"
FRAMES = 3


def still_pose(frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform([20, 20], [190, 240], size=(frames, skeleton.NUM_POINTS, 2)).astype(np.float32)
    return pose_from_arrays(xy, np.ones(xy.shape[:2], np.float32), 25, 210, 260)


def write_frames(folder: Path, count: int = FRAMES) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.fromarray(np.full((260, 210, 3), 40 * index, np.uint8)).save(folder / frame_file_name(index))


def write_csv(root: Path, split: str, *rows: str) -> None:
    path = annotation_path(root, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")


def row(name: str, video: str | None = None) -> str:
    return f"{name}|{video if video is not None else name + '/1/*.png'}|-1|-1|Signer01|A B|a b"


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every path under ``folder`` with its size and modification time (links not followed)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        stat = path.lstat()
        found[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A corpus whose test split holds one good video, with frames and pose."""
    root = tmp_path / "corpus"
    write_frames(frame_folder(root, "test", "good"))
    pose_path(root, "test", "good").parent.mkdir(parents=True)
    write_pose(still_pose(FRAMES), pose_path(root, "test", "good"))
    write_csv(root, "test", row("good"))
    return root


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    """The pose cache in the test's own folder, never the user's ~/.cache."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


def eval_error(run_cli, cli_error_line, corpus: Path, out: Path, split: str = "test") -> str:
    """``signgen eval`` on ``corpus`` must stop with one error line before writing anything.
    The refusals come before the model is loaded, so no model folder is needed."""
    code, _, err = run_cli("eval", "--data", corpus, "--split", split, "--out", out, "--steps", "1",
                           "--fid-frames-per-video", "0", "--no-pose-fidelity", "--no-progress")
    assert code == 2, err
    assert "Traceback" not in err
    return cli_error_line(err)


# ------------------------------------------------------------------ names that leave the corpus


@pytest.mark.parametrize("name", ["../../../../outside/clip", "../good", "/tmp/outside/clip", "a/b", "..",
                                  ".hidden", "sub\\clip"])
def test_a_name_that_is_not_one_plain_folder_name_is_refused(corpus, tmp_path, run_cli, cli_error_line, name):
    # What the attack of the sweep needs: frames where the name leads, a file to overwrite.
    write_frames(tmp_path / "outside" / "clip")
    write_frames(frame_folder(corpus, "test", "a") / "b")
    (tmp_path / "outside" / "clip.mp4").write_bytes(b"the user's own video")
    write_csv(corpus, "test", row("good"), row(name))
    before = snapshot(tmp_path)

    with pytest.raises(SigngenError, match=r"line 3: video name .* is not a plain folder name"):
        PhoenixCorpus(corpus).split("test")
    message = eval_error(run_cli, cli_error_line, corpus, tmp_path / "run")
    assert "line 3" in message and "not a plain folder name" in message
    assert snapshot(tmp_path) == before, "something was written"


@pytest.mark.parametrize("video", ["../../../../outside/clip/*.png", "/etc/*.png", "C:\\frames\\*.png", "a/../../b/*.png"])
def test_a_video_column_that_leaves_the_corpus_is_refused(corpus, tmp_path, run_cli, cli_error_line, video):
    write_csv(corpus, "test", row("good", video))
    before = snapshot(tmp_path)
    with pytest.raises(SigngenError, match=r"line 2: video column .* is absolute or holds '\.\.'"):
        PhoenixCorpus(corpus).split("test")
    assert "video column" in eval_error(run_cli, cli_error_line, corpus, tmp_path / "run")
    assert snapshot(tmp_path) == before


def test_a_huge_hostile_name_is_cut_short_in_the_message(corpus, tmp_path, run_cli, cli_error_line):
    write_csv(corpus, "test", row("../" * 40000 + "x"))
    message = eval_error(run_cli, cli_error_line, corpus, tmp_path / "run")
    assert len(message) < 400 and "120001 characters" in message


# ------------------------------------------------------------------ links that leave the corpus


def test_a_frame_folder_linked_outside_the_corpus_is_refused(corpus, tmp_path, run_cli, cli_error_line):
    write_frames(tmp_path / "elsewhere" / "private")
    os.symlink(tmp_path / "elsewhere" / "private", frame_folder(corpus, "test", "linked"))
    write_csv(corpus, "test", row("good"), row("linked"))
    before = snapshot(tmp_path)
    with pytest.raises(SigngenError, match=r"line 3: the frame folder of video 'linked' is a link to .*elsewhere"):
        PhoenixCorpus(corpus).split("test")
    assert "outside the corpus folder" in eval_error(run_cli, cli_error_line, corpus, tmp_path / "run")
    assert snapshot(tmp_path) == before


def test_a_pose_linked_outside_the_corpus_is_refused(corpus, tmp_path):
    write_frames(frame_folder(corpus, "test", "linked"))
    write_pose(still_pose(FRAMES), tmp_path / "secret.pose")
    os.symlink(tmp_path / "secret.pose", pose_path(corpus, "test", "linked"))
    write_csv(corpus, "test", row("good"), row("linked"))
    with pytest.raises(SigngenError, match=r"line 3: the pose of video 'linked' is a link to .*secret\.pose"):
        PhoenixCorpus(corpus).split("test")
    # a dangling link that would lead out is refused alike
    os.unlink(pose_path(corpus, "test", "linked"))
    os.symlink(tmp_path / "nothing-yet.pose", pose_path(corpus, "test", "linked"))
    with pytest.raises(SigngenError, match="outside the corpus folder"):
        PhoenixCorpus(corpus).split("test")


def test_a_frame_file_linked_outside_the_corpus_is_not_read(corpus, tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((260, 210, 3), np.uint8)).save(tmp_path / "private-photo.png")
    folder = frame_folder(corpus, "test", "good")
    (folder / frame_file_name(1)).unlink()
    os.symlink(tmp_path / "private-photo.png", folder / frame_file_name(1))
    (sample,) = PhoenixCorpus(corpus).split("test")
    with pytest.raises(SigngenError, match=r"video good: frame images0002\.png is a link to .*private-photo\.png"):
        sample.frames()


def test_links_inside_the_corpus_and_a_split_folder_linked_as_a_whole_are_followed(tmp_path):
    # A corpus assembled from links: the test split's frames on "another disk".
    disk = tmp_path / "disk"
    write_frames(disk / "test-frames" / "far")
    root = tmp_path / "corpus"
    frame_folder(root, "test", "x").parent.parent.mkdir(parents=True)
    os.symlink(disk / "test-frames", frame_folder(root, "test", "x").parent)
    # and inside the corpus, a video folder that links to another video folder
    os.symlink("far", frame_folder(root, "test", "alias"))
    write_csv(root, "test", row("far"), row("alias"))
    samples = PhoenixCorpus(root).split("test")
    assert [s.name for s in samples] == ["far", "alias"]
    assert all(s.frames().shape == (FRAMES, 260, 210, 3) for s in samples)


# ------------------------------------------------------------------ the real release's layout


def test_the_dev_split_reads_poses_from_holistic_validation(tmp_path):
    root = tmp_path / "corpus"
    for name in ("in-validation", "in-both"):
        write_frames(frame_folder(root, "dev", name))
        (root / "holistic" / "validation").mkdir(parents=True, exist_ok=True)
        write_pose(still_pose(FRAMES, seed=1), root / "holistic" / "validation" / f"{name}.pose")
    (root / "holistic" / "dev").mkdir()
    write_pose(still_pose(FRAMES, seed=2), pose_path(root, "dev", "in-both"))
    write_csv(root, "dev", row("in-validation"), row("in-both"))
    before = snapshot(tmp_path)
    validation, both = PhoenixCorpus(root).split("dev")
    assert validation.has_pose and both.has_pose
    np.testing.assert_array_equal(validation.pose_arrays()[0], still_pose(FRAMES, seed=1).body.data[:, 0].filled(0))
    # holistic/dev/ first, as before
    np.testing.assert_array_equal(both.pose_arrays()[0], still_pose(FRAMES, seed=2).body.data[:, 0].filled(0))
    assert snapshot(tmp_path) == before, "reading poses must not extract or write anything"


def test_extracted_poses_go_to_the_cache_and_a_line_names_it(tmp_path, private_cache, monkeypatch, capsys):
    import signgen.poses.extract

    calls = []

    def fake_extract(path, progress=True, fps=None):
        calls.append(Path(path))
        return still_pose(FRAMES)

    monkeypatch.setattr(signgen.poses.extract, "extract_pose", fake_extract)
    root = tmp_path / "corpus"
    write_frames(frame_folder(root, "dev", "no-pose"))
    write_csv(root, "dev", row("no-pose"))
    before = snapshot(root)
    corpus = PhoenixCorpus(root)
    corpus.ensure_poses("dev", progress=False)
    assert len(calls) == 1
    assert snapshot(root) == before, "the corpus folder was written"
    cached = corpus.pose_cache("dev") / "no-pose.pose"
    assert cached.is_file() and private_cache in cached.parents
    line = capsys.readouterr().out.strip()
    assert str(corpus.pose_cache("dev")) in line and "the corpus folder is not written" in line
    assert PhoenixCorpus(root).split("dev")[0].has_pose  # found again in the cache


def test_a_split_without_any_frame_folder_is_one_error_line(corpus, tmp_path, run_cli, cli_error_line):
    shutil.rmtree(frame_folder(corpus, "test", "good"))
    write_csv(corpus, "test", row("good"), row("also-missing"))
    with pytest.raises(SigngenError, match=r"none of the 2 videos of PHOENIX-2014-T\.test\.corpus\.csv has a frame folder"):
        PhoenixCorpus(corpus).split("test")
    before = snapshot(tmp_path)
    message = eval_error(run_cli, cli_error_line, corpus, tmp_path / "run")  # one line: no warning before it
    assert "none of the 2 videos" in message and "first: 'good'" in message
    assert snapshot(tmp_path) == before
