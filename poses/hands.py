"""Hand crops: the square box around one hand's 21 keypoints, a frame region resampled into a
square crop and pasted back, the hand's keypoint map inside its crop, and the appearance crop
of a photo (the hand stage of a render, ``signgen.pipelines.hands``, and its training data,
``signgen.corpora.hand_crops``). numpy and OpenCV only, no torch.

Coordinates are continuous pixel coordinates (pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``,
as in :mod:`signgen.poses.raster`). A box is ``(x0, y0, side)``: its top-left corner and side in
frame pixels; a crop of ``size`` pixels maps frame point ``p`` to ``(p - (x0, y0)) * size / side``.

The keypoint map has one channel per part of the hand (``HAND_PARTS``: palm, thumb, index,
middle, ring, pinky), each an anti-aliased drawing of that part's bones and joints. Parts are
drawn far to near (by the mean keypoint depth ``z`` when it is given, else in that order), and
a nearer part erases what it covers of the farther ones, so crossing fingers stay readable.
"""

from __future__ import annotations

import math

import numpy as np

from signgen.poses import skeleton

HAND_POINTS = 21
HAND_PARTS = ("palm", "thumb", "index", "middle", "ring", "pinky")
HANDS = (skeleton.LEFT_HAND, skeleton.RIGHT_HAND)
# A hand point's part: the wrist is palm, thumb 1-4 -> 1, ..., pinky 17-20 -> 5.
PART_OF_POINT = np.array([0] + [(i - 1) // 4 + 1 for i in range(1, HAND_POINTS)])
PALM_RING = (0, 5, 9, 13, 17)
# A bone belongs to the part of its far end, except those that join the wrist and the finger
# bases (the palm outline).
PART_OF_BONE = np.array([0 if a in PALM_RING and b in PALM_RING else PART_OF_POINT[max(a, b)] for a, b in skeleton.HAND_LIMBS])
BONES = np.asarray(skeleton.HAND_LIMBS, dtype=np.int64)

SHIFT = 4  # cv2 fractional bits: 1/16 pixel
SCALE = 1 << SHIFT
# A crop shrunk below this share of the region is low-passed first (no aliasing).
ANTIALIAS_BELOW = 0.8
# Grey of an appearance patch when the photo shows neither hand nor face.
NEUTRAL = 128
# A photo shows a hand, for its appearance, when this share of its points lies inside it: a
# fingertip past the edge still leaves the hand's crop, an arm leaving the frame only a sleeve.
SHOWN_SHARE = 0.75
# The share of the face (around its centre) whose median colour is the skin colour.
FACE_CORE = 0.5
MIN_FACE_POINTS = 8


def hand_points(hand: int) -> slice:
    """The 178-point slice of hand 0 (left) or 1 (right)."""
    return HANDS[hand]


def hand_is_seen(confidence: np.ndarray, hand: int) -> bool:
    """Whether every one of the hand's 21 points is present in a 178-point ``confidence``."""
    values = np.asarray(confidence)[hand_points(hand)]
    return bool((values > 0).all())


def hand_crop_box(xy21: np.ndarray, seen21: np.ndarray, frame_size: tuple[int, int], margin: float = 0.35,
                  min_side: float = 0.0) -> tuple[float, float, float] | None:
    """The square ``(x0, y0, side)`` around the seen points of one hand (``xy21`` (21, 2),
    ``seen21`` (21,) bool): their box grown by ``margin`` of its larger side on every side, at
    least ``min_side`` pixels and at most the frame's larger side (``frame_size`` = (width,
    height)). None when no point is seen or the box misses the frame."""
    xy21 = np.asarray(xy21, dtype=np.float64)
    seen = np.asarray(seen21, dtype=bool) & np.isfinite(xy21).all(axis=-1)
    if not seen.any():
        return None
    points = xy21[seen]
    low, high = points.min(axis=0), points.max(axis=0)
    width, height = frame_size
    side = max(float((high - low).max()) * (1 + 2 * margin), float(min_side), 4.0)
    side = min(side, float(max(width, height)))
    x0, y0 = (low + high) / 2 - side / 2
    if x0 >= width or y0 >= height or x0 + side <= 0 or y0 + side <= 0:
        return None
    return float(x0), float(y0), float(side)


def crop_matrix(box: tuple[float, float, float], size: int) -> np.ndarray:
    """The 2 x 3 affine map from frame pixel indices to crop pixel indices (cv2's convention:
    an index is its pixel's centre)."""
    x0, y0, side = box
    scale = size / side
    return np.array([[scale, 0.0, scale * (0.5 - x0) - 0.5], [0.0, scale, scale * (0.5 - y0) - 0.5]])


def to_crop(xy: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """Continuous frame coordinates (..., 2) in the crop's coordinates."""
    x0, y0, side = box
    return (np.asarray(xy, dtype=np.float64) - (x0, y0)) * (size / side)


def crop_region(image: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """The ``box`` of ``image`` (H, W, C), uint8 or float32, resampled to (size, size, C) of the
    same dtype; what lies outside the image repeats its edge. A crop smaller than its region
    is low-passed first."""
    import cv2

    image = np.asarray(image)
    height, width = image.shape[:2]
    x0, y0, side = box
    scale = size / side
    # The part of the image the crop reads (two pixels to spare): warping it alone is cheaper.
    left, top = max(int(math.floor(x0)) - 2, 0), max(int(math.floor(y0)) - 2, 0)
    right, bottom = min(int(math.ceil(x0 + side)) + 2, width), min(int(math.ceil(y0 + side)) + 2, height)
    if right <= left or bottom <= top:  # the box misses the image: its nearest edge pixels
        left, top = min(max(left, 0), width - 1), min(max(top, 0), height - 1)
        right, bottom = left + 1, top + 1
    region = np.ascontiguousarray(image[top:bottom, left:right])
    if scale < ANTIALIAS_BELOW:
        sigma = 0.5 * math.sqrt(1 / scale**2 - 1)
        region = cv2.GaussianBlur(region, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    matrix = crop_matrix((x0 - left, y0 - top, side), size)
    crop = cv2.warpAffine(region, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop.reshape(size, size, *image.shape[2:])


def paste_crop(frame: np.ndarray, crop: np.ndarray, box: tuple[float, float, float], weight: np.ndarray,
               base: np.ndarray | None = None) -> np.ndarray:
    """``frame`` (H, W, C) float32 with ``crop`` (S, S, C) pasted into ``box`` under ``weight``
    (S, S) in [0, 1]; with ``base`` (the crop it was drawn from), only the change ``crop - base``
    is added, so that an unchanged crop leaves the frame exactly as it was. A copy; every
    pixel outside the box is untouched (the weight's outer crop pixels must be 0:
    :func:`hand_mask` makes them so)."""
    import cv2

    out = np.array(frame, dtype=np.float32, copy=True)
    height, width = out.shape[:2]
    x0, y0, side = box
    left, top = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
    right, bottom = min(int(math.ceil(x0 + side)), width), min(int(math.ceil(y0 + side)), height)
    if right <= left or bottom <= top:
        return out
    size = crop.shape[0]
    # Region pixel -> crop pixel, read by cv2 as the inverse map.
    matrix = crop_matrix((x0 - left, y0 - top, side), size)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP

    def back(image: np.ndarray) -> np.ndarray:
        warped = cv2.warpAffine(np.ascontiguousarray(image, dtype=np.float32), matrix, (right - left, bottom - top), flags=flags,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return warped.reshape(bottom - top, right - left, *image.shape[2:])

    alpha = back(weight)
    alpha = alpha.reshape(*alpha.shape, *([1] * (out.ndim - 2)))
    region = out[top:bottom, left:right]
    if base is None:
        out[top:bottom, left:right] = region + alpha * (back(crop) - region)
    else:
        out[top:bottom, left:right] = region + alpha * back(np.asarray(crop, np.float32) - np.asarray(base, np.float32))
    return out


def hand_mask(xy_crop: np.ndarray, seen21: np.ndarray, size: int, grow: float = 0.1, blur: float = 0.05) -> np.ndarray:
    """The feathered paste weight (size, size) float32 in [0, 1] of a hand whose points lie at
    ``xy_crop`` (21, 2) in its crop: their convex hull grown by ``grow`` of the crop side,
    blurred by ``blur`` of it, and faded to 0 at the crop's edge (0 on its outer 2 pixels)."""
    import cv2

    seen = np.asarray(seen21, dtype=bool) & np.isfinite(xy_crop).all(axis=-1)
    canvas = np.zeros((size, size), np.uint8)
    if seen.any():
        points = np.round((np.asarray(xy_crop, np.float64)[seen] - 0.5) * SCALE).astype(np.int32)
        hull = cv2.convexHull(points.reshape(-1, 1, 2))
        cv2.fillConvexPoly(canvas, hull, 255, cv2.LINE_AA, SHIFT)
        radius = max(1, round(grow * size))
        canvas = cv2.dilate(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    mask = canvas.astype(np.float32) / 255.0
    mask = cv2.GaussianBlur(mask, (0, 0), max(blur * size, 0.5), borderType=cv2.BORDER_CONSTANT)
    return (mask * edge_window(size)).astype(np.float32)


def hide_hand(crop: np.ndarray, weight: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """``crop`` (S, S, 3) uint8 with the hand under ``weight`` (S, S, the :func:`hand_mask`
    paste weight) painted over from around it (OpenCV's Telea inpainting) wherever the weight
    exceeds ``threshold``: what a hand stage that draws the hand itself starts from, so that
    no hand of the wrong shape is there to keep. A copy."""
    import cv2

    hidden = (np.asarray(weight) > threshold).astype(np.uint8)
    if not hidden.any():
        return np.array(crop, dtype=np.uint8, copy=True)
    radius = max(2, round(0.05 * crop.shape[0]))
    return cv2.inpaint(np.ascontiguousarray(crop, dtype=np.uint8), hidden, radius, cv2.INPAINT_TELEA)


def edge_window(size: int) -> np.ndarray:
    """(size, size) weights: 0 on the outer 2 pixels, rising to 1 over the next few."""
    ramp = max(2.0, size / 16)
    index = np.arange(size, dtype=np.float32)
    distance = np.minimum(index, size - 1 - index) - 1.5
    edge = np.clip(distance / ramp, 0.0, 1.0)
    return np.minimum(edge[:, None], edge[None, :])


def part_order(z21: np.ndarray | None, seen21: np.ndarray) -> list[int]:
    """The hand parts far to near: by the mean depth of their seen points (MediaPipe: larger
    z is farther), else palm, thumb, ..., pinky."""
    default = list(range(len(HAND_PARTS)))
    if z21 is None:
        return default
    z21 = np.asarray(z21, dtype=np.float64)
    seen = np.asarray(seen21, dtype=bool) & np.isfinite(z21)
    depth = []
    for part in default:
        chosen = seen & (PART_OF_POINT == part)
        depth.append(z21[chosen].mean() if chosen.any() else math.inf)
    return sorted(default, key=lambda part: (-depth[part], part))


def hand_keypoint_map(xy_crop: np.ndarray, seen21: np.ndarray, size: int, z21: np.ndarray | None = None,
                      thickness: int | None = None) -> np.ndarray:
    """The keypoint map (6, size, size) float32 in [0, 1] of a hand at ``xy_crop`` (21, 2) in
    its crop: one channel per part (``HAND_PARTS``), bones as lines and joints as dots, nearer
    parts erasing the farther ones they cover (:func:`part_order`)."""
    import cv2

    thickness = max(1, round(size / 32)) if thickness is None else int(thickness)
    seen = np.asarray(seen21, dtype=bool) & np.isfinite(xy_crop).all(axis=-1)
    points = np.clip(np.round((np.where(seen[:, None], xy_crop, 0.0) - 0.5) * SCALE), -(1 << 20), 1 << 20).astype(np.int32)
    maps = np.zeros((len(HAND_PARTS), size, size), np.float32)
    drawn: list[int] = []
    for part in part_order(z21, seen):
        canvas = np.zeros((size, size), np.uint8)
        bones = BONES[(PART_OF_BONE == part) & seen[BONES].all(axis=1)]
        if len(bones):
            cv2.polylines(canvas, list(points[bones]), False, 255, thickness, cv2.LINE_AA, SHIFT)
        joints = points[np.flatnonzero((PART_OF_POINT == part) & seen)]
        if len(joints):
            cv2.polylines(canvas, list(np.repeat(joints[:, None], 2, axis=1)), False, 255, thickness + 1, cv2.LINE_AA, SHIFT)
        cover = canvas.astype(np.float32) / 255.0
        for farther in drawn:
            maps[farther] *= 1.0 - cover
        maps[part] = cover
        drawn.append(part)
    return maps


def skin_colour(image: np.ndarray, xy178: np.ndarray, confidence178: np.ndarray) -> np.ndarray | None:
    """The median colour (3,) uint8 of the middle of the face (``FACE_CORE`` of its contour,
    around its centre), or None when the face is not seen."""
    import cv2

    face = np.asarray(xy178, np.float64)[skeleton.FACE]
    seen = (np.asarray(confidence178)[skeleton.FACE] > 0) & np.isfinite(face).all(axis=-1)
    if seen.sum() < MIN_FACE_POINTS:
        return None
    points = face[seen]
    core = points.mean(axis=0) + FACE_CORE * (points - points.mean(axis=0))
    mask = np.zeros(image.shape[:2], np.uint8)
    hull = cv2.convexHull(np.round((core - 0.5) * SCALE).astype(np.int32).reshape(-1, 1, 2))
    cv2.fillConvexPoly(mask, hull, 1, cv2.LINE_8, SHIFT)
    pixels = np.asarray(image)[mask > 0]
    if not len(pixels):
        return None
    return np.median(pixels, axis=0).round().astype(np.uint8)


def hand_in_image(xy178: np.ndarray, hand: int, image_size: tuple[int, int]) -> bool:
    """Whether at least SHOWN_SHARE of hand ``hand``'s 21 points lie inside an image of
    ``image_size`` (width, height): a pose may place a hand the image cuts off. Every point
    counts, seen or not (NaN as outside): ask :func:`hand_is_seen` first."""
    width, height = image_size
    points = np.asarray(xy178, np.float64)[hand_points(hand)]
    inside = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
    return bool(inside.mean() >= SHOWN_SHARE)


def appearance_crop(image: np.ndarray, xy178: np.ndarray, confidence178: np.ndarray, hand: int, size: int,
                    margin: float = 0.35, min_side: float = 0.0) -> np.ndarray:
    """What hand ``hand`` (0 left, 1 right) looks like in ``image`` (H, W, 3) uint8 with its
    178-point pose: its own crop when every point of it is seen and the image shows it
    (:func:`hand_in_image`), else the other hand's crop mirrored, else a patch of the face's
    skin colour (:func:`skin_colour`), else grey. (size, size, 3) uint8."""
    height, width = np.asarray(image).shape[:2]
    xy178 = np.asarray(xy178, np.float64)
    confidence178 = np.asarray(confidence178)
    for which, mirror in ((hand, False), (1 - hand, True)):
        if hand_is_seen(confidence178, which) and hand_in_image(xy178, which, (width, height)):
            points = hand_points(which)
            box = hand_crop_box(xy178[points], confidence178[points] > 0, (width, height), margin, min_side)
            if box is not None:
                crop = crop_region(image, box, size)
                return np.ascontiguousarray(crop[:, ::-1]) if mirror else crop
    colour = skin_colour(image, xy178, confidence178)
    patch = np.full((size, size, 3), NEUTRAL, np.uint8)
    if colour is not None:
        patch[:] = colour
    return patch
