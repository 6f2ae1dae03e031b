"""Stage 3: the temporal adapter's objective and its save/load; the frame model frozen.

``train_temporal(frame_model_dir, data_dir, out, config)`` loads a trained frame model
(stages 1 and 2), attaches a :class:`~signgen.models.temporal.TemporalAdapter` to its UNet
(untrained, or AnimateDiff's motion modules with ``model.init_from``:
:mod:`signgen.models.motion_import`) and trains only the adapter on clips of
``num_frames`` frames with the stage-2 objective: one timestep per clip (every frame of a window shares it at sampling time too),
noise per frame, per-frame conditions exactly as the frame model saw them, and the same
condition dropout per clip so that the adapter also serves classifier-free guidance.

The loop and the output folder are :mod:`signgen.training.driver`'s: the trained adapter
(config.json + safetensors, EMA weights when EMA is on) is ``OUT/model``, which
:func:`signgen.models.temporal.load_adapter` finds from ``OUT``; ``OUT/config.yaml`` holds
the window settings the pipeline reads.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from signgen.config import AdapterConfig, DiffusionTrainConfig, TemporalConfig, config_to_dict
from signgen.errors import SigngenError
from signgen.models.denoiser import FrameConditions, denoising_target, predict, sample_training_modes
from signgen.models.encoders import EncoderOutput
from signgen.models.frame_model import FrameModel
from signgen.models.motion_import import import_motion_modules, load_motion_adapter, motion_adapter_options
from signgen.models.temporal import TemporalAdapter, VideoUNet
from signgen.training import driver
from signgen.training.frame import check_hand_channels, hand_weighted_mse, v2_conditions


# ---- the objective --------------------------------------------------------------------


def clip_conditions(model: FrameModel, sources: torch.Tensor, poses: torch.Tensor, coarse: torch.Tensor | None = None,
                    uncovered: torch.Tensor | None = None) -> FrameConditions:
    """Per-frame conditions of B clips, flattened to (B * F): each clip's source image
    encoded once, its tokens and embedding repeated over the clip's frames; for a v2 frame
    model also each frame's coarse image (``coarse`` (B, F, 3, H, W), ``uncovered``
    (B, F, 1, H, W)) and each clip's reference features, computed once per clip."""
    clips, num_frames = poses.shape[:2]
    appearance = model.encode_appearance(sources)
    flat_poses = poses.flatten(0, 1)
    flat = {"source": sources, "coarse": None if coarse is None else coarse.flatten(0, 1),
            "uncovered": None if uncovered is None else uncovered.flatten(0, 1)}
    rows = torch.arange(clips, device=sources.device).repeat_interleave(num_frames)
    coarse_channels, reference = v2_conditions(model, flat, appearance, rows)
    appearance = EncoderOutput(tokens=appearance.tokens.repeat_interleave(num_frames, dim=0),
                               embedding=appearance.embedding.repeat_interleave(num_frames, dim=0))
    return model.frame_conditions(appearance, flat_poses, coarse_channels, reference)


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
    wrapper = video_unet.module if hasattr(video_unet, "module") else video_unet
    with torch.no_grad(), wrapper.still():
        conditions = clip_conditions(model, batch["source"], poses, batch.get("coarse"), batch.get("uncovered"))
        clean = model.to_sample_space(frames.flatten(0, 1)) - model.residual_base(conditions)
        keep = [mask.repeat_interleave(num_frames) for mask in sample_training_modes(clips, train.uncond_prob, train.appearance_only_prob, device=device)]
        conditions = conditions.masked(*keep)
    noise = torch.randn(clean.shape, generator=generator, device=device, dtype=clean.dtype)
    schedule = model.noise_scheduler
    timesteps = torch.randint(0, schedule.config.num_train_timesteps, (clips,), generator=generator, device=device)
    timesteps = timesteps.repeat_interleave(num_frames)
    noisy = schedule.add_noise(clean, noise, timesteps)
    target = denoising_target(schedule, clean, noise, timesteps)
    with wrapper.frames(num_frames):
        prediction = predict(video_unet, noisy, timesteps, conditions, model.patch_size)
    return hand_weighted_mse(prediction, target, poses.flatten(0, 1), train.hand_loss_weight)


