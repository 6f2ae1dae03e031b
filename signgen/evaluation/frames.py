"""One evaluated video's frame-paired figures and its side-by-side video, for ``signgen eval``.

:func:`paired_figures` scores a generated video against its reference (the per-video means
of report.py's PAIRED_METRICS), keeps the per-frame series the HTML report plots
(``per_frame``: ssim_rgb and hand-SSIM per frame, TDE per frame transition) and scores
the copy-the-photo baseline (the reference's first frame in every frame) the same way.
:func:`write_side_by_side` writes ``RUN_DIR/side_by_side/<name>.mp4``: reference | render |
driving pose, H.264 in yuv420p, so that a browser plays it in the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from signgen.errors import SigngenError
from signgen.evaluation.shards import SIDE_BY_SIDE_DIR

PER_FRAME_DIGITS = 4
SIDE_BY_SIDE_CRF = 23  # for looking at, not for scoring: a third of crf 18's size
# The series kept per frame (TDE: per transition between frames t and t + 1).
PER_FRAME_SERIES = ("ssim_rgb", "hand_ssim", "tde")


def side_by_side_path(run_dir: Path, name: str) -> Path:
    """Where the side-by-side video of ``name`` goes, refused unless inside the run's folder for them."""
    folder = Path(run_dir) / SIDE_BY_SIDE_DIR
    path = folder / f"{name}.mp4"
    if path.parent != folder or name in ("", ".", "..") or name.startswith("."):
        raise SigngenError(f"video name {name!r} would be written outside {folder}")
    return path


def _rounded(values) -> list:
    return [None if v is None else round(float(v), PER_FRAME_DIGITS) for v in values]


def hand_boxes_for(sample, height: int, width: int) -> list:
    """The boxes of the reference pose's hands, per frame, scaled to frames of ``height`` x ``width``."""
    from signgen.poses.regions import hand_boxes

    xy, confidence, (pose_width, pose_height) = sample.pose_arrays()
    return hand_boxes(xy * [width / pose_width, height / pose_height], confidence, (width, height))


def scored(generated: np.ndarray, reference: np.ndarray, boxes: list) -> dict[str, Any]:
    """The paired metrics of one generated video and its per-frame series (``per_frame``).

    The means are those of :mod:`signgen.video.metrics` (ssim_rgb is the mean of its
    per-frame values; hand-SSIM the mean over every box of every frame, so its per-frame
    series, each frame's mean over its boxes, need not average to it exactly)."""
    from signgen.video.metrics import (box_masks, moving_masks, moving_region_psnr, psnr, region_psnr,
                                       region_ssim, region_temporal_difference_error, ssim_gray, ssim_rgb,
                                       temporal_difference_map)

    height, width = reference.shape[1:3]
    ssim_series = [ssim_rgb(gen[None], ref[None]) for gen, ref in zip(generated, reference)]
    hand_series = [region_ssim(generated[i : i + 1], reference[i : i + 1], boxes[i : i + 1])
                   for i in range(len(reference))]
    figures: dict[str, Any] = {
        "ssim_gray": ssim_gray(generated, reference), "ssim_rgb": float(np.mean(ssim_series)),
        "psnr": psnr(generated, reference), "hand_ssim": region_ssim(generated, reference, boxes),
        "hand_psnr": region_psnr(generated, reference, boxes),
        "moving_psnr": moving_region_psnr(generated, reference, reference[0]),
        "tde": None, "tde_moving": None, "tde_hands": None,
    }
    tde_series: list = []
    if len(reference) > 1:
        tde_series = temporal_difference_map(generated, reference).mean(axis=(1, 2), dtype=np.float64).tolist()
        figures["tde"] = float(np.mean(tde_series))
        figures["tde_moving"] = region_temporal_difference_error(generated, reference, moving_masks(reference, reference[0]))
        figures["tde_hands"] = region_temporal_difference_error(generated, reference, box_masks(boxes, height, width))
    figures["per_frame"] = {"ssim_rgb": _rounded(ssim_series), "hand_ssim": _rounded(hand_series),
                            "tde": _rounded(tde_series)}
    return figures


def paired_figures(generated: np.ndarray, reference: np.ndarray, sample) -> dict[str, Any]:
    """The row's frame-paired figures: the metrics, ``per_frame`` and ``copy_photo`` (the same
    metrics of the reference's first frame copied into every frame, without series)."""
    boxes = hand_boxes_for(sample, *reference.shape[1:3])
    figures = scored(generated, reference, boxes)
    copy = scored(np.repeat(reference[:1], len(reference), axis=0), reference, boxes)
    copy.pop("per_frame")
    figures["copy_photo"] = copy
    return figures


def write_side_by_side(path: Path, reference: np.ndarray, generated: np.ndarray, driving, fps: float) -> None:
    """reference | render | driving pose (its skeleton, drawn at the reference's size), labelled,
    as an H.264 mp4 (atomically)."""
    from signgen.poses.draw import draw_skeleton_frames
    from signgen.video.io import write_video
    from signgen.video.layout import side_by_side

    height, width = reference.shape[1:3]
    skeleton = draw_skeleton_frames(driving, size=(width, height))
    frames = side_by_side([reference, generated, skeleton], labels=["reference", "render", "driving pose"])
    write_video(frames, path, fps=fps, crf=SIDE_BY_SIDE_CRF)
