"""``signgen train temporal``: train the temporal adapter (stage 3) of a trained frame model."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands) -> None:
    train = commands.group("train", "Train the models: fusion, diffusion, temporal, g2p")
    temporal = train.add_parser(
        "temporal", help="the temporal adapter (stage 3) of a trained frame model",
        description="Train AnimateDiff-style motion modules for a trained frame model on clips of a "
                    "corpus in the RWTH-PHOENIX-Weather 2014T layout (PHOENIX or SynthSign), the frame "
                    "model frozen. The adapter is saved on its own (--out/adapter) and loads onto that "
                    "frame model.")
    temporal.add_argument("--frame-model", required=True, metavar="DIR", help="trained frame model folder (stages 1 and 2)")
    temporal.add_argument("--data", required=True, metavar="DIR", help="corpus root (annotations/, features/, holistic/ inside)")
    temporal.add_argument("--out", required=True, metavar="DIR", help="folder for checkpoints, loss log and the trained adapter")
    temporal.add_argument("--config", metavar="FILE", default=None,
                          help="temporal YAML config (default: configs/temporal-defaults.yaml; "
                               "configs/temporal-tiny.yaml for frame-tiny models)")
    temporal.add_argument("--frames", type=int, metavar="F", default=None,
                          help="frames per training clip, also the inference window (default: the config's, 16)")
    temporal.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="override a config field, e.g. --set train.max_steps=1000 (repeatable)")
    temporal.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    temporal.set_defaults(func=run_train_temporal)


def run_train_temporal(args: argparse.Namespace) -> None:
    from signgen.training.temporal import ADAPTER_FOLDER, DEFAULT_CONFIG, LOSS_LOG, load_temporal_config, train_temporal

    overrides = list(args.overrides)
    if args.frames is not None:
        overrides.append(f"train.num_frames={args.frames}")
    config = load_temporal_config(args.config or DEFAULT_CONFIG, overrides)
    train_temporal(args.frame_model, args.data, args.out, config, resume=args.resume)
    out = Path(args.out)
    print(f"wrote the temporal adapter to {out / ADAPTER_FOLDER} ({config.train.max_steps} steps on "
          f"{config.train.num_frames}-frame clips; losses in {out / LOSS_LOG})")
