"""Training samplers over a corpus in the PHOENIX-2014T layout (:mod:`signgen.corpora.phoenix`).

:func:`frame_pair_dataset` (stages 1 and 2: a target frame with a source frame of the same
video), :func:`frame_dataset` (frames alone, for the autoencoder), :func:`clip_dataset`
(stage 3: clips of consecutive frames) and :func:`gloss_pose_pairs` (gloss-to-pose). The
frame samplers can recolour a share of their items by one hue rotation applied to source
and target together (``colour_augment_prob``).

Samplers (map-style datasets: ``len`` and indexing, for ``torch.utils.data.DataLoader``):

- :func:`frame_pair_dataset`: one item per frame of every video, the *target*; the
  *source* is another frame of the same video, drawn from ``seed``, the item index and
  the epoch (:meth:`FramePairDataset.set_epoch`).
- :func:`clip_dataset`: ``num_frames`` consecutive frames with their pose maps, and a
  source frame of the same video.
- :func:`gloss_pose_pairs`: (glosses, 178-point pose) per video, for the gloss-to-pose model.

Frames are resized to the model's ``resolution`` (H, W) with area averaging and scaled to
[-1, 1]; pose maps are rasterised at that resolution from the pose's own pixel frame
(``signgen.poses.raster``, 4 channels).
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
from pose_format import Pose

from signgen.corpora.phoenix import PhoenixCorpus, VideoSample
from signgen.errors import SigngenError


def to_model_image(frame: np.ndarray, resolution: tuple[int, int]):
    """uint8 (H, W, 3) -> float tensor (3, H, W) in [-1, 1] at ``resolution``."""
    import cv2
    import torch

    height, width = resolution
    if frame.shape[:2] != (height, width):
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def pose_maps_of(sample: VideoSample, frames: np.ndarray | slice | int, resolution: tuple[int, int]):
    """Pose maps float tensor (C, H, W) or (F, C, H, W) in [0, 1] of the sample's frames."""
    import torch

    from signgen.poses.raster import rasterize_pose_map

    xy, confidence, size = sample.pose_arrays()
    return torch.from_numpy(rasterize_pose_map(xy[frames], confidence[frames], size, resolution))


def hue_rotation(angle: float):
    """The 3 x 3 matrix that turns RGB colours by ``angle`` radians around the grey axis:
    greys stay, hues turn, so it applies to images in [0, 1] and in [-1, 1] alike."""
    import torch

    cos, sin = math.cos(angle), math.sin(angle)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
    return cos * torch.eye(3) + (1 - cos) / 3 * torch.ones(3, 3) + math.sqrt(1 / 3) * sin * cross


def recolour(images, matrix):
    """Images (..., 3, H, W) in [-1, 1] with their colours mapped by ``matrix`` (3, 3)."""
    import torch

    return torch.einsum("ij,...jhw->...ihw", matrix, images).clamp_(-1.0, 1.0)


def _colour_augmentation(probability: float, key: Sequence[int]):
    """With ``probability``, a random hue rotation drawn from ``key``, else None. Source and
    target get the SAME rotation: a signer recoloured as a whole is still one signer, so the
    model cannot memorise the training signers' colours and must copy them from the source."""
    rng = np.random.default_rng(list(key))
    if probability <= 0 or rng.random() >= probability:
        return None
    return hue_rotation(rng.uniform(-math.pi, math.pi))


def _check_sampler_arguments(resolution: Sequence[int], pose_channels: int) -> tuple[int, int]:
    from signgen.poses.raster import POSE_MAP_CHANNELS

    if pose_channels != POSE_MAP_CHANNELS:
        raise SigngenError(f"pose maps have {POSE_MAP_CHANNELS} channels (signgen.poses.raster), got pose_channels={pose_channels}")
    if len(resolution) != 2 or min(int(v) for v in resolution) <= 0:
        raise SigngenError(f"resolution must be (height, width) in pixels, got {tuple(resolution)}")
    return int(resolution[0]), int(resolution[1])


def _samples_with_poses(root, split: str, cache_dir=None) -> list[VideoSample]:
    corpus = PhoenixCorpus(root, cache_dir)
    corpus.ensure_poses(split)
    return corpus.split(split)


def _video_and_frame(ends: np.ndarray, index: int, what: str) -> tuple[int, int]:
    """(video, frame in it) of item ``index`` of the frames of all videos in a row, the
    videos ending at the cumulative frame counts ``ends``."""
    if not 0 <= index < (int(ends[-1]) if len(ends) else 0):
        raise IndexError(f"{what} {index} out of range (0..{(int(ends[-1]) if len(ends) else 0) - 1})")
    video = int(np.searchsorted(ends, index, side="right"))
    return video, index - (int(ends[video - 1]) if video else 0)


