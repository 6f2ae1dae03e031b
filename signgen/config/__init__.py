"""Configuration of every model family: YAML files validated into typed dataclasses.

One loader (:func:`load_config`) for the four families, each with its dataclass and its
default tier, shipped in the package (``CONFIG_FOLDER``, the repository's ``configs/``):

    family     dataclass        default (no --config)   variants
    frame      FrameConfig      frame-tiny.yaml         frame-defaults / -embedded / -phoenix / -phoenix-sd15
    temporal   TemporalConfig   temporal-tiny.yaml      temporal-defaults / -embedded / -phoenix-sd15
    g2p        G2PConfig        g2p-tiny.yaml           g2p-phoenix
    autoencoder AutoencoderConfig autoencoder-tiny.yaml  -
    recogniser RecogniserConfig recogniser-tiny.yaml    recogniser-defaults / -video-tiny / -pose-tiny / -phoenix

As in CFLD, one defaults file (e.g. ``configs/frame-defaults.yaml``) holds every field and a
model/training variant is a small file that names it as its base and overrides a few
fields::

    base: frame-defaults.yaml        # resolved relative to this file
    model:
      resolution: [64, 52]
      unet: {block_out_channels: [32, 64, 64]}

Nested mappings merge key by key; lists and scalars replace. Command-line overrides
(``--set model.unet.layers_per_block=1``) are applied last, their values parsed as YAML.
Unknown keys, missing keys and wrongly typed values are user errors (SigngenError), so a
typo in a config never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterable

import yaml

from signgen.errors import SigngenError

from signgen.config.common import (  # noqa: F401  (re-exported: signgen.config is the one place to import from)
    BASE_KEY,
    CONFIG_FOLDER,
    DEFAULT_AUTOENCODER_CONFIG,
    DEFAULT_FRAME_CONFIG,
    DEFAULT_G2P_CONFIG,
    DEFAULT_HANDS_CONFIG,
    DEFAULT_RECOGNISER_CONFIG,
    DEFAULT_TEMPORAL_CONFIG,
    LR_SCHEDULES,
    MAX_SEED,
    TrainConfig,
    at_least,
    share,
)
from signgen.config.families import (  # noqa: F401  (re-exported: signgen.config is the one place to import from)
    AutoencoderConfig,
    AutoencoderModelConfig,
    AutoencoderTrainConfig,
    G2PConfig,
    G2PLossConfig,
    G2PModelConfig,
    HandModelConfig,
    HandsConfig,
    HandsTrainConfig,
    RecogniserConfig,
    RecogniserModelConfig,
    RecogniserTrainConfig,
)
from signgen.config.frame import (  # noqa: F401  (re-exported: signgen.config is the one place to import from)
    AdapterConfig,
    DiffusionTrainConfig,
    EncoderConfig,
    FrameConfig,
    FusionConfig,
    FusionTrainConfig,
    LatentConfig,
    ModelConfig,
    NoiseConfig,
    PREDICTION_TYPES,
    TemporalConfig,
    TemporalModelConfig,
    TemporalTrainConfig,
    UNetConfig,
    VAE_REQUIRED,
    WindowConfig,
)

# A number written with an exponent and no dot (1e-5), which YAML 1.1 leaves as text.
EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")

# ------------------------------------------------------------------------------ loading

# The families: their dataclass and the shipped default tier used without --config.
FAMILIES: dict[str, tuple[type, Path]] = {
    "frame": (FrameConfig, DEFAULT_FRAME_CONFIG),
    "temporal": (TemporalConfig, DEFAULT_TEMPORAL_CONFIG),
    "g2p": (G2PConfig, DEFAULT_G2P_CONFIG),
    "autoencoder": (AutoencoderConfig, DEFAULT_AUTOENCODER_CONFIG),
    "recogniser": (RecogniserConfig, DEFAULT_RECOGNISER_CONFIG),
    "hands": (HandsConfig, DEFAULT_HANDS_CONFIG),
}


def load_config(family: str, path: str | Path | None = None, overrides: Iterable[str] = ()) -> Any:
    """The config of model ``family`` (``frame``, ``temporal``, ``g2p``, ``autoencoder`` or ``recogniser``): ``path`` (any
    file; None takes the family's shipped default) merged onto its ``base`` files,
    ``KEY=VALUE`` overrides applied last, validated into the family's dataclass."""
    if family not in FAMILIES:
        raise SigngenError(f"unknown config family {family!r} (one of {', '.join(FAMILIES)})")
    cls, default = FAMILIES[family]
    path = default if path is None else path
    data = load_config_dict(path, overrides)
    try:
        return from_dict(cls, data)
    except SigngenError as error:
        raise SigngenError(f"config {path}: {error}") from None


def load_frame_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> FrameConfig:
    return load_config("frame", path, overrides)


def load_temporal_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> TemporalConfig:
    return load_config("temporal", path, overrides)


def load_g2p_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> G2PConfig:
    return load_config("g2p", path, overrides)


def save_config(config: Any, path: str | Path) -> None:
    """Write a resolved config (a dataclass or a dict) as YAML that :func:`load_config`
    reads back (``OUT/config.yaml`` of every training run)."""
    data = config if isinstance(config, dict) else config_to_dict(config)
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def load_config_dict(path: str | Path, overrides: Iterable[str] = ()) -> dict:
    """The merged, overridden YAML of ``path`` as plain dicts, before validation: the
    loader for any config family (frame, temporal, ...) with the same base/override rules."""
    data = _read_with_bases(Path(path), seen=())
    for override in overrides:
        _apply_override(data, override)
    return data


def config_to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from nested dicts, checking keys and value types; ``where``
    is the dotted key path of ``data``, used in error messages."""
    if not isinstance(data, dict):
        raise SigngenError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise SigngenError(f"unknown key(s) {', '.join(_join(where, k) for k in unknown)}")
    missing = [n for n in names if n not in data]
    if missing:
        raise SigngenError(f"missing key(s) {', '.join(_join(where, k) for k in missing)}")
    values = {name: _convert(hints[name], data[name], _join(where, name)) for name in names}
    return cls(**values)


def _echo(value: Any, limit: int = 80) -> str:
    """``repr`` of a user's value for a message, cut to ``limit`` characters."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except SigngenError as error:
                errors.append(str(error))
        raise SigngenError(errors[0] if errors else f"{where}: unexpected value {value!r}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise SigngenError(f"{where}: expected a list, got {_echo(value)}")
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise SigngenError(f"{where}: expected true or false, got {_echo(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SigngenError(f"{where}: expected an integer, got {_echo(value)}")
        return value
    if hint is float:
        if isinstance(value, str) and EXPONENT_NUMBER.fullmatch(value.strip()):
            value = float(value)  # PyYAML (YAML 1.1) reads 1e-5, without a dot, as text
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SigngenError(f"{where}: expected a number, got {_echo(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise SigngenError(f"{where}: expected a finite number, got {_echo(value)}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise SigngenError(f"{where}: expected a string, got {_echo(value)}")
        return value
    raise TypeError(f"unsupported config type {hint!r} at {where}")


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SigngenError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SigngenError(f"cannot read config file {path}: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise SigngenError(f"config file {path} is not valid YAML{at}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SigngenError(f"config file {path} must hold a mapping at the top level")
    return data


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> dict:
    resolved = path.resolve()
    if resolved in seen:
        raise SigngenError(f"config file {path} names itself as its own base (through {len(seen)} file(s))")
    data = _read_yaml(path)
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise SigngenError(f"config file {path}: '{BASE_KEY}' must be a file name")
    merged = _read_with_bases(path.parent / base, seen + (resolved,))
    _deep_merge(merged, data)
    return merged


def _deep_merge(into: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _apply_override(data: dict, override: str) -> None:
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise SigngenError(f"config override must look like KEY=VALUE, not {_echo(override)}")
    *parents, leaf = key.strip().split(".")
    node = data
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise SigngenError(f"config override {key!r}: '{part}' is not a section")
        node = node[part]
    if leaf not in node:
        raise SigngenError(f"config override {key!r}: no such key")
    try:
        node[leaf] = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise SigngenError(f"config override {_echo(key)}: value {_echo(raw)} is not valid YAML") from None

