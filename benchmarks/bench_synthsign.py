"""SynthSign speed: cartoon rendering, PNG encoding, and writing a whole corpus.

Run by hand (not a test)::

    python benchmarks/bench_synthsign.py                       # 20 videos, 1 worker
    python benchmarks/bench_synthsign.py --videos 200 --workers 2

Prints frames per second for rendering alone (210 x 260, one identity per pattern),
for PNG encoding alone, and videos and frames per second for ``write_synthsign`` into a
temporary folder (removed afterwards unless ``--keep``), with the corpus size on disk.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def bench_rendering(frames: int) -> None:
    from signgen.corpora.cartoon import CartoonRenderer
    from signgen.corpora.identity import PATTERNS, Identity
    from signgen.poses.holistic import pose_arrays
    from signgen.poses.stitch import glosses_to_pose
    from signgen.corpora.synthsign import encode_png, gloss_alphabet

    alphabet = gloss_alphabet()
    pose = glosses_to_pose(alphabet)
    xy, confidence = pose_arrays(pose)
    xy, confidence = np.resize(xy, (frames, *xy.shape[1:])), np.resize(confidence, (frames, confidence.shape[1]))
    rng = np.random.default_rng(0)
    rendered = None
    for pattern in PATTERNS:
        identity = dataclasses.replace(Identity.sample(rng), pattern=pattern)
        renderer = CartoonRenderer(identity)
        renderer.render(xy[:2], confidence[:2])  # warm-up
        start = time.perf_counter()
        rendered = renderer.render(xy, confidence)
        seconds = time.perf_counter() - start
        print(f"render {pattern:8s}: {frames / seconds:7.1f} frames/s")
    start = time.perf_counter()
    sizes = [len(encode_png(frame)) for frame in rendered]
    seconds = time.perf_counter() - start
    print(f"PNG encode      : {frames / seconds:7.1f} frames/s, {np.mean(sizes) / 1024:.1f} KiB per frame")


def bench_corpus(videos: int, signers: int, workers: int, keep: bool) -> None:
    from signgen.corpora.synthsign import SynthSignSettings, write_synthsign

    folder = Path(tempfile.mkdtemp(prefix="bench-synthsign-"))
    root = folder / "corpus"
    start = time.perf_counter()
    summary = write_synthsign(root, SynthSignSettings(signers=signers, videos=videos, seed=0), workers=workers)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    print(f"write_synthsign : {videos} videos, {summary.frames} frames in {seconds:.1f} s with {workers} worker(s): "
          f"{videos / seconds:.2f} videos/s, {summary.frames / seconds:.1f} frames/s, {size / 2**20:.0f} MiB on disk")
    if keep:
        print(f"kept {root}")
    else:
        shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=500, help="frames rendered per pattern")
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--signers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the written corpus")
    args = parser.parse_args()
    bench_rendering(args.frames)
    bench_corpus(args.videos, args.signers, args.workers, args.keep)


if __name__ == "__main__":
    main()
