"""Videos with their glosses, for training a sign recogniser (``signgen train recogniser``).

Reads a split of a corpus in the PHOENIX-2014T layout with :class:`PhoenixCorpus` (frames,
holistic poses, glosses), turns every video once into the arrays a reader needs (the
caller's ``prepare``: hand crops and small frames, or a normalised pose), keeps them in
memory (or, for a corpus too large for that, each time it is read: :class:`LazyVideo`),
and hands out items augmented afresh per epoch: the caller's ``augment`` gets a
random generator drawn from the seed, the epoch and the item index, so that a resumed run
sees exactly the items an uninterrupted one does.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from signgen.corpora.phoenix import PhoenixCorpus, VideoSample
from signgen.errors import SigngenError

logger = logging.getLogger(__name__)


@dataclass
class PreparedVideo:
    name: str
    glosses: list[str]
    arrays: dict[str, np.ndarray]


def recognition_samples(root: str | os.PathLike, split: str, cache_dir: str | os.PathLike | None = None,
                        progress: bool = True) -> list[VideoSample]:
    """The videos of ``split`` that have glosses (poses extracted first where missing)."""
    corpus = PhoenixCorpus(root, cache_dir)
    corpus.ensure_poses(split, progress=progress)
    samples = [sample for sample in corpus.split(split) if sample.glosses]
    if not samples:
        raise SigngenError(f"split {split!r} of {root} has no video with glosses")
    return samples


def prepare_videos(samples: Sequence[VideoSample], prepare: Callable[[VideoSample], dict[str, np.ndarray]],
                   progress: bool = True, what: str = "videos") -> list[PreparedVideo]:
    """``prepare`` every video once; a video it refuses (no shoulders, no frames) is
    skipped with one warning that counts them."""
    from tqdm.auto import tqdm

    prepared, skipped = [], []
    for sample in tqdm(samples, desc=f"reading {what}", unit="video", disable=not progress):
        try:
            prepared.append(PreparedVideo(sample.name, list(sample.glosses), prepare(sample)))
        except SigngenError as error:
            skipped.append(f"{sample.name}: {error}")
    if skipped:
        logger.warning("skipped %d of %d %s (first: %s)", len(skipped), len(samples), what, skipped[0])
    if not prepared:
        raise SigngenError(f"none of the {len(samples)} {what} could be read (first: {skipped[0]})")
    return prepared


class LazyVideo:
    """A video prepared each time it is read (a corpus too large to keep prepared in
    memory, as PHOENIX at full size; DataLoader workers share the work)."""

    def __init__(self, sample: VideoSample, prepare: Callable[[VideoSample], dict[str, np.ndarray]]):
        self.name, self.glosses, self.sample, self.prepare = sample.name, list(sample.glosses), sample, prepare

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return self.prepare(self.sample)


class RecognitionDataset:
    """Prepared videos, each item ``augment(arrays, glosses, rng)`` (or the arrays as they
    are, ``augment=None``); ``rng`` comes from (seed, epoch, index)."""

    def __init__(self, videos: Sequence[PreparedVideo], augment: Callable[[dict, list[str], np.random.Generator], Any],
                 seed: int = 0):
        self.videos = list(videos)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int):
        video = self.videos[int(index)]
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        return self.augment(video.arrays, video.glosses, rng)
