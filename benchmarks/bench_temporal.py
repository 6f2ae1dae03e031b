"""Temporal consistency on SynthSign (or PHOENIX) held-out videos: frame-wise sampling against
temporal adapters, each with independent and with consistent initial noise (run by hand).

Protocol (that of ``bench_frame_ablation.py``, on clips): for each of the first ``--videos``
videos of a split long enough, its first ``--frames`` frames are drawn from the video's own
pose, its first frame as the signer photo (with its corpus pose, which v2 models warp),
with DDIM, ``--steps`` steps and the guidance of the embedded pipeline, one seed per video
(the same for every row), upscaled to the corpus' 260 x 210 as ``signgen render`` writes
them, and compared with the reference frames. Rows: copying the first frame into every
frame; for v2 models the coarse image alone (the photo warped to each pose); frame-wise
(no adapter); each ``--adapter LABEL=DIR`` in windows of ``--window`` frames overlapping
by ``--overlap``; every sampled row at each ``--noise-correlation R`` and each
``--steady-torso S`` and each ``--deflicker D`` (the pipeline settings). Columns: TDE over the whole frame, in the
moving region (pixels where either reference frame differs from the first by more than 12)
and in the hand boxes; for windowed rows also TDE at the window seams (frame pairs where a
window starts or ends) and inside windows; ssim_rgb and hand-SSIM (over the frames after
the photo's own), seconds per frame.

    python benchmarks/bench_temporal.py --data DIR --frame-model DIR [--adapter LABEL=DIR ...] \\
        [--splits test test_unseen] [--videos 8] [--frames 48] [--steps 10] \\
        [--window 16] [--overlap 4] [--noise-correlation 0 0.5] [--steady-torso 0] [--deflicker 0] [--keep-coarse] [--markdown OUT.md]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from bench_frame_ablation import coarse_image, copy_source, finish_table, render_with, table_row
from signgen.corpora.phoenix import PhoenixCorpus
from signgen.models.frame_model import FrameModel
from signgen.models.temporal import load_adapter
from signgen.pipelines.denoising import plan_windows, seam_transitions
from signgen.pipelines.pipeline import SignPipeline
from signgen.pipelines.settings import RenderSettings
from signgen.poses.regions import hand_boxes
from signgen.video.metrics import (box_masks, moving_masks, region_ssim, region_temporal_difference_error, ssim_rgb,
                                   temporal_difference_map)

COLUMNS = ("tde", "tde_moving", "tde_hands", "tde_seams", "tde_inside", "ssim_rgb", "hand_ssim")


def score(generated: np.ndarray, reference: np.ndarray, boxes: list, seams: np.ndarray | None) -> dict:
    height, width = reference.shape[1:3]
    per_transition = temporal_difference_map(generated, reference).mean(axis=(1, 2))
    return {
        "tde": float(per_transition.mean()),
        "tde_moving": region_temporal_difference_error(generated, reference, moving_masks(reference, reference[0])),
        "tde_hands": region_temporal_difference_error(generated, reference, box_masks(boxes, height, width)),
        "tde_seams": float(per_transition[seams].mean()) if seams is not None and seams.any() else None,
        "tde_inside": float(per_transition[~seams].mean()) if seams is not None and (~seams).any() else None,
        "ssim_rgb": ssim_rgb(generated[1:], reference[1:]),
        "hand_ssim": region_ssim(generated[1:], reference[1:], boxes[1:]),
    }


def evaluate(generate, samples, num_frames: int, seams: np.ndarray | None) -> dict:
    totals = {key: [] for key in COLUMNS}
    for index, sample in enumerate(samples):
        frames = sample.frames()[:num_frames]
        xy, confidence, _ = sample.pose_arrays()
        targets = np.arange(num_frames)
        generated = generate(sample, frames, xy, confidence, targets, seed=index)
        boxes = hand_boxes(xy[targets], confidence[targets], (frames.shape[2], frames.shape[1]))
        for key, value in score(generated, frames, boxes, seams).items():
            totals[key].append(value)
    return {key: (float(np.mean([v for v in values if v is not None])) if any(v is not None for v in values) else None)
            for key, values in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--frame-model", required=True, help="frame model folder")
    parser.add_argument("--adapter", action="append", default=[], metavar="LABEL=DIR",
                        help="a temporal adapter folder or training OUT folder (repeatable)")
    parser.add_argument("--splits", nargs="+", default=["test", "test_unseen"])
    parser.add_argument("--videos", type=int, default=8, help="videos per split")
    parser.add_argument("--frames", type=int, default=48, help="frames per video (from its first)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--window", type=int, default=16, help="window length: the adapters' training clip length (default 16)")
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--noise-correlation", type=float, nargs="+", default=[0.0, 0.5], metavar="R",
                        help="the initial noise's correlation between frames, a row each (default 0 and 0.5)")
    parser.add_argument("--steady-torso", type=float, nargs="+", default=[0.0], metavar="S",
                        help="v2 models: smoothing of the torso and head keypoints in frames, a row each (default 0)")
    parser.add_argument("--hand-sharpen", type=float, default=0.0, metavar="AMOUNT",
                        help="the unsharp mask on each hand's box of the finished frames (the embedded pipeline's: 1; "
                             "0, the default here, renders as docs/temporal.md's tables did)")
    parser.add_argument("--deflicker", type=float, nargs="+", default=[0.0], metavar="D",
                        help="the deflickering filter's width in frames (a Gaussian's sigma), a row each (default 0)")
    parser.add_argument("--keep-coarse", action="store_true", help="v2 models: keep the coarse image where it covers the frame")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = FrameModel.from_pretrained(args.frame_model)
    adapters = {"frame-wise": None}
    for item in args.adapter:
        label, separator, folder = item.partition("=")
        if not separator or not label or not folder:
            parser.error(f"--adapter takes LABEL=DIR, not {item!r}")
        adapters[label] = load_adapter(folder)
    seams = seam_transitions(plan_windows(args.frames, args.window, args.overlap), args.frames).numpy()
    rows = {"copy first frame": (lambda *a, seed: copy_source(*a), None)}
    if model.coarse_image:
        for steady in args.steady_torso:
            rows[_label("coarse image alone", 0, steady)] = (lambda *a, seed, steady=steady: coarse_image(*a, steady_torso=steady), None)
    for label, adapter in adapters.items():
        for steady, deflicker in itertools.product(args.steady_torso, args.deflicker):
            settings = RenderSettings(scheduler="ddim", num_steps=args.steps, guidance_interval=0.5, window_size=args.window,
                                      overlap=args.overlap, keep_coarse=args.keep_coarse, steady_torso=steady, deflicker=deflicker,
                                      hand_sharpen=args.hand_sharpen)
            pipeline = SignPipeline(model, adapter, settings)
            for correlation in args.noise_correlation:
                def generate(*a, seed, pipeline=pipeline, correlation=correlation):
                    return render_with(pipeline, args.steps, args.strength, seed, noise_correlation=correlation)(*a)
                rows[_label(label, correlation, steady, deflicker)] = (generate, seams if adapter is not None else None)

    corpus = PhoenixCorpus(args.data)
    lines = ["| split | sampling | " + " | ".join(COLUMNS) + " | s / frame |", "|---|---|" + "---:|" * (len(COLUMNS) + 1)]
    results = {}
    for split in args.splits:
        samples = [s for s in corpus.split(split) if s.num_frames >= args.frames][: args.videos]
        for name, (generate, windowed) in rows.items():
            start = time.perf_counter()
            scores = evaluate(generate, samples, args.frames, windowed)
            seconds = (time.perf_counter() - start) / (len(samples) * args.frames)
            results[f"{split}/{name}"] = {**scores, "seconds_per_frame": seconds, "videos": len(samples)}
            lines.append(table_row(split, name, scores, COLUMNS, f"{seconds:.2f}"))
            print(lines[-1], flush=True)
    finish_table(lines, results, args.markdown)


def _label(name: str, correlation: float, steady: float, deflicker: float = 0.0) -> str:
    return (name + (f", noise {correlation:g}" if correlation else "") + (f", steady torso {steady:g}" if steady else "")
            + (f", deflicker {deflicker:g}" if deflicker else ""))


if __name__ == "__main__":
    main()
