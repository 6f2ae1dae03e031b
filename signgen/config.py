"""Configuration of every model family: YAML files validated into typed dataclasses.

One loader (:func:`load_config`) for the four families, each with its dataclass and its
default tier, shipped in the package (``CONFIG_FOLDER``, the repository's ``configs/``):

    family     dataclass        default (no --config)   variants
    frame      FrameConfig      frame-tiny.yaml         frame-defaults / -embedded / -phoenix
    temporal   TemporalConfig   temporal-tiny.yaml      temporal-defaults / -embedded
    g2p        G2PConfig        g2p-tiny.yaml           g2p-phoenix
    autoencoder AutoencoderConfig autoencoder-tiny.yaml  -
    recogniser RecogniserConfig recogniser-tiny.yaml    recogniser-defaults / -video-tiny / -pose-tiny / -phoenix

As in CFLD, one defaults file (e.g. ``configs/frame-defaults.yaml``) holds every field and a
model/training variant is a small file that names it as its base and overrides a few
fields::

    base: frame-defaults.yaml        # resolved relative to this file
    model:
      resolution: [64, 52]
      unet: {block_out_channels: [32, 64, 64]}

Nested mappings merge key by key; lists and scalars replace. Command-line overrides
(``--set model.unet.layers_per_block=1``) are applied last, their values parsed as YAML.
Unknown keys, missing keys and wrongly typed values are user errors (SigngenError), so a
typo in a config never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from signgen.errors import SigngenError

BASE_KEY = "base"
# The shipped configs: the repository's configs/ folder, installed as the package
# signgen.configs (pyproject.toml), so that a wheel trains with the same defaults.
CONFIG_FOLDER = Path(str(importlib.resources.files("signgen.configs")))
DEFAULT_FRAME_CONFIG = CONFIG_FOLDER / "frame-tiny.yaml"
DEFAULT_TEMPORAL_CONFIG = CONFIG_FOLDER / "temporal-tiny.yaml"
DEFAULT_G2P_CONFIG = CONFIG_FOLDER / "g2p-tiny.yaml"
DEFAULT_AUTOENCODER_CONFIG = CONFIG_FOLDER / "autoencoder-tiny.yaml"
DEFAULT_RECOGNISER_CONFIG = CONFIG_FOLDER / "recogniser-tiny.yaml"
# diffusers.optimization.get_scheduler names that need no extra arguments.
LR_SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")
MAX_SEED = 2**63 - 1


def _at_least(config: Any, section: str, minimum: int, *names: str) -> None:
    """Refuse a size or count below ``minimum`` (a zero that would divide by zero later)."""
    for name in names:
        value = getattr(config, name)
        values = value if isinstance(value, list) else [value]
        if any(v is not None and v < minimum for v in values):
            raise SigngenError(f"{section}{name} must be at least {minimum}, not {value}")


def _share(config: Any, section: str, *names: str, below_one: bool = False) -> None:
    """Refuse a probability (or dropout, ``below_one``) outside [0, 1] (or [0, 1))."""
    for name in names:
        value = getattr(config, name)
        if not (0.0 <= value < 1.0 if below_one else 0.0 <= value <= 1.0):
            raise SigngenError(f"{section}{name} must be in [0, 1{')' if below_one else ']'}, not {value}")


@dataclass
class EncoderConfig:
    """A ViT trained from scratch (``backbone: vit``) or a CLIP vision tower loaded from
    local weights (``backbone: clip`` with ``clip_path``); the ViT fields are then unused."""

    backbone: str
    clip_path: str | None
    patch_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int

    def __post_init__(self):
        _at_least(self, "encoder ", 1, "patch_size", "hidden_size", "num_layers", "num_heads", "intermediate_size")
        if self.backbone not in ("vit", "clip"):
            raise SigngenError(f"encoder backbone must be 'vit' or 'clip', not {self.backbone!r}")
        if self.backbone == "clip" and not self.clip_path:
            raise SigngenError("encoder backbone 'clip' needs clip_path (a local folder with CLIP weights)")
        if self.hidden_size % self.num_heads:
            raise SigngenError(f"encoder hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")


@dataclass
class FusionConfig:
    embed_dim: int
    hidden_dim: int
    dropout: float
    temperature_init: float

    def __post_init__(self):
        _at_least(self, "fusion ", 1, "embed_dim", "hidden_dim")
        _share(self, "fusion ", "dropout", below_one=True)
        if self.temperature_init <= 0:
            raise SigngenError(f"fusion temperature_init must be positive, not {self.temperature_init}")


@dataclass
class UNetConfig:
    """Fields passed through to diffusers ``UNet2DConditionModel`` under the same names."""

    block_out_channels: list[int]
    down_block_types: list[str]
    up_block_types: list[str]
    mid_block_type: str
    layers_per_block: int
    attention_head_dim: int
    cross_attention_dim: int
    norm_num_groups: int
    transformer_layers_per_block: int
    # Not a diffusers field: the UNet denoises patch_size x patch_size pixel blocks folded
    # into channels (space-to-depth, as DiT/U-ViT patches), 1/patch_size^2 the work per level.
    patch_size: int

    def __post_init__(self):
        if self.patch_size < 1:
            raise SigngenError(f"unet: patch_size must be at least 1, got {self.patch_size}")
        if not self.block_out_channels:
            raise SigngenError("unet: block_out_channels needs at least one level")
        _at_least(self, "unet: ", 1, "block_out_channels", "layers_per_block", "attention_head_dim", "cross_attention_dim",
                  "norm_num_groups", "transformer_layers_per_block")
        n = len(self.block_out_channels)
        if len(self.down_block_types) != n or len(self.up_block_types) != n:
            raise SigngenError(
                f"unet: block_out_channels, down_block_types and up_block_types need the same length "
                f"(got {n}, {len(self.down_block_types)}, {len(self.up_block_types)})"
            )
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad:
            raise SigngenError(f"unet: block_out_channels {bad} are not divisible by norm_num_groups {self.norm_num_groups}")


@dataclass
class LatentConfig:
    """``vae_path: null`` denoises pixels; a local diffusers AutoencoderKL folder switches
    the denoiser to that VAE's latent space; ``required`` (a config made for a VAE the
    user brings, such as frame-phoenix.yaml) refuses to build until one is given."""

    vae_path: str | None

    def __post_init__(self):
        if self.vae_path == VAE_REQUIRED:
            raise SigngenError("this config denoises in a VAE's latent space: give the VAE folder (e.g. a Stable "
                               "Diffusion model's vae/) with --set model.latent.vae_path=DIR")


VAE_REQUIRED = "required"


# What the denoiser predicts: the noise, the velocity, or the clean sample itself ("sample":
# for pixel patches wider than the UNet, whose noise it cannot carry; see docs/frame_model.md).
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


@dataclass
class NoiseConfig:
    num_train_timesteps: int
    beta_schedule: str
    prediction_type: str

    def __post_init__(self):
        if not 1 <= self.num_train_timesteps <= 100_000:
            raise SigngenError(f"noise num_train_timesteps must be from 1 to 100000, not {self.num_train_timesteps}")
        if self.prediction_type not in PREDICTION_TYPES:
            raise SigngenError(f"noise prediction_type must be one of {', '.join(PREDICTION_TYPES)}, not {self.prediction_type!r}")


@dataclass
class ModelConfig:
    resolution: list[int]
    pose_channels: int
    use_fusion_embedding: bool
    coarse_image: bool  # v2: the photo warped to the target pose (and its mask) as input channels
    reference_attention: bool  # v2: the photo's features join every self-attention's keys and values
    coarse_residual: bool  # v2: the denoiser draws the target's difference from the coarse image
    encoder: EncoderConfig
    pose_encoder: EncoderConfig
    fusion: FusionConfig
    unet: UNetConfig
    latent: LatentConfig
    noise: NoiseConfig

    def __post_init__(self):
        _at_least(self, "model ", 1, "pose_channels")
        if len(self.resolution) != 2 or min(self.resolution) < 8:
            raise SigngenError(f"model resolution must be [height, width] of at least 8 px, not {self.resolution}")
        if self.coarse_residual and not self.coarse_image:
            raise SigngenError("model coarse_residual needs coarse_image: true (the residual is taken from the coarse image)")
        if self.pose_encoder.backbone != "vit":
            raise SigngenError("pose_encoder backbone must be 'vit': pose maps are not photographs")
        # In latent space the VAE's own factor is known only once it is loaded (build_unet checks then).
        factor = 2 ** (len(self.unet.block_out_channels) - 1)
        if not self.latent.vae_path and any(side % factor for side in self.resolution):
            raise SigngenError(f"model resolution {self.resolution} must be divisible by {factor} ({len(self.unet.block_out_channels)} UNet levels)")

    @property
    def height(self) -> int:
        return self.resolution[0]

    @property
    def width(self) -> int:
        return self.resolution[1]


@dataclass
class TrainConfig:
    batch_size: int
    learning_rate: float
    weight_decay: float
    lr_schedule: str
    warmup_steps: int
    max_steps: int
    gradient_accumulation_steps: int
    max_grad_norm: float
    mixed_precision: str
    ema_decay: float
    checkpoint_every: int
    checkpoints_keep: int
    log_every: int
    num_workers: int
    seed: int

    def __post_init__(self):
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise SigngenError(f"mixed_precision must be 'no', 'fp16' or 'bf16', not {self.mixed_precision!r}")
        for name in ("batch_size", "max_steps", "gradient_accumulation_steps", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise SigngenError(f"training {name} must be at least 1")
        if self.lr_schedule not in LR_SCHEDULES:
            raise SigngenError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {self.lr_schedule!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise SigngenError(f"ema_decay must be in [0, 1) (0 turns EMA off), not {self.ema_decay}")
        if self.learning_rate <= 0:
            raise SigngenError(f"training learning_rate must be positive, not {self.learning_rate}")
        for name in ("weight_decay", "max_grad_norm", "warmup_steps", "checkpoints_keep", "num_workers"):
            if getattr(self, name) < 0:
                raise SigngenError(f"training {name} must not be negative, not {getattr(self, name)}")
        if not 0 <= self.seed <= MAX_SEED:
            raise SigngenError(f"training seed must be from 0 to 2**63-1, not {self.seed}")


@dataclass
class FusionTrainConfig(TrainConfig):
    source_enhancement: bool
    eval_every: int
    eval_batch_size: int
    colour_augment_prob: float  # share of training pairs recoloured (signgen.corpora.samplers.frame_pair_dataset)

    def __post_init__(self):
        super().__post_init__()
        _at_least(self, "training ", 1, "eval_every", "eval_batch_size")
        _share(self, "training ", "colour_augment_prob")


@dataclass
class DiffusionTrainConfig(TrainConfig):
    """Per example, the conditions are dropped to the guidance modes used at sampling:
    everything (``uncond_prob``) or pose and fusion embedding (``appearance_only_prob``)."""

    uncond_prob: float
    appearance_only_prob: float
    colour_augment_prob: float  # share of training pairs (clips) recoloured by one hue rotation

    def __post_init__(self):
        super().__post_init__()
        if self.uncond_prob < 0 or self.appearance_only_prob < 0 or self.uncond_prob + self.appearance_only_prob > 1:
            raise SigngenError("uncond_prob and appearance_only_prob must be non-negative and sum to at most 1")
        _share(self, "training ", "colour_augment_prob")


@dataclass
class FrameConfig:
    model: ModelConfig
    train_fusion: FusionTrainConfig
    train_diffusion: DiffusionTrainConfig


# ------------------------------------------------------------- temporal adapter (stage 3)


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

    def __post_init__(self):
        _at_least(self, "adapter ", 1, "num_attention_heads", "attention_head_dim", "num_layers", "norm_num_groups", "max_frames")
        if self.levels is not None:
            _at_least(self, "adapter ", 0, "levels")


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

    def __post_init__(self):
        _at_least(self, "windows ", 1, "windows_per_batch")


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


# ------------------------------------------------------------------------ gloss to pose


@dataclass
class G2PModelConfig:
    hidden_size: int
    num_heads: int
    encoder_layers: int
    decoder_layers: int
    ff_size: int
    dropout: float
    aligner_size: int

    def __post_init__(self):
        _at_least(self, "g2p model ", 1, "hidden_size", "num_heads", "encoder_layers", "decoder_layers", "ff_size", "aligner_size")
        _share(self, "g2p model ", "dropout", below_one=True)
        if self.hidden_size % self.num_heads:
            raise SigngenError(f"g2p model hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")


@dataclass
class G2PLossConfig:
    body_weight: float
    face_weight: float
    hand_weight: float
    position_weight: float
    velocity_weight: float
    motion_weight: float
    confidence_weight: float
    duration_weight: float
    alignment_weight: float
    bin_weight: float
    bin_start_step: int

    def __post_init__(self):
        negative = [name for name, value in vars(self).items() if value < 0]
        if negative:
            raise SigngenError(f"loss weights must be non-negative: {', '.join(negative)}")


@dataclass
class G2PConfig:
    model: G2PModelConfig
    loss: G2PLossConfig
    train: TrainConfig


@dataclass
class AutoencoderModelConfig:
    """A diffusers AutoencoderKL for a corpus' frames (``signgen train autoencoder``): its
    folder is what ``model.latent.vae_path`` of a frame config takes, like a Stable
    Diffusion VAE's."""

    resolution: list[int]  # height, width of the frames it is trained on (a frame model's resolution)
    block_out_channels: list[int]  # one per level; each level after the first halves the size
    latent_channels: int
    layers_per_block: int
    norm_num_groups: int

    def __post_init__(self):
        _at_least(self, "autoencoder ", 1, "latent_channels", "layers_per_block", "norm_num_groups")
        if not self.block_out_channels or any(c < 1 or c % self.norm_num_groups for c in self.block_out_channels):
            raise SigngenError(f"autoencoder block_out_channels must be positive multiples of norm_num_groups "
                               f"{self.norm_num_groups}, not {self.block_out_channels}")
        factor = 2 ** (len(self.block_out_channels) - 1)
        if len(self.resolution) != 2 or any(side < 8 or side % factor for side in self.resolution):
            raise SigngenError(f"autoencoder resolution must be [height, width] divisible by {factor} "
                               f"({len(self.block_out_channels)} levels), not {self.resolution}")


