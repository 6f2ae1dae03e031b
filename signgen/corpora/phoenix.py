"""Corpora in the RWTH-PHOENIX-Weather 2014T layout (PHOENIX itself and SynthSign), and the
three samplers the models train on.

Layout under the corpus root (the official release's, plus the holistic poses of
sign-language-datasets)::

    annotations/manual/PHOENIX-2014-T.{split}.corpus.csv   name|video|start|end|speaker|orth|translation
    features/fullFrame-210x260px/{split}/<name>/images0001.png ...
    holistic/{split}/<name>.pose

Splits are ``train``, ``dev`` and ``test``; SynthSign adds ``test_unseen`` (signers never
seen in training), written the same way. The CSVs use ``|`` and no quoting; ``orth`` is
the space-separated glosses. The release with MediaPipe poses keeps the dev split's poses
in ``holistic/validation/``: for ``dev`` both ``holistic/dev/`` and ``holistic/validation/``
are read.

**Paths from the CSV are confined.** A video name must be one plain folder name (no
``/``, ``\\``, ``..``, leading ``.``), and the ``video`` column may not be absolute or hold
``..``: a CSV naming ``../../x`` is refused with its line number, so that nothing is read
from, or written (by ``signgen eval``, as ``<name>.mp4``) to, a place outside the corpus or
the output folder. Links are resolved: a video's frame folder, its frame files and its
pose file must lie in the corpus folder (or in the folder of their split, where that
folder is itself a link, as in a corpus assembled from links to a larger disk).

A row whose frame folder is missing is skipped, with one warning per split that counts
them (a partial download should not stop training, nor flood the log); a split none of
whose rows has a frame folder is an error. A missing pose is extracted with MediaPipe
once, then cached under ``cache_dir`` (default ``$XDG_CACHE_HOME/signgen/holistic``, one
folder per corpus), never in the corpus folder: a corpus is input, and signgen does not
write into it. :meth:`PhoenixCorpus.extraction_notice` is the line that says so.

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

import csv
import functools
import hashlib
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from pose_format import Pose

from signgen.errors import SigngenError
from signgen.files import IMAGE_SUFFIXES, natural_key, read_image
from signgen.poses.holistic import pose_arrays, pose_from_arrays, reduce_to_178
from signgen.poses.io import read_pose, write_pose

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
CSV_COLUMNS = ("name", "video", "start", "end", "speaker", "orth", "translation")
CSV_SEPARATOR = "|"
ANNOTATIONS_DIR = Path("annotations") / "manual"
FRAMES_DIR = Path("features") / "fullFrame-210x260px"
HOLISTIC_DIR = Path("holistic")
FPS = 25.0
POSE_CACHE_SIZE = 256  # videos whose pose arrays a process keeps in memory
# Where each split's poses may lie under holistic/, in the order they are looked for: the
# release with MediaPipe poses names the dev split "validation".
POSE_SPLIT_FOLDERS = {"dev": ("dev", "validation")}
SHOWN_NAME_CHARS = 80  # a hostile name is cut to this in a message


def annotation_path(root: str | os.PathLike, split: str) -> Path:
    return Path(root) / ANNOTATIONS_DIR / f"PHOENIX-2014-T.{split}.corpus.csv"


def frame_folder(root: str | os.PathLike, split: str, name: str) -> Path:
    return Path(root) / FRAMES_DIR / split / name


def pose_path(root: str | os.PathLike, split: str, name: str) -> Path:
    return Path(root) / HOLISTIC_DIR / split / f"{name}.pose"


def pose_split_folders(split: str) -> tuple[str, ...]:
    """The folders under ``holistic/`` that may hold ``split``'s poses, in search order."""
    return POSE_SPLIT_FOLDERS.get(split, (split,))


def shown(text: str) -> str:
    """``text`` quoted for a one-line message, cut short when long."""
    if len(text) > SHOWN_NAME_CHARS:
        return repr(text[:SHOWN_NAME_CHARS]) + f"... ({len(text)} characters)"
    return repr(text)


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.fspath(path))


def is_inside(path: str | os.PathLike, folders: Sequence[str]) -> bool:
    """Whether ``path``, links resolved, lies in one of the (resolved) ``folders``."""
    real = _real(path)
    return any(real == folder or real.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders)


