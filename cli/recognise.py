"""``signgen recognise``: read the glosses of one video, frame folder or pose (back-translation)."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = (
    "Read the glosses signed in a video file, a folder of frames or a .pose file with a CTC recogniser "
    "(`signgen train recogniser`) and print them on one line, the last line of output. Frames are run through "
    "MediaPipe Holistic first: the video reader places its hand crops by that pose. Without --recogniser the "
    "readers shipped with signgen (trained on SynthSign) read: the video reader for frames, the pose reader for "
    "a pose."
)


def register(commands) -> None:
    parser = commands.command("recognise", "read the glosses of a video, frame folder or pose (back-translation)")
    parser.description = DESCRIPTION
    parser.add_argument("input", type=Path, metavar="VIDEO|FRAMES_DIR|POSE", help="an mp4 (or any video PyAV reads), "
                        "a folder of frame images, or a .pose file")
    parser.add_argument("--recogniser", type=Path, metavar="DIR",
                        help="recogniser folder (--out/model of `signgen train recogniser`, or a folder with video/ and "
                             "pose/ inside; default: the embedded SynthSign readers)")
    parser.set_defaults(func=run_recognise)


def run_recognise(args: argparse.Namespace) -> None:
    from signgen.evaluation.back_translation import recognise

    glosses = recognise(args.input, args.recogniser, progress=False)
    print(" ".join(glosses))
