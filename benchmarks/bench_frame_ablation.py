"""Frame-model ablation on SynthSign (or PHOENIX) held-out videos, scored as renders are written.

Protocol: for each of the first ``--videos`` videos of a split, its first frame is the
signer photo (with its corpus pose, which v2 models warp); every ``--stride``-th later frame
(``--stride 1``: every frame; the photo itself is never scored, as copying it would score
it perfectly) of the first ``--frames`` is drawn from the video's own pose, frame-wise (no temporal
adapter), with DDIM and the guidance of the embedded pipeline, upscaled (Lanczos) to the
corpus' 260 x 210 as ``signgen render`` writes it, and compared with the reference frame.
Rows: copying the source frame into every frame, the coarse image alone (the source warped
to each pose, ``signgen.poses.warp``, at full size), then each frame model given as
``LABEL=DIR``. Columns: ssim_rgb, ssim_gray, PSNR, hand-SSIM and hand-PSNR (boxes around
the driving pose's hands, ``signgen.poses.regions``), moving-region PSNR (pixels where
the reference differs from the source frame), TDE (over the scored frames: with a
stride above 1 it compares every stride-th frame) and hand TDE (TDE inside the hand boxes of
either frame of a pair); with ``--detect-hands`` also hands_found and hands_placed: of the
(frame, hand) pairs the driving pose shows, the share MediaPipe Holistic finds in the row's
frames, and the share it finds where the pose puts the hand (within the hand's size; the
photo's resting hands, copied, are found but not placed); a "ground truth" row gives the
corpus frames' own shares, and the s / frame column leaves the detection's time out. ``--hands LABEL=DIR`` gives a model row a hand model (the hand stage). Until 2026-12-03 the source frame itself
was scored too, which gave the copy and coarse-image rows one perfect frame a video (PSNR
100 dB; about +2 dB on their mean at stride 4).

    python benchmarks/bench_frame_ablation.py --data DIR --model "v2=runs/v2/diffusion/model" \
        [--model LABEL=DIR ...] [--splits test test_unseen] [--videos 8] [--stride 1] [--frames 48] \
        [--steps 10] [--strength 1.0] [--guidance 1.5,2.0] [--steady-torso 0] [--noise-correlation 0] [--deflicker 0] [--hand-sharpen 0] \
        [--detect-hands] [--markdown OUT.md]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from signgen.corpora.phoenix import PhoenixCorpus
from signgen.poses.holistic import pose_from_arrays
from signgen.poses.regions import hand_boxes
from signgen.video.metrics import (box_masks, moving_region_psnr, psnr, region_psnr, region_ssim, region_temporal_difference_error,
                                   ssim_gray, ssim_rgb, temporal_difference_error)

COLUMNS = ("ssim_rgb", "ssim_gray", "psnr", "hand_ssim", "hand_psnr", "moving_psnr", "tde", "hand_tde")


def score(generated: np.ndarray, reference: np.ndarray, source: np.ndarray, boxes: list) -> dict:
    return {
        "ssim_rgb": ssim_rgb(generated, reference),
        "ssim_gray": ssim_gray(generated, reference),
        "psnr": psnr(generated, reference),
        "hand_ssim": region_ssim(generated, reference, boxes),
        "hand_psnr": region_psnr(generated, reference, boxes),
        "moving_psnr": moving_region_psnr(generated, reference, source),
        "tde": temporal_difference_error(generated, reference) if len(generated) > 1 else None,
        "hand_tde": (region_temporal_difference_error(generated, reference, box_masks(boxes, *generated.shape[1:3]))
                     if len(generated) > 1 else None),
    }


def model_settings(items: list[str], parser) -> dict[str, dict]:
    """``--model-setting LABEL:KEY=VALUE`` items as {label: {key: value}}."""
    from signgen.cli.settings import parse_set_items

    found: dict[str, dict] = {}
    for item in items:
        label, separator, setting = item.partition(":")
        if not separator or not label:
            parser.error(f"--model-setting takes LABEL:KEY=VALUE, not {item!r}")
        found.setdefault(label, {}).update(parse_set_items([setting]))
    return found


def render_with(pipeline, steps: int, strength: float, seed: int, **options):
    """A row's generator: the pipeline renders the target frames from the video's first
    frame and pose (``options``: more arguments of the pipeline call)."""
    # Imported here, not above: the measurement functions (bench_mesh_warp.py imports them)
    # need no pipeline.
    from signgen.pipelines.postprocess import upscale_frames

    def generate(sample, frames, xy, confidence, targets):
        width, height = frames.shape[2], frames.shape[1]
        driving = pose_from_arrays(xy[targets], confidence[targets], 25.0, width, height)
        kwargs = {"strength": strength} if pipeline.frame_model.coarse_image else {}
        result = pipeline(pose=driving, signer=frames[0], signer_pose=(xy[0], confidence[0]), keep_frame=True,
                          num_steps=steps, seed=seed, progress=False, **kwargs, **options)
        return upscale_frames(result.frames, (height, width))
    return generate


def ground_truth(sample, frames, xy, confidence, targets):
    return frames[targets]


def copy_source(sample, frames, xy, confidence, targets):
    return np.repeat(frames[:1], len(targets), axis=0)


def coarse_image(sample, frames, xy, confidence, targets, steady_torso: float = 0.0, method: str = "parts"):
    """The v2 models' coarse image alone: the source frame warped (``method``: parts or mesh)
    to each target pose (its torso and head keypoints smoothed over the targets by
    ``steady_torso`` frames), by the pipeline's own :func:`signgen.pipelines.signer.coarse_images`
    at the video's full size."""
    from signgen.pipelines.postprocess import frames_to_uint8
    from signgen.pipelines.signer import WarpSource, coarse_images, driving_geometry, photo_warper

    height, width = frames.shape[1:3]
    source = WarpSource(frames[0], np.asarray(xy[0], np.float64), np.asarray(confidence[0], np.float64))
    pose = pose_from_arrays(xy[targets], confidence[targets], 25.0, width, height)
    images, _ = coarse_images(photo_warper(source, method), driving_geometry(pose, (height, width), steady_torso))
    return frames_to_uint8(images)


