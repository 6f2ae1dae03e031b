"""The frame model: appearance encoder, pose encoder, fusion module and denoiser as one unit.

On disk it is one folder, diffusers-pipeline style::

    model_index.json            {"kind": "signgen-frame-model", "format_version": 1, ...}
    image_encoder/  config.json + diffusion_pytorch_model.safetensors
    pose_encoder/   ...
    fusion/         ...
    unet/           ...         (absent after stage 1 alone)
    vae/            ...         (only for latent diffusion)
    scheduler/      scheduler_config.json   (the training noise schedule)

Loading checks the manifest's kind, each component's class and files, loads every weight
file strictly, and checks that the components fit each other; any problem is one
SigngenError line. Only safetensors and JSON are read or written.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

from signgen import __version__
from signgen.atomic import atomic_folder, is_replaceable_folder
from signgen.config import ModelConfig
from signgen.models.denoiser import FrameConditions, build_unet, predict, unet_inputs
from signgen.models.pretrained import pretrained_unet, vae_folder
from signgen.models.reference import ReferenceState, install_reference_attention
from signgen.models.encoders import EncoderOutput, ImageEncoder
from signgen import files
from signgen.errors import SigngenError, first_line
from signgen.files import MANIFEST_NAME
from signgen.models.fusion import FusionModule
from signgen.models.loading import load_module
from signgen.models.noise_schedule import load_noise_scheduler

KIND = "signgen-frame-model"
FORMAT_VERSION = 1
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
CONFIG_NAME = "config.json"
SCHEDULER_FOLDER = "scheduler"

# The only classes a manifest may name: loading never imports what a file asks for.
COMPONENT_CLASSES: dict[str, type] = {
    "image_encoder": ImageEncoder,
    "pose_encoder": ImageEncoder,
    "fusion": FusionModule,
    "unet": UNet2DConditionModel,
    "vae": AutoencoderKL,
    "reference_unet": UNet2DConditionModel,
}
REQUIRED_COMPONENTS = ("image_encoder", "pose_encoder", "fusion")
IMAGE_CHANNELS = 3


@dataclass(frozen=True)
class Conditioning:
    """What a frame model's denoiser reads besides the pose map and appearance tokens
    (``model_index.json`` keeps the same keys): FPDM's fusion embedding, the photo warped
    to the pose (v2), the photo's self-attention features (v2), and whether it draws the
    residual from the warped photo."""

    use_fusion_embedding: bool = True
    coarse_image: bool = False
    reference_attention: bool = False
    coarse_residual: bool = False

    @classmethod
    def from_manifest(cls, manifest: dict) -> "Conditioning":
        defaults = cls()
        return cls(**{name: bool(manifest.get(name, getattr(defaults, name))) for name in cls.__dataclass_fields__})


class FrameModel(torch.nn.Module):
    """Encoders + fusion (stage 1) and, once stage 2 is attached, UNet + noise schedule.

    Images are float (B, 3, H, W) in [-1, 1]; pose maps float (B, C, H, W) in [0, 1], both
    at :attr:`resolution`.
    """

    def __init__(
        self,
        image_encoder: ImageEncoder,
        pose_encoder: ImageEncoder,
        fusion: FusionModule,
        unet: UNet2DConditionModel | None = None,
        noise_scheduler: DDPMScheduler | None = None,
        vae: AutoencoderKL | None = None,
        conditioning: Conditioning = Conditioning(),
        reference_unet: UNet2DConditionModel | None = None,
    ):
        super().__init__()
        self.image_encoder = image_encoder
        self.pose_encoder = pose_encoder
        self.fusion = fusion
        self.unet = unet
        self.vae = vae
        self.noise_scheduler = noise_scheduler
        self.use_fusion_embedding = conditioning.use_fusion_embedding
        self.coarse_image = conditioning.coarse_image
        self.reference_attention = conditioning.reference_attention
        if conditioning.coarse_residual and not conditioning.coarse_image:
            raise SigngenError("a frame model drawing the residual from the coarse image needs the coarse image")
        self.coarse_residual = conditioning.coarse_residual
        if vae is not None:
            vae.requires_grad_(False)
        # The reference path's own UNet (AnimateAnyone's ReferenceNet: model.reference_net
        # copy); None: the denoiser's own weights write the reference features.
        self.reference_unet = reference_unet
        for network in (unet, reference_unet):
            if network is not None and conditioning.reference_attention:
                install_reference_attention(network)

    # ----------------------------------------------------------------- building

    @classmethod
    def from_config(cls, config: ModelConfig, with_denoiser: bool = True) -> "FrameModel":
        """A new, untrained model; ``with_denoiser=False`` builds stage 1 only."""
        resolution = tuple(config.resolution)
        if config.encoder.backbone == "clip":
            image_encoder = ImageEncoder.from_clip(config.encoder.clip_path, resolution, config.fusion.embed_dim)
        else:
            image_encoder = ImageEncoder(image_size=resolution, in_channels=IMAGE_CHANNELS, embed_dim=config.fusion.embed_dim, **_vit_fields(config.encoder))
        pose_encoder = ImageEncoder(image_size=resolution, in_channels=config.pose_channels, embed_dim=config.fusion.embed_dim, **_vit_fields(config.pose_encoder))
        fusion = FusionModule(
            embed_dim=config.fusion.embed_dim,
            hidden_dim=config.fusion.hidden_dim,
            dropout=config.fusion.dropout,
            temperature_init=config.fusion.temperature_init,
        )
        model = cls(image_encoder, pose_encoder, fusion)
        if with_denoiser:
            model.attach_denoiser(config)
        return model

    def attach_denoiser(self, config: ModelConfig) -> None:
        """Add a new stage-2 denoiser (UNet, noise schedule, optional VAE) sized by ``config``
        to the encoders and fusion module this model already holds."""
        vae_path = vae_folder(config)  # latent.vae_path, or the vae/ of an init_from pipeline folder
        self.vae = vae = load_vae(vae_path) if vae_path else None
        self.use_fusion_embedding = config.use_fusion_embedding
        self.coarse_image = config.coarse_image
        self.reference_attention = config.reference_attention
        self.coarse_residual = config.coarse_residual
        self.unet = self._new_unet(config)
        # AnimateAnyone's ReferenceNet: a trainable copy of the (pretrained) UNet writes the features.
        self.reference_unet = copy.deepcopy(self.unet) if config.reference_net == "copy" else None
        scheduler = DDPMScheduler(
            num_train_timesteps=config.noise.num_train_timesteps,
            beta_schedule=config.noise.beta_schedule,
            prediction_type=config.noise.prediction_type,
            # Pixels are known to lie in [-1, 1], latents are not: in pixel space every
            # sampler that supports it clips its clean-image estimate to [-1, 1].
            clip_sample=vae is None,
            thresholding=vae is None,
            # A residual from the coarse image is a difference of two such images.
            clip_sample_range=2.0 if config.coarse_residual else 1.0,
            sample_max_value=2.0 if config.coarse_residual else 1.0,
            # Sampling schedulers inherit this: start at the last training step.
            timestep_spacing="trailing",
        )
        # Every field explicit, as after a save/load round trip: otherwise diffusers lets a
        # sampling scheduler built from_config use its own defaults for unset fields, and a
        # fresh model would sample differently from its saved copy.
        self.noise_scheduler = DDPMScheduler.from_config({k: v for k, v in scheduler.config.items() if not k.startswith("_")})

    def _new_unet(self, config: ModelConfig) -> UNet2DConditionModel:
        """The stage-2 UNet: new (random weights), or the pretrained UNet of
        ``config.init_from`` widened for signgen's conditions (``signgen.models.pretrained``)."""
        channels, height, width = self.sample_shape
        shape = {"sample_size": (height, width), "sample_channels": channels, "pose_channels": self.pose_channels,
                 "token_dim": self.image_encoder.token_dim,
                 "fusion_dim": self.fusion.config.embed_dim if config.use_fusion_embedding else None,
                 "coarse_channels": channels + 1 if config.coarse_image else 0}
        if not config.init_from:
            return build_unet(config.unet, **shape, reference_attention=config.reference_attention)
        return pretrained_unet(config.init_from, config.unet, unet_inputs(config.unet, **shape), config.reference_attention)

    # ------------------------------------------------------------- properties

    @property
    def resolution(self) -> tuple[int, int]:
        height, width = self.image_encoder.config.image_size
        return int(height), int(width)

    @property
    def pose_channels(self) -> int:
        return int(self.pose_encoder.config.in_channels)

    @property
    def vae_scale_factor(self) -> int:
        return 1 if self.vae is None else 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of what the UNet denoises: pixels or VAE latents."""
        height, width = self.resolution
        factor = self.vae_scale_factor
        channels = IMAGE_CHANNELS if self.vae is None else int(self.vae.config.latent_channels)
        return channels, height // factor, width // factor

    @property
    def patch_size(self) -> int:
        """Pixels per side of the blocks the UNet denoises (see ``signgen.models.denoiser``): the
        ratio of the sample size to the UNet's own working size."""
        if self.unet is None:
            return 1
        return self.sample_shape[1] // int(self.unet.config.sample_size[0])

    @property
    def has_denoiser(self) -> bool:
        return self.unet is not None

    # ---------------------------------------------------------------- compute

    def encode_appearance(self, images: torch.Tensor) -> EncoderOutput:
        """Tokens and global embedding of (B, 3, H, W) images; compute once per video."""
        self._check_images(images, IMAGE_CHANNELS, "signer image")
        return self.image_encoder(images)

    def fuse(self, appearance_embedding: torch.Tensor, pose_maps: torch.Tensor) -> torch.Tensor:
        """Fusion embeddings (B, E) of appearance embeddings (B or 1, E) and pose maps (B, C, H, W)."""
        self._check_images(pose_maps, self.pose_channels, "pose map")
        pose_embedding = self.pose_encoder(pose_maps * 2 - 1).embedding
        return self.fusion(appearance_embedding.expand(len(pose_maps), -1), pose_embedding)

    def frame_conditions(self, appearance: EncoderOutput, pose_maps: torch.Tensor, coarse: torch.Tensor | None = None,
                         reference: ReferenceState | None = None) -> FrameConditions:
        """Per-frame conditions for pose maps (F, C, H, W) from one appearance encoding
        (batch 1, broadcast to every frame, or batch F); for a v2 model also the coarse
        images (:meth:`coarse_condition`) and the reference state of the photo(s)
        (:meth:`reference_features`; rows index its bank, default all 0: one photo)."""
        frames = len(pose_maps)
        tokens = appearance.tokens.expand(frames, -1, -1)
        fusion_embedding = self.fuse(appearance.embedding, pose_maps) if self.use_fusion_embedding else None
        if self.coarse_image and coarse is None:
            raise SigngenError("this frame model draws from a coarse image: pass the photo warped to each pose")
        if self.reference_attention:
            if reference is None:
                raise SigngenError("this frame model reads the photo's reference features: compute them first")
            if reference.rows is None:
                reference = ReferenceState("read", reference.bank, torch.zeros(frames, dtype=torch.long, device=pose_maps.device))
        return FrameConditions(pose_maps=pose_maps, appearance_tokens=tokens, fusion_embedding=fusion_embedding,
                               coarse=coarse if self.coarse_image else None,
                               reference=reference if self.reference_attention else None)

    def coarse_condition(self, coarse_images: torch.Tensor, uncovered: torch.Tensor) -> torch.Tensor:
        """The coarse-image channels (B, c + 1, h, w): coarse images (B, 3, H, W) in [-1, 1]
        taken to the sample space, and their uncovered masks (B, 1, H, W) in {0, 1} at
        the sample's size (the share of each sample cell left uncovered)."""
        self._check_images(coarse_images, IMAGE_CHANNELS, "coarse image")
        sample = self.to_sample_space(coarse_images, deterministic=True)
        mask = F.interpolate(uncovered.to(sample.dtype), size=sample.shape[-2:], mode="area")
        return torch.cat([sample, mask * 2 - 1], dim=1)

    def residual_base(self, conditions: FrameConditions) -> torch.Tensor | float:
        """What the denoised sample is added to: the coarse image in the sample space for a
        model that draws the residual from it (``coarse_residual``), else 0. Take it from
        unmasked conditions: it is part of the parameterisation, not a condition that
        guidance drops."""
        if not self.coarse_residual:
            return 0.0
        return conditions.coarse[:, : self.sample_shape[0]]

    def reference_features(self, images: torch.Tensor, appearance: EncoderOutput, sample: torch.Tensor | None = None) -> ReferenceState:
        """The reference bank of source images (R, 3, H, W): one UNet pass on their clean
        sample at timestep 0 with their own appearance tokens and no other condition.
        Compute once per video (or per batch of training pairs). ``sample``: the images
        already in the sample space (a latent cache), else they are encoded."""
        self.require_denoiser()
        sample = self.to_sample_space(images, deterministic=True) if sample is None else sample
        state = ReferenceState("write")
        count = len(images)
        zeros = torch.zeros(count, self.pose_channels, *self.resolution, dtype=sample.dtype, device=sample.device)
        conditions = FrameConditions(
            pose_maps=zeros,
            appearance_tokens=appearance.tokens.expand(count, -1, -1),
            fusion_embedding=None if not self.use_fusion_embedding else torch.zeros(count, self.fusion.config.embed_dim, dtype=sample.dtype, device=sample.device),
            coarse=None if not self.coarse_image else torch.zeros(count, sample.shape[1] + 1, *sample.shape[-2:], dtype=sample.dtype, device=sample.device),
            reference=state,
        )
        writer = self.unet if self.reference_unet is None else self.reference_unet
        predict(writer, sample, torch.zeros(count, dtype=torch.long, device=sample.device), conditions, self.patch_size)
        return ReferenceState("read", state.bank)

    def predict(self, sample: torch.Tensor, timesteps: torch.Tensor, conditions: FrameConditions) -> torch.Tensor:
        self.require_denoiser()
        return predict(self.unet, sample, timesteps, conditions, self.patch_size)

    def to_sample_space(self, images: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Images in the space the UNet denoises: pixels, or VAE latents (sampled from the
        posterior for training targets; its mean for conditions, ``deterministic``)."""
        if self.vae is None:
            return images
        posterior = self.vae.encode(images.to(self.vae.dtype)).latent_dist
        latents = posterior.mode() if deterministic else posterior.sample()
        return latents * self.vae.config.scaling_factor

    def from_sample_space(self, samples: torch.Tensor) -> torch.Tensor:
        if self.vae is None:
            return samples
        return self.vae.decode(samples.to(self.vae.dtype) / self.vae.config.scaling_factor).sample

    def require_denoiser(self) -> None:
        if self.unet is None or self.noise_scheduler is None:
            raise SigngenError("this frame model holds only the fusion stage; train the denoiser first (signgen train diffusion)")

    def _check_images(self, images: torch.Tensor, channels: int, what: str) -> None:
        expected = (channels, *self.resolution)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise SigngenError(f"{what} must have shape (B, {', '.join(map(str, expected))}), got {tuple(images.shape)}")

    # ------------------------------------------------------------ save / load

    def components(self) -> dict[str, torch.nn.Module]:
        present = {"image_encoder": self.image_encoder, "pose_encoder": self.pose_encoder, "fusion": self.fusion, "unet": self.unet, "vae": self.vae,
                   "reference_unet": self.reference_unet}
        return {name: module for name, module in present.items() if module is not None}

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write the model as one folder (see the module docstring). The folder is built under
        a temporary name and renamed into place; an existing frame-model folder is replaced,
        any other existing folder is refused."""
        folder = Path(folder)
        if folder.exists() and not is_replaceable_folder(folder, MANIFEST_NAME, KIND):
            raise SigngenError(f"refusing to overwrite {folder}: it exists and is not a signgen frame model folder")
        with atomic_folder(folder) as tmp:
            for name, module in self.components().items():
                module.save_pretrained(tmp / name, safe_serialization=True)
            if self.noise_scheduler is not None:
                self.noise_scheduler.save_pretrained(tmp / SCHEDULER_FOLDER)
            manifest = {
                "kind": KIND,
                "format_version": FORMAT_VERSION,
                "signgen_version": __version__,
                "resolution": list(self.resolution),
                "pose_channels": self.pose_channels,
                "use_fusion_embedding": self.use_fusion_embedding,
                "coarse_image": self.coarse_image,
                "reference_attention": self.reference_attention,
                "coarse_residual": self.coarse_residual,
                "components": {name: type(module).__name__ for name, module in self.components().items()},
            }
            (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> "FrameModel":
        """Load a folder written by :meth:`save_pretrained`; every problem is a SigngenError."""
        folder = Path(folder)
        manifest = read_frame_model_manifest(folder)
        names = manifest["components"]
        modules = {name: _load_component(folder, name, class_name) for name, class_name in names.items()}
        noise_scheduler = None
        if "unet" in modules:
            noise_scheduler = load_noise_scheduler(folder / SCHEDULER_FOLDER / DDPMScheduler.config_name)
        model = cls(
            modules["image_encoder"],
            modules["pose_encoder"],
            modules["fusion"],
            unet=modules.get("unet"),
            noise_scheduler=noise_scheduler,
            vae=modules.get("vae"),
            conditioning=Conditioning.from_manifest(manifest),
            reference_unet=modules.get("reference_unet"),
        )
        _check_consistency(model, manifest, folder)
        return model.eval()


def read_frame_model_manifest(folder: Path) -> dict[str, Any]:
    """The validated manifest of a frame-model folder."""
    manifest = files.read_manifest(folder, KIND, FORMAT_VERSION, "signgen frame model")
    path = folder / MANIFEST_NAME
    components = manifest.get("components")
    if not isinstance(components, dict) or not all(isinstance(v, str) for v in components.values()):
        raise SigngenError(f"{path}: 'components' must map component names to class names")
    missing = [name for name in REQUIRED_COMPONENTS if name not in components]
    if missing:
        raise SigngenError(f"{path} lacks the component(s) {', '.join(missing)}")
    for name in ("vae", "reference_unet"):
        if name in components and "unet" not in components:
            raise SigngenError(f"{path} lists a {name} without a unet")
    return manifest


def _load_component(folder: Path, name: str, class_name: str) -> torch.nn.Module:
    cls = COMPONENT_CLASSES.get(name)
    if cls is None:
        raise SigngenError(f"{folder}: unknown component {name!r} in {MANIFEST_NAME}")
    if class_name != cls.__name__:
        raise SigngenError(f"{folder}: component {name!r} is a {class_name}, expected {cls.__name__}")
    subfolder = folder / name
    return load_module(cls, subfolder / CONFIG_NAME, subfolder / WEIGHTS_NAME)


def _check_consistency(model: FrameModel, manifest: dict, folder: Path) -> None:
    """Components saved together must fit together; a file swapped in from another model
    must not load silently."""
    problems = []
    if list(model.resolution) != manifest.get("resolution"):
        problems.append(f"image encoder resolution {list(model.resolution)} != manifest {manifest.get('resolution')}")
    if tuple(model.pose_encoder.config.image_size) != tuple(model.image_encoder.config.image_size):
        problems.append("pose and image encoders have different resolutions")
    if model.pose_channels != manifest.get("pose_channels"):
        problems.append(f"pose encoder reads {model.pose_channels} channels, manifest says {manifest.get('pose_channels')}")
    embed_dim = model.fusion.config.embed_dim
    for name in ("image_encoder", "pose_encoder"):
        if getattr(model, name).config.embed_dim != embed_dim:
            problems.append(f"{name} embedding size differs from the fusion module's {embed_dim}")
    if model.unet is not None:
        config = model.unet.config
        channels, height, width = model.sample_shape
        patch = model.patch_size
        coarse = channels + 1 if model.coarse_image else 0
        if patch < 1 or list(config.sample_size) != [height // patch, width // patch] or height % patch or width % patch:
            problems.append(f"unet sample size {list(config.sample_size)} is not the {[height, width]} sample in whole patches")
        elif config.in_channels != (channels + model.pose_channels + coarse) * patch**2 or config.out_channels != channels * patch**2:
            problems.append(f"unet channels {config.in_channels}->{config.out_channels} do not fit {channels} sample + {coarse} coarse + "
                            f"{model.pose_channels} pose channels in {patch}x{patch} patches")
        token_dim = config.encoder_hid_dim or config.cross_attention_dim
        if token_dim != model.image_encoder.token_dim:
            problems.append(f"unet expects {token_dim}-wide appearance tokens, the encoder gives {model.image_encoder.token_dim}")
        wants_fusion = config.class_embed_type == "projection"
        if wants_fusion != model.use_fusion_embedding:
            problems.append("unet class embedding does not match use_fusion_embedding in the manifest")
        if wants_fusion and config.projection_class_embeddings_input_dim != embed_dim:
            problems.append(f"unet fusion input {config.projection_class_embeddings_input_dim} != fusion embedding {embed_dim}")
    if model.reference_unet is not None and _public(model.reference_unet.config) != _public(model.unet.config):
        problems.append("the reference unet is not a copy of the unet's shape")
    if problems:
        raise SigngenError(f"{folder}: components do not fit together: {problems[0]}")


def _public(config) -> dict:
    return {key: value for key, value in config.items() if not key.startswith("_")}


def _vit_fields(encoder) -> dict[str, Any]:
    return {
        "backbone": "vit",
        "patch_size": encoder.patch_size,
        "hidden_size": encoder.hidden_size,
        "num_layers": encoder.num_layers,
        "num_heads": encoder.num_heads,
        "intermediate_size": encoder.intermediate_size,
    }


def load_vae(path: str) -> AutoencoderKL:
    """The AutoencoderKL of a local diffusers folder (a Stable Diffusion VAE, or one trained
    here). Under ``torch.device("meta")`` only its config.json is read: the model is built
    in shapes alone, as for sizing a configuration without its weights."""
    if not Path(path).is_dir():
        raise SigngenError(f"VAE folder not found: {path}")
    config_path = Path(path) / CONFIG_NAME
    if not config_path.is_file():
        raise SigngenError(f"{path} is not a diffusers autoencoder folder: it has no {CONFIG_NAME}")
    kind = files.read_json_object(config_path, "autoencoder config").get("_class_name", "AutoencoderKL")
    if kind != "AutoencoderKL":
        raise SigngenError(f"{path} holds a {kind}, not an AutoencoderKL (latent.vae_path takes a VAE folder, "
                           f"e.g. a Stable Diffusion model's vae/)")
    try:
        if torch.empty(0).is_meta:
            return AutoencoderKL.from_config(AutoencoderKL.load_config(path))
        return AutoencoderKL.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as error:
        raise SigngenError(f"cannot load an AutoencoderKL from {path}: {first_line(error)}") from None
