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

from signgen.errors import SigngenError
from signgen.files import open_image, to_rgb, upright
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
    from PIL import Image

    if fit not in ("pad", "crop"):
        raise SigngenError(f"fit must be 'pad' or 'crop', not {fit!r}")
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        # The stored size is checked before decoding (a huge file never reaches memory).
        pil = open_image(path, "signer image", check_size=lambda size: _check_signer_size(size, path))
    elif isinstance(image, Image.Image):
        pil = upright(image)  # an opened camera photo still carries its orientation tag
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
    frame, in the photo's pixels: a header of another frame size is refused, as the pose
    of another picture), or ``(xy, confidence)`` arrays in the photo's pixels; ``None`` runs
    MediaPipe Holistic on the photo. Points more than a frame's width or height outside
    the photo are taken as missing. A pose without shoulders is one SigngenError line
    saying what is wrong with the pose given: the coarse image needs to know where the
    signer stands."""
    from signgen.poses.holistic import pose_arrays, reduce_to_178

    height, width = photo.pixels.shape[:2]
    given = "the signer pose" + (f" {signer_pose}" if isinstance(signer_pose, (str, os.PathLike)) else "")
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
        dims = pose.header.dimensions
        if (dims.width, dims.height) != (width, height):
            # Scaling a pose of another picture onto this one smears the render.
            raise SigngenError(f"{given} is of a {dims.width} x {dims.height} picture, the signer photo is {width} x "
                               f"{height}; give the photo's own pose (signgen poses extract PHOTO -o IN.pose)")
        xy, confidence = pose_arrays(reduce_to_178(pose))
        if len(xy) == 0:
            raise SigngenError(f"{given} has no frames")
        xy, confidence = xy[0].astype(np.float64), confidence[0].astype(np.float64)
    if xy.shape != (skeleton.NUM_POINTS, 2) or confidence.shape != (skeleton.NUM_POINTS,):
        raise SigngenError(f"{given} must have {skeleton.NUM_POINTS} points, got {xy.shape}")
    visible = confidence > 0
    inside = visible & _near_frame(xy, width, height)
    confidence = np.where(inside, confidence, 0.0)
    shoulders = inside[[skeleton.LEFT_SHOULDER, skeleton.RIGHT_SHOULDER]].all()
    if signer_pose is None:
        if not shoulders:
            raise SigngenError("no person found in the signer photo (no shoulders); give its pose with --signer-pose "
                               "(signgen poses extract) or use a photo that shows the signer's upper body")
    elif not visible.any():
        raise SigngenError(f"{given} has no visible keypoints in its first frame (every confidence is 0); "
                           f"extract it again from the photo (signgen poses extract PHOTO -o IN.pose)")
    elif not inside.any():
        raise SigngenError(f"{given} has no keypoint within its {width} x {height} picture (coordinates far outside "
                           f"it); extract it again from the photo (signgen poses extract PHOTO -o IN.pose)")
    elif not shoulders:
        raise SigngenError(f"{given} shows no shoulders within its {width} x {height} picture; the signer's "
                           f"upper body must be seen (signgen poses extract PHOTO -o IN.pose)")
    return photo.to_model(np.where(inside[:, None], xy, 0.0)), confidence


def _near_frame(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Which points lie within one frame's width and height of a ``width`` x ``height``
    frame: a hand just out of the picture is kept, a coordinate of 1e6 (which would ask
    OpenCV for gigabytes when the photo is warped) is not."""
    with np.errstate(invalid="ignore"):
        return (np.isfinite(xy).all(axis=-1) & (xy[:, 0] >= -width) & (xy[:, 0] <= 2 * width)
                & (xy[:, 1] >= -height) & (xy[:, 1] <= 2 * height))


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
