"""Sampling frames from a frame model: any diffusers scheduler, multi-condition guidance.

Guidance follows FPDM's three modes, all computed in ONE batched UNet call per step::

    eps = eps_uncond + s_app * (eps_app - eps_uncond) + s_full * (eps_full - eps_app)

where ``eps_app`` sees only the appearance tokens and ``eps_full`` also the pose map and
fusion embedding. The appearance is encoded once per video; the frames of a video are a
batch (``frame_batch_size`` at a time), each with its own pose map and fusion embedding.

Here: schedulers by name, guidance scales and their one parser (:func:`parse_guidance`),
the guided prediction, and :func:`sample_frames`. The one sampling loop, frame-wise or in
the temporal adapter's overlapping windows, is :func:`signgen.pipelines.windows.denoise`.
"""

from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from signgen.models.denoiser import FrameConditions
from signgen.models.encoders import EncoderOutput
from signgen.errors import SigngenError
from signgen.models.frame_model import FrameModel
from signgen.pipelines.limits import MAX_GUIDANCE, MAX_SEED

# Short names; a diffusers scheduler class made for DDPM-trained models (one of
# DDPMScheduler.compatibles, e.g. "HeunDiscreteScheduler") works too.
SCHEDULERS: dict[str, tuple[type, dict]] = {
    "ddim": (DDIMScheduler, {}),
    "dpm": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    "dpm++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "unipc": (UniPCMultistepScheduler, {}),
    "ddpm": (DDPMScheduler, {}),
}
GUIDANCE_ORDER = ["uncond", "appearance", "full"]


# Compatible with DDPM by diffusers' own list, but for another noise parametrisation (EDM's sigmas).
INCOMPATIBLE = ("EDMEulerScheduler",)


def compatible_schedulers() -> list[type]:
    """The diffusers scheduler classes that sample a model trained with a DDPM noise schedule."""
    return [cls for cls in DDPMScheduler._get_compatibles() if cls.__name__ not in INCOMPATIBLE]


def make_scheduler(name: str, noise_config) -> SchedulerMixin:
    """A fresh sampling scheduler ``name`` built from the model's training noise schedule:
    a short name of :data:`SCHEDULERS` or a diffusers scheduler class made for DDPM-trained
    models; anything else (another noise schedule, a base class) is one SigngenError line."""
    from signgen.errors import first_line

    if not isinstance(name, str):
        raise SigngenError(f"scheduler must be a name, not {type(name).__name__}")
    if name in SCHEDULERS:
        cls, extra = SCHEDULERS[name]
    else:
        by_name = {cls.__name__: cls for cls in compatible_schedulers()}
        cls, extra = by_name.get(name), {}
        if cls is None:
            shown = name if len(name) <= 60 else name[:59] + "…"
            raise SigngenError(f"unknown scheduler {shown!r}; use one of {', '.join(SCHEDULERS)} or a diffusers scheduler "
                               f"for DDPM-trained models: {', '.join(sorted(by_name))}")
    try:
        return cls.from_config(noise_config, **extra)
    except (ImportError, ValueError, TypeError, KeyError, AttributeError, ZeroDivisionError) as error:
        raise SigngenError(f"scheduler {name} does not work here: {first_line(error)}") from None


def set_timesteps(scheduler: SchedulerMixin, num_steps: int, num_train_timesteps: int, device=None) -> None:
    """``scheduler.set_timesteps(num_steps)``, with steps beyond the training schedule or a
    scheduler's own refusal as one SigngenError line."""
    from signgen.errors import first_line

    if not 1 <= num_steps <= num_train_timesteps:
        raise SigngenError(f"steps must be from 1 to the model's {num_train_timesteps} training timesteps, not {num_steps}")
    try:
        scheduler.set_timesteps(num_steps, device=device)
    except (ValueError, TypeError, IndexError, ZeroDivisionError) as error:
        raise SigngenError(f"{type(scheduler).__name__} cannot take {num_steps} steps: {first_line(error)}") from None
    # One step of a copy on a tiny sample: some samplers refuse a prediction type (Euler
    # ancestral, KDPM2 and PNDM cannot take "sample") only when they step, after the work.
    probe, tiny = copy.deepcopy(scheduler), torch.zeros(1, 1, 2, 2, device=device)
    try:
        probe.step(tiny, probe.timesteps[0], tiny)
    except (NotImplementedError, ValueError) as error:
        kind = scheduler.config.get("prediction_type", "epsilon")
        raise SigngenError(f"the {type(scheduler).__name__} sampler cannot sample a model that predicts {kind!r} "
                           f"({first_line(error)}); use ddim, dpm, unipc or euler") from None


