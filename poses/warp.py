"""The coarse image: a photo warped, part by part, from its own pose to a target pose.

PCDMs' coarse-to-fine, done by geometry: the signer's photo is cut into rigid parts
(torso, head, upper arms, forearms, hands) around the keypoints of the 178-point set,
each part is moved by the similarity transform (rotation, uniform scale capped at
MAX_PART_SCALE, translation) that takes its source keypoints to its target keypoints, and
the parts are painted back in depth order (torso, head, upper arms, forearms, hands). A
photo pixel belongs to the frontmost part there: limbs before the torso, hands before
everything, so no part carries a copy of another along. Where a part moved away and
nothing covers its old place, the pixels are filled from their surroundings (OpenCV's
Telea inpainting) and marked in the ``uncovered`` mask: the denoiser has to draw them.
Parts the target shows but the photo does not, and target regions of a part its photo
pixels do not fill (a forearm the hand hid), are marked uncovered too.

Both keypoint sets are in the pixel frame of the image they belong to (the photo's pose
in the photo's frame, the target pose in the same frame: the target is placed where the
signer stands). Warping a photo to its own pose gives the photo back.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.skeleton import (
    LEFT_ELBOW,
    LEFT_HIP,
    LEFT_SHOULDER,
    LEFT_WRIST,
    RIGHT_ELBOW,
    RIGHT_HIP,
    RIGHT_SHOULDER,
    RIGHT_WRIST,
)

# Sizes in shoulder widths of the photo's pose.
UPPER_ARM_HALF_WIDTH = 0.16
FOREARM_HALF_WIDTH = 0.12
HAND_MARGIN = 0.08
# A part is scaled by at most this (or 1 / this): a limb seen end-on in one pose has two
# nearly coincident keypoints, and the exact similarity would blow it up to many times its
# width; a capped one leaves the rest of its length to the denoiser.
MAX_PART_SCALE = 1.5
HEAD_SCALE = 1.45  # the face contour scaled about its centre: hair, ears and chin included
TORSO_MARGIN = 0.12
HIP_DROP = 1.5  # where the hips are taken to be when the pose has none: this far below the shoulders
LIMB_REGION_GROW = 0.1  # shoulder widths around each arm and hand part: see limb_regions
LIMB_STILL = 0.05  # shoulder widths: a part whose keypoints stay this close is resting (limb_regions)

HAND_POINTS = {"left": np.arange(skeleton.LEFT_HAND.start, skeleton.LEFT_HAND.stop),
               "right": np.arange(skeleton.RIGHT_HAND.start, skeleton.RIGHT_HAND.stop)}
FACE_POINTS = np.arange(skeleton.FACE.start, skeleton.FACE.stop)


@dataclass
class CoarseImage:
    """``image`` uint8 (H, W, 3); ``uncovered`` bool (H, W), True where the warp had no
    source pixels to put; ``background`` bool (H, W) or None (the warp does not tell), the
    uncovered pixels the person has left off the target's torso and limbs, which ``image``
    fills with the photo's background (inpainted where the person stood): what is behind the
    person there, without a model."""

    image: np.ndarray
    uncovered: np.ndarray
    background: np.ndarray | None = None


@dataclass
class _Part:
    name: str
    source_points: np.ndarray  # (N, 2) keypoints the transform is fitted on
    target_points: np.ndarray
    mask: np.ndarray  # uint8 (H, W) region of the part in the photo
    target_mask: np.ndarray | None = None  # uint8 (H, W) its whole region in the target pose


def warp_to_pose(image: np.ndarray, source_xy: np.ndarray, source_confidence: np.ndarray,
                 target_xy: np.ndarray, target_confidence: np.ndarray) -> CoarseImage:
    """The coarse image of ``image`` (uint8 (H, W, 3), posed as ``source_xy`` (178, 2) with
    ``source_confidence`` (178,)) moved to the pose ``target_xy`` / ``target_confidence``."""
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    # Confidence 0 marks a missing point; MediaPipe's low visibility (an elbow below the
    # frame) still comes with a usable estimate.
    source_xy, source_seen = with_wrists(np.asarray(source_xy, np.float64), np.asarray(source_confidence) > 0)
    target_xy, target_seen = with_wrists(np.asarray(target_xy, np.float64), np.asarray(target_confidence) > 0)
    unit = shoulder_width(source_xy, source_seen, width)
    parts, missing = _parts((height, width), source_xy, source_seen, target_xy, target_seen, unit)

    # A pixel of the photo where an arm or hand lies before the torso belongs to the limb,
    # so that the torso never carries a limb along; the limbs keep their overlaps (at the
    # elbow, the wrist), so that a bent joint leaves no hole.
    vacated = np.zeros((height, width), np.uint8)
    for part in parts:
        vacated |= part.mask
    # Likewise a hand lies before everything else (a forearm or the face would otherwise
    # carry a copy of the hand along).
    limbs, hands = np.zeros_like(vacated), np.zeros_like(vacated)
    for part in parts:
        if part.name.endswith(("arm", "hand")):
            limbs |= part.mask
        if part.name.endswith("hand"):
            hands |= part.mask
    for part in parts:
        if part.name == "torso":
            part.mask = part.mask & ~limbs
        elif not part.name.endswith("hand"):
            part.mask = part.mask & ~hands
    canvas = cv2.inpaint(image, vacated, 3, cv2.INPAINT_TELEA) if vacated.any() else image.copy()
    covered = np.zeros((height, width), bool)
    for part in parts:
        if part.target_points is None:
            continue
        matrix = _similarity(part.source_points, part.target_points)
        moved = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        region = cv2.warpAffine(part.mask, matrix, (width, height), flags=cv2.INTER_NEAREST) > 0
        canvas[region] = moved[region]
        covered |= region
    uncovered = (vacated > 0) & ~covered
    for part in parts:  # where a part lies in the target pose that its photo pixels (a hand before them) do not fill
        if part.target_mask is not None:
            uncovered |= (part.target_mask > 0) & ~covered
    for region in missing:
        uncovered |= region > 0
    return CoarseImage(image=canvas, uncovered=uncovered)


def steady_torso(xy: np.ndarray, confidence: np.ndarray, sigma: float) -> np.ndarray:
    """``xy`` (T, 178, 2) with the points that move the torso and the head (shoulders,
    hips, face) smoothed over time by a Gaussian of ``sigma`` frames, each point over the
    frames it is seen in (``confidence`` (T, 178) > 0); arms and hands are left as they are.
    ``sigma`` 0 leaves every point as it is (the render setting ``steady_torso``).

    A video's coarse images are warped frame by frame, and the torso follows the similarity
    of its two shoulder points: the few pixels a pose estimator's shoulders jitter from frame
    to frame move the whole torso, and a patterned garment shimmers where the signer sits
    still. Signers' torsos and heads move slowly; their hands do not."""
    xy = np.asarray(xy, np.float64)
    if sigma == 0 or len(xy) < 2:
        return xy.copy()
    from scipy.ndimage import gaussian_filter1d

    points = np.concatenate([[LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP], FACE_POINTS])
    seen = (np.asarray(confidence)[:, points] > 0).astype(np.float64)[..., None]
    # Normalised convolution: an unseen frame neither pulls a point towards its stored (0, 0)
    # nor is given a position.
    total = gaussian_filter1d(xy[:, points] * seen, sigma, axis=0, mode="nearest")
    weight = gaussian_filter1d(seen, sigma, axis=0, mode="nearest")
    steady = xy.copy()
    steady[:, points] = np.where(seen > 0, total / np.maximum(weight, 1e-12), xy[:, points])
    return steady


