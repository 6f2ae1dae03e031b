"""Stages 1 and 2 of the frame model: their objectives and their save/load.

- Stage 1, :func:`train_fusion`: image encoder, pose encoder and fusion module learn the
  fusion embedding by InfoNCE against the target image's embedding (fusion.py); with
  held-out pairs, top-1/top-5 retrieval accuracy (EMA weights) every ``eval_every`` steps.
- Stage 2, :func:`train_diffusion`: the UNet learns to denoise the target frame given the
  appearance tokens, the pose map and the fusion embedding; the stage-1 modules are frozen.
  Conditions are dropped per example to the guidance modes used at sampling.

The loop, checkpoints, log and output folder are :mod:`signgen.training.driver`'s; the
model part of a checkpoint and the final ``OUT/model`` are frame-model folders.

Datasets yield dicts of float tensors: ``source`` and ``target`` (3, H, W) in [-1, 1],
``target_pose`` (C, H, W) in [0, 1], at the model's resolution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from signgen.config import DiffusionTrainConfig, FusionTrainConfig, config_to_dict
from signgen.errors import SigngenError
from signgen.models.denoiser import denoising_target, sample_training_modes
from signgen.models.frame_model import FrameModel
from signgen.models.fusion import fusion_contrastive_loss, retrieval_hits
from signgen.training import driver
from signgen.training.latents import sample_space_pair
from signgen.training.driver import FINAL_MODEL_FOLDER, LOG_NAME, TrainResult, find_checkpoint, list_checkpoints  # noqa: F401

BATCH_KEYS = ("source", "target", "target_pose")
# The hand regions of the hand-weighted loss reach this share of the frame's height past the
# hand's bones each way: 4 pixels at 128 x 104, where a hand is about 13 pixels wide.
HAND_REGION_GROWTH = 0.03


# ------------------------------------------------------------------ objectives


class FusionObjective(torch.nn.Module):
    """Stage-1 loss over the model's encoders and fusion module (all trained)."""

    def __init__(self, model: FrameModel, source_enhancement: bool):
        super().__init__()
        self.image_encoder = model.image_encoder
        self.pose_encoder = model.pose_encoder
        self.fusion = model.fusion
        # Not a registered submodule: the objective trains only the modules above.
        self.__dict__["frame_model"] = model
        self.source_enhancement = source_enhancement

    def embed(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(fusion embedding, target embedding, source embedding), each (B, E)."""
        model = self.__dict__["frame_model"]
        source = model.encode_appearance(batch["source"]).embedding
        target = model.encode_appearance(batch["target"]).embedding
        return model.fuse(source, batch["target_pose"]), target, source

    def forward(self, batch: dict, step: int = 0) -> torch.Tensor:
        _check_batch(batch)
        fused, target, source = self.embed(batch)
        return fusion_contrastive_loss(fused, target, self.fusion.logit_scale, source if self.source_enhancement else None)


class DiffusionObjective(torch.nn.Module):
    """Stage-2 denoising loss; only the UNet is trained."""

    def __init__(self, model: FrameModel, config: DiffusionTrainConfig):
        super().__init__()
        model.require_denoiser()
        self.unet = model.unet
        # AnimateAnyone's ReferenceNet (model.reference_net: copy) trains with the denoiser.
        self.reference_unet = model.reference_unet
        self.__dict__["frame_model"] = model
        self.config = config
        if config.hand_loss_weight:
            check_hand_channels(model.pose_channels)

    def forward(self, batch: dict, step: int = 0) -> torch.Tensor:
        _check_batch(batch)
        model = self.__dict__["frame_model"]
        scheduler = model.noise_scheduler
        with torch.no_grad():
            clean, source_sample = sample_space_pair(model, batch)  # the latent cache's, where the batch has it
            if source_sample is not None:
                batch = {**batch, "source_sample": source_sample}
            appearance = model.encode_appearance(batch["source"])
            conditions = model.frame_conditions(appearance, batch["target_pose"], *v2_conditions(model, batch, appearance))
            clean = clean - model.residual_base(conditions)
        keep = sample_training_modes(len(clean), self.config.uncond_prob, self.config.appearance_only_prob, device=clean.device)
        conditions = conditions.masked(*keep)
        noise = torch.randn_like(clean)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(clean),), device=clean.device)
        noisy = scheduler.add_noise(clean, noise, timesteps)
        target = denoising_target(scheduler, clean, noise, timesteps)
        prediction = model.predict(noisy, timesteps, conditions)
        return hand_weighted_mse(prediction, target, batch["target_pose"], self.config.hand_loss_weight)


def hand_regions_of_pose_maps(pose_maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 1, h, w) float {0, 1}: the hands of pose maps (N, C, H, W) (their hand channels,
    :mod:`signgen.poses.raster`: bones and joints, grown by :data:`HAND_REGION_GROWTH` of the
    map's height each way, about the fingers' width and reach past their bones), at the
    prediction's ``size`` (h, w): a latent cell counts when any pixel it covers does."""
    from signgen.poses.raster import LEFT_HAND_CHANNEL, RIGHT_HAND_CHANNEL

    if pose_maps.dim() != 4:
        raise SigngenError(f"hand_loss_weight needs pose maps (N, C, H, W), got shape {tuple(pose_maps.shape)}")
    check_hand_channels(pose_maps.shape[1])
    hands = (pose_maps[:, [LEFT_HAND_CHANNEL, RIGHT_HAND_CHANNEL]] > 0).amax(dim=1, keepdim=True).float()
    grow = max(1, round(HAND_REGION_GROWTH * pose_maps.shape[-2]))
    hands = F.max_pool2d(hands, 2 * grow + 1, stride=1, padding=grow)
    return F.adaptive_max_pool2d(hands, tuple(size))


def check_hand_channels(pose_channels: int) -> None:
    """One line, before any training, when pose maps of ``pose_channels`` lack the hand channels."""
    from signgen.poses.raster import LEFT_HAND_CHANNEL, RIGHT_HAND_CHANNEL

    if pose_channels <= max(LEFT_HAND_CHANNEL, RIGHT_HAND_CHANNEL):
        raise SigngenError(f"hand_loss_weight needs pose maps with their hand channels; these have {pose_channels} channels")


def hand_weighted_mse(prediction: torch.Tensor, target: torch.Tensor, pose_maps: torch.Tensor, hand_weight: float) -> torch.Tensor:
    """The denoising MSE with every element inside the target's hand regions weighted
    ``1 + hand_weight`` (:func:`hand_regions_of_pose_maps`; MimicMotion weights hand regions
    up the same way); plain MSE for 0. ``pose_maps`` (N, C, H, W), one per prediction."""
    if not hand_weight:
        return F.mse_loss(prediction.float(), target.float())
    weight = 1.0 + hand_weight * hand_regions_of_pose_maps(pose_maps.float(), prediction.shape[-2:])
    return (weight * (prediction.float() - target.float()) ** 2).mean()


def v2_conditions(model: FrameModel, batch: dict, appearance, rows: torch.Tensor | None = None) -> tuple:
    """The coarse-image channels and the reference state of a batch of pairs (``coarse``,
    ``uncovered``: one per target; ``source``: the photos), for the frame models that read
    them (None otherwise). ``rows`` gives each target's photo (default: one photo per
    target). With the denoiser's own weights writing it, the reference bank is computed
    without a graph: the denoiser learns to read it. A trainable reference UNet of its own
    (``model.reference_net: copy``) writes it with a graph, and learns through it."""
    coarse = reference = None
    if model.coarse_image:
        if batch.get("coarse") is None or batch.get("uncovered") is None:
            raise SigngenError("this frame model reads coarse images: build the training items with coarse_image=True")
        coarse = model.coarse_condition(batch["coarse"], batch["uncovered"])
    if model.reference_attention:
        writer = model.reference_unet
        learns = writer is not None and writer.training and any(p.requires_grad for p in writer.parameters())
        with torch.set_grad_enabled(learns or torch.is_grad_enabled()):
            reference = model.reference_features(batch["source"], appearance, batch.get("source_sample"))
        reference.rows = torch.arange(len(batch["source"]), device=batch["source"].device) if rows is None else rows
    return coarse, reference


# ---------------------------------------------------------------------- stages


def train_fusion(
    model: FrameModel,
    dataset: Dataset,
    out_dir: str | Path,
    config: FusionTrainConfig,
    *,
    eval_dataset: Dataset | None = None,
    resume: bool | str | Path = False,
    progress: bool = True,
    run_config: Any = None,
) -> TrainResult:
    """Stage 1. Writes ``out_dir/model`` (a frame-model folder without denoiser). With an
    ``eval_dataset`` of held-out pairs, top-1/top-5 retrieval accuracy is logged every
    ``config.eval_every`` steps and at the end. ``run_config`` (the whole FrameConfig)
    is saved as ``out_dir/config.yaml``; without it, ``{"train_fusion": config}``."""
    objective = FusionObjective(model, config.source_enhancement)
    stage = _frame_stage("fusion", model, objective)
    if eval_dataset is not None:
        stage.evaluate = lambda: evaluate_fusion(model, eval_dataset, config.eval_batch_size)
        stage.eval_every = config.eval_every
    run_config = run_config if run_config is not None else {"train_fusion": config_to_dict(config)}
    return driver.train(stage, dataset, out_dir, config, run_config, resume=resume, progress=progress)


def train_diffusion(
    model: FrameModel,
    dataset: Dataset,
    out_dir: str | Path,
    config: DiffusionTrainConfig,
    *,
    resume: bool | str | Path = False,
    progress: bool = True,
    run_config: Any = None,
) -> TrainResult:
    """Stage 2. ``model`` holds trained stage-1 modules (frozen here) and a denoiser, new
    (:meth:`FrameModel.attach_denoiser`) or trained already (fine-tuning). Writes
    ``out_dir/model``; ``run_config`` as for :func:`train_fusion`."""
    for module in (model.image_encoder, model.pose_encoder, model.fusion):
        module.requires_grad_(False).eval()
    if config.gradient_checkpointing:
        for unet in (model.unet, model.reference_unet):
            if unet is not None:
                unet.enable_gradient_checkpointing()
    objective = DiffusionObjective(model, config)
    run_config = run_config if run_config is not None else {"train_diffusion": config_to_dict(config)}
    return driver.train(_frame_stage("diffusion", model, objective), dataset, out_dir, config, run_config, resume=resume, progress=progress)


def _frame_stage(name: str, model: FrameModel, objective: torch.nn.Module) -> driver.Stage:
    """The driver's view of a frame-model stage: the objective's trainable parameters,
    the frame-model folder as the model part."""

    def load_model(folder: Path) -> None:
        saved = FrameModel.from_pretrained(folder).components()
        for component, module in model.components().items():
            if component in saved:
                module.load_state_dict(saved[component].state_dict())

    return driver.Stage(
        name=name,
        objective=objective,
        parameters=[p for p in objective.parameters() if p.requires_grad],
        modules=[model],
        save_model=model.save_pretrained,
        load_model=load_model,
        items="pairs",
        unused_parameters=model.reference_unet is not None,
    )


@torch.no_grad()
def evaluate_fusion(model: FrameModel, dataset: Dataset, batch_size: int) -> dict:
    """Top-1 / top-5 accuracy of retrieving each pair's target among the targets of its
    batch (``batch_size`` held-out pairs in a fixed random order) from the fusion embedding."""
    objective = FusionObjective(model, source_enhancement=False)
    was_training = model.training
    model.eval()
    device = next(model.fusion.parameters()).device
    hits, total = {1: 0, 5: 0}, 0
    # A fixed shuffle: consecutive pairs come from one video, near-identical frames whose
    # retrieval among each other would say little; mixed batches are FPDM's protocol.
    order = torch.Generator().manual_seed(0)
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=order):
        if len(batch["source"]) < 2:
            continue
        fused, target, _ = objective.embed({key: batch[key].to(device) for key in BATCH_KEYS})
        for k, count in retrieval_hits(fused, target, ks=(1, 5)).items():
            hits[k] += count
        total += len(fused)
    model.train(was_training)
    if total == 0:
        raise SigngenError("the evaluation set needs at least 2 pairs")
    return {"eval_top1": hits[1] / total, "eval_top5": hits[5] / total, "eval_pairs": total, "eval_batch_size": batch_size}


def _check_batch(batch) -> None:
    if not isinstance(batch, dict) or any(key not in batch for key in BATCH_KEYS):
        got = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise SigngenError(f"training items must be dicts with keys {', '.join(BATCH_KEYS)}; got {got}")