class TemporalObjective(torch.nn.Module):
    """:func:`temporal_loss` as a module whose only registered part is the adapter, so
    that accelerate (DDP, autocast) wraps the call and only the adapter trains."""

    def __init__(self, model: FrameModel, adapter: TemporalAdapter, train: DiffusionTrainConfig):
        super().__init__()
        self.adapter = adapter
        self.__dict__["frame_model"] = model
        self.__dict__["video_unet"] = VideoUNet(model.unet, adapter)
        checkpointing = bool(getattr(train, "gradient_checkpointing", False))
        self.__dict__["video_unet"].checkpointing = checkpointing
        if checkpointing:  # the frozen UNet's blocks too: the backward pass runs through them
            model.unet.enable_gradient_checkpointing()
        self.train_config = train
        if getattr(train, "hand_loss_weight", 0.0):
            check_hand_channels(model.pose_channels)

    def forward(self, batch: dict[str, torch.Tensor], step: int = 0) -> torch.Tensor:
        return temporal_loss(self.__dict__["frame_model"], self.__dict__["video_unet"], batch, self.train_config)

    def detach(self) -> None:
        """Take the adapter's hooks off the frame model's UNet."""
        self.__dict__["video_unet"].detach()


def _load_adapter_into(adapter: TemporalAdapter):
    def load(folder: Path) -> None:
        saved = TemporalAdapter.from_pretrained(folder, use_safetensors=True)  # never a pickle
        if _public(saved.config) != _public(adapter.config):
            raise SigngenError(f"checkpoint {folder.parent} holds an adapter of another shape than the config and frame model give")
        adapter.load_state_dict(saved.state_dict())

    return load


def _public(config) -> dict:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in config.items() if not key.startswith("_")}


def with_motion_adapter(config: TemporalConfig) -> tuple[TemporalConfig, list[str]]:
    """``config`` with the adapter shaped as the MotionAdapter of ``model.init_from``
    (heads, layers, groups, frame positions: ``signgen.models.motion_import``) and one
    line per field that changed; unchanged without ``init_from``. Apply it before a
    resumed run's config is compared with its saved one: the run saved it applied."""
    if not config.model.init_from:
        return config, []
    options, notes = motion_adapter_options(config.model.init_from, config_to_dict(config.adapter))
    return dataclasses.replace(config, adapter=AdapterConfig(**options)), notes


def start_adapter(model: FrameModel, config: TemporalConfig, echo=print) -> TemporalAdapter:
    """The adapter to train: at its identity start, or with the motion modules of the
    MotionAdapter in ``model.init_from`` where their shapes fit (``echo`` gets one line
    for each that does not). ``config`` has :func:`with_motion_adapter` applied."""
    # AnimateDiff's middle-block modules run between attention and resnet (motion_import).
    mid_site = "attention" if config.model.init_from else "resnet"
    adapter = TemporalAdapter.for_unet(model.unet, mid_site=mid_site, **config_to_dict(config.adapter))
    if config.model.init_from:
        notes = import_motion_modules(adapter, load_motion_adapter(config.model.init_from), config.model.init_from)
        loaded = len(adapter.motion_modules) - len(notes)
        echo(f"motion modules: {loaded} of {len(adapter.motion_modules)} loaded from {config.model.init_from}")
        for note in notes:
            echo(note)
    return adapter.train()


def train_temporal(
    frame_model_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    config: TemporalConfig,
    *,
    resume: bool | str | Path = False,
    progress: bool = True,
) -> TemporalAdapter:
    """Train the adapter of the frame model in ``frame_model_dir`` on the clips of
    ``data_dir`` (``signgen.corpora.samplers.clip_dataset``, split ``train``) into ``out``; returns the
    final adapter (EMA weights when EMA is on), also saved to ``out/model``."""
    driver.check_out_dir(out, resume)  # before the frame model and the clips are loaded
    if config.train.latent_cache:
        raise SigngenError("train.latent_cache is for stage 2 (signgen train diffusion); stage 3 encodes its clips as it reads them")
    config, notes = with_motion_adapter(config)
    for note in notes:
        print(note)
    train = config.train
    model = FrameModel.from_pretrained(frame_model_dir)
    model.require_denoiser()
    model.requires_grad_(False)
    from signgen.corpora.samplers import clip_dataset  # the data room's loader, imported only when training

    dataset = clip_dataset(data_dir, "train", num_frames=train.num_frames, resolution=model.resolution,
                           colour_augment_prob=train.colour_augment_prob, coarse_image=model.coarse_image)
    torch.manual_seed(train.seed)
    adapter = start_adapter(model, config)
    objective = TemporalObjective(model, adapter, train)
    stage = driver.Stage(
        name="temporal",
        objective=objective,
        parameters=list(adapter.parameters()),
        modules=[model, adapter],
        save_model=lambda folder: adapter.save_pretrained(folder, safe_serialization=True),
        load_model=_load_adapter_into(adapter),
        items=f"clips of {train.num_frames} frames",
        close=objective.detach,
    )
    driver.train(stage, dataset, out, train, config, resume=resume, progress=progress)
    return adapter.eval()
