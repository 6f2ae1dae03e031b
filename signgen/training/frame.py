"""Training loops of the frame model, on accelerate (one CPU, one GPU or several).

- Stage 1, :func:`train_fusion`: image encoder, pose encoder and fusion module learn the
  fusion embedding by InfoNCE against the target image's embedding (fusion.py).
- Stage 2, :func:`train_diffusion`: the UNet learns to denoise the target frame given the
  appearance tokens, the pose map and the fusion embedding; the stage-1 modules are frozen.
  Conditions are dropped per example to the guidance modes used at sampling.

Both loops share one driver: AdamW with a diffusers learning-rate schedule, EMA weights
(diffusers ``EMAModel``), a tqdm bar, the loss appended to ``OUT/log.jsonl``, a checkpoint
every N steps under ``OUT/checkpoints/step-NNNNNNN/`` (the last few kept) and ``resume``
from the latest one. The final model (EMA weights) is the frame-model folder ``OUT/model``.

A checkpoint holds no pickle (:mod:`signgen.training.checkpoints`): the model is the frame-model
folder ``model/``, optimizer and EMA tensors are safetensors, everything else (optimizer
hyper-parameters, LR-schedule state, step, stage) JSON.

Datasets yield dicts of float tensors: ``source`` and ``target`` (3, H, W) in [-1, 1],
``target_pose`` (C, H, W) in [0, 1], at the model's resolution.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from signgen.training import checkpoints
from signgen.config import DiffusionTrainConfig, FusionTrainConfig, TrainConfig
from signgen.models.denoiser import sample_training_modes
from signgen.errors import SigngenError
from signgen.models.frame_model import FrameModel
from signgen.models.fusion import fusion_contrastive_loss, retrieval_hits

LOG_NAME = "log.jsonl"
CHECKPOINTS_FOLDER = "checkpoints"
FINAL_MODEL_FOLDER = "model"
BATCH_KEYS = ("source", "target", "target_pose")


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

    def forward(self, batch: dict) -> torch.Tensor:
        fused, target, source = self.embed(batch)
        return fusion_contrastive_loss(fused, target, self.fusion.logit_scale, source if self.source_enhancement else None)


class DiffusionObjective(torch.nn.Module):
    """Stage-2 denoising loss; only the UNet is trained."""

    def __init__(self, model: FrameModel, config: DiffusionTrainConfig):
        super().__init__()
        model._require_denoiser()
        self.unet = model.unet
        self.__dict__["frame_model"] = model
        self.config = config

    def forward(self, batch: dict) -> torch.Tensor:
        model = self.__dict__["frame_model"]
        scheduler = model.noise_scheduler
        with torch.no_grad():
            clean = model.to_sample_space(batch["target"])
            appearance = model.encode_appearance(batch["source"])
            conditions = model.frame_conditions(appearance, batch["target_pose"])
        keep = sample_training_modes(len(clean), self.config.uncond_prob, self.config.appearance_only_prob, device=clean.device)
        conditions = conditions.masked(*keep)
        noise = torch.randn_like(clean)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(clean),), device=clean.device)
        noisy = scheduler.add_noise(clean, noise, timesteps)
        if scheduler.config.prediction_type == "v_prediction":
            target = scheduler.get_velocity(clean, noise, timesteps)
        else:
            target = noise
        prediction = model.predict(noisy, timesteps, conditions)
        return F.mse_loss(prediction.float(), target.float())


# ---------------------------------------------------------------------- stages


@dataclass
class TrainResult:
    model_folder: Path
    steps: int
    last_loss: float | None


def train_fusion(
    model: FrameModel,
    dataset: Dataset,
    out_dir: str | Path,
    config: FusionTrainConfig,
    *,
    eval_dataset: Dataset | None = None,
    resume: bool | str | Path = False,
    progress: bool = True,
) -> TrainResult:
    """Stage 1. Writes ``out_dir/model`` (a frame-model folder without denoiser). With an
    ``eval_dataset`` of held-out pairs, top-1/top-5 retrieval accuracy is logged every
    ``config.eval_every`` steps and at the end."""
    objective = FusionObjective(model, config.source_enhancement)
    evaluate = None
    if eval_dataset is not None:

        def evaluate() -> dict:
            return evaluate_fusion(model, eval_dataset, config.eval_batch_size)

    return _train("fusion", model, objective, dataset, Path(out_dir), config, resume, progress, evaluate, config.eval_every)


def train_diffusion(
    model: FrameModel,
    dataset: Dataset,
    out_dir: str | Path,
    config: DiffusionTrainConfig,
    *,
    resume: bool | str | Path = False,
    progress: bool = True,
) -> TrainResult:
    """Stage 2. ``model`` holds trained stage-1 modules (frozen here) and a denoiser
    (:meth:`FrameModel.attach_denoiser`). Writes ``out_dir/model``."""
    for module in (model.image_encoder, model.pose_encoder, model.fusion):
        module.requires_grad_(False).eval()
    objective = DiffusionObjective(model, config)
    return _train("diffusion", model, objective, dataset, Path(out_dir), config, resume, progress, None, 0)


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


# ---------------------------------------------------------------------- driver


class EpochShuffleSampler(Sampler[int]):
    """A fresh permutation per epoch from (seed, epoch): a resumed run sees the same order."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        yield from torch.randperm(self.size, generator=generator).tolist()

    def __len__(self) -> int:
        return self.size


