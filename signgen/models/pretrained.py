"""The denoiser started from a local Stable Diffusion UNet (``model.init_from``).

SignViP and AnimateAnyone start from Stable Diffusion 1.5's UNet, FPDM from SD 2.1's. With
``model.init_from=PATH`` (a diffusers ``UNet2DConditionModel`` folder, or a whole pipeline
folder whose ``unet/`` and ``vae/`` are used) the denoiser is that UNet, widened for
signgen's conditions so that at initialisation it computes exactly what the pretrained UNet
computes with an empty (all-zero) text conditioning:

- pose map, coarse image and mask: extra ``conv_in`` input channels, zero-initialised (the
  pretrained ``conv_in`` weights read the noisy sample's channels, as before);
- appearance tokens: ``encoder_hid_proj`` (token width -> the UNet's
  ``cross_attention_dim``), zero-initialised, so cross-attention first sees zero tokens;
  always, also where the token width equals ``cross_attention_dim`` (a new UNet then has
  no projection: the tokens would reach the pretrained cross-attention unchanged);
- fusion embedding: the ``projection`` class embedding added to the timestep embedding,
  its last layer zero-initialised.

The config's ``model.unet`` must describe the pretrained UNet's shape (levels, widths,
block types, cross-attention width); where it does not, loading is one error line naming
the field. Further details of the pretrained architecture (SD 2.1's per-level head sizes,
linear projections, attention upcasting) come from its ``config.json``. Only safetensors
weights are read.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel

from signgen import files
from signgen.config import UNetConfig
from signgen.errors import SigngenError, first_line
from signgen.models.denoiser import zero_pose_input
from signgen.models.loading import read_config, read_weights
from signgen.models.reference import install_reference_attention

CONFIG_NAME = "config.json"
# Weight files a diffusers folder may hold, in order of preference (never a pickle).
WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")
# The config fields of model.unet that must equal the pretrained UNet's.
SHAPE_FIELDS = ("block_out_channels", "down_block_types", "up_block_types", "mid_block_type", "layers_per_block",
                "cross_attention_dim", "norm_num_groups", "transformer_layers_per_block", "attention_head_dim")
# Submodules that signgen adds to a pretrained UNet: they start at zero.
NEW_MODULES = ("class_embedding.", "encoder_hid_proj.")


def init_folders(path: str | Path) -> tuple[Path, Path | None]:
    """(UNet folder, VAE folder or None) of ``model.init_from``: a UNet2DConditionModel
    folder, or a diffusers pipeline folder with ``unet/`` (and usually ``vae/``)."""
    folder = Path(path)
    if not folder.is_dir():
        raise SigngenError(f"model.init_from: folder not found: {path}")
    index = folder / "model_index.json"
    if index.is_file():
        manifest = files.read_json_object(index, "pipeline index")
        if "kind" in manifest:
            raise SigngenError(f"model.init_from {path} is a {manifest['kind']} folder, not a Stable Diffusion "
                               f"pipeline or UNet folder")
    if (folder / CONFIG_NAME).is_file():
        unet_folder = folder
    elif (folder / "unet" / CONFIG_NAME).is_file():
        unet_folder = folder / "unet"
    else:
        raise SigngenError(f"model.init_from {path} is neither a diffusers UNet folder (config.json) nor a pipeline "
                           f"folder with unet/config.json")
    vae = folder / "vae"
    return unet_folder, (vae if unet_folder != folder and (vae / CONFIG_NAME).is_file() else None)


def vae_folder(config) -> str | None:
    """The VAE folder of a frame ``ModelConfig``: ``latent.vae_path``, else the ``vae/`` of
    an ``init_from`` pipeline folder, else None (pixels)."""
    if config.latent.vae_path:
        return config.latent.vae_path
    if config.init_from:
        folder = init_folders(config.init_from)[1]
        return None if folder is None else str(folder)
    return None


def read_unet_config(unet_folder: Path) -> dict:
    """The pretrained UNet's config.json, checked to be a UNet2DConditionModel's."""
    return read_config(unet_folder / CONFIG_NAME, "UNet config", UNet2DConditionModel,
                       lambda kind: f"model.init_from: {unet_folder} holds a {kind}, not a UNet2DConditionModel "
                                    f"(it takes a Stable Diffusion folder or its unet/)")


def pretrained_unet(init_from: str | Path, config: UNetConfig, inputs: dict, reference_attention: bool = False) -> UNet2DConditionModel:
    """The pretrained UNet of ``init_from`` with signgen's ``inputs``
    (:func:`signgen.models.denoiser.unet_inputs`): its weights loaded, the new input
    channels and projections at zero. Under ``torch.device("meta")`` no weight is read."""
    unet_folder, _ = init_folders(init_from)
    source = read_unet_config(unet_folder)
    check_fits(source, config, inputs, unet_folder)
    # The zero-initialised token projection, whatever the token width (unet_inputs leaves it
    # out where the tokens are cross_attention_dim wide already).
    inputs = {**inputs, "encoder_hid_dim": inputs["encoder_hid_dim"] or config.cross_attention_dim}
    merged = {key: value for key, value in source.items() if not key.startswith("_")}
    merged.update(inputs)
    try:
        unet = UNet2DConditionModel.from_config(merged)
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError) as error:
        raise SigngenError(f"model.init_from: {unet_folder / CONFIG_NAME} does not build a UNet: {first_line(error)}") from None
    if not torch.empty(0).is_meta:
        load_pretrained_weights(unet, weights_file(unet_folder), inputs["out_channels"])
    zero_new_inputs(unet, inputs["out_channels"])
    if reference_attention:
        install_reference_attention(unet)
    return unet


def check_fits(source: dict, config: UNetConfig, inputs: dict, unet_folder: Path) -> None:
    """One SigngenError line for the first way the pretrained UNet cannot be signgen's
    denoiser under ``config``: another shape, a patched sample, other sample channels, or a
    conditioning signgen does not drive (SDXL's added embeddings, class labels)."""
    defaults = {name: parameter.default for name, parameter in inspect.signature(UNet2DConditionModel.__init__).parameters.items()}
    for field in SHAPE_FIELDS:
        theirs, ours = source.get(field, defaults.get(field)), getattr(config, field)
        if field == "attention_head_dim" and isinstance(theirs, (list, tuple)):
            continue  # per-level head sizes (SD 2.x) come from the pretrained config itself
        if _listed(theirs) != _listed(ours):
            raise SigngenError(f"model.init_from: the pretrained UNet in {unet_folder} has {field} {_listed(theirs)}, the config "
                               f"model.unet.{field} {_listed(ours)}; set model.unet to the pretrained UNet's shape")
    for field in ("addition_embed_type", "class_embed_type", "encoder_hid_dim", "num_class_embeds"):
        if source.get(field) is not None:
            raise SigngenError(f"model.init_from: the pretrained UNet in {unet_folder} uses {field}={source[field]!r}, "
                               f"which signgen does not drive (Stable Diffusion 1.x/2.x UNets are supported)")
    if config.patch_size != 1:
        raise SigngenError(f"model.init_from needs model.unet.patch_size 1 (a pretrained UNet reads latents cell by cell), "
                           f"not {config.patch_size}")
    sample_channels = inputs["out_channels"]
    theirs = (source.get("in_channels", 4), source.get("out_channels", 4))
    if theirs != (sample_channels, sample_channels):
        raise SigngenError(f"model.init_from: the pretrained UNet in {unet_folder} maps {theirs[0]} to {theirs[1]} channels, "
                           f"the denoised sample has {sample_channels} (latents of its own VAE: model.latent.vae_path)")


def _listed(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def weights_file(unet_folder: Path) -> Path:
    for name in WEIGHT_NAMES:
        if (unet_folder / name).is_file():
            return unet_folder / name
    if any(unet_folder.glob("*.bin")) or any(unet_folder.glob("*.ckpt")):
        raise SigngenError(f"model.init_from: {unet_folder} holds pickled weights only; signgen reads safetensors "
                           f"({WEIGHT_NAMES[0]})")
    raise SigngenError(f"model.init_from: {unet_folder} has no {WEIGHT_NAMES[0]}")


def load_pretrained_weights(unet: UNet2DConditionModel, path: Path, sample_channels: int) -> None:
    """Every weight of the pretrained file into ``unet``: ``conv_in`` into its first
    ``sample_channels`` input channels, everything else shape for shape; only the modules
    signgen adds (:data:`NEW_MODULES`) may be absent from the file."""
    state = read_weights(path, context="model.init_from: ")
    expected = unet.state_dict()
    missing = sorted(key for key in expected if key not in state and not key.startswith(NEW_MODULES))
    unexpected = sorted(key for key in state if key not in expected)
    if missing or unexpected:
        what = f"{len(missing)} weight(s) missing, e.g. {missing[0]}" if missing else f"{len(unexpected)} unexpected weight(s), e.g. {unexpected[0]}"
        raise SigngenError(f"model.init_from: {path} does not fit its config.json: {what}")
    conv_in = state.pop("conv_in.weight")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise SigngenError(f"model.init_from: {path}: {key} has shape {tuple(tensor.shape)}, expected {tuple(expected[key].shape)}")
    if conv_in.shape[1] != sample_channels or conv_in.shape[0] != expected["conv_in.weight"].shape[0]:
        raise SigngenError(f"model.init_from: {path}: conv_in.weight has shape {tuple(conv_in.shape)}, expected "
                           f"({expected['conv_in.weight'].shape[0]}, {sample_channels}, ...)")
    unet.load_state_dict(state, strict=False)
    with torch.no_grad():
        unet.conv_in.weight[:, :sample_channels].copy_(conv_in)


def zero_new_inputs(unet: UNet2DConditionModel, sample_channels: int) -> None:
    """Zero what signgen adds to a pretrained UNet: the condition channels of ``conv_in``,
    the token projection and the fusion embedding's last layer."""
    zero_pose_input(unet, sample_channels)
    with torch.no_grad():
        for module in (getattr(unet, "encoder_hid_proj", None), getattr(getattr(unet, "class_embedding", None), "linear_2", None)):
            if isinstance(module, torch.nn.Linear):
                module.weight.zero_()
                if module.bias is not None:
                    module.bias.zero_()
