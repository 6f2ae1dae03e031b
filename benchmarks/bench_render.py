"""Rendering speed of a pipeline against a naive loop over the same model (run by hand).

    python benchmarks/bench_render.py [--model PIPELINE_DIR] [--frames 100] [--threads 2]

Both renders drive the same model with the same pose (the first ``--frames`` frames of a
stitched fingerspelled sentence), the bundled signer photo, the pipeline's default
scheduler, steps and guidance, and the same initial noise:

- **pipeline**: ``SignPipeline.__call__`` as ``signgen render`` runs it: the photo encoded
  once, each frame's conditions computed once, frames batched, the three guidance modes
  in one batched UNet call per step; with a temporal adapter, overlapping windows.
- **naive**: one frame at a time; at every denoising step the photo is loaded and encoded
  again and the frame's pose map and fusion embedding recomputed, and the three guidance
  modes are three separate UNet calls (on the guided steps, as the pipeline). Frame model only (a temporal adapter needs
  several frames at once), so against a pipeline with an adapter the ratio understates
  the batching gain; the same pipeline is then also timed without its adapter.

Prints the times, frames per second and the ratios. Without an adapter the two compute
the same frames, and the largest pixel difference between them is printed as a check.
``--naive-frames K`` times the naive loop on the first K frames only and scales its time
to ``--frames`` (it is linear in the frame count), for quick runs; the output says so.
Default model: the embedded one. Target: 100 frames under 60 s on 2 CPU cores, at least
5 times faster than the naive loop.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time

import numpy as np

SENTENCE = "H A L L O W E L T"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="pipeline folder (default: the embedded model)")
    parser.add_argument("--frames", type=int, default=100, help="frames to render (default 100)")
    parser.add_argument("--naive-frames", type=int, help="time the naive loop on this many frames and scale (default: all)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3, help="pipeline renders timed; the median is reported (default 3)")
    parser.add_argument("--steps", type=int, help="override the pipeline's denoising steps (both renders)")
    parser.add_argument("--guidance", metavar="A,F", help="override the pipeline's guidance scales (both renders)")
    parser.add_argument("--guidance-interval", type=float, help="override the share of guided steps (both renders)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from signgen.pipelines.pipeline import load_pipeline

    pipeline = load_pipeline(args.model)
    overrides = {}
    if args.steps:
        overrides["num_steps"] = args.steps
    if args.guidance:
        overrides["appearance_scale"], overrides["full_scale"] = (float(v) for v in args.guidance.split(","))
    if args.guidance_interval is not None:
        overrides["guidance_interval"] = args.guidance_interval
    pipeline.defaults = dataclasses.replace(pipeline.defaults, **overrides)
    pose = driving_pose(pipeline, args.frames)
    settings = pipeline.defaults
    print(f"model: {args.model or 'embedded default'}, resolution {pipeline.resolution}, "
          f"adapter: {'yes' if pipeline.temporal_adapter is not None else 'no'}; {settings}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")

    fast_seconds, fast = median_time(lambda: pipeline(pose=pose, seed=args.seed, progress=False).frames, args.runs)
    print(f"pipeline: {args.frames} frames in {fast_seconds:.1f} s ({args.frames / fast_seconds:.2f} frames/s; median of {args.runs})")

    adapter = pipeline.temporal_adapter
    if adapter is not None:
        # The same pipeline, frame-wise: separates the batching gain from the adapter's cost.
        pipeline.temporal_adapter = None
        framewise_seconds, _ = median_time(lambda: pipeline(pose=pose, seed=args.seed, progress=False), args.runs)
        pipeline.temporal_adapter = adapter
        print(f"pipeline without the adapter: {args.frames} frames in {framewise_seconds:.1f} s ({args.frames / framewise_seconds:.2f} frames/s; median of {args.runs})")

    naive_count = min(args.naive_frames or args.frames, args.frames)
    started = time.perf_counter()
    naive = naive_render(pipeline, pose, naive_count, args.seed)
    naive_seconds = (time.perf_counter() - started) * args.frames / naive_count
    scaled = f" (timed on {naive_count} frames, scaled)" if naive_count < args.frames else ""
    print(f"naive:    {args.frames} frames in {naive_seconds:.1f} s ({args.frames / naive_seconds:.2f} frames/s){scaled}")
    print(f"ratio:    pipeline is {naive_seconds / fast_seconds:.1f}x faster than the naive loop")
    if adapter is not None:
        print(f"ratio:    pipeline without the adapter is {naive_seconds / framewise_seconds:.1f}x faster than the naive loop")
    print(f"flops:    {flop_rates(pipeline, pose)}")
    if pipeline.temporal_adapter is None:
        # Deflickering looks ahead: a frame compares only once its reach lies inside the naive frames.
        from signgen.pipelines.deflicker import filter_reach

        compared = naive_count if naive_count == args.frames else naive_count - filter_reach(settings.deflicker)
        if compared > 0:
            difference = np.abs(fast[:compared].astype(int) - naive[:compared].astype(int)).max()
            print(f"check:    largest pixel difference pipeline vs naive over the first {compared} frames: {difference} (of 255)")
        else:
            print(f"check:    skipped: deflicker reaches past the {naive_count} naive frames")


def median_time(call, runs: int):
    """(median seconds of ``runs`` calls, the last call's result)."""
    times, result = [], None
    for _ in range(max(1, runs)):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return float(np.median(times)), result


def driving_pose(pipeline, frames: int):
    """The first ``frames`` frames of a stitched sentence, as the pipeline prepares poses."""
    from signgen.poses.holistic import pose_arrays, pose_from_arrays

    pose = pipeline.pose_from_glosses(SENTENCE)
    xy, confidence = pose_arrays(pose)
    if len(xy) < frames:
        raise SystemExit(f"the benchmark sentence has only {len(xy)} frames; ask for at most that many")
    dims = pose.header.dimensions
    return pose_from_arrays(xy[:frames], confidence[:frames], pose.body.fps, dims.width, dims.height)


def naive_render(pipeline, pose, frames: int, seed: int) -> np.ndarray:
    """uint8 frames (frames, H, W, 3), rendered one frame at a time with everything
    recomputed at every step and one UNet call per guidance mode."""
    import torch

    from signgen.pipelines.pipeline import keep_coarse_pixels
    from signgen.pipelines.sampling import GUIDANCE_ORDER, frames_to_uint8, make_scheduler, scheduler_step_kwargs
    from signgen.pipelines.windows import initial_noise
    from signgen.pipelines.signer_image import DEFAULT_SIGNER_PHOTO, DEFAULT_SIGNER_POSE

    model = pipeline.frame_model
    settings = pipeline.defaults
    guidance = settings.guidance
    pose_maps, coarse, driving = prepared_inputs(pipeline, pose)
    # The same initial noise as the pipeline: drawn for the whole video from the seed.
    generator = torch.Generator("cpu").manual_seed(seed)
    noise = initial_noise(len(pose_maps), model.sample_shape, generator, settings.noise_correlation)
    rendered = []
    with torch.no_grad():
        for index in range(frames):
            scheduler = make_scheduler(settings.scheduler, model.noise_scheduler.config)
            scheduler.set_timesteps(settings.num_steps)
            step_kwargs = scheduler_step_kwargs(scheduler, generator)
            sample = noise[index : index + 1] * scheduler.init_noise_sigma
            for step, timestep in enumerate(scheduler.timesteps):
                # Naive: the photo loaded and encoded (and its reference features computed) at every step.
                encoding = pipeline.encode_signer(DEFAULT_SIGNER_PHOTO, signer_pose=DEFAULT_SIGNER_POSE)
                coarse_channels = None if coarse is None else model.coarse_condition(coarse[0][index : index + 1], coarse[1][index : index + 1])
                conditions = model.frame_conditions(encoding.appearance, pose_maps[index : index + 1], coarse_channels, encoding.reference)
                model_input = scheduler.scale_model_input(sample, timestep)
                scales = guidance.at_step(step, len(scheduler.timesteps))
                if scales.is_identity:
                    prediction = model.predict(model_input, timestep, conditions)
                else:
                    uncond, appearance, full = (model.predict(model_input, timestep, conditions.in_modes([mode])) for mode in GUIDANCE_ORDER)
                    prediction = uncond + scales.appearance * (appearance - uncond) + scales.full * (full - appearance)
                sample = scheduler.step(prediction, timestep, sample, **step_kwargs).prev_sample
            rendered.append(model.from_sample_space(sample + model.residual_base(conditions)).clamp(-1, 1))
    frames = torch.cat(rendered)
    if settings.keep_coarse and coarse is not None:
        frames = keep_coarse_pixels(frames, (coarse[0][: len(frames)], coarse[1][: len(frames)]))
    if settings.deflicker:
        from signgen.pipelines.deflicker import deflicker

        frames = deflicker(frames, settings.deflicker, keep=pipeline.limb_regions(driving, settings.deflicker)[: len(frames)])
    return frames_to_uint8(frames)


def prepared_inputs(pipeline, pose):
    """The pose maps of ``pose`` as the pipeline renders it with the bundled signer, for
    a v2 model the photo warped to each frame (else None), and the driving pose itself."""
    driving, photo = pipeline._photo_inputs(pipeline.encode_signer(None), pipeline.prepare_pose(pose), False, 1.0)
    return pipeline.pose_maps(driving), photo.get("coarse"), driving


def flop_rates(pipeline, pose, batch: int = 16, repeats: int = 3) -> str:
    """The denoiser's achieved FLOP rate on one full-guidance UNet call over ``batch`` frames,
    beside a plain 3 x 3 convolution's rate (64 -> 64 channels at the UNet's working size),
    both timed here: how far the model's mix of layers is from the CPU's convolution speed."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = pipeline.frame_model
    encoding = pipeline.encode_signer(None)
    pose_maps, coarse, _ = prepared_inputs(pipeline, pose)
    pose_maps = pose_maps[:batch]
    coarse_channels = None if coarse is None else model.coarse_condition(coarse[0][: len(pose_maps)], coarse[1][: len(pose_maps)])
    conditions = model.frame_conditions(encoding.appearance, pose_maps, coarse_channels, encoding.reference)
    sample = torch.randn(len(pose_maps), *model.sample_shape)
    timesteps = torch.full((len(pose_maps),), 500)

    def rate(call, flops: float) -> float:
        with torch.no_grad():
            call()  # warm-up
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
        return flops / float(np.median(times)) / 1e9

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.predict(sample, timesteps, conditions)
    unet_flops = counter.get_total_flops()
    unet_rate = rate(lambda: model.predict(sample, timesteps, conditions), unet_flops)
    height, width = model.unet.config.sample_size
    conv = torch.nn.Conv2d(64, 64, 3, padding=1)
    features = torch.randn(len(pose_maps), 64, height, width)
    conv_rate = rate(lambda: conv(features), 2 * 64 * 64 * 9 * height * width * len(pose_maps))
    return (f"denoiser: {unet_flops / len(pose_maps) / 1e9:.2f} GFLOP a frame, {unet_rate:.1f} GFLOP/s on {len(pose_maps)} frames; "
            f"plain 3x3 convolution (64 channels, {height} x {width}): {conv_rate:.1f} GFLOP/s; "
            f"the denoiser runs at {100 * unet_rate / conv_rate:.0f} % of it")


if __name__ == "__main__":
    main()
