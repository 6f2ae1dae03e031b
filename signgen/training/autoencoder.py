"""The autoencoder a small frame model denoises in (``signgen train autoencoder``).

A diffusers :class:`~diffusers.AutoencoderKL` learns to reconstruct a corpus' frames at a
frame model's resolution: L1 + MSE on the pixels plus a small KL term, as Stable
Diffusion's VAE was trained (without its adversarial and perceptual terms: no LPIPS
network ships offline). ``OUT/model`` is a diffusers VAE folder whose
``scaling_factor`` is set, after training, to make the latents of the training frames
unit-variance: ``model.latent.vae_path`` of a frame config takes it as it takes a Stable
Diffusion VAE. The loop, checkpoints and log are :mod:`signgen.training.driver`'s.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from torch.utils.data import DataLoader, Dataset

from signgen.atomic import atomic_output
from signgen.config import AutoencoderConfig, AutoencoderModelConfig, AutoencoderTrainConfig
from signgen.errors import SigngenError
from signgen.models.loading import load_module
from signgen.training import driver

# Frames whose latents set the scaling factor.
SCALING_FRAMES = 256


def build_autoencoder(config: AutoencoderModelConfig) -> AutoencoderKL:
    """A new, untrained AutoencoderKL of ``config``'s shape (3-channel images in [-1, 1])."""
    levels = len(config.block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        latent_channels=config.latent_channels,
        norm_num_groups=config.norm_num_groups,
        sample_size=max(config.resolution),
    )


class AutoencoderObjective(torch.nn.Module):
    """Reconstruction loss of a batch's ``target`` frames (B, 3, H, W) in [-1, 1]."""

    def __init__(self, vae: AutoencoderKL, kl_weight: float):
        super().__init__()
        self.vae = vae
        self.kl_weight = kl_weight

    def forward(self, batch: dict, step: int = 0) -> torch.Tensor:
        if not isinstance(batch, dict) or "target" not in batch:
            raise SigngenError("autoencoder training items must be dicts with the key 'target'")
        images = batch["target"]
        posterior = self.vae.encode(images).latent_dist
        reconstruction = self.vae.decode(posterior.sample()).sample
        loss = F.l1_loss(reconstruction, images) + F.mse_loss(reconstruction, images)
        return loss + self.kl_weight * posterior.kl().mean() / images[0].numel()


@torch.no_grad()
def latent_scaling_factor(vae: AutoencoderKL, dataset: Dataset, frames: int = SCALING_FRAMES) -> float:
    """1 / the standard deviation of the latent means of the first ``frames`` frames of a
    fixed shuffle of ``dataset`` (Stable Diffusion's 0.18215 was found the same way)."""
    order = torch.Generator().manual_seed(0)
    latents = []
    seen = 0
    for batch in DataLoader(dataset, batch_size=32, shuffle=True, generator=order):
        images = batch["target"].to(vae.device, vae.dtype)
        latents.append(vae.encode(images).latent_dist.mode().float().cpu())
        seen += len(images)
        if seen >= frames:
            break
    std = torch.cat(latents).std().item()
    if not std > 0:
        raise SigngenError("the autoencoder's latents are constant: its training failed")
    return 1.0 / std


def train_autoencoder(
    vae: AutoencoderKL,
    dataset: Dataset,
    out_dir: str | Path,
    config: AutoencoderConfig,
    *,
    resume: bool | str | Path = False,
    progress: bool = True,
    scaling_frames: Dataset | None = None,
) -> driver.TrainResult:
    """Train ``vae`` on the ``target`` frames of ``dataset`` into ``out_dir``; ``OUT/model``
    (EMA weights when EMA is on) then gets its latent scaling factor, measured on
    ``scaling_frames`` (default ``dataset``; pass the frames without colour augmentation).
    Checkpoints' ``model/`` folders keep the default factor: use ``OUT/model``."""
    train: AutoencoderTrainConfig = config.train

    def load(folder: Path) -> AutoencoderKL:
        return load_module(AutoencoderKL, folder / "config.json", folder / "diffusion_pytorch_model.safetensors")

    def load_model(folder: Path) -> None:
        vae.load_state_dict(load(folder).state_dict())

    stage = driver.Stage(
        name="autoencoder",
        objective=AutoencoderObjective(vae, train.kl_weight),
        parameters=list(vae.parameters()),
        modules=[vae],
        save_model=lambda folder: vae.save_pretrained(folder, safe_serialization=True),
        load_model=load_model,
        items="frames",
    )
    result = driver.train(stage, dataset, out_dir, train, config, resume=resume, progress=progress)
    final = load(result.model_folder).eval()
    final.register_to_config(scaling_factor=latent_scaling_factor(final, scaling_frames or dataset))
    with atomic_output(result.model_folder / "config.json") as path:  # the weights stay as saved
        path.write_text(final.to_json_string(), encoding="utf-8")
    return result