@dataclass
class AutoencoderTrainConfig(TrainConfig):
    kl_weight: float  # weight of the KL term against the L1 + MSE reconstruction loss
    colour_augment_prob: float

    def __post_init__(self):
        super().__post_init__()
        if not (math.isfinite(self.kl_weight) and self.kl_weight >= 0):
            raise SigngenError(f"autoencoder kl_weight must be a non-negative number, not {self.kl_weight}")
        _share(self, "training ", "colour_augment_prob")


@dataclass
class AutoencoderConfig:
    model: AutoencoderModelConfig
    train: AutoencoderTrainConfig


# ------------------------------------------------------------------------------ recogniser


@dataclass
class RecogniserModelConfig:
    """A CTC sign reader (``signgen.models.recogniser``): ``reader`` video or pose."""

    reader: str
    hidden_size: int
    conv_layers: int
    temporal_layers: int
    dropout: float
    cnn_channels: list[int]  # per level of the per-frame CNN (video reader); each level halves the size
    hand_size: int  # pixels of a hand crop's side (video reader)
    frame_size: list[int]  # height, width of the whole frame (video reader)
    hand_box: float  # a hand crop's side in shoulder widths (video reader)
    frame_stride: int  # every n-th frame is read

    def __post_init__(self):
        if self.reader not in ("video", "pose"):
            raise SigngenError(f"recogniser model reader must be 'video' or 'pose', not {self.reader!r}")
        _at_least(self, "recogniser model ", 1, "hidden_size", "temporal_layers", "cnn_channels", "frame_stride")
        _at_least(self, "recogniser model ", 0, "conv_layers")
        _at_least(self, "recogniser model ", 8, "hand_size", "frame_size")
        _share(self, "recogniser model ", "dropout", below_one=True)
        if not self.cnn_channels or len(self.frame_size) != 2:
            raise SigngenError("recogniser model needs cnn_channels (one per level) and frame_size [height, width]")
        if not (math.isfinite(self.hand_box) and self.hand_box > 0):
            raise SigngenError(f"recogniser model hand_box must be a positive number of shoulder widths, not {self.hand_box}")