def scored_frames(sample, stride: int, max_frames: int | None = None):
    """A video's frames, pose (xy, confidence), the indices of its scored frames (every
    ``stride``-th after the photo, among the first ``max_frames``) and their hand boxes."""
    frames = sample.frames()
    xy, confidence, _ = sample.pose_arrays()
    targets = np.arange(stride, min(len(frames), max_frames or len(frames)), stride)
    boxes = hand_boxes(xy[targets], confidence[targets], (frames.shape[2], frames.shape[1]))
    return frames, xy, confidence, targets, boxes


def evaluate(generate, samples, stride: int, max_frames: int | None = None, detect_hands: bool = False) -> tuple[dict, float]:
    """The row's scores pooled over ``samples`` (each video weighted by its scored frames,
    hands_found and hands_placed by the hands shown), and the seconds spent outside hand detection."""
    totals, weights = {key: [] for key in COLUMNS}, []
    hand_counts = np.zeros(3, np.int64)  # shown, found, found in place
    detecting = 0.0
    started = time.perf_counter()
    for sample in samples:
        frames, xy, confidence, targets, boxes = scored_frames(sample, stride, max_frames)
        reference = frames[targets]
        generated = generate(sample, frames, xy, confidence, targets)
        for key, value in score(generated, reference, frames[0], boxes).items():
            totals[key].append(value)
        weights.append(len(targets))
        if detect_hands:
            detection_started = time.perf_counter()
            hand_counts += found_hands(generated, xy[targets], confidence[targets])
            detecting += time.perf_counter() - detection_started
    scores = {key: weighted_mean(values, weights) for key, values in totals.items()}
    if detect_hands:
        shown, found, placed = hand_counts
        scores["hands_found"] = found / shown if shown else None
        scores["hands_placed"] = placed / shown if shown else None
    return scores, time.perf_counter() - started - detecting


