"""The hand stage (issue #25) on held-out SynthSign videos: SSIM of each hand's crop against
the ground-truth crop for the base (``--base low_resolution``: the frame at the frame model's
resolution, 128 x 104, Lanczos back up to 260 x 210; ``--base render``: as a render composes
it, the first frame mesh-warped to the pose, :mod:`signgen.corpora.hand_bases`), the base sharpened by an unsharp mask (a free baseline), and the
hand stage's output (``signgen.pipelines.hands.redraw_hands`` on the base frames, appearance
from the video's first frame, then the same crop of the pasted frame); with ``--detect`` the
share of the driving pose's hands MediaPipe Holistic finds in those composed frames and in
the ground truth's (a quick stand-in for bench_readability's "hands detected": the frame
model's drawing, onto which a render pastes the same crops, is left out); plus a contact
sheet (rows base | hand stage | ground truth) of consecutive frames.

    OMP_NUM_THREADS=1 python benchmarks/bench_hand_stage.py --data /work/runs/synth \\
        --model /work/runs/hands/model --splits test test_unseen --videos 8 --stride 4 \\
        --sheet docs/images/hand_stage_crops.png [--base-resolution 64 52] [--detect] [--no-match]
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from unittest.mock import patch

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw
from skimage.metrics import structural_similarity

from signgen.corpora.hand_bases import RenderBase
from signgen.corpora.hand_crops import low_resolution
from signgen.corpora.phoenix import PhoenixCorpus
from signgen.models.hands import load_hand_model
from signgen.pipelines import hands as pipeline_hands
from signgen.pipelines.hands import face_points, photo_hand_appearance, redraw_hands
from signgen.poses import hands, skeleton

HANDS_SLICE = slice(skeleton.LEFT_HAND.start, skeleton.RIGHT_HAND.stop)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a.astype(np.float64) / 255, b.astype(np.float64) / 255, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=1, channel_axis=-1))


def unsharp(image: np.ndarray, amount: float = 1.0, sigma: float = 1.5) -> np.ndarray:
    blurred = cv2.GaussianBlur(image.astype(np.float32), (0, 0), sigma)
    return np.clip(image + amount * (image - blurred), 0, 255).round().astype(np.uint8)


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    return frames.permute(0, 2, 3, 1).add(1).mul(127.5).clamp(0, 255).round().byte().numpy()


def compose(sample, model, frame_indices, steps: int, seed: int, base_resolution=(128, 104), base_kind: str = "low_resolution",
            match_surroundings: bool = True):
    """The ground-truth, base and hand-stage frames of ``frame_indices``, and the video's pose arrays."""
    xy, confidence, _ = sample.pose_arrays()
    truth = np.stack([sample.frame(i) for i in frame_indices])
    if base_kind == "render":
        render_base = RenderBase(sample, base_resolution, low_resolution)
        base = np.stack([render_base(i) for i in frame_indices])
    else:
        base = np.stack([low_resolution(frame, base_resolution) for frame in truth])
    appearance = photo_hand_appearance(sample.frame(0), xy[0], confidence[0], model.crop_size, float(model.config.margin))
    size = model.crop_size
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(frame_indices), 2, 3, size, size, generator=generator)
    # --no-match: the render's colour matching (signgen.pipelines.hands.matched_to_surroundings) left out
    unmatched = patch.object(pipeline_hands, "matched_to_surroundings", lambda drawn, base, hull: drawn)
    with nullcontext() if match_surroundings else unmatched:
        face = face_points(xy[frame_indices], confidence[frame_indices])
        drawn = to_uint8(redraw_hands(to_tensor(base), xy[frame_indices, HANDS_SLICE], confidence[frame_indices, HANDS_SLICE] > 0,
                                      model, appearance, noise, steps, face))
    return truth, base, drawn, xy, confidence


def video_crops(frame_indices, truth, base, drawn, xy, confidence, model) -> list[dict]:
    """Per seen hand of the composed frames (:func:`compose`): its ground-truth, base, sharpened and redrawn crops."""
    size = model.crop_size
    height, width = truth.shape[1:3]
    out = []
    for row, frame in enumerate(frame_indices):
        for hand in (0, 1):
            points = hands.hand_points(hand)
            if not hands.hand_is_seen(confidence[frame], hand):
                continue
            box = hands.hand_crop_box(xy[frame, points], confidence[frame, points] > 0, (width, height),
                                      float(model.config.margin), float(model.config.min_side) * height)
            if box is None:
                continue
            crops = {name: hands.crop_region(images[row], box, size) for name, images in
                     (("truth", truth), ("base", base), ("stage", drawn))}
            crops["sharpened"] = unsharp(crops["base"])
            out.append({"frame": int(frame), "hand": hand, **crops})
    return out


