"""What every config family shares: where the shipped configs are, the training loop's
fields (:class:`TrainConfig`) and the range checks the dataclasses use."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signgen.errors import SigngenError

BASE_KEY = "base"
# The shipped configs: the repository's configs/ folder, installed as the package
# signgen.configs (pyproject.toml), so that a wheel trains with the same defaults.
CONFIG_FOLDER = Path(str(importlib.resources.files("signgen.configs")))
DEFAULT_FRAME_CONFIG = CONFIG_FOLDER / "frame-tiny.yaml"
DEFAULT_TEMPORAL_CONFIG = CONFIG_FOLDER / "temporal-tiny.yaml"
DEFAULT_G2P_CONFIG = CONFIG_FOLDER / "g2p-tiny.yaml"
DEFAULT_AUTOENCODER_CONFIG = CONFIG_FOLDER / "autoencoder-tiny.yaml"
DEFAULT_RECOGNISER_CONFIG = CONFIG_FOLDER / "recogniser-tiny.yaml"
# diffusers.optimization.get_scheduler names that need no extra arguments.
LR_SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")
MAX_SEED = 2**63 - 1
DEFAULT_HANDS_CONFIG = CONFIG_FOLDER / "hands-tiny.yaml"


def at_least(config: Any, section: str, minimum: int, *names: str) -> None:
    """Refuse a size or count below ``minimum`` (a zero that would divide by zero later)."""
    for name in names:
        value = getattr(config, name)
        values = value if isinstance(value, list) else [value]
        if any(v is not None and v < minimum for v in values):
            raise SigngenError(f"{section}{name} must be at least {minimum}, not {value}")


def share(config: Any, section: str, *names: str, below_one: bool = False) -> None:
    """Refuse a probability (or dropout, ``below_one``) outside [0, 1] (or [0, 1))."""
    for name in names:
        value = getattr(config, name)
        if not (0.0 <= value < 1.0 if below_one else 0.0 <= value <= 1.0):
            raise SigngenError(f"{section}{name} must be in [0, 1{')' if below_one else ']'}, not {value}")

@dataclass
class TrainConfig:
    batch_size: int
    learning_rate: float
    weight_decay: float
    lr_schedule: str
    warmup_steps: int
    max_steps: int
    gradient_accumulation_steps: int
    max_grad_norm: float
    mixed_precision: str
    ema_decay: float
    checkpoint_every: int
    checkpoints_keep: int
    log_every: int
    num_workers: int
    seed: int

    def __post_init__(self):
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise SigngenError(f"mixed_precision must be 'no', 'fp16' or 'bf16', not {self.mixed_precision!r}")
        for name in ("batch_size", "max_steps", "gradient_accumulation_steps", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise SigngenError(f"training {name} must be at least 1")
        if self.lr_schedule not in LR_SCHEDULES:
            raise SigngenError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {self.lr_schedule!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise SigngenError(f"ema_decay must be in [0, 1) (0 turns EMA off), not {self.ema_decay}")
        if self.learning_rate <= 0:
            raise SigngenError(f"training learning_rate must be positive, not {self.learning_rate}")
        for name in ("weight_decay", "max_grad_norm", "warmup_steps", "checkpoints_keep", "num_workers"):
            if getattr(self, name) < 0:
                raise SigngenError(f"training {name} must not be negative, not {getattr(self, name)}")
        if not 0 <= self.seed <= MAX_SEED:
            raise SigngenError(f"training seed must be from 0 to 2**63-1, not {self.seed}")


