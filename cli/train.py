"""``signgen train fusion|diffusion|temporal|g2p|autoencoder|recogniser|hands``: the trainers, one set of options.

Every subcommand takes ``--out``, ``--config`` (any YAML file; without it the family's
shipped default tier), ``--set KEY=VALUE`` and ``--resume [CHECKPOINT]``, and writes the
same output folder (signgen.training.driver): ``config.yaml``, ``log.jsonl``,
``checkpoints/`` and the trained model in ``model/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

GROUP_HELP = "Train the models: fusion, diffusion, temporal, g2p, autoencoder, recogniser, hands"


def register(commands) -> None:
    from signgen.cli import options

    train = commands.group("train", GROUP_HELP)

    fusion = train.add_parser(
        "fusion", help="stage 1: the fusion embedding (contrastive)",
        description="Train the image encoder, pose encoder and fusion module of the frame model "
                    "(FPDM stage 1: InfoNCE of the fusion embedding against the target frame) on frame "
                    "pairs of a corpus in the RWTH-PHOENIX-Weather 2014T layout (PHOENIX or SynthSign). "
                    "Writes --out/model, the input of `signgen train diffusion --fusion-model`.")
    _add_common(fusion, "frame", "train_fusion.max_steps=100", "frame-phoenix.yaml for PHOENIX")
    fusion.add_argument("--split", default="train", metavar="SPLIT", help="training split (default: train)")
    fusion.add_argument("--eval-split", default="dev", metavar="SPLIT",
                        help="held-out split for top-1/top-5 retrieval accuracy (default: dev; 'none' to skip)")
    fusion.set_defaults(func=run_train_fusion)

    diffusion = train.add_parser(
        "diffusion", help="stage 2: the fusion-conditioned denoiser",
        description="Train the UNet of the frame model (FPDM stage 2) conditioned on appearance tokens, "
                    "pose map and fusion embedding, the stage-1 modules frozen. Writes --out/model, a "
                    "complete frame model.")
    _add_common(diffusion, "frame", "train_diffusion.max_steps=100", "frame-phoenix.yaml for PHOENIX")
    diffusion.add_argument("--split", default="train", metavar="SPLIT", help="training split (default: train)")
    diffusion.add_argument("--fusion-model", metavar="DIR", default=None,
                           help="stage-1 model folder (the --out/model of `signgen train fusion`); "
                                "not needed with --resume")
    diffusion.add_argument("--frame-model", metavar="DIR", default=None,
                           help="a trained frame model (stages 1 and 2) whose denoiser goes on training: fine-tuning "
                                "on other data or with other loss settings (instead of --fusion-model; not "
                                "needed with --resume)")
    diffusion.set_defaults(func=run_train_diffusion)

    temporal = train.add_parser(
        "temporal", help="the temporal adapter (stage 3) of a trained frame model",
        description="Train AnimateDiff-style motion modules for a trained frame model on clips of a "
                    "corpus in the RWTH-PHOENIX-Weather 2014T layout (PHOENIX or SynthSign), the frame "
                    "model frozen. The adapter is saved on its own (--out/model) and loads onto that "
                    "frame model.")
    _add_common(temporal, "temporal", "train.max_steps=1000", "temporal-defaults.yaml for frame-defaults models")
    temporal.add_argument("--frame-model", required=True, metavar="DIR", help="trained frame model folder (stages 1 and 2)")
    temporal.add_argument("--frames", type=options.int_in(2, 1024), metavar="F", default=None,
                          help="frames per training clip, also the inference window (default: the config's)")
    temporal.set_defaults(func=run_train_temporal)
    _register_other_models(train)


def _register_other_models(train) -> None:
    """The models beside the frame model: gloss-to-pose, autoencoder, recogniser, hand stage."""
    g2p = train.add_parser(
        "g2p", help="the gloss-to-pose transformer (glosses -> 178-point poses)",
        description="Train the non-autoregressive gloss-to-pose transformer on a corpus in the "
                    "RWTH-PHOENIX-Weather 2014T layout (PHOENIX or SynthSign): its train split's "
                    "glosses and holistic poses. The model (--out/model; --out also works) is what "
                    "`signgen poses from-gloss --g2p` and `signgen render --g2p` load.")
    _add_common(g2p, "g2p", "train.max_steps=500", "g2p-phoenix.yaml for PHOENIX")
    g2p.set_defaults(func=run_train_g2p)

    autoencoder = train.add_parser(
        "autoencoder", help="a small VAE whose latents a frame model denoises",
        description="Train a diffusers AutoencoderKL on the frames of a corpus in the RWTH-PHOENIX-Weather "
                    "2014T layout (PHOENIX or SynthSign) at a frame model's resolution. --out/model is a "
                    "diffusers VAE folder, with its latent scaling factor set: give it to a frame config as "
                    "model.latent.vae_path, as a Stable Diffusion VAE.")
    _add_common(autoencoder, "autoencoder", "train.max_steps=500", "its model.resolution must be the frame model's")
    autoencoder.add_argument("--split", default="train", metavar="SPLIT", help="training split (default: train)")
    autoencoder.set_defaults(func=run_train_autoencoder)

    recogniser = train.add_parser(
        "recogniser", help="a CTC sign reader (video or pose) for back-translation",
        description="Train a continuous sign recogniser with CTC over the glosses of a corpus in the "
                    "RWTH-PHOENIX-Weather 2014T layout (PHOENIX or SynthSign): model.reader video (hand crops "
                    "and the whole frame through a small CNN) or pose (the 178 points). Its train split's "
                    "glosses are the vocabulary. --out/model is what `signgen recognise --recogniser` and "
                    "`signgen eval --recogniser` load.")
    _add_common(recogniser, "recogniser", "model.reader=pose",
                "recogniser-pose-tiny.yaml for the pose reader, recogniser-phoenix.yaml for PHOENIX")
    recogniser.set_defaults(func=run_train_recogniser)

    hands = train.add_parser(
        "hands", help="the hand stage: a crop diffusion model that draws the fingers",
        description="Train the hand stage's small diffusion model on the hand crops of a corpus in the "
                    "RWTH-PHOENIX-Weather 2014T layout (PHOENIX or SynthSign): every frame where a hand's 21 "
                    "points are seen, its crop redrawn from the keypoints, another frame's appearance and the "
                    "crop at the frame model's resolution. --out/model is a signgen hand model folder.")
    _add_common(hands, "hands", "train.max_steps=200", "hands-phoenix.yaml for PHOENIX on one GPU")
    hands.set_defaults(func=run_train_hands)


def _add_common(parser: argparse.ArgumentParser, family: str, example: str, variant: str) -> None:
    from signgen.config import FAMILIES

    default = FAMILIES[family][1].name
    parser.add_argument("--data", required=True, metavar="DIR", help="corpus root (annotations/, features/, holistic/ inside)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="run folder: config.yaml, log.jsonl, checkpoints/ and the trained model/")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help=f"{family} YAML config, any file (default: the shipped {default}; {variant})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config field, e.g. --set {example} (repeatable)")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                        help="continue from the newest checkpoint in --out, or from the checkpoint folder given")


def _check_out(args: argparse.Namespace) -> None:
    """--out and --resume first, before any data is read (and any progress bar drawn): a
    fresh run needs a new or empty folder, a resumed one a run folder with checkpoints."""
    from signgen.training.driver import check_out_dir

    check_out_dir(args.out, args.resume)


def _load(family: str, args: argparse.Namespace, overrides: list[str] | None = None):
    from signgen.config import load_config
    from signgen.training.driver import check_resumed_config

    config = load_config(family, args.config, args.overrides if overrides is None else overrides)
    if args.resume:  # before any data is read; train() checks again for API callers
        check_resumed_config(args.out, config)
    return config


def _frame_pairs(args: argparse.Namespace, split: str, model_config, colour_augment_prob: float = 0.0, coarse_image: bool = False):
    from signgen.corpora.samplers import frame_pair_dataset

    return frame_pair_dataset(args.data, split, resolution=tuple(model_config.resolution), pose_channels=model_config.pose_channels,
                              colour_augment_prob=colour_augment_prob, coarse_image=coarse_image)


def _report(what: str, out: str, detail: str) -> None:
    from signgen.training.driver import FINAL_MODEL_FOLDER, LOG_NAME

    print(f"wrote the {what} to {Path(out) / FINAL_MODEL_FOLDER} ({detail}; losses in {Path(out) / LOG_NAME})")


def run_train_fusion(args: argparse.Namespace) -> None:
    from signgen.models.frame_model import FrameModel
    from signgen.training.frame import train_fusion

    _check_out(args)
    config = _load("frame", args)
    train_set = _frame_pairs(args, args.split, config.model, config.train_fusion.colour_augment_prob)
    eval_set = None if args.eval_split.lower() == "none" else _frame_pairs(args, args.eval_split, config.model)
    model = FrameModel.from_config(config.model, with_denoiser=False)
    result = train_fusion(model, train_set, args.out, config.train_fusion, eval_dataset=eval_set, resume=args.resume, run_config=config)
    _report("fusion model", args.out, f"{result.steps} steps on {len(train_set)} pairs; retrieval accuracy in the log")


def run_train_diffusion(args: argparse.Namespace) -> None:
    from signgen.training.frame import train_diffusion

    _check_out(args)
    config = _load("frame", args)
    model = _stage2_model(args, config)
    train_set = _frame_pairs(args, args.split, config.model, config.train_diffusion.colour_augment_prob, model.coarse_image)
    if config.train_diffusion.latent_cache:  # built where incomplete, then read every epoch
        from signgen.training.latents import cached_pairs

        train_set = cached_pairs(model, train_set, args.data, args.split, config.train_diffusion.latent_cache)
    result = train_diffusion(model, train_set, args.out, config.train_diffusion, resume=args.resume, run_config=config)
    _report("frame model", args.out, f"{result.steps} steps on {len(train_set)} pairs")


def _stage2_model(args: argparse.Namespace, config):
    """The frame model stage 2 trains: a stage-1 folder with a new denoiser (``--fusion-model``),
    a trained frame model going on (``--frame-model``: its network as saved, which the
    config must describe), or the checkpoint ``--resume`` names."""
    from signgen.errors import SigngenError
    from signgen.models.frame_model import FrameModel
    from signgen.training.driver import FINAL_MODEL_FOLDER, find_checkpoint

    if args.fusion_model and args.frame_model:
        raise SigngenError("pass --fusion-model (train a new denoiser) or --frame-model (go on training its denoiser), not both")
    start = args.fusion_model or args.frame_model
    if not start:
        if args.resume:
            return FrameModel.from_pretrained(find_checkpoint(Path(args.out), args.resume) / FINAL_MODEL_FOLDER)
        raise SigngenError("stage 2 needs the stage-1 model: pass --fusion-model DIR (the --out/model of `signgen train "
                           "fusion`), or --frame-model DIR to go on training a trained frame model")
    model = FrameModel.from_pretrained(start)
    what = "fusion" if args.fusion_model else "frame"
    if list(model.resolution) != list(config.model.resolution) or model.pose_channels != config.model.pose_channels:
        raise SigngenError(
            f"the {what} model is for {list(model.resolution)} px and {model.pose_channels} pose channels, the config "
            f"for {config.model.resolution} px and {config.model.pose_channels}; use the config it was trained with")
    if args.fusion_model:
        model.attach_denoiser(config.model)
        return model
    if not model.has_denoiser:
        raise SigngenError(f"--frame-model {start} holds only the fusion stage: pass it as --fusion-model")
    saved = {"coarse_image": model.coarse_image, "reference_attention": model.reference_attention,
             "coarse_residual": model.coarse_residual, "noise.prediction_type": model.noise_scheduler.config.prediction_type}
    wanted = {"coarse_image": config.model.coarse_image, "reference_attention": config.model.reference_attention,
              "coarse_residual": config.model.coarse_residual, "noise.prediction_type": config.model.noise.prediction_type}
    changed = [f"model.{key} {wanted[key]!r} (the model: {saved[key]!r})" for key in saved if saved[key] != wanted[key]]
    if changed:
        raise SigngenError(f"--frame-model goes on training the model as it was trained; the config asks for "
                           f"{'; '.join(changed)}: use the config it was trained with")
    return model


def run_train_temporal(args: argparse.Namespace) -> None:
    from signgen.config import load_config
    from signgen.training.driver import check_resumed_config
    from signgen.training.temporal import train_temporal, with_motion_adapter

    _check_out(args)
    overrides = list(args.overrides)
    if args.frames is not None:
        overrides.append(f"train.num_frames={args.frames}")
    # The adapter shaped as model.init_from's MotionAdapter before a resumed run's config is
    # compared with the one it saved (shaped so too).
    config, notes = with_motion_adapter(load_config("temporal", args.config, overrides))
    for note in notes:
        print(note)
    if args.resume:
        check_resumed_config(args.out, config)
    train_temporal(args.frame_model, args.data, args.out, config, resume=args.resume)
    _report("temporal adapter", args.out, f"{config.train.max_steps} steps on {config.train.num_frames}-frame clips")


def run_train_g2p(args: argparse.Namespace) -> None:
    from signgen.corpora.samplers import gloss_pose_pairs
    from signgen.training.g2p import prepare_examples, train_g2p

    _check_out(args)
    config = _load("g2p", args)
    examples = prepare_examples(gloss_pose_pairs(args.data, "train"))
    train_g2p(examples, args.out, config, resume=args.resume)
    _report("g2p model", args.out, f"{config.train.max_steps} steps on {len(examples)} training sentences")


def run_train_autoencoder(args: argparse.Namespace) -> None:
    from signgen.corpora.samplers import frame_dataset
    from signgen.training.autoencoder import build_autoencoder, train_autoencoder

    _check_out(args)
    config = _load("autoencoder", args)
    resolution = tuple(config.model.resolution)
    frames = frame_dataset(args.data, args.split, resolution, colour_augment_prob=config.train.colour_augment_prob)
    result = train_autoencoder(build_autoencoder(config.model), frames, args.out, config, resume=args.resume,
                               scaling_frames=frame_dataset(args.data, args.split, resolution))
    _report("autoencoder", args.out, f"{result.steps} steps on {len(frames)} frames; use it as model.latent.vae_path")


def run_train_recogniser(args: argparse.Namespace) -> None:
    from signgen.training.recogniser import train_recogniser

    _check_out(args)
    config = _load("recogniser", args)
    model = train_recogniser(args.data, args.out, config, resume=args.resume)
    _report(f"{model.config.reader} recogniser", args.out,
            f"{config.train.max_steps} steps, {len(model.glosses)} glosses; dev WER in the log")


def run_train_hands(args: argparse.Namespace) -> None:
    from signgen.training.hands import hands_run

    _check_out(args)
    config = _load("hands", args)
    result, crops = hands_run(args.data, args.out, config, resume=args.resume)
    _report("hand model", args.out, f"{result.steps} steps on {crops} hand crops")
