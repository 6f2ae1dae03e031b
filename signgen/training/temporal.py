"""Stage 3: train the temporal adapter on clips, the frame model frozen.

``train_temporal(frame_model_dir, data_dir, out, config)`` loads a trained frame model
(stages 1 and 2), attaches an untrained :class:`~signgen.models.temporal.TemporalAdapter` to its
UNet and trains only the adapter on clips of ``num_frames`` frames with the stage-2
objective: one timestep per clip (every frame of a window shares it at sampling time too),
noise per frame, per-frame conditions exactly as the frame model saw them, and the same
condition dropout per clip so that the adapter also serves classifier-free guidance.

Output folder::

    OUT/adapter/                 the trained adapter (EMA weights when EMA is on):
                                 config.json + diffusion_pytorch_model.safetensors
    OUT/checkpoints/step-NNNNNNN/  adapter, optimiser, LR schedule, EMA and RNG state
                                 (safetensors + JSON, never pickle: signgen.training.checkpoints);
                                 --resume continues from the newest one, data order
                                 included
    OUT/loss_log.jsonl           {"step", "lr", "loss"} every log_every steps
    OUT/training_config.yaml     the resolved config

Runs on one device or many through accelerate (``accelerate launch``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
import yaml

from signgen.atomic import atomic_folder
from signgen.training.checkpoints import (
    checkpoint_folder,
    checkpoint_to_resume,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    truncate_log,
)
from signgen.config import CONFIG_FOLDER, DiffusionTrainConfig, config_to_dict, from_dict, load_config_dict
from signgen.models.denoiser import FrameConditions, predict, sample_training_modes
from signgen.errors import SigngenError
from signgen.models.frame_model import FrameModel
from signgen.models.temporal import TemporalAdapter, VideoUNet

DEFAULT_CONFIG = CONFIG_FOLDER / "temporal-defaults.yaml"
ADAPTER_FOLDER = "adapter"
CHECKPOINTS = "checkpoints"
LOSS_LOG = "loss_log.jsonl"


# ---- config ---------------------------------------------------------------------------


@dataclass
class AdapterConfig:
    """Arguments of :meth:`TemporalAdapter.for_unet`; ``attention_head_dim: null`` splits
    each layer's channels over the heads, ``levels: null`` puts modules at every level."""

    num_attention_heads: int
    attention_head_dim: int | None
    num_layers: int
    norm_num_groups: int
    max_frames: int
    levels: list[int] | None
    include_mid: bool


@dataclass
class TemporalTrainConfig(DiffusionTrainConfig):
    num_frames: int

    def __post_init__(self):
        super().__post_init__()
        if self.num_frames < 2:
            raise SigngenError(f"temporal training needs clips of at least 2 frames, not {self.num_frames}")


@dataclass
class WindowConfig:
    """Inference on videos longer than ``train.num_frames``: windows of that many frames,
    ``overlap`` frames shared by neighbours, ``windows_per_batch`` per UNet call."""

    overlap: int
    windows_per_batch: int


@dataclass
class TemporalConfig:
    adapter: AdapterConfig
    train: TemporalTrainConfig
    windows: WindowConfig

    def __post_init__(self):
        if self.train.num_frames > self.adapter.max_frames:
            raise SigngenError(f"train.num_frames {self.train.num_frames} exceeds adapter.max_frames {self.adapter.max_frames}")
        if not 0 <= self.windows.overlap < self.train.num_frames:
            raise SigngenError(f"windows.overlap must be in [0, {self.train.num_frames}), not {self.windows.overlap}")


def load_temporal_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> TemporalConfig:
    """Read a temporal YAML config (``base:`` files merged, ``KEY=VALUE`` overrides applied
    last, as for the frame model)."""
    data = load_config_dict(path, overrides)
    try:
        return from_dict(TemporalConfig, data)
    except SigngenError as error:
        raise SigngenError(f"config {path}: {error}") from None


# ---- the objective --------------------------------------------------------------------


