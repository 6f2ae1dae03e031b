"""A contact sheet of frame models on one held-out video: rows reference, copying the source
frame, the coarse image alone, then each model (``LABEL=DIR``), at the same frames, as
``bench_frame_ablation.py`` renders them (its first frame the signer photo, 260 x 210).
The frames are spread over the video, or with ``--start S`` consecutive from frame S (to
see flicker: each row is then rendered as one clip of those frames).

    python benchmarks/contact_sheet.py --data DIR --split test_unseen --video 0 \\
        --model "v2=runs/v2/diffusion/model" [--pipeline "default=embedded"] [--frames 6] [--start S] [--steps 10] \\
        [--keep-coarse LABEL] [--deflicker LABEL=FRAMES] [--steady-torso 0] [--noise-correlation 0] -o sheet.png
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image, ImageDraw

from bench_frame_ablation import coarse_image, copy_source, render_with
from signgen.corpora.phoenix import PhoenixCorpus
from signgen.models.frame_model import FrameModel
from signgen.pipelines.pipeline import SignPipeline, load_pipeline
from signgen.pipelines.settings import RenderSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test_unseen")
    parser.add_argument("--video", type=int, default=0, help="index of the video in the split")
    parser.add_argument("--model", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--pipeline", action="append", default=[], metavar="LABEL=DIR",
                        help="a pipeline folder rendered with its own settings (DIR 'embedded': the embedded default)")
    parser.add_argument("--frames", type=int, default=6, help="frames shown, spread over the video")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-coarse", action="append", default=[], metavar="LABEL",
                        help="render the v2 model LABEL with the coarse image kept where it covers the frame")
    parser.add_argument("--start", type=int, help="show consecutive frames from this one")
    parser.add_argument("--deflicker", action="append", default=[], metavar="LABEL=FRAMES",
                        help="render the model LABEL with the deflickering filter of this width (repeatable; needs --start)")
    parser.add_argument("--steady-torso", type=float, default=0.0, metavar="FRAMES")
    parser.add_argument("--noise-correlation", type=float, default=0.0, metavar="R")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)

    sample = PhoenixCorpus(args.data).split(args.split)[args.video]
    frames = sample.frames()
    xy, confidence, _ = sample.pose_arrays()
    if args.start is None:
        targets = np.linspace(0, len(frames) - 1, args.frames).round().astype(int)
    elif 0 <= args.start <= len(frames) - args.frames:
        targets = np.arange(args.start, args.start + args.frames)
    else:
        parser.error(f"--start must be from 0 to {len(frames) - args.frames} for {args.frames} frames of this video")
    deflicker = {}
    for item in args.deflicker:
        label, separator, width = item.partition("=")
        try:
            deflicker[label] = float(width) if separator else None
        except ValueError:
            deflicker[label] = None
        if deflicker[label] is None:
            parser.error(f"--deflicker takes LABEL=FRAMES, not {item!r}")
    if deflicker and args.start is None:
        parser.error("--deflicker filters consecutive frames: give --start")
    rows = {"reference": frames[targets], "copy source": copy_source(sample, frames, xy, confidence, targets),
            "coarse image": coarse_image(sample, frames, xy, confidence, targets, steady_torso=args.steady_torso)}
    for item in args.model:
        label, separator, folder = item.partition("=")
        if not separator or not label or not folder:
            parser.error(f"--model takes LABEL=DIR, not {item!r}")
        settings = RenderSettings(scheduler="ddim", num_steps=args.steps, guidance_interval=0.5, keep_coarse=label in args.keep_coarse,
                                  steady_torso=args.steady_torso, noise_correlation=args.noise_correlation,
                                  deflicker=deflicker.get(label, 0.0))
        generate = render_with(SignPipeline(FrameModel.from_pretrained(folder), None, settings), args.steps, args.strength, args.seed)
        rows[label] = generate(sample, frames, xy, confidence, targets)
    for item in args.pipeline:
        label, separator, folder = item.partition("=")
        if not separator or not label or not folder:
            parser.error(f"--pipeline takes LABEL=DIR, not {item!r}")
        pipeline = load_pipeline(None if folder == "embedded" else folder)
        rows[label] = render_with(pipeline, args.steps, args.strength, args.seed)(sample, frames, xy, confidence, targets)
    height, width = frames.shape[1:3]
    label_width = 110
    sheet = Image.new("RGB", (label_width + width * len(targets), height * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, images) in enumerate(rows.items()):
        draw.text((6, r * height + height // 2), label, fill="black")
        for c, image in enumerate(images):
            sheet.paste(Image.fromarray(image), (label_width + c * width, r * height))
    sheet.save(args.output)
    print(f"wrote {args.output}: {sheet.size[0]} x {sheet.size[1]}, rows {', '.join(rows)}")


if __name__ == "__main__":
    main()
