"""Sign lexicons: an ``index.csv`` in spoken-to-signed's column layout that points at pose
clips, with gloss lookups and clip loading.

Columns: ``path,spoken_language,signed_language,start,end,words,glosses,priority``.
``path`` is relative to the CSV's folder (paths that leave it are refused: ``..`` and
absolute paths when the CSV is read, links that resolve outside it when a clip is loaded); ``start`` and
``end`` are milliseconds into the clip (``end`` 0 means "to the end of the clip", an
``end`` past the clip is clamped); among rows for the same gloss and signed language the
lowest ``priority`` wins, then the earliest row.

Glosses match case-insensitively and across PHOENIX's ASCII spellings of umlauts: PHOENIX
writes ``SCHOEN``/``GROSS`` for SCHÖN/GROß, so a lexicon row ``SCHÖN`` answers ``SCHOEN``
(and the other way round). An exact spelling is preferred over an umlaut-folded one.

A clip is a ``.pose`` file (any MediaPipe Holistic layout, reduced to the 178-point set)
or a compact ``.npz`` clip as written by :func:`write_compact_lexicon` (``xy`` float16
pixels (T, 178, 2), ``confidence`` uint8 (T, 178) scaled by 255, ``fps``, ``size`` =
(width, height)); the bundled DGS fingerspelling lexicon uses the compact form.
"""

from __future__ import annotations

import csv
import functools
import os
import shutil
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from pose_format import Pose

from signgen.atomic import atomic_folder, atomic_output
from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.holistic import pose_arrays, pose_from_arrays, reduce_to_178
from signgen.poses.io import read_pose

COLUMNS = ("path", "spoken_language", "signed_language", "start", "end", "words", "glosses", "priority")
CLIP_SUFFIXES = (".pose", ".npz")
INDEX_NAME = "index.csv"  # of a compact lexicon written by write_compact_lexicon, with LICENSE
LICENSE_NAME = "LICENSE"
COMPACT_ARRAYS = ("xy", "confidence", "fps", "size")  # the arrays of a compact .npz clip
CLIP_CACHE_SIZE = 1024
DEFAULT_LEXICON_CSV = Path(__file__).parent / "assets" / "fingerspelling" / "index.csv"

# PHOENIX-2014T spells umlauts and sharp s in ASCII.
UMLAUT_SPELLINGS = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"}


def exact_key(gloss: str) -> str:
    """Case-insensitive key that keeps umlauts and ß apart from their ASCII spellings
    (``lower``, not ``casefold``: casefold turns ß into ss)."""
    return unicodedata.normalize("NFC", gloss.strip()).lower()


def folded_key(gloss: str) -> str:
    """Case-insensitive key under which ``SCHÖN``, ``SCHOEN`` and ``schoen`` coincide."""
    key = exact_key(gloss)
    for umlaut, spelling in UMLAUT_SPELLINGS.items():
        key = key.replace(umlaut, spelling)
    return key


@dataclass(frozen=True)
class LexiconEntry:
    """One lexicon row; ``path`` is absolute and inside the lexicon's folder."""

    path: Path
    spoken_language: str
    signed_language: str
    start_ms: int
    end_ms: int
    words: str
    gloss: str
    priority: int
    row: int  # line number in the CSV (header is line 1), for error messages
    root: str = ""  # the lexicon's resolved folder, which the clip must resolve into ("": not checked)


