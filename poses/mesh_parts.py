"""The body as ``signgen.poses.mesh_warp`` meshes it: parts (torso, head, upper arms,
forearms, palms, fingers), where each lies in a pose, where it joins its parent, its handles,
its similarity between two poses, and the order parts are drawn in.

Regions and widths are ``signgen.poses.warp``'s, in shoulder widths of the photo's pose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.warp import (FACE_POINTS, FOREARM_HALF_WIDTH, HAND_MARGIN, HAND_POINTS, HIP_DROP, LEFT_ELBOW,
                                LEFT_HIP, LEFT_SHOULDER, LEFT_WRIST, MAX_PART_SCALE, RIGHT_ELBOW, RIGHT_HIP, RIGHT_SHOULDER,
                                RIGHT_WRIST, UPPER_ARM_HALF_WIDTH, capsule_mask, head_mask, hull_mask, torso_mask)

# Drawing order, back to front (hands before forearms before upper arms before the head
# before the torso, as signgen.poses.warp paints them); fingers before their palm.
RANKS = {"torso": 0, "head": 1, "upper arm": 2, "forearm": 3, "palm": 4, "finger": 5}
LIMBS = ("upper arm", "forearm")
HAND_KINDS = ("palm", "finger")
FINGER_HALF_WIDTH = 0.045
CORE_HALF_WIDTH = 0.04  # a limb's skeleton: on the limb in any photo
# How far from the joint a part shares vertices with its parent. Each must reach past where
# the child's region meets the parent's (the forearm's round end, 0.12, inside the upper
# arm's, 0.16), and not much further: a forearm folded against its upper arm in the photo is
# welded to it along this length, and stretches there when the arm opens.
WELD_RADIUS = {"shoulder": 0.3, "elbow": 0.2, "knuckle": 0.07}
# ... and no wider than this share of the shorter bone: what is welded is held by both
# parts, and in a photo whose forearm is seen end-on, what lies within the usual radius of
# the elbow is most of the forearm, pulled both ways once the forearm is stretched out.
WELD_SHARE = 0.3
# The hand is not welded to its forearm: its 21 handles place it, and a forearm stretched
# from a short one in the photo would drag the hand's edge along with it. (Drawn before the
# forearm, it covers the wrist.)
BONE_SAMPLES = (0.25, 0.5, 0.75)  # handles along each limb besides its two joints
PALM = np.array([0, 1, 5, 9, 13, 17])
FINGERS = {"thumb": [1, 2, 3, 4], "index": [5, 6, 7, 8], "middle": [9, 10, 11, 12], "ring": [13, 14, 15, 16],
           "pinky": [17, 18, 19, 20]}
ARMS = {"left": (LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST), "right": (RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST)}
SHOULDERS = np.array([LEFT_SHOULDER, RIGHT_SHOULDER])


@dataclass
class Part:
    name: str
    kind: str  # a key of RANKS
    side: str | None
    points: np.ndarray  # keypoints that must all be seen for the part to be drawn (the head: three of them)
    fit: np.ndarray  # keypoints its similarity is fitted on
    shape: Callable  # (size, xy, seen) -> uint8 region of the part in a pose
    parent: int | None = None
    joint: int | None = None  # keypoint it is welded to its parent at (None: wherever they touch)
    weld: float = np.inf  # shoulder widths
    handles: list = field(default_factory=list)  # (k1, k2, f): the point (1 - f) xy[k1] + f xy[k2]; k1 -1: the torso's own


def body_parts(xy: np.ndarray, seen: np.ndarray, unit: float) -> list[Part]:
    """The parts the pose ``xy`` / ``seen`` shows, parents before their children; ``unit``
    its shoulder width in pixels."""
    parts: list[Part] = []

    def add(part: Part) -> int | None:
        if len(part.points) < 3 if part.kind == "head" else not seen[part.points].all():
            return None
        parts.append(part)
        return len(parts) - 1

    def length(a: int, b: int) -> float:
        return float(np.linalg.norm(xy[a] - xy[b])) / unit

    torso = add(Part("torso", "torso", None, SHOULDERS, np.r_[SHOULDERS, LEFT_HIP, RIGHT_HIP],
                     lambda size, p, s: torso_mask(size, p, s, unit),
                     handles=[(k, k, 0.0) for k in (*SHOULDERS, LEFT_HIP, RIGHT_HIP) if seen[k]] + [(-1, -1, f) for f in (0, .5, 1)]))
    face = FACE_POINTS[seen[FACE_POINTS]]
    add(Part("head", "head", None, face, face, lambda size, p, s: head_mask(size, p[face]), parent=torso,
             handles=[(k, k, 0.0) for k in face]))
    for side, (shoulder, elbow, wrist) in ARMS.items():
        hand = HAND_POINTS[side]
        elbow_weld = min(WELD_RADIUS["elbow"], WELD_SHARE * min(length(shoulder, elbow), length(elbow, wrist)))
        upper = add(Part(f"{side} upper arm", "upper arm", side, np.array([shoulder, elbow]), np.array([shoulder, elbow]),
                         lambda size, p, s, a=shoulder, b=elbow: capsule_mask(size, p[a], p[b], UPPER_ARM_HALF_WIDTH * unit),
                         parent=torso, joint=shoulder, weld=WELD_RADIUS["shoulder"], handles=_bone_handles(shoulder, elbow)))
        forearm = add(Part(f"{side} forearm", "forearm", side, np.array([elbow, wrist]), np.array([elbow, wrist]),
                           lambda size, p, s, a=elbow, b=wrist: capsule_mask(size, p[a], p[b], FOREARM_HALF_WIDTH * unit),
                           parent=upper, joint=elbow, weld=elbow_weld, handles=_bone_handles(elbow, wrist)))
        # The palm's region is the whole hand's (warp.py's): what no finger claims is the
        # palm's, never the forearm's that the hand lies before.
        palm = add(Part(f"{side} palm", "palm", side, hand, hand[PALM],
                        lambda size, p, s, q=hand: hull_mask(size, p[q], HAND_MARGIN * unit),
                        parent=forearm, joint=wrist, weld=0.0, handles=[(k, k, 0.0) for k in hand[PALM]]))
        if palm is None:
            continue
        for finger, chain in FINGERS.items():
            points = hand[chain]
            add(Part(f"{side} {finger}", "finger", side, hand, points,
                     lambda size, p, s, q=points: polyline_mask(size, p[q], FINGER_HALF_WIDTH * unit),
                     parent=palm, joint=points[0], weld=WELD_RADIUS["knuckle"],
                     handles=[(k, k, 0.0) for k in points] + [(a, b, 0.5) for a, b in zip(points[:-1], points[1:])]))
    return parts


def _bone_handles(a: int, b: int) -> list[tuple[int, int, float]]:
    return [(a, a, 0.0), (b, b, 0.0)] + [(a, b, f) for f in BONE_SAMPLES]


def handle_point(xy: np.ndarray, k1: int, k2: int, f: float) -> np.ndarray:
    """A handle's place in the pose ``xy``."""
    if k1 >= 0:
        return (1 - f) * xy[k1] + f * xy[k2]
    # The torso's own handles, on the line from the shoulders' middle down towards the hips
    # (three quarters of a shoulder width at most): the shoulder points alone leave it free to bend.
    width = max(float(np.linalg.norm(xy[LEFT_SHOULDER] - xy[RIGHT_SHOULDER])), 1.0)
    return xy[SHOULDERS].mean(0) + np.array([0.0, HIP_DROP * width * 0.5 * f])


