"""SynthSign: a synthetic signer corpus written in exactly the RWTH-PHOENIX-Weather 2014T
layout (see ``signgen.corpora.phoenix``), so that one loader, one trainer and one evaluation serve
both.

Each video is a "sentence" of 3 to 8 glosses drawn from the letters of the bundled DGS
fingerspelling lexicon, turned into a 178-point pose by the lexicon stitcher (real
signers' motion, 25 fps, placed in PHOENIX's 210 x 260 frame) and drawn as a cartoon
signer (``signgen.corpora.cartoon``). The pose written to ``holistic/`` is the one drawn, so it
is exact ground truth.

Splits: ``train``, ``dev`` and ``test`` share the seen signers; ``test_unseen`` has
signers that appear nowhere else. Each split gets about 10 % of the videos (at least
one), ``train`` the rest.

Everything follows from the seed: signer ``s`` looks as ``Identity.sample`` draws from
``(seed, 0, s)``, video ``i``'s glosses come from ``(seed, 1, i)``, so the same settings
write byte-identical files, in any order, with any number of workers. A video's frames
are written into a hidden folder that is renamed into place once the video and its pose
are complete; ``synthsign.json`` records the settings and signers, so that a rerun with
the same settings resumes where an interrupted one stopped and any other non-empty
output folder is refused.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from signgen.atomic import LOCK_NAME, atomic_output, check_output_folder, folder_lock
from signgen.corpora.cartoon import CartoonRenderer
from signgen.corpora.identity import Identity
from signgen.corpora.phoenix import (CSV_COLUMNS, CSV_SEPARATOR, FRAMES_DIR, annotation_path, frame_file_name, frame_folder,
                          pose_path)
from signgen.errors import SigngenError
from signgen.files import read_json_object

SPLITS = ("train", "dev", "test", "test_unseen")
EVAL_FRACTION = 0.1  # of the videos, for each of dev, test and test_unseen
MANIFEST = "synthsign.json"
FORMAT_VERSION = 1
LANGUAGE = "gsg"
PNG_COMPRESSION = 3  # zlib level: fixed, so output is deterministic; higher levels gain little here
_PARTIAL_SUFFIX = ".partial"


MAX_SIGNERS = 1000  # per group (seen, unseen): a corpus's size limit, named in the error
MAX_VIDEOS = 100_000  # over all splits: a corpus's size limit, named in the error


@dataclass(frozen=True)
class SynthSignSettings:
    """What a SynthSign corpus is made of; the same settings write the same files."""

    signers: int = 4
    videos: int = 200
    seed: int = 0
    unseen_signers: int | None = None  # default: a quarter of ``signers``, at least one
    min_glosses: int = 3
    max_glosses: int = 8
    transition_seconds: float = 0.2

    def __post_init__(self):
        if not 1 <= self.signers <= MAX_SIGNERS:
            raise SigngenError(f"--signers must be from 1 to {MAX_SIGNERS}, got {self.signers}")
        if self.videos < len(SPLITS):
            raise SigngenError(f"--videos must be at least {len(SPLITS)} (one per split: {', '.join(SPLITS)}), got {self.videos}")
        if self.videos > MAX_VIDEOS:
            raise SigngenError(f"--videos must be at most {MAX_VIDEOS:,} (the size limit of a SynthSign corpus), got {self.videos:,}")
        # A signer is drawn, and checked against every other, only to appear in a video:
        # signers beyond the videos are work for nothing (1000 unseen signers for 4 videos
        # took 47 s). test_unseen's videos go to its signers in turn, so each of up to that
        # many appears; the default is held to it.
        unseen_videos = split_sizes(self.videos)["test_unseen"]
        if self.unseen_signers is None:
            object.__setattr__(self, "unseen_signers", min(max(1, self.signers // 4), unseen_videos))
        if not 1 <= self.unseen_signers <= MAX_SIGNERS:
            raise SigngenError(f"--unseen-signers must be from 1 to {MAX_SIGNERS}, got {self.unseen_signers}")
        if self.unseen_signers > unseen_videos:
            raise SigngenError(f"--unseen-signers {self.unseen_signers} is more than the {unseen_videos} test_unseen "
                               f"video{'s' * (unseen_videos != 1)} of --videos {self.videos}; each unseen signer needs "
                               f"one (raise --videos or lower --unseen-signers)")
        if self.signers > self.videos:
            raise SigngenError(f"--signers {self.signers} is more than --videos {self.videos}: most signers would appear "
                               f"in no video (raise --videos or lower --signers)")
        if not 1 <= self.min_glosses <= self.max_glosses:
            raise SigngenError(f"gloss counts must satisfy 1 <= min <= max, got {self.min_glosses}..{self.max_glosses}")
        if self.seed < 0:
            raise SigngenError(f"--seed must be a non-negative integer, got {self.seed}")


@dataclass(frozen=True)
class PlannedVideo:
    index: int
    name: str
    split: str
    signer: int  # index into the corpus's identities
    glosses: tuple[str, ...]

    @property
    def speaker(self) -> str:
        return signer_name(self.signer)

    @property
    def text(self) -> str:
        return "".join(self.glosses).lower()


@dataclass(frozen=True)
class SynthSignSummary:
    root: Path
    written: int  # videos rendered by this run
    kept: int  # videos already complete (a resumed run)
    frames: int  # frames written by this run
    videos_per_split: dict[str, int]


def signer_name(index: int) -> str:
    return f"Signer{index + 1:02d}"


def split_sizes(videos: int) -> dict[str, int]:
    evaluation = max(1, round(EVAL_FRACTION * videos))
    return {"train": videos - 3 * evaluation, "dev": evaluation, "test": evaluation, "test_unseen": evaluation}


def gloss_alphabet(lexicon=None) -> list[str]:
    """The lexicon's single-letter glosses in upper case (``ß`` stays itself), in the
    lexicon's order."""
    from signgen.poses.lexicon import default_lexicon

    lexicon = default_lexicon() if lexicon is None else lexicon
    letters = []
    for entry in lexicon:
        if entry.signed_language.lower() == LANGUAGE and len(entry.gloss) == 1:
            upper = entry.gloss.upper()
            letter = upper if len(upper) == 1 else entry.gloss
            if letter not in letters:
                letters.append(letter)
    if not letters:
        raise SigngenError(f"the lexicon has no single-letter {LANGUAGE} glosses to spell sentences with")
    return letters


