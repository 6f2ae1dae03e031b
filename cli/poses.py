"""``signgen poses``: extract poses from video, draw them as a skeleton video, inspect them,
write a lexicon in compact form."""

from __future__ import annotations

import argparse
import contextlib
import math
from pathlib import Path

from signgen.errors import SigngenError

def register(commands) -> None:
    from signgen.cli import options

    poses = commands.group("poses", "Pose sequences: extract, show, info, build from glosses, compact a lexicon")

    extract = poses.add_parser(
        "extract", help="run MediaPipe Holistic over a video, frame folder or image",
        description="Run MediaPipe Holistic (offline, model complexity 1) over a video, a folder of "
                    "frames (such as PHOENIX's png folders) or one image, and write a .pose file. "
                    "Frames without a detection are masked.")
    extract.add_argument("input", metavar="INPUT", help="video file (mp4, ...), folder or glob of frame images, or an image")
    extract.add_argument("-o", "--output", required=True, metavar="OUT.pose", help="pose file to write")
    extract.add_argument("--fps", type=options.float_in(0.1, 1000.0, "fps"), default=None, metavar="FPS",
                         help="frame rate to record (default: the video's; 25 for frames and images)")
    extract.set_defaults(func=run_extract)

    show = poses.add_parser(
        "show", help="draw a pose as a skeleton video",
        description="Draw a .pose file as a skeleton video (holistic poses in their 178-point form).")
    show.add_argument("input", metavar="IN.pose", help="pose file to draw")
    show.add_argument("-o", "--output", required=True, metavar="OUT.mp4", help="video to write (.mp4, or .gif)")
    show.add_argument("--gif", action="store_true", help="also write a GIF preview beside the mp4 (same name, .gif)")
    show.set_defaults(func=run_show)

    info = poses.add_parser("info", help="frames, rate, size and detected components of a pose",
                            description="Print what a .pose file holds.")
    info.add_argument("input", metavar="IN.pose", help="pose file to inspect")
    info.set_defaults(func=run_info)

    compact = poses.add_parser(
        "compact-lexicon", help="write a lexicon in compact form (178 points, float16, .npz clips)",
        description="Copy a spoken-to-signed lexicon in compact form: each clip cut to its span, reduced to "
                    "178 points and written as <signed_language>/<clip>.npz, with a new index.csv and the "
                    "source's LICENSE. The bundled DGS fingerspelling lexicon is made with: signgen poses "
                    "compact-lexicon ../shared/data/fingerspelling/index.csv poses/assets/fingerspelling --language gsg")
    compact.add_argument("source_csv", metavar="SOURCE_CSV", help="index.csv of the source lexicon")
    compact.add_argument("out_folder", metavar="OUT_FOLDER", help="folder for the compact lexicon (index.csv, clips, LICENSE)")
    compact.add_argument("--language", action="append", help="signed language(s) to keep, e.g. gsg (default: all)")
    compact.set_defaults(func=run_compact_lexicon)


def run_extract(args: argparse.Namespace) -> None:
    from signgen.atomic import atomic_output, check_output_path
    from signgen.poses.extract import extract_pose
    from signgen.poses.io import write_pose
    from signgen.poses.summary import summarize

    # Claim the output first: an unwritable destination fails before minutes of extraction.
    check_output_path(args.output, (".pose",), inputs=[args.input])
    with atomic_output(args.output) as tmp:
        pose = extract_pose(args.input, progress=True, fps=args.fps)
        write_pose(pose, tmp)
    summary = summarize(pose)
    detected = ", ".join(f"{_short_name(c.name)} {_percent(c.detected)}" for c in summary.components
                         if "WORLD" not in c.name)
    print(f"wrote {args.output}: {summary.frames} frame{'s' * (summary.frames != 1)} at {summary.fps:g} fps, "
          f"{summary.width} x {summary.height}; detected in frames: {detected}")


def run_show(args: argparse.Namespace) -> None:
    from signgen.atomic import atomic_output, check_output_path
    from signgen.files import VIDEO_OUTPUT_SUFFIXES
    from signgen.poses.draw import check_drawable, render_skeleton_video
    from signgen.poses.io import read_pose

    output = Path(args.output)
    if args.gif and output.suffix.lower() == ".gif":
        raise SigngenError("--gif adds a GIF beside an .mp4 output; the output is already a GIF")
    outputs = [output, output.with_suffix(".gif")] if args.gif else [output]
    for path in outputs:  # every output checked before any is written: no mp4 left when the gif cannot be
        check_output_path(path, VIDEO_OUTPUT_SUFFIXES, inputs=[args.input])
    pose = read_pose(args.input)
    for path in outputs:
        check_drawable(pose, gif=path.suffix.lower() == ".gif")
    # Each drawn into its temporary, renamed into place only once all are drawn.
    with contextlib.ExitStack() as stack:
        for path in outputs:
            render_skeleton_video(pose, stack.enter_context(atomic_output(path)))
    written = outputs
    print(f"wrote {' and '.join(map(str, written))}: {len(pose.body.data)} frames at {float(pose.body.fps):g} fps")


def run_info(args: argparse.Namespace) -> None:
    from signgen.poses.io import read_pose
    from signgen.poses.summary import summarize

    summary = summarize(read_pose(args.input))
    rows = [
        ("frames", str(summary.frames)),
        ("fps", f"{summary.fps:g}"),
        ("duration", f"{summary.duration:.2f} s"),
        ("size", f"{summary.width} x {summary.height} (width x height)"),
        ("points", f"{summary.points} in {len(summary.components)} components"),
    ]
    print(args.input)
    for key, value in rows:
        print(f"  {key:<10}{value}")
    name_width = max([len("component")] + [len(c.name) for c in summary.components])
    print(f"  {'component':<{name_width}}  points  format  detected in")
    for c in summary.components:
        print(f"  {c.name:<{name_width}}  {c.points:>6}  {c.point_format:<6}  {_percent(c.detected)} of frames")


def run_compact_lexicon(args: argparse.Namespace) -> None:
    from signgen.atomic import check_output_folder
    from signgen.poses.lexicon import Lexicon, write_compact_lexicon

    check_output_folder(args.out_folder, what="OUT_FOLDER")
    index = write_compact_lexicon(args.source_csv, args.out_folder, args.language)
    print(f"wrote {index} ({len(Lexicon.from_csv(index))} entries)")


def _percent(fraction: float) -> str:
    return "-" if math.isnan(fraction) else f"{100 * fraction:.1f}%"


def _short_name(component: str) -> str:
    """``LEFT_HAND_LANDMARKS`` -> ``left hand``; ``POSE_LANDMARKS`` -> ``body``."""
    name = component.removesuffix("_LANDMARKS").lower().replace("_", " ")
    return "body" if name == "pose" else name
