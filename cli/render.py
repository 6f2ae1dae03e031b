"""``signgen render``: glosses (or a pose file) and a signer photo in, a signing video out."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from signgen.errors import SigngenError

SUMMARY = "render a video of a signer signing glosses (or a pose file), from one photo"
DESCRIPTION = (
    "Render a video of the signer in --signer signing the glosses of --gloss (or the pose sequence in --pose). "
    "Defaults: the embedded model (a small model trained on the synthetic SynthSign cartoon signers), the "
    "bundled DGS fingerspelling lexicon and the bundled cartoon signer photo. Frames are generated at the "
    "model's resolution (64x52 for the embedded model) and upscaled with a Lanczos filter to PHOENIX's "
    "260x210 (height x width) before they are written as an H.264 mp4 at 25 fps."
)
EXAMPLE = 'example: signgen render --gloss "H A L L O" --signer me.png -o hallo.mp4'


def register(commands) -> None:
    from signgen.cli import options
    from signgen.cli.settings import add_setting_flags
    from signgen.poses.stitch import ON_MISSING

    parser = commands.command("render", SUMMARY)
    parser.description = DESCRIPTION
    parser.epilog = EXAMPLE
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--gloss", metavar="GLOSSES", help='space-separated glosses, e.g. "MORGEN REGEN" or "H A L L O"')
    source.add_argument("--pose", metavar="IN.pose", type=Path,
                        help="drive the signer with this pose file instead (any MediaPipe Holistic .pose; resampled to 25 fps)")
    parser.add_argument("--signer", metavar="PHOTO", type=Path,
                        help="photo of the signer (PNG/JPEG, any size; padded to the model's aspect ratio); default: the bundled cartoon signer")
    parser.add_argument("--model", metavar="DIR", type=Path,
                        help="a pipeline folder (signgen pipeline assemble); default: the embedded model")
    parser.add_argument("--g2p", metavar="lexicon|DIR", default="lexicon",
                        help="glosses to poses: 'lexicon' stitches lexicon clips (default); a folder is a learned "
                             "gloss-to-pose model (signgen train g2p)")
    parser.add_argument("--lexicon", metavar="INDEX_CSV", type=Path,
                        help="lexicon index.csv (spoken-to-signed columns); default: the bundled DGS fingerspelling letters")
    parser.add_argument("--language", default="gsg", help="signed language code of the lexicon rows to use (default: gsg)")
    parser.add_argument("--on-missing", choices=ON_MISSING, default="fingerspell",
                        help="a gloss missing from the lexicon: fingerspell it (default), skip it, or stop with an error")
    parser.add_argument("--guidance", metavar="A,F", type=options.guidance_pair,
                        help="guidance scales appearance,full in one (e.g. 1.5,2.0; 1,1 switches guidance off and runs 3x "
                             "faster): --appearance-scale A --full-scale F")
    parser.add_argument("--seed", metavar="S", type=options.seed, default=0,
                        help="random seed, 0 to 2**63-1; the same seed gives the same video (default: 0)")
    parser.add_argument("--signer-pose", metavar="IN.pose", type=Path,
                        help="the signer photo's own pose (its first frame; signgen poses extract PHOTO -o IN.pose), for "
                             "models that warp the photo to each pose; default: the bundled signer's, or MediaPipe on the photo")
    parser.add_argument("--side-by-side", action="store_true", help="write the driving skeleton and the generated video side by side")
    parser.add_argument("-o", "--output", metavar="OUT.mp4", type=Path, required=True, help="video to write (.mp4, or .gif for a preview)")
    add_setting_flags(parser)
    parser.set_defaults(func=run_render)


def run_render(args: argparse.Namespace) -> None:
    from signgen.atomic import check_output_path
    from signgen.files import VIDEO_OUTPUT_SUFFIXES
    from signgen.cli.settings import given_settings
    from signgen.pipelines.pipeline import load_pipeline
    from signgen.pipelines.postprocess import write_render

    started = time.perf_counter()
    check_output_path(args.output, VIDEO_OUTPUT_SUFFIXES, inputs=(args.pose, args.signer, args.signer_pose))
    if args.signer is not None and not args.signer.is_file():
        raise SigngenError(f"signer photo not found: {args.signer}")
    if args.signer_pose is not None and not args.signer_pose.is_file():
        raise SigngenError(f"signer pose not found: {args.signer_pose}")
    if args.pose is not None and (args.g2p != "lexicon" or args.lexicon is not None):
        raise SigngenError("--g2p and --lexicon turn glosses into poses; they do not apply to --pose")
    g2p = None if args.g2p == "lexicon" else Path(args.g2p)
    if g2p is not None and args.lexicon is not None:
        raise SigngenError("give either --g2p DIR or --lexicon, not both")

    settings = given_settings(args)
    if args.guidance is not None:
        settings.update(appearance_scale=args.guidance[0], full_scale=args.guidance[1])

    pipeline = load_pipeline(args.model)
    # Streamed: the frames are drawn chunk by chunk as they are encoded, never held whole.
    result = pipeline(stream=True, glosses=args.gloss, pose=args.pose, signer=args.signer, seed=args.seed, progress=True,
                      signer_pose=args.signer_pose, g2p=g2p, lexicon=args.lexicon, language=args.language,
                      on_missing=args.on_missing, **settings)
    write_render(result, args.output, side_by_side=args.side_by_side)
    elapsed = time.perf_counter() - started
    frames = len(result)
    print(f"rendered {frames} frames ({frames / result.fps:.2f} s of video) in {elapsed:.1f} s, "
          f"{frames / elapsed:.2f} frames/s: {args.output}")