def limb_regions(xy: np.ndarray, confidence: np.ndarray, size: tuple[int, int], reach: int = 0,
                 grow: float = LIMB_REGION_GROW, still: float = LIMB_STILL) -> np.ndarray:
    """(T, H, W) bool: where each frame of the pose ``xy`` (T, 178, 2) in pixels of a frame of
    ``size`` (H, W) has an arm or hand part (upper arm, forearm, hand: the warp's part
    regions, each grown by ``grow`` shoulder widths, as a drawn limb may lie a little off
    its keypoints) that moves within ``reach`` frames either side: one whose keypoints
    leave their place in that frame by more than ``still`` shoulder widths. What a filter
    over time must not average across frames, or a moving hand turns into a ghost; a
    resting arm is left out, so that its shimmer can be averaged away; a part missing from
    some frame within the reach counts as moving. ``reach`` 0: every arm and hand part."""
    xy, confidence = np.asarray(xy, np.float64), np.asarray(confidence)
    if xy.ndim != 3 or xy.shape[1:] != (skeleton.NUM_POINTS, 2) or confidence.shape != xy.shape[:2]:
        raise SigngenError(f"expected xy (T, {skeleton.NUM_POINTS}, 2) and confidence (T, {skeleton.NUM_POINTS}), "
                           f"got {xy.shape} and {confidence.shape}")
    poses = [with_wrists(points, scores > 0) for points, scores in zip(xy, confidence)]
    xy, seen = np.stack([p[0] for p in poses]), np.stack([p[1] for p in poses])
    parts = []
    for shoulder, elbow, wrist in ((LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST), (RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST)):
        parts.append((np.array([shoulder, elbow]), UPPER_ARM_HALF_WIDTH))
        parts.append((np.array([elbow, wrist]), FOREARM_HALF_WIDTH))
    parts += [(hand, None) for hand in HAND_POINTS.values()]
    regions = np.zeros((len(xy), *size), bool)
    for t, region in enumerate(regions):
        unit = shoulder_width(xy[t], seen[t], size[1])
        nearby = slice(max(0, t - reach), t + reach + 1)
        for indices, half_width in parts:
            if not seen[t, indices].all():
                continue
            shown = seen[nearby][:, indices].all(axis=1)
            # A part that appears or disappears within the reach moves as much as any.
            moved = np.linalg.norm(xy[nearby][:, indices] - xy[t, indices], axis=-1).max() if reach and shown.all() else np.inf
            if moved <= still * unit:
                continue
            if half_width is None:
                region |= hull_mask(size, xy[t, indices], (HAND_MARGIN + grow) * unit) > 0
            else:
                region |= capsule_mask(size, xy[t, indices[0]], xy[t, indices[1]], (half_width + grow) * unit) > 0
    return regions