@dataclass
class RecogniserTrainConfig(TrainConfig):
    split: str  # training split; its glosses are the vocabulary
    in_memory: bool  # prepare every video once and keep it (SynthSign); false: prepare on each read (PHOENIX)
    eval_split: str  # held-out split read every eval_every steps ("none": no evaluation)
    eval_every: int
    still_prob: float  # share of items shown as one frame held still, to be read as no glosses
    speed: float  # playback speed drawn from [1/speed, speed]
    shift: float  # hand crops and frame moved by up to this share of their size
    scale: float  # ... and zoomed by up to this share
    rotation_degrees: float
    colour: float  # brightness, contrast and channel gains varied by up to this share
    hue_prob: float  # share of items whose colours are turned by a random hue rotation
    pose_noise: float  # per-point noise in shoulder widths (pose reader)
    hand_drop_prob: float  # share of frames whose hands are taken as undetected (pose reader)
    teacher: str | None  # a trained pose reader whose per-frame posteriors the reader also learns (null: none)
    teacher_weight: float  # weight of that distillation term beside CTC

    def __post_init__(self):
        super().__post_init__()
        _share(self, "training ", "still_prob", "hue_prob", "hand_drop_prob")
        if not (math.isfinite(self.teacher_weight) and self.teacher_weight >= 0):
            raise SigngenError(f"training teacher_weight must be a non-negative number, not {self.teacher_weight}")
        _at_least(self, "training ", 1, "eval_every")
        for name in ("shift", "scale", "rotation_degrees", "colour", "pose_noise"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value < (180 if name == "rotation_degrees" else 1)):
                raise SigngenError(f"training {name} must be a number in [0, {180 if name == 'rotation_degrees' else 1}), not {value}")
        if not (math.isfinite(self.speed) and 1 <= self.speed <= 4):
            raise SigngenError(f"training speed must be in [1, 4] (1: no change), not {self.speed}")


