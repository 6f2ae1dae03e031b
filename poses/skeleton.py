"""The 178-point reduced holistic set used inside signgen (as sign.mt and the SLRTP 2025
evaluator use it): 8 upper-body points, 128 face-contour points, 21 points per hand.

Index layout (fixed, every internal pose follows it):
body 0-7, face 8-135, left hand 136-156, right hand 157-177.
The face indices and edges are MediaPipe's FACEMESH_CONTOURS (a test checks them against
the installed mediapipe), hard-coded so that reading poses never imports mediapipe.
"""

from __future__ import annotations

from functools import lru_cache

BODY_POINTS = [
    "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW",
    "LEFT_WRIST", "RIGHT_WRIST", "LEFT_HIP", "RIGHT_HIP",
]
BODY_LIMBS = [(0, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7), (6, 7)]

FACE_CONTOUR_LANDMARKS = [0, 7, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78,
    80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146,
    148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 172, 173, 176, 178,
    181, 185, 191, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291,
    293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334, 336,
    338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387,
    388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466]

FACE_LIMBS = [(0, 70), (1, 57), (2, 98), (3, 88), (4, 90), (5, 89), (6, 14), (7, 1), (7, 66), (8, 0), (9, 8),
    (10, 9), (11, 13), (12, 19), (13, 12), (14, 33), (16, 38), (17, 43), (17, 63), (18, 34),
    (19, 15), (20, 35), (21, 36), (22, 18), (23, 32), (23, 64), (24, 25), (25, 26), (26, 3),
    (27, 5), (28, 4), (29, 61), (30, 62), (31, 65), (32, 29), (33, 21), (34, 20), (36, 2), (37,
    56), (38, 31), (40, 58), (41, 42), (42, 48), (43, 30), (44, 60), (45, 46), (46, 40), (47,
    44), (48, 49), (49, 50), (50, 39), (51, 59), (52, 51), (53, 52), (54, 53), (55, 54), (56,
    6), (57, 41), (58, 16), (59, 39), (60, 45), (61, 28), (62, 27), (63, 10), (64, 24), (65,
    37), (66, 55), (67, 118), (68, 117), (69, 67), (69, 127), (70, 71), (71, 72), (72, 124),
    (73, 75), (74, 81), (75, 74), (76, 68), (78, 119), (80, 96), (81, 77), (82, 97), (83, 95),
    (84, 80), (86, 125), (87, 86), (88, 87), (89, 123), (90, 122), (91, 94), (92, 105), (93,
    100), (94, 85), (95, 76), (96, 82), (98, 83), (99, 126), (100, 78), (102, 108), (103, 104),
    (104, 109), (105, 79), (106, 47), (107, 121), (108, 107), (109, 110), (110, 111), (111,
    101), (112, 120), (113, 112), (114, 113), (115, 114), (116, 115), (117, 99), (118, 103),
    (119, 102), (120, 101), (121, 106), (122, 91), (123, 92), (124, 79), (125, 85), (126, 93),
    (127, 116)]

HAND_LIMBS = [(0, 1), (0, 5), (0, 17), (1, 2), (2, 3), (3, 4), (5, 6), (5, 9), (6, 7), (7, 8), (9, 10), (9,
    13), (10, 11), (11, 12), (13, 14), (13, 17), (14, 15), (15, 16), (17, 18), (18, 19), (19,
    20)]

HAND_POINTS = ['WRIST', 'THUMB_CMC', 'THUMB_MCP', 'THUMB_IP', 'THUMB_TIP', 'INDEX_FINGER_MCP',
    'INDEX_FINGER_PIP', 'INDEX_FINGER_DIP', 'INDEX_FINGER_TIP', 'MIDDLE_FINGER_MCP',
    'MIDDLE_FINGER_PIP', 'MIDDLE_FINGER_DIP', 'MIDDLE_FINGER_TIP', 'RING_FINGER_MCP',
    'RING_FINGER_PIP', 'RING_FINGER_DIP', 'RING_FINGER_TIP', 'PINKY_MCP', 'PINKY_PIP',
    'PINKY_DIP', 'PINKY_TIP']

BODY = slice(0, 8)
FACE = slice(8, 136)
LEFT_HAND = slice(136, 157)
RIGHT_HAND = slice(157, 178)
NUM_POINTS = 178

# (component name in .pose files, point names, limbs within the component, slice)
COMPONENTS = [
    ("POSE_LANDMARKS", BODY_POINTS, BODY_LIMBS, BODY),
    ("FACE_LANDMARKS", [str(i) for i in FACE_CONTOUR_LANDMARKS], FACE_LIMBS, FACE),
    ("LEFT_HAND_LANDMARKS", HAND_POINTS, HAND_LIMBS, LEFT_HAND),
    ("RIGHT_HAND_LANDMARKS", HAND_POINTS, HAND_LIMBS, RIGHT_HAND),
]

LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST, LEFT_HIP, RIGHT_HIP = range(8)
SHOULDERS = (LEFT_SHOULDER, RIGHT_SHOULDER)


def point_names() -> list[str]:
    """Qualified names of the 178 points, e.g. ``RIGHT_HAND_LANDMARKS.THUMB_TIP``."""
    return [f"{name}.{point}" for name, points, _, _ in COMPONENTS for point in points]


def limbs() -> list[tuple[int, int]]:
    """All limbs as pairs of global indices into the 178 points."""
    return [(part.start + a, part.start + b) for _, _, part_limbs, part in COMPONENTS for a, b in part_limbs]


@lru_cache(maxsize=1)
def pose_header_components():
    """pose-format header components for the 178-point set, 2D with confidence."""
    from pose_format.pose_header import PoseHeaderComponent

    colors = {"POSE_LANDMARKS": (255, 0, 0), "FACE_LANDMARKS": (128, 128, 128),
              "LEFT_HAND_LANDMARKS": (0, 255, 0), "RIGHT_HAND_LANDMARKS": (0, 0, 255)}
    return tuple(
        PoseHeaderComponent(name=name, points=list(points), limbs=list(part_limbs),
                            colors=[colors[name]], point_format="XYC")
        for name, points, part_limbs, _ in COMPONENTS
    )
