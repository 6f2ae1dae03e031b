"""Rendering speed of a pipeline against a naive loop over the same model (run by hand).

    python benchmarks/bench_render.py [--model PIPELINE_DIR] [--frames 100] [--threads 2]

Both renders drive the same model with the same pose (the first ``--frames`` frames of a
stitched fingerspelled sentence), the bundled signer photo, the pipeline's default
scheduler, steps and guidance, and the same initial noise:

- **pipeline**: ``SignPipeline.__call__`` as ``signgen render`` runs it: the photo encoded
  once, each frame's conditions computed once, frames batched, the three guidance modes
  in one batched UNet call per step; with a temporal adapter, overlapping windows.
- **naive**: one frame at a time, built from the render's public pieces (a ``denoise`` call
  per frame, ``frame_batch_size`` 1); at every denoising step the photo is loaded and encoded
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
    parser.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                        help="override any render setting (both renders), as signgen render --set")
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
    from signgen.cli.settings import parse_set_items

    overrides.update(parse_set_items(args.set))
    pipeline.settings = pipeline.settings.replace(**overrides)
    pose = sentence_pose(args.frames)
    settings = pipeline.settings
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
        if fast.shape[1:] != naive.shape[1:]:
            print(f"check:    skipped: the pipeline composes at {fast.shape[1:3]} (full_resolution), the naive loop draws at the model's size")
        elif compared > 0:
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


def sentence_pose(frames: int):
    """The first ``frames`` frames of a stitched sentence, as the pipeline prepares poses."""
    from signgen.pipelines.driving import pose_from_glosses
    from signgen.poses.holistic import pose_arrays, pose_from_arrays

    pose = pose_from_glosses(SENTENCE)
    xy, confidence = pose_arrays(pose)
    if len(xy) < frames:
        raise SystemExit(f"the benchmark sentence has only {len(xy)} frames; ask for at most that many")
    dims = pose.header.dimensions
    return pose_from_arrays(xy[:frames], confidence[:frames], pose.body.fps, dims.width, dims.height)


def naive_render(pipeline, pose, frames: int, seed: int) -> np.ndarray:
    """uint8 frames (frames, H, W, 3) of the first ``frames`` frames, rendered one frame at a
    time from the render's public pieces: each frame its own photo encoding, coarse image,
    conditions, sampler and ``denoise`` call (``frame_batch_size`` 1), and in that call the
    photo read and encoded again and the frame's conditions recomputed at every UNet call,
    one call per guidance mode (:class:`NaiveModel`). The initial noise is the pipeline's,
    drawn for the whole video from the seed."""
    import torch

    from signgen.pipelines.conditions import video_conditions
    from signgen.pipelines.deflicker import deflicker
    from signgen.pipelines.denoising import InitialNoise, denoise
    from signgen.pipelines.postprocess import frames_to_uint8, keep_coarse_pixels
    from signgen.pipelines.schedulers import prepare_sampler
    from signgen.pipelines.signer import coarse_images, limb_regions, photo_warper, pose_maps, warp_source

    model = pipeline.frame_model
    settings = pipeline.settings.replace(frame_batch_size=1)
    geometry = driving_geometry(pipeline, pose)
    noise = InitialNoise(seed, len(geometry), model.sample_shape, settings.noise_correlation)
    naive = NaiveModel(model)
    rendered = []
    for index in range(frames):
        window = slice(index, index + 1)
        encoding = naive.read_photo()
        coarse = coarse_images(photo_warper(warp_source(encoding, geometry.resolution), pipeline.settings.coarse_warp, pipeline.settings.warp_hands), geometry, window) if model.coarse_image else None
        conditions = video_conditions(model, encoding.appearance, pose_maps(geometry, window, model.pose_channels), coarse,
                                      encoding.reference, batch_size=1)
        drawn = denoise(naive, None, conditions, prepare_sampler(model, settings), settings, noise.frames(index, index + 1),
                        noise.generator)
        rendered.append(keep_coarse_pixels(drawn, coarse) if settings.keep_coarse and coarse is not None else drawn)
    video = torch.cat(rendered)
    if settings.deflicker:
        video = deflicker(video, settings.deflicker, moving_limbs=limb_regions(geometry, settings.deflicker, slice(0, frames)))
    return frames_to_uint8(video)


class NaiveModel:
    """The frame model as a naive loop uses it: ``predict`` reads the bundled photo and
    encodes it again (with its reference features), recomputes the frame's pose map and
    fusion embedding, and makes one UNet call per guidance mode; everything else is the
    model's own. For one frame at a time (``frame_batch_size`` 1): a guided call holds the
    three modes of one frame in the order of ``GUIDANCE_ORDER``."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def read_photo(self):
        from signgen.pipelines.signer import encode_signer
        from signgen.pipelines.signer_image import DEFAULT_SIGNER_PHOTO, DEFAULT_SIGNER_POSE

        return encode_signer(self.model, DEFAULT_SIGNER_PHOTO, signer_pose=DEFAULT_SIGNER_POSE)

    def predict(self, sample, timestep, conditions):
        import torch

        from signgen.pipelines.schedulers import GUIDANCE_ORDER

        encoding = self.read_photo()
        full = conditions.select(torch.tensor([len(sample) - 1]))  # the full mode: the frame's own pose map and coarse image
        again = self.model.frame_conditions(encoding.appearance, full.pose_maps, full.coarse, encoding.reference)
        rows = again.in_modes(GUIDANCE_ORDER) if len(sample) == len(GUIDANCE_ORDER) else again
        return torch.cat([self.model.predict(sample[row : row + 1], timestep, rows.select(torch.tensor([row])))
                          for row in range(len(sample))])


