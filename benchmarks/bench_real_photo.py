"""A real photo as the signer: how much of it a render keeps where the pose does not move it.

    python benchmarks/bench_real_photo.py [--photo astronaut|PATH] [--signer-pose IN.pose] \\
        [--gloss "H A L L O"] [--strength 0.5] [--model PIPELINE_DIR] [--sheet OUT.png]

Renders the glosses with the photo (default: scikit-image's astronaut, its pose found by
MediaPipe; ``--photo bundled``: the bundled signer and its shipped pose) at ``--strength``
and scores every frame, at the 260 x 210 of a render, against the photo letterboxed to
that size, outside the moving region: the pixels where the photo warped to the frame's
pose (the coarse image) differs from the photo by more than 12 in some channel, or that
it leaves uncovered, grown by 3 pixels. Prints the PSNR there (mean over frames) and the
share of pixels it covers; ``--sheet`` writes a contact sheet (photo, then frames).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw

from signgen.pipelines.pipeline import load_pipeline
from signgen.pipelines.postprocess import OUTPUT_SIZE, frames_to_uint8, upscale_frames
from signgen.pipelines.signer import coarse_images, driving_geometry, photo_warper, warp_source
from signgen.pipelines.signer_image import DEFAULT_SIGNER_PHOTO, DEFAULT_SIGNER_POSE, signer_photo
from signgen.video.metrics import MOVING_THRESHOLD


def still_region(pipeline, encoding, pose, size) -> np.ndarray:
    """(T, H, W) bool at ``size``: outside the moving region of each frame (see above), the
    coarse images warped as the render warped them (``pose``: its driving pose)."""
    geometry = driving_geometry(pose, pipeline.resolution, pipeline.settings.steady_torso)
    images, uncovered = coarse_images(photo_warper(warp_source(encoding, geometry.resolution), pipeline.settings.coarse_warp, pipeline.settings.warp_hands), geometry)
    coarse = frames_to_uint8(images)
    photo = frames_to_uint8(encoding.photo.image[None])[0]
    moving = (np.abs(coarse.astype(np.int16) - photo.astype(np.int16)) > MOVING_THRESHOLD).any(axis=-1)
    moving |= uncovered[:, 0].numpy() > 0
    height, width = size
    kernel = np.ones((7, 7), np.uint8)
    grown = [cv2.dilate(cv2.resize(m.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST), kernel) for m in moving]
    return ~np.stack(grown).astype(bool)


def masked_psnr(frames: np.ndarray, photo: np.ndarray, keep: np.ndarray) -> float:
    scores = []
    for frame, mask in zip(frames, keep):
        error = np.mean((frame[mask].astype(np.float64) - photo[mask].astype(np.float64)) ** 2)
        scores.append(100.0 if error == 0 else 10 * np.log10(255.0**2 / error))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", default="astronaut", help="astronaut (scikit-image), bundled, or a photo path")
    parser.add_argument("--signer-pose", help="the photo's pose (.pose); default: MediaPipe (the bundled signer's own)")
    parser.add_argument("--gloss", default="H A L L O")
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--model", help="pipeline folder (default: the embedded one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", help="contact sheet PNG to write")
    args = parser.parse_args()
    torch.set_num_threads(2)

    with tempfile.TemporaryDirectory() as folder:
        photo, pose = args.photo, args.signer_pose
        if photo == "astronaut":
            import skimage.data

            photo = Path(folder) / "astronaut.png"
            Image.fromarray(skimage.data.astronaut()).save(photo)
        elif photo == "bundled":
            photo, pose = DEFAULT_SIGNER_PHOTO, pose or DEFAULT_SIGNER_POSE
        pipeline = load_pipeline(args.model)
        encoding = pipeline.encode_signer(photo, signer_pose=pose)
        letterboxed = frames_to_uint8(signer_photo(photo, OUTPUT_SIZE).image[None])[0]
    result = pipeline(glosses=args.gloss, signer=encoding, strength=args.strength, seed=args.seed, progress=False)
    frames = upscale_frames(result.frames, OUTPUT_SIZE)
    keep = still_region(pipeline, encoding, result.pose, OUTPUT_SIZE)
    print(f"{args.photo}, strength {args.strength}, {len(frames)} frames: PSNR outside the moving region "
          f"{masked_psnr(frames, letterboxed, keep):.2f} dB over {100 * keep.mean():.0f} % of the pixels; "
          f"whole frame {masked_psnr(frames, letterboxed, np.ones_like(keep)):.2f} dB")
    if args.sheet:
        picks = np.linspace(0, len(frames) - 1, 6).round().astype(int)
        height, width = OUTPUT_SIZE
        sheet = Image.new("RGB", (width * 7, height + 16), "white")
        sheet.paste(Image.fromarray(letterboxed), (0, 16))
        ImageDraw.Draw(sheet).text((4, 2), f"photo; frames at strength {args.strength}", fill="black")
        for column, index in enumerate(picks, start=1):
            sheet.paste(Image.fromarray(frames[index]), (column * width, 16))
        sheet.save(args.sheet)
        print(f"wrote {args.sheet}")


if __name__ == "__main__":
    main()