def contact_sheet(items: list[dict], path: str, base_label: str, scale: int = 2) -> None:
    rows = ("base", "stage", "truth")
    labels = {"base": base_label, "stage": "hand stage", "truth": "ground truth"}
    size = items[0]["truth"].shape[0] * scale
    label_width = 110
    sheet = Image.new("RGB", (label_width + size * len(items), size * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, name in enumerate(rows):
        draw.text((4, r * size + size // 2 - 6), labels[name], fill="black")
        for c, item in enumerate(items):
            sheet.paste(Image.fromarray(item[name]).resize((size, size), Image.Resampling.NEAREST), (label_width + c * size, r * size))
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--splits", nargs="+", default=["test", "test_unseen"])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-resolution", type=int, nargs=2, default=[128, 104], metavar=("H", "W"),
                        help="the frame model's resolution the base is taken through (default 128 104)")
    parser.add_argument("--base", choices=["low_resolution", "render"], default="low_resolution",
                        help="what the stage starts from: the frame through the frame model's resolution, or as a render "
                             "composes it (the first frame mesh-warped to the pose; signgen.corpora.hand_bases)")
    parser.add_argument("--detect", action="store_true",
                        help="also the share of the driving pose's hands MediaPipe Holistic finds in the composed frames "
                             "and in the ground truth's (bench_frame_ablation.found_hands)")
    parser.add_argument("--no-match", action="store_true", help="the drawn crops' surroundings not matched to the frame's colour")
    parser.add_argument("--sheet", default=None, help="contact sheet PNG: 8 consecutive frames of the last split's first video")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_hand_model(args.model)
    corpus = PhoenixCorpus(args.data)
    detect = ("hands found: hand stage", "ground truth", "hand stage / ground truth") if args.detect else ()
    print("| " + " | ".join(("split", "crops", "SSIM base", "SSIM base + unsharp mask", "SSIM hand stage", "stage > base") + detect) + " |")
    print("|---" * (6 + len(detect)) + "|")
    for split in args.splits if args.videos else ():
        started, items, found = time.monotonic(), [], np.zeros((2, 3), np.int64)
        for index, sample in enumerate(corpus.split(split)[: args.videos]):
            indices = list(range(0, sample.num_frames, args.stride))
            truth, base, drawn, xy, confidence = compose(sample, model, indices, args.steps, args.seed + index,
                                                         tuple(args.base_resolution), args.base, not args.no_match)
            items += video_crops(indices, truth, base, drawn, xy, confidence, model)
            if args.detect:
                from bench_frame_ablation import found_hands

                # found_hands: (shown, found, found in place); "hands found" is the second over the first
                found += [found_hands(frames, xy[indices], confidence[indices]) for frames in (drawn, truth)]
        scores = {name: np.array([ssim(item[name], item["truth"]) for item in items]) for name in ("base", "sharpened", "stage")}
        better = float((scores["stage"] > scores["base"]).mean())
        cells = [split, str(len(items))] + [f"{scores[name].mean():.4f}" for name in ("base", "sharpened", "stage")] + [f"{better:.0%}"]
        if args.detect:
            stage, truth_share = found[:, 1] / np.maximum(found[:, 0], 1)
            cells.append(f"{stage:.1%} | {truth_share:.1%} | {stage / max(truth_share, 1e-9):.2f}")
        print("| " + " | ".join(cells) + f" | ({time.monotonic() - started:.0f} s)")
    if args.sheet:
        sample = corpus.split(args.splits[-1])[0]
        _, confidence, _ = sample.pose_arrays()
        seen = [i for i in range(sample.num_frames) if hands.hand_is_seen(confidence[i], 1)]
        start = seen[len(seen) // 2]
        frames = [i for i in range(start, start + 8) if i in seen]
        composed = compose(sample, model, frames, args.steps, args.seed, tuple(args.base_resolution), args.base, not args.no_match)
        crops = [item for item in video_crops(frames, *composed, model) if item["hand"] == 1]
        contact_sheet(crops, args.sheet, "render base" if args.base == "render" else f"base ({args.base_resolution[0]}x{args.base_resolution[1]})")
        print(f"wrote {args.sheet}: {sample.name} frames {frames[0]}..{frames[-1]}, right hand")


if __name__ == "__main__":
    main()
