"""Readability benchmark: can the recognisers read what is shown to them?

On the first N whole videos of each SynthSign split given, four videos per reference:

    ground truth       the corpus video itself
    copy photo         its first frame repeated (a still: should read as nothing)
    stick figure       the driving pose drawn as a skeleton (signgen.poses.draw)
    embedded render    the embedded default pipeline (signgen.load_pipeline(None); or the folder
                       --pipeline names) driven by the video's pose with its first frame as the
                       photo, as `signgen eval` does

and per row: WER of the video reader (hand crops placed by the pose MediaPipe re-extracts
from the row's own frames, as `signgen eval` places them; and, to show why not, by the
driving pose, whose trajectory the moving crops leak), WER of the pose reader on that
re-extracted pose, DTW-MJE of
the re-extracted against the driving pose (shoulder widths), hand-SSIM against the
ground-truth frames, and MediaPipe's hands in the row's frames against the driving pose's
(``signgen.poses.fidelity``: the share of the hands it shows that are found, and the
keypoint error in pixels of those found). The ground-truth readings with the corpus pose (the readers' input in
training, and `signgen eval`'s for the reference video) are printed too.

    OMP_NUM_THREADS=2 python benchmarks/bench_readability.py --data runs/synth --videos 16 \\
        --rows "ground truth" "embedded render" --out runs/readability-bench

Writes OUT/rows.jsonl (one line per video and row), OUT/table.md and prints the table.
Renders and the poses re-extracted from them are cached in OUT/renders/ and OUT/poses/
under a key of the sampling steps and the pipeline folder's contents, so a changed default
or ``--steps`` renders anew (a change of signgen's code is not in the key: measure it in a
new OUT) (``--render-only`` makes them alone, e.g. while a recogniser
still trains); ``--steps`` sets the render's sampling steps.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROWS = ("ground truth", "copy photo", "stick figure", "embedded render")


def upscale(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Frames resized (Lanczos, as `signgen render` writes them) to (height, width)."""
    from PIL import Image

    height, width = size
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.LANCZOS)) for f in frames])


class _Lazy:
    """The pipeline in ``folder`` (None: the embedded default), loaded on first use (cached
    renders need none)."""

    def __init__(self, load, folder: Path | None):
        self.load, self.folder, self.pipeline = load, folder, None

    def __call__(self, **kwargs):
        if self.pipeline is None:
            self.pipeline = self.load(self.folder)
        return self.pipeline(**kwargs)


def render_key(args) -> str:
    """What a cached render depends on besides its video: the sampling steps, a digest of
    every file of the pipeline folder (the embedded one by default) and a run seed other than 0."""
    import hashlib

    from signgen.pipelines.pipeline import DEFAULT_PIPELINE

    folder = Path(args.pipeline or DEFAULT_PIPELINE)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return f"steps{args.steps or 'default'}-{digest.hexdigest()[:12]}" + (f"-seed{args.seed}" if args.seed else "")


def render(pipeline, sample, reference: np.ndarray, pose, args) -> np.ndarray:
    """The render of ``sample`` at the model's resolution, cached in
    OUT/renders/<name>-<render key>.npy (the seed is `signgen eval`'s for run seed ``--seed``)."""
    from signgen.evaluation.run import video_seed

    cache = args.out / "renders" / f"{sample.name}-{args.render_key}.npy"
    if cache.is_file():
        return np.load(cache)
    result = pipeline(pose=pose, signer=reference[0], seed=video_seed(args.seed, sample.name), progress=False, keep_frame=True,
                      signer_pose=pose, **({"num_steps": args.steps} if args.steps else {}))
    frames = np.asarray(result.frames)
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial.npy")
    np.save(partial, frames)
    partial.replace(cache)
    return frames