class Lexicon:
    """Gloss lookups over lexicon entries; the index is built once, here."""

    def __init__(self, entries: Iterable[LexiconEntry], source: str = "lexicon"):
        self.entries: tuple[LexiconEntry, ...] = tuple(entries)
        self.source = source
        exact: dict[tuple[str, str], LexiconEntry] = {}
        folded: dict[tuple[str, str], LexiconEntry] = {}
        # Best first, so that setdefault keeps the winner for each key.
        for entry in sorted(self.entries, key=lambda e: (e.priority, e.row)):
            language = entry.signed_language.lower()
            exact.setdefault((language, exact_key(entry.gloss)), entry)
            folded.setdefault((language, folded_key(entry.gloss)), entry)
        self._exact = exact
        self._folded = folded
        self.languages = frozenset(language for language, _ in exact)
        # Bounded, so that stitching a whole corpus does not keep every clip in memory.
        self._load_clip = functools.lru_cache(maxsize=CLIP_CACHE_SIZE)(_load_clip)

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> "Lexicon":
        """Read an ``index.csv`` (or the ``index.csv`` inside the folder ``path``)."""
        path = Path(path)
        if path.is_dir():
            path = path / "index.csv"
        if not path.is_file():
            raise SigngenError(f"lexicon index not found: {path}")
        root = str(path.parent.resolve())
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
                if missing:
                    raise SigngenError(f"lexicon {path} lacks columns {', '.join(missing)} (expected {','.join(COLUMNS)})")
                entries = [_entry_from_row(row, reader.line_num, root, path) for row in reader]
        except UnicodeDecodeError:
            raise SigngenError(f"lexicon {path} is not UTF-8 text") from None
        except csv.Error as error:
            raise SigngenError(f"lexicon {path} is not a readable CSV ({error})") from None
        return cls(entries, source=str(path))

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[LexiconEntry]:
        return iter(self.entries)

    def lookup(self, gloss: str, language: str = "gsg") -> LexiconEntry | None:
        """The preferred entry for ``gloss`` in signed language ``language``, or None."""
        language = language.lower()
        return self._exact.get((language, exact_key(gloss))) or self._folded.get((language, folded_key(gloss)))

    def clip(self, entry: LexiconEntry) -> Pose:
        """The entry's clip as a 178-point ``Pose``, cut to its start/end milliseconds.

        The most recently used clips are cached; each call returns a fresh ``Pose``.
        """
        xy, confidence, fps, width, height = self._load_clip(entry)
        # Copies: the Pose's arrays would otherwise be views of the cache.
        return pose_from_arrays(xy.copy(), confidence.copy(), fps, width, height)


def _entry_from_row(row: dict, line: int, root: str, csv_path: Path) -> LexiconEntry:
    where = f"lexicon {csv_path} line {line}"
    if None in row or any(row.get(column) is None for column in COLUMNS):
        raise SigngenError(f"{where}: expected {len(COLUMNS)} fields")
    relative = row["path"].strip()
    gloss = row["glosses"].strip()
    if not relative:
        raise SigngenError(f"{where}: empty path")
    if not gloss:
        raise SigngenError(f"{where}: empty glosses")
    # A lexical check with plain strings (no file-system calls, little pathlib: lexicons
    # run to 100k rows): neither ``..`` nor an absolute path may escape the folder.
    clip_path = os.path.normpath(os.path.join(root, relative))
    if not clip_path.startswith(root.rstrip(os.sep) + os.sep):
        raise SigngenError(f"{where}: clip path {relative!r} leaves the lexicon folder {root}")
    if not clip_path.lower().endswith(CLIP_SUFFIXES):
        raise SigngenError(f"{where}: clip {relative!r} is neither .pose nor .npz")
    start, end, priority = (_integer(row[column], column, where) for column in ("start", "end", "priority"))
    if start < 0 or end < 0 or (end and end <= start):
        raise SigngenError(f"{where}: bad span start={start} end={end} (milliseconds; end 0 means the whole clip)")
    return LexiconEntry(path=Path(clip_path), spoken_language=row["spoken_language"].strip(),
                        signed_language=row["signed_language"].strip(), start_ms=start, end_ms=end,
                        words=row["words"].strip(), gloss=gloss, priority=priority, row=line, root=root)


def _integer(text: str, column: str, where: str) -> int:
    text = text.strip()
    if not text:
        return 0
    try:
        return int(float(text))
    except ValueError:
        raise SigngenError(f"{where}: {column} is not a number: {text!r}") from None