def clip_conditions(model: FrameModel, sources: torch.Tensor, poses: torch.Tensor) -> FrameConditions:
    """Per-frame conditions of B clips, flattened to (B * F): each clip's source image
    encoded once, its tokens and embedding repeated over the clip's frames."""
    num_frames = poses.shape[1]
    appearance = model.encode_appearance(sources)
    flat_poses = poses.flatten(0, 1)
    fusion = None
    if model.use_fusion_embedding:
        fusion = model.fuse(appearance.embedding.repeat_interleave(num_frames, dim=0), flat_poses)
    return FrameConditions(
        pose_maps=flat_poses,
        appearance_tokens=appearance.tokens.repeat_interleave(num_frames, dim=0),
        fusion_embedding=fusion,
    )


def temporal_loss(
    model: FrameModel,
    video_unet: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    train: DiffusionTrainConfig,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Stage-2 denoising loss on a batch of clips ``{"source": (B, 3, H, W), "frames":
    (B, F, 3, H, W), "poses": (B, F, C, H, W)}``, through ``video_unet`` (a
    :class:`VideoUNet`, possibly wrapped by accelerate). Only the adapter sees gradients:
    conditions and clean samples come from the frozen frame model without a graph."""
    frames, poses = batch["frames"], batch["poses"]
    clips, num_frames = frames.shape[:2]
    device = frames.device
    with torch.no_grad():
        conditions = clip_conditions(model, batch["source"], poses)
        keep = [mask.repeat_interleave(num_frames) for mask in sample_training_modes(clips, train.uncond_prob, train.appearance_only_prob, device=device)]
        conditions = conditions.masked(*keep)
        clean = model.to_sample_space(frames.flatten(0, 1))
    noise = torch.randn(clean.shape, generator=generator, device=device, dtype=clean.dtype)
    schedule = model.noise_scheduler
    timesteps = torch.randint(0, schedule.config.num_train_timesteps, (clips,), generator=generator, device=device)
    timesteps = timesteps.repeat_interleave(num_frames)
    noisy = schedule.add_noise(clean, noise, timesteps)
    target = noise if schedule.config.prediction_type == "epsilon" else schedule.get_velocity(clean, noise, timesteps)
    wrapper = video_unet.module if hasattr(video_unet, "module") else video_unet
    with wrapper.frames(num_frames):
        prediction = predict(video_unet, noisy, timesteps, conditions, model.patch_size)
    return F.mse_loss(prediction.float(), target.float())


# ---- checkpoints: the adapter part (the rest is signgen.training.checkpoints) ----------------------


def _save_adapter_part(adapter: TemporalAdapter) -> Callable[[Path], None]:
    return lambda checkpoint: adapter.save_pretrained(checkpoint / ADAPTER_FOLDER, safe_serialization=True)


def _load_adapter_part(adapter: TemporalAdapter) -> Callable[[Path], None]:
    def load(checkpoint: Path) -> None:
        saved = TemporalAdapter.from_pretrained(checkpoint / ADAPTER_FOLDER)
        if _public(saved.config) != _public(adapter.config):
            raise SigngenError(f"checkpoint {checkpoint} holds an adapter of another shape than the config and frame model give")
        adapter.load_state_dict(saved.state_dict())

    return load


def _public(config) -> dict:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in config.items() if not key.startswith("_")}


# ---- the loop -------------------------------------------------------------------------


def load_adapter(folder: str | os.PathLike) -> TemporalAdapter:
    """A trained adapter from ``folder`` (an adapter folder or a training ``OUT`` folder)."""
    folder = Path(folder)
    if (folder / ADAPTER_FOLDER / "config.json").is_file():
        folder = folder / ADAPTER_FOLDER
    if not (folder / "config.json").is_file():
        raise SigngenError(f"no temporal adapter in {folder} (expected config.json and safetensors weights)")
    try:
        adapter = TemporalAdapter.from_pretrained(folder, use_safetensors=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise SigngenError(f"cannot load the temporal adapter in {folder}: {str(error).strip().splitlines()[0]}") from None
    return adapter.eval()


def train_temporal(
    frame_model_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    config: TemporalConfig,
    *,
    resume: bool = False,
    progress: bool = True,
) -> TemporalAdapter:
    """Train the adapter of the frame model in ``frame_model_dir`` on the clips of
    ``data_dir`` (``signgen.corpora.phoenix.clip_dataset``, split ``train``) into ``out``; returns the
    final adapter (EMA weights when EMA is on), also saved to ``out/adapter``."""
    from accelerate import Accelerator, DataLoaderConfiguration
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    train = config.train
    out = Path(out)
    checkpoints = out / CHECKPOINTS
    checkpoint = checkpoint_to_resume(checkpoints, bool(resume))

    model = FrameModel.from_pretrained(frame_model_dir)
    model._require_denoiser()
    model.requires_grad_(False)
    from signgen.corpora.phoenix import clip_dataset  # the data room's loader, imported only when training

    dataset = clip_dataset(data_dir, "train", num_frames=train.num_frames, resolution=model.resolution, pose_channels=model.pose_channels,
                           colour_augment_prob=train.colour_augment_prob)
    if len(dataset) < train.batch_size:
        raise SigngenError(f"{data_dir} has {len(dataset)} training clips of {train.num_frames} frames, fewer than one batch ({train.batch_size})")
    out.mkdir(parents=True, exist_ok=True)

    accelerator = Accelerator(
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        mixed_precision=train.mixed_precision,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=train.seed),
    )
    torch.manual_seed(train.seed)
    adapter = TemporalAdapter.for_unet(model.unet, **config_to_dict(config.adapter)).train()
    video_unet = VideoUNet(model.unet, adapter)
    model.to(accelerator.device)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=train.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=train.num_workers,
        generator=torch.Generator().manual_seed(train.seed),
    )
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay)
    lr_scheduler = get_scheduler(train.lr_schedule, optimizer, num_warmup_steps=train.warmup_steps, num_training_steps=train.max_steps)
    ema = EMAModel(adapter.parameters(), decay=train.ema_decay) if train.ema_decay > 0 else None
    step = 0
    if checkpoint is not None:
        step = int(load_checkpoint(checkpoint, _load_adapter_part(adapter), optimizer, lr_scheduler, ema)["step"])
    truncate_log(out / LOSS_LOG, step)
    # The wrapper goes through accelerate (not the adapter alone): its forward is the one
    # called, which distributed data parallel needs to synchronise the adapter's gradients.
    prepared, optimizer, loader, lr_scheduler = accelerator.prepare(video_unet, optimizer, loader, lr_scheduler)
    if ema is not None:
        ema.to(accelerator.device)
    if accelerator.is_main_process:
        (out / "training_config.yaml").write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))

    def checkpoint_now() -> None:
        if accelerator.is_main_process:
            save_checkpoint(checkpoints, step, _save_adapter_part(adapter), optimizer, lr_scheduler, ema, keep=train.checkpoints_keep)

    batches_per_epoch = len(loader) // train.gradient_accumulation_steps
    bar = tqdm(total=train.max_steps, initial=step, desc="train temporal", disable=not progress or not accelerator.is_main_process)
    try:
        while step < train.max_steps:
            epoch, done_in_epoch = divmod(step, batches_per_epoch)
            loader.set_epoch(epoch)
            epoch_loader = accelerator.skip_first_batches(loader, done_in_epoch * train.gradient_accumulation_steps) if done_in_epoch else loader
            for batch in epoch_loader:
                with accelerator.accumulate(prepared):
                    loss = temporal_loss(model, prepared, batch, train)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and train.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(adapter.parameters(), train.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad()
                if not accelerator.sync_gradients:
                    continue
                step += 1
                if ema is not None:
                    ema.step(adapter.parameters())
                bar.update(1)
                if step % train.log_every == 0 or step == train.max_steps:
                    record = {"step": step, "lr": lr_scheduler.get_last_lr()[0], "loss": round(accelerator.gather(loss.detach()).mean().item(), 6)}
                    bar.set_postfix(loss=f"{record['loss']:.4f}")
                    if accelerator.is_main_process:
                        with open(out / LOSS_LOG, "a", encoding="utf-8") as log:
                            log.write(json.dumps(record) + "\n")
                if step % train.checkpoint_every == 0 or step == train.max_steps:
                    checkpoint_now()
                if step >= train.max_steps:
                    break
    except KeyboardInterrupt:
        # Keep the finished steps: --resume continues from here.
        if step and latest_checkpoint(checkpoints) != checkpoint_folder(checkpoints, step):
            checkpoint_now()
        raise
    finally:
        bar.close()
        video_unet.detach()
    accelerator.wait_for_everyone()
    if ema is not None:
        ema.copy_to(adapter.parameters())
    if accelerator.is_main_process:
        with atomic_folder(out / ADAPTER_FOLDER) as partial:
            adapter.save_pretrained(partial, safe_serialization=True)
    return adapter.eval()
