"""``signgen render``: glosses (or a pose file) and a signer photo in, a signing video out."""

from __future__ import annotations

import argparse
import os
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
    from signgen.pipelines.limits import MAX_DEFLICKER_SIGMA, MAX_STEPS
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
    parser.add_argument("--steps", metavar="N", type=options.int_in(1, MAX_STEPS),
                        help=f"denoising steps, 1 to {MAX_STEPS} and at most the model's training timesteps (default: the model's setting)")
    parser.add_argument("--scheduler", metavar="NAME",
                        help="sampler: ddim, dpm (DPM-Solver++), euler, euler_a, unipc or a diffusers scheduler class (default: the model's)")
    parser.add_argument("--guidance", metavar="A,F", type=options.guidance_pair,
                        help="guidance scales appearance,full (e.g. 1.5,2.0; 1,1 switches guidance off and runs 3x faster; "
                             "finite, within +-30), "
                             "over the model's guidance interval (default: the model's scales)")
    parser.add_argument("--seed", metavar="S", type=options.seed, default=0,
                        help="random seed, 0 to 2**63-1; the same seed gives the same video (default: 0)")
    parser.add_argument("--signer-pose", metavar="IN.pose", type=Path,
                        help="the signer photo's own pose (its first frame; signgen poses extract PHOTO -o IN.pose), for "
                             "models that warp the photo to each pose; default: the bundled signer's, or MediaPipe on the photo")
    parser.add_argument("--strength", metavar="S", type=options.strength, default=1.0,
                        help="start each frame from the photo warped to its pose, noised to S in (0, 1], instead of pure "
                             "noise (default 1: pure noise); lower keeps more of the photo (v2 models)")
    parser.add_argument("--noise-correlation", metavar="R", type=options.share,
                        help="correlation of the initial noise between frames, 0 (independent) to 1 (one noise for every "
                             "frame); default: the model's")
    parser.add_argument("--deflicker", metavar="FRAMES", type=options.float_in(0, MAX_DEFLICKER_SIGMA, "frames"),
                        help="filter flicker over time, a Gaussian of this many frames; moving arms and hands are left as "
                             "drawn (0: off); default: the model's")
    parser.add_argument("--side-by-side", action="store_true", help="write the driving skeleton and the generated video side by side")
    parser.add_argument("-o", "--output", metavar="OUT.mp4", type=Path, required=True, help="video to write (.mp4, or .gif for a preview)")
    parser.set_defaults(func=run_render)


def run_render(args: argparse.Namespace) -> None:
    from signgen.pipelines.pipeline import load_pipeline, write_render
    from signgen.pipelines.sampling import parse_guidance

    started = time.perf_counter()
    check_output(args.output)
    if args.signer is not None and not args.signer.is_file():
        raise SigngenError(f"signer photo not found: {args.signer}")
    if args.signer_pose is not None and not args.signer_pose.is_file():
        raise SigngenError(f"signer pose not found: {args.signer_pose}")
    if args.pose is not None and (args.g2p != "lexicon" or args.lexicon is not None):
        raise SigngenError("--g2p and --lexicon turn glosses into poses; they do not apply to --pose")
    g2p = None if args.g2p == "lexicon" else Path(args.g2p)
    if g2p is not None and args.lexicon is not None:
        raise SigngenError("give either --g2p DIR or --lexicon, not both")

    pipeline = load_pipeline(args.model)
    # The scales given; which steps they guide stays the pipeline's (guidance_interval).
    guidance = None if args.guidance is None else parse_guidance(args.guidance, pipeline.defaults.guidance_interval)
    result = pipeline(
        glosses=args.gloss,
        pose=args.pose,
        signer=args.signer,
        steps=args.steps,
        scheduler=args.scheduler,
        guidance=guidance,
        seed=args.seed,
        progress=True,
        g2p=g2p,
        lexicon=args.lexicon,
        language=args.language,
        on_missing=args.on_missing,
        signer_pose=args.signer_pose,
        strength=args.strength,
        noise_correlation=args.noise_correlation,
        deflicker=args.deflicker,
    )
    write_render(result, args.output, side_by_side=args.side_by_side, progress=True)
    elapsed = time.perf_counter() - started
    frames = len(result)
    print(f"rendered {frames} frames ({frames / result.fps:.2f} s of video) in {elapsed:.1f} s, "
          f"{frames / elapsed:.2f} frames/s: {args.output}")


def check_output(path: Path) -> None:
    """Refuse an output that cannot be written before any work is done."""
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise SigngenError(f"-o must name an .mp4 (or .gif) file, got {path}")
    if path.is_dir():
        raise SigngenError(f"output path is a folder: {path}")
    folder = path.parent if str(path.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise SigngenError(f"output folder is not a folder: {folder}")
    if not folder.is_dir():
        raise SigngenError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SigngenError(f"output path is not writable: {path}")
