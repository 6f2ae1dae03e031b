"""Tiny models for the temporal-adapter tests (tests/test_temporal.py, tests/test_windows.py)."""

from __future__ import annotations

from pathlib import Path

import torch

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
TINY_VIT = "{backbone: vit, clip_path: null, patch_size: 8, hidden_size: 16, num_layers: 1, num_heads: 2, intermediate_size: 16}"
# frame-tiny.yaml shrunk further: 16 x 16 pixels, two UNet levels (one with cross-attention).
TINY_FRAME_OVERRIDES = [
    "model.resolution=[16, 16]",
    "model.unet.block_out_channels=[16, 32]",
    "model.unet.down_block_types=[DownBlock2D, CrossAttnDownBlock2D]",
    "model.unet.up_block_types=[CrossAttnUpBlock2D, UpBlock2D]",
    "model.unet.cross_attention_dim=16",
    "model.unet.attention_head_dim=2",
    f"model.encoder={TINY_VIT}",
    f"model.pose_encoder={TINY_VIT}",
    "model.fusion.embed_dim=8",
    "model.fusion.hidden_dim=8",
]
ADAPTER_OPTIONS = {"num_attention_heads": 2, "norm_num_groups": 8, "max_frames": 16}


def tiny_frame_model(seed: int = 0):
    """An untrained frame model whose pose path is switched on (the zero-initialised pose
    channels of conv_in get random weights), so that every condition matters."""
    from signgen.config import load_frame_config
    from signgen.models.frame_model import FrameModel

    torch.manual_seed(seed)
    model = FrameModel.from_config(load_frame_config(CONFIGS / "frame-tiny.yaml", TINY_FRAME_OVERRIDES).model)
    with torch.no_grad():
        model.unet.conv_in.weight.normal_(0, 0.1)
    return model.eval()


def randomize_(module: torch.nn.Module, seed: int = 1, std: float = 0.05) -> torch.nn.Module:
    """Move every weight of ``module`` by random noise (a stand-in for a trained adapter:
    the zero-initialised output projections become non-zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * std)
    return module