def find_checkpoint(out_dir: Path, resume: bool | str | Path) -> Path | None:
    """The checkpoint folder to resume from: ``resume=True`` takes the latest under
    ``out_dir/checkpoints``, a path names one; False starts fresh and refuses an ``out_dir``
    that already holds checkpoints."""
    return checkpoints.checkpoint_to_resume(Path(out_dir) / CHECKPOINTS_FOLDER, resume)


def list_checkpoints(out_dir: Path) -> list[Path]:
    """The complete checkpoints of the run in ``out_dir``, oldest first."""
    return checkpoints.list_checkpoints(Path(out_dir) / CHECKPOINTS_FOLDER)


def _train(
    stage: str,
    model: FrameModel,
    objective: torch.nn.Module,
    dataset: Dataset,
    out_dir: Path,
    config: TrainConfig,
    resume: bool | str | Path,
    progress: bool,
    evaluate: Callable[[], dict] | None,
    eval_every: int,
) -> TrainResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = find_checkpoint(out_dir, resume)
    if len(dataset) < config.batch_size:
        raise SigngenError(f"the training set has {len(dataset)} pairs, fewer than batch_size {config.batch_size}")
    try:
        accelerator = Accelerator(mixed_precision=config.mixed_precision, gradient_accumulation_steps=config.gradient_accumulation_steps)
    except ValueError as error:
        raise SigngenError(f"cannot train with mixed_precision={config.mixed_precision!r} here: {error}") from None
    set_seed(config.seed)
    model.to(accelerator.device)
    objective.train()
    parameters = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    lr_scheduler = get_scheduler(
        config.lr_schedule,
        optimizer,
        num_warmup_steps=config.warmup_steps * accelerator.num_processes,
        num_training_steps=config.max_steps * accelerator.num_processes,
    )
    sampler = EpochShuffleSampler(len(dataset), config.seed)
    # The loader's own generator seeds its workers; without it every new epoch iterator
    # would draw from the global RNG, and a resumed run would see other noise.
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=config.num_workers,
        generator=torch.Generator().manual_seed(config.seed),
    )
    prepared, optimizer, loader, lr_scheduler = accelerator.prepare(objective, optimizer, loader, lr_scheduler)
    ema = EMAModel(parameters, decay=config.ema_decay, use_ema_warmup=True, power=3 / 4) if config.ema_decay > 0 else None

    step = 0
    if checkpoint is not None:
        step = _load_checkpoint(checkpoint, model, optimizer, lr_scheduler, ema)
        accelerator.print(f"resuming {stage} training from {checkpoint} (step {step})")
        if accelerator.is_main_process:
            checkpoints.truncate_log(out_dir / LOG_NAME, step)
    batches_per_epoch = len(loader)
    if batches_per_epoch < config.gradient_accumulation_steps:
        raise SigngenError("an epoch holds fewer batches than gradient_accumulation_steps")
    epoch, skip_batches = divmod(step * config.gradient_accumulation_steps, batches_per_epoch)

    log_path = out_dir / LOG_NAME
    started = time.monotonic()
    window: list[torch.Tensor] = []
    last_loss = None
    bar = tqdm(total=config.max_steps, initial=step, desc=f"train {stage}", unit="step", disable=not (progress and accelerator.is_main_process))
    while step < config.max_steps:
        sampler.set_epoch(epoch)
        loader.set_epoch(epoch)
        epoch_loader = accelerator.skip_first_batches(loader, skip_batches) if skip_batches else loader
        skip_batches = 0
        for batch in epoch_loader:
            _check_batch(batch)
            with accelerator.accumulate(prepared):
                loss = prepared(batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(parameters, config.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            if not math.isfinite(loss.item()):
                raise SigngenError(f"{stage} loss became {loss.item()} at step {step + 1}; lower the learning rate")
            window.append(loss.detach())
            if not accelerator.sync_gradients:
                continue
            step += 1
            if ema is not None:
                ema.step(parameters)
            bar.update(1)
            if step % config.log_every == 0 or step == config.max_steps:
                last_loss = accelerator.reduce(torch.stack(window).mean(), "mean").item()
                window = []
                bar.set_postfix(loss=f"{last_loss:.4f}")
                _log(accelerator, log_path, {"stage": stage, "step": step, "loss": last_loss, "lr": lr_scheduler.get_last_lr()[0], "elapsed_s": round(time.monotonic() - started, 1)})
            if evaluate is not None and (step % eval_every == 0 or step == config.max_steps):
                with _ema_weights(ema, parameters):
                    metrics = evaluate() if accelerator.is_main_process else {}
                if metrics:
                    _log(accelerator, log_path, {"stage": stage, "step": step, **metrics})
                    bar.set_postfix(loss=f"{last_loss:.4f}" if last_loss is not None else "-", top1=f"{metrics['eval_top1']:.2f}")
            if step % config.checkpoint_every == 0 or step == config.max_steps:
                _save_checkpoint(accelerator, out_dir, step, stage, model, optimizer, lr_scheduler, ema, config.checkpoints_keep)
            if step >= config.max_steps:
                break
        epoch += 1
    bar.close()

    final = out_dir / FINAL_MODEL_FOLDER
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with _ema_weights(ema, parameters):
            model.save_pretrained(final)
    accelerator.end_training()
    return TrainResult(model_folder=final, steps=step, last_loss=last_loss)


def _check_batch(batch) -> None:
    if not isinstance(batch, dict) or any(key not in batch for key in BATCH_KEYS):
        got = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise SigngenError(f"training items must be dicts with keys {', '.join(BATCH_KEYS)}; got {got}")


class _ema_weights:
    """Context: the EMA weights swapped into ``parameters`` (no-op without EMA)."""

    def __init__(self, ema: EMAModel | None, parameters: list[torch.nn.Parameter]):
        self.ema, self.parameters = ema, parameters

    def __enter__(self):
        if self.ema is not None:
            self.ema.store(self.parameters)
            self.ema.copy_to(self.parameters)

    def __exit__(self, *exc):
        if self.ema is not None:
            self.ema.restore(self.parameters)


def _log(accelerator: Accelerator, path: Path, record: dict) -> None:
    if accelerator.is_main_process:
        with path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")


# ------------------------------------------------------------------ checkpoints


def _save_checkpoint(accelerator, out_dir: Path, step: int, stage: str, model: FrameModel, optimizer, lr_scheduler, ema, keep: int) -> None:
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return

    def save_model(folder: Path) -> None:
        model.save_pretrained(folder / FINAL_MODEL_FOLDER)

    checkpoints.save_checkpoint(out_dir / CHECKPOINTS_FOLDER, step, save_model, optimizer, lr_scheduler, ema, keep=keep, extra={"stage": stage})


def _load_checkpoint(folder: Path, model: FrameModel, optimizer, lr_scheduler, ema) -> int:
    def load_model(checkpoint: Path) -> None:
        saved = FrameModel.from_pretrained(checkpoint / FINAL_MODEL_FOLDER).components()
        for name, module in model.components().items():
            if name in saved:
                module.load_state_dict(saved[name].state_dict())

    return int(checkpoints.load_checkpoint(folder, load_model, optimizer, lr_scheduler, ema)["step"])
