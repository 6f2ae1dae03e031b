"""The bundled default signer photo, ``signgen/assets/signer.png``, and how it is made.

The photo is a SynthSign cartoon signer (``signgen.corpora.cartoon``) standing at rest, drawn at
PHOENIX's 210 x 260. The signer is ``Signer01`` of the SynthSign corpus the embedded
default model is trained on (96 seen signers, seed 0, as in the README's training
command): a signer that model has seen renders best. ``garment=`` draws the same signer in
another garment colour, which is how the tests check that a render follows its photo.

Regenerate the asset (byte-identical for the same code) with::

    signgen data signer-photo [-o OUT.png]
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

# The SynthSign corpus of the embedded default model: ``signgen data synth --signers 96
# --videos 320 --seed 0 --unseen-signers 8``; identities depend only on the signer counts and the seed.
EMBEDDED_CORPUS_SIGNERS = 96
EMBEDDED_CORPUS_UNSEEN_SIGNERS = 8
EMBEDDED_CORPUS_SEED = 0
# The lexicon clip whose rest frame (signing hand lowest) gives the neutral pose.
REST_POSE_GLOSS = "A"


def default_identity():
    """The look of the bundled signer: ``Signer01`` of the embedded model's SynthSign corpus."""
    from signgen.corpora.synthsign import SynthSignSettings, plan_identities

    settings = SynthSignSettings(
        signers=EMBEDDED_CORPUS_SIGNERS,
        unseen_signers=EMBEDDED_CORPUS_UNSEEN_SIGNERS,
        seed=EMBEDDED_CORPUS_SEED,
    )
    return plan_identities(settings)[0]


def rest_pose() -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (178, 2) and confidence (178,) of a signer at rest in PHOENIX's frame: the
    frame of a bundled fingerspelling clip (before trimming) where the signing hand is lowest."""
    from signgen.poses import skeleton
    from signgen.poses.holistic import pose_arrays
    from signgen.poses.lexicon import default_lexicon
    from signgen.poses.transform import prepare

    lexicon = default_lexicon()
    xy, confidence = pose_arrays(prepare(lexicon.clip(lexicon.lookup(REST_POSE_GLOSS))))
    wrists = [skeleton.LEFT_WRIST, skeleton.RIGHT_WRIST]
    # Image y grows downwards: the lowest seen wrist has the largest y.
    wrist_height = np.where(confidence[:, wrists] > 0, xy[:, wrists, 1], -np.inf).max(axis=1)
    frame = int(np.argmax(wrist_height))
    return xy[frame], confidence[frame]


def render_signer_photo(garment: tuple[int, int, int] | None = None, identity=None) -> np.ndarray:
    """uint8 RGB (260, 210, 3): ``identity`` (default: the bundled signer) at rest,
    optionally in another ``garment`` colour (RGB 0-255)."""
    from signgen.corpora.cartoon import CartoonRenderer
    from signgen.poses.transform import PHOENIX_FRAMING

    identity = default_identity() if identity is None else identity
    if garment is not None:
        identity = dataclasses.replace(identity, garment=tuple(int(c) for c in garment))
    xy, confidence = rest_pose()
    renderer = CartoonRenderer(identity, (PHOENIX_FRAMING.width, PHOENIX_FRAMING.height))
    return renderer.render(xy[None], confidence[None])[0]


def write_signer_photo(path: str | Path, garment: tuple[int, int, int] | None = None) -> Path:
    """Draw the bundled signer (optionally in another ``garment`` colour) and write it to
    ``path`` as a PNG, atomically, with its pose beside it (``.pose``, one frame: what the
    photo shows, so that v2 models warp the photo without running MediaPipe); the same
    code writes the same bytes."""
    from PIL import Image

    from signgen.atomic import atomic_output
    from signgen.poses.holistic import pose_from_arrays
    from signgen.poses.io import write_pose
    from signgen.poses.transform import PHOENIX_FRAMING, TARGET_FPS

    path = Path(path)
    xy, confidence = rest_pose()
    write_pose(pose_from_arrays(xy[None], confidence[None], TARGET_FPS, PHOENIX_FRAMING.width, PHOENIX_FRAMING.height),
               path.with_suffix(".pose"))
    with atomic_output(path) as tmp:
        # No metadata and a fixed compression level: the same drawing gives the same file.
        Image.fromarray(render_signer_photo(garment)).save(tmp, format="PNG", compress_level=9)
    return path
