"""The signer photo as the frame model reads it: any image, at the model's resolution.

The bundled signer (``signgen/assets/signer.png``, drawn by ``signgen data signer-photo``)
is the default photo of every render.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signgen.errors import SigngenError, first_line
from signgen.files import to_rgb
from signgen.poses import skeleton

DEFAULT_SIGNER_PHOTO = Path(__file__).resolve().parents[1] / "assets" / "signer.png"
# What the bundled photo shows, written beside it by `signgen data signer-photo`.
DEFAULT_SIGNER_POSE = DEFAULT_SIGNER_PHOTO.with_suffix(".pose")

MIN_SIGNER_SIDE = 16
MAX_SIGNER_SIDE = 10_000
MAX_SIGNER_ASPECT = 8.0


def load_signer_image(image: Any, resolution: tuple[int, int], fit: str = "pad") -> torch.Tensor:
    """A signer photo as a (3, H, W) float tensor in [-1, 1] at ``resolution`` (H, W).

    ``image`` is a file path, a PIL image or a uint8 array (H, W), (H, W, 3) or (H, W, 4).
    Transparency is composited on white, grayscale becomes RGB. ``fit="pad"`` keeps the
    whole photo and pads to the model's aspect ratio with the photo's median border colour;
    ``fit="crop"`` crops the centre instead. Unreadable files, non-images and images that
    are tiny, huge or absurdly elongated are one-line SigngenErrors.
    """
    return signer_photo(image, resolution, fit).image


@dataclass
class SignerPhoto:
    """A signer photo read for a model: ``image`` (3, H, W) in [-1, 1] at the model's
    resolution, ``pixels`` the photo itself (uint8 RGB, its own size) and ``placement``
    ``(scale_x, scale_y, offset_x, offset_y)``: photo pixel (x, y) lies at model pixel
    (x * scale_x + offset_x, y * scale_y + offset_y)."""

    image: torch.Tensor
    pixels: np.ndarray
    placement: tuple[float, float, float, float]

    def to_model(self, xy: np.ndarray) -> np.ndarray:
        scale_x, scale_y, offset_x, offset_y = self.placement
        return np.asarray(xy, np.float64) * [scale_x, scale_y] + [offset_x, offset_y]


def signer_photo(image: Any, resolution: tuple[int, int], fit: str = "pad") -> SignerPhoto:
    """The photo ``image`` read, checked and fitted to ``resolution`` as
    :func:`load_signer_image` describes, with where its pixels went."""
    from PIL import Image, UnidentifiedImageError

    if fit not in ("pad", "crop"):
        raise SigngenError(f"fit must be 'pad' or 'crop', not {fit!r}")
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise SigngenError(f"signer image not found: {path}")
        try:
            with Image.open(path) as opened:
                _check_signer_size(opened.size, path)
                pil = opened.copy()
        except UnidentifiedImageError:
            raise SigngenError(f"not an image file (or an unsupported format): {path}") from None
        except (OSError, Image.DecompressionBombError) as error:
            raise SigngenError(f"cannot read signer image {path}: {first_line(error)}") from None
    elif isinstance(image, Image.Image):
        pil = image
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
            raise SigngenError(f"a signer image array must be uint8 (H, W), (H, W, 3) or (H, W, 4), got {image.dtype} {image.shape}")
        pil = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    else:
        raise SigngenError(f"unsupported signer image of type {type(image).__name__}")
    _check_signer_size(pil.size, "signer image")
    rgb = to_rgb(pil)
    height, width = resolution
    if fit == "crop":
        from PIL import ImageOps

        fitted = ImageOps.fit(rgb, (width, height), method=Image.Resampling.LANCZOS)
        scale = max(width / rgb.width, height / rgb.height)
        placement = (scale, scale, (width - rgb.width * scale) / 2, (height - rgb.height * scale) / 2)
    else:
        fitted = _letterbox(rgb, width, height)
        inner = _letterbox_size(rgb, width, height)
        placement = (inner[0] / rgb.width, inner[1] / rgb.height, (width - inner[0]) // 2, (height - inner[1]) // 2)
    array = np.asarray(fitted, dtype=np.float32) / 127.5 - 1.0
    return SignerPhoto(torch.from_numpy(array).permute(2, 0, 1).contiguous(), np.asarray(rgb), tuple(float(v) for v in placement))


def photo_keypoints(photo: SignerPhoto, signer_pose: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The photo's pose in model pixels: ``xy`` (178, 2) and ``confidence`` (178,).

    ``signer_pose`` is a ``pose_format.Pose`` or ``.pose`` file of the photo (its first
    frame, in the photo's pixels; a header of another frame size is scaled to the photo),
    or ``(xy, confidence)`` arrays in the photo's pixels; ``None`` runs MediaPipe Holistic on
    the photo. A photo in which no shoulders are found is one SigngenError line: the
    coarse image needs to know where the signer stands."""
    from signgen.poses.holistic import pose_arrays, reduce_to_178

    height, width = photo.pixels.shape[:2]
    if isinstance(signer_pose, tuple):
        xy, confidence = (np.asarray(a, np.float64) for a in signer_pose)
    else:
        if signer_pose is None:
            from signgen.poses.extract import extract_pose_from_frames

            pose = extract_pose_from_frames(photo.pixels[None], progress=False, static=True)
        elif isinstance(signer_pose, (str, os.PathLike)):
            from signgen.poses.io import read_pose

            pose = read_pose(signer_pose)
        else:
            pose = signer_pose
        xy, confidence = pose_arrays(reduce_to_178(pose))
        if len(xy) == 0:
            raise SigngenError("the signer's pose has no frames")
        dims = pose.header.dimensions
        xy, confidence = xy[0].astype(np.float64), confidence[0].astype(np.float64)
        if dims.width > 0 and dims.height > 0 and (dims.width, dims.height) != (width, height):
            xy = xy * [width / dims.width, height / dims.height]
    if xy.shape != (skeleton.NUM_POINTS, 2) or confidence.shape != (skeleton.NUM_POINTS,):
        raise SigngenError(f"the signer's pose must have {skeleton.NUM_POINTS} points, got {xy.shape}")
    if not (confidence[[skeleton.LEFT_SHOULDER, skeleton.RIGHT_SHOULDER]] > 0).all() or not np.isfinite(xy[confidence > 0]).all():
        raise SigngenError("no person found in the signer photo (no shoulders); give its pose with --signer-pose "
                           "(signgen poses extract) or use a photo that shows the signer's upper body")
    return photo.to_model(xy), confidence