def frame_file_name(index: int) -> str:
    """PHOENIX's name of frame ``index`` (0-based): ``images0001.png`` for the first."""
    return f"images{index + 1:04d}.png"


@dataclass
class VideoSample:
    """One video of a corpus: its annotation, with frames and pose read on demand."""

    name: str
    split: str
    signer: str
    glosses: list[str]
    text: str
    frame_folder: Path
    pose_paths: tuple[Path, ...]  # where the pose is looked for: the corpus's own, then the cache
    cache_path: Path | None = None  # where an extracted pose is written (None: the last pose path)
    # Resolved folders the frame files must lie in (empty: not checked)
    frame_roots: tuple[str, ...] = field(default=(), repr=False, compare=False)
    _frame_files: list[Path] | None = field(default=None, repr=False, compare=False)

    @property
    def frame_files(self) -> list[Path]:
        if self._frame_files is None:
            try:
                names = [n for n in os.listdir(self.frame_folder) if n.lower().endswith(IMAGE_SUFFIXES)]
            except OSError as error:
                raise SigngenError(f"video {self.name}: cannot list its frames in {self.frame_folder} ({error.strerror})") from None
            if not names:
                raise SigngenError(f"video {self.name}: no frames in {self.frame_folder}")
            files = [self.frame_folder / n for n in sorted(names, key=natural_key)]
            if self.frame_roots:
                outside = next((f for f in files if not is_inside(f, self.frame_roots)), None)
                if outside is not None:
                    raise SigngenError(f"video {self.name}: frame {outside.name} is a link to {_real(outside)}, "
                                       "outside the corpus folder; refusing to read it")
            self._frame_files = files
        return self._frame_files

    @property
    def num_frames(self) -> int:
        return len(self.frame_files)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) as uint8 RGB (H, W, 3)."""
        return read_image(self.frame_files[index], f"frame of video {self.name}")

    def frames(self) -> np.ndarray:
        """All frames as uint8 RGB (T, H, W, 3)."""
        frames = [self.frame(i) for i in range(self.num_frames)]
        if len({f.shape for f in frames}) > 1:
            raise SigngenError(f"video {self.name}: frames of different sizes in {self.frame_folder}")
        return np.stack(frames)

    @property
    def has_pose(self) -> bool:
        return any(path.is_file() for path in self.pose_paths)

    def pose(self) -> Pose:
        """The video's 178-point pose (extracted with MediaPipe and cached on first use
        when the corpus has none); its frame count must match the video's."""
        xy, confidence, (width, height), fps = self._checked_pose()
        return pose_from_arrays(xy, confidence, fps, width, height)

    def pose_arrays(self) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """The pose as read-only ``xy`` (T, 178, 2) pixels, ``confidence`` (T, 178) and its
        frame size (width, height); the last videos' arrays are kept in memory."""
        return self._checked_pose()[:3]

    def _checked_pose(self) -> tuple[np.ndarray, np.ndarray, tuple[int, int], float]:
        path = self.ensure_pose()
        arrays = _cached_pose_arrays(str(path), path.stat().st_mtime_ns)
        if len(arrays[0]) != self.num_frames:
            raise SigngenError(f"video {self.name}: its pose has {len(arrays[0])} frames but the video has "
                               f"{self.num_frames} ({path})")
        return arrays

    def ensure_pose(self, progress: bool = False) -> Path:
        """The path of the video's pose file, extracting it first if needed into the cache
        (never into the corpus folder)."""
        for path in self.pose_paths:
            if path.is_file():
                return path
        from signgen.poses.extract import extract_pose

        cache = self.cache_path if self.cache_path is not None else self.pose_paths[-1]
        pose = extract_pose(self.frame_folder, progress=progress, fps=FPS)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SigngenError(f"video {self.name}: cannot create the pose cache folder {cache.parent} "
                               f"({error.strerror}); set XDG_CACHE_HOME to a writable folder") from None
        return write_pose(pose, cache)


