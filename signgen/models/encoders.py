"""Image encoders: a small ViT trained from scratch, or a CLIP vision tower from local weights.

Both give patch tokens (the appearance condition, read by the UNet's cross-attention) and a
global embedding (the input of the fusion module). The backbones are transformers' own
ViTModel / CLIPVisionModel, wrapped in a diffusers ModelMixin so that the whole encoder,
CLIP weights included, is saved as config.json + safetensors like every other component.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from transformers import CLIPVisionConfig, CLIPVisionModel, ViTConfig, ViTModel
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from signgen.errors import SigngenError, first_line


@dataclass
class EncoderOutput(BaseOutput):
    """tokens: (B, N, token_dim), the last hidden states (class token first);
    embedding: (B, embed_dim), a projection of the class token (CLIP: of the pooled output)."""

    tokens: torch.Tensor
    embedding: torch.Tensor


class ImageEncoder(ModelMixin, ConfigMixin):
    """Encodes (B, in_channels, H, W) images in [-1, 1] into tokens and a global embedding.

    ``backbone="vit"`` builds a transformers ViT from the size fields (no download);
    ``backbone="clip"`` builds a CLIPVisionModel from ``clip_config`` (a CLIPVisionConfig as
    a dict) — use :meth:`from_clip` to fill it with pretrained weights from a local folder.
    CLIP sees the image resized to its own square input size and normalised as in training.
    """

    @register_to_config
    def __init__(
        self,
        image_size: tuple[int, int] = (64, 52),
        in_channels: int = 3,
        embed_dim: int = 64,
        backbone: str = "vit",
        patch_size: int = 4,
        hidden_size: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        intermediate_size: int = 128,
        clip_config: dict[str, Any] | None = None,
    ):
        super().__init__()
        if backbone == "vit":
            vit_config = ViTConfig(
                image_size=tuple(image_size),
                patch_size=patch_size,
                num_channels=in_channels,
                hidden_size=hidden_size,
                num_hidden_layers=num_layers,
                num_attention_heads=num_heads,
                intermediate_size=intermediate_size,
            )
            self.transformer = ViTModel(vit_config, add_pooling_layer=False)
            width = hidden_size
        elif backbone == "clip":
            if clip_config is None:
                raise ValueError("backbone='clip' needs clip_config")
            if in_channels != 3:
                raise ValueError("a CLIP backbone reads RGB images only")
            self.transformer = CLIPVisionModel(CLIPVisionConfig(**clip_config))
            width = self.transformer.config.hidden_size
            self.register_buffer("clip_mean", torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("clip_std", torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1), persistent=False)
        else:
            raise ValueError(f"unknown encoder backbone {backbone!r}")
        self.token_dim = width
        self.projection = torch.nn.Linear(width, embed_dim)

    @classmethod
    def from_clip(cls, path: str | Path, image_size: tuple[int, int], embed_dim: int) -> "ImageEncoder":
        """An encoder whose backbone is the CLIP vision tower stored in the local folder ``path``
        (a CLIPVisionModel or full CLIPModel checkpoint); the projection head is new."""
        path = Path(path)
        if not path.is_dir():
            raise SigngenError(f"CLIP weights folder not found: {path}")
        try:
            clip = CLIPVisionModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as error:
            raise SigngenError(f"cannot load CLIP vision weights from {path}: {first_line(error)}") from None
        encoder = cls(
            image_size=tuple(image_size),
            in_channels=3,
            embed_dim=embed_dim,
            backbone="clip",
            clip_config=clip.config.to_dict(),
        )
        encoder.transformer.load_state_dict(clip.state_dict())
        return encoder

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        if self.config.backbone == "clip":
            size = self.transformer.config.image_size
            pixels = F.interpolate((images + 1) / 2, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
            output = self.transformer(pixel_values=(pixels - self.clip_mean) / self.clip_std)
            return EncoderOutput(tokens=output.last_hidden_state, embedding=self.projection(output.pooler_output))
        hidden = self.transformer(pixel_values=images).last_hidden_state
        return EncoderOutput(tokens=hidden, embedding=self.projection(hidden[:, 0]))
