"""Reconstruction of held-out frames by an autoencoder (``signgen train autoencoder``),
scored as renders are written.

Protocol: every ``--stride``-th frame of the first ``--videos`` videos of each split is
resized (area filter) to the autoencoder's resolution, as frame models see their frames,
encoded (posterior mean), decoded, upscaled (Lanczos) to the corpus' 260 x 210 and compared
with the original frame. The row "resize only" skips the autoencoder: it is the ceiling of
a pixel-space frame model at that resolution, so the gap between the rows is what the
latent space costs. Columns: ssim_rgb, PSNR, hand-SSIM and hand-PSNR (boxes around the
frame's own hands, ``signgen.poses.regions``), and ssim_rgb / PSNR at the model resolution
against the resized frame (the autoencoder's error alone).

    python benchmarks/bench_autoencoder.py --data DIR --vae "tiny=runs/ae/model" \
        [--vae LABEL=DIR ...] [--splits test test_unseen] [--videos 8] [--stride 4] [--markdown OUT.md]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch

from bench_frame_ablation import finish_table, table_row, weighted_mean
from signgen.corpora.phoenix import PhoenixCorpus
from signgen.models.frame_model import load_vae
from signgen.pipelines.postprocess import upscale_frames
from signgen.poses.regions import hand_boxes
from signgen.video.metrics import psnr, region_psnr, region_ssim, ssim_rgb

COLUMNS = ("ssim_rgb", "psnr", "hand_ssim", "hand_psnr", "model_ssim_rgb", "model_psnr")


def resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    return np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in frames])


@torch.no_grad()
def round_trip(vae, frames: np.ndarray, batch_size: int = 16) -> np.ndarray:
    out = []
    for start in range(0, len(frames), batch_size):
        images = torch.from_numpy(frames[start:start + batch_size]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        decoded = vae.decode(vae.encode(images).latent_dist.mode()).sample
        out.append(((decoded.clamp(-1, 1) + 1.0) * 127.5).round().byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def evaluate(vae, samples, stride: int, size: tuple[int, int]) -> dict:
    totals, weights = {key: [] for key in COLUMNS}, []
    for sample in samples:
        frames = sample.frames()
        xy, confidence, _ = sample.pose_arrays()
        targets = np.arange(0, len(frames), stride)
        reference = frames[targets]
        small = resize(reference, size)
        rebuilt = small if vae is None else round_trip(vae, small)
        generated = upscale_frames(rebuilt, reference.shape[1:3])
        boxes = hand_boxes(xy[targets], confidence[targets], (frames.shape[2], frames.shape[1]))
        scores = {
            "ssim_rgb": ssim_rgb(generated, reference),
            "psnr": psnr(generated, reference),
            "hand_ssim": region_ssim(generated, reference, boxes),
            "hand_psnr": region_psnr(generated, reference, boxes),
            "model_ssim_rgb": ssim_rgb(rebuilt, small) if vae is not None else None,
            "model_psnr": psnr(rebuilt, small) if vae is not None else None,
        }
        for key, value in scores.items():
            totals[key].append(value)
        weights.append(len(targets))
    return {key: weighted_mean(values, weights) for key, values in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--vae", action="append", default=[], metavar="LABEL=DIR", help="an autoencoder folder (repeatable)")
    parser.add_argument("--splits", nargs="+", default=["test", "test_unseen"])
    parser.add_argument("--videos", type=int, default=8, help="videos per split")
    parser.add_argument("--stride", type=int, default=4, help="every stride-th frame is scored (1: every frame)")
    parser.add_argument("--resolution", type=int, nargs=2, default=(128, 104), metavar=("H", "W"),
                        help="the frame model's resolution, the autoencoders' input (default frame-v2's 128 x 104)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    autoencoders = {}
    for item in args.vae:
        label, separator, folder = item.partition("=")
        if not separator or not label or not folder:
            parser.error(f"--vae takes LABEL=DIR, not {item!r}")
        autoencoders[label] = load_vae(folder).eval()
    size = tuple(args.resolution)
    methods = {f"resize only ({size[0]} x {size[1]})": None, **autoencoders}
    corpus = PhoenixCorpus(args.data)
    header = "| split | method | " + " | ".join(COLUMNS) + " | ms / frame |"
    lines = [header, "|---|---|" + "---:|" * (len(COLUMNS) + 1)]
    results = {}
    for split in args.splits:
        samples = corpus.split(split)[: args.videos]
        frames = sum(len(range(0, s.num_frames, args.stride)) for s in samples)
        for name, vae in methods.items():
            start = time.perf_counter()
            scores = evaluate(vae, samples, args.stride, size)
            milliseconds = 1000 * (time.perf_counter() - start) / frames
            results[f"{split}/{name}"] = {**scores, "ms_per_frame": milliseconds, "frames": frames}
            lines.append(table_row(split, name, scores, COLUMNS, f"{milliseconds:.1f}"))
            print(lines[-1], flush=True)
    finish_table(lines, results, args.markdown)


if __name__ == "__main__":
    main()
