"""The signer photo as the frame model reads it: any image, at the model's resolution.

The bundled signer (``signgen/assets/signer.png``, drawn by ``signgen data signer-photo``)
is the default photo of every render.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signgen.errors import SigngenError, first_line
from signgen.files import to_rgb

DEFAULT_SIGNER_PHOTO = Path(__file__).resolve().parents[1] / "assets" / "signer.png"

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
    else:
        fitted = _letterbox(rgb, width, height)
    array = np.asarray(fitted, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def _check_signer_size(size: tuple[int, int], what: Any) -> None:
    width, height = size
    if min(width, height) < MIN_SIGNER_SIDE:
        raise SigngenError(f"{what} is {width}x{height} px; a signer photo needs at least {MIN_SIGNER_SIDE} px per side")
    if max(width, height) > MAX_SIGNER_SIDE:
        raise SigngenError(f"{what} is {width}x{height} px; at most {MAX_SIGNER_SIDE} px per side, please downscale it")
    if max(width, height) / min(width, height) > MAX_SIGNER_ASPECT:
        raise SigngenError(f"{what} is {width}x{height} px, too elongated for a signer photo")


def _letterbox(rgb, width: int, height: int):
    from PIL import Image

    scale = min(width / rgb.width, height / rgb.height)
    inner = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    resized = rgb.resize(inner, Image.Resampling.LANCZOS)
    border = np.concatenate([np.asarray(resized)[[0, -1]].reshape(-1, 3), np.asarray(resized)[:, [0, -1]].reshape(-1, 3)])
    canvas = Image.new("RGB", (width, height), tuple(int(v) for v in np.median(border, axis=0)))
    canvas.paste(resized, ((width - inner[0]) // 2, (height - inner[1]) // 2))
    return canvas
