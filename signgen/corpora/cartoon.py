"""A cartoon signer drawn from 178-point poses: the picture side of SynthSign.

Every part is drawn where the pose says, so that the pose is exact ground truth for the
frames: a shirt polygon between shoulders and hips, arms as thick capsules along
shoulder-elbow-wrist, a head ellipse fitted to MediaPipe's face oval, hair, eyes, eyebrows
and lips from the face-contour points, and hands with fingers along the 21-point hand
limbs. Draw order: background, torso, head, arms, hands (hands always on top, so that a
hand near the face is never hidden).

An :class:`Identity` is what tells signers apart: skin tone, hair colour and style,
garment colour and pattern (solid, stripes, checks, dots, printed letters), eye colour,
background. The garment pattern is a texture anchored to the shoulder centre, so it moves
with the body rather than staying put in the frame.

Drawing is OpenCV at 1/16 pixel precision with anti-aliasing, in the pixel convention of
MediaPipe and ``signgen.poses.raster`` (pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``).
Sizes scale with the sequence's median shoulder width, so one signer keeps one build
through a video.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from signgen.corpora.identity import Color, Identity, mix, shade
from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.transform import shoulder_reference

# MediaPipe face-mesh indices of the closed contours and paths drawn, in drawing order
# along each contour (all of them are among the 128 face-contour points).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
# Lower edge outer to inner, then upper edge inner to outer: one closed brow shape.
LEFT_BROW = (276, 283, 282, 295, 285, 336, 296, 334, 293, 300)
RIGHT_BROW = (46, 53, 52, 65, 55, 107, 66, 105, 63, 70)
OUTER_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
INNER_LIPS = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
UPPER_LIP_TOP = 0

# Hand drawing: the palm is the hull of the wrist and the finger bases, each finger (the
# thumb from its base joint) a chain.
PALM = (0, 5, 9, 13, 17)
FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))

# Proportions, in shoulder widths.
UPPER_ARM_WIDTH = 0.26
FOREARM_WIDTH = 0.17
FINGER_WIDTH = 0.055
NECK_WIDTH = 0.30
HIP_DROP = 1.5  # where hips are assumed when the pose has none: this far below the shoulders
FOREARM_LENGTH = 0.9  # of the upper arm, for an arm whose wrist and hand are both missing

_SHIFT = 4
_SCALE = 1 << _SHIFT
_AA = cv2.LINE_AA
_COORD_LIMIT = 1 << 14


def _face_index(mediapipe_indices: tuple[int, ...]) -> np.ndarray:
    position = {landmark: skeleton.FACE.start + i for i, landmark in enumerate(skeleton.FACE_CONTOUR_LANDMARKS)}
    return np.array([position[i] for i in mediapipe_indices])


_OVAL, _LEFT_EYE, _RIGHT_EYE = _face_index(FACE_OVAL), _face_index(LEFT_EYE), _face_index(RIGHT_EYE)
_LEFT_BROW, _RIGHT_BROW = _face_index(LEFT_BROW), _face_index(RIGHT_BROW)
_OUTER_LIPS, _INNER_LIPS = _face_index(OUTER_LIPS), _face_index(INNER_LIPS)
_LIP_TOP = _face_index((UPPER_LIP_TOP,))[0]
_L_SHOULDER, _R_SHOULDER = skeleton.LEFT_SHOULDER, skeleton.RIGHT_SHOULDER
_L_ELBOW, _R_ELBOW = skeleton.LEFT_ELBOW, skeleton.RIGHT_ELBOW
_L_WRIST, _R_WRIST = skeleton.LEFT_WRIST, skeleton.RIGHT_WRIST
_L_HIP, _R_HIP = skeleton.LEFT_HIP, skeleton.RIGHT_HIP


class CartoonRenderer:
    """Draws one identity at one frame size; reuse it for every video of that signer."""

    def __init__(self, identity: Identity, frame_size: tuple[int, int] = (210, 260)):
        self.identity = identity
        self.width, self.height = (int(v) for v in frame_size)
        if self.width <= 0 or self.height <= 0:
            raise SigngenError(f"frame size must be positive, got {frame_size}")
        self._background = np.empty((self.height, self.width, 3), np.uint8)
        self._background[:] = identity.background
        # Twice the frame in each direction: the garment texture can follow the body
        # anywhere in the frame without running out.
        self._texture = garment_texture(identity, (2 * self.height, 2 * self.width))
        self._sleeve_texture = (self._texture.astype(np.float32) * 0.85).round().astype(np.uint8)
        self._mask = np.zeros((self.height, self.width), np.uint8)
        self._outline = shade(identity.garment, 0.55)
        self._skin_outline = shade(identity.skin, 0.72)
        self._lips = mix(identity.skin, (170, 40, 60), 0.45)
        self._brows = shade(identity.hair, 0.8)
        self._hair_outline = shade(identity.hair, 0.7)

    def render(self, xy: np.ndarray, confidence: np.ndarray,
               hand_colors: tuple[Color, Color] | None = None) -> np.ndarray:
        """Frames uint8 RGB (T, H, W, 3) of keypoints ``xy`` (T, 178, 2) in this
        renderer's pixel frame, ``confidence`` (T, 178) (0 = missing, not drawn).

        ``hand_colors`` (left, right) draws each hand, outline included, in one flat colour
        instead of the skin tone: a test can then find every hand pixel exactly.
        """
        xy = np.asarray(xy, dtype=np.float64)
        confidence = np.asarray(confidence, dtype=np.float64)
        if xy.ndim != 3 or xy.shape[1:] != (skeleton.NUM_POINTS, 2) or confidence.shape != xy.shape[:2]:
            raise SigngenError(f"expected xy (T, {skeleton.NUM_POINTS}, 2) and confidence (T, {skeleton.NUM_POINTS}), "
                               f"got {xy.shape} and {confidence.shape}")
        present = (confidence > 0) & np.isfinite(xy).all(axis=-1)
        # Far-off points (MediaPipe guesses some well outside the frame) are pulled in to
        # where cv2's fixed-point coordinates cannot overflow; they stay outside the frame.
        xy = np.clip(np.where(present[..., None], xy, 0.0), -_COORD_LIMIT, _COORD_LIMIT)
        try:
            _, shoulder_width = shoulder_reference(xy, present.astype(np.float32))
        except SigngenError:
            shoulder_width = 0.4 * self.width  # no shoulders anywhere: PHOENIX-like proportions
        sizes = _Sizes(shoulder_width)
        frames = np.empty((len(xy), self.height, self.width, 3), np.uint8)
        for index in range(len(xy)):
            frames[index] = self._background
            self._draw_frame(frames[index], xy[index], present[index], sizes, hand_colors)
        return frames

    # -- one frame ---------------------------------------------------------------------

    def _draw_frame(self, canvas: np.ndarray, xy: np.ndarray, present: np.ndarray, sizes: "_Sizes",
                    hand_colors: tuple[Color, Color] | None) -> None:
        body = _Body.of(xy, present, sizes)
        if body is not None:
            self._draw_torso(canvas, body, sizes)
        head = _Head.of(xy, present, body, sizes)
        if head is not None:
            self._draw_head(canvas, head, xy, present, body, sizes)
        if body is not None:
            self._draw_arms(canvas, body, xy, present, sizes)
        left_color, right_color = hand_colors if hand_colors is not None else (None, None)
        for hand, color in ((skeleton.LEFT_HAND, left_color), (skeleton.RIGHT_HAND, right_color)):
            self._draw_hand(canvas, xy[hand], present[hand], sizes, color)

    def _draw_torso(self, canvas: np.ndarray, body: "_Body", sizes: "_Sizes") -> None:
        shirt = body.shirt_polygon(sizes)
        mask = self._mask
        mask[:] = 0
        cv2.fillPoly(mask, [_fixed(shirt)], 255, _AA, _SHIFT)
        for shoulder in (body.left_shoulder, body.right_shoulder):
            cv2.circle(mask, _fixed(shoulder), int(round(sizes.upper_arm / 2 * _SCALE)), 255, -1, _AA, _SHIFT)
        self._composite(canvas, mask, self._texture, body.center)
        cv2.polylines(canvas, [_fixed(shirt)], True, self._outline, 1, _AA, _SHIFT)

    def _draw_head(self, canvas: np.ndarray, head: "_Head", xy: np.ndarray, present: np.ndarray,
                   body: "_Body | None", sizes: "_Sizes") -> None:
        identity = self.identity
        if identity.hair_style == "long":
            cv2.fillPoly(canvas, [_fixed(head.long_hair())], identity.hair, _AA, _SHIFT)
        cv2.fillPoly(canvas, [_fixed(head.outline(1.08, 1.1, lift=0.06))], identity.hair, _AA, _SHIFT)
        if identity.hair_style == "bun":
            cv2.fillPoly(canvas, [_fixed(head.bun())], identity.hair, _AA, _SHIFT)
        if body is not None:
            neck = body.neck_polygon(head, sizes)
            cv2.fillPoly(canvas, [_fixed(neck)], shade(identity.skin, 0.92), _AA, _SHIFT)
            cv2.polylines(canvas, [_fixed(neck[2:5])], False, self._outline, 1, _AA, _SHIFT)
        outline = head.outline()
        cv2.fillPoly(canvas, [_fixed(outline)], identity.skin, _AA, _SHIFT)
        cv2.polylines(canvas, [_fixed(outline)], True, self._skin_outline, 1, _AA, _SHIFT)
        cap = head.fringe()
        cv2.fillPoly(canvas, [_fixed(cap)], identity.hair, _AA, _SHIFT)
        cv2.polylines(canvas, [_fixed(cap)], True, self._hair_outline, 1, _AA, _SHIFT)
        if head.has_face:
            self._draw_face(canvas, xy, present, sizes)

    def _draw_face(self, canvas: np.ndarray, xy: np.ndarray, present: np.ndarray, sizes: "_Sizes") -> None:
        dark = (35, 25, 25)
        for eye in (_LEFT_EYE, _RIGHT_EYE):
            if not present[eye].all():
                continue
            contour = xy[eye]
            cv2.fillPoly(canvas, [_fixed(contour)], (250, 250, 250), _AA, _SHIFT)
            center = contour.mean(axis=0)
            opening = np.ptp(contour[:, 1])
            iris = max(0.8, min(0.6 * opening, 0.2 * np.ptp(contour[:, 0])))
            cv2.circle(canvas, _fixed(center), int(round(iris * _SCALE)), self.identity.eyes, -1, _AA, _SHIFT)
            cv2.circle(canvas, _fixed(center), int(round(iris * 0.45 * _SCALE)), dark, -1, _AA, _SHIFT)
            cv2.polylines(canvas, [_fixed(contour)], True, dark, 1, _AA, _SHIFT)
        for brow in (_LEFT_BROW, _RIGHT_BROW):
            if present[brow].all():
                cv2.fillPoly(canvas, [_fixed(xy[brow])], self._brows, _AA, _SHIFT)
        if present[_OUTER_LIPS].all():
            eyes = [xy[eye].mean(axis=0) for eye in (_LEFT_EYE, _RIGHT_EYE) if present[eye].all()]
            if eyes:
                # A nose: a short stroke 60 % of the way from between the eyes to the lips.
                nose = np.mean(eyes, axis=0) + 0.6 * (xy[_LIP_TOP] - np.mean(eyes, axis=0))
                half = np.array([0.05 * sizes.shoulder_width, 0.0])
                cv2.line(canvas, _fixed(nose - half), _fixed(nose + half), self._skin_outline, 1, _AA, _SHIFT)
            cv2.fillPoly(canvas, [_fixed(xy[_OUTER_LIPS])], self._lips, _AA, _SHIFT)
            if present[_INNER_LIPS].all():
                cv2.fillPoly(canvas, [_fixed(xy[_INNER_LIPS])], (70, 20, 30), _AA, _SHIFT)

    def _draw_arms(self, canvas: np.ndarray, body: "_Body", xy: np.ndarray, present: np.ndarray,
                   sizes: "_Sizes") -> None:
        segments = body.arm_segments(xy, present, sizes)
        if not segments:
            return
        mask = self._mask
        mask[:] = 0
        for start, end, width in segments:
            # Outline first, straight onto the frame: the sleeve is composited inside it.
            cv2.line(canvas, _fixed(start), _fixed(end), self._outline, int(round(width)) + 2, _AA, _SHIFT)
        for start, end, width in segments:
            cv2.line(mask, _fixed(start), _fixed(end), 255, int(round(width)), _AA, _SHIFT)
        self._composite(canvas, mask, self._sleeve_texture, body.center)

    def _draw_hand(self, canvas: np.ndarray, points: np.ndarray, present: np.ndarray, sizes: "_Sizes",
                   color: Color | None) -> None:
        if not present.any():
            return
        fill = self.identity.skin if color is None else color
        outline = self._skin_outline if color is None else color
        width = sizes.finger
        palm = [i for i in PALM if present[i]]
        if len(palm) >= 3:
            hull = cv2.convexHull(_fixed(points[palm]))
            cv2.fillPoly(canvas, [hull], fill, _AA, _SHIFT)
            cv2.polylines(canvas, [hull], True, outline, 1, _AA, _SHIFT)
        if present[0]:
            # The wrist rounded like a finger joint: the hand reaches as far past every
            # keypoint as a finger's stroke does.
            wrist = [_fixed(points[[0, 0]])]
            cv2.polylines(canvas, wrist, False, outline, width + 2, _AA, _SHIFT)
            cv2.polylines(canvas, wrist, False, fill, width, _AA, _SHIFT)
        for finger in FINGERS:
            # Each finger outlined then filled before the next, so that crossing fingers
            # stay apart.
            segments = [(a, b) for a, b in zip(finger[:-1], finger[1:]) if present[a] and present[b]]
            if not segments:
                continue
            lines = [_fixed(points[[a, b]]) for a, b in segments]
            cv2.polylines(canvas, lines, False, outline, width + 2, _AA, _SHIFT)
            cv2.polylines(canvas, lines, False, fill, width, _AA, _SHIFT)

    def _composite(self, canvas: np.ndarray, mask: np.ndarray, texture: np.ndarray, anchor: np.ndarray) -> None:
        """Blend ``texture`` into ``canvas`` where ``mask`` is set, the texture's centre
        held at ``anchor`` (the shoulder centre) so that the pattern moves with the body."""
        left, top, width, height = cv2.boundingRect(mask)
        if width == 0:
            return
        offset_x = int(np.clip(round(self.width - anchor[0]), 0, self.width))
        offset_y = int(np.clip(round(self.height - anchor[1]), 0, self.height))
        patch = texture[top + offset_y:top + height + offset_y, left + offset_x:left + width + offset_x]
        alpha = mask[top:top + height, left:left + width].astype(np.float32) * (1 / 255)
        region = canvas[top:top + height, left:left + width]
        region[:] = cv2.blendLinear(patch, region, alpha, 1 - alpha)


class _Sizes:
    """Part sizes in pixels for one sequence."""

    def __init__(self, shoulder_width: float):
        self.shoulder_width = shoulder_width
        self.upper_arm = max(2.0, UPPER_ARM_WIDTH * shoulder_width)
        self.forearm = max(2.0, FOREARM_WIDTH * shoulder_width)
        self.finger = max(1, int(round(FINGER_WIDTH * shoulder_width)))
        self.neck = NECK_WIDTH * shoulder_width


@dataclass
class _Body:
    left_shoulder: np.ndarray
    right_shoulder: np.ndarray
    left_hip: np.ndarray
    right_hip: np.ndarray
    center: np.ndarray
    across: np.ndarray  # unit vector from the right shoulder to the left (image right)
    down: np.ndarray  # unit vector from the shoulders towards the hips

    @classmethod
    def of(cls, xy: np.ndarray, present: np.ndarray, sizes: _Sizes) -> "_Body | None":
        if not (present[_L_SHOULDER] and present[_R_SHOULDER]):
            return None
        left, right = xy[_L_SHOULDER], xy[_R_SHOULDER]
        center = (left + right) / 2
        across = left - right
        length = float(np.linalg.norm(across))
        across = across / length if length > 1e-6 else np.array([1.0, 0.0])
        down = np.array([-across[1], across[0]])
        if down[1] < 0:
            down = -down
        drop = HIP_DROP * sizes.shoulder_width * down
        hips = []
        for hip, shoulder in ((_L_HIP, left), (_R_HIP, right)):
            hips.append(xy[hip] if present[hip] else shoulder + drop - 0.1 * (shoulder - center))
        return cls(left, right, hips[0], hips[1], center, across, down)

    def shirt_polygon(self, sizes: _Sizes) -> np.ndarray:
        s = sizes.shoulder_width
        a, d, c = self.across, self.down, self.center
        return np.array([
            self.right_shoulder - 0.1 * s * a + 0.05 * s * d,
            self.right_shoulder - 0.1 * s * d,
            c - 0.17 * s * a - 0.12 * s * d,
            c + 0.17 * s * a - 0.12 * s * d,
            self.left_shoulder - 0.1 * s * d,
            self.left_shoulder + 0.1 * s * a + 0.05 * s * d,
            self.left_hip + 0.12 * s * a,
            self.right_hip - 0.12 * s * a,
        ])

    def neck_polygon(self, head: "_Head", sizes: _Sizes) -> np.ndarray:
        """The neck from under the chin down to a V-neck collar."""
        a, d, c = self.across, self.down, self.center
        half = sizes.neck / 2
        chin = head.center + 0.6 * head.half_height * d
        return np.array([chin - half * a, chin + half * a, c + half * a - 0.12 * sizes.shoulder_width * d,
                         c + 0.16 * sizes.shoulder_width * d, c - half * a - 0.12 * sizes.shoulder_width * d])

    def arm_segments(self, xy: np.ndarray, present: np.ndarray, sizes: _Sizes) -> list[tuple[np.ndarray, np.ndarray, float]]:
        segments = []
        for shoulder, elbow, wrist, hand in ((_L_SHOULDER, _L_ELBOW, _L_WRIST, skeleton.LEFT_HAND),
                                             (_R_SHOULDER, _R_ELBOW, _R_WRIST, skeleton.RIGHT_HAND)):
            if not present[elbow]:
                continue
            segments.append((xy[shoulder], xy[elbow], sizes.upper_arm))
            if present[hand.start]:  # the hand's own wrist point sits where the hand is drawn
                end = xy[hand.start]
            elif present[wrist]:
                end = xy[wrist]
            else:  # no wrist, no hand: the forearm hangs on along the upper arm
                end = xy[elbow] + FOREARM_LENGTH * (xy[elbow] - xy[shoulder])
            segments.append((xy[elbow], end, sizes.forearm))
        return segments


@dataclass
class _Head:
    center: np.ndarray
    half_width: float
    half_height: float
    angle: float  # radians, the roll of the head in the image
    has_face: bool

    @classmethod
    def of(cls, xy: np.ndarray, present: np.ndarray, body: _Body | None, sizes: _Sizes) -> "_Head | None":
        if present[_OVAL].sum() >= 5:
            (cx, cy), (w, h), degrees = cv2.fitEllipse(xy[_OVAL][present[_OVAL]].astype(np.float32))
            # cv2 names the first axis "width" whatever its direction: turn the ellipse so
            # that its first axis is the more horizontal one.
            if degrees > 135:
                degrees -= 180
            elif degrees > 45:
                w, h, degrees = h, w, degrees - 90
            return cls(np.array([cx, cy]), w / 2, h / 2, np.deg2rad(degrees), True)
        if body is None:
            return None
        # No face seen: a plain head above the shoulders.
        s = sizes.shoulder_width
        center = body.center - 0.95 * s * body.down
        return cls(center, 0.34 * s, 0.45 * s, float(np.arctan2(body.across[1], body.across[0])), False)

    def _to_image(self, local: np.ndarray) -> np.ndarray:
        """Head-local coordinates (x along the head's width, y down its height) to pixels."""
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        return self.center + local @ np.array([[cos, sin], [-sin, cos]])

    def _points(self, start: float, end: float, scale_x: float = 1.0, scale_y: float = 1.0,
                lift: float = 0.0, count: int = 32) -> np.ndarray:
        t = np.linspace(start, end, count)
        return self._to_image(np.stack([scale_x * self.half_width * np.cos(t),
                                        scale_y * self.half_height * np.sin(t) - lift * self.half_height], axis=1))

    def outline(self, scale_x: float = 1.0, scale_y: float = 1.0, lift: float = 0.0) -> np.ndarray:
        return self._points(0, 2 * np.pi, scale_x, scale_y, lift, count=48)[:-1]

    def fringe(self) -> np.ndarray:
        """The hair over the top of the head: the upper half of a flatter ellipse."""
        return self._points(np.pi, 2 * np.pi, 1.04, 0.62, lift=0.42, count=24)

    def long_hair(self) -> np.ndarray:
        """Hair falling past the chin on both sides, behind the head."""
        top = self._points(np.pi, 2 * np.pi, 1.12, 1.12, lift=0.06, count=24)
        bottom = self._to_image(np.array([[1.15 * self.half_width, 1.45 * self.half_height],
                                          [-1.15 * self.half_width, 1.45 * self.half_height]]))
        return np.concatenate([top, bottom])

    def bun(self) -> np.ndarray:
        top = self._points(1.5 * np.pi, 1.5 * np.pi, 1.0, 1.15, lift=0.06, count=1)[0]
        t = np.linspace(0, 2 * np.pi, 20)[:-1]
        radius = 0.38 * self.half_width
        return top + radius * np.stack([np.cos(t), np.sin(t)], axis=1)


def _fixed(points: np.ndarray) -> np.ndarray | tuple[int, int]:
    """Pixel coordinates to OpenCV's fixed point (cv2 puts integer coordinates at pixel
    centres, half a pixel in from our pixel corners). One point becomes a tuple.
    Coordinates are bounded beforehand (``_COORD_LIMIT``), so the shift cannot overflow."""
    fixed = np.rint((np.asarray(points, dtype=np.float64) - 0.5) * _SCALE).astype(np.int32)
    return (int(fixed[0]), int(fixed[1])) if fixed.ndim == 1 else fixed


def garment_texture(identity: Identity, size: tuple[int, int]) -> np.ndarray:
    """The garment's fabric, uint8 RGB (H, W, 3) of ``size`` (H, W)."""
    height, width = size
    texture = np.empty((height, width, 3), np.uint8)
    texture[:] = identity.garment
    period = identity.pattern_scale
    accent = identity.garment_accent
    y, x = np.mgrid[:height, :width]
    if identity.pattern == "stripes":
        texture[(y % period) < max(1, period // 3)] = accent
    elif identity.pattern == "checks":
        texture[((y // period) + (x // period)) % 2 == 1] = mix(identity.garment, accent, 0.6)
    elif identity.pattern == "dots":
        radius = max(1, period // 4)
        for row, top in enumerate(range(period // 2, height + period, period)):
            for left in range((period // 2) * (row % 2), width + period, period):
                cv2.circle(texture, (left, top), radius, accent, -1, _AA)
    elif identity.pattern == "letters":
        font_scale = period / 22
        thickness = max(1, period // 9)
        (text_width, text_height), _ = cv2.getTextSize(identity.pattern_text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        step_x, step_y = text_width + period, text_height + period
        for row, baseline in enumerate(range(text_height, height + step_y, step_y)):
            for left in range(-(step_x // 2) * (row % 2), width, step_x):
                cv2.putText(texture, identity.pattern_text, (left, baseline), cv2.FONT_HERSHEY_SIMPLEX,
                            font_scale, accent, thickness, _AA)
    return texture

