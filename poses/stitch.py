"""Glosses to a pose sequence by lexicon stitching (the sign.mt / spoken-to-signed approach).

For each gloss the lexicon's clip is taken (a gloss missing from the lexicon is
fingerspelled letter by letter, skipped, or reported, see ``on_missing``), then:

1. **Trimmed** to its signing span: the lexicon row's start/end milliseconds, then, as
   spoken-to-signed does, from the first to the last frame in which a hand is seen with
   its wrist above its elbow (hands rising into and dropping out of the sign are cut).
   A clip where that never happens is cut to the frames in which a hand is seen; a clip
   without any hand is kept whole.
2. **Normalised**: short gaps filled, resampled to 25 fps and placed with
   ``transform.place`` so that every clip has the same shoulder centre and width in the
   target frame (default PHOENIX 210 x 260).
3. **Joined** by ``round(transition_seconds * 25)`` interpolated frames between the last
   frame of one clip and the first of the next, eased (smoothstep: slow out, slow in).
   A point seen at both ends is interpolated; a point seen at one end only is held at
   that end's position while its confidence fades in (or out) linearly, rather than
   inventing where it came from; a point seen at neither end stays missing.
4. **Smoothed**: a Savitzky-Golay filter (window 5, order 2) along time over body and hand
   points, per run of frames where the point is seen. Face points are never smoothed:
   mouthing carries meaning.

The result has exactly ``sum(trimmed clip lengths at 25 fps) + (clips - 1) * transition``
frames; :func:`stitch_with_spans` also returns each gloss's frame span.

Fingerspelling splits a gloss into its letters and digits (other characters, such as the
hyphen in ``NORD-WEST``, only separate letters). PHOENIX writes umlauts as AE/OE/UE: when
the lexicon has the umlaut letter, ``AE``/``OE``/``UE`` are spelled as one letter Ä/Ö/Ü
(so ``SCHOEN`` is S-C-H-Ö-N), except ``UE`` after A, E or Q (``BAUER``, ``FEUER``,
``QUELLE``), where the U belongs to a diphthong or to QU. ``SS`` stays S-S (``WASSER``); a
written ß, Ä, Ö or Ü is spelled with its own letter, or as S-S, A-E, O-E, U-E when the
lexicon lacks it. Letters are taken from the same lexicon as the glosses.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from typing import NamedTuple, Sequence

import numpy as np
from pose_format import Pose

from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.holistic import pose_arrays, pose_from_arrays, reduce_to_178
from signgen.poses.lexicon import UMLAUT_SPELLINGS, Lexicon, LexiconEntry, default_lexicon
from signgen.poses.transform import PHOENIX_FRAMING, TARGET_FPS, Framing, check_video_length, prepare

ON_MISSING = ("fingerspell", "skip", "error")
# Size limits: a gloss string this long is a mistake or an attack (the video's length
# limit, transform.MAX_VIDEO_SECONDS, is checked where any pose is resampled).
MAX_GLOSSES = 1000
MAX_TRANSITION_SECONDS = 5.0

logger = logging.getLogger(__name__)
SMOOTHING_WINDOW = 5
SMOOTHING_ORDER = 2

# Annotation markers of PHOENIX-2014 (``__ON__``, ``__OFF__``, ``__PU__``, ...): not signs.
_MARKER = re.compile(r"^__\w+__$")
_UMLAUT_DIGRAPHS = {"ae": "ä", "oe": "ö", "ue": "ü"}
_LEFT_ELBOW, _RIGHT_ELBOW = skeleton.BODY_POINTS.index("LEFT_ELBOW"), skeleton.BODY_POINTS.index("RIGHT_ELBOW")
_SMOOTHED = np.r_[skeleton.BODY, skeleton.LEFT_HAND, skeleton.RIGHT_HAND]


class GlossSpan(NamedTuple):
    """Frames ``start`` (inclusive) to ``end`` (exclusive) of the output that sign ``gloss``
    (for a fingerspelled gloss: from its first letter to its last, transitions between
    letters included)."""

    gloss: str
    start: int
    end: int


def parse_glosses(glosses: str | Sequence[str]) -> list[str]:
    """Glosses from a space-separated string or a list; PHOENIX-2014 markers such as
    ``__ON__`` are dropped. Empty input and glosses without any letter or digit are
    user errors."""
    tokens = glosses.split() if isinstance(glosses, str) else [t for g in glosses for t in str(g).split()]
    if not tokens:
        raise SigngenError("no glosses given")
    if len(tokens) > MAX_GLOSSES:
        raise SigngenError(f"{len(tokens)} glosses given; at most {MAX_GLOSSES} glosses are rendered at once (split the text)")
    punctuation = [t for t in tokens if not any(c.isalnum() for c in t)]
    if punctuation:
        raise SigngenError(f"not glosses (no letter or digit): {_shown(punctuation)}")
    kept = [t for t in tokens if not _MARKER.match(t)]
    if not kept:
        raise SigngenError(f"only annotation markers, no glosses: {_shown(tokens)}")
    return kept


def _shown(words: Sequence[str], limit: int = 80) -> str:
    """Words of user input for a message, at most ``limit`` characters (an ellipsis marks a cut)."""
    text = " ".join(words)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def spell(gloss: str, lexicon: Lexicon, language: str = "gsg") -> tuple[list[LexiconEntry], list[str]]:
    """The letter entries that fingerspell ``gloss``, and the characters the lexicon has no
    letter for (see the module docstring for umlauts)."""
    text = unicodedata.normalize("NFC", gloss)
    entries: list[LexiconEntry] = []
    unknown: list[str] = []

    def add(letter: str) -> None:
        entry = lexicon.lookup(letter, language)
        if entry is not None:
            entries.append(entry)
        elif letter.lower() in UMLAUT_SPELLINGS:
            for part in UMLAUT_SPELLINGS[letter.lower()]:
                add(part)
        else:
            unknown.append(letter)

    i = 0
    while i < len(text):
        char = text[i]
        if not char.isalnum():
            i += 1
            continue
        pair = text[i:i + 2].lower()
        after_diphthong = pair == "ue" and i > 0 and text[i - 1].lower() in "aeq"
        umlaut = _UMLAUT_DIGRAPHS.get(pair)
        if umlaut and not after_diphthong and lexicon.lookup(umlaut, language) is not None:
            add(umlaut)
            i += 2
        else:
            add(char)
            i += 1
    return entries, unknown


def resolve_glosses(glosses: str | Sequence[str], lexicon: Lexicon, language: str = "gsg",
                    on_missing: str = "fingerspell") -> list[tuple[str, list[LexiconEntry]]]:
    """Each gloss with the lexicon entries that sign it (one, or one per letter).

    Every problem is collected first, so that the error names all unknown glosses or
    letters, not only the first.
    """
    if on_missing not in ON_MISSING:
        raise SigngenError(f"on_missing must be one of {', '.join(ON_MISSING)}, got {on_missing!r}")
    tokens = parse_glosses(glosses)
    if language.lower() not in lexicon.languages:
        have = ", ".join(sorted(lexicon.languages)) or "none"
        raise SigngenError(f"{lexicon.source} has no entries for signed language {language!r} (it has: {have})")
    resolved: list[tuple[str, list[LexiconEntry]]] = []
    missing: list[str] = []
    spelled: list[str] = []
    unknown_letters: dict[str, list[str]] = {}
    for gloss in tokens:
        entry = lexicon.lookup(gloss, language)
        if entry is not None:
            resolved.append((gloss, [entry]))
        elif on_missing == "fingerspell":
            spelled.append(gloss)
            letters, unknown = spell(gloss, lexicon, language)
            if unknown:
                unknown_letters.setdefault(gloss, []).extend(unknown)
            resolved.append((gloss, letters))
        else:
            missing.append(gloss)
    if unknown_letters:
        detail = "; ".join(f"{' '.join(dict.fromkeys(chars))} in {gloss}" for gloss, chars in unknown_letters.items())
        raise SigngenError(f"cannot fingerspell glosses missing from {lexicon.source} ({language}), no letter for: {_shown([detail], 200)}")
    if missing and on_missing == "error":
        raise SigngenError(f"glosses not in {lexicon.source} ({language}): {_shown(list(dict.fromkeys(missing)))}")
    if not resolved:
        raise SigngenError(f"none of the glosses is in {lexicon.source} ({language}): {_shown(list(dict.fromkeys(missing)))}")
    report_fallback(spelled, "fingerspelled")
    report_fallback(missing, "skipped")
    return resolved


def report_fallback(glosses: Sequence[str], what: str) -> None:
    """One log line (a warning, which the command line prints on stderr) naming the glosses
    missing from the lexicon and what was done instead, e.g. ``fingerspelled 2 glosses not
    in the lexicon: REGEN, SCHNEE``."""
    unique = list(dict.fromkeys(glosses))
    if unique:
        names = ", ".join(unique)
        if len(names) > 200:
            names = names[:199] + "…"
        logger.warning("%s %d gloss%s not in the lexicon: %s", what, len(unique), "es" * (len(unique) != 1), names)


def signing_frames(xy: np.ndarray, confidence: np.ndarray) -> slice:
    """The signing span of a 178-point clip (see the module docstring, step 1)."""
    raised = np.zeros(len(xy), dtype=bool)
    seen = np.zeros(len(xy), dtype=bool)
    for hand, elbow in ((skeleton.LEFT_HAND, _LEFT_ELBOW), (skeleton.RIGHT_HAND, _RIGHT_ELBOW)):
        wrist = hand.start  # the hand's own WRIST point
        hand_seen = (confidence[:, hand] > 0).any(axis=1)
        seen |= hand_seen
        # Image y grows downwards: above means smaller y.
        raised |= hand_seen & (confidence[:, wrist] > 0) & (confidence[:, elbow] > 0) & (xy[:, wrist, 1] < xy[:, elbow, 1])
    for frames in (raised, seen):
        if frames.any():
            indices = np.flatnonzero(frames)
            return slice(int(indices[0]), int(indices[-1]) + 1)
    return slice(0, len(xy))


def trim_to_signing(pose: Pose) -> Pose:
    """``pose`` cut to its signing span (see the module docstring, step 1)."""
    xy, confidence = pose_arrays(pose)
    span = signing_frames(xy, confidence)
    dims = pose.header.dimensions
    return pose_from_arrays(xy[span], confidence[span], pose.body.fps, dims.width, dims.height)


def prepare_clip(pose: Pose, framing: Framing = PHOENIX_FRAMING) -> Pose:
    """One clip as it enters a stitch: 178 points, trimmed to its signing span, short gaps
    filled, 25 fps, placed into ``framing``."""
    return prepare(trim_to_signing(reduce_to_178(pose)), fps=TARGET_FPS, framing=framing)


def transition(start_xy: np.ndarray, start_confidence: np.ndarray, end_xy: np.ndarray,
               end_confidence: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``frames`` in-between frames from one frame (J, 2)/(J,) to another, both excluded."""
    progress = np.arange(1, frames + 1, dtype=np.float32) / (frames + 1)
    eased = (progress * progress * (3 - 2 * progress))[:, None, None]
    start_seen = start_confidence > 0
    end_seen = end_confidence > 0
    both = start_seen & end_seen
    # A point seen at one end only is held there.
    origin = np.where(start_seen[:, None], start_xy, end_xy)
    target = np.where(end_seen[:, None], end_xy, start_xy)
    xy = origin + (target - origin) * eased
    weight = progress[:, None]
    confidence = np.where(both, start_confidence * (1 - weight) + end_confidence * weight,
                          np.where(start_seen, start_confidence * (1 - weight), end_confidence * weight))
    return xy.astype(np.float32), confidence.astype(np.float32)


