"""Every frame's conditions of a video, computed once before denoising."""

from __future__ import annotations

import torch

from signgen.errors import SigngenError
from signgen.models.denoiser import FrameConditions
from signgen.models.encoders import EncoderOutput
from signgen.models.frame_model import FrameModel
from signgen.models.reference import ReferenceState


@torch.no_grad()
def video_conditions(model: FrameModel, appearance: EncoderOutput, pose_maps: torch.Tensor,
                     coarse: tuple[torch.Tensor, torch.Tensor] | None = None, reference: ReferenceState | None = None,
                     batch_size: int = 16) -> FrameConditions:
    """The conditions of every frame on the model's device, ``batch_size`` frames at a time:
    the pose maps (T, C, H, W) in [0, 1] with the fusion embedding of each, the photo's
    ``appearance`` tokens (:meth:`FrameModel.encode_appearance`) repeated, and for v2 models
    the ``coarse`` images (T, 3, H, W) in [-1, 1] with their uncovered masks (T, 1, H, W)
    (:func:`signgen.pipelines.signer.coarse_images`) and the photo's ``reference`` features."""
    model.require_denoiser()
    if pose_maps.dim() != 4:
        raise SigngenError(f"pose maps must have shape (frames, channels, H, W), got {tuple(pose_maps.shape)}")
    if model.coarse_image and coarse is None:
        raise SigngenError("this frame model draws from the photo warped to each pose: it needs the photo's pose")
    if coarse is not None and (len(coarse[0]) != len(pose_maps) or len(coarse[1]) != len(pose_maps)):
        raise SigngenError(f"{len(coarse[0])} coarse images for {len(pose_maps)} pose maps")
    device, dtype = model.unet.device, model.unet.dtype
    pose_maps = pose_maps.to(device=device, dtype=dtype)
    chunks = []
    for start in range(0, len(pose_maps), batch_size):
        window = slice(start, start + batch_size)
        coarse_channels = None
        if model.coarse_image:
            coarse_channels = model.coarse_condition(coarse[0][window].to(device, dtype), coarse[1][window].to(device, dtype))
        chunks.append(model.frame_conditions(appearance, pose_maps[window], coarse_channels, reference))
    joined = {}
    for name in ("pose_maps", "appearance_tokens", "fusion_embedding", "coarse"):
        parts = [getattr(chunk, name) for chunk in chunks]
        joined[name] = None if parts[0] is None else torch.cat(parts)
    rows = None
    if chunks[0].reference is not None:
        rows = ReferenceState("read", chunks[0].reference.bank, torch.cat([chunk.reference.rows for chunk in chunks]))
    return FrameConditions(**joined, reference=rows)
