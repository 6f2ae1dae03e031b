"""``signgen train fusion`` and ``signgen train diffusion``: stages 1 and 2 of the frame model."""

from __future__ import annotations

import argparse
from pathlib import Path

GROUP_HELP = "Train the models: fusion, diffusion, temporal, g2p"


def register(commands) -> None:
    train = commands.group("train", GROUP_HELP)

    fusion = train.add_parser(
        "fusion", help="stage 1: the fusion embedding (contrastive)",
        description="Train the image encoder, pose encoder and fusion module of the frame model "
                    "(FPDM stage 1: InfoNCE of the fusion embedding against the target frame) on frame "
                    "pairs of a corpus in the RWTH-PHOENIX-Weather 2014T layout (PHOENIX or SynthSign). "
                    "Writes --out/model, the input of `signgen train diffusion --fusion-model`.")
    _add_common(fusion)
    fusion.add_argument("--eval-split", default="dev", metavar="SPLIT",
                        help="held-out split for top-1/top-5 retrieval accuracy (default: dev; 'none' to skip)")
    fusion.set_defaults(func=run_train_fusion)

    diffusion = train.add_parser(
        "diffusion", help="stage 2: the fusion-conditioned denoiser",
        description="Train the UNet of the frame model (FPDM stage 2) conditioned on appearance tokens, "
                    "pose map and fusion embedding, the stage-1 modules frozen. Writes --out/model, a "
                    "complete frame model.")
    _add_common(diffusion)
    diffusion.add_argument("--fusion-model", metavar="DIR", default=None,
                           help="stage-1 model folder (the --out/model of `signgen train fusion`); "
                                "not needed with --resume")
    diffusion.set_defaults(func=run_train_diffusion)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="corpus root (annotations/, features/, holistic/ inside)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for checkpoints, the loss log (log.jsonl) and the model")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="frame-model YAML config (default: configs/frame-tiny.yaml; configs/frame-phoenix.yaml for PHOENIX)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set train_fusion.max_steps=100 (repeatable)")
    parser.add_argument("--split", default="train", metavar="SPLIT", help="training split (default: train)")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                        help="continue from the newest checkpoint in --out, or from the checkpoint folder given")


def _load(args: argparse.Namespace):
    from signgen.config import DEFAULT_FRAME_CONFIG, load_frame_config

    return load_frame_config(args.config or DEFAULT_FRAME_CONFIG, args.overrides)


def _dataset(args: argparse.Namespace, split: str, model_config, colour_augment_prob: float = 0.0):
    from signgen.corpora.phoenix import frame_pair_dataset

    return frame_pair_dataset(args.data, split, resolution=tuple(model_config.resolution), pose_channels=model_config.pose_channels,
                              colour_augment_prob=colour_augment_prob)


def run_train_fusion(args: argparse.Namespace) -> None:
    from signgen.models.frame_model import FrameModel
    from signgen.training.frame import LOG_NAME, train_fusion

    config = _load(args)
    train_set = _dataset(args, args.split, config.model, config.train_fusion.colour_augment_prob)
    eval_set = None if args.eval_split.lower() == "none" else _dataset(args, args.eval_split, config.model)
    model = FrameModel.from_config(config.model, with_denoiser=False)
    result = train_fusion(model, train_set, args.out, config.train_fusion, eval_dataset=eval_set, resume=args.resume)
    print(f"wrote the fusion model to {result.model_folder} ({result.steps} steps on {len(train_set)} pairs; "
          f"losses and retrieval accuracy in {Path(args.out) / LOG_NAME})")


def run_train_diffusion(args: argparse.Namespace) -> None:
    from signgen.errors import SigngenError
    from signgen.models.frame_model import FrameModel
    from signgen.training.frame import FINAL_MODEL_FOLDER, LOG_NAME, find_checkpoint, train_diffusion

    config = _load(args)
    if args.fusion_model:
        model = FrameModel.from_pretrained(args.fusion_model)
        if list(model.resolution) != list(config.model.resolution) or model.pose_channels != config.model.pose_channels:
            raise SigngenError(
                f"the fusion model is for {list(model.resolution)} px and {model.pose_channels} pose channels, the config "
                f"for {config.model.resolution} px and {config.model.pose_channels}; use the config it was trained with")
        model.attach_denoiser(config.model)
    elif args.resume:
        model = FrameModel.from_pretrained(find_checkpoint(Path(args.out), args.resume) / FINAL_MODEL_FOLDER)
    else:
        raise SigngenError("stage 2 needs the stage-1 model: pass --fusion-model DIR (the --out/model of `signgen train fusion`)")
    train_set = _dataset(args, args.split, config.model, config.train_diffusion.colour_augment_prob)
    result = train_diffusion(model, train_set, args.out, config.train_diffusion, resume=args.resume)
    print(f"wrote the frame model to {result.model_folder} ({result.steps} steps on {len(train_set)} pairs; "
          f"losses in {Path(args.out) / LOG_NAME})")
