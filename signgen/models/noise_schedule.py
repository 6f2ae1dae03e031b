"""A frame model's training noise schedule (``scheduler/scheduler_config.json``), read strictly.

Every sampling scheduler is built from it (:mod:`signgen.pipelines.schedulers`), so values
diffusers would take and then fail on at render time are refused when it is loaded.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from diffusers import DDPMScheduler

from signgen import files
from signgen.config import PREDICTION_TYPES
from signgen.errors import SigngenError, first_line
from signgen.models.loading import check_positive


def load_noise_scheduler(path: Path) -> DDPMScheduler:
    """The training noise schedule saved at ``path`` (a ``scheduler_config.json``), checked
    (:func:`check_noise_schedule`) and refused if its cumulative alphas leave (0, 1)."""
    if not path.is_file():
        raise SigngenError(f"model folder is incomplete: {path} is missing")
    config = files.read_json_object(path, "noise-scheduler config")
    check_positive(config, path)
    check_noise_schedule(config, path)
    try:
        scheduler = DDPMScheduler.from_config(DDPMScheduler.load_config(path.parent))
    except (OSError, ValueError, TypeError, ArithmeticError, NotImplementedError) as error:
        raise SigngenError(f"{path} is not a noise-scheduler config: {first_line(error)}") from None
    alphas = scheduler.alphas_cumprod
    if not (torch.isfinite(alphas).all() and (alphas > 0).all() and (alphas < 1).all()):
        raise SigngenError(f"{path}: the noise schedule it describes is not a valid one (its cumulative alphas "
                           "leave (0, 1)); check beta_start, beta_end, beta_schedule and trained_betas")
    return scheduler


# What a training noise schedule (scheduler_config.json) may hold: the choices every
# sampling scheduler built from it understands.
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid")
VARIANCE_TYPES = ("fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "learned", "learned_range")
TIMESTEP_SPACINGS = ("linspace", "leading", "trailing")
# More training timesteps than this is no DDPM schedule signgen trains (1000 is usual).
MAX_TRAIN_TIMESTEPS = 100_000


def check_noise_schedule(config: dict, path: Path) -> None:
    """Refuse a noise-scheduler config whose values diffusers would take and then fail on at
    render time, or turn into a schedule that gives non-finite samples: one line naming
    ``path`` and the field."""
    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    def refuse(key: str, must: str) -> None:
        value = repr(config.get(key))
        value = value if len(value) <= 60 else value[:59] + "…"
        raise SigngenError(f"{path}: {key} must be {must}, not {value}")

    def choice(key: str, choices: tuple[str, ...]) -> None:
        if key in config and config[key] not in choices:
            refuse(key, "one of " + ", ".join(choices))

    if config.get("_class_name", "DDPMScheduler") != "DDPMScheduler":
        refuse("_class_name", "DDPMScheduler (the training noise schedule)")
    choice("prediction_type", PREDICTION_TYPES)
    choice("beta_schedule", BETA_SCHEDULES)
    choice("variance_type", VARIANCE_TYPES)
    choice("timestep_spacing", TIMESTEP_SPACINGS)
    steps = config.get("num_train_timesteps", 1000)
    if not (isinstance(steps, int) and not isinstance(steps, bool) and 1 <= steps <= MAX_TRAIN_TIMESTEPS):
        refuse("num_train_timesteps", f"a whole number from 1 to {MAX_TRAIN_TIMESTEPS}")
    trained = config.get("trained_betas")
    if trained is not None:
        if not (isinstance(trained, list) and len(trained) == steps and all(number(b) and 0 < b < 1 for b in trained)):
            raise SigngenError(f"{path}: trained_betas must be null or {steps} numbers in (0, 1), one per training timestep")
    elif config.get("beta_schedule", "linear") != "squaredcos_cap_v2":
        start, end = config.get("beta_start", 0.0001), config.get("beta_end", 0.02)
        for key, value in (("beta_start", start), ("beta_end", end)):
            if not (number(value) and 0 < value < 1):
                refuse(key, "a finite number in (0, 1)")
        if start > end:
            raise SigngenError(f"{path}: beta_start {start!r} must not exceed beta_end {end!r}")
    offset = config.get("steps_offset", 0)
    if not (isinstance(offset, int) and not isinstance(offset, bool) and 0 <= offset < steps):
        refuse("steps_offset", f"a whole number from 0 to {steps - 1}")
    for key in ("clip_sample_range", "sample_max_value"):
        if key in config and not (number(config[key]) and config[key] > 0):
            refuse(key, "a finite positive number")
    if "dynamic_thresholding_ratio" in config and not (number(config["dynamic_thresholding_ratio"])
                                                      and 0 < config["dynamic_thresholding_ratio"] <= 1):
        refuse("dynamic_thresholding_ratio", "a number in (0, 1]")
    for key in ("clip_sample", "thresholding", "rescale_betas_zero_snr"):
        if key in config and not isinstance(config[key], bool):
            refuse(key, "true or false")