def smooth(xy: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Savitzky-Golay smoothing along time of body and hand points, per run of frames in
    which a point is seen (runs shorter than the window are left as they are). Face points
    are returned bit for bit unchanged."""
    from scipy.signal import savgol_filter  # scipy.signal costs seconds to import: only when used

    smoothed = xy.copy()
    seen = confidence[:, _SMOOTHED] > 0
    if len(xy) >= SMOOTHING_WINDOW:  # the usual case, points seen throughout: one call
        always = _SMOOTHED[seen.all(axis=0)]
        smoothed[:, always] = savgol_filter(xy[:, always], SMOOTHING_WINDOW, SMOOTHING_ORDER, axis=0)
    for joint in _SMOOTHED[seen.any(axis=0) & ~seen.all(axis=0)]:
        edges = np.diff(np.r_[0, confidence[:, joint] > 0, 0].astype(np.int8))
        for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            if end - start >= SMOOTHING_WINDOW:
                smoothed[start:end, joint] = savgol_filter(xy[start:end, joint], SMOOTHING_WINDOW, SMOOTHING_ORDER, axis=0)
    return smoothed


def transition_frames(transition_seconds: float) -> int:
    if not np.isfinite(transition_seconds) or not 0 <= transition_seconds <= MAX_TRANSITION_SECONDS:
        raise SigngenError(f"transition must be a non-negative number of seconds, at most {MAX_TRANSITION_SECONDS:g}, got {transition_seconds}")
    return int(round(transition_seconds * TARGET_FPS))


Clip = tuple[np.ndarray, np.ndarray]  # a prepared clip: xy (T, 178, 2), confidence (T, 178)


def _join(groups: Sequence[tuple[str, Sequence[Clip]]], between: int, framing: Framing,
          smoothing: bool) -> tuple[Pose, list[GlossSpan]]:
    parts_xy: list[np.ndarray] = []
    parts_confidence: list[np.ndarray] = []
    spans: list[GlossSpan] = []
    # The length first: a gloss string that would make hours of video fails before any copy.
    check_video_length(sum(len(xy) for _, clips in groups for xy, _ in clips)
                       + between * max(0, sum(len(clips) for _, clips in groups) - 1))
    frame = 0
    for gloss, clips in groups:
        if not clips:
            raise SigngenError(f"no clips to sign {gloss!r}")
        start = None
        for xy, confidence in clips:
            if len(xy) == 0:
                raise SigngenError(f"an empty clip signs {gloss!r}")
            if parts_xy:
                xy_between, confidence_between = transition(parts_xy[-1][-1], parts_confidence[-1][-1], xy[0], confidence[0], between)
                parts_xy.append(xy_between)
                parts_confidence.append(confidence_between)
                frame += between
            start = frame if start is None else start
            parts_xy.append(xy)
            parts_confidence.append(confidence)
            frame += len(xy)
        spans.append(GlossSpan(gloss, start, frame))
    if not parts_xy:
        raise SigngenError("nothing to stitch")
    xy = np.concatenate(parts_xy)
    confidence = np.concatenate(parts_confidence)
    if smoothing:
        xy = smooth(xy, confidence)
    return pose_from_arrays(xy, confidence, TARGET_FPS, framing.width, framing.height), spans


def stitch_poses(groups: Sequence[tuple[str, Sequence[Pose]]], transition_seconds: float = 0.2,
                 framing: Framing = PHOENIX_FRAMING, smoothing: bool = True) -> tuple[Pose, list[GlossSpan]]:
    """Stitch holistic clips, grouped by the gloss they sign, into one 178-point pose at
    25 fps in ``framing``'s pixel frame; returns it with each gloss's frame span."""
    between = transition_frames(transition_seconds)
    prepared = [(gloss, [pose_arrays(prepare_clip(clip, framing)) for clip in clips]) for gloss, clips in groups]
    return _join(prepared, between, framing, smoothing)


@functools.lru_cache(maxsize=1024)
def _prepared_entry(lexicon: Lexicon, entry: LexiconEntry, framing: Framing) -> Clip:
    """A lexicon clip prepared for stitching, cached: a corpus reuses the same clips over
    and over. Read-only arrays (stitching copies them into its output)."""
    xy, confidence = pose_arrays(prepare_clip(lexicon.clip(entry), framing))
    xy.setflags(write=False)
    confidence.setflags(write=False)
    return xy, confidence


def stitch_with_spans(glosses: str | Sequence[str], lexicon: Lexicon | None = None, language: str = "gsg",
                      on_missing: str = "fingerspell", transition_seconds: float = 0.2,
                      framing: Framing = PHOENIX_FRAMING) -> tuple[Pose, list[GlossSpan]]:
    """:func:`glosses_to_pose`, also returning each gloss's frame span (skipped glosses
    have none)."""
    lexicon = default_lexicon() if lexicon is None else lexicon
    between = transition_frames(transition_seconds)  # a bad value fails before any clip is read
    resolved = resolve_glosses(glosses, lexicon, language, on_missing)
    groups = [(gloss, [_prepared_entry(lexicon, entry, framing) for entry in entries]) for gloss, entries in resolved]
    return _join(groups, between, framing, smoothing=True)


def glosses_to_pose(glosses: str | Sequence[str], lexicon: Lexicon | None = None, language: str = "gsg",
                    on_missing: str = "fingerspell", transition_seconds: float = 0.2,
                    framing: Framing = PHOENIX_FRAMING) -> Pose:
    """A 178-point pose at 25 fps in ``framing``'s pixel frame that signs ``glosses``
    (a space-separated string or a list) with clips from ``lexicon`` (default: the bundled
    DGS fingerspelling lexicon). ``on_missing``: ``fingerspell`` a gloss missing from the
    lexicon, ``skip`` it, or raise an ``error`` naming every missing gloss."""
    return stitch_with_spans(glosses, lexicon, language, on_missing, transition_seconds, framing)[0]