@dataclass
class RecogniserConfig:
    model: RecogniserModelConfig
    train: RecogniserTrainConfig


# ------------------------------------------------------------------------------ hand stage

DEFAULT_HANDS_CONFIG = CONFIG_FOLDER / "hands-tiny.yaml"


@dataclass
class HandModelConfig:
    """The hand stage's crop diffusion model (``signgen.models.hands.HandModel``)."""

    crop_size: int  # pixels of a hand crop's side
    patch_size: int  # the UNet works on patch_size x patch_size blocks of the crop
    block_out_channels: list[int]
    layers_per_block: int
    norm_num_groups: int
    attention_head_dim: int
    mid_attention: bool
    margin: float  # the crop box: the hand's box grown by this share of its side on every side
    min_side: float  # ... and at least this share of the frame's height
    num_train_timesteps: int
    beta_schedule: str

    def __post_init__(self):
        _at_least(self, "hand model ", 1, "crop_size", "patch_size", "block_out_channels", "layers_per_block",
                  "norm_num_groups", "attention_head_dim", "num_train_timesteps")
        if any(c % self.norm_num_groups for c in self.block_out_channels) or not self.block_out_channels:
            raise SigngenError(f"hand model block_out_channels {self.block_out_channels} must be multiples of "
                               f"norm_num_groups {self.norm_num_groups}")
        factor = self.patch_size * 2 ** (len(self.block_out_channels) - 1)
        if self.crop_size % factor:
            raise SigngenError(f"hand model crop_size {self.crop_size} must be divisible by patch_size x 2^(levels - 1) = {factor}")
        if not (0 <= self.margin <= 2 and 0 <= self.min_side <= 1):
            raise SigngenError(f"hand model margin must be in [0, 2] and min_side in [0, 1], not {self.margin}, {self.min_side}")
        if self.beta_schedule not in ("linear", "scaled_linear", "squaredcos_cap_v2"):
            raise SigngenError(f"hand model beta_schedule must be linear, scaled_linear or squaredcos_cap_v2, not {self.beta_schedule!r}")


