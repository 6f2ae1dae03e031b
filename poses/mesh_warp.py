"""The coarse image from one connected mesh of the photo's person, bent by the pose's bones.

``signgen.poses.warp`` moves rigid parts, each by its own similarity: where an arm bends,
its upper arm and forearm come apart at the elbow (and the arm from the torso at the
shoulder). Here, as in AnimatedDrawings, the person is one triangle mesh deformed as rigidly
as possible (``signgen.poses.arap``) with the keypoints as pinned handles, so that a bent arm
stays in one piece.

The mesh: the person's mask (MediaPipe's selfie segmentation of the photo, kept near where
the photo's pose says the body is, the pose's thin skeleton added; the pose's part regions
alone when the segmenter finds nobody), a grid (finer on the hands) and its outline,
Delaunay-triangulated (``signgen.poses.mesh``). Each triangle belongs to one part
(``signgen.poses.mesh_parts``): the frontmost whose region holds it (fingers, palms,
forearms, upper arms, head, torso), else the nearest. Parts share vertices only where they
join (near the shoulder, elbow, wrist or knuckle; the head and the torso wherever they
touch), so an arm resting against the torso leaves it when raised instead of dragging a web
of torso along. A limb that a part before it hides in the photo (the hand raised before the
forearm) also gets the hidden stretch, drawn from its own visible pixels spread over it
(Telea), so it stays whole when that part moves away. That stretch is shown as it is, not
marked uncovered: the frame model redrawing it drew a dark smear that flickered (whole-frame
TDE +0.07 / +0.10 on SynthSign test / test_unseen, docs/results/2026-12-07-steady-limbs.md).

Per video (``MeshWarp``): the mask, the mesh, the handles and the two ARAP systems,
factorised once. Per frame (``MeshWarp.warp``): three sparse solves, the deformed triangles
rasterised into a per-pixel inverse map (one ``cv2.remap``), parts in depth order. Every
handle has a target in every frame (a point the target does not show follows its part's
similarity, or its parent's), so the factorisation never changes; parts the target does
not show are not drawn. Photo pixels of the person that no drawn triangle covers any more,
parts the target shows and the photo does not, and target bones the mesh does not reach
are marked ``uncovered`` and filled: off the target's torso from the photo with the person
filled in from around them (Telea, once per video, as ``signgen.poses.warp`` paints its
parts on), on it from the drawn surroundings (Telea, per frame). A hand that shows the
photo its other face, or that its handles would fold, is moved whole (mirrored where it
turned) and marked uncovered too. Warping a photo to its own pose gives the photo back.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import cv2
import numpy as np
import scipy.sparse as sp

from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.arap import Arap
from signgen.poses.mesh import attach, label_map, merge_islands, rasterise, snap, triangulate, weld
from signgen.poses.mesh_parts import (HAND_KINDS, LIMBS, RANKS, SHOULDERS, absent_parts, apply_transforms, body_parts,
                                      core_mask, draw_levels, handle_point, mirrored_similarity, part_transforms, pose_regions,
                                      shown, similarity, turned_hands)
from signgen.poses.warp import (HAND_MARGIN, HAND_POINTS, HIP_DROP, CoarseImage, hull_mask, shoulder_width, torso_mask,
                                with_wrists)

# In shoulder widths of the photo's pose.
MESH_SPACING = 1 / 16  # grid step on the body: about 5 px at 260 x 210
HAND_SPACING = 1 / 40  # ... on the hands, so that a finger is a strip of triangles of its own
TRUST_MARGIN = 0.25  # the segmenter is trusted this near the pose's part regions (a chair beside the signer is not the signer)
HOLE_AREA = 0.25**2  # holes in the mask smaller than this (squared) are filled
SEGMENT_THRESHOLD = 0.5
MIN_SEGMENTED = 0.3  # segmented share of the pose's own part regions below which the segmenter "found nobody"
MAX_FOLDED = 0.1  # share of a hand's mesh its handles may fold before the hand is moved whole
PIN_WEIGHT = 100.0  # per handle coordinate, against 1 per edge: nearly hard pins
ANCHOR_WEIGHT = 1e-5  # per vertex, towards its part's similarity: decides only what no handle reaches
# Shoulder widths around the cores of the target's parts (signgen.poses.mesh_parts.core_mask:
# bone lines, torso, face, palms) in which a pixel the person left is still not taken for
# background: a limb the mesh does not reach, or reaches narrower than drawn, is there.
BACKGROUND_CLEARANCE = 0.04

Segmenter = Callable[[np.ndarray], np.ndarray]


def selfie_segmenter() -> Segmenter:
    """MediaPipe's selfie segmentation (general model, offline, in the wheel) as a function
    from an RGB uint8 image to a person probability per pixel."""
    model = _mediapipe_selfie()

    def segment(image: np.ndarray) -> np.ndarray:
        mask = model.process(np.ascontiguousarray(image)).segmentation_mask
        return np.zeros(image.shape[:2], np.float32) if mask is None else np.asarray(mask, np.float32)

    return segment


@lru_cache(maxsize=1)
def _mediapipe_selfie():
    import mediapipe as mp

    return mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)


def person_mask(photo: np.ndarray, source_xy: np.ndarray, source_confidence: np.ndarray,
                segmenter: Segmenter | None = None) -> np.ndarray:
    """bool (H, W): the person in ``photo`` (uint8 (H, W, 3), posed as ``source_xy`` (178, 2)
    / ``source_confidence`` (178,)): the segmenter's person (MediaPipe's selfie segmentation
    by default) near the pose's part regions, with the pose's skeleton added; the part
    regions alone when the segmenter finds nobody."""
    photo = _check_photo(photo)
    xy, seen = with_wrists(*_check_pose(source_xy, source_confidence, "source"))
    return _person_mask(photo, xy, seen, shoulder_width(xy, seen, photo.shape[1]), segmenter)


class MeshWarp:
    """The mesh of one signer photo, set up once per video; :meth:`warp` per frame.

    ``photo`` uint8 (H, W, 3) posed as ``source_xy`` (178, 2) / ``source_confidence``
    (178,), in its pixels. ``mask`` bool (H, W): the person, where known; else
    :func:`person_mask` with ``segmenter`` (MediaPipe's by default)."""

    def __init__(self, photo: np.ndarray, source_xy: np.ndarray, source_confidence: np.ndarray, *,
                 mask: np.ndarray | None = None, segmenter: Segmenter | None = None):
        self.photo = _check_photo(photo)
        height, width = self.photo.shape[:2]
        self.source_xy, self.source_seen = with_wrists(*_check_pose(source_xy, source_confidence, "source"))
        self.unit = shoulder_width(self.source_xy, self.source_seen, width)
        if mask is None:
            mask = _person_mask(self.photo, self.source_xy, self.source_seen, self.unit, segmenter)
        mask = np.asarray(mask)
        if mask.shape != (height, width):
            raise SigngenError(f"the person mask must be {height} x {width} like the photo, not {mask.shape}")
        self.mask = mask.astype(bool)
        # The pixel around the person: their edge (a drawn outline, a border blended with the
        # background) that the mask leaves out, and a moved limb must not leave behind.
        self._rim = (cv2.dilate(self.mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~self.mask
        self.parts = body_parts(self.source_xy, self.source_seen, self.unit)
        self._absent = absent_parts(self.source_seen)
        self.vertices, self.triangles = np.zeros((0, 2)), np.zeros((0, 3), np.int64)
        self.labels = np.zeros(0, np.int64)  # per triangle: its part
        self.texture = np.zeros(0, np.int64)  # per triangle: 0 the photo, k > 0 a hidden limb's textures[k]
        self.textures = [self.photo]
        if self.parts and self.mask.any():
            self._build()
        self._atlas = np.concatenate([np.pad(texture, ((0, 2), (0, 0), (0, 0)), mode="edge") for texture in self.textures])
        around = cv2.dilate(self.mask.astype(np.uint8), np.ones((5, 5), np.uint8))  # and its rim of blended pixels
        self._background = cv2.inpaint(self.photo, around, 3, cv2.INPAINT_TELEA) if self.mask.any() else self.photo

    def _build(self) -> None:
        size, xy, seen, unit = self.mask.shape, self.source_xy, self.source_seen, self.unit
        regions = [part.shape(size, xy, seen) for part in self.parts]
        labels_of = label_map(regions, [RANKS[part.kind] for part in self.parts])
        hands = np.zeros(size, bool)
        for part, region in zip(self.parts, regions):
            hands |= (region > 0) & (part.kind in HAND_KINDS)
        points, triangles = triangulate(self.mask, hands, max(MESH_SPACING * unit, 2.0), max(HAND_SPACING * unit, 1.5))
        if not len(triangles):
            return
        middle = np.round(points[triangles].mean(1)).astype(int)
        middle = middle[:, 1].clip(0, size[0] - 1), middle[:, 0].clip(0, size[1] - 1)
        labels = merge_islands(triangles, labels_of[middle])
        copies, copy_labels, copy_textures = self._hidden_limbs(regions, labels_of, triangles, labels, middle)
        self.texture = np.concatenate([np.zeros(len(triangles), np.int64), copy_textures])
        triangles = np.concatenate([triangles, copies])
        labels = np.concatenate([labels, copy_labels]).astype(np.int64)
        joints = np.array([xy[p.joint] if p.joint is not None else [np.nan, np.nan] for p in self.parts])
        parents = np.array([-1 if p.parent is None else p.parent for p in self.parts])
        ranks = np.array([RANKS[p.kind] for p in self.parts])
        self.vertices, self.triangles, self._owner = weld(points, triangles, labels, parents, joints,
                                                          np.array([p.weld for p in self.parts]) * unit, ranks)
        self.labels = labels
        hand_of = np.array([part.side if part.kind in HAND_KINDS else None for part in self.parts], object)
        self._hand_vertices = {side: hand_of[self._owner] == side for side in HAND_POINTS}
        self._hand_triangles = {side: np.flatnonzero(hand_of[labels] == side) for side in HAND_POINTS}
        self._handles()

    def _hidden_limbs(self, regions, labels_of, triangles, labels, middle):
        """Copies of the triangles that hide a limb in the photo (the hand raised before the
        forearm, the forearm folded before the upper arm), for that limb's layer: without
        them, the limb has no pixels there and comes apart when the part before it moves
        away. They are drawn from a texture of the limb's own (its arm's visible pixels
        spread over the limb's region), shown as they are."""
        ranks = np.array([RANKS[part.kind] for part in self.parts])
        copies, copy_labels, textures = [np.zeros((0, 3), np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for p, part in enumerate(self.parts):
            if part.kind not in LIMBS:
                continue
            chosen = (regions[p] > 0)[middle] & (ranks[labels] > ranks[p])
            arm = [q for q, other in enumerate(self.parts) if other.side == part.side and other.kind in LIMBS]
            known = self.mask & np.isin(labels_of, arm)
            texture = _limb_texture(self.photo, known, regions[p] > 0, self.source_xy[part.fit]) if chosen.any() else None
            if texture is None:
                continue
            copies.append(triangles[chosen])
            copy_labels.append(np.full(int(chosen.sum()), p))
            textures.append(np.full(int(chosen.sum()), len(self.textures)))
            self.textures.append(texture)
        return np.concatenate(copies), np.concatenate(copy_labels), np.concatenate(textures)

    def _handles(self) -> None:
        """Each part's handles, placed in its own triangles (those outside them dropped), and
        the ARAP systems they pin."""
        found, rows = [], []
        for p, part in enumerate(self.parts):
            for k1, k2, f in part.handles:
                point = handle_point(self.source_xy, k1, k2, f)
                weights = attach(point, self.vertices, self.triangles, self.labels, p, MESH_SPACING * self.unit)
                if weights is not None:
                    found.append((p, k1, k2, f, *point))
                    rows.append(weights)
        found = np.array(found, np.float64).reshape(-1, 6)
        self._handle_part, self._handle_f = found[:, 0].astype(np.int64), found[:, 3]
        self._handle_k, self._handle_source = found[:, 1:3].astype(np.int64), found[:, 4:6]
        columns = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int64)
        values = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0)
        pins = sp.csr_matrix((values, (np.repeat(np.arange(len(rows)), 3), columns)), shape=(len(rows), len(self.vertices)))
        self._arap = Arap(self.vertices, self.triangles, pins, PIN_WEIGHT, ANCHOR_WEIGHT)

    def warp(self, target_xy: np.ndarray, target_confidence: np.ndarray, target_z: np.ndarray | None = None) -> CoarseImage:
        """The coarse image of the photo moved to the pose ``target_xy`` (178, 2) /
        ``target_confidence`` (178,) in the photo's pixel frame. ``target_z`` (178,), where the
        pose has depth (MediaPipe's: smaller is nearer), decides which arm is drawn before the
        other; without it, hands before forearms before upper arms of either side."""
        xy, seen = with_wrists(*_check_pose(target_xy, target_confidence, "target"))
        height, width = self.mask.shape
        map_x, map_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        texture = np.zeros((height, width), np.int64)
        fill = np.zeros((height, width), bool)  # for Telea: nothing to show there
        redraw = np.zeros((height, width), bool)  # shown, but not as the target has it
        model_draws = np.zeros((height, width), bool)  # never background: the target's part cores, grown
        if len(self.triangles):
            drawn_parts = shown(self.parts, seen)
            vertices, whole = self._solve(xy, seen)
            vertices = snap(vertices)
            drawn = drawn_parts[self.labels]
            levels = draw_levels(self.parts, seen, target_z)[self.labels[drawn]]
            covered, texture = rasterise(vertices, self.vertices, self.triangles[drawn], levels, self.texture[drawn],
                                         self.mask, map_x, map_y)
            # The photo's person where nothing covers it now (an arm moved away from the torso),
            # and a bone of the target the mesh does not reach (a limb the photo shows in part).
            bones = core_mask([part for part, show in zip(self.parts, drawn_parts) if show], (height, width), xy, seen, self.unit)
            beside = cv2.dilate(covered.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            fill = ((self.mask | (bones > 0)) & ~covered) | (self._rim & ~beside)
            clearance = max(1, round(BACKGROUND_CLEARANCE * self.unit))
            model_draws = cv2.dilate((bones > 0).astype(np.uint8), np.ones((2 * clearance + 1,) * 2, np.uint8)) > 0
            for side in whole:  # the photo's hand, but not as the target holds it
                redraw |= hull_mask((height, width), xy[HAND_POINTS[side]], HAND_MARGIN * self.unit) > 0
        for points, needed, region in self._absent:
            if seen[points].sum() >= needed:
                part = region((height, width), xy, seen, self.unit) > 0
                fill |= part
                model_draws |= part  # a part the photo lacks is drawn there
        # One remap from the photo and the hidden limbs' textures stacked (each with two rows
        # of its own bottom edge below it, so that sampling past the frame's bottom stays in it).
        map_y += texture.astype(np.float32) * (height + 2)
        image = cv2.remap(self._atlas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # Off the target's torso, what an arm leaves is background: the photo's own, the person
        # filled from around them (as signgen.poses.warp paints its parts on); on it, the
        # torso's surroundings fill it.
        body = torso_mask((height, width), xy, seen, self.unit) > 0 if seen[SHOULDERS].all() else np.zeros_like(fill)
        image[fill & ~body] = self._background[fill & ~body]
        if (fill & body).any():
            image = cv2.inpaint(image, (fill & body).astype(np.uint8), 3, cv2.INPAINT_TELEA)
        return CoarseImage(image=image, uncovered=fill | redraw, background=fill & ~body & ~model_draws & ~redraw)

    def _solve(self, xy: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """The deformed vertices, and the sides whose hand was moved whole. Each handle is
        pinned to its keypoints' target where the target shows them, else to its part's
        similarity of its photo place. A hand that shows its other face, or whose handles
        fold its mesh over itself (the target hand turned in depth, its fingers where no
        bending of the photo's puts them), is moved whole by a (mirrored) similarity instead:
        the photo has nothing better for it, and a folded hand is a scatter of skin."""
        transforms = part_transforms(self.parts, self.source_xy, self.source_seen, xy, seen)
        turned = turned_hands(self.source_xy, self.source_seen, xy, seen)
        k1, k2 = np.maximum(self._handle_k[:, 0], 0), np.maximum(self._handle_k[:, 1], 0)
        f = self._handle_f[:, None]
        in_turned = np.array([part.side in turned and part.kind in HAND_KINDS for part in self.parts])
        known = (self._handle_k[:, 0] >= 0) & seen[k1] & seen[k2] & ~in_turned[self._handle_part]
        moved = apply_transforms(transforms[self._handle_part], self._handle_source)
        pins = np.where(known[:, None], (1 - f) * xy[k1] + f * xy[k2], moved)
        vertices = self._arap.solve(pins, apply_transforms(transforms[self._owner], self.vertices))
        whole = []
        for side, hand in HAND_POINTS.items():
            vertex, triangle = self._hand_vertices[side], self._hand_triangles[side]
            if not (vertex.any() and seen[hand].all()):
                continue
            if side in turned or _folded(self.vertices, vertices, self.triangles[triangle]) > MAX_FOLDED:
                fit = (mirrored_similarity if side in turned else similarity)(self.source_xy[hand], xy[hand])
                vertices[vertex] = self.vertices[vertex] @ fit[:, :2].T + fit[:, 2]
                whole.append(side)
        return vertices, whole


def mesh_warp_to_pose(image: np.ndarray, source_xy: np.ndarray, source_confidence: np.ndarray, target_xy: np.ndarray,
                      target_confidence: np.ndarray, *, mask: np.ndarray | None = None,
                      segmenter: Segmenter | None = None) -> CoarseImage:
    """One frame of :class:`MeshWarp`, with ``signgen.poses.warp.warp_to_pose``'s arguments
    (a video sets the mesh up once instead)."""
    return MeshWarp(image, source_xy, source_confidence, mask=mask, segmenter=segmenter).warp(target_xy, target_confidence)


def _person_mask(photo: np.ndarray, xy: np.ndarray, seen: np.ndarray, unit: float, segmenter: Segmenter | None) -> np.ndarray:
    size = photo.shape[:2]
    regions = pose_regions(size, xy, seen, unit) > 0
    trusted = np.ones(size, bool)
    if regions.any():
        body = regions.astype(np.uint8)
        if seen[SHOULDERS].all():  # a signer the frame cuts continues down to its bottom
            corners = np.r_[xy[SHOULDERS], xy[SHOULDERS[::-1]] + [0.0, HIP_DROP * unit * 4]]
            body |= cv2.fillConvexPoly(np.zeros(size, np.uint8), np.round(corners).astype(np.int32), 1)
        radius = max(1, int(round(TRUST_MARGIN * unit)))
        trusted = cv2.dilate(body, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))) > 0
    probability = np.asarray((segmenter or selfie_segmenter())(photo))
    if probability.shape != size:
        raise SigngenError(f"the segmenter returned a {probability.shape} mask for a {size[0]} x {size[1]} photo")
    found = (probability > SEGMENT_THRESHOLD) & trusted
    if regions.any() and found.sum() < MIN_SEGMENTED * regions.sum():
        return regions
    core = core_mask(body_parts(xy, seen, unit), size, xy, seen, unit) > 0
    mask = _fill_small_holes(found | core, HOLE_AREA * unit**2)
    if core.any():  # specks the segmenter found away from the body
        count, components = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        keep = np.zeros(count, bool)
        keep[np.unique(components[core])] = True
        keep[0] = False
        mask = keep[components]
    return mask


def _fill_small_holes(mask: np.ndarray, area: float) -> np.ndarray:
    _, holes, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    height, width = mask.shape
    x, y, w, h = (stats[:, i] for i in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    enclosed = (x > 0) & (y > 0) & (x + w < width) & (y + h < height)  # the background touches the border
    return mask | ((stats[:, cv2.CC_STAT_AREA] < area) & enclosed)[holes]


def _folded(source: np.ndarray, target: np.ndarray, triangles: np.ndarray) -> float:
    """The share of the triangles' photo area that the deformation turns over or crushes to
    a tenth."""
    def area(points):
        corners = points[triangles]
        d, e = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
        return d[:, 0] * e[:, 1] - d[:, 1] * e[:, 0]

    before, after = area(source), area(target)
    bad = after / np.where(before == 0, 1, before) < 0.1
    return float(np.abs(before)[bad].sum() / max(np.abs(before).sum(), 1e-9))


def _limb_texture(photo: np.ndarray, known: np.ndarray, region: np.ndarray, bone: np.ndarray) -> np.ndarray | None:
    """The photo with ``region`` (a limb's, along ``bone`` (2, 2)) made up where it is not
    ``known`` (its arm's own pixels): a hidden forearm is sleeve, not the hand or the
    background around the hand that hid it. Each hidden pixel takes the arm's pixel a whole
    hidden stretch further along the bone (a sleeve's pattern repeats along it, and the
    copy stays sharp), the rest is filled from the arm's pixels alone (Telea, in the
    region's box). None where nothing is known."""
    ys, xs = np.nonzero(region)
    box = np.s_[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    if not known[box].any():
        return None
    texture = photo.copy()
    hidden = region & ~known
    ys, xs = np.nonzero(hidden)
    along = bone[1] - bone[0]
    along = along / max(float(np.linalg.norm(along)), 1e-9)
    t = (np.stack([xs, ys], 1) - bone[0]) @ along
    stretch = float(t.max() - t.min()) + 1 if len(t) else 0.0
    height, width = region.shape
    todo = np.ones(len(ys), bool)
    for times in (1, 2, 3):
        for sign in (1, -1):
            qx = np.round(xs + sign * times * stretch * along[0]).astype(int)
            qy = np.round(ys + sign * times * stretch * along[1]).astype(int)
            inside = (qx >= 0) & (qx < width) & (qy >= 0) & (qy < height)
            take = todo & inside
            take[take] = known[qy[take], qx[take]]
            texture[ys[take], xs[take]] = photo[qy[take], qx[take]]
            todo &= ~take
    if todo.any():
        rest = np.zeros_like(hidden)
        rest[ys[todo], xs[todo]] = True
        filled = cv2.inpaint(np.ascontiguousarray(photo[box]), (~known[box]).astype(np.uint8), 3, cv2.INPAINT_TELEA)
        texture[box][rest[box]] = filled[rest[box]]
    return texture


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
