"""Back-translation: can a reader read what signgen renders?

A recogniser (``signgen.models.recogniser``) reads glosses from each generated video and
from its ground-truth video; both are scored against the video's glosses by WER and
BLEU-4 (``signgen.video.readability``), and the generated video's word accuracy over the
ground truth's is the headline readability figure. Two readers:

- the **video reader** reads the frames, its hand crops placed by the pose MediaPipe
  extracts from those frames, for the ground truth and the generated video alike (where
  MediaPipe misses a hand, its forearm places it), so that it reads only what the pixels
  show. Crops placed by the driving pose
  would leak its trajectory: moved over a still photo they alone read as letters;
- the **pose reader** reads the pose MediaPipe re-extracts from the generated frames,
  beside the driving pose itself (what the pose reader makes of the input, the ceiling),
  and DTW-MJE between the two.

Readers come from ``--recogniser DIR`` (one reader's folder, or a folder holding
``video/`` and ``pose/``), or, on a SynthSign corpus (its ``synthsign.json``), from the
recognisers shipped with signgen (``signgen/assets/recogniser``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from signgen.errors import SigngenError
from signgen.video.readability import pool_readings, readability_ratio, reading_row

EMBEDDED_RECOGNISERS = Path(__file__).resolve().parent.parent / "assets" / "recogniser"
READER_FOLDERS = ("video", "pose")
SYNTHSIGN_MARKER = "synthsign.json"
PROTOCOL = ("CTC reader, greedy decoding; WER and BLEU-4 over glosses, pooled",
            "back-translation: a CTC recogniser reads glosses (greedy decoding) from the generated video and from "
            "the ground-truth video; WER = gloss edits (Levenshtein) / reference glosses and BLEU-4 over glosses "
            "(no smoothing), both pooled over the videos; readability = (1 - WER generated) / (1 - WER ground "
            "truth). The video reader places its hand crops by the pose MediaPipe extracts from the frames it reads, "
            "ground truth and generated alike (a missed hand placed along its forearm); the pose "
            "reader reads the driving pose and that re-extracted pose; DTW-MJE between re-extracted and driving pose "
            "in shoulder widths, pooled")


def is_synthsign(data: str | Path) -> bool:
    """Whether ``data`` is a SynthSign corpus (``signgen data synth`` writes its manifest)."""
    from signgen.files import read_json_object

    path = Path(data) / SYNTHSIGN_MARKER
    if not path.is_file():
        return False
    try:
        return read_json_object(path, "SynthSign manifest").get("format") == "synthsign"
    except SigngenError:
        return False


@dataclass
class Readers:
    """The readers of one run and where they came from."""

    video: Any = None
    pose: Any = None
    source: str = ""

    def __bool__(self) -> bool:
        return self.video is not None or self.pose is not None

    def fingerprint(self) -> str | None:
        return self.source or None


def load_readers(folder: str | Path | None, data: str | Path | None = None, device: str = "cpu") -> Readers:
    """The readers in ``folder`` (one reader, or ``video/`` and ``pose/`` in it); None:
    the embedded ones for a SynthSign ``data``, else none. Every problem is one line."""
    from signgen.files import MANIFEST_NAME
    from signgen.models.recogniser import load_recogniser

    if folder is None:
        if data is None or not is_synthsign(data) or not EMBEDDED_RECOGNISERS.is_dir():
            return Readers()
        folder, source = EMBEDDED_RECOGNISERS, "embedded"
    else:
        folder = Path(folder)
        if not folder.is_dir():
            raise SigngenError(f"--recogniser: folder not found: {folder}")
        source = str(folder.resolve())
    readers = Readers(source=source)
    parts = [folder / name for name in READER_FOLDERS if (folder / name / MANIFEST_NAME).is_file()]
    for part in parts or [folder]:
        model = load_recogniser(part, device)
        setattr(readers, model.config.reader, model)
    return readers


def check_vocabulary(readers: Readers, videos) -> None:
    """Refuse, before any work, readers that cannot write some gloss of the videos."""
    for reader in (readers.video, readers.pose):
        if reader is None:
            continue
        unknown = sorted({g for sample in videos for g in sample.glosses if not reader.knows(g)})
        if unknown:
            shown = " ".join(unknown[:10]) + (f" ... ({len(unknown)} in all)" if len(unknown) > 10 else "")
            raise SigngenError(f"the {reader.config.reader} recogniser ({readers.source}) does not know glosses of "
                               f"this split: {shown}; train one on this corpus (signgen train recogniser)")


def read_video_row(readers: Readers, sample, reference_frames: np.ndarray, generated: np.ndarray, extracted,
                   driving) -> dict:
    """One video's back-translation: glosses read and their scores, per reader and input.
    ``extracted`` is the pose re-extracted from ``generated`` (a ``Pose``), ``driving`` the
    pose that drove the generation."""
    from signgen.poses.holistic import pose_arrays

    glosses = list(sample.glosses)
    row: dict[str, Any] = {}
    extracted_xy, extracted_conf = pose_arrays(extracted)
    driving_xy, driving_conf = pose_arrays(driving)
    generated_size = (generated.shape[2], generated.shape[1])
    if readers.video is not None:
        # The ground truth through the same re-extraction as the generated video, so that
        # the ratio compares what the two videos show, not two ways of finding the hands.
        from signgen.poses.extract import extract_pose_from_frames
        from signgen.poses.holistic import reduce_to_178

        xy, confidence = pose_arrays(reduce_to_178(extract_pose_from_frames(reference_frames, progress=False)))
        row["video"] = {
            "reference": _read(readers.video, glosses, xy, confidence, reference_frames,
                               (reference_frames.shape[2], reference_frames.shape[1])),
            # Crops placed by the driving pose would leak its trajectory: the crop moving over
            # a still photo alone reads as letters. The re-extracted pose comes from the pixels.
            "generated": _read(readers.video, glosses, extracted_xy, extracted_conf, generated, generated_size),
        }
    if readers.pose is not None:
        row["pose"] = {
            "driving": _read(readers.pose, glosses, driving_xy, driving_conf),
            "generated": _read(readers.pose, glosses, extracted_xy, extracted_conf),
        }
    row["dtw_mje"] = _dtw(extracted, driving)
    return row


def _read(reader, glosses, xy, confidence, frames=None, pose_size=None) -> dict:
    try:
        read = reader.read(np.asarray(xy), np.asarray(confidence), frames, pose_size)
    except SigngenError as error:  # e.g. MediaPipe saw no shoulders in a generated video: nothing read
        return {**reading_row(glosses, []), "reason": str(error)}
    return reading_row(glosses, read)


def _dtw(extracted, driving) -> dict:
    from signgen.poses.dtw import pose_dtw_alignment

    try:
        alignment = pose_dtw_alignment(extracted, driving)
    except SigngenError as error:
        return {"mje": None, "reason": str(error)}
    return {"mje": alignment.mje, "joint_error_sum": alignment.joint_error_sum, "joint_count": alignment.joint_count}


def summarize_readability(ok_rows: list[dict]) -> dict | None:
    """Corpus figures of the rows' ``readability`` parts; None when no row has one."""
    rows = [row["readability"] for row in ok_rows if row.get("readability")]
    if not rows:
        return None
    entry: dict[str, Any] = {"videos": len(rows)}
    for reader, (truth, generated) in (("video", ("reference", "generated")), ("pose", ("driving", "generated"))):
        readings = [row[reader] for row in rows if reader in row]
        if not readings:
            continue
        part = {which: pool_readings([r[which] for r in readings]) for which in (truth, generated)}
        part["readability"] = readability_ratio(part[generated]["wer"], part[truth]["wer"])
        entry[reader] = part
    parts = [row["dtw_mje"] for row in rows if row.get("dtw_mje", {}).get("joint_count")]
    count = sum(p["joint_count"] for p in parts)
    entry["dtw_mje"] = {"value": sum(p["joint_error_sum"] for p in parts) / count if count else None, "videos": len(parts)}
    return entry


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _ratio(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def readability_table_rows(entry: dict, protocol: str) -> list[tuple[str, str, str]]:
    """(metric, value, protocol) rows of :func:`summarize_readability`'s entry."""
    table = []
    names = {"video": ("video reader", "ground truth", "reference"), "pose": ("pose reader", "driving pose", "driving")}
    for reader in ("video", "pose"):
        if reader not in entry:
            continue
        what, truth_name, truth = names[reader]
        part = entry[reader]
        table.append((f"readability ({what})", _ratio(part["readability"]), protocol))
        for key, shown in ((truth, truth_name), ("generated", "generated")):
            table.append((f"{what} WER / BLEU-4, {shown}",
                          f"{_percent(part[key]['wer'])} / {_ratio(part[key]['bleu4'])}", protocol))
    dtw = entry.get("dtw_mje", {})
    table.append(("DTW-MJE, re-extracted vs driving pose",
                  "n/a" if dtw.get("value") is None else f"{dtw['value']:.4f}", protocol))
    return table


# ---------------------------------------------------------------- one input (signgen recognise)


def recognise(path: str | Path, folder: str | Path | None = None, progress: bool = False) -> list[str]:
    """The glosses read from a video file, a frame folder or a ``.pose`` file, by the reader
    in ``folder`` (one reader, or ``video/`` and ``pose/`` in it: the video reader for
    frames, the pose reader for a pose) or by the embedded readers. Frames are run through
    MediaPipe Holistic first: the video reader places its hand crops by that pose."""
    from signgen.poses.holistic import pose_arrays, reduce_to_178

    path = Path(path)
    if not path.exists():
        raise SigngenError(f"input not found: {path}")
    if folder is not None:
        readers = load_readers(folder)
    elif EMBEDDED_RECOGNISERS.is_dir():
        readers = load_readers(EMBEDDED_RECOGNISERS)
    else:
        raise SigngenError("this signgen ships no recogniser; pass --recogniser DIR (signgen train recogniser)")
    if path.is_file() and path.suffix.lower() == ".pose":
        from signgen.poses.io import read_pose

        if readers.pose is None:
            raise SigngenError(f"{path} is a pose, and the video reader ({readers.source}) needs frames: give a video "
                               "or a frame folder, or a pose reader")
        pose = reduce_to_178(read_pose(path))
        xy, confidence = pose_arrays(pose)
        if len(xy) == 0:
            raise SigngenError(f"the pose {path} has no frames: nothing to read")
        return readers.pose.read(xy, confidence)
    from signgen.poses.extract import extract_pose_from_frames
    from signgen.video.io import read_video

    frames = read_video(path)
    if len(frames) == 0:
        raise SigngenError(f"the video {path} has no frames: nothing to read")
    pose = reduce_to_178(extract_pose_from_frames(frames, progress=progress))
    xy, confidence = pose_arrays(pose)
    reader = readers.video if readers.video is not None else readers.pose
    return reader.read(xy, confidence, frames if reader is readers.video else None, (frames.shape[2], frames.shape[1]))
