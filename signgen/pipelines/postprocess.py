"""After sampling: the photo's own pixels kept, flicker filtered, frames upscaled and written.

Frames come out of :func:`signgen.pipelines.denoising.denoise` at the model's resolution
in [-1, 1]. :func:`finish_frames` keeps the coarse image wherever it covers the frame
(``keep_coarse``) and filters what only shimmers over time (``deflicker``, leaving the
moving arms and hands as drawn); :func:`write_render` upscales them (Lanczos) to PHOENIX's
260 x 210 and writes the mp4.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from signgen.pipelines.deflicker import deflicker
from signgen.pipelines.settings import RenderSettings

# Written videos have PHOENIX's frame size (H, W), whatever the model's resolution.
OUTPUT_SIZE = (260, 210)
# The uncovered region grows by this many model pixels before the coarse image is kept around it.
KEEP_COARSE_GROW = 2


def finish_frames(frames: torch.Tensor, settings: RenderSettings, coarse: tuple[torch.Tensor, torch.Tensor] | None = None,
                  moving_limbs: torch.Tensor | None = None) -> np.ndarray:
    """``frames`` (T, 3, H, W) in [-1, 1] as uint8 RGB (T, H, W, 3): the ``coarse`` images
    kept where they cover the frame if ``settings.keep_coarse``, then deflickered by
    ``settings.deflicker`` with ``moving_limbs`` (T, H, W) bool left as drawn
    (:func:`signgen.pipelines.signer.limb_regions`)."""
    if settings.keep_coarse and coarse is not None:
        frames = keep_coarse_pixels(frames, coarse)
    if settings.deflicker:
        frames = deflicker(frames, settings.deflicker, moving_limbs=moving_limbs)
    return frames_to_uint8(frames)


def keep_coarse_pixels(frames: torch.Tensor, coarse: tuple[torch.Tensor, torch.Tensor], grow: int = KEEP_COARSE_GROW) -> torch.Tensor:
    """``frames`` (T, 3, H, W) in [-1, 1] with the coarse image (``coarse``: images and
    uncovered masks, as :func:`signgen.pipelines.signer.coarse_images` gives them) kept
    wherever it covers the frame: the drawn frame shows only in its uncovered pixels, grown
    by ``grow`` pixels, with a feathered edge. The coarse image is the photo's own pixels
    moved rigidly; a small model redraws them softer (docs/frame_model.md)."""
    images, uncovered = (tensor.to(frames) for tensor in coarse)
    region = F.max_pool2d((uncovered > 0).float(), 2 * grow + 1, stride=1, padding=grow)
    weight = F.avg_pool2d(region, 3, stride=1, padding=1, count_include_pad=False)
    return images + weight * (frames - images)


def frames_to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(F, 3, H, W) in [-1, 1] -> uint8 RGB (F, H, W, 3), the video boundary format."""
    return ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def upscale_frames(frames: np.ndarray, size: tuple[int, int] = OUTPUT_SIZE, progress: bool = False) -> np.ndarray:
    """uint8 RGB frames (T, h, w, 3) resized to ``size`` (H, W) with a Lanczos filter."""
    from PIL import Image

    height, width = size
    if frames.shape[1:3] == (height, width):
        return frames
    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    for index in tqdm(range(len(frames)), desc="upscaling", unit="frame", disable=not progress, leave=False):
        out[index] = np.asarray(Image.fromarray(frames[index]).resize((width, height), Image.Resampling.LANCZOS))
    return out


def write_render(result, path: str | os.PathLike, side_by_side: bool = False,
                 size: tuple[int, int] = OUTPUT_SIZE, progress: bool = False) -> Path:
    """Write ``result`` (a :class:`signgen.pipelines.pipeline.RenderResult`) as an H.264 mp4
    (a ``.gif`` path writes a GIF preview), frames upscaled to ``size`` (H, W; default
    PHOENIX's 260 x 210). ``side_by_side`` puts the driving pose's skeleton to the left of
    the generated frames. Written atomically: a failure leaves no partial file."""
    from signgen.video.io import write_gif, write_video

    path = Path(path)
    frames = upscale_frames(result.frames, size, progress=progress)
    if side_by_side:
        from signgen.poses.draw import draw_skeleton_frames
        from signgen.video.layout import side_by_side as lay_out

        skeleton = draw_skeleton_frames(result.pose, size=(size[1], size[0]))
        frames = lay_out([skeleton, frames], labels=["pose", "generated"])
    if path.suffix.lower() == ".gif":
        write_gif(frames, path, fps=result.fps)
    else:
        write_video(frames, path, fps=result.fps)
    return path
