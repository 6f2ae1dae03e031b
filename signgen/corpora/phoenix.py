"""Corpora in the RWTH-PHOENIX-Weather 2014T layout (PHOENIX itself and SynthSign); the
samplers the models train on are :mod:`signgen.corpora.samplers`.

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
"""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
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