@functools.lru_cache(maxsize=POSE_CACHE_SIZE)
def _cached_pose_arrays(path: str, mtime_ns: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int], float]:
    pose = reduce_to_178(read_pose(path))
    xy, confidence = pose_arrays(pose)
    xy.setflags(write=False)
    confidence.setflags(write=False)
    dims = pose.header.dimensions
    return xy, confidence, (int(dims.width), int(dims.height)), float(pose.body.fps)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "signgen" / "holistic"


class PhoenixCorpus:
    """A corpus in the PHOENIX-2014T layout at ``root`` (PHOENIX or SynthSign)."""

    def __init__(self, root: str | os.PathLike, cache_dir: str | os.PathLike | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise SigngenError(f"corpus folder not found: {self.root}")
        # One cache folder per corpus, so that two corpora with equal video names never share poses.
        digest = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:12]
        self.cache_dir = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / digest
        self.skipped: dict[str, list[str]] = {}  # per split, the names of rows without frames
        self._splits: dict[str, list[VideoSample]] = {}

    def pose_cache(self, split: str) -> Path:
        """The folder extracted poses of ``split`` are cached in (never inside the corpus)."""
        return self.cache_dir / split

    def extraction_notice(self, split: str, count: int, total: int) -> str:
        """The line that tells the user where extracted poses go."""
        return (f"{count} of {total} {split} videos have no pose in {self.root / HOLISTIC_DIR}: extracting them "
                f"with MediaPipe into the cache {self.pose_cache(split)} (the corpus folder is not written)")

    @property
    def splits(self) -> list[str]:
        """The splits that have an annotation CSV, the official ones first."""
        folder = self.root / ANNOTATIONS_DIR
        found = sorted(p.name[len("PHOENIX-2014-T."):-len(".corpus.csv")]
                       for p in folder.glob("PHOENIX-2014-T.*.corpus.csv")) if folder.is_dir() else []
        return [s for s in SPLITS if s in found] + [s for s in found if s not in SPLITS]

    def split(self, name: str) -> list[VideoSample]:
        """The videos of split ``name`` (``train``, ``dev``, ``test``; SynthSign also has
        ``test_unseen``) that have frames."""
        if name not in self._splits:
            self._splits[name] = self._read_split(name)
        return self._splits[name]

    def _read_split(self, split: str) -> list[VideoSample]:
        path = annotation_path(self.root, split)
        if not re.fullmatch(r"[A-Za-z0-9_-]+", split) or not path.is_file():
            have = ", ".join(self.splits) or "none"
            raise SigngenError(f"annotation file for split {split!r} not found: {path} (splits found: {have})")
        samples, skipped = [], []
        root = _real(self.root)
        frame_roots = (root, _real(self.root / FRAMES_DIR / split))
        pose_folders = [self.root / HOLISTIC_DIR / folder for folder in pose_split_folders(split)]
        pose_roots = (root, *(_real(folder) for folder in pose_folders))
        for line, row in _read_rows(path):
            name = row["name"]
            _check_row_paths(row, line, path)
            folder = frame_folder(self.root, split, name)
            if not folder.is_dir():
                skipped.append(name)
                continue
            if not is_inside(folder, frame_roots):
                raise SigngenError(f"{path} line {line}: the frame folder of video {shown(name)} is a link to "
                                   f"{_real(folder)}, outside the corpus folder {self.root}; refusing to read it")
            poses = tuple(pose_folder / f"{name}.pose" for pose_folder in pose_folders)
            for pose in poses:
                if (pose.is_symlink() or pose.exists()) and not is_inside(pose, pose_roots):
                    raise SigngenError(f"{path} line {line}: the pose of video {shown(name)} is a link to "
                                       f"{_real(pose)}, outside the corpus folder {self.root}; refusing to read it")
            cache = self.pose_cache(split) / f"{name}.pose"
            samples.append(VideoSample(
                name=name, split=split, signer=row["speaker"], glosses=row["orth"].split(),
                text=row["translation"], frame_folder=folder, pose_paths=(*poses, cache), cache_path=cache,
                frame_roots=frame_roots))
        self.skipped[split] = skipped
        if skipped and not samples:
            raise SigngenError(f"split {split!r}: none of the {len(skipped)} videos of {path.name} has a frame folder "
                               f"under {self.root / FRAMES_DIR / split} (first: {shown(skipped[0])})")
        if skipped:
            logger.warning("%s: skipped %d of %d videos whose frame folder is missing under %s (first: %s)",
                           path.name, len(skipped), len(skipped) + len(samples), self.root / FRAMES_DIR / split, skipped[0])
        return samples

    def ensure_poses(self, split: str, progress: bool = True) -> None:
        """Extract (once) the poses the corpus lacks for ``split`` into the cache, saying
        where in one line, with a progress bar."""
        samples = self.split(split)
        missing = [sample for sample in samples if not sample.has_pose]
        if not missing:
            return
        from tqdm.auto import tqdm

        print(self.extraction_notice(split, len(missing), len(samples)))
        for sample in tqdm(missing, desc=f"extracting {split} poses", unit="video", disable=not progress):
            sample.ensure_pose()