def plan_identities(settings: SynthSignSettings) -> list[Identity]:
    """One identity per signer: seen signers first, then the unseen ones. A draw too
    close to an earlier signer (same pattern, similar garment) is drawn again."""
    identities: list[Identity] = []
    for signer in range(settings.signers + settings.unseen_signers):
        rng = np.random.default_rng([settings.seed, 0, signer])
        for _ in range(100):
            identity = Identity.sample(rng)
            if all(not _look_alike(identity, other) for other in identities):
                break
        identities.append(identity)
    return identities


def _look_alike(a: Identity, b: Identity) -> bool:
    garment = np.linalg.norm(np.subtract(a.garment, b.garment, dtype=np.float64))
    return a.pattern == b.pattern and garment < 60


def plan_videos(settings: SynthSignSettings, alphabet: list[str]) -> list[PlannedVideo]:
    videos = []
    index = 0
    for split, count in split_sizes(settings.videos).items():
        first_signer, signers = (settings.signers, settings.unseen_signers) if split == "test_unseen" else (0, settings.signers)
        for position in range(count):
            rng = np.random.default_rng([settings.seed, 1, index])
            length = int(rng.integers(settings.min_glosses, settings.max_glosses + 1))
            glosses = tuple(alphabet[int(i)] for i in rng.integers(len(alphabet), size=length))
            videos.append(PlannedVideo(index=index, name=f"synthsign-{index + 1:05d}", split=split,
                                       signer=first_signer + position % signers, glosses=glosses))
            index += 1
    return videos


def manifest(settings: SynthSignSettings, identities: list[Identity]) -> dict:
    return {
        "format": "synthsign",
        "format_version": FORMAT_VERSION,
        "settings": asdict(settings),
        "signers": {signer_name(i): identity.to_dict() for i, identity in enumerate(identities)},
        "unseen_signers": [signer_name(i) for i in range(settings.signers, len(identities))],
    }


def read_identities(root: str | os.PathLike) -> dict[str, Identity]:
    """The signers of the SynthSign corpus at ``root``, by speaker name (``Signer01`` ...)."""
    path = Path(root) / MANIFEST
    data = _read_corpus_manifest(path)
    return {name: Identity.from_dict(fields) for name, fields in data["signers"].items()}


def _read_corpus_manifest(path: Path) -> dict:
    if not path.is_file():
        raise SigngenError(f"not a SynthSign corpus ({path.name} missing): {path.parent}")
    data = read_json_object(path, "SynthSign manifest")
    if data.get("format") != "synthsign" or not isinstance(data.get("signers"), dict):
        raise SigngenError(f"not a SynthSign manifest: {path}")
    return data


def render_video(video: PlannedVideo, identity: Identity, transition_seconds: float = 0.2):
    """The pose (178 points, 25 fps, 210 x 260) and frames uint8 (T, 260, 210, 3) of ``video``."""
    from signgen.poses.holistic import pose_arrays
    from signgen.poses.stitch import glosses_to_pose
    from signgen.poses.transform import PHOENIX_FRAMING

    pose = glosses_to_pose(list(video.glosses), language=LANGUAGE, on_missing="error",
                           transition_seconds=transition_seconds, framing=PHOENIX_FRAMING)
    xy, confidence = pose_arrays(pose)
    return pose, _renderer(identity).render(xy, confidence)


@functools.lru_cache(maxsize=64)
def _renderer(identity: Identity) -> CartoonRenderer:
    from signgen.poses.transform import PHOENIX_FRAMING

    return CartoonRenderer(identity, (PHOENIX_FRAMING.width, PHOENIX_FRAMING.height))