def _load_clip(entry: LexiconEntry) -> tuple[np.ndarray, np.ndarray, float, int, int]:
    if entry.root:
        # The row's path was checked as text; a link on the way may still lead out.
        real = os.path.realpath(entry.path)
        if not real.startswith(entry.root.rstrip(os.sep) + os.sep):
            raise SigngenError(f"clip of lexicon entry {entry.gloss!r} (line {entry.row}) is a link to {real}, "
                               f"outside the lexicon folder {entry.root}; refusing to read it")
    if not entry.path.is_file():
        raise SigngenError(f"clip of lexicon entry {entry.gloss!r} (line {entry.row}) not found: {entry.path}")
    if entry.path.suffix.lower() == ".npz":
        xy, confidence, fps, width, height = read_compact_clip(entry.path)
    else:
        pose = reduce_to_178(read_pose(entry.path))
        xy, confidence = pose_arrays(pose)
        fps, width, height = float(pose.body.fps), pose.header.dimensions.width, pose.header.dimensions.height
    frames = xy.shape[0]
    first = min(int(round(entry.start_ms * fps / 1000)), frames)
    last = min(int(round(entry.end_ms * fps / 1000)), frames) if entry.end_ms else frames
    if last <= first:
        raise SigngenError(f"lexicon entry {entry.gloss!r} (line {entry.row}): span {entry.start_ms}-{entry.end_ms} ms "
                           f"is empty in its clip of {frames} frames at {fps:g} fps: {entry.path}")
    return xy[first:last], confidence[first:last], fps, width, height


