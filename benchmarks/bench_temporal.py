"""TDE and SSIM of one frame model with and without its trained temporal adapter (run by hand).

    python benchmarks/bench_temporal.py --frame-model RUN/model --adapter RUN_T/model \\
        --data SYNTHSIGN --split test --frames 40 --videos 20 --steps 20 --seed 0 \\
        [--markdown docs/temporal-results.md]

Both rows render the same held-out clips from the same pose maps, signer image, frame model,
scheduler, steps and initial noise (one seed per clip): "frame-wise" is
``signgen.pipelines.sampling.sample_frames``; "adapter" is ``signgen.pipelines.windows.sample_video`` in windows
of ``--window`` frames (the adapter's training clip length) overlapping by ``--overlap``. Clips longer than one
window (``--frames`` > window) exercise the blending. Reported per row, averaged over clips:
TDE (DESIGN.md section 5, [0, 255], lower is better), ssim_rgb and ssim_gray (higher is
better), and seconds per clip.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame-model", required=True, help="trained frame model folder")
    parser.add_argument("--adapter", required=True, help="trained temporal adapter folder (or training OUT folder)")
    parser.add_argument("--data", required=True, help="corpus root in the PHOENIX layout (SynthSign)")
    parser.add_argument("--split", default="test", help="held-out split (default: test)")
    parser.add_argument("--frames", type=int, default=40, help="frames per evaluated clip")
    parser.add_argument("--videos", type=int, default=20, help="number of clips")
    parser.add_argument("--window", type=int, default=16, help="window length; use the adapter's training clip length (default 16)")
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--scheduler", default="ddim")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--appearance-scale", type=float, default=1.5)
    parser.add_argument("--full-scale", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()

    import torch

    from signgen.corpora.phoenix import clip_dataset
    from signgen.models.frame_model import FrameModel
    from signgen.pipelines.sampling import GuidanceScales, frames_to_uint8, sample_frames
    from signgen.models.temporal import load_adapter
    from signgen.video.metrics import ssim_gray, ssim_rgb, temporal_difference_error
    from signgen.pipelines.windows import sample_video

    model = FrameModel.from_pretrained(args.frame_model).to(args.device)
    adapter = load_adapter(args.adapter).to(args.device)
    window = args.window
    dataset = clip_dataset(args.data, args.split, num_frames=args.frames, resolution=model.resolution, pose_channels=model.pose_channels)
    guidance = GuidanceScales(appearance=args.appearance_scale, full=args.full_scale)
    common = {"scheduler": args.scheduler, "num_steps": args.steps, "guidance": guidance, "progress": False}
    renderers = {
        "frame-wise": lambda source, poses, seed: sample_frames(model, source, poses, seed=seed, **common),
        "adapter": lambda source, poses, seed: sample_video(
            model, adapter, source, poses, window_size=window, overlap=args.overlap, seed=seed, **common
        ),
    }
    scores = {name: {"tde": [], "ssim_rgb": [], "ssim_gray": [], "seconds": []} for name in renderers}
    count = min(args.videos, len(dataset))
    for index in range(count):
        clip = dataset[index]
        reference = frames_to_uint8(clip["frames"])
        for name, render in renderers.items():
            start = time.perf_counter()
            generated = frames_to_uint8(render(clip["source"], clip["poses"], args.seed + index))
            scores[name]["seconds"].append(time.perf_counter() - start)
            scores[name]["tde"].append(temporal_difference_error(generated, reference))
            scores[name]["ssim_rgb"].append(ssim_rgb(generated, reference))
            scores[name]["ssim_gray"].append(ssim_gray(generated, reference))
        print(f"clip {index + 1}/{count}: " + ", ".join(f"{n} TDE {s['tde'][-1]:.2f}" for n, s in scores.items()), flush=True)

    header = (
        f"{count} {args.split} clips of {args.frames} frames, {args.scheduler} {args.steps} steps, "
        f"guidance ({args.appearance_scale}, {args.full_scale}), window {window} overlap {args.overlap}, "
        f"seeds {args.seed}..{args.seed + count - 1}, device {args.device}"
    )
    lines = [header, "", "| sampling | TDE (lower better) | ssim_rgb | ssim_gray | s / clip |", "|---|---:|---:|---:|---:|"]
    for name, values in scores.items():
        lines.append(
            f"| {name} | {np.mean(values['tde']):.2f} | {np.mean(values['ssim_rgb']):.4f} | "
            f"{np.mean(values['ssim_gray']):.4f} | {np.mean(values['seconds']):.1f} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    if args.markdown:
        from signgen.atomic import atomic_output

        with atomic_output(args.markdown) as path:
            path.write_text(table, encoding="utf-8")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
