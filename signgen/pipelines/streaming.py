"""Rendering a video chunk by chunk: memory bounded in the video's length.

Without a temporal adapter every frame is denoised by itself, so a video is rendered in
chunks of ``frame_batch_size`` frames end to end (:func:`drawn_chunks`): pose maps, coarse
images, conditions, initial noise (:class:`signgen.pipelines.denoising.InitialNoise`
replays its generator), denoising, keep-coarse pixels. The deflicker filter reads its reach
of frames either side (:func:`finished_chunks`). What stays in memory for the whole video is
the driving pose and the uint8 frames at the model's resolution, and not even those when the
chunks are written as they come (``signgen render``). The frames are the ones a render of
the whole video at once gives: chunks start where the batches of ``frame_batch_size``
started before, and deterministic samplers step every frame by itself (the deflicker
filter's float arithmetic may round a rare pixel one grey level apart on some CPUs). With a temporal
adapter, windows overlap across the video and are blended at every step: the video is one
chunk, and its memory grows with its length.
"""

from __future__ import annotations

import copy
from typing import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from signgen.pipelines.conditions import video_conditions
from signgen.pipelines.deflicker import deflicker, filter_reach
from signgen.pipelines.folder import PipelineModels
from signgen.pipelines.denoising import InitialNoise, denoise, plan_chunks
from signgen.pipelines.postprocess import compose_at, frames_to_uint8, keep_coarse_pixels, sharpened_hands
from signgen.pipelines.settings import RenderSettings
from signgen.pipelines.signer import (DrivingGeometry, SignerEncoding, coarse_images, limb_regions, photo_warper, pose_maps,
                                      warp_source)


@torch.no_grad()
def drawn_chunks(models: PipelineModels, encoding: SignerEncoding, geometry: DrivingGeometry, sampler,
                 settings: RenderSettings, seed: int, progress: bool = False,
                 output: DrivingGeometry | None = None) -> Iterator[torch.Tensor]:
    """The video's frames (n, 3, H, W) in [-1, 1], chunk by chunk, each drawn with a fresh copy
    of ``sampler`` (built and checked once per render, :func:`signgen.pipelines.schedulers.prepare_sampler`:
    multistep samplers keep the history of what they stepped), with the coarse image
    kept where it covers the frame (``settings.keep_coarse``); given the driving pose's
    ``output`` geometry (``settings.full_resolution``), composed at its resolution and, with a
    hand model, each hand redrawn by the hand stage (``settings.hand_steps``)."""
    model, adapter, total = models.frame_model, models.temporal_adapter, len(geometry)
    noise = InitialNoise(seed, total, model.sample_shape, settings.noise_correlation)
    size = total if adapter is not None else settings.frame_batch_size
    warper = (photo_warper(warp_source(encoding, geometry.resolution), settings.coarse_warp, settings.warp_hands)
              if model.coarse_image else None)
    full = hands = None
    if output is not None and warper is not None:
        source = warp_source(encoding, output.resolution)
        full = photo_warper(source, settings.coarse_warp, settings.warp_hands)
        if models.hand_model is not None and settings.hand_steps:
            hands = HandStage(models.hand_model, source, seed, settings.hand_steps)
    with tqdm(total=total, desc="rendering", unit="frame", disable=not progress) as bar:
        for window in plan_chunks(total, size):
            frames = slice(window.start, window.stop)
            coarse = coarse_images(warper, geometry, frames) if warper is not None else None
            conditions = video_conditions(model, encoding.appearance, pose_maps(geometry, frames, model.pose_channels),
                                          coarse, encoding.reference, settings.frame_batch_size)
            drawn = denoise(model, adapter, conditions, copy.deepcopy(sampler), settings,
                            noise.frames(window.start, window.stop), noise.generator)
            if settings.keep_coarse and full is not None:
                drawn = compose_at(output.resolution, drawn, coarse_images(full, output, frames, keep_background=settings.keep_background))
                drawn = hands(drawn, output, frames) if hands is not None else drawn
            elif settings.keep_coarse and coarse is not None:
                drawn = keep_coarse_pixels(drawn, coarse)
            bar.update(len(drawn))
            yield drawn


class HandStage:
    """The hand stage of a render (:func:`signgen.pipelines.hands.redraw_hands`): the photo's
    hands as appearance, read once, and one noise for every frame, so that a hand keeps its
    look from frame to frame and the frames do not depend on the chunks."""

    def __init__(self, model, source, seed: int, num_steps: int):
        from signgen.pipelines.hands import photo_hand_appearance

        self.model, self.num_steps = model, num_steps
        self.appearance = photo_hand_appearance(source.pixels, source.xy, source.confidence, model.crop_size)
        generator = torch.Generator("cpu").manual_seed(seed)
        self.noise = torch.randn((1, *self.appearance.shape), generator=generator)

    def __call__(self, frames: torch.Tensor, geometry: DrivingGeometry, window: slice) -> torch.Tensor:
        from signgen.pipelines.hands import face_points, redraw_hands
        from signgen.poses import skeleton

        hands = np.r_[skeleton.LEFT_HAND, skeleton.RIGHT_HAND]
        xy, seen = geometry.steady_xy[window][:, hands], geometry.confidence[window][:, hands] > 0
        face = face_points(geometry.steady_xy[window], geometry.confidence[window])
        noise = self.noise.expand(len(frames), *self.noise.shape[1:])
        return redraw_hands(frames, xy, seen, self.model, self.appearance, noise, self.num_steps, face)


def finished_chunks(chunks: Iterator[torch.Tensor], geometry: DrivingGeometry, settings: RenderSettings) -> Iterator[np.ndarray]:
    """``chunks`` deflickered (``settings.deflicker``, the moving limbs left as drawn), as
    uint8 RGB (n, H, W, 3) and each hand's box sharpened (``settings.hand_sharpen``,
    :func:`signgen.pipelines.postprocess.sharpened_hands`). Each frame is filtered with its
    reach of frames either side, so a chunk is given out once the next one has come (or the
    video has ended)."""
    def finish(frames: torch.Tensor, start: int) -> np.ndarray:
        # steady_xy: the frames' pixels, the hands where the hand stage drew them (steadying leaves hands alone).
        window = slice(start, start + len(frames))
        return sharpened_hands(frames_to_uint8(frames), geometry.steady_xy[window], geometry.confidence[window],
                               settings.hand_sharpen)

    if not settings.deflicker:
        done = 0
        for chunk in chunks:
            yield finish(chunk, done)
            done += len(chunk)
        return
    reach, total = filter_reach(settings.deflicker), len(geometry)
    done, before, pending = 0, None, None  # frames given out; up to `reach` frames before them; drawn, not given out
    for chunk in chunks:
        pending = chunk if pending is None else torch.cat([pending, chunk])
        ready = len(pending) if done + len(pending) == total else len(pending) - reach
        if ready <= 0:
            continue
        context = pending[: ready + reach] if before is None else torch.cat([before, pending[: ready + reach]])
        start = done - (0 if before is None else len(before))
        moving = limb_regions(geometry, settings.deflicker, slice(start, start + len(context)))
        filtered = deflicker(context, settings.deflicker, moving_limbs=moving)
        offset = done - start
        yield finish(filtered[offset : offset + ready], done)
        seen = pending[:ready] if before is None else torch.cat([before, pending[:ready]])
        before, pending, done = seen[-reach:], pending[ready:], done + ready
