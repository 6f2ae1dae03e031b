"""``signgen data``: corpora. ``signgen data synth`` writes SynthSign; ``signgen data
signer-photo`` draws the bundled signer photo (a SynthSign signer at rest); ``signgen data
cache-latents`` encodes a corpus' frames once with a latent frame model's VAE."""

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

    cache = data.add_parser(
        "cache-latents", help="encode a corpus' frames with a frame model's VAE once, for training",
        description="Encode every frame of a split with the VAE of a latent frame config (model.latent.vae_path, or "
                    "the vae/ of model.init_from) at its resolution, into train_diffusion.latent_cache: a folder per "
                    "VAE and frame size, a file per video. Rerunning resumes; `signgen train diffusion` with the same "
                    "--config and --set reads it. Run it once before `accelerate launch` on several GPUs.")
    cache.add_argument("--data", required=True, metavar="DIR", help="corpus root (PHOENIX-2014T layout)")
    cache.add_argument("--split", default="train", metavar="SPLIT", help="split to encode (default: train)")
    cache.add_argument("--config", metavar="FILE", default=None, help="frame YAML config (as for signgen train diffusion)")
    cache.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field, e.g. --set train_diffusion.latent_cache=DIR (repeatable)")
    cache.set_defaults(func=run_cache_latents)


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


def run_cache_latents(args: argparse.Namespace) -> None:
    from signgen.config import load_frame_config
    from signgen.models.frame_model import load_vae
    from signgen.models.pretrained import vae_folder
    from signgen.training.latents import LatentCache, build_latent_cache

    config = load_frame_config(args.config, args.overrides)
    root = config.train_diffusion.latent_cache
    if not root:
        raise SigngenError("say where the latents go: --set train_diffusion.latent_cache=DIR (the same for training)")
    folder = vae_folder(config.model)
    if folder is None:
        raise SigngenError("this frame config denoises pixels (no model.latent.vae_path or init_from VAE): nothing to cache")
    vae = load_vae(folder)
    cache = LatentCache(root, vae, tuple(config.model.resolution))
    encoded = build_latent_cache(cache, vae, args.data, args.split)
    print(f"latent cache {cache.folder}: encoded {encoded} video(s) of {args.split} now, the rest were cached")
