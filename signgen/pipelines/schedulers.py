"""Schedulers by name and FPDM's three-mode guidance: the leaf of sampling.

Guidance follows FPDM's three modes, all computed in ONE batched UNet call per step::

    eps = eps_uncond + s_app * (eps_app - eps_uncond) + s_full * (eps_full - eps_app)

where ``eps_app`` sees only the appearance tokens and ``eps_full`` also the pose map and
fusion embedding. :func:`prepare_sampler` builds a render's scheduler once, with its steps
set and checked against the model; the loop that uses both is
:func:`signgen.pipelines.denoising.denoise`.
"""

from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass
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
from signgen.errors import SigngenError
from signgen.models.frame_model import FrameModel
from signgen.pipelines.settings import RenderSettings

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


@dataclass(frozen=True)
class GuidanceScales:
    """``appearance`` (s_app) and ``full`` (s_full); both 1.0 is plain conditional sampling.

    ``interval`` is the share of the denoising steps, noisiest first, that are guided; the
    rest take the full-condition prediction alone, one third of the UNet work. Layout and
    colours are settled in the noisy steps, where guidance acts; late steps only refine
    detail (guidance in a limited interval: Kynkäänniemi et al., NeurIPS 2024). Built from
    checked :class:`RenderSettings` (:meth:`of`).
    """

    appearance: float = 1.5
    full: float = 2.0
    interval: float = 1.0

    @classmethod
    def of(cls, settings: RenderSettings) -> "GuidanceScales":
        return cls(settings.appearance_scale, settings.full_scale, settings.guidance_interval)

    @property
    def is_identity(self) -> bool:
        return self.appearance == 1.0 and self.full == 1.0

    def at_step(self, index: int, num_steps: int) -> "GuidanceScales":
        """The scales of denoising step ``index`` (0 = noisiest) of ``num_steps``."""
        if index < math.ceil(self.interval * num_steps - 1e-9):
            return self
        return GuidanceScales(appearance=1.0, full=1.0)


def guided_prediction(model: FrameModel, sample: torch.Tensor, timestep, conditions: FrameConditions, scales: GuidanceScales) -> torch.Tensor:
    """The guided model output for ``sample`` (B, ...) under ``conditions`` (B): one UNet
    call on a (3B, ...) batch of the uncond / appearance / full modes, then combined."""
    if scales.is_identity:
        return model.predict(sample, timestep, conditions)
    batched = conditions.in_modes(GUIDANCE_ORDER)
    output = model.predict(torch.cat([sample] * len(GUIDANCE_ORDER)), timestep, batched)
    uncond, appearance, full = output.chunk(len(GUIDANCE_ORDER))
    return uncond + scales.appearance * (appearance - uncond) + scales.full * (full - appearance)


def scheduler_step_kwargs(scheduler: SchedulerMixin, generator: torch.Generator) -> dict:
    # Stochastic schedulers (DDPM, Euler ancestral) take the seeded generator; DDIM runs with eta 0.
    accepted = inspect.signature(scheduler.step).parameters
    return {"generator": generator} if "generator" in accepted else {}


def prepare_sampler(model: FrameModel, settings: RenderSettings) -> SchedulerMixin:
    """The render's sampling scheduler: ``settings.scheduler`` built from the model's
    training noise schedule, its ``num_steps`` set on the model's device and checked (steps
    within the training timesteps, a sampler that can take the model's prediction type);
    one SigngenError line naming the settings otherwise."""
    noise_config = model.noise_scheduler.config
    try:
        sampler = make_scheduler(settings.scheduler, noise_config)
        set_timesteps(sampler, settings.num_steps, int(noise_config.num_train_timesteps), device=model.unet.device)
    except SigngenError as error:
        raise SigngenError(f"render settings (scheduler {settings.scheduler!r}, num_steps {settings.num_steps}): {error}") from None
    return sampler