def check_seed(seed) -> int:
    """``seed`` as an int from 0 to 2**63 - 1 (what torch and numpy generators take)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= MAX_SEED:
        shown = repr(seed) if len(repr(seed)) <= 40 else repr(seed)[:39] + "…"
        raise SigngenError(f"seed must be a whole number from 0 to 2**63-1, not {shown}")
    return int(seed)


@dataclass(frozen=True)
class GuidanceScales:
    """``appearance`` (s_app) and ``full`` (s_full); both 1.0 is plain conditional sampling.

    ``interval`` is the share of the denoising steps, noisiest first, that are guided; the
    rest take the full-condition prediction alone, one third of the UNet work. Layout and
    colours are settled in the noisy steps, where guidance acts; late steps only refine
    detail (guidance in a limited interval: Kynkäänniemi et al., NeurIPS 2024).
    """

    appearance: float = 1.5
    full: float = 2.0
    interval: float = 1.0

    def __post_init__(self):
        for name in ("appearance", "full"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and -MAX_GUIDANCE <= value <= MAX_GUIDANCE):
                raise SigngenError(f"guidance scale {name} must be a finite number from {-MAX_GUIDANCE:g} to {MAX_GUIDANCE:g}, not {value!r}")
        if not (isinstance(self.interval, (int, float)) and 0.0 <= self.interval <= 1.0):
            raise SigngenError(f"the guidance interval is a share of the steps in [0, 1], got {self.interval}")

    @property
    def is_identity(self) -> bool:
        return self.appearance == 1.0 and self.full == 1.0

    def at_step(self, index: int, num_steps: int) -> "GuidanceScales":
        """The scales of denoising step ``index`` (0 = noisiest) of ``num_steps``."""
        if index < math.ceil(self.interval * num_steps - 1e-9):
            return self
        return GuidanceScales(appearance=1.0, full=1.0)


def parse_guidance(value: GuidanceScales | str | Sequence[float], interval: float = 1.0) -> GuidanceScales:
    """Guidance scales from what a caller gives: ``GuidanceScales`` as they are, or the
    ``(appearance, full)`` scales, as two numbers or the text ``"A,F"`` (``signgen render
    --guidance``), guided over ``interval`` (a pipeline passes its ``guidance_interval``)."""
    if isinstance(value, GuidanceScales):
        return value
    parts = value.split(",") if isinstance(value, str) else value
    try:
        appearance, full = (float(part) for part in parts)
    except (TypeError, ValueError):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:79] + "…"
        raise SigngenError(f"guidance needs two numbers A,F (appearance, full), e.g. 1.5,2.0; got {shown}") from None
    return GuidanceScales(appearance=appearance, full=full, interval=interval)


def guided_prediction(model: FrameModel, sample: torch.Tensor, timestep, conditions: FrameConditions, scales: GuidanceScales) -> torch.Tensor:
    """The guided model output for ``sample`` (B, ...) under ``conditions`` (B): one UNet
    call on a (3B, ...) batch of the uncond / appearance / full modes, then combined."""
    if scales.is_identity:
        return model.predict(sample, timestep, conditions)
    batched = conditions.in_modes(GUIDANCE_ORDER)
    output = model.predict(torch.cat([sample] * len(GUIDANCE_ORDER)), timestep, batched)
    uncond, appearance, full = output.chunk(len(GUIDANCE_ORDER))
    return uncond + scales.appearance * (appearance - uncond) + scales.full * (full - appearance)


def sample_frames(
    model: FrameModel,
    appearance: EncoderOutput | torch.Tensor,
    pose_maps: torch.Tensor,
    *,
    scheduler: str = "dpm",
    num_steps: int = 25,
    guidance: GuidanceScales = GuidanceScales(),
    seed: int = 0,
    frame_batch_size: int = 16,
    progress: bool = True,
    **photo,
) -> torch.Tensor:
    """Frames (F, 3, H, W) in [-1, 1], one per pose map (F, C, H, W) in [0, 1], each frame
    denoised by itself (``photo``: the coarse images, reference and strength of a v2 model,
    as :func:`signgen.pipelines.windows.denoise` takes them).

    ``appearance`` is either a signer image (3, H, W) or (1, 3, H, W) in [-1, 1], or its
    encoding from :meth:`FrameModel.encode_appearance` (reuse it across videos of one
    signer). This is the one sampling loop (:func:`signgen.pipelines.windows.denoise`)
    without a temporal adapter, its windows the contiguous batches of ``frame_batch_size``
    frames. The initial noise of all frames is drawn from ``seed`` up front, so the frames
    do not depend on ``frame_batch_size`` for deterministic schedulers (DDIM, DPM-Solver++).
    """
    # windows.py builds on this module (guidance, schedulers): import its loop when called.
    from signgen.pipelines.windows import denoise, plan_chunks

    return denoise(model, None, appearance, pose_maps, plan_chunks(len(pose_maps), frame_batch_size),
                   scheduler=scheduler, num_steps=num_steps, guidance=guidance, seed=seed,
                   frame_batch_size=frame_batch_size, progress=progress, **photo)


def frames_to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(F, 3, H, W) in [-1, 1] -> uint8 RGB (F, H, W, 3), the video boundary format."""
    return ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def scheduler_step_kwargs(scheduler: SchedulerMixin, generator: torch.Generator) -> dict:
    # Stochastic schedulers (DDPM, Euler ancestral) take the seeded generator; DDIM runs with eta 0.
    accepted = inspect.signature(scheduler.step).parameters
    return {"generator": generator} if "generator" in accepted else {}
