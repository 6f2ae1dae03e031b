"""The one sampling loop: a video of any length denoised in windows, blended at every step.

Frame-wise sampling (no temporal adapter) and windowed sampling (with one) are the same
loop, :func:`denoise`; only the windows differ:

* without an adapter (:func:`signgen.pipelines.sampling.sample_frames`), the windows are
  contiguous chunks of ``frame_batch_size`` frames that do not overlap, the last one
  shorter (:func:`plan_chunks`): every frame is predicted once per step, by itself;
* with an adapter (:func:`sample_video`), the adapter sees ``F`` frames at once (``F`` =
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
row) to gather per-frame conditions (pose maps, fusion embeddings). Whole-video
conditions, the appearance tokens above all, are computed once per video by
:func:`denoise` and only repeated.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from signgen.errors import SigngenError
from signgen.models.denoiser import FrameConditions
from signgen.models.reference import ReferenceState
from signgen.models.encoders import EncoderOutput
from signgen.models.frame_model import FrameModel
from signgen.models.temporal import TemporalAdapter, VideoUNet
from signgen.pipelines.sampling import (
    GuidanceScales,
    check_seed,
    guided_prediction,
    make_scheduler,
    parse_guidance,
    scheduler_step_kwargs,
    set_timesteps,
)

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
def sample_video(
    model: FrameModel,
    adapter: TemporalAdapter | None,
    appearance: EncoderOutput | torch.Tensor,
    pose_maps: torch.Tensor,
    *,
    window_size: int = 16,
    overlap: int = 4,
    windows_per_batch: int = 1,
    scheduler: str = "dpm",
    num_steps: int = 25,
    guidance: GuidanceScales = GuidanceScales(),
    seed: int = 0,
    frame_batch_size: int = 16,
    progress: bool = True,
    **photo,
) -> torch.Tensor:
    """Frames (T, 3, H, W) in [-1, 1] of a video of any length, one per pose map (T, C, H, W),
    denoised in windows of ``window_size`` frames overlapping by at least ``overlap``, the
    temporal ``adapter`` attached to the frame model's UNet for each window's call.

    The initial noise is drawn as in :func:`signgen.pipelines.sampling.sample_frames` (same
    seed, same noise), so ``adapter=None`` or an untrained adapter reproduces frame-wise
    sampling, for deterministic schedulers up to float noise from the other batching.
    ``frame_batch_size`` bounds how many frames the condition encoders and the VAE decoder
    see at once. See :func:`denoise` for the loop and the ``photo`` arguments of v2 models.
    """
    _check_pose_maps(pose_maps)
    windows = plan_windows(len(pose_maps), window_size, overlap)
    return denoise(model, adapter, appearance, pose_maps, windows, windows_per_batch=windows_per_batch,
                   scheduler=scheduler, num_steps=num_steps, guidance=guidance, seed=seed,
                   frame_batch_size=frame_batch_size, progress=progress, **photo)


@torch.no_grad()
def denoise(
    model: FrameModel,
    adapter: TemporalAdapter | None,
    appearance: EncoderOutput | torch.Tensor,
    pose_maps: torch.Tensor,
    windows: Sequence[range],
    *,
    windows_per_batch: int = 1,
    scheduler: str = "dpm",
    num_steps: int = 25,
    guidance: GuidanceScales = GuidanceScales(),
    seed: int = 0,
    frame_batch_size: int = 16,
    progress: bool = True,
    coarse: tuple[torch.Tensor, torch.Tensor] | None = None,
    reference: ReferenceState | None = None,
    strength: float = 1.0,
    noise_correlation: float = 0.0,
) -> torch.Tensor:
    """The sampling loop: frames (T, 3, H, W) in [-1, 1], one per pose map (T, C, H, W).

    ``appearance`` is a signer image (3, H, W) or (1, 3, H, W) in [-1, 1], or its encoding
    from :meth:`FrameModel.encode_appearance` (reuse it across videos of one signer). The
    appearance is encoded once and each frame's conditions (pose map, fusion embedding)
    computed once, ``frame_batch_size`` frames at a time, before denoising. The initial
    noise of all frames is drawn from ``seed`` up front. Every step then predicts the
    ``windows`` (``windows_per_batch`` per guided UNet call, with the ``adapter`` attached
    when there is one), blends them (:class:`WindowedPrediction`) and one scheduler step
    moves the whole video; the frames are decoded ``frame_batch_size`` at a time.

    A v2 frame model also reads, per frame, the photo warped to the frame's pose
    (``coarse``: images (T, 3, H, W) in [-1, 1] and uncovered masks (T, 1, H, W)) and,
    per video, the photo's ``reference`` features (:meth:`FrameModel.reference_features`).
    ``strength`` S < 1 starts from the coarse images noised to the S-th share of the
    schedule instead of from pure noise (SDEdit), so the photo keeps its own pixels where
    the pose does not move them. ``noise_correlation`` R in [0, 1] shares the initial noise
    across frames (:func:`initial_noise`). (Over 60 lines for its arguments and this description;
    the work is in the helpers below.)
    """
    sampler, guidance, seed = _checked_settings(model, pose_maps, scheduler, num_steps, guidance, seed, frame_batch_size)
    noise_correlation = check_noise_correlation(noise_correlation)
    device, dtype = model.unet.device, model.unet.dtype
    if isinstance(appearance, torch.Tensor):
        image = appearance.unsqueeze(0) if appearance.dim() == 3 else appearance
        appearance = model.encode_appearance(image.to(device=device, dtype=dtype))
    pose_maps = pose_maps.to(device=device, dtype=dtype)
    num_frames = len(pose_maps)
    conditions = _video_conditions(model, appearance, pose_maps, coarse, reference, frame_batch_size)
    video_unet = None
    if adapter is not None:
        adapter.to(device=device)
        if adapter.dtype != dtype:
            adapter.to(dtype=dtype)
        video_unet = VideoUNet(model.unet, adapter)
    try:
        # The window predictor reads the current step's scales: the loop below sets them.
        step_guidance = [guidance]

        def predict(sample, timestep, frame_index, frames_per_window):
            window_conditions = conditions.select(frame_index)
            if video_unet is None:
                return guided_prediction(model, sample, timestep, window_conditions, step_guidance[0])
            with video_unet.frames(frames_per_window):
                return guided_prediction(model, sample, timestep, window_conditions, step_guidance[0])

        windowed = WindowedPrediction(predict, num_frames, windows_per_batch=windows_per_batch, windows=windows)
        generator = torch.Generator("cpu").manual_seed(seed)
        noise = initial_noise(num_frames, model.sample_shape, generator, noise_correlation)
        first = _first_step(sampler, strength)
        base = model.residual_base(conditions)
        if first == 0:
            sample = noise.to(device=device, dtype=dtype) * sampler.init_noise_sigma
        else:
            # The coarse image, in what the model draws: itself, or a zero residual from it.
            start = conditions.coarse[:, : model.sample_shape[0]] - base
            sample = sampler.add_noise(start, noise.to(device=device, dtype=dtype), sampler.timesteps[first : first + 1])
        sample = _run_steps(sampler, windowed, sample, first, guidance, step_guidance, scheduler_step_kwargs(sampler, generator), progress)
        sample = sample + base
    finally:
        if video_unet is not None:
            video_unet.detach()
    return torch.cat(
        [model.from_sample_space(part).clamp(-1, 1).float().cpu() for part in sample.split(frame_batch_size)]
    )


def check_noise_correlation(value) -> float:
    """``value`` as a float from 0 to 1, else one SigngenError line."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise SigngenError(f"noise correlation must be a number from 0 to 1, not {value!r}")
    return float(value)


