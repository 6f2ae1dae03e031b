"""The frame model's config (``frame``) and its temporal adapter's (``temporal``)."""

from __future__ import annotations

from dataclasses import dataclass

from signgen.config.common import TrainConfig, at_least, share
from signgen.errors import SigngenError


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
        at_least(self, "encoder ", 1, "patch_size", "hidden_size", "num_layers", "num_heads", "intermediate_size")
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
        at_least(self, "fusion ", 1, "embed_dim", "hidden_dim")
        share(self, "fusion ", "dropout", below_one=True)
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
        at_least(self, "unet: ", 1, "block_out_channels", "layers_per_block", "attention_head_dim", "cross_attention_dim",
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
INIT_REQUIRED = "required"
OPTIMIZERS = ("adamw", "adamw8bit")
REFERENCE_NETS = ("shared", "copy")


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
    # A local Stable Diffusion folder (a diffusers UNet2DConditionModel folder, or a whole
    # pipeline whose unet/ and vae/ are used) the denoiser starts from; null: random weights.
    init_from: str | None
    # Where the reference path's features come from: "shared", the denoiser's own weights;
    # "copy", a trainable copy of the UNet (AnimateAnyone's ReferenceNet).
    reference_net: str

    def __post_init__(self):
        at_least(self, "model ", 1, "pose_channels")
        if self.init_from == INIT_REQUIRED:
            raise SigngenError("this config starts the denoiser from pretrained weights: give the Stable Diffusion folder "
                               "(or its unet/) with --set model.init_from=DIR")
        if self.reference_net not in REFERENCE_NETS:
            raise SigngenError(f"model reference_net must be one of {', '.join(REFERENCE_NETS)}, not {self.reference_net!r}")
        if self.reference_net == "copy" and not self.reference_attention:
            raise SigngenError("model reference_net: copy needs reference_attention: true (the copy writes the reference features)")
        if len(self.resolution) != 2 or min(self.resolution) < 8:
            raise SigngenError(f"model resolution must be [height, width] of at least 8 px, not {self.resolution}")
        if self.coarse_residual and not self.coarse_image:
            raise SigngenError("model coarse_residual needs coarse_image: true (the residual is taken from the coarse image)")
        if self.pose_encoder.backbone != "vit":
            raise SigngenError("pose_encoder backbone must be 'vit': pose maps are not photographs")
        # In latent space the VAE's own factor is known only once it is loaded (build_unet checks then).
        factor = 2 ** (len(self.unet.block_out_channels) - 1)
        if not self.latent.vae_path and not self.init_from and any(side % factor for side in self.resolution):
            raise SigngenError(f"model resolution {self.resolution} must be divisible by {factor} ({len(self.unet.block_out_channels)} UNet levels)")

    @property
    def height(self) -> int:
        return self.resolution[0]

    @property
    def width(self) -> int:
        return self.resolution[1]


@dataclass
class FusionTrainConfig(TrainConfig):
    source_enhancement: bool
    eval_every: int
    eval_batch_size: int
    colour_augment_prob: float  # share of training pairs recoloured (signgen.corpora.samplers.frame_pair_dataset)

    def __post_init__(self):
        super().__post_init__()
        at_least(self, "training ", 1, "eval_every", "eval_batch_size")
        share(self, "training ", "colour_augment_prob")


@dataclass
class DiffusionTrainConfig(TrainConfig):
    """Per example, the conditions are dropped to the guidance modes used at sampling:
    everything (``uncond_prob``) or pose and fusion embedding (``appearance_only_prob``)."""

    uncond_prob: float
    appearance_only_prob: float
    colour_augment_prob: float  # share of training pairs (clips) recoloured by one hue rotation
    # Speed and memory switches (issue #28): activations recomputed in the backward pass
    # instead of kept; "adamw8bit" is bitsandbytes' 8-bit AdamW (CUDA only); a folder
    # where the VAE latents of the corpus' frames are cached (latent models, stage 2 only).
    gradient_checkpointing: bool
    optimizer: str
    latent_cache: str | None
    # The denoising loss weighted 1 + hand_loss_weight in the target's hand regions (its
    # pose map's hands grown a little) (MimicMotion's hand-region weighting; signgen.training.frame.hand_weighted_mse).
    hand_loss_weight: float

    def __post_init__(self):
        super().__post_init__()
        if not self.hand_loss_weight >= 0:
            raise SigngenError(f"training hand_loss_weight must be 0 or more, not {self.hand_loss_weight}")
        if self.uncond_prob < 0 or self.appearance_only_prob < 0 or self.uncond_prob + self.appearance_only_prob > 1:
            raise SigngenError("uncond_prob and appearance_only_prob must be non-negative and sum to at most 1")
        share(self, "training ", "colour_augment_prob")
        if self.optimizer not in OPTIMIZERS:
            raise SigngenError(f"training optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}")


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
        at_least(self, "adapter ", 1, "num_attention_heads", "attention_head_dim", "num_layers", "norm_num_groups", "max_frames")
        if self.levels is not None:
            at_least(self, "adapter ", 0, "levels")


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
        at_least(self, "windows ", 1, "windows_per_batch")


@dataclass
class TemporalModelConfig:
    """``init_from``: a local diffusers MotionAdapter folder (AnimateDiff's motion modules)
    the adapter starts from (``signgen.models.motion_import``); null: identity start."""

    init_from: str | None

    def __post_init__(self):
        if self.init_from == INIT_REQUIRED:
            raise SigngenError("this config starts the adapter from AnimateDiff's motion modules: give the diffusers "
                               "MotionAdapter folder with --set model.init_from=DIR")


@dataclass
class TemporalConfig:
    adapter: AdapterConfig
    train: TemporalTrainConfig
    windows: WindowConfig
    model: TemporalModelConfig

    def __post_init__(self):
        if self.train.num_frames > self.adapter.max_frames:
            raise SigngenError(f"train.num_frames {self.train.num_frames} exceeds adapter.max_frames {self.adapter.max_frames}")
        if not 0 <= self.windows.overlap < self.train.num_frames:
            raise SigngenError(f"windows.overlap must be in [0, {self.train.num_frames}), not {self.windows.overlap}")


