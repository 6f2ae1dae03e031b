"""Loading one saved module strictly: ``config.json`` + safetensors weights.

Shared by every model folder signgen reads (the frame model's components, the temporal
adapter). diffusers' ``from_pretrained`` leaves weights missing from the file on the meta
device ("Cannot copy out of meta tensor" only at render time) and ignores unexpected ones;
here the module is built from its checked config and every weight must fit, so a damaged or
swapped file is one SigngenError line when it is loaded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from signgen import files
from signgen.errors import SigngenError, first_line


def load_module(cls: type, config_path: Path, weights_path: Path) -> torch.nn.Module:
    """``cls`` (a diffusers ``ModelMixin`` + ``ConfigMixin``) built from ``config_path`` and
    loaded strictly from the safetensors file ``weights_path``."""
    for path in (config_path, weights_path):
        if not Path(path).is_file():
            raise SigngenError(f"model folder is incomplete: {path} is missing")
    config = read_config(config_path, "component config", cls, lambda _: f"{config_path} does not describe a {cls.__name__}")
    try:
        module = cls.from_config(config)
    except (TypeError, ValueError, KeyError, ArithmeticError, RuntimeError, AttributeError) as error:
        raise SigngenError(f"{config_path} does not build a {cls.__name__}: {first_line(error)}") from None
    state = read_weights(weights_path)
    expected = module.state_dict()
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        raise SigngenError(f"{weights_path} does not match {config_path} (weights of another module or model?): "
                           f"{describe_mismatch(module, state)}")
    if any(tensor.is_meta for tensor in state.values()):
        raise SigngenError(f"{weights_path} holds weights without data (meta tensors)")
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, NotImplementedError) as error:
        raise SigngenError(f"{weights_path} does not match {config_path}: {first_line(error)}") from None
    return module


def read_config(config_path: Path, what: str, cls: type, refusal: Callable[[str], str]) -> dict:
    """A ``cls`` module's ``config.json``, its sizes checked (:func:`check_positive`); a
    config of another class is the SigngenError ``refusal(kind found)``."""
    config = files.read_json_object(config_path, what)
    kind = config.get("_class_name")
    if kind != cls.__name__:
        raise SigngenError(refusal(kind or "model without _class_name"))
    check_positive(config, config_path)
    return config


def read_weights(path: Path, context: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of the safetensors file ``path`` (never a pickle); an unreadable file is
    one SigngenError line, prefixed with ``context``."""
    try:
        return load_file(path)
    except (SafetensorError, OSError) as error:
        raise SigngenError(f"{context}{path} is not a readable safetensors file: {first_line(error)}") from None


# Sizes and counts in a component's config.json: a zero (or less) would divide by zero
# while the module is built or run, so it is refused when the config is read.
POSITIVE_FIELDS = (
    "image_size", "patch_size", "hidden_size", "num_heads", "num_layers", "intermediate_size", "in_channels",
    "embed_dim", "hidden_dim", "temperature_init", "out_channels", "sample_size", "block_out_channels",
    "layers_per_block", "attention_head_dim", "cross_attention_dim", "norm_num_groups", "transformer_layers_per_block",
    "num_attention_heads", "projection_class_embeddings_input_dim", "encoder_hid_dim", "latent_channels",
    "num_train_timesteps",
)


def check_positive(config: dict, path: Path) -> None:
    """Refuse a config whose sizes or counts are not positive finite numbers."""
    for key in POSITIVE_FIELDS:
        value = config.get(key)
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in values):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:59] + "…"
            raise SigngenError(f"{path}: {key} must be a positive number (or list of them), not {shown}")


def describe_mismatch(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> str:
    """The first way ``state`` fails to fit ``module``, in words."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        return f"{len(missing)} weight(s) missing, e.g. {missing[0]}"
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        return f"{len(unexpected)} unexpected weight(s), e.g. {unexpected[0]}"
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            return f"{key} has shape {tuple(tensor.shape)}, expected {tuple(expected[key].shape)}"
    return "weights do not fit the architecture"