def initial_noise(num_frames: int, shape: Sequence[int], generator: torch.Generator, correlation: float = 0.0) -> torch.Tensor:
    """Initial noise (T, *shape), unit variance per frame, with correlation ``correlation``
    between any two frames: ``sqrt(R) * shared + sqrt(1 - R) * own`` (PYoCo's mixed noise). R = 0
    is independent noise (the same draws as before this option existed), R = 1 one noise for
    every frame. The shared part is one draw for the whole video, so windows overlapping
    each other start from the same consistent noise."""
    correlation = check_noise_correlation(correlation)
    own = torch.randn((num_frames, *shape), generator=generator, dtype=torch.float32)
    if correlation == 0.0:
        return own
    shared = torch.randn((1, *shape), generator=generator, dtype=torch.float32)
    return correlation**0.5 * shared + (1.0 - correlation) ** 0.5 * own


def _checked_settings(model: FrameModel, pose_maps: torch.Tensor, scheduler: str, num_steps: int, guidance,
                      seed: int, frame_batch_size: int):
    """The sampling scheduler with its timesteps set, the guidance and the seed, checked
    before any work."""
    model._require_denoiser()
    if num_steps < 1:
        raise SigngenError(f"num_steps must be at least 1, got {num_steps}")
    if frame_batch_size < 1:
        raise SigngenError(f"frame_batch_size must be at least 1, got {frame_batch_size}")
    _check_pose_maps(pose_maps)
    sampler = make_scheduler(scheduler, model.noise_scheduler.config)
    set_timesteps(sampler, num_steps, int(model.noise_scheduler.config.num_train_timesteps), device=model.unet.device)
    return sampler, parse_guidance(guidance), check_seed(seed)


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