class FramePairDataset:
    """Frame pairs of one video: see :func:`frame_pair_dataset`."""

    def __init__(self, samples: list[VideoSample], resolution: tuple[int, int], seed: int = 0, colour_augment_prob: float = 0.0,
                 coarse_image: bool = False):
        self.samples = samples
        self.resolution = resolution
        self.seed = int(seed)
        self.colour_augment_prob = float(colour_augment_prob)
        self.coarse_image = bool(coarse_image)
        self.epoch = 0
        self._ends = np.cumsum([sample.num_frames for sample in samples])

    def set_epoch(self, epoch: int) -> None:
        """Draw other source frames for the same targets (call once per epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def locate(self, index: int) -> tuple[int, int, int]:
        """(video, target frame, source frame) of item ``index``."""
        video, target = _video_and_frame(self._ends, index, "frame pair")
        count = self.samples[video].num_frames
        source = target
        if count > 1:  # any other frame of the video
            draw = int(np.random.default_rng([self.seed, self.epoch, index]).integers(count - 1))
            source = draw + (draw >= target)
        return video, target, source

    def recoloured(self, index: int) -> bool:
        """Whether item ``index`` is recoloured this epoch (its frames are then not the
        corpus' own: a latent cache of the corpus does not hold them)."""
        return _colour_augmentation(self.colour_augment_prob, [self.seed, self.epoch, int(index), 1]) is not None

    def __getitem__(self, index: int) -> dict:
        video, target, source = self.locate(int(index))
        sample = self.samples[video]
        source_frame = sample.frame(source)
        images = {"source": to_model_image(source_frame, self.resolution),
                  "target": to_model_image(sample.frame(target), self.resolution)}
        extra = {}
        if self.coarse_image:
            images["coarse"], extra["uncovered"] = coarse_image_of(sample, source, target, self.resolution, source_frame)
        colours = _colour_augmentation(self.colour_augment_prob, [self.seed, self.epoch, int(index), 1])
        if colours is not None:
            images = {name: recolour(image, colours) for name, image in images.items()}
        return {**images, **extra, "target_pose": pose_maps_of(sample, target, self.resolution)}


def frame_pair_dataset(root: str | os.PathLike, split: str, resolution: Sequence[int] = (64, 52),
                       pose_channels: int = 4, seed: int = 0, cache_dir: str | os.PathLike | None = None,
                       colour_augment_prob: float = 0.0, coarse_image: bool = False) -> FramePairDataset:
    """Every frame of ``split`` as a target, with a source frame from the same video:
    ``{"source": (3, H, W), "target": (3, H, W)`` in [-1, 1], ``"target_pose": (C, H, W)``
    in [0, 1]``}``; with ``coarse_image`` also ``"coarse"`` (3, H, W), the source warped to
    the target's pose, and ``"uncovered"`` (1, H, W), its mask (:func:`coarse_image_of`).
    Missing poses are extracted first (once, cached). With ``colour_augment_prob``, that
    share of pairs is recoloured by one random hue rotation."""
    resolution = _check_sampler_arguments(resolution, pose_channels)
    _check_probability(colour_augment_prob)
    return FramePairDataset(_samples_with_poses(root, split, cache_dir), resolution, seed, colour_augment_prob, coarse_image)


class FrameDataset:
    """Every frame of a split: see :func:`frame_dataset`."""

    def __init__(self, samples: list[VideoSample], resolution: tuple[int, int], seed: int, colour_augment_prob: float):
        self.samples = samples
        self.resolution = resolution
        self.seed = int(seed)
        self.colour_augment_prob = float(colour_augment_prob)
        self._ends = np.cumsum([sample.num_frames for sample in samples])

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def __getitem__(self, index: int) -> dict:
        video, frame = _video_and_frame(self._ends, int(index), "frame")
        image = to_model_image(self.samples[video].frame(frame), self.resolution)
        colours = _colour_augmentation(self.colour_augment_prob, [self.seed, int(index), 1])
        return {"target": image if colours is None else recolour(image, colours)}


def frame_dataset(root: str | os.PathLike, split: str, resolution: Sequence[int] = (64, 52), seed: int = 0,
                  colour_augment_prob: float = 0.0) -> FrameDataset:
    """Every frame of ``split`` alone, ``{"target": (3, H, W)}`` in [-1, 1] (an autoencoder's
    training frames; no poses are read or extracted); ``colour_augment_prob`` as for
    :func:`frame_pair_dataset`."""
    from signgen.poses.raster import POSE_MAP_CHANNELS

    resolution = _check_sampler_arguments(resolution, POSE_MAP_CHANNELS)  # the resolution check; no pose maps drawn
    _check_probability(colour_augment_prob)
    return FrameDataset(PhoenixCorpus(root).split(split), resolution, seed, colour_augment_prob)


def coarse_image_of(sample: VideoSample, source: int, target: int, resolution: tuple[int, int],
                    frame: np.ndarray | None = None):
    """The source frame (``frame``, when the caller has read it already) warped to the
    target frame's pose (``signgen.poses.warp``) at the model's ``resolution``: a (3, H, W)
    image in [-1, 1] and its uncovered mask (1, H, W) in {0, 1}."""
    import cv2
    import torch

    from signgen.poses.warp import warp_to_pose

    height, width = resolution
    xy, confidence, (frame_width, frame_height) = sample.pose_arrays()
    scale = np.array([width / frame_width, height / frame_height])
    frame = sample.frame(source) if frame is None else frame
    if frame.shape[:2] != (height, width):
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    coarse = warp_to_pose(frame, xy[source] * scale, confidence[source], xy[target] * scale, confidence[target])
    image = torch.from_numpy(coarse.image).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
    return image, torch.from_numpy(coarse.uncovered[None].astype(np.float32))


class ClipDataset:
    """Clips of consecutive frames: see :func:`clip_dataset`."""

    def __init__(self, samples: list[VideoSample], num_frames: int, resolution: tuple[int, int],
                 stride: int, seed: int = 0, colour_augment_prob: float = 0.0, coarse_image: bool = False):
        self.samples = samples
        self.coarse_image = bool(coarse_image)
        self.num_frames = num_frames
        self.resolution = resolution
        self.seed = int(seed)
        self.colour_augment_prob = float(colour_augment_prob)
        self.clips = [(video, start) for video, sample in enumerate(samples)
                      for start in range(0, sample.num_frames - num_frames + 1, stride)]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        import torch

        video, start = self.clips[index]
        sample = self.samples[video]
        source = int(np.random.default_rng([self.seed, index]).integers(sample.num_frames))
        window = slice(start, start + self.num_frames)
        source_frame = sample.frame(source)
        images = {"source": to_model_image(source_frame, self.resolution),
                  "frames": torch.stack([to_model_image(sample.frame(i), self.resolution) for i in range(window.start, window.stop)])}
        extra = {}
        if self.coarse_image:
            coarse = [coarse_image_of(sample, source, i, self.resolution, source_frame) for i in range(window.start, window.stop)]
            images["coarse"] = torch.stack([image for image, _ in coarse])
            extra["uncovered"] = torch.stack([mask for _, mask in coarse])
        colours = _colour_augmentation(self.colour_augment_prob, [self.seed, int(index), 1])
        if colours is not None:
            images = {name: recolour(image, colours) for name, image in images.items()}
        return {**images, **extra, "poses": pose_maps_of(sample, window, self.resolution)}


def clip_dataset(corpus: PhoenixCorpus | str | os.PathLike, split: str, num_frames: int = 16,
                 resolution: Sequence[int] = (64, 52), stride: int | None = None, seed: int = 0,
                 colour_augment_prob: float = 0.0, coarse_image: bool = False) -> ClipDataset:
    """Clips of ``num_frames`` consecutive frames, starting every ``stride`` frames (default
    ``num_frames``: clips do not overlap), from each video long enough:
    ``{"source": (3, H, W)`` a frame of the same video, ``"frames": (F, 3, H, W)`` in
    [-1, 1], ``"poses": (F, C, H, W)`` in [0, 1]``}``; ``colour_augment_prob`` as for
    :func:`frame_pair_dataset`, one rotation per clip; with ``coarse_image`` also
    ``"coarse"`` (F, 3, H, W) and ``"uncovered"`` (F, 1, H, W), the source warped to each
    frame's pose (:func:`coarse_image_of`). ``corpus`` is a :class:`PhoenixCorpus` (with
    its pose cache) or the corpus folder."""
    from signgen.poses.raster import POSE_MAP_CHANNELS

    resolution = _check_sampler_arguments(resolution, POSE_MAP_CHANNELS)
    _check_probability(colour_augment_prob)
    if num_frames < 1:
        raise SigngenError(f"num_frames must be at least 1, got {num_frames}")
    stride = num_frames if stride is None else int(stride)
    if stride < 1:
        raise SigngenError(f"stride must be at least 1, got {stride}")
    if not isinstance(corpus, PhoenixCorpus):
        corpus = PhoenixCorpus(corpus)
    corpus.ensure_poses(split)
    return ClipDataset(corpus.split(split), num_frames, resolution, stride, seed, colour_augment_prob, coarse_image)


def _check_probability(colour_augment_prob: float) -> None:
    if not 0.0 <= colour_augment_prob <= 1.0:
        raise SigngenError(f"colour_augment_prob must be in [0, 1], got {colour_augment_prob}")


def gloss_pose_pairs(root: str | os.PathLike, split: str, progress: bool = True,
                     cache_dir: str | os.PathLike | None = None) -> list[tuple[list[str], Pose]]:
    """(glosses, 178-point pose) of every video of ``split`` (poses extracted first where
    missing). Each pose is checked against its video's frame count."""
    from tqdm.auto import tqdm

    samples = _samples_with_poses(root, split, cache_dir)
    return [(list(sample.glosses), sample.pose())
            for sample in tqdm(samples, desc=f"reading {split} poses", unit="video", disable=not progress)]
