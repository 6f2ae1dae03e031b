"""How a pipeline renders: every render setting, its default, its limits and its check.

:class:`RenderSettings` is the one home of a render setting. Everything else derives from
its fields: ``pipeline.json`` (the settings a pipeline folder renders with), ``signgen
pipeline assemble --set``, ``signgen render``'s flags and ``--set`` (``signgen.cli.settings``)
and the keyword arguments of :meth:`signgen.pipelines.pipeline.SignPipeline.__call__`.
A field's ``metadata`` says what it means (``help``), its range (``low``/``high``; ``open_low``
excludes ``low``) and, for settings newer than some saved pipelines, the value such a
pipeline rendered with before the setting existed (``before``). The defaults are what the
embedded default renders with.

Values are checked once, when a settings object is made (:meth:`RenderSettings.check`);
what depends on the model (a scheduler that can sample it, steps within its training
timesteps) is checked by the pipeline before any work. A light module: no torch.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from signgen.config import MAX_SEED
from signgen.errors import SigngenError

# Guidance scales beyond this overflow the prediction to non-finite values or saturate every
# pixel; FPDM and CFLD use scales up to about 5.
MAX_GUIDANCE = 30.0
# The most denoising steps; a model also caps them at its training timesteps.
MAX_STEPS = 1000
# Widths over time in frames (deflicker, steady_torso): a second at 25 fps.
MAX_FRAMES_SIGMA = 25.0
MAX_BATCH = 4096
# hand_sharpen's bound: an amount of 1 leaves a thin light seam around the hand already;
# 3 triples it (untried; a bound against typos, not a tuned limit).
MAX_SHARPEN = 3.0


def setting(default: Any, help: str, low: float | None = None, high: float | None = None, *,
            open_low: bool = False, before: Any = dataclasses.MISSING, aliases: tuple[str, ...] = (),
            choices: tuple[str, ...] = ()) -> Any:
    """A :class:`RenderSettings` field: its default, meaning and range (see the module
    docstring); ``aliases`` are further command-line flags for it; ``choices`` the names a
    name setting takes (any name where empty: a scheduler's is checked against the model)."""
    metadata = {"help": help, "low": low, "high": high, "open_low": open_low, "aliases": aliases, "choices": choices}
    if before is not dataclasses.MISSING:
        metadata["before"] = before
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RenderSettings:
    """How a pipeline renders unless a render says otherwise (``pipeline.json``).

    Guidance: ``eps_u + appearance_scale (eps_a - eps_u) + full_scale (eps_f - eps_a)`` over
    the first ``guidance_interval`` share of the steps (:class:`signgen.pipelines.schedulers.GuidanceScales`).
    """

    scheduler: str = setting("ddim", "sampler: ddim, dpm (DPM-Solver++), euler, euler_a, unipc, ddpm or a diffusers "
                                     "scheduler class for DDPM-trained models")
    num_steps: int = setting(10, "denoising steps (at most the model's training timesteps)", 1, MAX_STEPS,
                             aliases=("--steps",))
    appearance_scale: float = setting(1.5, "guidance scale of the appearance over no condition (1 and full_scale 1: "
                                           "no guidance, 3x faster)", -MAX_GUIDANCE, MAX_GUIDANCE)
    full_scale: float = setting(2.0, "guidance scale of pose and fusion over the appearance alone", -MAX_GUIDANCE, MAX_GUIDANCE)
    guidance_interval: float = setting(0.5, "share of the steps, noisiest first, that are guided", 0.0, 1.0)
    strength: float = setting(1.0, "start from the photo warped to each pose noised to this share of the schedule "
                                   "instead of pure noise (1: pure noise; v2 models)", 0.0, 1.0, open_low=True, before=1.0)
    noise_correlation: float = setting(1.0, "correlation of the initial noise between frames, 0 (independent) to 1 "
                                            "(one noise for every frame)", 0.0, 1.0, before=0.0)
    keep_coarse: bool = setting(True, "keep the photo warped to the pose wherever it covers the frame; the model's "
                                      "drawing shows where it does not (v2 models)", before=False)
    coarse_warp: str = setting("mesh", "how the photo is warped to each pose (v2 models): parts (each limb moved "
                                        "rigidly) or mesh (one mesh of the person bent by the bones: limbs stay whole)",
                               choices=("parts", "mesh"), before="parts")
    warp_hands: bool = setting(True, "show the photo's hands bent to each pose's hand keypoints (v2 models); false: "
                                     "the frame model draws each hand the pose shows (and the hand stage, where the "
                                     "pipeline has one)", before=True)
    full_resolution: bool = setting(True, "with keep_coarse, compose each frame at the output size (260 x 210): the "
                                           "photo warped at that size wherever it covers the frame, the model's drawing "
                                           "upscaled only where it does not (v2 models)", before=False)
    keep_background: bool = setting(True, "with full_resolution and the mesh warp, where the person has left the "
                                          "photo's background (an arm moved away, off the torso and the limbs): show "
                                          "the photo's background there, inpainted where the person stood, instead of "
                                          "the model's drawing", before=False)
    hand_steps: int = setting(1, "denoising steps of the hand stage, which redraws each hand in its own crop from "
                                  "its keypoints (pipelines with a hand model, at full_resolution; 0: off)", 0, MAX_STEPS,
                              before=10)
    hand_sharpen: float = setting(1.0, "sharpen each hand's box in the finished frames: an unsharp mask of this "
                                       "amount, one pixel wide at 260 x 210 and narrower in proportion at the "
                                       "model's own resolution (0: off)", 0.0, MAX_SHARPEN,
                                  before=0.0)
    steady_torso: float = setting(2.0, "smooth the torso and head keypoints of the warped photo over time, a "
                                       "Gaussian of this many frames (0: off; v2 models)", 0.0, MAX_FRAMES_SIGMA, before=0.0)
    deflicker: float = setting(4.0, "filter flicker over time, a Gaussian of this many frames; moving arms and "
                                    "hands are left as drawn (0: off)", 0.0, MAX_FRAMES_SIGMA, before=0.0)
    window_size: int = setting(16, "frames the temporal adapter sees at once (its training clip length)", 1, MAX_BATCH)
    overlap: int = setting(4, "frames shared by neighbouring windows of the temporal adapter", 0, MAX_BATCH)
    frame_batch_size: int = setting(16, "frames through the model at once without a temporal adapter", 1, MAX_BATCH)
    windows_per_batch: int = setting(1, "windows through the model at once with a temporal adapter", 1, MAX_BATCH)

    def __post_init__(self):
        self.check()
        for spec in dataclasses.fields(self):
            if spec.type == "float":  # 2 and 2.0 are one setting, written as 2.0
                object.__setattr__(self, spec.name, float(getattr(self, spec.name)))

    def check(self) -> None:
        """Every value's type and range, and ``overlap`` below ``window_size``; one line each."""
        for spec in dataclasses.fields(self):
            _check_value(spec, getattr(self, spec.name))
        if self.overlap >= self.window_size:
            raise SigngenError(f"render setting overlap must be less than window_size {self.window_size}, not {self.overlap}")

    def replace(self, **changes) -> "RenderSettings":
        """A copy with ``changes`` (names of fields; ``None`` values keep the current one)."""
        _check_known(changes)
        return dataclasses.replace(self, **{name: value for name, value in changes.items() if value is not None})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_saved(cls, values: dict) -> "RenderSettings":
        """Settings from a ``pipeline.json`` mapping: a setting newer than the file takes the
        value such a pipeline rendered with before it existed (its ``before``); any other
        missing or unknown key is an error."""
        if not isinstance(values, dict):
            raise SigngenError(f"render settings must be a mapping, not {type(values).__name__}")
        before = {spec.name: spec.metadata["before"] for spec in dataclasses.fields(cls) if "before" in spec.metadata}
        missing = sorted(set(names()) - set(values) - set(before))
        if missing:
            raise SigngenError(f"missing render setting(s) {', '.join(missing)}")
        _check_known(values)
        return cls(**{**before, **values})  # a saved null is a bad value, not "keep the default"


def names() -> list[str]:
    return [spec.name for spec in dataclasses.fields(RenderSettings)]


def _check_known(given: dict) -> None:
    unknown = sorted(set(given) - set(names()))
    if unknown:
        raise SigngenError(f"unknown render setting(s) {', '.join(unknown)}; known: {', '.join(names())}")


def check_seed(seed) -> int:
    """``seed`` as an int from 0 to 2**63 - 1 (what torch and numpy generators take)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise SigngenError(f"seed must be a whole number from 0 to 2**63-1, not {_shown(seed)}")
    return int(seed)


def _check_value(spec: dataclasses.Field, value: Any) -> None:
    kind, low, high = spec.type, spec.metadata["low"], spec.metadata["high"]
    what = f"render setting {spec.name}"
    if kind == "bool":
        if not isinstance(value, bool):
            raise SigngenError(f"{what} must be true or false, not {_shown(value)}")
        return
    if kind == "str":
        choices = spec.metadata["choices"]
        if not isinstance(value, str) or not value or (choices and value not in choices):
            raise SigngenError(f"{what} must be {'one of ' + ', '.join(choices) if choices else 'a name'}, not {_shown(value)}")
        return
    whole = kind == "int"
    number = isinstance(value, int) if whole else isinstance(value, (int, float))
    if isinstance(value, bool) or not number or not math.isfinite(value):
        raise SigngenError(f"{what} must be a {'whole number' if whole else 'finite number'}, not {_shown(value)}")
    above = value > low if spec.metadata["open_low"] else value >= low
    if not (above and value <= high):
        bound = f"above {low:g}" if spec.metadata["open_low"] else f"from {low:g}"
        raise SigngenError(f"{what} ({spec.metadata['help']}) must be {bound} to {high:g}, not {_shown(value)}")


def _shown(value: Any, limit: int = 60) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
