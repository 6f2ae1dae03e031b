"""The driving pose of a render: glosses or a pose sequence, made into what the model follows."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from pose_format import Pose

from signgen.errors import SigngenError


@dataclass(frozen=True)
class GlossOptions:
    """How glosses become a pose: lexicon stitching (``lexicon``: a ``Lexicon``, an
    ``index.csv`` path, or ``None`` for the bundled DGS letters; rows of ``language``;
    ``on_missing`` glosses fingerspelled, skipped or refused) or a learned gloss-to-pose
    model (``g2p``: its folder, or a loaded ``glosses -> Pose``; ``None`` or ``"lexicon"``
    stitches)."""

    g2p: str | os.PathLike | Callable | None = None
    lexicon: Any = None
    language: str = "gsg"
    on_missing: str = "fingerspell"
    transition_seconds: float = 0.2


def pose_from_glosses(glosses: str | Sequence[str], options: GlossOptions = GlossOptions()) -> Pose:
    """The driving pose of ``glosses`` (see :class:`GlossOptions`)."""
    from signgen.poses.stitch import glosses_to_pose, parse_glosses

    g2p = options.g2p
    if g2p is None or (isinstance(g2p, str) and g2p == "lexicon"):
        from signgen.poses.lexicon import Lexicon

        lexicon = options.lexicon
        if isinstance(lexicon, (str, os.PathLike)):
            lexicon = Lexicon.from_csv(lexicon)
        return glosses_to_pose(glosses, lexicon=lexicon, language=options.language, on_missing=options.on_missing,
                               transition_seconds=options.transition_seconds)
    if not callable(g2p):
        try:
            from signgen.pipelines.gloss_to_pose import load_gloss_to_pose
        except ImportError as error:
            raise SigngenError(f"a learned gloss-to-pose model is not available in this installation ({error})") from None
        g2p = load_gloss_to_pose(g2p, transition_seconds=options.transition_seconds, language=options.language)
    return g2p(parse_glosses(glosses))


def prepare_pose(pose: Pose | str | os.PathLike, keep_frame: bool = False) -> Pose:
    """Any holistic pose (or ``.pose`` file) as a pipeline drives with it: 178 points, 25
    fps, placed in PHOENIX's 210 x 260 frame; with ``keep_frame``, left where it is in its
    own frame (evaluation compares the result with the video the pose came from)."""
    from signgen.poses.holistic import reduce_to_178
    from signgen.poses.transform import fill_gaps, prepare, resample

    if isinstance(pose, (str, os.PathLike)):
        from signgen.poses.io import read_pose

        pose = read_pose(pose)
    if not isinstance(pose, Pose):
        raise SigngenError(f"pose must be a pose_format.Pose or a .pose file, not {type(pose).__name__}")
    if len(pose.body.data) == 0:
        raise SigngenError("the pose has no frames")
    return resample(fill_gaps(reduce_to_178(pose))) if keep_frame else prepare(pose)


def check_source(glosses, pose) -> None:
    """Exactly one of ``glosses`` and ``pose``; glosses that parse (none, or too many, is an
    error before any work)."""
    if (glosses is None) == (pose is None):
        raise SigngenError("give either glosses or a pose to render, not both or neither")
    if glosses is not None:
        from signgen.poses.stitch import parse_glosses

        parse_glosses(glosses)


def driving_pose(glosses, pose, keep_frame: bool = False, options: GlossOptions = GlossOptions()) -> Pose:
    """The pose a render follows: ``pose`` prepared (:func:`prepare_pose`) or the pose of
    ``glosses`` (:func:`pose_from_glosses`)."""
    if pose is not None:
        return prepare_pose(pose, keep_frame=keep_frame)
    return pose_from_glosses(glosses, options)