def shown(parts: list[Part], seen: np.ndarray) -> np.ndarray:
    """(P,) bool: the parts a pose's ``seen`` points show (to be drawn)."""
    return np.array([seen[part.points].sum() >= 3 if part.kind == "head" else seen[part.points].all() for part in parts],
                    bool)


def absent_parts(seen: np.ndarray) -> list[tuple[np.ndarray, int, Callable]]:
    """The parts the photo (``seen``) does not show, as (keypoints, how many of them a pose
    must show, region (size, xy, seen, unit)): where the target shows one, the model draws it."""
    absent = []
    if not seen[SHOULDERS].all():
        absent.append((SHOULDERS, 2, lambda size, p, s, u: torso_mask(size, p, s, u)))
    if seen[FACE_POINTS].sum() < 3:
        absent.append((FACE_POINTS, 3, lambda size, p, s, u: head_mask(size, p[FACE_POINTS[s[FACE_POINTS]]])))
    for side, (shoulder, elbow, wrist) in ARMS.items():
        for (a, b), half_width in (((shoulder, elbow), UPPER_ARM_HALF_WIDTH), ((elbow, wrist), FOREARM_HALF_WIDTH)):
            if not seen[[a, b]].all():
                absent.append((np.array([a, b]), 2, lambda size, p, s, u, a=a, b=b, w=half_width: capsule_mask(size, p[a], p[b], w * u)))
        hand = HAND_POINTS[side]
        if not seen[hand].all():
            absent.append((hand, len(hand), lambda size, p, s, u, q=hand: hull_mask(size, p[q], HAND_MARGIN * u)))
    return absent


