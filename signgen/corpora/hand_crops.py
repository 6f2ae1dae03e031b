"""Training items of the hand stage (``signgen train hands``): one per (frame, hand) of a corpus
in the PHOENIX-2014T layout (:mod:`signgen.corpora.phoenix`) where all 21 points of that hand
are seen, every crop ``crop_size`` x ``crop_size`` around the hand's keypoints
(:mod:`signgen.poses.hands`):

- ``target`` (3, S, S) in [-1, 1]: the frame's crop, what the model learns to draw;
- ``base`` (3, S, S): what the hand stage starts from. ``base="render"``: what a render gives
  it, the video's first frame bent to this frame's pose by the whole-limb mesh warp, the
  frame through the frame model's resolution where the warp has nothing
  (:mod:`signgen.corpora.hand_bases`, computed once and cached); ``base="low_resolution"``:
  the frame's crop taken through the frame model's resolution (``base_resolution``,
  area-averaged down, then back up with Lanczos as the render upscales), a hand of ~13 px
  whose fingers the model has to draw from the keypoints;
- ``keypoints`` (6, S, S) in [0, 1]: the hand's keypoint map in its crop;
- ``appearance`` (3, S, S): how this signer's hand looks in ANOTHER frame of the same video
  (drawn per epoch): that hand's crop there when it is seen and mostly inside the frame, else
  the other hand's mirrored, else the face's skin colour (:func:`signgen.poses.hands.appearance_crop`, what a render
  takes from the photo);
- ``mask`` (1, S, S) in [0, 1]: the hand's feathered hull, for a loss weighted inside it.

With ``colour_augment_prob``, that share of items has all its crops turned by one random hue
rotation: a recoloured signer is still one signer, so the model copies colours from the
appearance crop instead of memorising the training signers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from signgen.corpora.hand_bases import bases_key, render_bases
from signgen.corpora.phoenix import PhoenixCorpus, VideoSample
from signgen.corpora.samplers import hue_rotation, recolour
from signgen.errors import SigngenError
from signgen.poses import hands


@dataclass(frozen=True)
class HandCropSettings:
    crop_size: int = 64
    margin: float = 0.35
    min_side: float = 0.15  # share of the frame's height
    base_resolution: tuple[int, int] = (128, 104)  # height, width
    frame_stride: int = 1
    colour_augment_prob: float = 0.0
    seed: int = 0
    base: str = "low_resolution"  # or "render"
    hide_hand: bool = False  # the base's hand painted over (signgen.poses.hands.hide_hand)


BASES = ("low_resolution", "render")


def low_resolution(frame: np.ndarray, resolution: tuple[int, int]) -> np.ndarray:
    """``frame`` (H, W, 3) uint8 as a model drawing at ``resolution`` (h, w) shows it at H x W:
    area-averaged down, back up with Lanczos (signgen.pipelines.postprocess.upscale_frames)."""
    import cv2
    from PIL import Image

    height, width = frame.shape[:2]
    small = cv2.resize(np.ascontiguousarray(frame), (int(resolution[1]), int(resolution[0])), interpolation=cv2.INTER_AREA)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.LANCZOS))


def to_tensor(image: np.ndarray):
    """uint8 (S, S, 3) -> float tensor (3, S, S) in [-1, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


class HandCropDataset:
    """Hand crops of a split: see the module docstring."""

    def __init__(self, samples: list[VideoSample], settings: HandCropSettings, base_cache: str | os.PathLike | None = None,
                 progress: bool = True):
        self.samples = samples
        self.settings = settings
        self.epoch = 0
        items = []
        for video, sample in enumerate(samples):
            xy, confidence, size = sample.pose_arrays()
            for hand in (0, 1):
                seen = (confidence[:, hands.hand_points(hand)] > 0).all(axis=1)
                for frame in np.flatnonzero(seen):
                    if frame % settings.frame_stride == 0 and self._box(xy[frame], confidence[frame], hand, size) is not None:
                        items.append((video, int(frame), hand))
        self.items = np.asarray(items, dtype=np.int64).reshape(-1, 3)
        self.bases = None  # (N, S, S, 3) uint8 with base "render"
        if settings.base == "render" and len(self.items):
            if base_cache is None:
                raise SigngenError("hand crops with base 'render' need a cache folder for the warped bases")
            self.bases = render_bases(samples, self.items, settings, Path(base_cache) / bases_key(settings), self._box,
                                      low_resolution, progress)

    def set_epoch(self, epoch: int) -> None:
        """Draw other appearance frames for the same targets (once per epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def _box(self, xy: np.ndarray, confidence: np.ndarray, hand: int, size: tuple[int, int]):
        points = hands.hand_points(hand)
        return hands.hand_crop_box(xy[points], confidence[points] > 0, size, self.settings.margin, self.settings.min_side * size[1])

    def appearance_frame(self, index: int) -> int:
        """The frame of item ``index``'s video its appearance crop comes from: any other frame,
        drawn from the seed, the epoch and the index."""
        video, frame, _ = (int(v) for v in self.items[index])
        count = self.samples[video].num_frames
        if count < 2:
            return frame
        draw = int(np.random.default_rng([self.settings.seed, self.epoch, index]).integers(count - 1))
        return draw + (draw >= frame)

    def __getitem__(self, index: int) -> dict:
        import torch

        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"hand crop {index} out of range (0..{len(self) - 1})")
        video, frame_index, hand = (int(v) for v in self.items[index])
        sample, settings, size = self.samples[video], self.settings, self.settings.crop_size
        xy, confidence, pose_size = sample.pose_arrays()
        frame = sample.frame(frame_index)
        scale = np.array([frame.shape[1] / pose_size[0], frame.shape[0] / pose_size[1]])
        xy = xy * scale
        frame_size = (frame.shape[1], frame.shape[0])
        box = self._box(xy[frame_index], confidence[frame_index], hand, frame_size)
        points = hands.hand_points(hand)
        seen = confidence[frame_index, points] > 0
        in_crop = hands.to_crop(xy[frame_index, points], box, size)
        mask = hands.hand_mask(in_crop, seen, size)
        other = self.appearance_frame(index)
        appearance = hands.appearance_crop(sample.frame(other), xy[other], confidence[other], hand, size, settings.margin,
                                           settings.min_side * frame.shape[0])
        images = {"target": to_tensor(hands.crop_region(frame, box, size)),
                  "base": to_tensor(self.base_crop(index, frame, box, mask)),
                  "appearance": to_tensor(appearance)}
        colours = self.colour_rotation(index)
        if colours is not None:
            images = {name: recolour(image, colours) for name, image in images.items()}
        return {**images, "keypoints": torch.from_numpy(hands.hand_keypoint_map(in_crop, seen, size)),
                "mask": torch.from_numpy(mask)[None]}

    def base_crop(self, index: int, frame: np.ndarray, box, mask: np.ndarray) -> np.ndarray:
        """Item ``index``'s base crop (S, S, 3) uint8 (see the module docstring), its hand
        painted over under ``mask`` with ``hide_hand``."""
        if self.bases is not None:
            base = self.bases[index]
        else:
            base = hands.crop_region(low_resolution(frame, self.settings.base_resolution), box, self.settings.crop_size)
        return hands.hide_hand(base, mask) if self.settings.hide_hand else base

    def colour_rotation(self, index: int):
        """With ``colour_augment_prob``, one random hue rotation for all of item ``index``'s
        crops (drawn from the seed, the epoch and the index), else None."""
        rng = np.random.default_rng([self.settings.seed, self.epoch, index, 1])
        if self.settings.colour_augment_prob <= 0 or rng.random() >= self.settings.colour_augment_prob:
            return None
        return hue_rotation(rng.uniform(-np.pi, np.pi))


def hand_crop_dataset(root: str | os.PathLike, split: str, settings: HandCropSettings = HandCropSettings(),
                      cache_dir: str | os.PathLike | None = None, progress: bool = True) -> HandCropDataset:
    """The hand crops of ``split`` of the corpus at ``root`` (missing poses are extracted once,
    render bases computed once, both cached); a split without a seen hand is one SigngenError line."""
    if settings.crop_size < 8 or settings.frame_stride < 1 or not 0 <= settings.colour_augment_prob <= 1:
        raise SigngenError(f"hand crops need crop_size >= 8, frame_stride >= 1 and colour_augment_prob in [0, 1]: {settings}")
    if settings.base not in BASES:
        raise SigngenError(f"hand crops' base must be one of {', '.join(BASES)}, not {settings.base!r}")
    corpus = PhoenixCorpus(root, cache_dir)
    corpus.ensure_poses(split)
    dataset = HandCropDataset(corpus.split(split), settings, corpus.cache_dir / split, progress)
    if not len(dataset):
        raise SigngenError(f"split {split!r} of {root} has no frame where a hand's 21 points are all seen")
    return dataset
