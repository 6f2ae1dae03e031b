"""The base crops a render gives the hand stage, for training it (``train.base: render``).

In a render the hand stage starts from the frame as composed: the signer photo bent to the
pose by the whole-limb mesh warp (:class:`signgen.poses.mesh_warp.MeshWarp`) wherever the
warp has the photo's pixels, the frame model's drawing where it marks them uncovered. Here the
photo is the video's first frame (as ``signgen eval`` renders), warped to each frame's pose;
the frame model's drawing is stood in for by the frame seen through the frame model's
resolution (:func:`signgen.corpora.hand_crops.low_resolution`). So the hand model learns to
turn the photo's hand, bent to the target's keypoints, into the target hand, which is what a
render asks of it; bases of the frame alone (``train.base: low_resolution``) teach it only to
sharpen a hand that is already right.

Warping costs about a second a video and 10 ms a frame, so the crops of each video are
computed once and kept as one ``.npy`` file per video under the corpus's cache folder, keyed
by everything that shapes them; an interrupted run keeps the videos it finished.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from signgen.errors import SigngenError
from signgen.poses import hands

FORMAT = 2  # bump when the crops would come out differently (2: hidden limbs no longer uncovered)


def bases_key(settings) -> str:
    """The cache folder name of ``settings``' render bases (a HandCropSettings)."""
    fields = {"format": FORMAT, "crop_size": settings.crop_size, "margin": settings.margin, "min_side": settings.min_side,
              "base_resolution": list(settings.base_resolution), "frame_stride": settings.frame_stride}
    return "hand-bases-" + hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


class RenderBase:
    """One video's frames as a render composes them before the hand stage: its first frame
    mesh-warped to frame ``t``'s pose, the frame through ``base_resolution`` (height, width;
    ``low_resolution``) where the warp has nothing. ``xy`` (T, 178, 2) in frame pixels."""

    def __init__(self, sample, base_resolution, low_resolution: Callable):
        from signgen.poses.mesh_warp import MeshWarp

        xy, self.confidence, pose_size = sample.pose_arrays()
        photo = sample.frame(0)
        self.height, self.width = photo.shape[:2]
        self.xy = xy * np.array([self.width / pose_size[0], self.height / pose_size[1]])
        self.sample, self.base_resolution, self.low_resolution = sample, tuple(base_resolution), low_resolution
        self.warp = MeshWarp(photo, self.xy[0], self.confidence[0])

    def __call__(self, frame: int) -> np.ndarray:
        coarse = self.warp.warp(self.xy[frame], self.confidence[frame])
        drawn = self.low_resolution(self.sample.frame(frame), self.base_resolution)
        return np.where(coarse.uncovered[..., None], drawn, coarse.image)


def video_bases(sample, items: np.ndarray, settings, box_of: Callable, low_resolution: Callable) -> np.ndarray:
    """The render bases (N, S, S, 3) uint8 of one video's ``items`` (N, 2) rows (frame, hand),
    cropped around the hand from :class:`RenderBase`'s frames."""
    base = RenderBase(sample, settings.base_resolution, low_resolution)
    size = settings.crop_size
    out = np.zeros((len(items), size, size, 3), np.uint8)
    frames = {}
    for row, (frame, hand) in enumerate(items):
        frame, hand = int(frame), int(hand)
        if frame not in frames:
            frames = {frame: base(frame)}
        box = box_of(base.xy[frame], base.confidence[frame], hand, (base.width, base.height))
        out[row] = hands.crop_region(frames[frame], box, size)
    return out


def render_bases(samples: list, items: np.ndarray, settings, folder: Path, box_of: Callable, low_resolution: Callable,
                 progress: bool = True) -> np.ndarray:
    """The render bases (len(items), S, S, 3) uint8 of ``items`` (rows video, frame, hand, sorted
    by video), read from ``folder`` where a video's are there and computed (and kept) where not."""
    from tqdm.auto import tqdm

    size = settings.crop_size
    out = np.zeros((len(items), size, size, 3), np.uint8)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SigngenError(f"cannot create the hand-base cache folder {folder} ({error.strerror})") from None
    videos = np.unique(items[:, 0])
    for video in tqdm(videos, desc="hand bases (mesh warp)", unit="video", disable=not progress):
        rows = np.flatnonzero(items[:, 0] == video)
        sample = samples[int(video)]
        path = folder / f"{hashlib.sha256(str(sample.name).encode()).hexdigest()[:20]}.npy"
        expected = (len(rows), size, size, 3)
        cached = _read(path, expected)
        if cached is None:
            cached = video_bases(sample, items[rows, 1:], settings, box_of, low_resolution)
            _write(path, cached)
        out[rows] = cached
    return out


def _read(path: Path, shape: tuple) -> np.ndarray | None:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return array if array.shape == shape and array.dtype == np.uint8 else None


def _write(path: Path, array: np.ndarray) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)  # a cache that cannot be written is recomputed next time
