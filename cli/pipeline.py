"""``signgen pipeline``: render pipelines. ``signgen pipeline assemble`` builds a pipeline
folder from training outputs (a frame model and, optionally, a temporal adapter)."""

from __future__ import annotations

import argparse
from pathlib import Path

from signgen.errors import SigngenError

ASSEMBLE_EXAMPLE = (
    "example (the embedded default): signgen pipeline assemble runs/embedded/diffusion runs/embedded/temporal "
    "-o signgen/assets/default_pipeline --set scheduler=ddim --set guidance_interval=0.5"
)


def register(commands) -> None:
    from signgen.pipelines.settings import names

    pipeline = commands.group("pipeline", "Render pipelines: assemble one from a trained frame model and temporal adapter")
    assemble = pipeline.add_parser(
        "assemble", help="build a pipeline folder from a trained frame model and temporal adapter",
        description="Build a render pipeline folder (what signgen render --model reads) from a trained frame "
                    "model and, optionally, a temporal adapter, with the sampling settings it renders with by "
                    "default. Unless set, the window size and overlap follow the adapter's training config. "
                    "An existing pipeline folder is replaced; any other existing folder is refused.",
        epilog=ASSEMBLE_EXAMPLE)
    assemble.add_argument("frame_model", metavar="FRAME_MODEL", type=Path,
                          help="frame-model folder or `signgen train diffusion` output folder")
    assemble.add_argument("adapter", metavar="ADAPTER", type=Path, nargs="?",
                          help="temporal adapter folder or `signgen train temporal` output folder (default: none, frame-wise rendering)")
    assemble.add_argument("--adapter", dest="adapter_option", metavar="DIR", type=Path, help="the same as ADAPTER")
    assemble.add_argument("--hands", metavar="DIR", type=Path,
                          help="hand stage folder or `signgen train hands` output folder (default: none; it redraws "
                               "hands only at full_resolution)")
    assemble.add_argument("-o", "--output", metavar="DIR", type=Path, required=True, help="pipeline folder to write")
    assemble.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                          help=f"a render setting the pipeline uses unless a render says otherwise, e.g. num_steps=10; "
                               f"settings: {', '.join(names())}")
    assemble.set_defaults(func=run_assemble)


def run_assemble(args: argparse.Namespace) -> None:
    from signgen.cli.settings import parse_set_items
    from signgen.pipelines.pipeline import SignPipeline

    overrides = parse_set_items(args.settings)
    if args.adapter is not None and args.adapter_option is not None:
        raise SigngenError("give the temporal adapter once: as ADAPTER or as --adapter DIR")
    adapter = args.adapter if args.adapter is not None else args.adapter_option
    if not args.frame_model.is_dir():
        raise SigngenError(f"frame model folder not found: {args.frame_model}")
    if adapter is not None and not adapter.is_dir():
        raise SigngenError(f"temporal adapter folder not found: {adapter}")
    if args.hands is not None and not args.hands.is_dir():
        raise SigngenError(f"hand stage folder not found: {args.hands}")
    pipeline = SignPipeline.assemble(args.frame_model, adapter, args.output, hand_dir=args.hands, **overrides)
    kind = "with a temporal adapter" if pipeline.temporal_adapter is not None else "frame-wise, no temporal adapter"
    kind += ", with a hand stage" if pipeline.hand_model is not None else ""
    print(f"wrote pipeline {args.output} ({kind}; {pipeline.settings.scheduler}, {pipeline.settings.num_steps} steps)")
