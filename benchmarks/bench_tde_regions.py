"""Where a render's temporal difference error (TDE) comes from.

TDE is the mean over frame pairs and pixels of |(G[t+1] - G[t]) - (R[t+1] - R[t])|
(``signgen.video.metrics``). Copying the photo scores exactly the reference's own change,
so a render beats it only where its change matches the reference's. This splits the
whole-frame figure into four disjoint shares of it (they sum to the TDE):

    hands      inside the driving pose's hand boxes (of either frame of a pair)
    ref moves  elsewhere, where the reference changes by more than --threshold grey levels
    only ours  elsewhere, where only the render changes that much (motion the reference has not:
               a limb off its place, a texture shimmering with its keypoints)
    neither    elsewhere, where neither does (the small flicker left)

for copying the photo and for the embedded pipeline (or ``--model DIR``), on the protocol
of ``bench_frame_ablation.py`` (first ``--videos`` videos of each split, every frame after
the photo among the first ``--frames``, the pipeline's own render settings; ``--set
KEY=VALUE`` changes one). Prints one markdown row per split and method.

    python benchmarks/bench_tde_regions.py --data runs/synth --splits test test_unseen --videos 8
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bench_frame_ablation import copy_source, render_with, scored_frames
from signgen.corpora.phoenix import PhoenixCorpus
from signgen.video.metrics import box_masks, temporal_difference_map

SHARES = ("hands", "ref moves", "only ours", "neither")


def tde_shares(generated: np.ndarray, reference: np.ndarray, hands: np.ndarray, threshold: float) -> dict:
    """The TDE of ``generated`` against ``reference`` (T, H, W, 3) uint8 and its :data:`SHARES`
    (``hands`` (T, H, W) bool per frame)."""
    error = temporal_difference_map(generated, reference)
    in_hands = hands[:-1] | hands[1:]
    ours = np.abs(np.diff(generated.astype(np.float32), axis=0)).mean(-1) > threshold
    theirs = np.abs(np.diff(reference.astype(np.float32), axis=0)).mean(-1) > threshold
    regions = {"hands": in_hands, "ref moves": theirs & ~in_hands, "only ours": ours & ~theirs & ~in_hands,
               "neither": ~ours & ~theirs & ~in_hands}
    return {"tde": float(error.mean()), **{name: float((error * region).mean()) for name, region in regions.items()}}


def main() -> None:
    from signgen.cli.settings import parse_set_items
    from signgen.pipelines.pipeline import load_pipeline

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default=None, help="a pipeline folder (default: the embedded one)")
    parser.add_argument("--splits", nargs="+", default=["test", "test_unseen"])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--threshold", type=float, default=8.0, help="grey levels of change that count as moving")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipeline = load_pipeline(args.model)
    settings = parse_set_items(args.settings)
    steps = settings.pop("num_steps", pipeline.settings.num_steps)
    strength = settings.pop("strength", pipeline.settings.strength)
    methods = {"copy source frame": copy_source, "pipeline": render_with(pipeline, steps, strength, 0, **settings)}
    corpus = PhoenixCorpus(args.data)
    print("| split | method | tde | " + " | ".join(SHARES) + " |\n|---|---|" + "---:|" * (len(SHARES) + 1))
    for split in args.splits:
        for name, generate in methods.items():
            rows = []
            for sample in corpus.split(split)[: args.videos]:
                frames, xy, confidence, targets, boxes = scored_frames(sample, 1, args.frames)
                hands = box_masks(boxes, *frames.shape[1:3])
                rows.append(tde_shares(generate(sample, frames, xy, confidence, targets), frames[targets], hands, args.threshold))
            means = {key: np.mean([row[key] for row in rows]) for key in rows[0]}
            print(f"| {split} | {name} | {means['tde']:.2f} | " + " | ".join(f"{means[k]:.2f}" for k in SHARES) + " |", flush=True)


if __name__ == "__main__":
    main()
