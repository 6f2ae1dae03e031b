"""Side-by-side comparison videos: one labelled column per video (pose | generated | reference)."""

from __future__ import annotations

import numpy as np

from signgen.errors import SigngenError

LABEL_BAR_HEIGHT = 18
LABEL_FONT_SIZE = 12
LABEL_BACKGROUND = (32, 32, 32)
LABEL_COLOUR = (240, 240, 240)


def side_by_side(
    columns: list[np.ndarray], labels: list[str] | None = None, height: int | None = None
) -> np.ndarray:
    """Lay videos (T_i, H_i, W_i, 3) uint8 out left to right, each under a label bar.

    Every column is resized (aspect kept) to ``height``, the tallest column's height by
    default. The result has as many frames as the longest column; a shorter column holds
    its last frame, so a generated video that stops early stays visible and visibly frozen.
    Returns uint8 (max T_i, LABEL_BAR_HEIGHT + height, sum of widths, 3); without labels
    there is no bar.
    """
    if not columns:
        raise SigngenError("side_by_side needs at least one video")
    if labels is not None and len(labels) != len(columns):
        raise SigngenError(f"{len(labels)} labels for {len(columns)} videos")
    for index, column in enumerate(columns):
        if column.ndim != 4 or column.shape[-1] != 3 or column.dtype != np.uint8 or 0 in column.shape:
            raise SigngenError(
                f"video {index} must be non-empty uint8 (T, H, W, 3), got {column.dtype} {column.shape}"
            )
    height = height or max(column.shape[1] for column in columns)
    num_frames = max(len(column) for column in columns)
    laid_out = []
    for index, column in enumerate(columns):
        column = _resize_to_height(column, height)
        if len(column) < num_frames:
            hold = np.repeat(column[-1:], num_frames - len(column), axis=0)
            column = np.concatenate([column, hold])
        if labels is not None:
            bar = _label_bar(labels[index], column.shape[2])
            column = np.concatenate([np.broadcast_to(bar, (num_frames, *bar.shape)), column], axis=1)
        laid_out.append(column)
    return np.concatenate(laid_out, axis=2)


def _resize_to_height(video: np.ndarray, height: int) -> np.ndarray:
    if video.shape[1] == height:
        return video
    from PIL import Image

    width = max(1, round(video.shape[2] * height / video.shape[1]))
    return np.stack(
        [np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BILINEAR)) for frame in video]
    )


def _label_bar(text: str, width: int) -> np.ndarray:
    """A dark bar with the label centred in PIL's built-in font (clipped if wider than the column)."""
    from PIL import Image, ImageDraw, ImageFont

    bar = Image.new("RGB", (width, LABEL_BAR_HEIGHT), LABEL_BACKGROUND)
    draw = ImageDraw.Draw(bar)
    font = ImageFont.load_default(size=LABEL_FONT_SIZE)  # a bitmap font where FreeType is missing
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = max(0, (width - (right - left)) // 2 - left)
    y = (LABEL_BAR_HEIGHT - (bottom - top)) // 2 - top
    draw.text((x, y), text, fill=LABEL_COLOUR, font=font)
    return np.asarray(bar)