@dataclass
class HandsTrainConfig(TrainConfig):
    split: str  # training split
    base_resolution: list[int]  # height, width the frame model draws at: the base crop is the frame through it
    frame_stride: int  # every n-th frame of a video gives items
    colour_augment_prob: float  # share of items whose crops are turned by one random hue rotation
    hand_loss_weight: float  # the loss inside the hand's mask counts 1 + this

    def __post_init__(self):
        super().__post_init__()
        _at_least(self, "training ", 1, "frame_stride")
        _at_least(self, "training ", 8, "base_resolution")
        _share(self, "training ", "colour_augment_prob")
        if len(self.base_resolution) != 2 or not (math.isfinite(self.hand_loss_weight) and self.hand_loss_weight >= 0):
            raise SigngenError("training base_resolution must be [height, width] and hand_loss_weight a non-negative number")


@dataclass
class HandsConfig:
    model: HandModelConfig
    train: HandsTrainConfig


# ------------------------------------------------------------------------------ loading

# The families: their dataclass and the shipped default tier used without --config.
FAMILIES: dict[str, tuple[type, Path]] = {
    "frame": (FrameConfig, DEFAULT_FRAME_CONFIG),
    "temporal": (TemporalConfig, DEFAULT_TEMPORAL_CONFIG),
    "g2p": (G2PConfig, DEFAULT_G2P_CONFIG),
    "autoencoder": (AutoencoderConfig, DEFAULT_AUTOENCODER_CONFIG),
    "recogniser": (RecogniserConfig, DEFAULT_RECOGNISER_CONFIG),
    "hands": (HandsConfig, DEFAULT_HANDS_CONFIG),
}