def with_wrists(xy: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pose with each missing body wrist taken from its hand's wrist point, where seen."""
    xy, seen = xy.copy(), seen.copy()
    for wrist, hand in ((LEFT_WRIST, HAND_POINTS["left"][0]), (RIGHT_WRIST, HAND_POINTS["right"][0])):
        if not seen[wrist] and seen[hand]:
            xy[wrist], seen[wrist] = xy[hand], True
    return xy, seen


def shoulder_width(xy: np.ndarray, seen: np.ndarray, image_width: int) -> float:
    if seen[LEFT_SHOULDER] and seen[RIGHT_SHOULDER]:
        return max(float(np.linalg.norm(xy[LEFT_SHOULDER] - xy[RIGHT_SHOULDER])), 1.0)
    return image_width / 4.0


def _parts(size, source_xy, source_seen, target_xy, target_seen, unit) -> tuple[list[_Part], list[np.ndarray]]:
    """The photo's parts in painting order, each with its keypoints in both poses
    (``target_points`` None where the target does not show it: the part is only removed),
    and the target regions of parts the photo does not show."""
    parts, missing = [], []

    def add(name: str, indices: np.ndarray, mask_of) -> None:
        in_source, in_target = source_seen[indices].all(), target_seen[indices].all()
        if in_source:
            parts.append(_Part(name, source_xy[indices], target_xy[indices] if in_target else None,
                               mask_of(source_xy, source_seen), mask_of(target_xy, target_seen) if in_target else None))
        elif in_target:
            missing.append(mask_of(target_xy, target_seen))

    torso = np.array([LEFT_SHOULDER, RIGHT_SHOULDER])
    add("torso", torso, lambda xy, seen: torso_mask(size, xy, seen, unit))
    face = FACE_POINTS[source_seen[FACE_POINTS] & target_seen[FACE_POINTS]]
    if len(face) >= 3:
        add("head", face, lambda xy, _: head_mask(size, xy[face]))
    for side, (shoulder, elbow, wrist) in (("left", (LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST)),
                                           ("right", (RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST))):
        add(f"{side} upper arm", np.array([shoulder, elbow]),
            lambda xy, _, a=shoulder, b=elbow: capsule_mask(size, xy[a], xy[b], UPPER_ARM_HALF_WIDTH * unit))
        add(f"{side} forearm", np.array([elbow, wrist]),
            lambda xy, _, a=elbow, b=wrist: capsule_mask(size, xy[a], xy[b], FOREARM_HALF_WIDTH * unit))
    for side, points in HAND_POINTS.items():
        add(f"{side} hand", points, lambda xy, _, p=points: hull_mask(size, xy[p], HAND_MARGIN * unit))
    return parts, missing


def _similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2 x 3 least-squares similarity (Umeyama) taking ``source`` points onto ``target``,
    its scale within [1 / MAX_PART_SCALE, MAX_PART_SCALE] (the centroids still meet)."""
    source_mean, target_mean = source.mean(0), target.mean(0)
    source_centred, target_centred = source - source_mean, target - target_mean
    variance = (source_centred**2).sum()
    if len(source) < 2 or variance < 1e-9:
        return np.array([[1.0, 0.0, target_mean[0] - source_mean[0]], [0.0, 1.0, target_mean[1] - source_mean[1]]])
    covariance = target_centred.T @ source_centred
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    correction = np.diag([1.0, sign])
    rotation = u @ correction @ vt
    scale = float(np.clip((singular * np.diag(correction)).sum() / variance, 1 / MAX_PART_SCALE, MAX_PART_SCALE))
    translation = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, None]])


def capsule_mask(size, a: np.ndarray, b: np.ndarray, half_width: float) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    thickness = max(1, int(round(2 * half_width)))
    cv2.line(mask, _pixel(a), _pixel(b), 1, thickness, cv2.LINE_8)
    for end in (a, b):
        cv2.circle(mask, _pixel(end), max(1, int(round(half_width))), 1, -1)
    return mask


def hull_mask(size, points: np.ndarray, margin: float) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    radius = max(1, int(round(margin)))
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))


def head_mask(size, face: np.ndarray) -> np.ndarray:
    centre = face.mean(0)
    return hull_mask(size, centre + (face - centre) * HEAD_SCALE, 0)


def torso_mask(size, xy: np.ndarray, seen: np.ndarray, unit: float) -> np.ndarray:
    left, right = xy[LEFT_SHOULDER], xy[RIGHT_SHOULDER]
    down = np.array([0.0, HIP_DROP * unit])
    left_hip = xy[LEFT_HIP] if seen[LEFT_HIP] else left + down
    right_hip = xy[RIGHT_HIP] if seen[RIGHT_HIP] else right + down
    return hull_mask(size, np.stack([left, right, right_hip, left_hip]), TORSO_MARGIN * unit)


def _pixel(point: np.ndarray) -> tuple[int, int]:
    return int(round(point[0])), int(round(point[1]))