def re_extract(frames: np.ndarray, cache: Path):
    """MediaPipe Holistic on ``frames`` as a 178-point pose, cached in ``cache``."""
    from signgen.poses.extract import extract_pose_from_frames
    from signgen.poses.holistic import reduce_to_178
    from signgen.poses.io import read_pose, write_pose

    if cache.is_file():
        return reduce_to_178(read_pose(cache))
    pose = reduce_to_178(extract_pose_from_frames(frames, progress=False))
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_pose(pose, cache)  # atomic
    return pose


def render_all(args) -> None:
    import signgen
    from signgen.corpora.phoenix import PhoenixCorpus

    pipeline = _Lazy(signgen.load_pipeline, args.pipeline)
    corpus = PhoenixCorpus(args.data)
    for split in args.splits:
        for sample in corpus.split(split)[: args.videos]:
            started = time.perf_counter()
            render(pipeline, sample, sample.frames(), sample.pose(), args)
            print(f"rendered {split} {sample.name} in {time.perf_counter() - started:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a SynthSign corpus")
    parser.add_argument("--splits", nargs="+", default=["test", "test_unseen"])
    parser.add_argument("--videos", type=int, default=8, help="first N videos of each split")
    parser.add_argument("--recogniser", type=Path, default=None, help="default: the embedded readers")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--pipeline", type=Path, default=None,
                        help="a pipeline folder to render with instead of the embedded default (renders are cached in "
                             "OUT: give each pipeline its own OUT)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps of the render (default: the pipeline's)")
    parser.add_argument("--seed", type=int, default=0, help="the run seed of the renders (signgen eval's --seed)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--prepare-only", action="store_true",
                        help="only render and re-extract poses into OUT/renders/ and OUT/poses/ (no reader needed)")
    parser.add_argument("--render-only", action="store_true",
                        help="only render the embedded-render rows into OUT/renders/ (reused by a later full run)")
    args = parser.parse_args()
    if args.pipeline is not None and not args.pipeline.is_dir():
        parser.error(f"--pipeline {args.pipeline} is not a folder")
    args.render_key = render_key(args)
    if args.render_only:
        render_all(args)
        return

    import signgen
    from signgen.corpora.phoenix import PhoenixCorpus
    from signgen.evaluation.back_translation import EMBEDDED_RECOGNISERS, load_readers
    from signgen.errors import SigngenError
    from signgen.poses.draw import draw_skeleton_frames
    from signgen.poses.dtw import pose_dtw_alignment
    from signgen.poses.fidelity import compare_poses, pool_pose_fidelity
    from signgen.poses.holistic import pose_arrays
    from signgen.poses.regions import hand_boxes
    from signgen.video.metrics import region_ssim
    from signgen.video.readability import pool_readings, reading_row

    if not args.prepare_only:
        readers = load_readers(args.recogniser if args.recogniser is not None else EMBEDDED_RECOGNISERS)
    pipeline = _Lazy(signgen.load_pipeline, args.pipeline)
    corpus = PhoenixCorpus(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    with open(args.out / ("prepare.jsonl" if args.prepare_only else "rows.jsonl"), "w", encoding="utf-8") as log:
        for split in args.splits:
            for sample in corpus.split(split)[: args.videos]:
                reference = sample.frames()
                pose = sample.pose()
                xy, confidence, pose_size = sample.pose_arrays()
                glosses = list(sample.glosses)
                height, width = reference.shape[1:3]
                boxes = hand_boxes(xy * [width / pose_size[0], height / pose_size[1]], confidence, (width, height))
                if args.prepare_only:
                    truth = {}
                else:
                    truth = {"video": reading_row(glosses, readers.video.read(xy, confidence, reference, pose_size)),
                             "pose": reading_row(glosses, readers.pose.read(xy, confidence))}
                if truth:
                    record = {"split": split, "name": sample.name, "row": "ground truth, corpus pose", **truth}
                    records.append(record)
                    log.write(json.dumps(record, ensure_ascii=False) + "\n")
                for row in args.rows:
                    started = time.perf_counter()
                    if row == "ground truth":
                        frames = reference
                    elif row == "copy photo":
                        frames = np.repeat(reference[:1], len(reference), axis=0)
                    elif row == "stick figure":
                        frames = draw_skeleton_frames(pose, size=(width, height))
                    else:
                        frames = upscale(render(pipeline, sample, reference, pose, args), (height, width))
                    rendered = f"-{args.render_key}" if row == "embedded render" else ""
                    extracted = re_extract(frames, args.out / "poses" / f"{sample.name}-{row.replace(' ', '-')}{rendered}.pose")
                    if args.prepare_only:
                        print(f"prepared {split} {sample.name} {row}", flush=True)
                        continue
                    e_xy, e_conf = pose_arrays(extracted)
                    record = {"split": split, "name": sample.name, "row": row}
                    for reader, read in (("video", lambda: readers.video.read(e_xy, e_conf, frames, (width, height))),
                                         ("video_driving", lambda: readers.video.read(xy, confidence, frames, pose_size)),
                                         ("pose", lambda: readers.pose.read(e_xy, e_conf))):
                        try:
                            record[reader] = reading_row(glosses, read())
                        except SigngenError as error:  # no shoulders re-extracted: nothing read
                            record[reader] = {**reading_row(glosses, []), "reason": str(error)}
                    try:
                        alignment = pose_dtw_alignment(extracted, pose)
                        record["dtw"] = {"sum": alignment.joint_error_sum, "count": alignment.joint_count}
                    except SigngenError as error:
                        record["dtw"] = {"sum": 0.0, "count": 0, "reason": str(error)}
                    record["hand_ssim"] = region_ssim(frames, reference, boxes)
                    record["fidelity"] = {part: value.to_dict() for part, value in compare_poses(extracted, pose).items()}
                    record["seconds"] = round(time.perf_counter() - started, 1)
                    records.append(record)
                    log.write(json.dumps(record, ensure_ascii=False) + "\n")
                    log.flush()
                    print(f"{split} {sample.name} {row}: video {' '.join(record['video']['glosses'])!r} "
                          f"pose {' '.join(record['pose']['glosses'])!r} (truth {' '.join(glosses)!r}) {record['seconds']} s",
                          flush=True)
    lines = ["| split | row | videos | WER video reader | WER video reader, crops by driving pose (leaks) "
             "| WER pose reader (re-extracted) | DTW-MJE | hand-SSIM | hands detected | hand keypoint error |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for split in args.splits:
        for row in ("ground truth, corpus pose", *args.rows):
            mine = [r for r in records if r["split"] == split and r["row"] == row]
            if not mine:
                continue
            video, pose = pool_readings([r["video"] for r in mine]), pool_readings([r["pose"] for r in mine])
            moved = f"{100 * pool_readings([r['video_driving'] for r in mine])['wer']:.1f} %" if "video_driving" in mine[0] else "-"
            count = sum(r["dtw"]["count"] for r in mine) if "dtw" in mine[0] else 0
            dtw = f"{sum(r['dtw']['sum'] for r in mine) / count:.3f}" if count else "-"
            ssim = f"{np.mean([r['hand_ssim'] for r in mine]):.3f}" if "hand_ssim" in mine[0] else "-"
            pose_label = "pose reader (corpus pose)" if row.endswith("corpus pose") else ""
            hands = pool_pose_fidelity([r["fidelity"] for r in mine])["hands"] if "fidelity" in mine[0] else None
            detected = "-" if hands is None or hands.detection_rate is None else f"{100 * hands.detection_rate:.0f} %"
            error = "-" if hands is None or hands.error_px is None else f"{hands.error_px:.1f} px"
            lines.append(f"| {split} | {row} | {len(mine)} | {100 * video['wer']:.1f} % | {moved} | {100 * pose['wer']:.1f} %"
                         f"{' ' + pose_label if pose_label else ''} | {dtw} | {ssim} | {detected} | {error} |")
    if args.prepare_only:
        return
    table = "\n".join(lines) + "\n"
    (args.out / "table.md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
