"""The configs of the models beside the frame model: gloss-to-pose (``g2p``), the
autoencoder, the recogniser and the hand stage (``hands``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from signgen.config.common import TrainConfig, at_least, share
from signgen.errors import SigngenError

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
        at_least(self, "g2p model ", 1, "hidden_size", "num_heads", "encoder_layers", "decoder_layers", "ff_size", "aligner_size")
        share(self, "g2p model ", "dropout", below_one=True)
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
        at_least(self, "autoencoder ", 1, "latent_channels", "layers_per_block", "norm_num_groups")
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
        share(self, "training ", "colour_augment_prob")


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
        at_least(self, "recogniser model ", 1, "hidden_size", "temporal_layers", "cnn_channels", "frame_stride")
        at_least(self, "recogniser model ", 0, "conv_layers")
        at_least(self, "recogniser model ", 8, "hand_size", "frame_size")
        share(self, "recogniser model ", "dropout", below_one=True)
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
        share(self, "training ", "still_prob", "hue_prob", "hand_drop_prob")
        if not (math.isfinite(self.teacher_weight) and self.teacher_weight >= 0):
            raise SigngenError(f"training teacher_weight must be a non-negative number, not {self.teacher_weight}")
        at_least(self, "training ", 1, "eval_every")
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
    paste: str = "hand"  # pasted back: the hand's feathered hull ("hand") or the whole crop faded at its edge ("crop")
    hide_hand: bool = False  # the base's hand painted over: the model draws the hand itself
    detail_channels: int = 0  # > 0: a full-resolution detail head this wide (signgen.models.hands.DetailHead)
    detail_layers: int = 2  # ... and this deep
    init_from: str | None = None  # a hand model folder whose weights start a new run where names and shapes fit

    def __post_init__(self):
        if self.paste not in ("hand", "crop"):
            raise SigngenError(f"hand model paste must be hand or crop, not {self.paste!r}")
        at_least(self, "hand model ", 1, "crop_size", "patch_size", "block_out_channels", "layers_per_block",
                  "norm_num_groups", "attention_head_dim", "num_train_timesteps")
        at_least(self, "hand model ", 0, "detail_channels", "detail_layers")
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
    base: str = "low_resolution"  # what the model starts from: "render" (the photo mesh-warped) or "low_resolution"
    min_timestep_share: float = 0.0  # noise levels trained: from this share of the schedule up (0.9: only the noisiest)
    edge_loss_weight: float = 0.0  # weight of the squared error of neighbour differences (outlines)
    adversarial_loss_weight: float = 0.0  # > 0: a PatchGAN critic, the model's hinge loss against it weighted this

    def __post_init__(self):
        super().__post_init__()
        if not (math.isfinite(self.min_timestep_share) and 0 <= self.min_timestep_share < 1):
            raise SigngenError(f"training min_timestep_share must be in [0, 1), not {self.min_timestep_share}")
        if self.base not in ("low_resolution", "render"):
            raise SigngenError(f"training base must be render or low_resolution, not {self.base!r}")
        at_least(self, "training ", 1, "frame_stride")
        at_least(self, "training ", 8, "base_resolution")
        share(self, "training ", "colour_augment_prob")
        if len(self.base_resolution) != 2 or not (math.isfinite(self.hand_loss_weight) and self.hand_loss_weight >= 0):
            raise SigngenError("training base_resolution must be [height, width] and hand_loss_weight a non-negative number")
        for name in ("edge_loss_weight", "adversarial_loss_weight"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise SigngenError(f"training {name} must be a non-negative number, not {getattr(self, name)}")


@dataclass
class HandsConfig:
    model: HandModelConfig
    train: HandsTrainConfig


