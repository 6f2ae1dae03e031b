"""The coarse image alone, part-wise (``signgen.poses.warp``) against one mesh
(``signgen.poses.mesh_warp``), on SynthSign (or PHOENIX) held-out videos; its speed; and a
contact sheet of both.

Quality: ``bench_frame_ablation.py``'s protocol and measurements (imported): each video's
first frame is the photo, with its corpus pose; every ``--stride``-th later frame of the
first ``--frames`` is the photo warped to that frame's pose, at the corpus' size, scored
against the reference frame. The mesh's person mask is MediaPipe's selfie segmentation of
the photo (the pose's part regions where it finds nobody), as a render would get it.

Speed (``--timing``): per video, the mesh's setup (segmentation included) and its frames,
wall clock, one thread; the part-wise warp's frames beside it.

Sheet (``--sheet OUT.png``): rows reference, part-wise, mesh, the mesh's ``uncovered``
mask, over ``--sheet-frames`` consecutive frames; by default the stretch of the split's
first videos where an elbow whose forearm the photo shows well bends furthest from the
photo's angle.

    python benchmarks/bench_mesh_warp.py --data DIR [--splits test test_unseen] [--videos 8] [--frames 48]
        [--stride 1] [--steady-torso 0] [--timing] [--sheet OUT.png [--sheet-split S] [--sheet-video I]
        [--sheet-start T] [--sheet-frames 6] [--sheet-scale 2]] [--markdown OUT.md]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench_frame_ablation import coarse_image, score_table  # noqa: E402
from signgen.corpora.phoenix import PhoenixCorpus  # noqa: E402
from signgen.poses.mesh_warp import MeshWarp  # noqa: E402
from signgen.poses.warp import steady_torso as steady_points, warp_to_pose  # noqa: E402

ARMS = ((0, 2, 4), (1, 3, 5))  # shoulder, elbow, wrist of the left and the right arm


def timing(samples, frames_per_video: int) -> dict:
    """Medians over the videos, in ms: wall clock, and this process's CPU time (the same on
    an idle machine; on a shared one, the work itself)."""
    clocks = {"wall": time.perf_counter, "cpu": time.process_time}
    found = {f"{what}_{clock}": [] for what in ("mesh_setup", "mesh_frame", "parts_frame") for clock in clocks}
    for sample in samples:
        frames = sample.frames()
        xy, confidence, _ = sample.pose_arrays()
        targets = range(1, min(len(frames), frames_per_video))
        start = {clock: tick() for clock, tick in clocks.items()}
        mesh = MeshWarp(frames[0], xy[0], confidence[0])
        middle = {clock: tick() for clock, tick in clocks.items()}
        for t in targets:
            mesh.warp(xy[t], confidence[t])
        end = {clock: tick() for clock, tick in clocks.items()}
        for t in targets:
            warp_to_pose(frames[0], xy[0], confidence[0], xy[t], confidence[t])
        last = {clock: tick() for clock, tick in clocks.items()}
        for clock in clocks:
            found[f"mesh_setup_{clock}"].append(middle[clock] - start[clock])
            found[f"mesh_frame_{clock}"].append((end[clock] - middle[clock]) / len(targets))
            found[f"parts_frame_{clock}"].append((last[clock] - end[clock]) / len(targets))
    size = samples[0].frames().shape[1:3]
    # The first setup also loads MediaPipe's segmentation model: left out of the median.
    return {"size": f"{size[0]} x {size[1]}", "videos": len(samples), "first_setup_ms": round(1000 * found["mesh_setup_wall"][0], 1),
            **{f"{key}_ms": round(1000 * float(np.median(values[1:])), 2) for key, values in found.items()}}


def elbow_angles(xy: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """(T, 2) the angle at each elbow in degrees (180: straight), NaN where unseen."""
    angles = np.full((len(xy), 2), np.nan)
    for side, (shoulder, elbow, wrist) in enumerate(ARMS):
        upper, fore = xy[:, shoulder] - xy[:, elbow], xy[:, wrist] - xy[:, elbow]
        cos = (upper * fore).sum(-1) / np.maximum(np.linalg.norm(upper, axis=-1) * np.linalg.norm(fore, axis=-1), 1e-9)
        seen = (confidence[:, [shoulder, elbow, wrist]] > 0).all(-1)
        angles[seen, side] = np.degrees(np.arccos(np.clip(cos[seen], -1, 1)))
    return angles


def bent_stretch(samples, length: int, max_frames: int) -> tuple[int, int]:
    """(video index, first frame): the stretch of ``length`` frames whose elbow bends furthest
    from the photo's, weighted by how much of that forearm the photo shows (a forearm seen
    end-on in the photo says little about a warp)."""
    best, where = -1.0, (0, 1)
    for index, sample in enumerate(samples):
        xy, confidence, _ = sample.pose_arrays()
        xy, confidence = xy[:max_frames], confidence[:max_frames]
        angles = elbow_angles(xy, confidence)
        width = max(float(np.linalg.norm(xy[0, 0] - xy[0, 1])), 1.0)
        shown = np.array([min(1.0, np.linalg.norm(xy[0, wrist] - xy[0, elbow]) / (0.6 * width)) for _, elbow, wrist in ARMS])
        bend = np.nan_to_num(np.abs(angles - angles[:1]) * shown).max(1)
        for start in range(1, len(bend) - length + 1):
            score = float(bend[start:start + length].mean())
            if score > best:
                best, where = score, (index, start)
    return where


def sheet(sample, start: int, count: int, path: str, steady_torso: float, scale: int = 2) -> None:
    frames = sample.frames()
    xy, confidence, _ = sample.pose_arrays()
    targets = np.arange(start, min(start + count, len(frames)))
    mesh = MeshWarp(frames[0], xy[0], confidence[0])
    steady = steady_points(xy[targets], confidence[targets], steady_torso)
    coarse = [mesh.warp(point, confidence[t]) for point, t in zip(steady, targets)]
    rows = {"reference": frames[targets],
            "part-wise": coarse_image(sample, frames, xy, confidence, targets, steady_torso=steady_torso),
            "mesh": np.stack([c.image for c in coarse]),
            "mesh uncovered": np.stack([np.where(c.uncovered[..., None], np.array([255, 0, 255], np.uint8), c.image // 3 + 80)
                                        for c in coarse])}
    rows = {label: np.stack([cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) for image in images])
            for label, images in rows.items()}
    height, width = frames.shape[1] * scale, frames.shape[2] * scale
    label_width = 120
    canvas = np.full((height * len(rows) + 20, label_width + width * len(targets), 3), 255, np.uint8)
    cv2.putText(canvas, f"photo: frame 0; frames {targets[0]}-{targets[-1]}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    for r, (label, images) in enumerate(rows.items()):
        top = 20 + r * height
        cv2.putText(canvas, label, (4, top + height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        for c, image in enumerate(images):
            canvas[top:top + height, label_width + c * width:label_width + (c + 1) * width] = image
    from PIL import Image

    from signgen.atomic import atomic_output

    with atomic_output(path) as out:
        Image.fromarray(canvas).save(out, format="PNG")
    print(f"wrote {path}: {canvas.shape[1]} x {canvas.shape[0]}, frames {targets[0]}-{targets[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--splits", nargs="+", default=["test", "test_unseen"])
    parser.add_argument("--videos", type=int, default=8, help="videos per split")
    parser.add_argument("--stride", type=int, default=1, help="every stride-th frame is scored (1: every frame)")
    parser.add_argument("--frames", type=int, default=48, help="score only the first N frames of each video")
    parser.add_argument("--steady-torso", type=float, default=0.0, metavar="FRAMES")
    parser.add_argument("--timing", action="store_true", help="only time the mesh's setup and frames")
    parser.add_argument("--no-quality", action="store_true", help="skip the quality table")
    parser.add_argument("--sheet", metavar="OUT.png", help="also write a contact sheet")
    parser.add_argument("--sheet-split", default="test_unseen")
    parser.add_argument("--sheet-video", type=int, help="index in the split (default: the most bent stretch)")
    parser.add_argument("--sheet-start", type=int, help="first frame (default: the most bent stretch)")
    parser.add_argument("--sheet-frames", type=int, default=6)
    parser.add_argument("--sheet-scale", type=int, default=2, help="pixels of the sheet per pixel of a frame")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    corpus = PhoenixCorpus(args.data)

    if args.timing:
        samples = [s for split in args.splits for s in corpus.split(split)[: args.videos]]
        print(timing(samples, args.frames))
    if args.sheet:
        samples = corpus.split(args.sheet_split)[: args.videos]
        video, start = bent_stretch(samples, args.sheet_frames, args.frames)
        video = video if args.sheet_video is None else args.sheet_video
        start = start if args.sheet_start is None else args.sheet_start
        sheet(samples[video], start, args.sheet_frames, args.sheet, args.steady_torso, args.sheet_scale)
    if args.timing or args.no_quality:
        return

    methods = {"part-wise (poses.warp)": lambda *a: coarse_image(*a, steady_torso=args.steady_torso),
               "mesh (poses.mesh_warp)": lambda *a: coarse_image(*a, steady_torso=args.steady_torso, method="mesh")}
    score_table(methods, corpus, args, what="coarse image")

if __name__ == "__main__":
    main()