def core_mask(parts: list[Part], size, xy: np.ndarray, seen: np.ndarray, unit: float) -> np.ndarray:
    """uint8: the parts' skeletons in the pose ``xy``, thin: on the person in any photo of
    it (the torso between shoulders and hips, the face, the palm, bone lines)."""
    mask = np.zeros(size, np.uint8)
    for part in parts:
        if part.kind in LIMBS or part.kind == "finger":
            chain = np.round(xy[part.fit]).astype(np.int32)
            thickness = max(1, int(round(2 * CORE_HALF_WIDTH * unit))) if part.kind in LIMBS else 1
            cv2.polylines(mask, [chain], False, 1, thickness, cv2.LINE_8)
        elif part.kind == "torso":
            down = np.array([0.0, HIP_DROP * unit])
            hips = [xy[hip] if seen[hip] else xy[shoulder] + down for hip, shoulder in ((RIGHT_HIP, RIGHT_SHOULDER),
                                                                                        (LEFT_HIP, LEFT_SHOULDER))]
            _fill_hull(mask, np.stack([xy[LEFT_SHOULDER], xy[RIGHT_SHOULDER], *hips]))
        else:
            _fill_hull(mask, xy[part.fit[seen[part.fit]]])
    return mask


def _fill_hull(mask: np.ndarray, points: np.ndarray) -> None:
    # Not warp.py's hull_mask: that one grows by a pixel at least, and a core must stay on the part.
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1)


def pose_regions(size, xy: np.ndarray, seen: np.ndarray, unit: float) -> np.ndarray:
    """uint8: ``signgen.poses.warp``'s part regions of the pose (where its body is)."""
    mask = np.zeros(size, np.uint8)
    if seen[SHOULDERS].all():
        mask |= torso_mask(size, xy, seen, unit)
    face = FACE_POINTS[seen[FACE_POINTS]]
    if len(face) >= 3:
        mask |= head_mask(size, xy[face])
    for shoulder, elbow, wrist in ARMS.values():
        for (a, b), half_width in (((shoulder, elbow), UPPER_ARM_HALF_WIDTH), ((elbow, wrist), FOREARM_HALF_WIDTH)):
            if seen[[a, b]].all():
                mask |= capsule_mask(size, xy[a], xy[b], half_width * unit)
    for hand in HAND_POINTS.values():
        if seen[hand].all():
            mask |= hull_mask(size, xy[hand], HAND_MARGIN * unit)
    return mask


def polyline_mask(size, points: np.ndarray, half_width: float) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    for a, b in zip(points[:-1], points[1:]):
        mask |= capsule_mask(size, a, b, half_width)
    return mask


