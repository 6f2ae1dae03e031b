"""Stage 3: the temporal adapter, AnimateDiff-style motion modules for the frame UNet.

A motion module attends over the frame axis at every spatial position: GroupNorm, a
linear ``proj_in``, diffusers' ``BasicTransformerBlock`` (self-attention twice, sinusoidal
frame positions added before each attention, feed-forward) and a linear ``proj_out``
that starts at zero, added back to its input. At initialisation every module is the
identity, so the video model equals the frame model exactly; training moves only the
adapter (the spatial weights stay frozen).

Why not diffusers' ``MotionAdapter`` / ``UNetMotionModel``: that model rebuilds the UNet
from its own block classes and drops what the signgen denoiser relies on (the
``class_embed_type="projection"`` fusion embedding, the zero-initialised pose channels
and adapter residuals), and it does not zero-initialise ``proj_out``. Here the frame
model's ``UNet2DConditionModel`` is left untouched: :class:`TemporalAdapter` is a model of
its own (``save_pretrained`` on its own, ``config.json`` + safetensors) whose modules are
applied by forward hooks on the UNet's spatial layers. Hooks rather than replaced
submodules keep the UNet's state-dict keys, ``save_pretrained`` and loading exactly as
stage 2 wrote them, and the adapter can be attached to and removed from a loaded frame
model at will. :class:`VideoUNet` owns the hooks and tells them how many frames make one
video, so it can stand in wherever a UNet is called.

Batch layout: a video batch enters the spatial UNet as ``(B * F, C, H, W)`` with the
frames of one video contiguous (``(b f)`` in einops terms). Everything per frame (pose
map, fusion embedding via ``class_labels``, timestep, appearance tokens repeated per
frame) stays per frame, exactly as the frame model sees it; only the motion modules
regroup the batch into videos. Batched classifier-free guidance keeps this layout as
long as each guidance mode's frames are concatenated as whole videos.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Sequence

import torch
from diffusers import ModelMixin, UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import BasicTransformerBlock
from diffusers.utils import BaseOutput
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from signgen.errors import SigngenError
from signgen.models.loading import load_module

# PyTorch's fused attention kernels on CUDA launch one grid row per (batch x head) and fail
# beyond 65535; temporal attention at pixel resolution has one batch row per position.
MAX_ATTENTION_BATCH_TIMES_HEADS = 65535


class MotionModule(nn.Module):
    """Attention over the frame axis at each spatial position; the identity at init."""

    def __init__(
        self,
        channels: int,
        num_attention_heads: int,
        attention_head_dim: int | None,
        num_layers: int,
        norm_num_groups: int,
        max_frames: int,
        activation_fn: str = "geglu",
        dropout: float = 0.0,
    ):
        super().__init__()
        if attention_head_dim is None:
            if channels % num_attention_heads:
                raise SigngenError(f"motion module: {channels} channels do not split into {num_attention_heads} heads")
            attention_head_dim = channels // num_attention_heads
        inner_dim = num_attention_heads * attention_head_dim
        self.num_attention_heads = num_attention_heads
        self.norm = nn.GroupNorm(norm_num_groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner_dim)
        self.transformer_blocks = nn.ModuleList(
            [
                BasicTransformerBlock(
                    inner_dim,
                    num_attention_heads,
                    attention_head_dim,
                    dropout=dropout,
                    activation_fn=activation_fn,
                    double_self_attention=True,
                    positional_embeddings="sinusoidal",
                    num_positional_embeddings=max_frames,
                )
                for _ in range(num_layers)
            ]
        )
        self.proj_out = nn.Linear(inner_dim, channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        batch_frames, _, height, width = hidden_states.shape
        if batch_frames % num_frames:
            raise ValueError(f"batch of {batch_frames} frames is not a whole number of {num_frames}-frame videos")
        videos = rearrange(hidden_states, "(b f) c h w -> b c f h w", f=num_frames)
        # GroupNorm over (channels-in-group, frames, positions) of each video, as AnimateDiff.
        sequences = rearrange(self.norm(videos), "b c f h w -> (b h w) f c")
        sequences = self.proj_in(sequences)
        rows_per_chunk = max(1, MAX_ATTENTION_BATCH_TIMES_HEADS // self.num_attention_heads)
        sequences = torch.cat([self._attend(chunk) for chunk in sequences.split(rows_per_chunk)])
        sequences = self.proj_out(sequences)
        motion = rearrange(sequences, "(b h w) f c -> (b f) c h w", h=height, w=width)
        return hidden_states + motion

    def _attend(self, sequences: torch.Tensor) -> torch.Tensor:
        for block in self.transformer_blocks:
            sequences = block(sequences)
        return sequences


class TemporalAdapter(ModelMixin, ConfigMixin):
    """The motion modules of one frame UNet, saved and loaded on their own.

    ``sites`` names the UNet submodules (dotted paths such as ``down_blocks.1.attentions.0``)
    whose output each module refines, and ``site_channels`` their channel counts; build it
    for a UNet with :meth:`for_unet`, apply it with :class:`VideoUNet`. As in AnimateDiff,
    ``attention_head_dim=None`` splits each site's channels evenly over the heads.
    """

    @register_to_config
    def __init__(
        self,
        sites: Sequence[str] = (),
        site_channels: Sequence[int] = (),
        num_attention_heads: int = 8,
        attention_head_dim: int | None = None,
        num_layers: int = 1,
        norm_num_groups: int = 32,
        max_frames: int = 32,
        activation_fn: str = "geglu",
        dropout: float = 0.0,
    ):
        super().__init__()
        if len(sites) != len(site_channels):
            raise ValueError("sites and site_channels must have the same length")
        self.motion_modules = nn.ModuleList(
            [
                MotionModule(
                    channels,
                    num_attention_heads,
                    attention_head_dim,
                    num_layers,
                    norm_num_groups,
                    max_frames,
                    activation_fn=activation_fn,
                    dropout=dropout,
                )
                for channels in site_channels
            ]
        )

    @classmethod
    def for_unet(
        cls,
        unet: UNet2DConditionModel,
        *,
        levels: Sequence[int] | None = None,
        include_mid: bool = True,
        mid_site: str = "resnet",
        **module_options,
    ) -> "TemporalAdapter":
        """An untrained adapter with one motion module after each spatial layer of ``unet``.

        ``levels`` picks resolution levels (0 = full resolution: ``down_blocks[0]`` and the
        last up block); ``None`` takes all of them. ``mid_site`` places the middle block's
        modules (:func:`motion_sites`): ``"attention"`` for AnimateDiff's motion modules.
        ``module_options`` are the remaining ``__init__`` arguments (heads, head size,
        layers, groups, max_frames, ...). The chosen places are saved as ``sites``.
        """
        sites = motion_sites(unet, levels=levels, include_mid=include_mid, mid_site=mid_site)
        channels = [_output_channels(unet.get_submodule(site)) for site in sites]
        return cls(sites=list(sites), site_channels=channels, **module_options)

    def check_fits(self, unet: UNet2DConditionModel) -> None:
        """Raise SigngenError unless every site exists in ``unet`` with the channels the
        adapter was built for (an adapter trained for another frame model)."""
        for site, channels in zip(self.config.sites, self.config.site_channels):
            try:
                module = unet.get_submodule(site)
            except AttributeError:
                raise SigngenError(f"temporal adapter does not fit this frame model: it has no layer {site}") from None
            found = _output_channels(module)
            if found != channels:
                raise SigngenError(
                    f"temporal adapter does not fit this frame model: layer {site} has {found} channels, "
                    f"the adapter expects {channels}"
                )


class VideoUNet(nn.Module):
    """A frame UNet with a temporal adapter attached: call it as the UNet, plus ``num_frames``.

    The wrapper holds no weights of its own (its state dict is the UNet's and the
    adapter's, under ``unet.`` and ``adapter.``): save each part with its own
    ``save_pretrained``. ``config``, ``dtype`` and ``device`` are the UNet's, so code that
    inspects a UNet keeps working. Calling the wrapped UNet directly while attached raises,
    rather than silently running the frames as unrelated images; :meth:`detach` restores it.
    """

    def __init__(self, unet: UNet2DConditionModel, adapter: TemporalAdapter):
        super().__init__()
        adapter.check_fits(unet)
        self.unet = unet
        self.adapter = adapter
        self._num_frames: int | None = None
        self._still = False
        # Gradient checkpointing (train.gradient_checkpointing): the motion modules'
        # activations are recomputed in the backward pass instead of kept; so are the UNet's
        # blocks when its own checkpointing is on, their hooks then reading the frame count
        # of the forward pass (``_last_frames``).
        self.checkpointing = False
        self._last_frames: int | None = None
        self._hooks = [
            unet.get_submodule(site).register_forward_hook(self._hook_for(module))
            for site, module in zip(adapter.config.sites, adapter.motion_modules)
        ]

    @property
    def config(self):
        return self.unet.config

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def device(self) -> torch.device:
        return self.unet.device

    def forward(
        self,
        sample: torch.Tensor,
        timestep,
        encoder_hidden_states: torch.Tensor,
        *,
        num_frames: int | None = None,
        **unet_kwargs,
    ):
        """``sample`` is ``(B * num_frames, C, H, W)``, frames of a video contiguous; every
        other argument is the UNet's, per frame. ``num_frames=None`` takes the count set by
        an enclosing :meth:`frames` block, so code written for a UNet (``unet(sample, t,
        ...)``) runs unchanged inside one."""
        num_frames = num_frames or self._num_frames
        if num_frames is None:
            raise RuntimeError("VideoUNet needs num_frames, as an argument or from a frames() block")
        if num_frames > self.adapter.config.max_frames:
            raise SigngenError(
                f"temporal adapter handles at most {self.adapter.config.max_frames} frames at once, not {num_frames}"
            )
        with self.frames(num_frames):
            return self.unet(sample, timestep, encoder_hidden_states, **unet_kwargs)

    @contextlib.contextmanager
    def frames(self, num_frames: int) -> Iterator[None]:
        """Within this block, calls of this wrapper (and of the UNet itself) treat the batch
        as ``num_frames``-frame videos."""
        previous, self._num_frames = self._num_frames, num_frames
        try:
            yield
        finally:
            self._num_frames = previous

    @contextlib.contextmanager
    def still(self) -> Iterator[None]:
        """Within this block the UNet runs as the frame model alone, its motion modules
        skipped: for the reference pass over the still photo, which rendering computes
        before the adapter is attached."""
        previous, self._still = self._still, True
        try:
            yield
        finally:
            self._still = previous

    def detach(self) -> UNet2DConditionModel:
        """Remove the hooks and return the frame UNet, unchanged."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        return self.unet

    def _hook_for(self, module: MotionModule):
        def apply_motion(_layer, _inputs, output):
            if self._still:
                return output
            num_frames = self._num_frames
            if num_frames is None and self.checkpointing and torch.is_grad_enabled() and self._last_frames is not None:
                num_frames = self._last_frames  # a checkpointed UNet block recomputed in the backward pass
            if num_frames is None:
                raise RuntimeError("a UNet with a temporal adapter attached was called without num_frames; call it through VideoUNet")
            self._last_frames = num_frames
            if self.checkpointing and torch.is_grad_enabled():
                return _replace_hidden_states(output, lambda hidden: checkpoint(module, hidden, num_frames, use_reentrant=False))
            return _replace_hidden_states(output, lambda hidden: module(hidden, num_frames))

        return apply_motion


# Where the middle block's motion modules go (motion_sites): after each resnet but the
# first (signgen's adapters since stage 3), or after each attention, between it and the next
# resnet (AnimateDiff's UNetMidBlockCrossAttnMotion).
MID_SITES = ("resnet", "attention")


def motion_sites(unet: UNet2DConditionModel, *, levels: Sequence[int] | None = None, include_mid: bool = True,
                 mid_site: str = "resnet") -> list[str]:
    """Dotted paths of the layers after which motion modules go, in forward order.

    Down and up blocks run (resnet, attention) pairs, or resnets alone where a block has no
    attention: a module follows each pair. The mid block runs resnet, then (attention,
    resnet) pairs: with ``mid_site="resnet"`` a module follows each pair (each resnet after
    the first), with ``mid_site="attention"`` each attention, inside the pair, as
    AnimateDiff's ``UNetMidBlockCrossAttnMotion`` runs attention, motion module, resnet.
    """
    if mid_site not in MID_SITES:
        raise SigngenError(f"temporal adapter mid_site must be one of {', '.join(MID_SITES)}, not {mid_site!r}")
    num_levels = len(unet.down_blocks)
    chosen = set(range(num_levels) if levels is None else levels)
    unknown = sorted(chosen - set(range(num_levels)))
    if unknown:
        raise SigngenError(f"temporal adapter levels {unknown} do not exist: the UNet has levels 0..{num_levels - 1}")
    sites = []
    for prefix, blocks, level_of in (
        ("down_blocks", unet.down_blocks, lambda i: i),
        ("up_blocks", unet.up_blocks, lambda i: num_levels - 1 - i),
    ):
        for index, block in enumerate(blocks):
            if level_of(index) not in chosen:
                continue
            if getattr(block, "attentions", None):
                sites += [f"{prefix}.{index}.attentions.{j}" for j in range(len(block.attentions))]
            else:
                sites += [f"{prefix}.{index}.resnets.{j}" for j in range(len(block.resnets))]
    if include_mid and unet.mid_block is not None:
        if mid_site == "attention":
            sites += [f"mid_block.attentions.{j}" for j in range(len(getattr(unet.mid_block, "attentions", None) or []))]
        else:
            sites += [f"mid_block.resnets.{j}" for j in range(1, len(unet.mid_block.resnets))]
    return sites


def _output_channels(layer: nn.Module) -> int:
    if hasattr(layer, "out_channels") and isinstance(layer.out_channels, int):
        return layer.out_channels  # ResnetBlock2D, Transformer2DModel
    config = getattr(layer, "config", None)
    if config is not None and "in_channels" in config:
        return config.out_channels or config.in_channels
    raise SigngenError(f"cannot attach a motion module after a {type(layer).__name__}")


def _replace_hidden_states(output, transform):
    """Apply ``transform`` to a layer's hidden states, whatever the layer returns: a tensor
    (resnets), a one-element tuple (``return_dict=False``) or a diffusers output object."""
    if isinstance(output, torch.Tensor):
        return transform(output)
    if isinstance(output, tuple):
        return (transform(output[0]),) + tuple(output[1:])
    if isinstance(output, BaseOutput):
        output.sample = transform(output.sample)
        return output
    raise TypeError(f"unexpected layer output {type(output).__name__}")


# The weights file TemporalAdapter.save_pretrained(safe_serialization=True) writes.
ADAPTER_WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
# Where `signgen train temporal` leaves the trained adapter inside its output folder.
TRAINED_MODEL_FOLDER = "model"


def load_adapter(folder: str | os.PathLike) -> TemporalAdapter:
    """A trained adapter from ``folder``: an adapter folder, or the output folder of
    ``signgen train temporal`` (its ``model/``)."""
    folder = Path(folder)
    if (folder / TRAINED_MODEL_FOLDER / "config.json").is_file():
        folder = folder / TRAINED_MODEL_FOLDER
    config_path, weights_path = folder / "config.json", folder / ADAPTER_WEIGHTS_NAME
    if not config_path.is_file():
        raise SigngenError(f"no temporal adapter in {folder} (expected config.json and safetensors weights)")
    adapter = load_module(TemporalAdapter, config_path, weights_path)
    return adapter.eval()
