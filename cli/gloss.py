"""``signgen poses from-gloss``: glosses to a pose sequence, by lexicon stitching or by a
learned gloss-to-pose model (``--g2p DIR``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from signgen.errors import SigngenError

POSES_GROUP_HELP = "Pose sequences: extract, show, info, build from glosses"


def register(commands) -> None:
    from signgen.cli import options
    from signgen.poses.stitch import MAX_TRANSITION_SECONDS, ON_MISSING

    poses = commands.group("poses", POSES_GROUP_HELP)
    summary = "build a pose sequence from glosses by stitching lexicon clips (fingerspelling missing ones)"
    parser = poses.add_parser("from-gloss", help=summary, description=summary)
    parser.add_argument("glosses", metavar="GLOSSES",
                        help='space-separated glosses, e.g. "MORGEN REGEN NORD" or "H A L L O"')
    parser.add_argument("--lexicon", metavar="INDEX_CSV", type=Path,
                        help="lexicon index.csv (spoken-to-signed columns); default: the bundled DGS fingerspelling letters")
    parser.add_argument("--g2p", metavar="DIR", type=Path,
                        help="a learned gloss-to-pose model folder (signgen train g2p) instead of lexicon stitching; "
                             "glosses outside its vocabulary fall back to the lexicon with a warning")
    parser.add_argument("--language", default="gsg", help="signed language code of the lexicon rows to use (default: gsg)")
    parser.add_argument("--on-missing", choices=ON_MISSING, default="fingerspell",
                        help="what to do with a gloss missing from the lexicon (default: fingerspell)")
    parser.add_argument("--transition", metavar="SECONDS", type=options.float_in(0.0, MAX_TRANSITION_SECONDS, "s"), default=0.2,
                        help=f"length of the interpolated transition between clips, 0 to {MAX_TRANSITION_SECONDS:g} s (default: 0.2)")
    parser.add_argument("-o", "--output", metavar="OUT.pose", type=Path, required=True, help="pose file to write")
    parser.add_argument("--video", metavar="OUT.mp4", type=Path, help="also draw the skeleton as a video (.mp4 or .gif)")
    parser.set_defaults(func=run_from_gloss)


def run_from_gloss(args: argparse.Namespace) -> None:
    from signgen.atomic import check_output_path
    from signgen.files import VIDEO_OUTPUT_SUFFIXES
    from signgen.poses.io import write_pose
    from signgen.poses.lexicon import Lexicon
    from signgen.poses.stitch import stitch_with_spans

    # Both outputs checked before the work, not after.
    inputs = (args.lexicon, args.g2p)
    check_output_path(args.output, (".pose",), inputs=inputs)
    if args.video is not None:
        check_output_path(args.video, VIDEO_OUTPUT_SUFFIXES, inputs=inputs, what="--video")
    render = None
    if args.video is not None:
        try:
            from signgen.poses.draw import render_skeleton_video as render
        except ImportError as error:
            raise SigngenError(f"--video needs skeleton drawing, which is not available here ({error})") from None
    if args.g2p is not None:
        from signgen.pipelines.gloss_to_pose import load_gloss_to_pose
        from signgen.poses.stitch import parse_glosses

        glosses = parse_glosses(args.glosses)
        pose = load_gloss_to_pose(args.g2p, transition_seconds=args.transition, language=args.language)(glosses)
    else:
        lexicon = Lexicon.from_csv(args.lexicon) if args.lexicon is not None else None
        pose, spans = stitch_with_spans(args.glosses, lexicon=lexicon, language=args.language,
                                        on_missing=args.on_missing, transition_seconds=args.transition)
        glosses = [span.gloss for span in spans]
    write_pose(pose, args.output)
    frames = pose.body.data.shape[0]
    print(f"wrote {args.output}: {len(glosses)} glosses, {frames} frames ({frames / pose.body.fps:.2f} s at {pose.body.fps:g} fps)")
    if render is not None:
        render(pose, args.video)
        print(f"wrote {args.video}")
