"""Time each video metric on one PHOENIX-sized video pair (run by hand, not a test).

    python benchmarks/bench_metrics.py --frames 100 [--device cuda] [--fid-vid-weights P] [--fvd-weights P]

Without weights, FID-VID and FVD run their networks with random weights: the same work.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def timed(name: str, function, *args, repeats: int = 1):
    function(*args)  # warm-up: first calls allocate and pick kernels
    start = time.perf_counter()
    for _ in range(repeats):
        result = function(*args)
    seconds = (time.perf_counter() - start) / repeats
    print(f"{name:<34s} {seconds * 1000:9.1f} ms")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--height", type=int, default=260)
    parser.add_argument("--width", type=int, default=210)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fid-vid-weights")
    parser.add_argument("--fvd-weights")
    parser.add_argument("--skip-networks", action="store_true")
    args = parser.parse_args()

    import torch

    from signgen.video.features import I3DFeatures, InceptionV3Features, ResNet3DFeatures
    from signgen.video.i3d import InceptionI3d
    from signgen.video.metrics import (
        FrechetAccumulator,
        frechet_distance,
        psnr,
        ssim_gray,
        ssim_rgb,
        temporal_difference_error,
    )
    from signgen.video.resnet3d import resnet3d_50

    rng = np.random.default_rng(0)
    shape = (args.frames, args.height, args.width, 3)
    reference = rng.integers(0, 256, shape, dtype=np.uint8)
    generated = np.clip(reference + rng.normal(0, 10, shape), 0, 255).astype(np.uint8)
    print(f"video pair {shape}, torch threads {torch.get_num_threads()}, device {args.device}")

    timed("ssim_gray", ssim_gray, generated, reference)
    timed("ssim_rgb", ssim_rgb, generated, reference)
    timed("psnr", psnr, generated, reference, repeats=3)
    timed("temporal_difference_error", temporal_difference_error, generated, reference, repeats=3)

    features = rng.normal(size=(args.frames, 2048))
    accumulator = FrechetAccumulator(2048)
    timed("FrechetAccumulator.update (T x 2048)", accumulator.update, features)
    other = FrechetAccumulator(2048)
    other.update(rng.normal(size=(4096, 2048)))
    big = FrechetAccumulator(2048)
    big.update(rng.normal(size=(4096, 2048)) + 0.1)
    timed("frechet_distance (2048-d)", frechet_distance, big.mean, big.covariance, other.mean, other.covariance)

    if args.skip_networks:
        return
    inception = InceptionV3Features(device=args.device)
    timed("InceptionV3 features (per video)", inception, generated)
    if args.fid_vid_weights:
        resnet = ResNet3DFeatures.from_weights(args.fid_vid_weights, args.device)
    else:
        resnet = ResNet3DFeatures(resnet3d_50(), args.device)
    timed("3D ResNet-50 features (per video)", resnet, generated)
    i3d = I3DFeatures.from_weights(args.fvd_weights, args.device) if args.fvd_weights else I3DFeatures(InceptionI3d(), args.device)
    timed("I3D features (per video)", i3d, generated)


if __name__ == "__main__":
    main()
