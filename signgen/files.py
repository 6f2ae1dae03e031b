"""Reading the small files every room reads: images and JSON objects.

A dependency-free leaf like :mod:`signgen.errors` and :mod:`signgen.atomic`:
``signgen.poses`` and ``signgen.video`` import it too, so that an image or a manifest is
read one way everywhere, with one list of image suffixes and one-line errors.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from signgen.errors import SigngenError, first_line

# Image files read as frames or photos, lower case.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# Video files signgen writes (the suffix picks the format: H.264 mp4 or a GIF preview).
VIDEO_OUTPUT_SUFFIXES = (".mp4", ".gif")


def natural_key(name: str) -> list:
    """Sort key putting ``images10.png`` after ``images9.png`` even without zero padding."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def to_rgb(image: Any) -> Any:
    """A PIL image as 8-bit RGB, whatever its mode: transparency composited on white,
    16-bit and 32-bit integer grayscale scaled to 8 bits (not clipped to white)."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image, dtype=np.float64)
        full_scale = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        scaled = np.clip(values / full_scale * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(values * (255.0 if values.max(initial=0) <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def open_image(path: str | os.PathLike, what: str = "image", check_size: Callable[[tuple[int, int]], None] | None = None) -> Any:
    """The image file ``path`` as a loaded PIL image, upright: a camera's EXIF orientation
    (a phone photo stored sideways with "rotate 90" in its tag) is applied, as every viewer
    does, so that a signer is never read lying on its side. ``check_size(size)`` may refuse
    the stored size before the pixels are decoded. A missing, truncated or non-image file
    is one SigngenError line naming ``what``."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise SigngenError(f"{what} not found: {path}")
    try:
        with Image.open(path) as image:
            if check_size is not None:
                check_size(image.size)
            image.load()
            return upright(image)
    except UnidentifiedImageError:
        raise SigngenError(f"{what} {path} is not an image file (or an unsupported format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        # PIL's ways of saying truncated, corrupt or absurdly large
        raise SigngenError(f"cannot read {what} {path}: {first_line(error)}") from None


def upright(image: Any) -> Any:
    """A PIL image turned as its EXIF orientation tag says (a copy; the tag removed)."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError):  # a damaged EXIF block: the pixels as stored
        return image.copy()


def read_image(path: str | os.PathLike, what: str = "image") -> np.ndarray:
    """The image file ``path`` as uint8 RGB (H, W, 3), upright (:func:`open_image`); a
    missing, truncated or non-image file is one SigngenError line naming ``what``."""
    return np.asarray(to_rgb(open_image(path, what)))


def read_json_object(path: str | os.PathLike, what: str = "JSON file") -> dict:
    """The JSON object in ``path``; a missing, unreadable or non-object file is one
    SigngenError line naming ``what``."""
    path = Path(path)
    if not path.is_file():
        raise SigngenError(f"{what} not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise SigngenError(f"{what} {path} is not readable JSON") from None
    if not isinstance(data, dict):
        raise SigngenError(f"{what} {path} does not hold a JSON object")
    return data


# The manifest of every signgen model folder (diffusers' pipeline index name).
MANIFEST_NAME = "model_index.json"


def read_manifest(folder: str | os.PathLike, kind: str, format_version: int, what: str) -> dict:
    """The manifest of the model folder ``folder``, checked to be of ``kind`` (``what``
    names it for the user, e.g. "signgen frame model") and readable by this signgen
    (``format_version`` at most the one given). Every problem is one SigngenError line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SigngenError(f"model folder not found: {folder}")
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise SigngenError(f"{folder} is not a {what} folder (no {MANIFEST_NAME})")
    manifest = read_json_object(path, "manifest")
    found = manifest.get("kind")
    if found != kind:
        other = f"a {found!r} folder" if isinstance(found, str) else f"a folder of another kind ({manifest.get('_class_name', 'no kind field')})"
        raise SigngenError(f"{folder} is {other}, not a {what} folder")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > format_version:
        raise SigngenError(f"{folder} has format_version {version!r}; this signgen reads up to {format_version}, upgrade signgen")
    return manifest