def load_config(family: str, path: str | Path | None = None, overrides: Iterable[str] = ()) -> Any:
    """The config of model ``family`` (``frame``, ``temporal``, ``g2p``, ``autoencoder`` or ``recogniser``): ``path`` (any
    file; None takes the family's shipped default) merged onto its ``base`` files,
    ``KEY=VALUE`` overrides applied last, validated into the family's dataclass."""
    if family not in FAMILIES:
        raise SigngenError(f"unknown config family {family!r} (one of {', '.join(FAMILIES)})")
    cls, default = FAMILIES[family]
    path = default if path is None else path
    data = load_config_dict(path, overrides)
    try:
        return from_dict(cls, data)
    except SigngenError as error:
        raise SigngenError(f"config {path}: {error}") from None


def load_frame_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> FrameConfig:
    return load_config("frame", path, overrides)


def load_temporal_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> TemporalConfig:
    return load_config("temporal", path, overrides)


def load_g2p_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> G2PConfig:
    return load_config("g2p", path, overrides)


def save_config(config: Any, path: str | Path) -> None:
    """Write a resolved config (a dataclass or a dict) as YAML that :func:`load_config`
    reads back (``OUT/config.yaml`` of every training run)."""
    data = config if isinstance(config, dict) else config_to_dict(config)
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def load_config_dict(path: str | Path, overrides: Iterable[str] = ()) -> dict:
    """The merged, overridden YAML of ``path`` as plain dicts, before validation: the
    loader for any config family (frame, temporal, ...) with the same base/override rules."""
    data = _read_with_bases(Path(path), seen=())
    for override in overrides:
        _apply_override(data, override)
    return data


def config_to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from nested dicts, checking keys and value types; ``where``
    is the dotted key path of ``data``, used in error messages."""
    if not isinstance(data, dict):
        raise SigngenError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise SigngenError(f"unknown key(s) {', '.join(_join(where, k) for k in unknown)}")
    missing = [n for n in names if n not in data]
    if missing:
        raise SigngenError(f"missing key(s) {', '.join(_join(where, k) for k in missing)}")
    values = {name: _convert(hints[name], data[name], _join(where, name)) for name in names}
    return cls(**values)


def _echo(value: Any, limit: int = 80) -> str:
    """``repr`` of a user's value for a message, cut to ``limit`` characters."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except SigngenError as error:
                errors.append(str(error))
        raise SigngenError(errors[0] if errors else f"{where}: unexpected value {value!r}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise SigngenError(f"{where}: expected a list, got {_echo(value)}")
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise SigngenError(f"{where}: expected true or false, got {_echo(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SigngenError(f"{where}: expected an integer, got {_echo(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SigngenError(f"{where}: expected a number, got {_echo(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise SigngenError(f"{where}: expected a finite number, got {_echo(value)}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise SigngenError(f"{where}: expected a string, got {_echo(value)}")
        return value
    raise TypeError(f"unsupported config type {hint!r} at {where}")


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SigngenError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SigngenError(f"cannot read config file {path}: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise SigngenError(f"config file {path} is not valid YAML{at}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SigngenError(f"config file {path} must hold a mapping at the top level")
    return data


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> dict:
    resolved = path.resolve()
    if resolved in seen:
        raise SigngenError(f"config file {path} names itself as its own base (through {len(seen)} file(s))")
    data = _read_yaml(path)
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise SigngenError(f"config file {path}: '{BASE_KEY}' must be a file name")
    merged = _read_with_bases(path.parent / base, seen + (resolved,))
    _deep_merge(merged, data)
    return merged


def _deep_merge(into: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _apply_override(data: dict, override: str) -> None:
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise SigngenError(f"config override must look like KEY=VALUE, not {_echo(override)}")
    *parents, leaf = key.strip().split(".")
    node = data
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise SigngenError(f"config override {key!r}: '{part}' is not a section")
        node = node[part]
    if leaf not in node:
        raise SigngenError(f"config override {key!r}: no such key")
    try:
        node[leaf] = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise SigngenError(f"config override {_echo(key)}: value {_echo(raw)} is not valid YAML") from None
