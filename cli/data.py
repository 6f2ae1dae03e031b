"""``signgen data``: corpora. ``signgen data synth`` writes SynthSign; ``signgen data
signer-photo`` draws the bundled signer photo (a SynthSign signer at rest)."""

from __future__ import annotations

import argparse
from pathlib import Path

from signgen.errors import SigngenError


def register(commands) -> None:
    from signgen.cli.options import seed as seed_option

    data = commands.group("data", "Corpora: write the synthetic SynthSign corpus, draw the bundled signer photo")
    synth = data.add_parser(
        "synth", help="write SynthSign, cartoon signers in the PHOENIX-2014T layout",
        description="Write SynthSign: cartoon signers fingerspelling sentences of 3 to 8 letters (real DGS "
                    "fingerspelling motion, stitched), in exactly the RWTH-PHOENIX-Weather 2014T layout: "
                    "annotations/manual/PHOENIX-2014-T.{train,dev,test,test_unseen}.corpus.csv, 210 x 260 "
                    "frames at 25 fps under features/fullFrame-210x260px/, 178-point poses under holistic/. "
                    "test_unseen holds signers never seen in train, dev or test. The same settings write "
                    "byte-identical files; rerunning an interrupted command resumes it.")
    synth.add_argument("--out", required=True, metavar="DIR", help="corpus folder to create (new or empty, or an interrupted run to resume)")
    synth.add_argument("--signers", type=int, default=4, metavar="N", help="signers of train/dev/test (default: 4)")
    synth.add_argument("--videos", type=int, default=200, metavar="M", help="videos over all four splits, 4 to 100,000 (default: 200)")
    synth.add_argument("--seed", type=seed_option, default=0, metavar="S", help="random seed, 0 to 2**63-1 (default: 0)")
    synth.add_argument("--unseen-signers", type=int, default=None, metavar="K",
                       help="signers only in test_unseen (default: a quarter of --signers, at least 1)")
    synth.add_argument("--workers", type=int, default=1, metavar="W", help="processes rendering videos (default: 1)")
    synth.set_defaults(func=run_synth)

    photo = data.add_parser(
        "signer-photo", help="draw the bundled signer photo",
        description="Draw the bundled default signer photo: Signer01 of the embedded model's SynthSign corpus "
                    "standing at rest, 210 x 260, as a PNG (byte-identical for the same code).")
    photo.add_argument("-o", "--output", type=Path, metavar="OUT.png",
                       help="PNG to write (default: the bundled photo, signgen/assets/signer.png in the installed package)")
    photo.add_argument("--garment", metavar="R,G,B", help="another garment colour, e.g. 200,40,40")
    photo.set_defaults(func=run_signer_photo)


def run_synth(args: argparse.Namespace) -> None:
    from signgen.corpora.synthsign import SynthSignSettings, write_synthsign

    settings = SynthSignSettings(signers=args.signers, videos=args.videos, seed=args.seed, unseen_signers=args.unseen_signers)
    summary = write_synthsign(args.out, settings, workers=args.workers)
    splits = ", ".join(f"{split} {count}" for split, count in summary.videos_per_split.items())
    kept = f", kept {summary.kept} already written" if summary.kept else ""
    print(f"wrote SynthSign to {summary.root}: {summary.written} videos ({summary.frames} frames){kept}; {splits}")


def run_signer_photo(args: argparse.Namespace) -> None:
    from signgen.atomic import check_output_path
    from signgen.corpora.signer_photo import write_signer_photo
    from signgen.pipelines.signer_image import DEFAULT_SIGNER_PHOTO

    output = check_output_path(DEFAULT_SIGNER_PHOTO if args.output is None else args.output, (".png",))
    check_output_path(output.with_suffix(".pose"), (".pose",))  # its pose is written beside it
    garment = None
    if args.garment is not None:
        try:
            garment = tuple(int(value) for value in args.garment.split(","))
        except ValueError:
            garment = ()
        if len(garment) != 3 or not all(0 <= value <= 255 for value in garment):
            raise SigngenError(f"--garment needs three numbers R,G,B from 0 to 255, e.g. 200,40,40; got {args.garment!r}")
    print(f"wrote {write_signer_photo(output, garment)}")