def _check_signer_size(size: tuple[int, int], what: Any) -> None:
    width, height = size
    if min(width, height) < MIN_SIGNER_SIDE:
        raise SigngenError(f"{what} is {width}x{height} px; a signer photo needs at least {MIN_SIGNER_SIDE} px per side")
    if max(width, height) > MAX_SIGNER_SIDE:
        raise SigngenError(f"{what} is {width}x{height} px; at most {MAX_SIGNER_SIDE} px per side, please downscale it")
    if max(width, height) / min(width, height) > MAX_SIGNER_ASPECT:
        raise SigngenError(f"{what} is {width}x{height} px, too elongated for a signer photo")


def _letterbox_size(rgb, width: int, height: int) -> tuple[int, int]:
    scale = min(width / rgb.width, height / rgb.height)
    return max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))


def _letterbox(rgb, width: int, height: int):
    from PIL import Image

    inner = _letterbox_size(rgb, width, height)
    resized = rgb.resize(inner, Image.Resampling.LANCZOS)
    border = np.concatenate([np.asarray(resized)[[0, -1]].reshape(-1, 3), np.asarray(resized)[:, [0, -1]].reshape(-1, 3)])
    canvas = Image.new("RGB", (width, height), tuple(int(v) for v in np.median(border, axis=0)))
    canvas.paste(resized, ((width - inner[0]) // 2, (height - inner[1]) // 2))
    return canvas
