"""Stage 3: train the temporal adapter on clips, the frame model frozen.

``train_temporal(frame_model_dir, data_dir, out, config)`` loads a trained frame model
(stages 1 and 2), attaches an untrained :class:`~signgen.temporal.TemporalAdapter` to its
UNet and trains only the adapter on clips of ``num_frames`` frames with the stage-2
objective: one timestep per clip (every frame of a window shares it at sampling time too),
noise per frame, per-frame conditions exactly as the frame model saw them, and the same
condition dropout per clip so that the adapter also serves classifier-free guidance.

Output folder::

    OUT/adapter/                 the trained adapter (EMA weights when EMA is on):
                                 config.json + diffusion_pytorch_model.safetensors
    OUT/checkpoints/step-NNNNNNN/  adapter, optimiser, LR schedule, EMA and RNG state
                                 (safetensors + JSON, never pickle); --resume continues
                                 from the newest one, data order included
    OUT/loss_log.jsonl           {"step", "lr", "loss"} every log_every steps
    OUT/training_config.yaml     the resolved config

Runs on one device or many through accelerate (``accelerate launch``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import load_file, save_file

from signgen.config import DiffusionTrainConfig, _apply_override, _read_with_bases, config_to_dict, from_dict
from signgen.denoiser import FrameConditions, predict, sample_training_modes
from signgen.errors import SigngenError
from signgen.frame_model import FrameModel, atomic_folder
from signgen.temporal import TemporalAdapter, VideoUNet

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "temporal-defaults.yaml"
ADAPTER_FOLDER = "adapter"
CHECKPOINTS = "checkpoints"
CHECKPOINT_PREFIX = "step-"
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
    data = _read_with_bases(Path(path), seen=())
    for override in overrides:
        _apply_override(data, override)
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


# ---- checkpoints (safetensors + JSON, no pickle) ----------------------------------------


def _save_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    save_file(tensors, str(folder / "optimizer.safetensors"))
    (folder / "optimizer.json").write_text(json.dumps({"param_groups": state["param_groups"], "scalars": scalars}))


def _load_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    meta = json.loads((folder / "optimizer.json").read_text())
    state: dict[int, dict] = {}
    for key, value in list(load_file(str(folder / "optimizer.safetensors")).items()) + list(meta["scalars"].items()):
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(folder: Path, step: int, adapter: TemporalAdapter, optimizer, lr_scheduler, ema) -> Path:
    """The whole training state in ``folder/step-NNNNNNN``, written under a temporary name
    and renamed at the end, so an interrupted save never looks like a checkpoint."""
    target = folder / f"{CHECKPOINT_PREFIX}{step:07d}"
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_folder(target) as partial:
        adapter.save_pretrained(partial / ADAPTER_FOLDER, safe_serialization=True)
        _save_optimizer(optimizer, partial)
        tensors = {"torch_rng": torch.get_rng_state()}
        if ema is not None:
            tensors.update({f"ema.{i}": p.detach().cpu().contiguous() for i, p in enumerate(ema.shadow_params)})
        save_file(tensors, str(partial / "state.safetensors"))
        ema_scalars = {k: v for k, v in ema.state_dict().items() if k != "shadow_params"} if ema is not None else None
        (partial / "state.json").write_text(json.dumps({"step": step, "lr_scheduler": lr_scheduler.state_dict(), "ema": ema_scalars}))
    return target


def latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(p for p in folder.glob(f"{CHECKPOINT_PREFIX}*") if (p / "state.json").is_file())
    return found[-1] if found else None


def load_checkpoint(checkpoint: Path, adapter: TemporalAdapter, optimizer, lr_scheduler, ema) -> int:
    saved = TemporalAdapter.from_pretrained(checkpoint / ADAPTER_FOLDER)
    if _public(saved.config) != _public(adapter.config):
        raise SigngenError(f"checkpoint {checkpoint} holds an adapter of another shape than the config and frame model give")
    adapter.load_state_dict(saved.state_dict())
    _load_optimizer(optimizer, checkpoint)
    meta = json.loads((checkpoint / "state.json").read_text())
    lr_scheduler.load_state_dict(meta["lr_scheduler"])
    tensors = load_file(str(checkpoint / "state.safetensors"))
    torch.set_rng_state(tensors["torch_rng"])
    if ema is not None:
        if meta["ema"] is None:
            raise SigngenError(f"checkpoint {checkpoint} has no EMA weights but the config turns EMA on")
        ema.load_state_dict({**meta["ema"], "shadow_params": [tensors[f"ema.{i}"] for i in range(len(ema.shadow_params))]})
    return int(meta["step"])


def _public(config) -> dict:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in config.items() if not key.startswith("_")}


def _prune_checkpoints(folder: Path, keep: int) -> None:
    found = sorted(p for p in folder.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir())
    for old in found[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint a run resumes from)."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


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
    ``data_dir`` (``signgen.data.clip_dataset``, split ``train``) into ``out``; returns the
    final adapter (EMA weights when EMA is on), also saved to ``out/adapter``."""
    from accelerate import Accelerator, DataLoaderConfiguration
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    train = config.train
    out = Path(out)
    checkpoints = out / CHECKPOINTS
    checkpoint = latest_checkpoint(checkpoints) if resume else None
    if resume and checkpoint is None:
        raise SigngenError(f"--resume: no checkpoint in {checkpoints}")
    if not resume and latest_checkpoint(checkpoints) is not None:
        raise SigngenError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")

    model = FrameModel.from_pretrained(frame_model_dir)
    model._require_denoiser()
    model.requires_grad_(False)
    from signgen.data import clip_dataset  # the data room's loader, imported only when training

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
    step = load_checkpoint(checkpoint, adapter, optimizer, lr_scheduler, ema) if checkpoint is not None else 0
    _truncate_log(out / LOSS_LOG, step)
    # The wrapper goes through accelerate (not the adapter alone): its forward is the one
    # called, which distributed data parallel needs to synchronise the adapter's gradients.
    prepared, optimizer, loader, lr_scheduler = accelerator.prepare(video_unet, optimizer, loader, lr_scheduler)
    if ema is not None:
        ema.to(accelerator.device)
    if accelerator.is_main_process:
        (out / "training_config.yaml").write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))

    def checkpoint_now() -> None:
        if accelerator.is_main_process:
            save_checkpoint(checkpoints, step, adapter, optimizer, lr_scheduler, ema)
            _prune_checkpoints(checkpoints, train.checkpoints_keep)

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
        if step and latest_checkpoint(checkpoints) != checkpoints / f"{CHECKPOINT_PREFIX}{step:07d}":
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