def _check_row_paths(row: dict, line: int, path: Path) -> None:
    """Refuse a row whose name is not one plain folder name, or whose ``video`` column is
    absolute or climbs out with ``..``: the name becomes file names in the corpus and in
    ``signgen eval``'s output folder."""
    name = row["name"]
    if (not name or name in (".", "..") or name.startswith(".") or any(c in name for c in "/\\\0")
            or os.path.isabs(name)):
        raise SigngenError(f"{path} line {line}: video name {shown(name)} is not a plain folder name "
                           "(no '/', '\\', '..' or leading '.'); refusing a path that could leave the corpus folder")
    video = row["video"]
    parts = re.split(r"[/\\]", video)
    if video.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", video) or ".." in parts or "\0" in video:
        raise SigngenError(f"{path} line {line}: video column {shown(video)} is absolute or holds '..'; "
                           "refusing a path that could leave the corpus folder")


def _read_rows(path: Path):
    """(line number, row dict) of a PHOENIX corpus CSV, with its header checked."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=CSV_SEPARATOR, quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != CSV_COLUMNS:
                raise SigngenError(f"{path}: expected the header {CSV_SEPARATOR.join(CSV_COLUMNS)}, got "
                                   f"{CSV_SEPARATOR.join(header) if header else 'an empty file'}")
            for row in reader:
                if not row:
                    continue
                if len(row) != len(CSV_COLUMNS):
                    raise SigngenError(f"{path} line {reader.line_num}: expected {len(CSV_COLUMNS)} fields "
                                       f"separated by {CSV_SEPARATOR!r}, got {len(row)}")
                yield reader.line_num, dict(zip(CSV_COLUMNS, (value.strip() for value in row)))
    except UnicodeDecodeError:
        raise SigngenError(f"{path} is not UTF-8 text") from None


# -- samplers ---------------------------------------------------------------------------

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


def clip_dataset(root: str | os.PathLike, split: str, num_frames: int = 16, resolution: Sequence[int] = (64, 52),
                 pose_channels: int = 4, stride: int | None = None, seed: int = 0,
                 cache_dir: str | os.PathLike | None = None, colour_augment_prob: float = 0.0,
                 coarse_image: bool = False) -> ClipDataset:
    """Clips of ``num_frames`` consecutive frames, starting every ``stride`` frames (default
    ``num_frames``: clips do not overlap), from each video long enough:
    ``{"source": (3, H, W)`` a frame of the same video, ``"frames": (F, 3, H, W)`` in
    [-1, 1], ``"poses": (F, C, H, W)`` in [0, 1]``}``; ``colour_augment_prob`` as for
    :func:`frame_pair_dataset`, one rotation per clip; with ``coarse_image`` also
    ``"coarse"`` (F, 3, H, W) and ``"uncovered"`` (F, 1, H, W), the source warped to each
    frame's pose (:func:`coarse_image_of`)."""
    resolution = _check_sampler_arguments(resolution, pose_channels)
    _check_probability(colour_augment_prob)
    if num_frames < 1:
        raise SigngenError(f"num_frames must be at least 1, got {num_frames}")
    stride = num_frames if stride is None else int(stride)
    if stride < 1:
        raise SigngenError(f"stride must be at least 1, got {stride}")
    return ClipDataset(_samples_with_poses(root, split, cache_dir), num_frames, resolution, stride, seed, colour_augment_prob,
                       coarse_image)


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