def driving_geometry(pipeline, pose):
    """The driving geometry of ``pose`` as the pipeline renders it with the bundled signer:
    prepared (PHOENIX framing), placed at the photo's signer for a v2 model, its torso steadied."""
    from signgen.pipelines import signer
    from signgen.pipelines.driving import prepare_pose

    driving = prepare_pose(pose)
    if pipeline.frame_model.coarse_image:
        driving = signer.place_at_signer(driving, pipeline.encode_signer(None), pipeline.resolution)
    return signer.driving_geometry(driving, pipeline.resolution, pipeline.settings.steady_torso)


def flop_rates(pipeline, pose, batch: int = 16, repeats: int = 3) -> str:
    """The denoiser's achieved FLOP rate on one full-guidance UNet call over ``batch`` frames,
    beside a plain 3 x 3 convolution's rate (64 -> 64 channels at the UNet's working size),
    both timed here: how far the model's mix of layers is from the CPU's convolution speed."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from signgen.pipelines.conditions import video_conditions
    from signgen.pipelines.signer import coarse_images, photo_warper, pose_maps, warp_source

    model = pipeline.frame_model
    encoding = pipeline.encode_signer(None)
    geometry = driving_geometry(pipeline, pose)
    frames = slice(0, min(batch, len(geometry)))
    coarse = coarse_images(photo_warper(warp_source(encoding, geometry.resolution), pipeline.settings.coarse_warp, pipeline.settings.warp_hands), geometry, frames) if model.coarse_image else None
    conditions = video_conditions(model, encoding.appearance, pose_maps(geometry, frames, model.pose_channels), coarse,
                                  encoding.reference, batch_size=batch)
    sample = torch.randn(len(conditions), *model.sample_shape)
    timesteps = torch.full((len(conditions),), 500)

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
    features = torch.randn(len(conditions), 64, height, width)
    conv_rate = rate(lambda: conv(features), 2 * 64 * 64 * 9 * height * width * len(conditions))
    return (f"denoiser: {unet_flops / len(conditions) / 1e9:.2f} GFLOP a frame, {unet_rate:.1f} GFLOP/s on {len(conditions)} frames; "
            f"plain 3x3 convolution (64 channels, {height} x {width}): {conv_rate:.1f} GFLOP/s; "
            f"the denoiser runs at {100 * unet_rate / conv_rate:.0f} % of it")


if __name__ == "__main__":
    main()
