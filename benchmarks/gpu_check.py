"""The prepared GPU check of issue #28 (run by ``benchmarks/gpu_check.sh``): the PHOENIX frame
model at full size with random weights, trained and rendered, and the same with the
temporal adapter; one table of seconds and peak memory.

Steps (each through signgen's own commands and pipeline, in one process):

1. a SynthSign corpus (PHOENIX's 260 x 210 frames, 25 fps), unless ``--data`` names one;
2. a random Stable Diffusion-shaped VAE (``AutoencoderKL`` of SD 1.5's config, 83.7 M
   parameters) and a random stage-1 model: their weights do not change the cost;
3. ``signgen train diffusion --config frame-phoenix.yaml`` for ``--steps`` steps (batch 16,
   2 micro-batches a step, bf16 on a GPU: the config's own settings);
4. ``signgen train temporal --config temporal-defaults.yaml`` for ``--steps`` steps on that
   frame model (bf16, two 16-frame clips a step, gradient checkpointing);
5. ``--frames`` frames rendered from a SynthSign pose, frame-wise and with the adapter
   (the pipeline's default settings, ``--num-steps`` sampling steps).

Seconds per step are measured between the first and the last logged step (the first step
compiles kernels and warms the allocator); peak memory is ``torch.cuda.max_memory_allocated``
per phase on a GPU, the process' peak resident memory on a CPU. ``--tiny`` runs the same
steps with tiny configs on a CPU in seconds (the test suite runs it so that it cannot rot).

    python benchmarks/gpu_check.py --out /tmp/gpu-check [--data DIR] [--steps 30] [--frames 125] [--num-steps 25] [--tiny]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import torch

# The tiny tier: 32 x 24 pixels, two UNet levels, no VAE (as tests/conftest.py's tiny models).
TINY_FRAME = ["model.resolution=[32, 24]", "model.encoder.patch_size=8", "model.encoder.hidden_size=16",
              "model.encoder.num_layers=1", "model.encoder.num_heads=2", "model.encoder.intermediate_size=16",
              "model.pose_encoder.patch_size=8", "model.pose_encoder.hidden_size=16", "model.pose_encoder.num_layers=1",
              "model.pose_encoder.num_heads=2", "model.pose_encoder.intermediate_size=16", "model.fusion.embed_dim=8",
              "model.fusion.hidden_dim=8", "model.unet.block_out_channels=[16, 32]",
              "model.unet.down_block_types=[DownBlock2D, CrossAttnDownBlock2D]",
              "model.unet.up_block_types=[CrossAttnUpBlock2D, UpBlock2D]", "model.unet.cross_attention_dim=16",
              "model.unet.attention_head_dim=2", "model.unet.norm_num_groups=8", "model.coarse_image=true",
              "model.reference_attention=true", "train_diffusion.batch_size=2", "train_diffusion.num_workers=0"]
TINY_TEMPORAL = ["adapter.num_attention_heads=2", "adapter.norm_num_groups=8", "train.batch_size=1", "train.num_frames=4",
                 "windows.overlap=1", "train.num_workers=0"]
# Stable Diffusion 1.5's VAE (config only: the weights here are random).
SD_VAE = dict(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2, norm_num_groups=32,
              sample_size=512, scaling_factor=0.18215)


def cli(*argv: str) -> None:
    from signgen.cli.main import main

    code = main([str(arg) for arg in argv])
    if code:
        raise SystemExit(f"gpu_check: `signgen {' '.join(map(str, argv))}` failed (exit {code})")


class Peak:
    """Peak memory of one phase: CUDA allocator peak on a GPU, process peak RSS on a CPU."""

    def __enter__(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            self.gib = torch.cuda.max_memory_allocated() / 2**30
        else:
            self.gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
        self.seconds = time.perf_counter() - self.started


def seconds_per_step(run: Path) -> float:
    """Mean seconds of the steps after the first, from the run's log (log_every=1)."""
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    records = [r for r in records if "elapsed_s" in r]
    if len(records) < 2:
        return records[-1]["elapsed_s"]
    return (records[-1]["elapsed_s"] - records[0]["elapsed_s"]) / (records[-1]["step"] - records[0]["step"])


def driving_pose(corpus: Path, frames: int, out: Path) -> Path:
    """A pose of exactly ``frames`` frames: the longest of the corpus' poses, looped."""
    import numpy as np
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody

    from signgen.poses.io import read_pose, write_pose

    path = max(sorted(corpus.rglob("*.pose")), key=lambda p: read_pose(p).body.data.shape[0])
    pose = read_pose(path)
    index = np.arange(frames) % pose.body.data.shape[0]
    body = NumPyPoseBody(fps=pose.body.fps, data=pose.body.data[index], confidence=pose.body.confidence[index])
    return write_pose(Pose(pose.header, body), out)


