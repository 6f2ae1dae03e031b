"""The hand model: a small conditional diffusion model that redraws one hand's square crop
(issue #25, the hand stage; :mod:`signgen.pipelines.hands` runs it, ``signgen train hands``
trains it).

Its input channels, all at ``crop_size`` x ``crop_size``: the noisy crop (3), the hand's
keypoint map (6: palm and one per finger, :func:`signgen.poses.hands.hand_keypoint_map`), the
appearance crop (3: the photo's own hand, or its skin colour) and the base (3: the crop as the
frame model drew it, at the frame model's resolution). With ``patch_size`` p > 1 they are
folded into p x p blocks (pixel_unshuffle) before a diffusers ``UNet2DModel`` and unfolded
after, 1/p^2 the work per level. It predicts the clean crop (``prediction_type`` "sample") as
a residual on the base, through a last convolution that starts at zero: an untrained model
returns the base, so the hand stage leaves a frame unchanged. With ``detail_channels`` > 0 a
few convolutions at the crop's full resolution (:class:`DetailHead`, also starting at zero)
refine that estimate from the keypoint map and the base: a UNet of p x p blocks draws a
finger's outline, a pixel or two wide, only as a blur.

On disk it is one folder::

    model_index.json   {"kind": "signgen-hand-model", "format_version": 1, ...}
    config.json + diffusion_pytorch_model.safetensors     (the HandModel)
    scheduler/scheduler_config.json                       (its DDPM noise schedule)

:func:`load_hand_model` reads it strictly (a folder of another kind, a damaged or swapped
file: one SigngenError line); the output folder of ``signgen train hands`` (its ``model/``)
loads too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from signgen import __version__, files
from signgen.atomic import atomic_folder, is_replaceable_folder
from signgen.errors import SigngenError
from signgen.files import MANIFEST_NAME
from signgen.models.loading import load_module
from signgen.models.noise_schedule import load_noise_scheduler

KIND = "signgen-hand-model"
FORMAT_VERSION = 1
WHAT = "signgen hand model"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
SCHEDULER_FOLDER = "scheduler"
TRAINED_MODEL_FOLDER = "model"  # a training run's output folder holds the model here
IMAGE_CHANNELS = 3
KEYPOINT_CHANNELS = 6  # signgen.poses.hands.HAND_PARTS
PREDICTION_TYPE = "sample"
# What of its crop the hand stage pastes back: the hand's feathered hull ("hand"), or the
# whole crop faded at its edge ("crop": a model trained on render bases also clears what the
# bent photo hand leaves outside the target hand).
PASTE_REGIONS = ("hand", "crop")


class DetailHead(torch.nn.Module):
    """Residual convolutions (3 x 3, ``channels`` wide, ``layers`` deep) at the crop's full
    resolution over the clean estimate, the keypoint map and the base: a change of the
    estimate, zero at initialisation."""

    def __init__(self, channels: int, layers: int):
        super().__init__()
        self.conv_in = torch.nn.Conv2d(2 * IMAGE_CHANNELS + KEYPOINT_CHANNELS, channels, 3, padding=1)
        self.blocks = torch.nn.ModuleList(torch.nn.Conv2d(channels, channels, 3, padding=1) for _ in range(layers))
        self.conv_out = torch.nn.Conv2d(channels, IMAGE_CHANNELS, 3, padding=1)
        torch.nn.init.zeros_(self.conv_out.weight)
        torch.nn.init.zeros_(self.conv_out.bias)

    def forward(self, estimate: torch.Tensor, keypoints: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        hidden = F.silu(self.conv_in(torch.cat([estimate, keypoints, base], dim=1)))
        for conv in self.blocks:
            hidden = hidden + F.silu(conv(hidden))
        return self.conv_out(hidden)


class HandModel(ModelMixin, ConfigMixin):
    """Crops are float (B, 3, S, S) in [-1, 1], keypoint maps (B, 6, S, S) in [0, 1].

    ``margin`` and ``min_side`` (a share of the frame's height) fix how a hand's crop box is
    drawn around its keypoints (:func:`signgen.poses.hands.hand_crop_box`): the render crops
    as the training data did. ``paste``: see PASTE_REGIONS. With ``hide_hand`` the model draws
    the hand itself: its base has the target hand painted over from around it
    (:func:`signgen.poses.hands.hide_hand`), and its output replaces the frame's crop (an
    untrained one erases the hand); without, it corrects the base and an untrained model
    changes nothing."""

    config_name = CONFIG_NAME

    @register_to_config
    def __init__(
        self,
        crop_size: int = 64,
        patch_size: int = 2,
        block_out_channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 1,
        norm_num_groups: int = 16,
        attention_head_dim: int = 32,
        mid_attention: bool = True,
        margin: float = 0.35,
        min_side: float = 0.15,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "squaredcos_cap_v2",
        paste: str = "hand",
        hide_hand: bool = False,
        detail_channels: int = 0,
        detail_layers: int = 2,
    ):
        super().__init__()
        if paste not in PASTE_REGIONS:
            raise SigngenError(f"hand model paste must be one of {', '.join(PASTE_REGIONS)}, not {paste!r}")
        levels = len(block_out_channels)
        if crop_size % (patch_size * 2 ** (levels - 1)):
            raise SigngenError(f"hand model crop_size {crop_size} must be divisible by patch_size x 2^(levels - 1) = "
                               f"{patch_size * 2 ** (levels - 1)}")
        inputs = 3 * IMAGE_CHANNELS + KEYPOINT_CHANNELS
        self.unet = UNet2DModel(
            sample_size=crop_size // patch_size,
            in_channels=inputs * patch_size**2,
            out_channels=IMAGE_CHANNELS * patch_size**2,
            down_block_types=("DownBlock2D",) * levels,
            up_block_types=("UpBlock2D",) * levels,
            block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block,
            norm_num_groups=norm_num_groups,
            attention_head_dim=attention_head_dim,
            add_attention=mid_attention,
        )
        # The residual starts at zero: an untrained model returns the base unchanged.
        torch.nn.init.zeros_(self.unet.conv_out.weight)
        torch.nn.init.zeros_(self.unet.conv_out.bias)
        self.detail = DetailHead(detail_channels, detail_layers) if detail_channels > 0 else None
        self.noise_scheduler = make_noise_scheduler(num_train_timesteps, beta_schedule)

    @property
    def crop_size(self) -> int:
        return int(self.config.crop_size)

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, keypoints: torch.Tensor, appearance: torch.Tensor,
                base: torch.Tensor) -> torch.Tensor:
        """The clean crop (B, 3, S, S) predicted from the noisy one at ``timesteps`` (B,):
        ``base`` + the UNet's residual (then the detail head's change, where there is one)."""
        self.check_inputs(noisy, keypoints, appearance, base)
        patch = int(self.config.patch_size)
        inputs = torch.cat([noisy, keypoints, appearance, base], dim=1).to(self.dtype)
        if patch > 1:
            inputs = F.pixel_unshuffle(inputs, patch)
        residual = self.unet(inputs, timesteps).sample
        if patch > 1:
            residual = F.pixel_shuffle(residual, patch)
        estimate = base + residual.to(base.dtype)
        if self.detail is None:
            return estimate
        return estimate + self.detail(estimate.to(self.dtype), keypoints.to(self.dtype), base.to(self.dtype)).to(base.dtype)

    def check_inputs(self, noisy: torch.Tensor, keypoints: torch.Tensor, appearance: torch.Tensor, base: torch.Tensor) -> None:
        size = self.crop_size
        expected = {"noisy crop": (noisy, IMAGE_CHANNELS), "keypoint map": (keypoints, KEYPOINT_CHANNELS),
                    "appearance crop": (appearance, IMAGE_CHANNELS), "base crop": (base, IMAGE_CHANNELS)}
        for what, (tensor, channels) in expected.items():
            if tensor.dim() != 4 or tuple(tensor.shape[1:]) != (channels, size, size) or len(tensor) != len(noisy):
                raise SigngenError(f"hand model: the {what} must have shape ({len(noisy)}, {channels}, {size}, {size}), "
                                   f"got {tuple(tensor.shape)}")

    # ------------------------------------------------------------ save / load

    def save_pretrained(self, folder: str | os.PathLike, **kwargs) -> Path:
        """Write the model as one folder (see the module docstring), atomically; an existing
        hand-model folder is replaced, any other existing folder is refused."""
        folder = Path(folder)
        if folder.exists() and not is_replaceable_folder(folder, MANIFEST_NAME, KIND):
            raise SigngenError(f"refusing to overwrite {folder}: it exists and is not a {WHAT} folder")
        with atomic_folder(folder) as tmp:
            super().save_pretrained(tmp, safe_serialization=True)
            self.noise_scheduler.save_pretrained(tmp / SCHEDULER_FOLDER)
            manifest = {"kind": KIND, "format_version": FORMAT_VERSION, "signgen_version": __version__,
                        "crop_size": self.crop_size, "keypoint_channels": KEYPOINT_CHANNELS}
            (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **kwargs) -> "HandModel":
        """:func:`load_hand_model`."""
        return load_hand_model(folder)


def make_noise_scheduler(num_train_timesteps: int = 1000, beta_schedule: str = "squaredcos_cap_v2") -> DDPMScheduler:
    """The hand model's training noise schedule: it predicts the clean crop, clipped to
    [-1, 1] by every sampler, sampling starting at the last training step."""
    scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule,
                              prediction_type=PREDICTION_TYPE, clip_sample=True, clip_sample_range=1.0,
                              timestep_spacing="trailing")
    # Every field explicit, as after a save/load round trip (see FrameModel.attach_denoiser).
    return DDPMScheduler.from_config({k: v for k, v in scheduler.config.items() if not k.startswith("_")})


def build_hand_model(config) -> HandModel:
    """A new, untrained hand model of a ``hands`` config's ``model`` section
    (:class:`signgen.config.HandModelConfig`)."""
    return HandModel(
        crop_size=config.crop_size, patch_size=config.patch_size, block_out_channels=tuple(config.block_out_channels),
        layers_per_block=config.layers_per_block, norm_num_groups=config.norm_num_groups,
        attention_head_dim=config.attention_head_dim, mid_attention=config.mid_attention, margin=config.margin,
        min_side=config.min_side, num_train_timesteps=config.num_train_timesteps, beta_schedule=config.beta_schedule,
        paste=config.paste, hide_hand=config.hide_hand, detail_channels=config.detail_channels,
        detail_layers=config.detail_layers)


def load_hand_model(folder: str | os.PathLike) -> HandModel:
    """A hand model from its folder (or a ``signgen train hands`` output folder), every weight
    loaded strictly; every problem is one SigngenError line."""
    folder = Path(folder)
    if not (folder / MANIFEST_NAME).is_file() and (folder / TRAINED_MODEL_FOLDER / MANIFEST_NAME).is_file():
        folder = folder / TRAINED_MODEL_FOLDER
    manifest = files.read_manifest(folder, KIND, FORMAT_VERSION, WHAT)
    model = load_module(HandModel, folder / CONFIG_NAME, folder / WEIGHTS_NAME)
    scheduler = load_noise_scheduler(folder / SCHEDULER_FOLDER / DDPMScheduler.config_name)
    if scheduler.config.prediction_type != PREDICTION_TYPE:
        raise SigngenError(f"{folder}: the hand model predicts the clean crop; its noise schedule says "
                           f"prediction_type {scheduler.config.prediction_type!r}")
    if manifest.get("crop_size") != model.crop_size:
        raise SigngenError(f"{folder}: the manifest's crop_size {manifest.get('crop_size')!r} is not the model's {model.crop_size}")
    model.noise_scheduler = scheduler
    return model.eval()
