"""``signgen demo``: the render in a local web page (Gradio; ``pip install 'signgen[demo]'``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from signgen.errors import SigngenError

SUMMARY = "a local web page that renders glosses or a .pose file with a photo (needs signgen[demo])"
DESCRIPTION = (
    "Serve a web page (Gradio) that renders a signer video as signgen render does: glosses or an uploaded .pose "
    "file, an uploaded photo or the bundled signer, strength / seed / steps / deflicker; it shows the video, the "
    "side-by-side video (pose | generated) and the figures of the pose (frames, seconds, fingerspelled glosses). "
    "Listens on 127.0.0.1 only unless --host says otherwise. Uploads over --max-upload-mb, photos over 4096 px "
    "per side and gloss texts over 500 characters are refused with a message in the page. Ctrl-C stops it."
)


def register(commands) -> None:
    from signgen.demo.app import DEFAULT_HOST, DEFAULT_PORT

    parser = commands.command("demo", SUMMARY)
    parser.description = DESCRIPTION
    parser.add_argument("--model", metavar="DIR", type=Path, help="a pipeline folder; default: the embedded model")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default: {DEFAULT_HOST}, this machine only; 0.0.0.0: every network)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default: {DEFAULT_PORT})")
    parser.add_argument("--max-upload-mb", type=float, default=10.0, metavar="MB",
                        help="largest upload accepted, in MB (default: 10)")
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> None:
    from signgen.demo.app import DemoOptions, serve

    if not 0 <= args.port <= 65535:
        raise SigngenError(f"--port must be 0 to 65535, got {args.port}")
    if not 0 < args.max_upload_mb <= 1024:
        raise SigngenError(f"--max-upload-mb must be more than 0 and at most 1024, got {args.max_upload_mb:g}")
    if args.model is not None and not args.model.is_dir():
        raise SigngenError(f"model folder not found: {args.model}")
    serve(DemoOptions(model=args.model, host=args.host, port=args.port,
                      max_upload_bytes=int(args.max_upload_mb * 2**20)))
