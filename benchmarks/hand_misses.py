"""The hands MediaPipe finds in the ground truth but not in the render, side by side, from a
finished ``bench_readability.py`` run (its OUT/renders/ and OUT/poses/): what a reader loses.

For every hand the driving pose shows, it counts whether MediaPipe Holistic found it in the
ground truth and in the render, and whether its body model put that arm's wrist within 0.3
shoulder widths of the driving pose's (then the hand model, not the body, decided), and draws
``--count`` random pairs (ground truth | render, enlarged 3 times) where the ground truth's
hand was found and the render's was not.

    python benchmarks/hand_misses.py --data runs/synth --run runs/readability-bench --split test_unseen \\
        --videos 16 -o misses.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from bench_readability import upscale
from signgen.corpora.phoenix import PhoenixCorpus
from signgen.poses import skeleton
from signgen.poses.holistic import pose_arrays, reduce_to_178
from signgen.poses.io import read_pose

HANDS = ((skeleton.LEFT_HAND, 4), (skeleton.RIGHT_HAND, 5))  # each hand with its body wrist
HALF = 24  # half the side of a drawn crop, in pixels of the frame


def only(folder: Path, pattern: str) -> Path:
    found = [path for path in sorted(folder.glob(pattern)) if ".partial" not in path.name]
    if len(found) != 1:
        raise SystemExit(f"{folder}: {len(found)} files match {pattern} (one expected: a finished run; "
                         "--key names the render when the folder holds several)")
    return found[0]


def hands_of(run: Path, sample, key: str, frame_width: int) -> tuple[list, dict]:
    """Each hand the driving pose shows as (frame, centre of its points in the pixels of a
    frame ``frame_width`` wide), and per row the flags found and wrist placed, in the same order."""
    xy, conf, pose_size = sample.pose_arrays()
    xy = xy * (frame_width / pose_size[0])
    both = (conf[:, 0] > 0) & (conf[:, 1] > 0)
    width = np.median(np.linalg.norm(xy[both, 0] - xy[both, 1], axis=1)) if both.any() else np.inf
    found = {row: pose_arrays(reduce_to_178(read_pose(only(run / "poses", pattern)))) for row, pattern in
             (("ground truth", f"{sample.name}-ground-truth.pose"), ("render", f"{sample.name}-embedded-render-{key}.pose"))}
    shown, rows = [], {row: ([], []) for row in found}
    for points, wrist in HANDS:
        for t in np.where(conf[:, points].max(1) > 0)[0]:
            shown.append((t, xy[t, points][conf[t, points] > 0].mean(0)))
            for row, (found_xy, found_conf) in found.items():
                rows[row][0].append(found_conf[t, points].max() > 0)
                distance = np.linalg.norm(found_xy[t, wrist] - xy[t, points][0]) / width
                rows[row][1].append(found_conf[t, wrist] > 0 and distance < 0.3)
    return shown, rows


def crop(frame: np.ndarray, centre: np.ndarray) -> np.ndarray:
    x = int(np.clip(centre[0], 0, frame.shape[1] - 1))
    y = int(np.clip(centre[1], 0, frame.shape[0] - 1))
    padded = np.pad(frame, ((HALF, HALF), (HALF, HALF), (0, 0)), constant_values=255)
    return np.asarray(Image.fromarray(padded[y:y + 2 * HALF, x:x + 2 * HALF]).resize((6 * HALF, 6 * HALF), Image.NEAREST))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the SynthSign corpus the run read")
    parser.add_argument("--run", required=True, type=Path, help="a bench_readability.py OUT folder")
    parser.add_argument("--split", default="test_unseen")
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--key", default="*", help="the render key (the part of OUT/renders/NAME-KEY.npy after the "
                        "name) when the folder holds renders of several pipelines or step counts")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    corpus = PhoenixCorpus(args.data)
    totals = {row: [[], []] for row in ("ground truth", "render")}
    misses = []
    for sample in corpus.split(args.split)[: args.videos]:
        truth = sample.frames()
        shown, rows = hands_of(args.run, sample, args.key, truth.shape[2])
        for row, (found, placed) in rows.items():
            totals[row][0] += found
            totals[row][1] += placed
        render = upscale(np.load(only(args.run / "renders", f"{sample.name}-{args.key}.npy")), truth.shape[1:3])
        misses += [(truth[t], render[t], centre) for (t, centre), seen, lost in
                   zip(shown, rows["ground truth"][0], rows["render"][0]) if seen and not lost]
    if not totals["render"][0]:
        raise SystemExit(f"the driving poses of the first {args.videos} videos of {args.split} show no hand")
    for row, (found, placed) in totals.items():
        found, placed = np.array(found, dtype=bool), np.array(placed, dtype=bool)
        print(f"{row}: {len(found)} hands shown, found {found.mean():.1%}, wrist placed {placed.mean():.1%}, "
              f"found where placed {found[placed].mean():.1%}")
    print(f"found in the ground truth, not in the render: {len(misses)}")
    if not misses:
        return
    chosen = np.random.default_rng(0).choice(len(misses), min(args.count, len(misses)), replace=False)
    gap = np.full((6 * HALF, 4, 3), 255, np.uint8)
    tiles = [np.pad(np.concatenate([crop(misses[i][0], misses[i][2]), gap, crop(misses[i][1], misses[i][2])], 1),
                    ((4, 4), (4, 4), (0, 0)), constant_values=255) for i in chosen]
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % args.columns)
    rows = [np.concatenate(tiles[i:i + args.columns], 1) for i in range(0, len(tiles), args.columns)]
    Image.fromarray(np.concatenate(rows, 0)).save(args.output)


if __name__ == "__main__":
    main()