def _video_conditions(model: FrameModel, appearance: EncoderOutput, pose_maps: torch.Tensor,
                      coarse: tuple[torch.Tensor, torch.Tensor] | None, reference: ReferenceState | None,
                      frame_batch_size: int) -> FrameConditions:
    """Every frame's conditions, computed once, ``frame_batch_size`` frames at a time."""
    if model.coarse_image and coarse is None:
        raise SigngenError("this frame model draws from the photo warped to each pose: it needs the photo's pose")
    if coarse is not None and (len(coarse[0]) != len(pose_maps) or len(coarse[1]) != len(pose_maps)):
        raise SigngenError(f"{len(coarse[0])} coarse images for {len(pose_maps)} pose maps")
    device, dtype = pose_maps.device, pose_maps.dtype
    chunks = []
    for start in range(0, len(pose_maps), frame_batch_size):
        window = slice(start, start + frame_batch_size)
        coarse_channels = None
        if model.coarse_image:
            coarse_channels = model.coarse_condition(coarse[0][window].to(device, dtype), coarse[1][window].to(device, dtype))
        chunks.append(model.frame_conditions(appearance, pose_maps[window], coarse_channels, reference))
    joined = {}
    for name in ("pose_maps", "appearance_tokens", "fusion_embedding", "coarse"):
        parts = [getattr(chunk, name) for chunk in chunks]
        joined[name] = None if parts[0] is None else torch.cat(parts)
    rows = None
    if chunks[0].reference is not None:
        rows = ReferenceState("read", chunks[0].reference.bank, torch.cat([chunk.reference.rows for chunk in chunks]))
    return FrameConditions(**joined, reference=rows)


def _first_step(sampler, strength: float) -> int:
    """The index of the first denoising step for ``strength`` in (0, 1]: 1 runs every step
    from pure noise; S < 1 skips the noisiest (1 - S) share (img2img's convention)."""
    strength = float(strength)
    if not 0.0 < strength <= 1.0:
        raise SigngenError(f"strength must be in (0, 1], not {strength}")
    total = len(sampler.timesteps)
    first = total - max(1, min(total, int(round(strength * total))))
    if first and hasattr(sampler, "set_begin_index"):
        sampler.set_begin_index(first * getattr(sampler, "order", 1))
    return first


def _check_pose_maps(pose_maps: torch.Tensor) -> None:
    if pose_maps.dim() != 4:
        raise SigngenError(f"pose maps must have shape (frames, channels, H, W), got {tuple(pose_maps.shape)}")