def found_hands(frames: np.ndarray, xy: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Of the (frame, hand) pairs the driving pose ``xy``, ``confidence`` (in the frames'
    pixels) shows: how many, how many MediaPipe Holistic finds in ``frames``
    (``signgen.poses.fidelity``), and how many it finds in place (its points' mean distance
    from the driving pose's below the hand's size, the larger side of the driving keypoints'
    box): a still photo's resting hands are found, not placed."""
    from signgen.poses import skeleton
    from signgen.poses.fidelity import measure_pose_fidelity
    from signgen.poses.holistic import pose_arrays

    height, width = frames.shape[1:3]
    fidelity, extracted = measure_pose_fidelity(frames, pose_from_arrays(xy, confidence, 25.0, width, height))
    found_xy, found_confidence = pose_arrays(extracted)
    placed = 0
    for hand in (skeleton.LEFT_HAND, skeleton.RIGHT_HAND):
        driving, seen = xy[:, hand], confidence[:, hand] > 0
        both = seen & (found_confidence[:, hand] > 0)
        distance = (np.linalg.norm(found_xy[:, hand] - driving, axis=-1) * both).sum(axis=1) / np.maximum(both.sum(axis=1), 1)
        lowest = np.where(seen[..., None], driving, np.inf).min(axis=1)
        highest = np.where(seen[..., None], driving, -np.inf).max(axis=1)
        size = np.where(seen.any(axis=1), (highest - lowest).max(axis=-1), 0.0)
        placed += int((both.any(axis=1) & (distance < size)).sum())
    hands = fidelity["hands"]
    return np.array([hands.expected, hands.detected, placed], np.int64)


def table_row(split: str, name: str, scores: dict, columns, cost: str) -> str:
    """A markdown row: SSIM columns to 4 decimals, the others to 2, None as "-", then ``cost``."""
    cells = " | ".join("-" if scores[k] is None else f"{scores[k]:.4f}" if "ssim" in k else f"{scores[k]:.2f}" for k in columns)
    return f"| {split} | {name} | {cells} | {cost} |"


def finish_table(lines: list[str], results: dict, markdown: str | None) -> None:
    """Print the table and the figures as JSON; also write the table to ``markdown``
    (atomically) when given."""
    table = "\n".join(lines)
    print(table)
    print(json.dumps(results, indent=1))
    if markdown:
        from signgen.atomic import atomic_output

        with atomic_output(markdown) as path:
            path.write_text(table + "\n", encoding="utf-8")


def weighted_mean(values, weights):
    pairs = [(v, w) for v, w in zip(values, weights) if v is not None]
    return float(np.average([v for v, _ in pairs], weights=[w for _, w in pairs])) if pairs else None


def main() -> None:
    from signgen.models.frame_model import FrameModel
    from signgen.models.hands import load_hand_model
    from signgen.pipelines.pipeline import SignPipeline
    from signgen.pipelines.settings import RenderSettings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", action="append", default=[], metavar="LABEL=DIR", help="a frame model folder (repeatable)")
    parser.add_argument("--splits", nargs="+", default=["test", "test_unseen"])
    parser.add_argument("--videos", type=int, default=8, help="videos per split")
    parser.add_argument("--stride", type=int, default=1, help="every stride-th frame is scored (1: every frame)")
    parser.add_argument("--frames", type=int, default=None, help="score only the first N frames of each video")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--strength", type=float, default=1.0, help="for v2 models: start from the warped photo noised to this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--guidance", default="1.5,2.0", metavar="A,F", help="guidance scales on the first half of the steps")
    parser.add_argument("--keep-coarse", action="append", default=[], metavar="LABEL",
                        help="render the v2 model LABEL with the coarse image kept where it covers the frame (repeatable)")
    parser.add_argument("--steady-torso", type=float, default=0.0, metavar="FRAMES",
                        help="v2 models and the coarse image row: smooth the torso and head keypoints over this many frames")
    parser.add_argument("--noise-correlation", type=float, default=0.0, metavar="R",
                        help="the initial noise's correlation between frames (the embedded pipeline's: 0.5)")
    parser.add_argument("--deflicker", type=float, default=0.0, metavar="FRAMES",
                        help="the deflickering filter's width in frames, a Gaussian's sigma (the embedded pipeline's: see its "
                             "pipeline.json); needs --stride 1")
    parser.add_argument("--hand-sharpen", type=float, default=0.0, metavar="AMOUNT",
                        help="the unsharp mask on each hand's box of the finished frames (the embedded pipeline's: 1; "
                             "0, the default here, renders as the tables before it did)")
    parser.add_argument("--model-setting", action="append", default=[], metavar="LABEL:KEY=VALUE",
                        help="a render setting of one --model row, e.g. mesh:coarse_warp=mesh (repeatable)")
    parser.add_argument("--coarse-warp", nargs="+", default=["parts"], choices=["parts", "mesh"],
                        help="coarse-image-alone rows: the photo warped part by part and/or as one mesh")
    parser.add_argument("--hands", action="append", default=[], metavar="LABEL=DIR",
                        help="the hand model (signgen train hands output) the row LABEL renders with (repeatable)")
    parser.add_argument("--detect-hands", action="store_true",
                        help="add the hands_found and hands_placed columns (MediaPipe Holistic on every row's frames) and a "
                             "ground-truth row")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    if args.deflicker and args.stride != 1:
        parser.error("--deflicker filters consecutive frames: use --stride 1")
    torch.set_num_threads(args.threads)

    methods = {"ground truth": ground_truth} if args.detect_hands else {}
    methods["copy source frame"] = copy_source
    for method in args.coarse_warp:
        label = "coarse image alone" + ("" if method == "parts" else f" ({method})")
        methods[label] = lambda *a, method=method: coarse_image(*a, steady_torso=args.steady_torso, method=method)
    per_model = model_settings(args.model_setting, parser)
    hand_models = dict(item.partition("=")[::2] for item in args.hands)
    for item in args.model:
        label, separator, folder = item.partition("=")
        if not separator or not label or not folder:
            parser.error(f"--model takes LABEL=DIR, not {item!r}")
        appearance, full = (float(v) for v in args.guidance.split(","))
        settings = RenderSettings(scheduler="ddim", num_steps=args.steps, guidance_interval=0.5, appearance_scale=appearance,
                                  full_scale=full, keep_coarse=label in args.keep_coarse, steady_torso=args.steady_torso,
                                  noise_correlation=args.noise_correlation, deflicker=args.deflicker,
                                  hand_sharpen=args.hand_sharpen).replace(**per_model.get(label, {}))
        hand_model = load_hand_model(hand_models[label]) if label in hand_models else None
        pipeline = SignPipeline(FrameModel.from_pretrained(folder), None, settings, hand_model=hand_model)
        methods[label] = render_with(pipeline, args.steps, args.strength, args.seed)
    score_table(methods, PhoenixCorpus(args.data), args)


def score_table(methods: dict, corpus, args, what: str = "method") -> None:
    """Each of ``methods`` scored on the first ``args.videos`` videos of each of ``args.splits``
    (``args.stride``, ``args.frames``), a table row printed as it comes, the table written to
    ``args.markdown``."""
    detect_hands = getattr(args, "detect_hands", False)
    columns = COLUMNS + (("hands_found", "hands_placed") if detect_hands else ())
    lines = [f"| split | {what} | " + " | ".join(columns) + " | s / frame |", "|---|---|" + "---:|" * (len(columns) + 1)]
    results = {}
    for split in args.splits:
        samples = corpus.split(split)[: args.videos]
        frames = sum(len(range(args.stride, min(s.num_frames, args.frames or s.num_frames), args.stride)) for s in samples)
        for name, generate in methods.items():
            scores, seconds = evaluate(generate, samples, args.stride, args.frames, detect_hands=detect_hands)
            seconds /= frames
            results[f"{split}/{name}"] = {**scores, "seconds_per_frame": seconds, "frames": frames}
            lines.append(table_row(split, name, scores, columns, f"{seconds:.3f}"))
            print(lines[-1], flush=True)
    finish_table(lines, results, args.markdown)


if __name__ == "__main__":
    main()
