"""``signgen train g2p``: train the learned gloss-to-pose model on a PHOENIX-layout corpus."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands) -> None:
    train = commands.group("train", "Train the models: fusion, diffusion, temporal, g2p")
    g2p = train.add_parser(
        "g2p", help="the gloss-to-pose transformer (glosses -> 178-point poses)",
        description="Train the non-autoregressive gloss-to-pose transformer on a corpus in the "
                    "RWTH-PHOENIX-Weather 2014T layout (PHOENIX or SynthSign): its train split's "
                    "glosses and holistic poses. The model folder (--out) is what "
                    "`signgen poses from-gloss --g2p` and `signgen render --g2p` load.")
    g2p.add_argument("--data", required=True, metavar="DIR", help="corpus root (annotations/ and holistic/ inside)")
    g2p.add_argument("--out", required=True, metavar="DIR", help="folder for checkpoints, loss log and the trained model")
    g2p.add_argument("--config", metavar="FILE", default=None,
                     help="g2p YAML config (default: configs/g2p-tiny.yaml; configs/g2p-phoenix.yaml for PHOENIX)")
    g2p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    g2p.set_defaults(func=run_train_g2p)


def run_train_g2p(args: argparse.Namespace) -> None:
    from signgen.corpora.phoenix import gloss_pose_pairs
    from signgen.training.g2p import DEFAULT_CONFIG, load_g2p_config, prepare_examples, train_g2p

    config = load_g2p_config(args.config or DEFAULT_CONFIG)
    examples = prepare_examples(gloss_pose_pairs(args.data, "train"))
    train_g2p(examples, args.out, config, resume=args.resume)
    print(f"wrote the g2p model to {Path(args.out)} ({len(examples)} training sentences, "
          f"{config.train.max_steps} steps; losses in {Path(args.out) / 'loss_log.jsonl'})")
