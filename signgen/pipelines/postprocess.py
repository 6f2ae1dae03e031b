"""After sampling: the photo's own pixels kept, frames upscaled and written.

Frames come out of :func:`signgen.pipelines.denoising.denoise` at the model's resolution in
[-1, 1]; :func:`keep_coarse_pixels` keeps the coarse image wherever it covers the frame
(``keep_coarse``); the deflicker filter is :mod:`signgen.pipelines.deflicker`;
:func:`sharpened_hands` sharpens each hand's box of the finished frames (``hand_sharpen``).
:func:`write_render` upscales the frames (Lanczos) to PHOENIX's 260 x 210 and writes the mp4
as they come.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


# Written videos have PHOENIX's frame size (H, W), whatever the model's resolution.
OUTPUT_SIZE = (260, 210)
# The uncovered region grows by this many model pixels before the coarse image is kept around it.
KEEP_COARSE_GROW = 2
# ... and by this many output pixels when the frame is composed at the output size: a wider
# band of upscaled drawing is a soft halo that moves with every arm (4 pixels, the model's 2
# scaled up, against 1: ssim_rgb 0.838 -> 0.844, TDE 2.81 -> 2.71 on 4 SynthSign test videos,
# docs/results/2026-12-07-steady-limbs.md).
FULL_RESOLUTION_GROW = 1
# sharpened_hands at PHOENIX's frame height (scaled with the frame's): the unsharp mask's blur
# (sigma) and the hand's box, SHARPEN_BOX_SCALE times its keypoints' extent plus
# SHARPEN_MARGIN pixels either side: the box in which MediaPipe's misses of the render's
# hands lie (swapping it between render and ground truth swaps what MediaPipe finds), and the
# first mask tried there; a stronger one (amount 2, sigma 1.5) found fewer hands
# (docs/results/2026-12-07-sharpened-hands.md).
SHARPEN_SIGMA = 1.0
SHARPEN_MARGIN = 4.0
SHARPEN_BOX_SCALE = 1.35


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


def compose_at(size: tuple[int, int], drawn: torch.Tensor, coarse: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The model's ``drawn`` frames (T, 3, h, w) upscaled (bicubic) to ``size`` (H, W) and
    shown only where the ``coarse`` images at that size (the photo warped there) leave the
    frame uncovered (:func:`keep_coarse_pixels`, grown by :data:`FULL_RESOLUTION_GROW`): the
    photo's own pixels at full resolution, the model's where the photo has none."""
    upscaled = F.interpolate(drawn, size=tuple(size), mode="bicubic", align_corners=False).clamp_(-1, 1)
    return keep_coarse_pixels(upscaled, coarse, grow=FULL_RESOLUTION_GROW)


def sharpened_hands(frames: np.ndarray, xy: np.ndarray, confidence: np.ndarray, amount: float) -> np.ndarray:
    """uint8 RGB ``frames`` (T, H, W, 3) with each hand the pose shows (``xy`` (T, 178, 2) in
    the frames' pixels, ``confidence`` (T, 178)) sharpened in its box: plus ``amount`` times
    the difference from a Gaussian blur of :data:`SHARPEN_SIGMA` pixels (at 260 pixels high),
    in the square around the hand's seen keypoints, :data:`SHARPEN_BOX_SCALE` times their extent
    plus :data:`SHARPEN_MARGIN` pixels either side, centred on their mean; a hand of which
    only some points are seen, around those. The hand stage's one-step model, like any
    model trained on squared error, draws a finger's outline softer than the photo's; MediaPipe
    finds a hand, and a reader reads it, by those outlines. A new array; with ``amount`` 0 the
    frames themselves."""
    import cv2

    from signgen.poses import skeleton

    if amount <= 0:
        return frames
    out = np.array(frames, copy=True)
    height, width = frames.shape[1:3]
    scale = height / OUTPUT_SIZE[0]
    for index, frame in enumerate(frames):
        mask = np.zeros((height, width), bool)
        for hand in (skeleton.LEFT_HAND, skeleton.RIGHT_HAND):
            points = xy[index, hand][confidence[index, hand] > 0]
            points = points[np.isfinite(points).all(axis=-1)]
            if not len(points):
                continue
            (cx, cy), extent = points.mean(axis=0), np.ptp(points, axis=0).max()
            half = extent * SHARPEN_BOX_SCALE / 2 + SHARPEN_MARGIN * scale
            top, left = int(max(0.0, cy - half)), int(max(0.0, cx - half))
            bottom, right = int(max(0.0, cy + half)), int(max(0.0, cx + half))
            mask[top:bottom, left:right] = True
        if mask.any():
            image = frame.astype(np.float32)
            sharp = np.clip(image + amount * (image - cv2.GaussianBlur(image, (0, 0), SHARPEN_SIGMA * scale)), 0, 255)
            out[index] = np.where(mask[..., None], sharp, image).round().astype(np.uint8)
    return out


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
    """Write ``result`` (a :class:`signgen.pipelines.pipeline.RenderResult`, or a
    ``RenderStream`` whose chunks are rendered as they are written) as an H.264 mp4 (a
    ``.gif`` path writes a GIF preview), frames upscaled to ``size`` (H, W; default PHOENIX's
    260 x 210). ``side_by_side`` puts the driving pose's skeleton to the left of the
    generated frames. Written atomically: a failure leaves no partial file."""
    from signgen.video.io import write_gif, write_video

    path = Path(path)
    chunks = getattr(result, "chunks", None) or [result.frames]
    frames = _written_frames(chunks, result.pose if side_by_side else None, size, progress)
    if path.suffix.lower() == ".gif":
        write_gif(np.stack(list(frames)), path, fps=result.fps)
    else:
        write_video(frames, path, fps=result.fps)
    return path


def _written_frames(chunks, pose, size: tuple[int, int], progress: bool):
    """Each frame of ``chunks`` upscaled to ``size``, beside the skeleton of ``pose`` when given."""
    from signgen.poses.draw import draw_skeleton_frames
    from signgen.poses.holistic import pose_arrays, pose_from_arrays
    from signgen.video.layout import side_by_side as lay_out

    start = 0
    xy, confidence = pose_arrays(pose) if pose is not None else (None, None)
    for chunk in chunks:
        frames = upscale_frames(chunk, size, progress=progress)
        if pose is not None:
            dims, stop = pose.header.dimensions, start + len(frames)
            part = pose_from_arrays(xy[start:stop], confidence[start:stop], float(pose.body.fps), dims.width, dims.height)
            frames = lay_out([draw_skeleton_frames(part, size=(size[1], size[0])), frames], labels=["pose", "generated"])
        start += len(frames)
        yield from frames