def train(args, work: Path, corpus: Path) -> dict:
    from diffusers import AutoencoderKL

    from signgen.config import CONFIG_FOLDER, load_frame_config
    from signgen.models.frame_model import FrameModel

    frame_config = CONFIG_FOLDER / ("frame-tiny.yaml" if args.tiny else "frame-phoenix.yaml")
    overrides = list(TINY_FRAME) if args.tiny else []
    if not args.tiny:
        AutoencoderKL(**SD_VAE).save_pretrained(work / "vae")
        overrides.append(f"model.latent.vae_path={work / 'vae'}")
    overrides += [f"train_diffusion.max_steps={args.steps}", "train_diffusion.log_every=1",
                  f"train_diffusion.checkpoint_every={args.steps}", "train_diffusion.checkpoints_keep=1"]
    config = load_frame_config(frame_config, overrides)
    FrameModel.from_config(config.model, with_denoiser=False).save_pretrained(work / "fusion")
    sets = [item for override in overrides for item in ("--set", override)]
    rows = {}
    with Peak() as peak:
        cli("train", "diffusion", "--data", corpus, "--out", work / "diffusion", "--config", frame_config,
            "--fusion-model", work / "fusion", *sets)
    rows["frame"] = {"train_s_per_step": seconds_per_step(work / "diffusion"), "train_peak_gib": peak.gib}
    temporal_config = CONFIG_FOLDER / ("temporal-tiny.yaml" if args.tiny else "temporal-defaults.yaml")
    # bf16 as the frame stage (temporal-defaults.yaml trains in full precision) and gradient
    # checkpointing: the backward runs through the frozen 610 M UNet (~1.6 GB of activations a
    # frame kept, 0.23 GB checkpointed), two 16-frame clips a step.
    on_gpu = ["train.mixed_precision=bf16", "train.gradient_checkpointing=true", "train.num_workers=4"]
    temporal = (list(TINY_TEMPORAL) if args.tiny else on_gpu) + [
        f"train.max_steps={args.steps}", "train.log_every=1", f"train.checkpoint_every={args.steps}", "train.checkpoints_keep=1"]
    with Peak() as peak:
        cli("train", "temporal", "--data", corpus, "--out", work / "temporal", "--config", temporal_config,
            "--frame-model", work / "diffusion" / "model", *[item for o in temporal for item in ("--set", o)])
    rows["temporal"] = {"train_s_per_step": seconds_per_step(work / "temporal"), "train_peak_gib": peak.gib}
    return rows


def render(args, work: Path, corpus: Path, rows: dict) -> None:
    from signgen.pipelines.pipeline import load_pipeline

    pose = driving_pose(corpus, args.frames, work / "driving.pose")
    cli("data", "signer-photo", "-o", work / "signer.png")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for name, adapter in (("frame", None), ("temporal", work / "temporal" / "model")):
        folder = work / f"pipeline-{name}"
        cli("pipeline", "assemble", work / "diffusion" / "model", *([adapter] if adapter else []), "-o", folder)
        pipeline = load_pipeline(folder).to(device)
        settings = {} if args.num_steps is None else {"num_steps": args.num_steps}
        with Peak() as peak:
            result = pipeline(pose=pose, signer=work / "signer.png", signer_pose=work / "signer.pose", progress=False, **settings)
        assert len(result) == args.frames, (len(result), args.frames)
        rows[name].update(render_s=peak.seconds, render_peak_gib=peak.gib)
        del pipeline, result
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def table(rows: dict, args, device: str) -> str:
    memory = "GPU peak GiB" if device != "cpu" else "CPU peak RSS GiB"
    lines = [f"gpu_check on {device}: {'tiny configs' if args.tiny else 'frame-phoenix.yaml, random weights'}, "
             f"{args.steps} training steps, {args.frames} frames rendered",
             f"| model | train s/step | train {memory} | render {args.frames} frames s | render {memory} |",
             "|---|---|---|---|---|"]
    names = {"frame": "frame model (frame-wise)", "temporal": "+ temporal adapter"}
    for key, row in rows.items():
        lines.append(f"| {names[key]} | {row['train_s_per_step']:.2f} | {row['train_peak_gib']:.1f} | "
                     f"{row['render_s']:.1f} | {row['render_peak_gib']:.1f} |")
    return "\n".join(lines)


# Written into --out: only a folder holding it (or an empty one) is replaced by a later check.
MARKER = ".signgen-gpu-check"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="work folder (replaced; only an empty one or an earlier check's)")
    parser.add_argument("--data", type=Path, default=None, help="an existing SynthSign/PHOENIX-layout corpus")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--frames", type=int, default=125)
    parser.add_argument("--num-steps", type=int, default=None, help="sampling steps (default: the pipeline's)")
    parser.add_argument("--tiny", action="store_true", help="tiny configs: the CPU run of the test suite")
    args = parser.parse_args(argv)
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())) and not (args.out / MARKER).is_file():
        print(f"gpu_check: --out {args.out} exists and is not an earlier check's work folder (no {MARKER}); "
              f"refusing to replace it", file=sys.stderr)
        return 2
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    (args.out / MARKER).write_text("a benchmarks/gpu_check.py work folder: the next check replaces it\n")
    corpus = args.data
    if corpus is None:
        corpus = args.out / "synthsign"
        cli("data", "synth", "--out", corpus, "--signers", 4, "--videos", 4 if args.tiny else 16, "--seed", 0)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    rows = train(args, args.out, corpus)
    render(args, args.out, corpus, rows)
    print(table(rows, args, device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
