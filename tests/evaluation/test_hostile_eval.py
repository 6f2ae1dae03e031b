"""``signgen eval`` on real-world and hostile data (issue 17): a pose longer than its
frame folder fails that video and the summary is still written (with failed videos
listed) on every run; the dev split read from ``holistic/validation/`` and named in the
summary; missing poses extracted into the cache, never into the corpus; the temporaries
a SIGKILL leaves removed on resume; small-sample Fréchet distances flagged; unreadable
weights and a blocked ``--out`` as one real line.

Runs are tiny: SynthSign videos cut to 8 frames, the random-weight 16 x 16 pipeline of
the ``tiny_pipelines`` fixture, 1 step, no FID, no pose fidelity.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest

from signgen.corpora.phoenix import annotation_path, frame_file_name, frame_folder, pose_path
from signgen.errors import SigngenError
from signgen.poses.holistic import pose_arrays, pose_from_arrays, reduce_to_178
from signgen.poses.io import read_pose, write_pose

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FRAMES = 8
HEADER = "name|video|start|end|speaker|orth|translation"
FAST = ("--fid-frames-per-video", "0", "--no-pose-fidelity")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture(scope="module")
def source(synthsign_corpus) -> tuple[Path, str, Path]:
    """The SynthSign test video to copy from: its frame folder and its 178-point pose."""
    name = annotation_path(synthsign_corpus, "test").read_text(encoding="utf-8").splitlines()[1].split("|")[0]
    return frame_folder(synthsign_corpus, "test", name), pose_path(synthsign_corpus, "test", name)


def add_video(root: Path, split: str, name: str, source, frames: int = FRAMES, pose_frames: int | None = FRAMES,
              pose_folder: str | None = None) -> None:
    """Copy ``frames`` frames of the source video as ``name``, with a pose of ``pose_frames``
    frames (None: no pose) under ``holistic/<pose_folder or split>/``, and its CSV row."""
    frames_from, pose_from = source
    folder = frame_folder(root, split, name)
    folder.mkdir(parents=True)
    for index in range(frames):
        (folder / frame_file_name(index)).write_bytes((frames_from / frame_file_name(index)).read_bytes())
    if pose_frames is not None:
        xy, confidence = pose_arrays(reduce_to_178(read_pose(pose_from)))
        xy, confidence = xy[np.arange(pose_frames) % len(xy)], confidence[np.arange(pose_frames) % len(xy)]
        target = root / "holistic" / (pose_folder or split) / f"{name}.pose"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_pose(pose_from_arrays(xy, confidence, 25, 210, 260), target)
    csv = annotation_path(root, split)
    csv.parent.mkdir(parents=True, exist_ok=True)
    rows = csv.read_text(encoding="utf-8").splitlines() if csv.is_file() else [HEADER]
    csv.write_text("\n".join(rows + [f"{name}|{name}/1/*.png|-1|-1|Signer01|W H H|whh"]) + "\n", encoding="utf-8")


def snapshot(folder: Path) -> dict[str, tuple]:
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def run_eval(run_cli, corpus: Path, model: Path, out: Path, *extra) -> tuple[int, str, str]:
    return run_cli("eval", "--data", corpus, "--model", model, "--out", out, "--steps", "1", "--no-progress", *FAST, *extra)


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------ a pose longer than its frames


def test_a_pose_longer_than_its_frames_fails_that_video_and_every_run_writes_the_summary(
        tmp_path, source, tiny_pipelines, run_cli):
    corpus = tmp_path / "corpus"
    add_video(corpus, "test", "good", source)
    add_video(corpus, "test", "long-pose", source, pose_frames=FRAMES + 1)
    out = tmp_path / "run"
    for attempt in range(2):  # the sweep's crash came back on every rerun
        code, stdout, err = run_eval(run_cli, corpus, tiny_pipelines["frame_only"], out)
        assert code == 0, err
        assert "Traceback" not in err
        summary = summary_of(out)
        assert summary["videos"] == {"in_run": 2, "evaluated": 1, "failed": 1, "remaining": 0}
        (failed,) = summary["failed"]
        assert failed["name"] == "long-pose" and "its pose has 9 frames but the video has 8" in failed["reason"]
        table = (out / "summary.md").read_text(encoding="utf-8")
        assert "## Failed videos" in table and "- long-pose: video long-pose: its pose has 9 frames" in table
        assert (out / "summary.png").is_file() and (out / "per_video.jsonl").is_file()
        assert "(1 failed)" in stdout
    assert not (out / "videos" / "long-pose.mp4").exists()


def test_a_run_whose_every_pose_is_too_long_is_an_error_that_still_writes_its_summary(
        tmp_path, source, tiny_pipelines, run_cli, cli_error_line):
    corpus = tmp_path / "corpus"
    add_video(corpus, "test", "long-pose", source, pose_frames=FRAMES + 3)
    out = tmp_path / "run"
    for attempt in range(2):  # a resumed run that still measured nothing fails alike
        code, stdout, err = run_eval(run_cli, corpus, tiny_pipelines["frame_only"], out)
        assert code == 2, err
        line = cli_error_line(err)
        assert "no video was evaluated (1 of 1 failed, the first (long-pose) with: video long-pose: its pose has 11" in line
        assert str(out / "summary.md") in line and "evaluated 0 of 1" not in stdout
    summary = summary_of(out)
    assert summary["videos"]["failed"] == 1 and summary["failed"][0]["name"] == "long-pose"
    for name in ("ssim_gray", "psnr", "tde"):
        assert summary["metrics"][name]["skipped"] == "no video evaluated"
    assert "| ssim_gray | skipped: no video evaluated |" in (out / "summary.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------ the dev split, the pose cache


def test_dev_split_reads_validation_poses_extracts_into_the_cache_only_and_names_the_split(
        tmp_path, source, tiny_pipelines, run_cli, private_cache, monkeypatch):
    import signgen.poses.extract

    corpus = tmp_path / "corpus"
    add_video(corpus, "dev", "in-validation", source, pose_folder="validation")
    add_video(corpus, "dev", "no-pose", source, pose_frames=None)
    extracted = []

    def fake_extract(path, progress=True, fps=None):  # MediaPipe takes seconds; its output is not the point
        extracted.append(Path(path).name)
        xy, confidence = pose_arrays(reduce_to_178(read_pose(source[1])))
        return pose_from_arrays(xy[:FRAMES], confidence[:FRAMES], 25, 210, 260)

    monkeypatch.setattr(signgen.poses.extract, "extract_pose", fake_extract)
    before = snapshot(corpus)
    out = tmp_path / "run"
    code, stdout, err = run_eval(run_cli, corpus, tiny_pipelines["frame_only"], out, "--split", "dev")
    assert code == 0, err
    assert extracted == ["no-pose"], "the pose under holistic/validation/ was not read"
    assert snapshot(corpus) == before, "the corpus folder was written"
    cached = list(private_cache.rglob("*.pose"))
    assert [p.name for p in cached] == ["no-pose.pose"] and cached[0].parent.name == "dev"
    notice = [line for line in stdout.splitlines() if "MediaPipe" in line]
    assert len(notice) == 1 and str(cached[0].parent) in notice[0] and "corpus folder is not written" in notice[0]
    assert summary_of(out)["videos"] == {"in_run": 2, "evaluated": 2, "failed": 0, "remaining": 0}
    summary = summary_of(out)
    assert "dev-split reference" in summary["metrics"]["fid"]["protocol"]
    table = (out / "summary.md").read_text(encoding="utf-8")
    assert "frames vs dev references" in table and "test references" not in table and "test-split" not in table


# ------------------------------------------------------------------ resuming after SIGKILL


def test_a_resumed_run_removes_the_temporaries_a_kill_left_of_its_own_outputs(tmp_path, source, tiny_pipelines, run_cli):
    corpus = tmp_path / "corpus"
    add_video(corpus, "test", "first", source)
    add_video(corpus, "test", "second", source)
    out = tmp_path / "run"
    assert run_eval(run_cli, corpus, tiny_pipelines["frame_only"], out, "--limit", "1")[0] == 0
    # What SIGKILL leaves: write-then-rename temporaries (mkstemp names), 0 bytes or half written.
    stale = [out / "videos" / ".second.k2x_9q0a.mp4", out / "shards" / ".rank-0.abcdefgh.npz",
             out / ".summary.zz1234yy.json", out / ".summary.a1b2c3d4.png"]
    foreign = [out / "videos" / ".not-in-this-split.abcdefgh.mp4", out / "videos" / ".second.notes.txt",
               out / "videos" / ".second.toolongname.mp4"]
    for path in stale + foreign:
        path.write_bytes(b"")
    code, _, err = run_eval(run_cli, corpus, tiny_pipelines["frame_only"], out)
    assert code == 0, err
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in foreign), "a file that is not a temporary of this run's outputs was removed"
    assert sorted(p.name for p in (out / "videos").glob("[!.]*.mp4")) == ["first.mp4", "second.mp4"]


# ------------------------------------------------------------------ the report


def test_few_frechet_samples_are_flagged_and_the_references_split_is_named():
    from signgen.evaluation.report import summarize, summary_markdown, summary_table_rows
    from signgen.evaluation.shards import FeatureStatistics

    rng = np.random.default_rng(0)
    statistics = FeatureStatistics({"fid": 2048, "fvd": 4})
    for name in ("a", "b", "c"):
        statistics.add(name, {("fid", "generated"): rng.normal(size=(1, 2048)), ("fid", "reference"): rng.normal(size=(1, 2048)),
                              ("fvd", "generated"): rng.normal(size=(3, 4)), ("fvd", "reference"): rng.normal(size=(3, 4))})
    options = types.SimpleNamespace(drive="pose", fid_frames_per_video=1, pose_fidelity=False)
    config = {"split": "dev", "drive": "pose", "model": "m", "data": "d", "steps": 1, "seed": 0}
    summary = summarize([], statistics, {"fid_vid": "no --fid-vid-weights given"}, options, config, 3)
    fid, fvd = summary["metrics"]["fid"], summary["metrics"]["fvd"]
    assert fid["value"] is not None and fid["caveat"] == "unreliable: 3 samples in 2048 dimensions"
    assert fvd["value"] is not None and "caveat" not in fvd  # 9 samples in 4 dimensions
    shown = dict((name, value) for name, value, _ in summary_table_rows(summary))
    assert shown["fid"].endswith("(unreliable: 3 samples in 2048 dimensions)")
    table = summary_markdown(summary)
    assert "unreliable: 3 samples in 2048 dimensions" in table and "frames vs dev references" in table
    assert "test" not in fid["protocol"] and "same dev-split reference videos" in fid["protocol"]


# ------------------------------------------------------------------ one real line


@pytest.mark.parametrize("content", [b"\x80\x02.", b"", b"garbage" * 10, b"PK\x03\x04 cut"])
def test_unreadable_weights_are_a_real_message(tmp_path, content):
    from signgen.video.features import load_weights

    path = tmp_path / "i3d.pt"
    path.write_bytes(content)
    with pytest.raises(SigngenError) as error:
        load_weights(path)
    message = str(error.value)
    assert "pop from empty list" not in message and "weights_only" not in message and not message.endswith(": ")
    assert message.startswith(f"cannot load weights {path}: not a ")


def test_unreadable_weights_through_eval_are_one_line_and_nothing_written(tmp_path, source, tiny_pipelines,
                                                                           run_cli, cli_error_line):
    corpus = tmp_path / "corpus"
    add_video(corpus, "test", "good", source)
    (tmp_path / "i3d.pt").write_bytes(b"\x80\x02.")
    out = tmp_path / "run"
    code, _, err = run_eval(run_cli, corpus, tiny_pipelines["frame_only"], out, "--fvd-weights", tmp_path / "i3d.pt")
    assert code == 2 and "Traceback" not in err
    assert "not a readable PyTorch checkpoint" in cli_error_line(err)
    assert not out.exists()


@pytest.mark.parametrize("where", ["inside", "itself"])
def test_an_out_folder_inside_the_read_only_corpus_is_refused(where, tmp_path, source, tiny_pipelines, run_cli, cli_error_line):
    corpus = tmp_path / "corpus"
    add_video(corpus, "test", "good", source)
    (tmp_path / "link").symlink_to(corpus)  # the same corpus by another name
    before = snapshot(corpus)
    out = {"inside": tmp_path / "link" / "runs" / "r1", "itself": corpus}[where]
    code, _, err = run_eval(run_cli, corpus, tiny_pipelines["frame_only"], out)
    assert code == 2
    assert f"--out {out} is inside {corpus}, which is only read" in cli_error_line(err)
    assert snapshot(corpus) == before


def test_an_out_folder_that_cannot_be_created_is_one_line(tmp_path, source, tiny_pipelines, run_cli, cli_error_line):
    corpus = tmp_path / "corpus"
    add_video(corpus, "test", "good", source)
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    code, _, err = run_eval(run_cli, corpus, tiny_pipelines["frame_only"], blocker / "run")
    assert code == 2 and "Traceback" not in err
    assert f"cannot create the run folder {blocker / 'run'}" in cli_error_line(err)
    assert blocker.read_text() == "mine"
