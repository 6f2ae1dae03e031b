"""The on-disk state of a ``signgen eval`` run, possibly distributed and resumed: the
processes, the shards each one writes, the run folder's checks, and the merged statistics.

Run folder::

    run.json                      the settings that decide the results; a rerun must match
    videos/<name>.mp4             generated videos (written atomically)
    side_by_side/<name>.mp4       reference | render | driving pose, for report.html
    shards/rank-<r>.jsonl         one row per finished video, appended and fsynced
    shards/rank-<r>.npz           that process's Fréchet statistics (FID, FID-VID, FVD)
    per_video.jsonl               all rows in split order      } written at the end
    summary.json / .md / .png     corpus figures and a figure  } by rank 0 (report.py)
    report.html                   the report to look at        } (html_report.py)

**Resuming.** A row in a shard means the video is finished; a half-written last line
(a kill during the write) is dropped and cut off. A process saves its statistics, with
the names of the videos in them, *before* appending the row, so a kill between the two
leaves a video whose features are counted but whose row is missing: it is generated
again (same seed, same frames) for its row, and its features are not added twice. Each
video's seed comes from the run seed and the video's name, never from the order, so a
resumed run ends with the same summary as an uninterrupted one.

**Distributed.** Under ``torchrun`` or ``accelerate launch`` (``WORLD_SIZE`` > 1) process
``r`` of ``N`` takes the videos ``r::N`` of the split, writes its own shards, and rank 0
merges every shard after a ``torch.distributed`` barrier over gloo (which needs no GPU).
Finished videos and statistics are read from every shard in the folder, so a run resumed
with another number of processes still counts each video once.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from signgen.atomic import atomic_output
from signgen.errors import SigngenError

RUN_CONFIG_NAME = "run.json"
VIDEOS_DIR = "videos"
SIDE_BY_SIDE_DIR = "side_by_side"  # reference | render | driving pose per video, for report.html
SHARDS_DIR = "shards"
# Ranks wait for the slowest one at the end; a full PHOENIX test split on few CPUs can take
# many hours, and gloo's default 30-minute timeout would abort a healthy run.
BARRIER_TIMEOUT = datetime.timedelta(days=7)


# ---------------------------------------------------------------- processes


@dataclass(frozen=True)
class Workers:
    """This process's place among the evaluation processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()


@contextlib.contextmanager
def distributed_workers() -> Iterator[Workers]:
    """The processes started by torchrun or accelerate launch (one process without them),
    joined in a gloo group for barriers."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield Workers()
        return
    import torch.distributed as dist

    started_here = not dist.is_initialized()
    if started_here:
        dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
    try:
        yield Workers(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    finally:
        if started_here:
            dist.destroy_process_group()


# ---------------------------------------------------------------- shards


def shard_rows_path(run_dir: Path, rank: int) -> Path:
    return run_dir / SHARDS_DIR / f"rank-{rank}.jsonl"


def shard_stats_path(run_dir: Path, rank: int) -> Path:
    return run_dir / SHARDS_DIR / f"rank-{rank}.npz"


def _shard_files(run_dir: Path, suffix: str) -> list[Path]:
    """Every process's shard of one kind, in rank order (the merge order)."""
    pattern = re.compile(rf"rank-(\d+){re.escape(suffix)}")
    found = [(int(m.group(1)), p) for p in (run_dir / SHARDS_DIR).glob(f"rank-*{suffix}")
             if (m := pattern.fullmatch(p.name))]
    return [path for _, path in sorted(found)]


