"""Stage 2: the fusion-conditioned denoiser, a diffusers ``UNet2DConditionModel``.

How each condition enters (FPDM's recipe on a plain diffusers UNet):

- pose map -> extra input channels concatenated to the noisy sample. Their ``conv_in``
  weights start at zero, so an untrained pose path leaves the network exactly as without
  it. Input concatenation (rather than adapter residuals) keeps the UNet a stock
  ``UNet2DConditionModel`` that diffusers' ``UNetMotionModel.from_unet2d`` accepts for the
  temporal stage;
- appearance tokens -> cross-attention (``encoder_hidden_states``), through diffusers'
  ``encoder_hid_proj`` when the encoder width differs from ``cross_attention_dim`` (and
  always, zero-initialised, on a pretrained UNet: ``signgen.models.pretrained``);
- fusion embedding -> ``class_embed_type="projection"``: projected and added to the
  timestep embedding;
- coarse image (v2) -> the photo warped to the target pose (``signgen.poses.warp``) in the
  sample space, plus its uncovered-pixel mask: more input channels, zero-initialised like
  the pose map's;
- reference features (v2) -> the source's own self-attention inputs joined to every
  self-attention's keys and values (``signgen.models.reference``).

With ``patch_size`` p > 1 the UNet runs at 1/p of the resolution: sample and pose map are
each folded (``pixel_unshuffle``) into p^2 times the channels, and the prediction unfolded
again, so that schedulers, guidance and the temporal stage still see full-size pixels.

Every condition is per example along the batch axis, so a video's frames are a batch and
a temporal model can fold clips as (batch * frames). A dropped condition is zeros, in
training (condition dropout) and in classifier-free guidance alike.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel

from signgen.config import UNetConfig
from signgen.errors import SigngenError
from signgen.models.reference import KWARG as REFERENCE_KWARG
from signgen.models.reference import ReferenceState, install_reference_attention

# Guidance modes: which conditions each keeps (appearance tokens, pose map, fusion
# embedding, coarse image, reference features). The coarse image shows the target pose, so
# it goes with the pose; the reference is appearance.
GUIDANCE_MODES = {
    "uncond": (False, False, False, False, False),
    "appearance": (True, False, False, False, True),
    "full": (True, True, True, True, True),
}


def build_unet(
    config: UNetConfig,
    *,
    sample_size: tuple[int, int],
    sample_channels: int,
    pose_channels: int,
    token_dim: int,
    fusion_dim: int | None,
    coarse_channels: int = 0,
    reference_attention: bool = False,
) -> UNet2DConditionModel:
    """The one place where the denoiser's UNet is built: ``sample_channels`` of noisy sample
    plus ``pose_channels`` of pose map plus ``coarse_channels`` of coarse image and mask in,
    ``sample_channels`` of prediction out. ``fusion_dim=None`` builds the ablation without
    the fusion embedding; ``reference_attention`` installs the reference path. (A UNet
    started from pretrained weights: ``signgen.models.pretrained.pretrained_unet``.)"""
    inputs = unet_inputs(config, sample_size=sample_size, sample_channels=sample_channels, pose_channels=pose_channels,
                         token_dim=token_dim, fusion_dim=fusion_dim, coarse_channels=coarse_channels)
    unet = UNet2DConditionModel(
        down_block_types=tuple(config.down_block_types),
        up_block_types=tuple(config.up_block_types),
        mid_block_type=config.mid_block_type,
        block_out_channels=tuple(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        attention_head_dim=config.attention_head_dim,
        cross_attention_dim=config.cross_attention_dim,
        norm_num_groups=config.norm_num_groups,
        transformer_layers_per_block=config.transformer_layers_per_block,
        **inputs,
    )
    zero_pose_input(unet, inputs["out_channels"])
    if reference_attention:
        install_reference_attention(unet)
    return unet


def unet_inputs(
    config: UNetConfig,
    *,
    sample_size: tuple[int, int],
    sample_channels: int,
    pose_channels: int,
    token_dim: int,
    fusion_dim: int | None,
    coarse_channels: int = 0,
) -> dict:
    """The ``UNet2DConditionModel`` arguments that signgen's conditions decide (sizes,
    input and output channels, token projection, fusion embedding), whatever the UNet's
    widths: shared by a new UNet and one started from pretrained weights."""
    patch = config.patch_size
    factor = patch * 2 ** (len(config.block_out_channels) - 1)
    if any(side % factor for side in sample_size):
        raise SigngenError(f"the denoised sample is {sample_size[0]}x{sample_size[1]}; patch size {patch} and "
                           f"{len(config.block_out_channels)} UNet levels need sides divisible by {factor}")
    return {
        "sample_size": [side // patch for side in sample_size],
        "in_channels": (sample_channels + pose_channels + coarse_channels) * patch**2,
        "out_channels": sample_channels * patch**2,
        "encoder_hid_dim": None if token_dim == config.cross_attention_dim else token_dim,
        "class_embed_type": None if fusion_dim is None else "projection",
        "projection_class_embeddings_input_dim": fusion_dim,
    }


def zero_pose_input(unet: UNet2DConditionModel, sample_channels: int) -> None:
    """Zero the ``conv_in`` weights that read the conditions (all channels after the first
    ``sample_channels``: pose map, coarse image and its mask)."""
    with torch.no_grad():
        unet.conv_in.weight[:, sample_channels:].zero_()


@dataclass
class FrameConditions:
    """Per-example conditions, batch first: pose maps (B, C, H, W) in [0, 1] at image or
    sample resolution, appearance tokens (B, N, D), fusion embedding (B, E) or None when the
    model has no fusion embedding; for v2 models the coarse image and its mask in the
    sample space (B, c + 1, h, w) and the reference state (its rows index the bank)."""

    pose_maps: torch.Tensor
    appearance_tokens: torch.Tensor
    fusion_embedding: torch.Tensor | None
    coarse: torch.Tensor | None = None
    reference: ReferenceState | None = None

    def __len__(self) -> int:
        return len(self.pose_maps)

    def masked(self, appearance: torch.Tensor, pose: torch.Tensor, fusion: torch.Tensor,
               coarse: torch.Tensor | None = None, reference: torch.Tensor | None = None) -> "FrameConditions":
        """Zero each condition where its (B,) boolean keep-mask is False (a dropped
        reference is masked out of the attention); ``coarse`` follows ``pose`` and
        ``reference`` follows ``appearance`` unless given."""

        def keep(tensor: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor | None:
            if tensor is None:
                return None
            return tensor * mask.to(tensor.dtype).view(-1, *([1] * (tensor.dim() - 1)))

        coarse = pose if coarse is None else coarse
        reference = appearance if reference is None else reference
        return FrameConditions(
            pose_maps=keep(self.pose_maps, pose),
            appearance_tokens=keep(self.appearance_tokens, appearance),
            fusion_embedding=keep(self.fusion_embedding, fusion),
            coarse=keep(self.coarse, coarse),
            reference=None if self.reference is None else self.reference.masked(reference.to(self.reference.rows.device)),
        )

    def select(self, index: torch.Tensor) -> "FrameConditions":
        """The conditions of the rows ``index`` (rows may repeat)."""
        return FrameConditions(
            pose_maps=self.pose_maps[index],
            appearance_tokens=self.appearance_tokens[index],
            fusion_embedding=None if self.fusion_embedding is None else self.fusion_embedding[index],
            coarse=None if self.coarse is None else self.coarse[index],
            reference=None if self.reference is None else self.reference.select(index),
        )

    def in_modes(self, modes: list[str]) -> "FrameConditions":
        """The conditions repeated once per guidance mode, concatenated along the batch:
        the input of one batched guidance call."""
        batch = len(self)
        parts = []
        for mode in modes:
            flags = [torch.full((batch,), flag, dtype=torch.bool, device=self.pose_maps.device) for flag in GUIDANCE_MODES[mode]]
            parts.append(self.masked(*flags))

        def joined(name: str):
            values = [getattr(part, name) for part in parts]
            if values[0] is None:
                return None
            return ReferenceState.concat(values) if name == "reference" else torch.cat(values)

        return FrameConditions(**{field.name: joined(field.name) for field in dataclasses.fields(FrameConditions)})


def sample_training_modes(batch_size: int, uncond_prob: float, appearance_only_prob: float, device=None):
    """Condition dropout for guidance: per example, keep-masks (appearance, pose, fusion,
    coarse, reference) drawn so that a fraction ``uncond_prob`` sees no condition and
    ``appearance_only_prob`` sees the appearance alone, exactly the modes that guidance
    combines at sampling."""
    draw = torch.rand(batch_size, device=device)
    uncond = draw < uncond_prob
    appearance_only = (draw >= uncond_prob) & (draw < uncond_prob + appearance_only_prob)
    full = ~(uncond | appearance_only)
    return ~uncond, full, full, full, ~uncond


def predict(unet: UNet2DConditionModel, sample: torch.Tensor, timesteps: torch.Tensor, conditions: FrameConditions,
            patch_size: int = 1) -> torch.Tensor:
    """The UNet's prediction (noise or velocity) for ``sample`` under ``conditions``;
    ``patch_size`` as the UNet was built with (:func:`build_unet`)."""
    pose = conditions.pose_maps.to(sample.dtype)
    if pose.shape[-2:] != sample.shape[-2:]:
        pose = F.interpolate(pose, size=sample.shape[-2:], mode="area")
    inputs = [sample, pose]
    if conditions.coarse is not None:
        inputs.append(conditions.coarse.to(sample.dtype))
    if patch_size > 1:
        inputs = [F.pixel_unshuffle(part, patch_size) for part in inputs]
    output = unet(
        torch.cat(inputs, dim=1),
        timesteps,
        encoder_hidden_states=conditions.appearance_tokens,
        class_labels=conditions.fusion_embedding,
        cross_attention_kwargs=None if conditions.reference is None else {REFERENCE_KWARG: conditions.reference},
    ).sample
    return F.pixel_shuffle(output, patch_size) if patch_size > 1 else output


def denoising_target(schedule, clean: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the denoiser learns to output for ``clean`` noised with ``noise`` at ``timesteps``
    under the training ``schedule``'s prediction type: the noise, the velocity or the clean
    sample."""
    kind = schedule.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return schedule.get_velocity(clean, noise, timesteps)
    if kind == "sample":
        return clean
    raise SigngenError(f"unknown prediction type {kind!r}")
