"""Consecutive frames of a rendered video as one contact sheet (to look at hands and arms frame
by frame): ``--rows`` rows of ``--columns`` frames from ``--start`` on, every ``--step``-th,
each enlarged ``--scale`` times (nearest neighbour: the pixels as they are).

    python benchmarks/video_sheet.py hallo.mp4 --start 10 --columns 8 --rows 2 --scale 2 -o sheet.png
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw

from signgen.video.io import read_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--columns", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    frames = read_video(args.video)
    chosen = list(range(args.start, len(frames), args.step))[: args.columns * args.rows]
    if not chosen:
        parser.error(f"{args.video} has {len(frames)} frames: none from {args.start}")
    height, width = frames.shape[1] * args.scale, frames.shape[2] * args.scale
    label = 14
    sheet = Image.new("RGB", (width * args.columns, (height + label) * args.rows), "white")
    draw = ImageDraw.Draw(sheet)
    for n, index in enumerate(chosen):
        row, column = divmod(n, args.columns)
        image = Image.fromarray(np.ascontiguousarray(frames[index])).resize((width, height), Image.Resampling.NEAREST)
        sheet.paste(image, (column * width, row * (height + label) + label))
        draw.text((column * width + 4, row * (height + label)), f"frame {index}", fill="black")
    sheet.save(args.output)
    print(f"wrote {args.output}: frames {chosen[0]}..{chosen[-1]} of {args.video}")


if __name__ == "__main__":
    main()
