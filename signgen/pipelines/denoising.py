"""The one sampling loop: a video of any length denoised in windows, blended at every step.

Frame-wise sampling (no temporal adapter) and windowed sampling (with one) are the same
loop, :func:`denoise`; only the windows differ:

* without an adapter, the windows are
  contiguous chunks of ``frame_batch_size`` frames that do not overlap, the last one
  shorter (:func:`plan_chunks`): every frame is predicted once per step, by itself;
* with an adapter, the adapter sees ``F`` frames at once (``F`` =
  the training clip length), so a longer video is covered by windows of ``F`` frames that
  overlap by at least ``O`` frames (:func:`plan_windows`). Each frame's prediction is the
  weighted mean of the windows that hold it; the weights ramp linearly across each overlap
  (1 in a window's own frames, towards 0 where the neighbour takes over) and are
  normalised to sum to 1 at every frame, so no seam shows.

Either way every frame is denoised exactly once per step by one scheduler call over the
whole video. Blending the model prediction rather than the latents keeps multistep
schedulers (DPM-Solver++, UniPC) correct: their history is that of the whole video.

:class:`WindowedPrediction` knows nothing of conditions: its ``predict(sample, timestep,
frame_index, num_frames)`` receives the noisy frames of one or more windows, ``(n * F, C,
H, W)`` with each window's frames contiguous, and ``frame_index`` (the video frame of each
row) to gather per-frame conditions (pose maps, fusion embeddings). Every frame's
conditions are computed once per video by the caller
(:func:`signgen.pipelines.conditions.video_conditions`) and only gathered here.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from tqdm.auto import tqdm

from signgen.errors import SigngenError
from signgen.models.denoiser import FrameConditions
from signgen.models.frame_model import FrameModel
from signgen.models.temporal import TemporalAdapter, VideoUNet
from signgen.pipelines.schedulers import GuidanceScales, guided_prediction, scheduler_step_kwargs
from signgen.pipelines.settings import RenderSettings

WindowPredictor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]


def plan_windows(num_frames: int, window_size: int, overlap: int) -> list[range]:
    """Windows of ``window_size`` frames, each overlapping the next by at least ``overlap``,
    together covering ``range(num_frames)``.

    Windows start every ``window_size - overlap`` frames; the last one is moved back to end
    at the last frame (its overlap grows) rather than run short, so the adapter always sees
    the clip length it was trained on. A video no longer than a window is one window.
    """
    if num_frames < 1:
        raise SigngenError("a video needs at least one frame")
    if window_size < 1:
        raise SigngenError(f"window size must be at least 1 frame, not {window_size}")
    if not 0 <= overlap < window_size:
        raise SigngenError(f"window overlap must be at least 0 and less than the window size {window_size}, not {overlap}")
    if num_frames <= window_size:
        return [range(num_frames)]
    stride = window_size - overlap
    starts = list(range(0, num_frames - window_size, stride)) + [num_frames - window_size]
    return [range(start, start + window_size) for start in starts]


def plan_chunks(num_frames: int, chunk_size: int) -> list[range]:
    """Contiguous windows of ``chunk_size`` frames without overlap, the last one shorter:
    the windows of frame-wise sampling, where no frame is predicted twice."""
    if num_frames < 1:
        raise SigngenError("a video needs at least one frame")
    if chunk_size < 1:
        raise SigngenError(f"frame_batch_size must be at least 1, got {chunk_size}")
    return [range(start, min(start + chunk_size, num_frames)) for start in range(0, num_frames, chunk_size)]


def blend_weights(windows: Sequence[range], num_frames: int) -> torch.Tensor:
    """``(len(windows), num_frames)`` float64 weights: zero outside a window, a linear ramp
    across each overlap with a neighbour, each column summing to 1."""
    weights = torch.zeros(len(windows), num_frames, dtype=torch.float64)
    for k, window in enumerate(windows):
        ramp = torch.ones(len(window), dtype=torch.float64)
        if k > 0:
            shared = windows[k - 1].stop - window.start
            if shared > 0:
                ramp[:shared] = torch.minimum(ramp[:shared], torch.arange(1, shared + 1) / (shared + 1))
        if k + 1 < len(windows):
            shared = window.stop - windows[k + 1].start
            if shared > 0:
                ramp[-shared:] = torch.minimum(ramp[-shared:], torch.arange(shared, 0, -1) / (shared + 1))
        weights[k, window.start : window.stop] = ramp
    coverage = weights.sum(dim=0)
    if (coverage == 0).any():
        missing = (coverage == 0).nonzero().flatten().tolist()
        raise SigngenError(f"windows leave frames {missing[:10]} uncovered")
    return weights / coverage


def seam_transitions(windows: Sequence[range], num_frames: int) -> torch.Tensor:
    """``(num_frames - 1,)`` bool: True for each frame transition ``t -> t + 1`` where the
    windows holding the two frames differ (a window starts or ends between them), the
    places a seam would show; the other transitions lie inside one set of windows."""
    membership = blend_weights(windows, num_frames) > 0
    return (membership[:, 1:] != membership[:, :-1]).any(dim=0)


class WindowedPrediction:
    """The model prediction for a whole video, assembled from windows.

    Call it as a model, ``(sample, timestep)`` with the noisy video ``(T, C, H, W)``: it
    calls ``predict`` on batches of up to ``windows_per_batch`` windows and returns the
    blended prediction, shape of the input. The windows are planned by :func:`plan_windows`
    from ``window_size`` and ``overlap``, or given as ``windows`` (e.g. :func:`plan_chunks`).
    """

    def __init__(
        self,
        predict: WindowPredictor,
        num_frames: int,
        window_size: int = 16,
        overlap: int = 4,
        windows_per_batch: int = 1,
        *,
        windows: Sequence[range] | None = None,
    ):
        if windows_per_batch < 1:
            raise SigngenError(f"windows per batch must be at least 1, not {windows_per_batch}")
        self.predict = predict
        self.num_frames = num_frames
        self.windows = list(windows) if windows is not None else plan_windows(num_frames, window_size, overlap)
        self.weights = blend_weights(self.windows, num_frames)
        self.windows_per_batch = windows_per_batch

    def __call__(self, sample: torch.Tensor, timestep) -> torch.Tensor:
        if sample.shape[0] != self.num_frames:
            raise ValueError(f"expected {self.num_frames} frames, got {sample.shape[0]}")
        blended = torch.zeros_like(sample, dtype=torch.float32)
        weights = self.weights.to(device=sample.device, dtype=torch.float32)
        for first in range(0, len(self.windows), self.windows_per_batch):
            batch = self.windows[first : first + self.windows_per_batch]
            frame_index = torch.tensor([f for window in batch for f in window], device=sample.device)
            prediction = self.predict(sample[frame_index], timestep, frame_index, len(batch[0])).float()
            window_weights = torch.cat([weights[first + k, window.start : window.stop] for k, window in enumerate(batch)])
            blended.index_add_(0, frame_index, prediction * window_weights.view(-1, *[1] * (sample.dim() - 1)))
        return blended.to(sample.dtype)


@torch.no_grad()
def denoise(model: FrameModel, adapter: TemporalAdapter | None, conditions: FrameConditions, sampler: SchedulerMixin,
            settings: RenderSettings, noise: torch.Tensor, generator: torch.Generator, progress: bool = False) -> torch.Tensor:
    """The sampling loop: frames (T, 3, H, W) in [-1, 1], one per frame of ``conditions``
    (:func:`signgen.pipelines.conditions.video_conditions`, on the model's device), drawn
    with ``sampler`` (:func:`signgen.pipelines.schedulers.prepare_sampler`) as ``settings``
    say, all checked by the caller.

    ``noise`` is the frames' initial noise (:class:`InitialNoise`), ``generator`` what
    stochastic schedulers (DDPM, Euler ancestral) draw from. Without an ``adapter`` the windows
    are contiguous chunks of ``frame_batch_size`` frames; with one, windows of
    ``window_size`` frames overlapping by ``overlap``, ``windows_per_batch`` per guided UNet
    call with the adapter attached. Every step predicts the windows, blends them
    (:class:`WindowedPrediction`) and one scheduler step moves the whole video; the frames
    are decoded ``frame_batch_size`` at a time. ``strength`` S < 1 (v2 models) starts from
    the coarse images noised to the S-th share of the schedule instead of pure noise (SDEdit).
    """
    num_frames = len(conditions.pose_maps)
    if adapter is None:
        windows, per_batch = plan_chunks(num_frames, settings.frame_batch_size), 1
    else:
        windows, per_batch = plan_windows(num_frames, settings.window_size, settings.overlap), settings.windows_per_batch
    guidance = GuidanceScales.of(settings)
    step_guidance = [guidance]  # the window predictor reads the current step's scales: the loop sets them
    with _attached(model, adapter) as video_unet:

        def predict(sample, timestep, frame_index, frames_per_window):
            window_conditions = conditions.select(frame_index)
            with video_unet.frames(frames_per_window) if video_unet is not None else contextlib.nullcontext():
                return guided_prediction(model, sample, timestep, window_conditions, step_guidance[0])

        windowed = WindowedPrediction(predict, num_frames, windows_per_batch=per_batch, windows=windows)
        sample, first, base = _start(model, sampler, conditions, settings, noise)
        sample = _run_steps(sampler, windowed, sample, first, guidance, step_guidance, scheduler_step_kwargs(sampler, generator), progress)
        sample = sample + base
    return torch.cat(
        [model.from_sample_space(part).clamp(-1, 1).float().cpu() for part in sample.split(settings.frame_batch_size)]
    )


class InitialNoise:
    """The initial noise of a video of ``num_frames`` frames of ``shape``, drawn from ``seed``
    and read range by range (:meth:`frames`) as if drawn at once: ``sqrt(R) * shared +
    sqrt(1 - R) * own`` with correlation R between any two frames (PYoCo's mixed noise; R = 0
    independent noise, R = 1 one noise for every frame). The own noise is drawn in ``chunk``
    frames at a time; the generator's state at each chunk is kept (a few KB), not the noise,
    so a long video's noise never lies in memory whole. ``generator`` goes on from where the
    draws ended, for stochastic schedulers."""

    def __init__(self, seed: int, num_frames: int, shape: Sequence[int], correlation: float = 0.0, chunk: int = 16):
        self.shape, self.correlation, self.chunk = tuple(shape), float(correlation), int(chunk)
        self.generator = torch.Generator("cpu").manual_seed(seed)
        self.states = []
        # One buffer for the draws that only move the generator on: a fresh tensor per chunk,
        # interleaved with the small saved states, fragments the heap by its size each time.
        skipped = torch.empty((self.chunk, *self.shape), dtype=torch.float32)
        for start in range(0, num_frames, self.chunk):
            self.states.append(self.generator.get_state())
            skipped[: min(self.chunk, num_frames - start)].normal_(generator=self.generator)
        self.num_frames = num_frames
        self.shared = None
        if self.correlation:
            self.shared = torch.randn((1, *self.shape), generator=self.generator, dtype=torch.float32)

    def frames(self, start: int, stop: int) -> torch.Tensor:
        """The noise of frames ``start`` to ``stop`` (T, *shape), replayed from the chunks that hold them."""
        if not 0 <= start < stop <= self.num_frames:
            raise SigngenError(f"noise of frames {start} to {stop} of a video of {self.num_frames}")
        replay, parts = torch.Generator("cpu"), []
        first = start - start % self.chunk
        for begin in range(first, stop, self.chunk):
            replay.set_state(self.states[begin // self.chunk])
            parts.append(torch.randn((min(self.chunk, self.num_frames - begin), *self.shape), generator=replay, dtype=torch.float32))
        own = torch.cat(parts)[start - first : stop - first]
        if self.shared is None:
            return own
        return self.correlation**0.5 * self.shared + (1.0 - self.correlation) ** 0.5 * own


@contextlib.contextmanager
def _attached(model: FrameModel, adapter: TemporalAdapter | None):
    """The frame model's UNet with the temporal ``adapter`` hooked in (``None`` without one),
    detached again afterwards whatever happens."""
    if adapter is None:
        yield None
        return
    device, dtype = model.unet.device, model.unet.dtype
    adapter.to(device=device)
    if adapter.dtype != dtype:
        adapter.to(dtype=dtype)
    video_unet = VideoUNet(model.unet, adapter)
    try:
        yield video_unet
    finally:
        video_unet.detach()


def _start(model: FrameModel, sampler, conditions: FrameConditions, settings: RenderSettings, noise: torch.Tensor):
    """The first sample, the index of the first step and the residual base added back after the last."""
    device, dtype = model.unet.device, model.unet.dtype
    if noise.shape != (len(conditions.pose_maps), *model.sample_shape):
        raise SigngenError(f"initial noise of shape {tuple(noise.shape)} for {len(conditions.pose_maps)} frames of {model.sample_shape}")
    first = _first_step(sampler, settings.strength)
    base = model.residual_base(conditions)
    if first == 0:
        return noise.to(device=device, dtype=dtype) * sampler.init_noise_sigma, first, base
    # The coarse image, in what the model draws: itself, or a zero residual from it.
    start = conditions.coarse[:, : model.sample_shape[0]] - base
    return sampler.add_noise(start, noise.to(device=device, dtype=dtype), sampler.timesteps[first : first + 1]), first, base


def _run_steps(sampler, windowed: "WindowedPrediction", sample: torch.Tensor, first: int, guidance: GuidanceScales,
               step_guidance: list, step_kwargs: dict, progress: bool) -> torch.Tensor:
    """The denoising steps from index ``first``: each sets the step's guidance scales (into
    ``step_guidance[0]``, which the window predictor reads), predicts and steps the video."""
    for index, timestep in enumerate(tqdm(sampler.timesteps, desc="denoising", unit="step", disable=not progress)):
        if index < first:
            continue
        step_guidance[0] = guidance.at_step(index, len(sampler.timesteps))
        prediction = windowed(sampler.scale_model_input(sample, timestep), timestep)
        step = f"at denoising step {index + 1} of {len(sampler.timesteps)}"
        if not torch.isfinite(prediction).all():
            # Finite inputs, non-finite prediction: the UNet (its weights) or the guidance mix.
            input_state = "" if torch.isfinite(sample).all() else " (its input was already non-finite)"
            raise SigngenError(
                f"the model's output became non-finite (NaN or infinity) {step}{input_state}: its weights are damaged "
                f"or the guidance scales too large (or the frame model's scheduler/scheduler_config.json is invalid)")
        sample = sampler.step(prediction.to(sample.dtype), timestep, sample, **step_kwargs).prev_sample
        if not torch.isfinite(sample).all():
            # A finite prediction stepped to a non-finite sample: the noise schedule, not the weights.
            raise SigngenError(
                f"the sample became non-finite (NaN or infinity) {step} although the model's prediction was finite: "
                f"the noise schedule is invalid (check the frame model's scheduler/scheduler_config.json: beta_start, "
                f"beta_end, beta_schedule) or the {type(sampler).__name__} sampler does not suit it")
    return sample


def _first_step(sampler, strength: float) -> int:
    """The index of the first denoising step for ``strength`` in (0, 1]: 1 runs every step
    from pure noise; S < 1 skips the noisiest (1 - S) share (img2img's convention)."""
    total = len(sampler.timesteps)
    first = total - max(1, min(total, int(round(strength * total))))
    if first and hasattr(sampler, "set_begin_index"):
        sampler.set_begin_index(first * getattr(sampler, "order", 1))
    return first
