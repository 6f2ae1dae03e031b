"""Frame-model ablation on SynthSign held-out videos (issue 5): SSIM (both conventions) and
PSNR of (a) copying the source frame, (b) the model trained without the fusion embedding,
(c) the full model, (b) and (c) trained with the same budget.

Protocol: for each video of a split, the source (signer photo) is its first frame; every
``--stride``-th later frame is a target, drawn from its pose map. All three are compared
with the reference at the models' resolution (the reference is downscaled with INTER_AREA,
as in training), so the copy baseline gets no advantage from full resolution.

    python benchmarks/bench_frame_ablation.py --data DIR --full MODEL_DIR --no-fusion MODEL_DIR \
        [--splits test test_unseen] [--videos 8] [--stride 8] [--steps 20] [--markdown OUT.md] \
        [--extra LABEL=MODEL_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from signgen.corpora.phoenix import PhoenixCorpus, pose_maps_of, to_model_image
from signgen.models.frame_model import FrameModel
from signgen.pipelines.sampling import GuidanceScales, frames_to_uint8, sample_frames
from signgen.video.metrics import psnr, ssim_gray, ssim_rgb


def evaluate(name, generate, samples, resolution, stride):
    rows = []
    for sample in samples:
        targets = np.arange(1, sample.num_frames, stride)
        source = to_model_image(sample.frame(0), resolution)
        reference = np.stack([frames_to_uint8(to_model_image(sample.frame(int(t)), resolution)[None])[0] for t in targets])
        generated = generate(sample, source, targets)
        rows.append({"ssim_gray": ssim_gray(generated, reference), "ssim_rgb": ssim_rgb(generated, reference),
                     "psnr": psnr(generated, reference), "frames": len(targets)})
    weights = np.array([r["frames"] for r in rows], dtype=float)
    return {key: float(np.average([r[key] for r in rows], weights=weights)) for key in ("ssim_gray", "ssim_rgb", "psnr")}


def model_generator(model, steps, scheduler, seed):
    def generate(sample, source, targets):
        poses = pose_maps_of(sample, targets, model.resolution)
        with torch.no_grad():
            frames = sample_frames(model, source, poses, scheduler=scheduler, num_steps=steps,
                                   guidance=GuidanceScales(), seed=seed, progress=False)
        return frames_to_uint8(frames)
    return generate


def copy_source(sample, source, targets):
    return np.repeat(frames_to_uint8(source[None]), len(targets), axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--full", required=True, help="frame model folder trained with the fusion embedding")
    parser.add_argument("--no-fusion", required=True, help="frame model folder trained without it, same budget")
    parser.add_argument("--splits", nargs="+", default=["test", "test_unseen"])
    parser.add_argument("--videos", type=int, default=8, help="videos per split")
    parser.add_argument("--stride", type=int, default=8, help="every stride-th frame is a target")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--scheduler", default="ddim")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra", action="append", default=[], metavar="LABEL=DIR",
                        help="another frame model to score beside (b) and (c), e.g. the full model trained longer (repeatable)")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()

    corpus = PhoenixCorpus(args.data)
    models = {"(b) without fusion embedding": FrameModel.from_pretrained(args.no_fusion),
              "(c) full model": FrameModel.from_pretrained(args.full)}
    for extra in args.extra:
        label, separator, folder = extra.partition("=")
        if not separator or not label or not folder:
            parser.error(f"--extra takes LABEL=DIR, not {extra!r}")
        models[label] = FrameModel.from_pretrained(folder)
    resolution = next(iter(models.values())).resolution
    lines = ["| split | method | ssim_gray | ssim_rgb | psnr (dB) |", "|---|---|---|---|---|"]
    results = {}
    for split in args.splits:
        samples = corpus.split(split)[: args.videos]
        methods = {"(a) copy source frame": copy_source}
        methods.update({name: model_generator(m.eval(), args.steps, args.scheduler, args.seed) for name, m in models.items()})
        for name, generate in methods.items():
            start = time.perf_counter()
            scores = evaluate(name, generate, samples, resolution, args.stride)
            results[f"{split}/{name}"] = scores
            lines.append(f"| {split} | {name} | {scores['ssim_gray']:.4f} | {scores['ssim_rgb']:.4f} | {scores['psnr']:.2f} |")
            print(lines[-1], f"({time.perf_counter() - start:.0f} s)", flush=True)
    table = "\n".join(lines)
    print(table)
    print(json.dumps(results, indent=1))
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(table + "\n")


if __name__ == "__main__":
    main()