def encode_png(frame: np.ndarray) -> bytes:
    """PNG bytes of an RGB frame: zlib at a fixed level, no time stamp, so equal frames
    give equal files."""
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise SigngenError("PNG encoding failed")
    return data.tobytes()


def write_video(root: Path, video: PlannedVideo, identity: Identity, transition_seconds: float) -> int:
    """Render and write one video (frames, then pose, then the frame folder renamed into
    place); returns its frame count."""
    from signgen.poses.io import write_pose

    final = frame_folder(root, video.split, video.name)
    partial = final.with_name(f".{video.name}{_PARTIAL_SUFFIX}")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    pose, frames = render_video(video, identity, transition_seconds)
    for index, frame in enumerate(frames):
        (partial / frame_file_name(index)).write_bytes(encode_png(frame))
    destination = pose_path(root, video.split, video.name)
    destination.parent.mkdir(parents=True, exist_ok=True)
    write_pose(pose, destination)
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    return len(frames)


def _is_complete(root: Path, video: PlannedVideo) -> bool:
    return frame_folder(root, video.split, video.name).is_dir() and pose_path(root, video.split, video.name).is_file()


def _write_one(job: tuple[str, PlannedVideo, Identity, float]) -> int:
    root, video, identity, transition_seconds = job
    return write_video(Path(root), video, identity, transition_seconds)


def write_csvs(root: Path, videos: list[PlannedVideo]) -> None:
    for split in SPLITS:
        rows = [CSV_SEPARATOR.join(CSV_COLUMNS)]
        rows += [CSV_SEPARATOR.join((v.name, f"{v.name}/1/*.png", "-1", "-1", v.speaker, " ".join(v.glosses), v.text))
                 for v in videos if v.split == split]
        path = annotation_path(root, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            tmp.write_text("\n".join(rows) + "\n", encoding="utf-8")


def _prepare_output(root: Path, expected: dict) -> None:
    """Give the folder ``root`` (created, and locked by this process) its manifest, or
    accept it for resuming; refuse anything else."""
    if any(path.name != LOCK_NAME for path in root.iterdir()):
        path = root / MANIFEST
        if not path.is_file():
            raise SigngenError(f"{root} is not empty and holds no SynthSign corpus ({MANIFEST} missing); choose a new or empty --out")
        existing = _read_corpus_manifest(path)
        if existing != expected:
            differ = sorted(k for k in set(existing.get("settings", {})) | set(expected["settings"])
                            if existing.get("settings", {}).get(k) != expected["settings"].get(k))
            what = f"other settings ({', '.join(differ)})" if differ else "another version of SynthSign"
            raise SigngenError(f"{root} holds a SynthSign corpus written with {what}; rerun with its settings to resume it, "
                               f"or choose a new --out")
        for split in SPLITS:  # what an interrupted run left half-written
            for stale in (root / FRAMES_DIR / split).glob(f".*{_PARTIAL_SUFFIX}"):
                shutil.rmtree(stale)
        return
    with atomic_output(root / MANIFEST) as tmp:
        tmp.write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_synthsign(out: str | os.PathLike, settings: SynthSignSettings, workers: int = 1,
                    progress: bool = True) -> SynthSignSummary:
    """Write (or resume) a SynthSign corpus at ``out``, streaming video by video.

    ``workers`` > 1 renders videos in that many processes; the files are the same.
    """
    if workers < 1:
        raise SigngenError(f"--workers must be at least 1, got {workers}")
    root = check_output_folder(out)
    identities = plan_identities(settings)
    videos = plan_videos(settings, gloss_alphabet())
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SigngenError(f"cannot create --out {root} ({error.strerror})") from None
    # Locked from before the stale files of an interrupted run are removed: a second run
    # at once would take the first one's half-written video for such a file.
    with folder_lock(root):
        _prepare_output(root, manifest(settings, identities))
        frames, pending = _write_pending(root, settings, identities, videos, workers, progress)
        write_csvs(root, videos)
    per_split = {split: sum(v.split == split for v in videos) for split in SPLITS}
    return SynthSignSummary(root=root, written=len(pending), kept=len(videos) - len(pending), frames=frames,
                            videos_per_split=per_split)


def _write_pending(root: Path, settings: SynthSignSettings, identities: list[Identity], videos: list[PlannedVideo],
                   workers: int, progress: bool) -> tuple[int, list[PlannedVideo]]:
    """Render the videos not yet complete; returns the frames written and those videos."""
    from tqdm.auto import tqdm

    pending = [video for video in videos if not _is_complete(root, video)]
    jobs = [(str(root), video, identities[video.signer], settings.transition_seconds) for video in pending]
    frames = 0
    with tqdm(total=len(videos), initial=len(videos) - len(pending), desc="SynthSign", unit="video",
              disable=not progress) as bar:
        if workers == 1 or len(jobs) < 2:
            results = map(_write_one, jobs)
            for count in results:
                frames += count
                bar.update(1)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: the parent may hold threads (torch, OpenCV) that fork would copy half-way
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                for count in pool.map(_write_one, jobs, chunksize=1):
                    frames += count
                    bar.update(1)
    return frames, pending
