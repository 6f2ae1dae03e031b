"""``signgen eval``: straight through, resumed after a kill, sharded over 2 processes, bad
inputs; and the pieces it is made of (shards, statistics, pose fidelity).

Runs are tiny: 3 SynthSign videos of 8 frames, a random-weight micro pipeline, 1 sampling
step, FID on 1 frame per video where FID is tested (InceptionV3 takes about a second per
frame on a CPU) and off elsewhere, pose fidelity (MediaPipe) only where it is tested.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from signgen.cli.main import main
from signgen.corpora.phoenix import annotation_path, frame_file_name, frame_folder, pose_path
from signgen.errors import SigngenError
from signgen.evaluation.report import evenly_spaced
from signgen.evaluation.run import video_seed
from signgen.evaluation.shards import (
    FeatureStatistics,
    RowWriter,
    read_all_rows,
    read_rows,
    video_names_in_statistics,
)
from signgen.poses.fidelity import compare_poses, measure_pose_fidelity, pool_pose_fidelity
from signgen.poses import skeleton
from signgen.poses.holistic import pose_arrays, pose_from_arrays, reduce_to_178
from signgen.poses.io import read_pose, write_pose
from signgen.corpora.synthsign import SynthSignSettings, write_synthsign

FRAMES_PER_VIDEO = 8


# ------------------------------------------------------------------ fixtures

# Every run on one thread, as torchrun starts each process, so that runs in this process,
# in subprocesses and under torchrun compute alike to the last bit.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_frame_model, tiny_adapter) -> dict[str, Path]:
    """A random-weight 16 x 16 pipeline without guidance (one UNet call per step), and the
    frame model and temporal adapter folders of other stages."""
    from signgen.pipelines.pipeline import SignPipeline

    root = tmp_path_factory.mktemp("models")
    model = tiny_frame_model()
    frame_dir = model.save_pretrained(root / "frame_model")
    tiny_adapter(model).save_pretrained(root / "adapter", safe_serialization=True)
    SignPipeline.assemble(frame_dir, None, root / "pipeline", num_steps=1, appearance_scale=1.0, full_scale=1.0)
    return {"pipeline": root / "pipeline", "frame_model": frame_dir, "adapter": root / "adapter"}


@pytest.fixture(scope="module")
def tiny_pipeline_dir(models) -> Path:
    return models["pipeline"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A PHOENIX-layout corpus whose test split holds 3 SynthSign videos (2 signers) of 8
    frames each: every video of a 4-video SynthSign, cut short, moved into ``test``."""
    synth = tmp_path_factory.mktemp("synth") / "corpus"
    write_synthsign(synth, SynthSignSettings(signers=2, videos=4, seed=0, unseen_signers=1,
                                             min_glosses=1, max_glosses=1), progress=False)
    root = tmp_path_factory.mktemp("eval") / "corpus"
    rows = ["name|video|start|end|speaker|orth|translation"]
    for split in ("train", "dev", "test"):
        lines = annotation_path(synth, split).read_text(encoding="utf-8").splitlines()[1:]
        for line in lines:
            name = line.split("|")[0]
            frame_folder(root, "test", name).mkdir(parents=True)
            for index in range(FRAMES_PER_VIDEO):
                shutil.copy(frame_folder(synth, split, name) / frame_file_name(index),
                            frame_folder(root, "test", name) / frame_file_name(index))
            xy, confidence = pose_arrays(reduce_to_178(read_pose(pose_path(synth, split, name))))
            pose_path(root, "test", name).parent.mkdir(parents=True, exist_ok=True)
            write_pose(pose_from_arrays(xy[:FRAMES_PER_VIDEO], confidence[:FRAMES_PER_VIDEO], 25, 210, 260),
                       pose_path(root, "test", name))
            rows.append(line)
    annotation_path(root, "test").parent.mkdir(parents=True)
    annotation_path(root, "test").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def eval_args(corpus: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return ["eval", "--data", str(corpus), "--split", "test", "--model", str(model), "--out", str(out),
            "--steps", "1", "--no-progress", *extra]


def run_eval(corpus, model, out, *extra) -> None:
    assert main(eval_args(corpus, model, out, *extra)) == 0


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def rows_of(out: Path) -> dict[str, dict]:
    rows = read_all_rows(out)
    for row in rows.values():
        row.pop("seconds", None)  # wall time is the one thing a rerun changes
    return rows


FAST = ("--fid-frames-per-video", "0", "--no-pose-fidelity")
WITH_FID = ("--fid-frames-per-video", "1", "--no-pose-fidelity")


@pytest.fixture(scope="module")
def straight_run(corpus, tiny_pipeline_dir, tmp_path_factory) -> Path:
    """One uninterrupted run with FID, the reference for the resumed and sharded runs."""
    out = tmp_path_factory.mktemp("straight") / "run"
    run_eval(corpus, tiny_pipeline_dir, out, *WITH_FID)
    return out


# ------------------------------------------------------------------ runs


def test_straight_run_writes_videos_rows_and_a_summary_naming_each_protocol(straight_run, corpus):
    from signgen.video.io import read_video

    names = sorted(p.name for p in (corpus / "features" / "fullFrame-210x260px" / "test").iterdir())
    assert sorted(p.stem for p in (straight_run / "videos").glob("*.mp4")) == names
    assert not [p for p in straight_run.rglob(".*")], "a temporary file was left behind"
    video = read_video(straight_run / "videos" / f"{names[0]}.mp4")
    assert video.shape == (FRAMES_PER_VIDEO, 260, 210, 3)

    rows = rows_of(straight_run)
    assert sorted(rows) == names
    seeds = set()
    for row in rows.values():
        assert row["status"] == "ok" and row["frames"] == row["reference_frames"] == FRAMES_PER_VIDEO
        assert 0 < row["ssim_gray"] < 1 and 0 < row["ssim_rgb"] < 1 and 0 < row["psnr"] < 100 and row["tde"] > 0
        assert row["fid_frames"] == 1
        seeds.add(row["seed"])
    assert len(seeds) == len(names)

    summary = summary_of(straight_run)
    assert summary["videos"] == {"in_run": 3, "evaluated": 3, "failed": 0, "remaining": 0}
    metrics = summary["metrics"]
    assert metrics["ssim_gray"]["value"] == pytest.approx(np.mean([r["ssim_gray"] for r in rows.values()]))
    assert metrics["fid"]["value"] > 0 and metrics["fid"]["frames_per_video"] == 1
    assert metrics["fid"]["generated_samples"] == metrics["fid"]["reference_samples"] == 3
    assert "--fid-vid-weights" in metrics["fid_vid"]["skipped"] and metrics["fvd"]["value"] is None
    assert "skipped" in metrics["dtw_mje"] and "skipped" in metrics["pose_fidelity"]
    assert summary["run"]["steps"] == 1 and summary["run"]["drive"] == "pose"

    table = (straight_run / "summary.md").read_text()
    for name in ("ssim_gray", "ssim_rgb", "psnr", "tde", "fid", "fid_vid", "fvd"):
        assert f"| {name} |" in table
    assert "scikit-image defaults (DisCo)" in table and "11x11 Gaussian" in table and "1 frames per video" in table
    assert all(line.count("|") - line.count("\\|") == 4 for line in table.splitlines() if line.startswith("| "))

    from PIL import Image

    with Image.open(straight_run / "summary.png") as figure:
        assert figure.format == "PNG" and figure.width > 400 and figure.height > 300


def test_resumed_after_limit_1_gives_the_same_summary(straight_run, corpus, tiny_pipeline_dir, tmp_path):
    out = tmp_path / "run"
    run_eval(corpus, tiny_pipeline_dir, out, *WITH_FID, "--limit", "1")
    first = rows_of(out)
    assert len(first) == 1 and summary_of(out)["videos"]["in_run"] == 1
    mp4 = out / "videos" / f"{next(iter(first))}.mp4"
    written = mp4.stat().st_mtime_ns
    run_eval(corpus, tiny_pipeline_dir, out, *WITH_FID)
    assert mp4.stat().st_mtime_ns == written, "a finished video was generated again"
    assert rows_of(out) == rows_of(straight_run)
    assert summary_of(out) | {"run": None} == summary_of(straight_run) | {"run": None}


def test_killed_after_the_first_row_then_resumed_gives_the_same_summary(straight_run, corpus, tiny_pipeline_dir, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "signgen.cli.main", *eval_args(corpus, tiny_pipeline_dir, out, *WITH_FID)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ONE_THREAD)
    shard = out / "shards" / "rank-0.jsonl"
    deadline = time.monotonic() + 240
    while not (shard.is_file() and shard.read_bytes().count(b"\n") >= 1):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no row within 4 minutes"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    killed_with = len(read_rows(shard)[0])
    assert killed_with < 3 and not (out / "summary.json").exists()
    # The kill may also cut a row in half: simulate the worst case on top.
    with open(shard, "a", encoding="utf-8") as file:
        file.write('{"name": "synthsign-0000')
    assert len(read_rows(shard)[0]) == killed_with

    run_eval(corpus, tiny_pipeline_dir, out, *WITH_FID)
    assert shard.read_bytes().endswith(b"\n") and len(read_rows(shard)[0]) == 3
    assert rows_of(out) == rows_of(straight_run)
    assert summary_of(out) | {"run": None} == summary_of(straight_run) | {"run": None}


def test_statistics_saved_but_row_lost_counts_the_features_once(straight_run, corpus, tiny_pipeline_dir, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(straight_run, out)
    shard = out / "shards" / "rank-0.jsonl"
    lines = shard.read_text().splitlines(keepends=True)
    shard.write_text("".join(lines[:-1]))  # killed after saving the statistics, before the row
    (out / "summary.json").unlink()
    run_eval(corpus, tiny_pipeline_dir, out, *WITH_FID)
    assert rows_of(out) == rows_of(straight_run)
    assert summary_of(out)["metrics"]["fid"] == summary_of(straight_run)["metrics"]["fid"]


def test_two_processes_give_the_same_summary_as_one(straight_run, corpus, tiny_pipeline_dir, tmp_path):
    one, two = straight_run, tmp_path / "two"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "signgen.cli.main", *eval_args(corpus, tiny_pipeline_dir, two, *WITH_FID)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=ONE_THREAD, start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # torchrun and its workers
        process.communicate()
        raise
    assert process.returncode == 0, stderr[-3000:]
    assert sorted(p.name for p in (two / "shards").glob("*.jsonl")) == ["rank-0.jsonl", "rank-1.jsonl"]
    assert len(read_rows(two / "shards" / "rank-0.jsonl")[0]) == 2
    assert len(read_rows(two / "shards" / "rank-1.jsonl")[0]) == 1
    assert rows_of(two) == rows_of(one)
    summary_one, summary_two = summary_of(one), summary_of(two)
    # Merged statistics add the same numbers in another order: FID agrees to rounding.
    fid_one, fid_two = summary_one["metrics"].pop("fid"), summary_two["metrics"].pop("fid")
    assert fid_two["value"] == pytest.approx(fid_one["value"], rel=1e-9)
    assert fid_two | {"value": None} == fid_one | {"value": None}
    assert summary_two | {"run": None} == summary_one | {"run": None}


def test_gloss_driving_reports_dtw_mje_and_pose_fidelity_not_paired_metrics(corpus, tiny_pipeline_dir, tmp_path):
    out = tmp_path / "run"
    run_eval(corpus, tiny_pipeline_dir, out, "--drive", "gloss", "--fid-frames-per-video", "0", "--limit", "1")
    row = next(iter(rows_of(out).values()))
    assert "ssim_gray" not in row and row["frames"] != row["reference_frames"]
    # SynthSign's glosses are its lexicon clips, so the stitched pose is the reference's
    # motion: the gloss-to-pose stage alone is (nearly) exact.
    assert row["dtw_mje"]["driving"]["mje"] < 0.05 and row["dtw_mje"]["driving"]["joint_count"] > 0
    assert set(row["pose_fidelity"]) == {"body", "face", "hands"}
    metrics = summary_of(out)["metrics"]
    assert metrics["ssim_gray"]["value"] is None and "lengths differ" in metrics["ssim_gray"]["skipped"]
    assert metrics["dtw_mje"]["driving"]["value"] == pytest.approx(row["dtw_mje"]["driving"]["mje"])
    assert metrics["pose_fidelity"]["body"]["expected"] == row["pose_fidelity"]["body"]["expected"] == row["frames"]


# ------------------------------------------------------------------ bad input


def test_a_reference_with_zero_frames_is_a_failed_row_and_the_run_goes_on(corpus, tiny_pipeline_dir, tmp_path):
    data = tmp_path / "corpus"
    shutil.copytree(corpus, data)
    frame_folder(data, "test", "empty-video").mkdir()
    with open(annotation_path(data, "test"), "a", encoding="utf-8") as file:
        file.write("empty-video|empty-video/1/*.png|-1|-1|Signer01|A|a\n")
    out = tmp_path / "run"
    run_eval(data, tiny_pipeline_dir, out, *FAST)
    rows = rows_of(out)
    assert rows["empty-video"]["status"] == "failed" and "no frames" in rows["empty-video"]["reason"]
    assert sum(row["status"] == "ok" for row in rows.values()) == 3
    summary = summary_of(out)
    assert summary["videos"] == {"in_run": 4, "evaluated": 3, "failed": 1, "remaining": 0}
    assert summary["failed"][0]["name"] == "empty-video"
    assert "empty-video" in (out / "summary.md").read_text()
    assert not (out / "videos" / "empty-video.mp4").exists()


def test_a_run_whose_every_video_fails_still_writes_its_summary(corpus, tiny_pipeline_dir, tmp_path):
    # Paired metrics without a single value once had no "skipped" reason, and the summary
    # table raised KeyError: 'skipped' after summary.json was written.
    data = tmp_path / "corpus"
    data.mkdir()
    frame_folder(data, "test", "empty-video").mkdir(parents=True)
    annotation_path(data, "test").parent.mkdir(parents=True)
    annotation_path(data, "test").write_text("name|video|start|end|speaker|orth|translation\n"
                                             "empty-video|empty-video/1/*.png|-1|-1|Signer01|A|a\n", encoding="utf-8")
    out = tmp_path / "run"
    assert main(eval_args(data, tiny_pipeline_dir, out, *FAST)) == 2  # nothing evaluated: an error, summary written
    summary = summary_of(out)
    assert summary["videos"] == {"in_run": 1, "evaluated": 0, "failed": 1, "remaining": 0}
    for name in ("ssim_gray", "ssim_rgb", "psnr", "tde"):
        assert summary["metrics"][name]["value"] is None and summary["metrics"][name]["skipped"] == "no video evaluated"
    table = (out / "summary.md").read_text()
    assert "| ssim_gray | skipped: no video evaluated |" in table and "- empty-video: " in table
    assert (out / "summary.png").is_file() and (out / "per_video.jsonl").is_file()


def test_bad_inputs_are_one_line_errors_that_write_nothing(corpus, models, tiny_pipeline_dir, tmp_path, capsys):
    def error_of(*args) -> str:
        assert main(list(args)) == 2
        message = capsys.readouterr().err
        assert message.count("\n") == 1 and message.startswith("signgen: error: ")
        return message

    out = tmp_path / "run"
    not_phoenix = tmp_path / "photos"
    not_phoenix.mkdir()
    (not_phoenix / "a.png").write_bytes(b"")
    assert "annotation file for split 'test' not found" in error_of(*eval_args(not_phoenix, tiny_pipeline_dir, out, *FAST))
    assert "corpus folder not found" in error_of(*eval_args(tmp_path / "nowhere", tiny_pipeline_dir, out, *FAST))
    assert "frame model folder, not a pipeline" in error_of(*eval_args(corpus, models["frame_model"], out, *FAST))
    assert "temporal adapter folder, not a signgen pipeline" in error_of(*eval_args(corpus, models["adapter"], out, *FAST))
    assert not out.exists()
    assert "--limit" in error_of(*eval_args(corpus, tiny_pipeline_dir, out, *FAST, "--limit", "0"))
    assert "weights file not found" in error_of(*eval_args(corpus, tiny_pipeline_dir, out, *FAST, "--fvd-weights", str(tmp_path / "i3d.pt")))
    assert not out.exists()

    # a rerun with other settings into the same folder is refused before any work
    run_eval(corpus, tiny_pipeline_dir, out, *FAST, "--limit", "1")
    before = sorted(p.name for p in out.rglob("*"))
    other_steps = eval_args(corpus, tiny_pipeline_dir, out, *FAST)
    other_steps[other_steps.index("--steps") + 1] = "2"
    message = error_of(*other_steps)
    assert "other settings" in message and "steps 1 there, 2 here" in message
    assert sorted(p.name for p in out.rglob("*")) == before
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    assert "not a signgen eval run folder" in error_of(*eval_args(corpus, tiny_pipeline_dir, stranger, *FAST))


# ------------------------------------------------------------------ pieces


def test_rows_survive_a_cut_last_line_and_the_writer_cuts_it_off(tmp_path):
    path = tmp_path / "rank-0.jsonl"
    writer = RowWriter(path)
    writer.append({"name": "a", "status": "ok"})
    writer.close()
    with open(path, "a", encoding="utf-8") as file:
        file.write('{"name": "b", "sta')
    assert [row["name"] for row in read_rows(path)[0]] == ["a"]
    writer = RowWriter(path)
    writer.append({"name": "c", "status": "ok"})
    writer.close()
    assert path.read_text() == '{"name": "a", "status": "ok"}\n{"name": "c", "status": "ok"}\n'
    path.write_text('{"name": "a"}\nnot json\n{"name": "c"}\n')
    with pytest.raises(SigngenError, match="line 2"):
        read_rows(path)


def test_statistics_round_trip_exactly_and_merge_like_one_accumulator(tmp_path):
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(5, 4)), rng.normal(size=(7, 4))
    (tmp_path / "shards").mkdir()
    parts = []
    for rank, features in enumerate((first, second)):
        statistics = FeatureStatistics({"fid": 4})
        statistics.add(f"video-{rank}", {("fid", "generated"): features, ("fid", "reference"): features + 1})
        statistics.save(tmp_path / "shards" / f"rank-{rank}.npz")
        parts.append(statistics)
    loaded = FeatureStatistics.load(tmp_path / "shards" / "rank-0.npz", {"fid": 4})
    for key, accumulator in parts[0].accumulators.items():
        for field, value in accumulator.to_arrays().items():
            assert np.array_equal(loaded.accumulators[key].to_arrays()[field], value)
    assert video_names_in_statistics(tmp_path) == {"video-0", "video-1"}
    merged = FeatureStatistics({"fid": 4})
    for statistics in parts:
        merged.merge(statistics)
    generated = merged.accumulators[("fid", "generated")]
    assert generated.num_samples == 12
    np.testing.assert_allclose(generated.covariance, np.cov(np.concatenate([first, second]), rowvar=False), rtol=1e-12)
    with pytest.raises(SigngenError, match="2048-d fid"):
        FeatureStatistics.load(tmp_path / "shards" / "rank-0.npz", {"fid": 2048})


def test_video_seeds_depend_on_the_name_and_run_seed_only():
    assert video_seed(0, "a") == video_seed(0, "a")
    assert len({video_seed(0, "a"), video_seed(0, "b"), video_seed(1, "a")}) == 3
    assert 0 <= video_seed(7, "01April_2010_Thursday_heute-6694") < 2**32


def test_fid_frames_are_spread_evenly():
    assert evenly_spaced(10, 1).tolist() == [5]
    assert evenly_spaced(10, 2).tolist() == [2, 7]
    assert evenly_spaced(10, 5).tolist() == [1, 3, 5, 7, 9]
    assert evenly_spaced(3, 5).tolist() == [0, 1, 2] and evenly_spaced(4, None).tolist() == [0, 1, 2, 3]
    assert len(set(evenly_spaced(7, 6).tolist())) == 6


def _pose(xy: np.ndarray, confidence: np.ndarray, width: int = 210, height: int = 260):
    return pose_from_arrays(xy, confidence, 25, width, height)


def test_pose_fidelity_measures_offsets_and_missed_parts():
    rng = np.random.default_rng(0)
    frames = 4
    driving_xy = rng.uniform(50, 150, (frames, skeleton.NUM_POINTS, 2)).astype(np.float32)
    driving_xy[:, skeleton.LEFT_SHOULDER] = (125, 165)
    driving_xy[:, skeleton.RIGHT_SHOULDER] = (85, 165)  # 40 px apart
    confidence = np.ones((frames, skeleton.NUM_POINTS), np.float32)
    generated_xy = driving_xy + np.float32([3, 4])  # every point 5 px off
    generated_confidence = confidence.copy()
    generated_confidence[:2, skeleton.LEFT_HAND] = 0  # the left hand missed in 2 of 4 frames
    result = compare_poses(_pose(generated_xy, generated_confidence), _pose(driving_xy, confidence))
    assert result["body"].detection_rate == 1 and result["face"].detection_rate == 1
    assert result["hands"].detection_rate == pytest.approx(6 / 8)
    for part in ("body", "face", "hands"):
        assert result[part].error_px == pytest.approx(5, abs=1e-4)
        assert result[part].error_shoulder_widths == pytest.approx(5 / 40, abs=1e-5)
    assert result["hands"].error_count == (8 - 2) * 21

    # a driving pose drawn at half the frame size is scaled up to the frame first
    halved = compare_poses(_pose(generated_xy, generated_confidence),
                           _pose(driving_xy / 2, confidence, 105, 130), (210, 260))
    assert halved["body"].error_px == pytest.approx(5, abs=1e-4)
    # a part the driving pose never shows is not expected: no detection rate at all
    no_hands = confidence.copy()
    no_hands[:, 136:] = 0
    assert compare_poses(_pose(generated_xy, generated_confidence), _pose(driving_xy, no_hands))["hands"].detection_rate is None

    pooled = pool_pose_fidelity([result, {k: v.to_dict() for k, v in halved.items()}])
    assert pooled["hands"].expected == 16 and pooled["hands"].error_px == pytest.approx(5, abs=1e-4)


def test_pose_fidelity_of_a_reference_video_against_its_own_pose_is_near_perfect(corpus):
    from signgen.corpora.phoenix import PhoenixCorpus

    sample = PhoenixCorpus(corpus).split("test")[0]
    parts, _ = measure_pose_fidelity(sample.frames(), sample.pose())
    # MediaPipe on the cartoon signer finds what the pose shows, where it shows it
    # (measured on this clip: body and face in every frame, 6 of 8 hands; errors 0.01-0.11
    # shoulder widths)
    assert parts["body"].detection_rate == 1 and parts["face"].detection_rate == 1
    assert parts["hands"].detection_rate >= 0.5
    for part in ("body", "face", "hands"):
        assert parts[part].error_shoulder_widths < 0.15


def test_pose_fidelity_runs_mediapipe_on_the_frames(astronaut, astronaut_pose):
    frames = np.stack([astronaut, astronaut])
    driving = reduce_to_178(astronaut_pose)
    xy, confidence = pose_arrays(driving)
    still = _pose(np.repeat(xy, 2, axis=0), np.repeat(confidence, 2, axis=0), 512, 512)
    parts, extracted = measure_pose_fidelity(frames, still)
    assert len(extracted.body.data) == 2
    assert parts["body"].detection_rate == 1 and parts["face"].detection_rate == 1
    assert parts["hands"].detection_rate is None  # MediaPipe finds no hand in this photo
    # tracking mode on two frames vs one still: the same points within a few pixels (the
    # hips, below the photo's edge, are guesses and move most)
    assert parts["face"].error_px < 5 and parts["body"].error_shoulder_widths < 0.1
    shifted = _pose(np.repeat(xy, 2, axis=0) + np.float32([30, 0]), np.repeat(confidence, 2, axis=0), 512, 512)
    assert measure_pose_fidelity(frames, shifted)[0]["face"].error_px > 25
