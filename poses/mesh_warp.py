"""The coarse image from one connected mesh of the photo's person, bent by the pose's bones.

``signgen.poses.warp`` moves rigid parts, each by its own similarity: where an arm bends,
its upper arm and forearm come apart at the elbow (and the arm from the torso at the
shoulder). Here, as in AnimatedDrawings, the person is one triangle mesh deformed as
rigidly as possible (Igarashi et al. 2009's two-step ARAP) with the keypoints as pinned
handles, so a bent arm stays in one piece.

The mesh: the person's mask (MediaPipe's selfie segmentation of the photo, kept where the
photo's pose says a body can be, and the pose's own thin skeleton added; the pose's part
regions alone when the segmenter finds nobody), sampled on a grid (finer on the hands) and
along its outline, Delaunay-triangulated. Each triangle belongs to one part, the frontmost
part whose region holds it (fingers before palms before forearms before upper arms before
the head before the torso), else its nearest. Triangles of one part share their vertices;
triangles of two parts share them only where the parts join (near the shoulder, elbow,
wrist and knuckle they meet at; the head and the torso wherever they touch), so an arm
resting against the torso leaves it when raised instead of dragging a web of torso along.

Per video: the mask, the mesh, the handles and the two ARAP systems, factorised once
(``MeshWarp``). Per frame: three sparse solves, each triangle drawn as the affine map its
deformed corners give it (a per-pixel inverse map, one ``cv2.remap``), parts in depth
order. Every handle has a target in every frame (a point the target does not show follows
its part's similarity, or its parent part's), so the factorisation never changes; parts the
target does not show are not drawn. Photo pixels of the person that no drawn triangle
covers any more, parts the target shows but the photo does not, and target bones the mesh
does not reach are marked ``uncovered`` and filled from their surroundings (Telea), as in
``signgen.poses.warp``. Warping a photo to its own pose gives the photo back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import cv2
import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu
from scipy.spatial import Delaunay

from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.warp import (FACE_POINTS, FOREARM_HALF_WIDTH, HAND_MARGIN, HAND_POINTS, HEAD_SCALE, HIP_DROP,
                                LEFT_ELBOW, LEFT_HIP, LEFT_SHOULDER, LEFT_WRIST, MAX_PART_SCALE, RIGHT_ELBOW, RIGHT_HIP,
                                RIGHT_SHOULDER, RIGHT_WRIST, TORSO_MARGIN, UPPER_ARM_HALF_WIDTH, CoarseImage, _capsule_mask,
                                _head_mask, _hull_mask, _shoulder_width, _torso_mask, _with_wrists)

# Sizes in shoulder widths of the photo's pose (its ``unit``).
MESH_SPACING = 1 / 16  # grid step on the body: about 5 px at 260 x 210
HAND_SPACING = 1 / 40  # ... on the hands, so that a finger is a strip of triangles of its own
FINGER_HALF_WIDTH = 0.045
CORE_HALF_WIDTH = 0.04  # the skeleton always in the mask: a limb is at least this wide about its bone
# How far from the joint two parts share vertices. Each must reach past where the child's
# region meets the parent's (the forearm's round end, 0.12, inside the upper arm's, 0.16),
# and not much further: a forearm folded against its upper arm in the photo is welded to it
# along this length, and stretches there when the arm opens.
WELD_RADIUS = {"shoulder": 0.3, "elbow": 0.2, "wrist": 0.15, "knuckle": 0.07}
# The segmenter is trusted inside the pose's part regions grown this much (a chair or a
# second person beside the signer is not the signer).
TRUST_GROW = 2.0
SEGMENT_THRESHOLD = 0.5
MIN_SEGMENTED = 0.3  # segmented share of the pose's own part regions below which the segmenter "found nobody"
HOLE_AREA = 0.25**2  # in squared shoulder widths: smaller holes in the mask are filled
BONE_SAMPLES = (0.25, 0.5, 0.75)  # handles along each limb besides its two joints
PIN_WEIGHT = 100.0  # per handle coordinate, against 1 per edge: nearly hard pins
ANCHOR_WEIGHT = 1e-5  # per vertex: towards its part's similarity; only decides what no handle reaches
RANKS = {"torso": 0, "head": 1, "upper arm": 2, "forearm": 3, "palm": 4, "finger": 5}

PALM = np.array([0, 1, 5, 9, 13, 17])
FINGERS = {"thumb": [1, 2, 3, 4], "index": [5, 6, 7, 8], "middle": [9, 10, 11, 12], "ring": [13, 14, 15, 16],
           "pinky": [17, 18, 19, 20]}
ARMS = {"left": (LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST), "right": (RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST)}

Segmenter = Callable[[np.ndarray], np.ndarray]


@dataclass
class _Part:
    name: str
    kind: str  # a key of RANKS
    side: str | None
    points: np.ndarray  # keypoints that must all be seen for the part to be drawn (the head: enough of them)
    fit: np.ndarray  # keypoints its similarity is fitted on
    shape: Callable  # (size, xy, seen) -> uint8 region of the part in a pose
    parent: int | None = None
    joint: int | None = None  # keypoint it is welded to its parent at (None: wherever they touch)
    weld: float = np.inf  # shoulder widths
    handles: list = field(default_factory=list)  # (k1, k2, f): the point (1 - f) * xy[k1] + f * xy[k2]; k1 -1: none


def selfie_segmenter() -> Segmenter:
    """MediaPipe's selfie segmentation (general model, offline, in the wheel) as a function
    from an RGB uint8 image to a person probability per pixel."""
    model = _mediapipe_selfie()

    def segment(image: np.ndarray) -> np.ndarray:
        result = model.process(np.ascontiguousarray(image))
        mask = result.segmentation_mask
        return np.zeros(image.shape[:2], np.float32) if mask is None else np.asarray(mask, np.float32)

    return segment


@lru_cache(maxsize=1)
def _mediapipe_selfie():
    import mediapipe as mp

    return mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)


def person_mask(photo: np.ndarray, source_xy: np.ndarray, source_confidence: np.ndarray,
                segmenter: Segmenter | None = None) -> np.ndarray:
    """bool (H, W): the person in ``photo`` (uint8 (H, W, 3), posed as ``source_xy``
    (178, 2) / ``source_confidence`` (178,)): the segmenter's person (MediaPipe's selfie
    segmentation by default) where the pose's part regions, grown, allow one, with the
    pose's skeleton added; the pose's part regions alone when the segmenter finds nobody."""
    photo = _check_photo(photo)
    xy, seen = _check_pose(source_xy, source_confidence, "source")
    xy, seen = _with_wrists(xy, seen)
    return _person_mask(photo, xy, seen, _shoulder_width(xy, seen, photo.shape[1]), segmenter)


class MeshWarp:
    """The mesh of one signer photo, set up once per video; ``warp`` per frame.

    ``photo`` uint8 (H, W, 3) posed as ``source_xy`` (178, 2) / ``source_confidence``
    (178,), in its pixels. ``mask`` bool (H, W): the person, if known (else
    :func:`person_mask` with ``segmenter``, MediaPipe's by default)."""

    def __init__(self, photo: np.ndarray, source_xy: np.ndarray, source_confidence: np.ndarray, *,
                 mask: np.ndarray | None = None, segmenter: Segmenter | None = None):
        self.photo = _check_photo(photo)
        height, width = self.photo.shape[:2]
        xy, seen = _check_pose(source_xy, source_confidence, "source")
        self.source_xy, self.source_seen = _with_wrists(xy, seen)
        self.unit = _shoulder_width(self.source_xy, self.source_seen, width)
        if mask is None:
            mask = _person_mask(self.photo, self.source_xy, self.source_seen, self.unit, segmenter)
        mask = np.asarray(mask)
        if mask.shape != (height, width):
            raise SigngenError(f"the person mask must be {height} x {width} like the photo, not {mask.shape}")
        self.mask = mask.astype(bool)
        self.parts = _parts(self.source_xy, self.source_seen, self.unit)
        self._absent = _absent_parts(self.source_seen)  # the photo's missing parts: (name, points, shape)
        self.vertices = np.zeros((0, 2))
        self.triangles = np.zeros((0, 3), np.int64)
        self.labels = np.zeros(0, np.int64)
        if self.parts and self.mask.any():
            self._build()

    # Setup --------------------------------------------------------------------------------

    def _build(self) -> None:
        size = self.mask.shape
        xy, seen, unit = self.source_xy, self.source_seen, self.unit
        regions = [part.shape(size, xy, seen) for part in self.parts]
        label_map = _label_map(regions, [RANKS[part.kind] for part in self.parts])
        hands = np.zeros(size, np.uint8)
        for part in self.parts:
            if part.kind in ("palm", "finger"):
                hands |= part.shape(size, xy, seen)
        points, triangles = _triangulate(self.mask, hands > 0, unit)
        if not len(triangles):
            return
        centroids = np.round(points[triangles].mean(1)).astype(int)
        labels = label_map[centroids[:, 1], centroids[:, 0]]
        vertices, triangles, owner = _weld(points, triangles, labels, self.parts, xy, unit)
        self.vertices, self.triangles, self.labels = vertices, triangles, labels
        self._owner = owner  # each vertex's part, whose similarity anchors it

        handle_part, handle_k, handle_f, pins = [], [], [], []
        for p, part in enumerate(self.parts):
            for k1, k2, f in part.handles:
                point = _handle_point(xy, k1, k2, f)
                weights = _attach(point, vertices, triangles, labels, p, MESH_SPACING * unit)
                if weights is None:
                    continue
                handle_part.append(p)
                handle_k.append((k1, k2))
                handle_f.append(f)
                pins.append(weights)
        self._handle_part = np.array(handle_part, np.int64)
        self._handle_k = np.array(handle_k, np.int64).reshape(-1, 2)
        self._handle_f = np.array(handle_f, np.float64)
        self._handle_source = np.array([_handle_point(xy, k1, k2, f) for (k1, k2), f in zip(handle_k, handle_f)]).reshape(-1, 2)
        rows = np.repeat(np.arange(len(pins)), 3)
        columns = np.concatenate([w[0] for w in pins]) if pins else np.zeros(0, np.int64)
        values = np.concatenate([w[1] for w in pins]) if pins else np.zeros(0)
        pin_matrix = sp.csr_matrix((values, (rows, columns)), shape=(len(pins), len(vertices)))
        self._arap = _Arap(vertices, triangles, pin_matrix)

    # Per frame ------------------------------------------------------------------------------

    def warp(self, target_xy: np.ndarray, target_confidence: np.ndarray, target_z: np.ndarray | None = None) -> CoarseImage:
        """The coarse image of the photo moved to the pose ``target_xy`` (178, 2) /
        ``target_confidence`` (178,) in the photo's pixel frame. ``target_z`` (178,), where
        the pose has depth (MediaPipe's: smaller is nearer), decides which arm is drawn
        before the other; without it, hands before forearms before upper arms of either side."""
        xy, seen = _check_pose(target_xy, target_confidence, "target")
        xy, seen = _with_wrists(xy, seen)
        height, width = self.mask.shape
        map_x, map_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        covered = np.zeros((height, width), bool)
        uncovered = np.zeros((height, width), bool)
        if len(self.triangles):
            transforms = self._transforms(xy, seen)
            shown = self._shown(seen)
            vertices = self._solve(xy, seen, transforms)
            level = _levels(self.parts, seen, target_z)
            drawn = shown[self.labels]
            covered = _rasterise(vertices, self.vertices, self.triangles[drawn], level[self.labels[drawn]],
                                 self.mask, map_x, map_y)
            # A bone of the target the mesh does not reach (a limb the photo shows only in part).
            uncovered |= (_core_mask([part for part, show in zip(self.parts, shown) if show], (height, width), xy, seen,
                                     self.unit) > 0) & ~covered
            # The photo's person where nothing covers it now: an arm moved away from the torso.
            uncovered |= self.mask & ~covered
        for name, points, shape in self._absent:
            if seen[points].all() if name != "head" else seen[points].sum() >= 3:
                uncovered |= shape((height, width), xy, seen, self.unit) > 0
        image = cv2.remap(self.photo, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if uncovered.any():
            image = cv2.inpaint(image, uncovered.astype(np.uint8), 3, cv2.INPAINT_TELEA)
        return CoarseImage(image=image, uncovered=uncovered)

    def _transforms(self, xy: np.ndarray, seen: np.ndarray) -> np.ndarray:
        """(P, 2, 3): each part's similarity from the photo's pose to the target, from its own
        keypoints seen in both, else its parent's (the torso's: a translation, else none)."""
        transforms = np.zeros((len(self.parts), 2, 3))
        for p, part in enumerate(self.parts):
            both = part.fit[self.source_seen[part.fit] & seen[part.fit]]
            if len(both) >= 2:
                transforms[p] = _similarity(self.source_xy[both], xy[both])
            elif part.parent is not None:
                transforms[p] = transforms[part.parent]
            else:
                transforms[p] = _similarity(self.source_xy[both], xy[both]) if len(both) else np.eye(2, 3)
        return transforms

    def _shown(self, seen: np.ndarray) -> np.ndarray:
        shown = np.array([seen[part.points].sum() >= 3 if part.kind == "head" else seen[part.points].all()
                          for part in self.parts])
        return shown

    def _solve(self, xy: np.ndarray, seen: np.ndarray, transforms: np.ndarray) -> np.ndarray:
        k1, k2 = self._handle_k[:, 0], self._handle_k[:, 1]
        f = self._handle_f[:, None]
        known = (k1 >= 0) & seen[np.maximum(k1, 0)] & seen[np.maximum(k2, 0)]
        moved = _apply(transforms[self._handle_part], self._handle_source)
        observed = (1 - f) * xy[np.maximum(k1, 0)] + f * xy[np.maximum(k2, 0)]
        pins = np.where(known[:, None], observed, moved)
        anchors = _apply(transforms[self._owner], self.vertices)
        return self._arap.solve(pins, anchors)


def mesh_warp_to_pose(image: np.ndarray, source_xy: np.ndarray, source_confidence: np.ndarray, target_xy: np.ndarray,
                      target_confidence: np.ndarray, *, mask: np.ndarray | None = None,
                      segmenter: Segmenter | None = None) -> CoarseImage:
    """One frame of :class:`MeshWarp`, with ``signgen.poses.warp.warp_to_pose``'s arguments
    (a video sets the mesh up once instead)."""
    return MeshWarp(image, source_xy, source_confidence, mask=mask, segmenter=segmenter).warp(target_xy, target_confidence)


# The parts -------------------------------------------------------------------------------------


def _parts(xy: np.ndarray, seen: np.ndarray, unit: float) -> list[_Part]:
    """The parts the photo shows, parents before their children."""
    parts: list[_Part] = []

    def add(part: _Part) -> int | None:
        if len(part.points) < 3 if part.kind == "head" else not seen[part.points].all():
            return None
        parts.append(part)
        return len(parts) - 1

    shoulders = np.array([LEFT_SHOULDER, RIGHT_SHOULDER])
    hips = np.array([LEFT_HIP, RIGHT_HIP])
    torso = add(_Part("torso", "torso", None, shoulders, np.r_[shoulders, hips],
                      lambda size, p, s: _torso_mask(size, p, s, unit),
                      handles=[(k, k, 0.0) for k in (*shoulders, *hips) if seen[k]] + [(-1, -1, f) for f in (0.0, 0.5, 1.0)]))
    face = FACE_POINTS[seen[FACE_POINTS]]
    add(_Part("head", "head", None, face, face, lambda size, p, s: _head_mask(size, p[face]), parent=torso,
              handles=[(k, k, 0.0) for k in face]))
    for side, (shoulder, elbow, wrist) in ARMS.items():
        upper = add(_Part(f"{side} upper arm", "upper arm", side, np.array([shoulder, elbow]), np.array([shoulder, elbow]),
                          lambda size, p, s, a=shoulder, b=elbow: _capsule_mask(size, p[a], p[b], UPPER_ARM_HALF_WIDTH * unit),
                          parent=torso, joint=shoulder, weld=WELD_RADIUS["shoulder"], handles=_bone_handles([shoulder, elbow])))
        forearm = add(_Part(f"{side} forearm", "forearm", side, np.array([elbow, wrist]), np.array([elbow, wrist]),
                            lambda size, p, s, a=elbow, b=wrist: _capsule_mask(size, p[a], p[b], FOREARM_HALF_WIDTH * unit),
                            parent=upper, joint=elbow, weld=WELD_RADIUS["elbow"], handles=_bone_handles([elbow, wrist])))
        hand = HAND_POINTS[side]
        # The palm's region is the whole hand's (warp.py's): what no finger claims is the palm's,
        # never the forearm's that the hand lies before.
        palm = add(_Part(f"{side} palm", "palm", side, hand, hand[PALM],
                         lambda size, p, s, q=hand: _hull_mask(size, p[q], HAND_MARGIN * unit),
                         parent=forearm, joint=wrist, weld=WELD_RADIUS["wrist"],
                         handles=[(k, k, 0.0) for k in hand[PALM]]))
        if palm is None:
            continue
        for finger, chain in FINGERS.items():
            points = hand[chain]
            add(_Part(f"{side} {finger}", "finger", side, hand, points,
                      lambda size, p, s, q=points: _polyline_mask(size, p[q], FINGER_HALF_WIDTH * unit),
                      parent=palm, joint=points[0], weld=WELD_RADIUS["knuckle"],
                      handles=[(k, k, 0.0) for k in points] + [(a, b, 0.5) for a, b in zip(points[:-1], points[1:])]))
    return parts


def _bone_handles(chain: list[int]) -> list[tuple[int, int, float]]:
    a, b = chain
    return [(a, a, 0.0), (b, b, 0.0)] + [(a, b, f) for f in BONE_SAMPLES]


def _handle_point(xy: np.ndarray, k1: int, k2: int, f: float) -> np.ndarray:
    if k1 >= 0:
        return (1 - f) * xy[k1] + f * xy[k2]
    # The torso's own handles, on the line from the shoulders' middle down to the hips'
    # (or where HIP_DROP puts them): where the shoulder points alone leave it free to bend.
    top = (xy[LEFT_SHOULDER] + xy[RIGHT_SHOULDER]) / 2
    width = max(float(np.linalg.norm(xy[LEFT_SHOULDER] - xy[RIGHT_SHOULDER])), 1.0)
    return top + np.array([0.0, HIP_DROP * width * 0.5 * f])


def _absent_parts(seen: np.ndarray) -> list:
    """The parts the photo does not show, as (name, keypoints, shape (size, xy, seen, unit)):
    where the target shows one, the model has to draw it."""
    absent = []
    shoulders = np.array([LEFT_SHOULDER, RIGHT_SHOULDER])
    if not seen[shoulders].all():
        absent.append(("torso", shoulders, lambda size, p, s, u: _torso_mask(size, p, s, u)))
    if seen[FACE_POINTS].sum() < 3:
        absent.append(("head", FACE_POINTS, lambda size, p, s, u: _head_mask(size, p[FACE_POINTS[s[FACE_POINTS]]])))
    for side, (shoulder, elbow, wrist) in ARMS.items():
        for (a, b), half_width in (((shoulder, elbow), UPPER_ARM_HALF_WIDTH), ((elbow, wrist), FOREARM_HALF_WIDTH)):
            if not seen[[a, b]].all():
                absent.append(("limb", np.array([a, b]),
                               lambda size, p, s, u, a=a, b=b, w=half_width: _capsule_mask(size, p[a], p[b], w * u)))
        hand = HAND_POINTS[side]
        if not seen[hand].all():
            absent.append(("hand", hand, lambda size, p, s, u, q=hand: _hull_mask(size, p[q], HAND_MARGIN * u)))
    return absent


def _core_mask(parts: list[_Part], size, xy: np.ndarray, seen: np.ndarray, unit: float) -> np.ndarray:
    """uint8: the skeletons of ``parts``, drawn into one image (per frame: no image per part)."""
    mask = np.zeros(size, np.uint8)
    for part in parts:
        if part.kind in ("upper arm", "forearm", "finger"):
            chain = xy[part.points if part.kind != "finger" else part.fit]
            half_width = CORE_HALF_WIDTH * unit if part.kind != "finger" else 0.5
            pixels = np.round(chain).astype(np.int32)
            cv2.polylines(mask, [pixels], False, 1, max(1, int(round(2 * half_width))), cv2.LINE_8)
        else:
            mask |= _core_shape(part, size, xy, seen, unit)
    return mask


def _core_shape(part: _Part, size, xy: np.ndarray, seen: np.ndarray, unit: float) -> np.ndarray:
    """The part's skeleton, which lies on the part in any photo: what the mesh must cover."""
    if part.kind == "torso":
        return _torso_core(size, xy, seen, unit)
    if part.kind == "head":
        return _hull_mask(size, xy[part.points[seen[part.points]]], 0)
    if part.kind == "palm":
        return _hull_mask(size, xy[part.fit], 0)
    if part.kind == "finger":
        return _polyline_mask(size, xy[part.fit], 0.5)
    return _capsule_mask(size, xy[part.points[0]], xy[part.points[1]], CORE_HALF_WIDTH * unit)


def _torso_core(size, xy: np.ndarray, seen: np.ndarray, unit: float) -> np.ndarray:
    left, right = xy[LEFT_SHOULDER], xy[RIGHT_SHOULDER]
    down = np.array([0.0, HIP_DROP * unit])
    left_hip = xy[LEFT_HIP] if seen[LEFT_HIP] else left + down
    right_hip = xy[RIGHT_HIP] if seen[RIGHT_HIP] else right + down
    return _hull_mask(size, np.stack([left, right, right_hip, left_hip]), 0)


def _polyline_mask(size, points: np.ndarray, half_width: float) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    for a, b in zip(points[:-1], points[1:]):
        mask |= _capsule_mask(size, a, b, half_width)
    return mask


def _levels(parts: list[_Part], seen: np.ndarray, z: np.ndarray | None) -> np.ndarray:
    """Each part's drawing order, back to front. With depth, the farther arm (shoulder,
    elbow and wrist's mean z) is drawn whole before the nearer one."""
    levels = np.array([RANKS[part.kind] for part in parts])
    if z is None:
        return levels
    z = np.asarray(z, np.float64)
    if z.shape != (skeleton.NUM_POINTS,):
        raise SigngenError(f"expected target_z ({skeleton.NUM_POINTS},), got {z.shape}")
    depth = {}
    for side, joints in ARMS.items():
        joints = np.array(joints)
        known = joints[seen[joints] & np.isfinite(z[joints])]
        depth[side] = float(z[known].mean()) if len(known) else None
    if depth["left"] is None or depth["right"] is None or depth["left"] == depth["right"]:
        return levels
    near = "left" if depth["left"] < depth["right"] else "right"
    return levels + np.array([len(RANKS) if part.side == near else 0 for part in parts])


# The mask --------------------------------------------------------------------------------------


def _person_mask(photo: np.ndarray, xy: np.ndarray, seen: np.ndarray, unit: float, segmenter: Segmenter | None) -> np.ndarray:
    size = photo.shape[:2]
    regions = _pose_regions(size, xy, seen, unit, 1.0)
    if not regions.any():  # no pose to say where the person is: the segmenter alone
        trusted = np.ones(size, bool)
    else:
        trusted = _pose_regions(size, xy, seen, unit, TRUST_GROW) > 0
    probability = np.asarray((segmenter or selfie_segmenter())(photo))
    if probability.shape != size:
        raise SigngenError(f"the segmenter returned a {probability.shape} mask for a {size[0]} x {size[1]} photo")
    found = (probability > SEGMENT_THRESHOLD) & trusted
    if regions.any() and found.sum() < MIN_SEGMENTED * (regions > 0).sum():
        return regions > 0
    core = _pose_core(size, xy, seen, unit) > 0
    mask = found | core
    mask = _fill_small_holes(mask, HOLE_AREA * unit**2)
    if core.any():  # specks the segmenter found away from the body
        count, components = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        keep = np.zeros(count, bool)
        keep[np.unique(components[core])] = True
        keep[0] = False
        mask = keep[components]
    return mask


def _pose_regions(size, xy: np.ndarray, seen: np.ndarray, unit: float, grow: float) -> np.ndarray:
    """uint8: ``signgen.poses.warp``'s part regions of the pose, their widths times ``grow``
    (grown, the torso reaches down to the frame's bottom: a seated signer is cut there)."""
    mask = np.zeros(size, np.uint8)
    if seen[[LEFT_SHOULDER, RIGHT_SHOULDER]].all():
        left, right = xy[LEFT_SHOULDER], xy[RIGHT_SHOULDER]
        drop = np.array([0.0, HIP_DROP * unit * (1 if grow == 1 else 4)])
        left_hip = xy[LEFT_HIP] if seen[LEFT_HIP] and grow == 1 else left + drop
        right_hip = xy[RIGHT_HIP] if seen[RIGHT_HIP] and grow == 1 else right + drop
        mask |= _hull_mask(size, np.stack([left, right, right_hip, left_hip]), TORSO_MARGIN * grow * unit)
    face = FACE_POINTS[seen[FACE_POINTS]]
    if len(face) >= 3:
        centre = xy[face].mean(0)
        mask |= _hull_mask(size, centre + (xy[face] - centre) * HEAD_SCALE * grow, 0)
    for shoulder, elbow, wrist in ARMS.values():
        for (a, b), half_width in (((shoulder, elbow), UPPER_ARM_HALF_WIDTH), ((elbow, wrist), FOREARM_HALF_WIDTH)):
            if seen[[a, b]].all():
                mask |= _capsule_mask(size, xy[a], xy[b], half_width * grow * unit)
    for hand in HAND_POINTS.values():
        if seen[hand].all():
            mask |= _hull_mask(size, xy[hand], HAND_MARGIN * (1 if grow == 1 else 4 * grow) * unit)
    return mask


def _pose_core(size, xy: np.ndarray, seen: np.ndarray, unit: float) -> np.ndarray:
    """uint8: the pose's skeleton, thin: on the person in any photo of it."""
    mask = np.zeros(size, np.uint8)
    for part in _parts(xy, seen, unit):
        mask |= _core_shape(part, size, xy, seen, unit)
    return mask


def _fill_small_holes(mask: np.ndarray, area: float) -> np.ndarray:
    count, holes, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    height, width = mask.shape
    small = stats[:, cv2.CC_STAT_AREA] < area
    x, y, w, h = (stats[:, i] for i in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    inside = (x > 0) & (y > 0) & (x + w < width) & (y + h < height)  # the background touches the border
    fill = small & inside
    return mask | (fill[holes] & ~mask)


# The mesh --------------------------------------------------------------------------------------


def _label_map(regions: list[np.ndarray], ranks: list[int]) -> np.ndarray:
    """int (H, W): the frontmost part whose region holds the pixel, else the nearest part."""
    distances = np.stack([cv2.distanceTransform((region == 0).astype(np.uint8), cv2.DIST_L2, 3) for region in regions])
    rank = np.array(ranks, np.float32)[:, None, None]
    # Inside: minus a thousand minus the rank (the frontmost wins); outside: the distance.
    key = np.where(distances == 0, -1000.0 - rank, distances)
    return np.argmin(key, axis=0)


def _triangulate(mask: np.ndarray, hands: np.ndarray, unit: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 2) and triangles (T, 3) covering ``mask``: a grid (finer on ``hands``) and
    the outline of the mask grown by a little, Delaunay-triangulated; triangles whose middle
    is off the grown mask are dropped."""
    spacing = max(MESH_SPACING * unit, 2.0)
    fine = max(HAND_SPACING * unit, 1.5)
    grow = int(np.ceil(fine / 2)) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    region = cv2.dilate(mask.astype(np.uint8), kernel) > 0
    hands = hands & region
    height, width = mask.shape
    points = []
    for step, where in ((spacing, region & ~hands), (fine, hands)):
        if not where.any():
            continue
        ys, xs = np.meshgrid(np.arange(step / 2, height, step), np.arange(step / 2, width, step), indexing="ij")
        keep = where[np.round(ys).astype(int).clip(0, height - 1), np.round(xs).astype(int).clip(0, width - 1)]
        points.append(np.stack([xs[keep], ys[keep]], 1))
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    step = max(1, int(round(fine)))
    for contour in contours:
        points.append(contour[::step, 0].astype(np.float64))
    points = np.unique(np.round(np.concatenate(points), 3), axis=0)
    if len(points) < 3:
        return points, np.zeros((0, 3), np.int64)
    delaunay = Delaunay(points)
    triangles = delaunay.simplices.astype(np.int64)
    corners = points[triangles]
    middle = np.round(corners.mean(1)).astype(int)
    keep = region[middle[:, 1].clip(0, height - 1), middle[:, 0].clip(0, width - 1)]
    # ... and every triangle that holds a pixel centre of the mask, so that the mesh covers
    # all of it (a triangle bridging a gap, between an arm and the torso, draws nothing
    # there: only photo pixels of the person are drawn).
    ys, xs = np.nonzero(mask)
    holding = delaunay.find_simplex(np.stack([xs, ys], 1).astype(np.float64))
    keep[holding[holding >= 0]] = True
    d1, d2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    keep &= np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]) > 1e-6
    return points, triangles[keep]


def _weld(points: np.ndarray, triangles: np.ndarray, labels: np.ndarray, parts: list[_Part], xy: np.ndarray,
          unit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mesh with each point split into one vertex per group of parts that share it: one
    part's triangles always share their corners; a part and its parent share a corner within
    its weld radius of their joint (the head and the torso wherever they meet); others never.
    Returns vertices (N, 2), triangles (T, 3) into them and each vertex's part."""
    corner_point = triangles.ravel()
    corner_label = np.repeat(labels, 3)
    pairs, inverse = np.unique(np.stack([corner_point, corner_label], 1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    parent = np.arange(len(pairs))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]])
    ends = np.r_[starts[1:], len(pairs)]
    for start, end in zip(starts, ends):
        if end - start < 2:
            continue
        point = points[pairs[start, 0]]
        for i in range(start, end):
            for j in range(i + 1, end):
                a, b = int(pairs[i, 1]), int(pairs[j, 1])
                child = a if parts[a].parent == b else b if parts[b].parent == a else None
                if child is None:
                    continue
                joint, radius = parts[child].joint, parts[child].weld
                if joint is None or np.linalg.norm(point - xy[joint]) <= radius * unit:
                    parent[find(i)] = find(j)
    roots = np.array([find(i) for i in range(len(pairs))])
    _, vertex_of_pair = np.unique(roots, return_inverse=True)
    vertex_of_pair = vertex_of_pair.ravel()
    vertex_count = int(vertex_of_pair.max()) + 1
    vertices = np.zeros((vertex_count, 2))
    vertices[vertex_of_pair] = points[pairs[:, 0]]
    owner = np.zeros(vertex_count, np.int64)
    # A vertex shared by a part and its parent is anchored by the parent: the one nearer the trunk.
    order = np.argsort(-np.array([RANKS[parts[label].kind] for label in pairs[:, 1]]), kind="stable")
    owner[vertex_of_pair[order]] = pairs[order, 1]
    return vertices, vertex_of_pair[inverse].reshape(-1, 3), owner


def _attach(point: np.ndarray, vertices: np.ndarray, triangles: np.ndarray, labels: np.ndarray, part: int,
            reach: float):
    """The barycentric weights (vertex indices (3,), weights (3,)) of ``point`` in a triangle
    of ``part`` that holds it, else in its nearest triangle of ``part`` within ``reach``
    pixels (weights outside [0, 1]: the mesh still carries the point exactly); None where
    the part's triangles are all farther away. Only the part's own triangles: a forearm's
    handle on the hand that hides it in the photo would drag the hand along the forearm."""
    chosen = np.flatnonzero(labels == part)
    if not len(chosen):
        return None
    weights = _barycentric(point, vertices[triangles[chosen]])
    inside = (weights >= -1e-9).all(1)
    if inside.any():
        t = int(np.argmax(inside))
        return triangles[chosen[t]], weights[t]
    centres = vertices[triangles[chosen]].mean(1)
    t = int(np.argmin(np.linalg.norm(centres - point, axis=1)))
    if np.linalg.norm(centres[t] - point) > reach:
        return None
    return triangles[chosen[t]], weights[t]


def _barycentric(point: np.ndarray, corners: np.ndarray) -> np.ndarray:
    a, d, e = corners[:, 0], corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    det = d[:, 0] * e[:, 1] - d[:, 1] * e[:, 0]
    r = point - a
    l1 = (r[:, 0] * e[:, 1] - r[:, 1] * e[:, 0]) / det
    l2 = (d[:, 0] * r[:, 1] - d[:, 1] * r[:, 0]) / det
    return np.stack([1 - l1 - l2, l1, l2], 1)


class _Arap:
    """Igarashi and Igarashi (2009), "Implementing as-rigid-as-possible shape manipulation":
    step 1 finds the vertices whose every edge is its neighbourhood's best similarity of the
    photo's edge (free rotation and scale), step 2 the vertices whose edges are the photo's
    edges turned by step 1's rotations (free rotation, fixed length). Both are linear least
    squares whose matrices depend on the mesh and the handles only: factorised once."""

    def __init__(self, vertices: np.ndarray, triangles: np.ndarray, pins: sp.csr_matrix):
        n = len(vertices)
        corner = np.concatenate([triangles[:, [0, 1, 2]], triangles[:, [1, 2, 0]], triangles[:, [2, 0, 1]]])
        key = np.sort(corner[:, :2], axis=1)
        edges, inverse = np.unique(key, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        # Each edge's neighbourhood: its far end and the opposite corners of its one or two triangles.
        opposite = np.full((len(edges), 2), -1, np.int64)
        order = np.argsort(inverse, kind="stable")
        first = np.r_[True, inverse[order][1:] != inverse[order][:-1]]
        opposite[inverse[order][first], 0] = corner[order][first, 2]
        opposite[inverse[order][~first], 1] = corner[order][~first, 2]
        i, j = edges[:, 0], edges[:, 1]
        neighbours = np.stack([j, opposite[:, 0], opposite[:, 1]], 1)
        present = neighbours >= 0
        neighbours = np.where(present, neighbours, i[:, None])
        relative = (vertices[neighbours] - vertices[i][:, None]) * present[..., None]
        total = (relative**2).sum((1, 2))
        edge = vertices[j] - vertices[i]
        a = (relative[..., 0] * edge[:, 0, None] + relative[..., 1] * edge[:, 1, None]) / total[:, None]
        b = (relative[..., 1] * edge[:, 0, None] - relative[..., 0] * edge[:, 1, None]) / total[:, None]
        a, b = a * present, b * present
        m = len(edges)
        rows_x, rows_y = np.arange(m), m + np.arange(m)
        xs, ys = neighbours, neighbours + n
        ix, iy = i, i + n
        entries = [
            (rows_x, j, 1.0), (rows_x, ix, -1.0), (rows_y, j + n, 1.0), (rows_y, iy, -1.0),
            (np.repeat(rows_x, 3), xs.ravel(), -a.ravel()), (np.repeat(rows_x, 3), ys.ravel(), -b.ravel()),
            (np.repeat(rows_x, 3), np.repeat(ix, 3), a.ravel()), (np.repeat(rows_x, 3), np.repeat(iy, 3), b.ravel()),
            (np.repeat(rows_y, 3), xs.ravel(), b.ravel()), (np.repeat(rows_y, 3), ys.ravel(), -a.ravel()),
            (np.repeat(rows_y, 3), np.repeat(ix, 3), -b.ravel()), (np.repeat(rows_y, 3), np.repeat(iy, 3), a.ravel()),
        ]
        rows = np.concatenate([np.broadcast_to(r, np.shape(c)) for r, c, _ in entries])
        columns = np.concatenate([np.asarray(c) for _, c, _ in entries])
        values = np.concatenate([np.broadcast_to(v, np.shape(c)) for _, c, v in entries])
        similar = sp.csr_matrix((values, (rows, columns)), shape=(2 * m, 2 * n))
        difference = sp.csr_matrix((np.r_[np.ones(m), -np.ones(m)], (np.r_[np.arange(m), np.arange(m)], np.r_[j, i])),
                                   shape=(m, n))
        weight = PIN_WEIGHT**2
        pins_xy = sp.block_diag([pins, pins], format="csr")
        self._step1 = splu((similar.T @ similar + weight * pins_xy.T @ pins_xy
                            + ANCHOR_WEIGHT * sp.identity(2 * n)).tocsc())
        self._step2 = splu((difference.T @ difference + weight * pins.T @ pins + ANCHOR_WEIGHT * sp.identity(n)).tocsc())
        self._pins, self._pins_xy, self._difference = pins, pins_xy, difference
        self._i, self._neighbours, self._present = i, neighbours, present
        self._relative, self._total, self._edge = relative, total, edge
        self._n = n

    def solve(self, pins: np.ndarray, anchors: np.ndarray) -> np.ndarray:
        """Vertices (N, 2) for handle targets ``pins`` (P, 2), each vertex weakly drawn to
        ``anchors`` (N, 2)."""
        n, weight = self._n, PIN_WEIGHT**2
        rhs = weight * (self._pins_xy.T @ np.r_[pins[:, 0], pins[:, 1]]) + ANCHOR_WEIGHT * np.r_[anchors[:, 0], anchors[:, 1]]
        free = self._step1.solve(rhs)
        free = np.stack([free[:n], free[n:]], 1)
        # Each neighbourhood's similarity in step 1's result, its scale dropped.
        moved = (free[self._neighbours] - free[self._i][:, None]) * self._present[..., None]
        rel = self._relative
        c = (rel[..., 0] * moved[..., 0] + rel[..., 1] * moved[..., 1]).sum(1) / self._total
        s = (rel[..., 1] * moved[..., 0] - rel[..., 0] * moved[..., 1]).sum(1) / self._total
        norm = np.maximum(np.hypot(c, s), 1e-12)
        c, s = c / norm, s / norm
        ex, ey = self._edge[:, 0], self._edge[:, 1]
        turned = np.stack([c * ex + s * ey, c * ey - s * ex], 1)
        rhs = self._difference.T @ turned + weight * (self._pins.T @ pins) + ANCHOR_WEIGHT * anchors
        return self._step2.solve(rhs)


def _similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``signgen.poses.warp``'s capped least-squares similarity (2 x 3), in the closed form
    that 2D allows (a tenth of the SVD's cost, and a frame fits one per part)."""
    source_mean, target_mean = source.mean(0), target.mean(0)
    s, t = source - source_mean, target - target_mean
    variance = float((s**2).sum())
    if len(source) < 2 or variance < 1e-9:
        return np.array([[1.0, 0.0, target_mean[0] - source_mean[0]], [0.0, 1.0, target_mean[1] - source_mean[1]]])
    along = float((s * t).sum())
    across = float((s[:, 0] * t[:, 1] - s[:, 1] * t[:, 0]).sum())
    length = np.hypot(along, across)
    cos, sin = (along / length, across / length) if length > 0 else (1.0, 0.0)
    scale = float(np.clip(length / variance, 1 / MAX_PART_SCALE, MAX_PART_SCALE))
    linear = scale * np.array([[cos, -sin], [sin, cos]])
    return np.hstack([linear, (target_mean - linear @ source_mean)[:, None]])


def _apply(transforms: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.einsum("nij,nj->ni", transforms[:, :, :2], points) + transforms[:, :, 2]


def _rasterise(target: np.ndarray, source: np.ndarray, triangles: np.ndarray, levels: np.ndarray, person: np.ndarray,
               map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Writes into ``map_x`` / ``map_y`` (float32 (H, W)) the photo position of every pixel
    centre that a triangle covers in its deformed place (``target`` vertices; ``source``
    the photo's), triangles of higher ``levels`` over lower ones; returns the covered pixels.
    A pixel whose photo position is off the ``person`` is left to what lies behind: the mesh
    is a little larger than the person, and its rim of background is not drawn."""
    height, width = person.shape
    covered = np.zeros((height, width), bool)
    corners, photo = target[triangles], source[triangles]
    a, d, e = corners[:, 0], corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    det = d[:, 0] * e[:, 1] - d[:, 1] * e[:, 0]
    keep = np.abs(det) > 1e-9
    order = np.argsort(levels[keep], kind="stable")
    corners, photo, levels = corners[keep][order], photo[keep][order], levels[keep][order]
    a, d, e, det = a[keep][order], d[keep][order], e[keep][order], det[keep][order]
    if not len(corners):
        return covered
    # Scanlines: each triangle's rows, each row's span between its long edge (top to bottom
    # corner) and one of its short ones. Every edge is walked from its upper end, so the two
    # triangles that share it find the same crossings and no pixel centre falls between them;
    # and never past its ends (a row let in by the tolerance must not extrapolate an edge that
    # is nearly level).
    eps = 1e-6
    by_height = np.argsort(corners[..., 1], axis=1, kind="stable")
    top, middle, bottom = (np.take_along_axis(corners, by_height[:, i, None, None], 1)[:, 0] for i in range(3))

    def edge(upper, lower):
        rise = lower[:, 1] - upper[:, 1]
        return [upper[:, 0], upper[:, 1], lower[:, 0] - upper[:, 0], np.divide(1.0, rise, out=np.zeros_like(rise), where=rise > 0)]

    edges = np.stack(edge(top, bottom) + edge(top, middle) + edge(middle, bottom), 1)
    y0 = np.maximum(np.ceil(top[:, 1] - eps), 0).astype(np.int64)
    y1 = np.minimum(np.floor(bottom[:, 1] + eps), height - 1).astype(np.int64)
    rows = np.maximum(y1 - y0 + 1, 0)
    tri = np.repeat(np.arange(len(corners)), rows)
    y = (y0[tri] + np.arange(len(tri)) - np.repeat(np.cumsum(rows) - rows, rows)).astype(np.float64)
    e_ = edges[tri].T
    along_long = e_[0] + np.clip((y - e_[1]) * e_[3], 0, 1) * e_[2]
    upper = e_[4] + np.clip((y - e_[5]) * e_[7], 0, 1) * e_[6]
    lower = e_[8] + np.clip((y - e_[9]) * e_[11], 0, 1) * e_[10]
    along_short = np.where(y < e_[9], upper, lower)
    left, right = np.minimum(along_long, along_short), np.maximum(along_long, along_short)
    x0 = np.maximum(np.ceil(left - eps), 0)
    x1 = np.minimum(np.floor(right + eps), width - 1)
    count = np.maximum(x1 - x0 + 1, 0).astype(np.int64)
    pixel_tri = np.repeat(tri, count)
    py = np.repeat(y, count).astype(np.int64)
    px = (np.repeat(x0, count) + np.arange(len(pixel_tri)) - np.repeat(np.cumsum(count) - count, count)).astype(np.int64)
    # Each triangle's affine map from the frame to the photo, through barycentric coordinates.
    inverse = 1.0 / det
    k1 = np.stack([e[:, 1], -e[:, 0], a[:, 1] * e[:, 0] - a[:, 0] * e[:, 1]], 1) * inverse[:, None]
    k2 = np.stack([-d[:, 1], d[:, 0], a[:, 0] * d[:, 1] - a[:, 1] * d[:, 0]], 1) * inverse[:, None]
    base = np.zeros((len(corners), 3, 2))
    base[:, 2] = photo[:, 0]
    affine = base + k1[:, :, None] * (photo[:, 1] - photo[:, 0])[:, None] + k2[:, :, None] * (photo[:, 2] - photo[:, 0])[:, None]
    c = affine.reshape(-1, 6)[pixel_tri].T
    sx = c[0] * px + c[2] * py + c[4]
    sy = c[1] * px + c[3] * py + c[5]
    on_person = person[np.round(sy).astype(np.int64).clip(0, height - 1), np.round(sx).astype(np.int64).clip(0, width - 1)]
    pixel_tri, px, py, sx, sy = pixel_tri[on_person], px[on_person], py[on_person], sx[on_person], sy[on_person]
    # Painted a level at a time, back to front: within one assignment NumPy does not promise
    # which of two writes to a pixel wins.
    pixel_level = levels[pixel_tri]
    bounds = np.flatnonzero(np.r_[True, pixel_level[1:] != pixel_level[:-1], True])
    for start, end in zip(bounds[:-1], bounds[1:]):
        ys, xs = py[start:end], px[start:end]
        map_x[ys, xs] = sx[start:end]
        map_y[ys, xs] = sy[start:end]
        covered[ys, xs] = True
    return covered


# Checks --------------------------------------------------------------------------------------


def _check_photo(photo) -> np.ndarray:
    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8 or min(photo.shape[:2]) < 2:
        raise SigngenError(f"the photo must be uint8 (H, W, 3), not {photo.dtype} {photo.shape}")
    return np.ascontiguousarray(photo)


def _check_pose(xy, confidence, which: str) -> tuple[np.ndarray, np.ndarray]:
    xy, confidence = np.asarray(xy, np.float64), np.asarray(confidence, np.float64)
    if xy.shape != (skeleton.NUM_POINTS, 2) or confidence.shape != (skeleton.NUM_POINTS,):
        raise SigngenError(f"expected {which} xy ({skeleton.NUM_POINTS}, 2) and confidence ({skeleton.NUM_POINTS},), "
                           f"got {xy.shape} and {confidence.shape}")
    if not np.isfinite(confidence).all():
        raise SigngenError(f"the {which} pose's confidences must be finite numbers")
    seen = confidence > 0
    if not np.isfinite(xy[seen]).all():
        raise SigngenError(f"the {which} pose has non-finite coordinates at points it marks as seen")
    return np.where(seen[:, None], xy, 0.0), seen