def read_compact_clip(path: Path) -> tuple[np.ndarray, np.ndarray, float, int, int]:
    """A compact ``.npz`` clip as float32 ``xy``, float32 ``confidence``, fps, width, height."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in COMPACT_ARRAYS if name not in archive.files]
            if missing:
                raise SigngenError(f"not a compact clip: {path} lacks the array {missing[0]!r} ({', '.join(COMPACT_ARRAYS)})")
            xy = archive["xy"].astype(np.float32)
            confidence = archive["confidence"].astype(np.float32) / 255.0
            fps = float(archive["fps"])
            width, height = (int(v) for v in archive["size"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, TypeError):
        raise SigngenError(f"not a readable compact clip (truncated, or not an .npz of xy, confidence, fps, size): {path}") from None
    if xy.ndim != 3 or xy.shape[1:] != (skeleton.NUM_POINTS, 2) or confidence.shape != xy.shape[:2] or fps <= 0:
        raise SigngenError(f"compact clip has the wrong shape (expected xy (T, 178, 2), confidence (T, 178)): {path}")
    xy[confidence <= 0] = 0.0
    return xy, confidence, fps, width, height


def write_compact_clip(pose: Pose, path: Path) -> None:
    """Store a 178-point pose compactly: float16 pixels (a quarter pixel of precision up
    to 512 px), confidence in 1/255 steps (a detected point never rounds to "missing")."""
    xy, confidence = pose_arrays(pose)
    stored_confidence = np.where(confidence > 0, np.clip(np.round(confidence * 255), 1, 255), 0).astype(np.uint8)
    with atomic_output(path) as tmp:
        np.savez_compressed(tmp, xy=xy.astype(np.float16), confidence=stored_confidence,
                            fps=np.float32(pose.body.fps),
                            size=np.array([pose.header.dimensions.width, pose.header.dimensions.height], dtype=np.int32))


def write_compact_lexicon(source_csv: str | os.PathLike, out_folder: str | os.PathLike,
                          languages: Sequence[str] | None = None) -> Path:
    """Copy a lexicon in compact form: each clip cut to its span, reduced to 178 points and
    written as ``<signed_language>/<clip name>.npz``, with a new ``index.csv`` (start and
    end 0: the whole stored clip) and the source's LICENSE beside it. Rebuilds the bundled
    default with ``signgen poses compact-lexicon ../shared/data/fingerspelling/index.csv
    poses/assets/fingerspelling --language gsg``. Returns the new ``index.csv``.

    ``out_folder`` is new, empty, or a compact lexicon written before (see
    :func:`is_compact_lexicon_folder`), which is replaced as a whole, atomically: an error
    leaves it as it was. Its other top-level files (a README; LICENSE unless the source
    has one) are kept. Anything else is refused, so that no user file is overwritten."""
    out_folder = Path(out_folder)
    kept = _check_compact_output(out_folder)
    source = Lexicon.from_csv(source_csv)
    wanted = {language.lower() for language in languages} if languages else None
    entries = [entry for entry in source if wanted is None or entry.signed_language.lower() in wanted]
    if not entries:
        raise SigngenError(f"no lexicon rows to copy from {source_csv} for languages {', '.join(sorted(wanted or []))}")
    for entry in entries:
        if not _is_plain_name(entry.signed_language):
            raise SigngenError(f"lexicon entry {entry.gloss!r} (line {entry.row}): signed_language {entry.signed_language!r} "
                               f"cannot be a folder name (one plain name, no '/', '\\' or '..')")
    license_file = Path(source_csv).parent / "LICENSE"
    with atomic_folder(out_folder) as partial:
        rows = []
        for entry in entries:
            relative = Path(entry.signed_language) / f"{entry.path.stem}.npz"
            (partial / relative.parent).mkdir(parents=True, exist_ok=True)
            write_compact_clip(source.clip(entry), partial / relative)
            rows.append([relative.as_posix(), entry.spoken_language, entry.signed_language, 0, 0,
                         entry.words, entry.gloss, entry.priority])
        with open(partial / INDEX_NAME, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(rows)
        for name in kept:
            shutil.copy2(out_folder / name, partial / name)
        if license_file.is_file():
            shutil.copyfile(license_file, partial / LICENSE_NAME)
    return out_folder / INDEX_NAME


def _is_plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def is_compact_lexicon_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a compact lexicon (what :func:`write_compact_lexicon` writes),
    which a new compact copy may replace: an ``index.csv`` with exactly the columns of
    :data:`COLUMNS` whose every row is ``<language>/<name>.npz`` with start and end 0; each
    sub-folder a language of those rows holding only ``.npz`` files; nothing else but
    regular files (LICENSE, a README). No links anywhere."""
    folder = Path(folder)
    try:
        if folder.is_symlink() or not folder.is_dir():
            return False
        index = folder / INDEX_NAME
        if index.is_symlink() or not index.is_file():
            return False
        with open(index, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            if tuple(next(reader, ())) != COLUMNS:
                return False
            languages = set()
            for row in reader:
                if not row:
                    continue
                parts = row[0].split("/")
                if (len(row) != len(COLUMNS) or len(parts) != 2 or not all(map(_is_plain_name, parts))
                        or not parts[1].endswith(".npz") or row[3].strip() != "0" or row[4].strip() != "0"):
                    return False
                languages.add(parts[0])
        for child in folder.iterdir():
            if child.is_symlink():
                return False
            if child.is_dir():
                if child.name not in languages:
                    return False
                if any(clip.is_symlink() or not clip.is_file() or clip.suffix != ".npz" for clip in child.iterdir()):
                    return False
            elif not child.is_file():
                return False
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return True


def _check_compact_output(out_folder: Path) -> list[str]:
    """Refuse an output that is not a new or empty folder nor a compact lexicon; returns
    the names of the top-level files of an existing compact lexicon to keep (its README)."""
    if out_folder.is_symlink():
        raise SigngenError(f"OUT_FOLDER is a symbolic link, refusing to replace it: {out_folder}")
    if not out_folder.exists():
        return []
    if not out_folder.is_dir():
        raise SigngenError(f"OUT_FOLDER exists and is not a folder: {out_folder}")
    try:
        children = list(out_folder.iterdir())
    except OSError as error:
        raise SigngenError(f"cannot read OUT_FOLDER {out_folder}: {error.strerror or type(error).__name__}") from None
    if not children:
        return []
    if not is_compact_lexicon_folder(out_folder):
        raise SigngenError(f"OUT_FOLDER {out_folder} is not empty and not a compact lexicon (it would be overwritten); "
                           f"choose a new or empty folder")
    return sorted(child.name for child in children if child.is_file() and child.name != INDEX_NAME)


@functools.cache
def default_lexicon() -> Lexicon:
    """The bundled DGS (gsg) fingerspelling lexicon: 30 letters including ä, ö, ü, ß."""
    return Lexicon.from_csv(DEFAULT_LEXICON_CSV)