def read_rows(path: Path) -> tuple[list[dict], int]:
    """The rows of a JSONL shard and the byte length of its complete lines; a last line
    without its newline was cut by a kill and is left out."""
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    rows = []
    for number, line in enumerate(data[:complete].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise SigngenError(f"{path} line {number} is not a JSON row; the run folder is damaged") from None
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            raise SigngenError(f"{path} line {number} is not a row of signgen eval")
        rows.append(row)
    return rows, complete


def read_all_rows(run_dir: Path) -> dict[str, dict]:
    """Finished videos by name, over the shards of every process (first row wins)."""
    rows: dict[str, dict] = {}
    for path in _shard_files(run_dir, ".jsonl"):
        for row in read_rows(path)[0]:
            rows.setdefault(row["name"], row)
    return rows


class RowWriter:
    """Appends rows to this process's shard, each flushed and fsynced as it is written, so
    a finished video stays finished whatever happens next."""

    def __init__(self, path: Path):
        if path.exists():
            complete = read_rows(path)[1]
            if complete != path.stat().st_size:
                with open(path, "r+b") as file:  # drop the half-written row of a killed run
                    file.truncate(complete)
        self._file = open(path, "a", encoding="utf-8")

    def append(self, row: dict) -> None:
        self._file.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


class FeatureStatistics:
    """Running Fréchet statistics of one process (generated and reference accumulators per
    metric) and the names of the videos folded into them; saved as one .npz, atomically."""

    def __init__(self, dimensions: dict[str, int]):
        from signgen.video.metrics import FrechetAccumulator

        self.accumulators = {(metric, side): FrechetAccumulator(size)
                             for metric, size in dimensions.items() for side in ("generated", "reference")}
        self.videos: list[str] = []

    def add(self, name: str, features: dict[tuple[str, str], np.ndarray]) -> None:
        for key, rows in features.items():
            self.accumulators[key].update(rows)
        self.videos.append(name)

    def merge(self, other: "FeatureStatistics") -> None:
        for key, accumulator in self.accumulators.items():
            if key in other.accumulators:
                accumulator.merge(other.accumulators[key])
        self.videos += other.videos

    def save(self, path: Path) -> None:
        arrays = {"videos": np.asarray(self.videos, dtype=str)}
        for (metric, side), accumulator in self.accumulators.items():
            arrays.update({f"{metric}.{side}.{field}": value for field, value in accumulator.to_arrays().items()})
        with atomic_output(path) as tmp, open(tmp, "wb") as file:
            np.savez(file, **arrays)

    @classmethod
    def load(cls, path: Path, dimensions: dict[str, int] | None = None) -> "FeatureStatistics":
        """Read a saved file; with ``dimensions``, only those metrics, which it must hold."""
        from signgen.video.metrics import FrechetAccumulator

        try:
            with np.load(path, allow_pickle=False) as data:
                keys = {tuple(k.split(".")[:2]) for k in data.files if k != "videos"}
                statistics = cls({})
                for metric, side in sorted(keys):
                    if dimensions is None or metric in dimensions:
                        prefix = f"{metric}.{side}."
                        state = {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}
                        statistics.accumulators[(metric, side)] = FrechetAccumulator.from_arrays(state)
                statistics.videos = [str(v) for v in data["videos"]]
        except (OSError, KeyError, ValueError) as error:
            raise SigngenError(f"cannot read feature statistics {path}: {error}") from None
        if dimensions is not None:
            for metric, size in dimensions.items():
                for side in ("generated", "reference"):
                    held = statistics.accumulators.get((metric, side))
                    if held is None or held.num_features != size:
                        raise SigngenError(f"{path} holds no {size}-d {metric} statistics; the run folder is damaged")
        return statistics


def video_names_in_statistics(run_dir: Path) -> set[str]:
    names: set[str] = set()
    for path in _shard_files(run_dir, ".npz"):
        try:
            with np.load(path, allow_pickle=False) as data:
                names.update(str(v) for v in data["videos"])
        except (OSError, KeyError, ValueError) as error:
            raise SigngenError(f"cannot read feature statistics {path}: {error}") from None
    return names


# ---------------------------------------------------------------- run folder


def check_run_folder(run_dir: Path, config: dict) -> None:
    """Refuse a folder that holds another run (or anything but a run) before any work."""
    if run_dir.exists() and not run_dir.is_dir():
        raise SigngenError(f"--out is not a folder: {run_dir}")
    path = run_dir / RUN_CONFIG_NAME
    if not path.is_file():
        if run_dir.is_dir() and any(run_dir.iterdir()):
            raise SigngenError(f"{run_dir} is not empty and holds no {RUN_CONFIG_NAME}: not a signgen eval run folder")
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise SigngenError(f"{path} is not readable JSON; the run folder is damaged") from None
    differences = [f"{key} {stored.get(key)!r} there, {value!r} here"
                   for key, value in config.items() if stored.get(key) != value]
    if differences:
        raise SigngenError(f"{run_dir} holds a run with other settings ({'; '.join(differences)}); "
                           "rerun with the same settings to resume, or use another --out")


def start_run_folder(run_dir: Path, config: dict) -> None:
    try:
        (run_dir / VIDEOS_DIR).mkdir(parents=True, exist_ok=True)
        (run_dir / SHARDS_DIR).mkdir(exist_ok=True)
        (run_dir / SIDE_BY_SIDE_DIR).mkdir(exist_ok=True)
    except OSError as error:  # a read-only file system, no permission, a file in the way
        raise SigngenError(f"cannot create the run folder {run_dir}: {error.strerror or type(error).__name__}") from None
    if not (run_dir / RUN_CONFIG_NAME).is_file():
        with atomic_output(run_dir / RUN_CONFIG_NAME) as tmp:
            tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- merged statistics


def merged_statistics(run_dir: Path, dimensions: dict[str, int]) -> FeatureStatistics:
    """Every process's Fréchet statistics in the folder, merged in rank order."""
    statistics = FeatureStatistics(dimensions)
    for path in _shard_files(run_dir, ".npz"):
        statistics.merge(FeatureStatistics.load(path, dimensions))
    return statistics