def draw_levels(parts: list[Part], seen: np.ndarray, z: np.ndarray | None) -> np.ndarray:
    """Each part's drawing order, back to front. With depth ``z`` (178,), the farther arm
    (its shoulder, elbow and wrist's mean z; smaller is nearer) is drawn whole first."""
    levels = np.array([RANKS[part.kind] for part in parts])
    if z is None:
        return levels
    z = np.asarray(z, np.float64)
    if z.shape != (skeleton.NUM_POINTS,):
        raise SigngenError(f"expected target_z ({skeleton.NUM_POINTS},), got {z.shape}")
    depth = {}
    for side, joints in ARMS.items():
        known = np.array(joints)[seen[list(joints)] & np.isfinite(z[list(joints)])]
        depth[side] = float(z[known].mean()) if len(known) else None
    if depth["left"] is None or depth["right"] is None or depth["left"] == depth["right"]:
        return levels
    near = "left" if depth["left"] < depth["right"] else "right"
    return levels + np.array([len(RANKS) if part.side == near else 0 for part in parts])


def part_transforms(parts: list[Part], source_xy: np.ndarray, source_seen: np.ndarray, xy: np.ndarray,
                    seen: np.ndarray) -> np.ndarray:
    """(P, 2, 3): each part's similarity from the photo's pose to ``xy``, from its own
    keypoints seen in both, else its parent's (the torso's: a translation, else none)."""
    transforms = np.zeros((len(parts), 2, 3))
    for p, part in enumerate(parts):
        both = part.fit[source_seen[part.fit] & seen[part.fit]]
        if len(both) >= 2 or part.parent is None:
            transforms[p] = similarity(source_xy[both], xy[both]) if len(both) else np.eye(2, 3)
        else:
            transforms[p] = transforms[part.parent]
    return transforms


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``signgen.poses.warp``'s least-squares similarity (2 x 3), its scale within
    [1 / MAX_PART_SCALE, MAX_PART_SCALE], in the closed form that 2D allows (a tenth of the
    SVD's cost: a frame fits one per part)."""
    source_mean, target_mean = source.mean(0), target.mean(0)
    s, t = source - source_mean, target - target_mean
    variance = float((s**2).sum())
    if len(source) < 2 or variance < 1e-9:
        return np.array([[1.0, 0.0, target_mean[0] - source_mean[0]], [0.0, 1.0, target_mean[1] - source_mean[1]]])
    along, across = float((s * t).sum()), float((s[:, 0] * t[:, 1] - s[:, 1] * t[:, 0]).sum())
    length = np.hypot(along, across)
    cos, sin = (along / length, across / length) if length > 0 else (1.0, 0.0)
    scale = float(np.clip(length / variance, 1 / MAX_PART_SCALE, MAX_PART_SCALE))
    linear = scale * np.array([[cos, -sin], [sin, cos]])
    return np.hstack([linear, (target_mean - linear @ source_mean)[:, None]])


def turned_hands(source_xy: np.ndarray, source_seen: np.ndarray, xy: np.ndarray, seen: np.ndarray) -> list[str]:
    """The sides whose hand shows the photo its other face in ``xy``: the turn from wrist to
    index knuckle to little-finger knuckle runs the other way. No rotation takes one to the
    other; handles pulling the mesh there would fold it over itself."""
    def turn(points: np.ndarray) -> float:
        a, b = points[5] - points[0], points[17] - points[0]
        return float(a[0] * b[1] - a[1] * b[0])

    return [side for side, hand in HAND_POINTS.items()
            if source_seen[hand].all() and seen[hand].all() and turn(source_xy[hand]) * turn(xy[hand]) < 0]


def mirrored_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The capped similarity after a mirror (x to -x) that takes ``source`` points nearest ``target``."""
    mirror = np.diag([-1.0, 1.0])
    fitted = similarity(source @ mirror, target)
    return np.hstack([fitted[:, :2] @ mirror, fitted[:, 2:]])


def apply_transforms(transforms: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Each of ``points`` (N, 2) moved by its own of ``transforms`` (N, 2, 3)."""
    return np.einsum("nij,nj->ni", transforms[:, :, :2], points) + transforms[:, :, 2]
