"""A triangle mesh of an image region in layers, and its drawing once deformed: the geometry
under ``signgen.poses.mesh_warp``, which knows nothing of bodies.

Each triangle belongs to one layer (a part). Triangles of one layer share their corners;
triangles of two layers share a corner only where the child layer joins its parent (within
a radius of their joint), so layers that merely touch in the image come apart when moved.
A deformed mesh is drawn as a per-pixel inverse map (each pixel centre's position in the
image), layer by layer from the back, for one ``cv2.remap``.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay

SNAP = 1024  # vertices lie on a grid of 1/SNAP pixel: see snap


def label_map(regions: list[np.ndarray], ranks: list[int]) -> np.ndarray:
    """int (H, W): for each pixel the index of the frontmost (highest rank) of ``regions``
    (uint8 (H, W) each) that holds it, else of the nearest."""
    distances = np.stack([cv2.distanceTransform((region == 0).astype(np.uint8), cv2.DIST_L2, 3) for region in regions])
    rank = np.array(ranks, np.float32)[:, None, None]
    # Inside a region: minus a thousand minus its rank, so the frontmost wins; outside: the distance.
    key = np.where(distances == 0, -1000.0 - rank, distances)
    return np.argmin(key, axis=0)


def triangulate(mask: np.ndarray, fine: np.ndarray, spacing: float, fine_spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 2) and triangles (T, 3) over ``mask`` (bool (H, W)): a grid of ``spacing``
    pixels (``fine_spacing`` on ``fine``) and the outline of the mask grown by a little,
    Delaunay-triangulated; kept are the triangles whose middle is on the grown mask and every
    triangle that holds a pixel centre of the mask, so that the mesh covers all of it."""
    grow = int(np.ceil(fine_spacing / 2)) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    region = cv2.dilate(mask.astype(np.uint8), kernel) > 0
    fine = fine & region
    height, width = mask.shape
    points = []
    for step, where in ((spacing, region & ~fine), (fine_spacing, fine)):
        ys, xs = np.meshgrid(np.arange(step / 2, height, step), np.arange(step / 2, width, step), indexing="ij")
        keep = where[np.round(ys).astype(int).clip(0, height - 1), np.round(xs).astype(int).clip(0, width - 1)]
        points.append(np.stack([xs[keep], ys[keep]], 1))
    # The outline continued a pixel past the frame's edges: a body the frame's bottom cuts is
    # meshed beyond it, so that the last row of pixels lies well inside the mesh.
    padded = np.pad(region, 1, mode="edge").astype(np.uint8)
    contours, _ = cv2.findContours(padded, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    step = max(1, int(round(fine_spacing)))
    points += [contour[::step, 0].astype(np.float64) - 1 for contour in contours]
    points = np.unique(snap(np.concatenate(points)), axis=0)
    if len(points) < 3:
        return points, np.zeros((0, 3), np.int64)
    delaunay = Delaunay(points)
    triangles = delaunay.simplices.astype(np.int64)
    corners = points[triangles]
    middle = np.round(corners.mean(1)).astype(int)
    keep = region[middle[:, 1].clip(0, height - 1), middle[:, 0].clip(0, width - 1)]
    # A triangle bridging a gap (between an arm and the torso) draws nothing there: only
    # image pixels of the mask are drawn.
    ys, xs = np.nonzero(mask)
    holding = delaunay.find_simplex(np.stack([xs, ys], 1).astype(np.float64))
    keep[holding[holding >= 0]] = True
    d1, d2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    keep &= np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]) > 1e-6
    return points, triangles[keep]


def merge_islands(triangles: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``labels`` with each layer's pieces other than its largest (triangles joined by an
    edge) given to the layer they border most: a scrap of a hand's region cut off by the
    forearm has no handles of its own and would be dragged about by whatever it touches."""
    corner = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    owner = np.tile(np.arange(len(triangles)), 3)
    _, edge = np.unique(np.sort(corner, axis=1), axis=0, return_inverse=True)
    order = np.argsort(edge.ravel(), kind="stable")
    shared = np.flatnonzero(edge.ravel()[order][1:] == edge.ravel()[order][:-1])
    a, b = owner[order][shared], owner[order][shared + 1]  # triangles that share an edge
    same = labels[a] == labels[b]
    graph = sp.csr_matrix((np.ones(int(same.sum())), (a[same], b[same])), shape=(len(triangles),) * 2)
    _, piece = connected_components(graph, directed=False)
    labels = labels.copy()
    sizes = np.bincount(piece)
    for layer in np.unique(labels):
        pieces = np.unique(piece[labels == layer])
        for scrap in pieces[pieces != pieces[np.argmax(sizes[pieces])]]:
            inside = piece == scrap
            border = np.r_[labels[b][inside[a] & ~same], labels[a][inside[b] & ~same]]
            if len(border):
                labels[inside] = np.bincount(border).argmax()
    return labels


def snap(points: np.ndarray) -> np.ndarray:
    """Points on a grid of 1/SNAP pixel. A deformed mesh is snapped too: a solver's rounding
    (1e-9) would otherwise tilt a level edge of the image's mesh, and the pixel centres
    along it would fall outside both triangles beside it."""
    return np.round(points * SNAP) / SNAP


def weld(points: np.ndarray, triangles: np.ndarray, labels: np.ndarray, parent: np.ndarray, joint: np.ndarray,
         radius: np.ndarray, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mesh with each point split into one vertex per group of layers that share it.
    Layer ``p``'s parent is ``parent[p]`` (-1: none); they share points within ``radius[p]``
    pixels of ``joint[p]`` (NaN: wherever they touch; radius 0: nowhere). Returns vertices (N, 2), triangles
    (T, 3) into them, and each vertex's layer (of the layers sharing it, the lowest rank)."""
    pairs, inverse = np.unique(np.stack([triangles.ravel(), np.repeat(labels, 3)], 1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    root = np.arange(len(pairs))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]])
    for start, end in zip(starts, np.r_[starts[1:], len(pairs)]):
        point = points[pairs[start, 0]]
        for i in range(start, end):
            for j in range(i + 1, end):
                a, b = int(pairs[i, 1]), int(pairs[j, 1])
                child = a if parent[a] == b else b if parent[b] == a else None
                if child is None:
                    continue
                if radius[child] > 0 and (np.isnan(joint[child]).any() or np.linalg.norm(point - joint[child]) <= radius[child]):
                    root[find(i)] = find(j)
    _, vertex_of_pair = np.unique([find(i) for i in range(len(pairs))], return_inverse=True)
    vertex_of_pair = vertex_of_pair.ravel()
    count = int(vertex_of_pair.max()) + 1 if len(pairs) else 0
    vertices = np.zeros((count, 2))
    vertices[vertex_of_pair] = points[pairs[:, 0]]
    owner = np.zeros(count, np.int64)
    order = np.argsort(-ranks[pairs[:, 1]], kind="stable")  # the lowest rank written last
    owner[vertex_of_pair[order]] = pairs[order, 1]
    return vertices, vertex_of_pair[inverse].reshape(-1, 3), owner


def attach(point: np.ndarray, vertices: np.ndarray, triangles: np.ndarray, labels: np.ndarray, layer: int,
           reach: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(vertex indices (3,), barycentric weights (3,)) of ``point`` in a triangle of ``layer``
    that holds it, else in its nearest triangle of ``layer`` within ``reach`` pixels (weights
    outside [0, 1]: the mesh still carries the point exactly); None where that layer's
    triangles are all farther. Only the layer's own triangles: a forearm's handle on the hand
    that hides it in the photo would drag the hand along the forearm."""
    chosen = np.flatnonzero(labels == layer)
    if not len(chosen):
        return None
    weights = barycentric(point, vertices[triangles[chosen]])
    inside = (weights >= -1e-9).all(1)
    if inside.any():
        t = int(np.argmax(inside))
        return triangles[chosen[t]], weights[t]
    distance = np.linalg.norm(vertices[triangles[chosen]].mean(1) - point, axis=1)
    t = int(np.argmin(distance))
    return (triangles[chosen[t]], weights[t]) if distance[t] <= reach else None


def barycentric(point: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """(T, 3) the barycentric coordinates of ``point`` (2,) in each triangle ``corners`` (T, 3, 2)."""
    a, d, e = corners[:, 0], corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    det = d[:, 0] * e[:, 1] - d[:, 1] * e[:, 0]
    r = point - a
    l1 = (r[:, 0] * e[:, 1] - r[:, 1] * e[:, 0]) / det
    l2 = (d[:, 0] * r[:, 1] - d[:, 1] * r[:, 0]) / det
    return np.stack([1 - l1 - l2, l1, l2], 1)


def rasterise(target: np.ndarray, source: np.ndarray, triangles: np.ndarray, levels: np.ndarray, flags: np.ndarray,
              person: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Writes into ``map_x`` / ``map_y`` (float32 (H, W)) the image position of every pixel
    centre a triangle covers in its deformed place (``target`` vertices; ``source`` the
    image's), triangles of higher ``levels`` over lower ones. A pixel whose image position is
    off ``person`` is left to what lies behind: the mesh is a little larger than the person,
    and its rim is not drawn. Returns the covered pixels, and each pixel's frontmost
    triangle's ``flags`` (int; 0 where none)."""
    height, width = person.shape
    covered = np.zeros((height, width), bool)
    flagged = np.zeros((height, width), np.int64)
    corners = target[triangles]
    a, d, e = corners[:, 0], corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    det = d[:, 0] * e[:, 1] - d[:, 1] * e[:, 0]
    keep = np.flatnonzero(np.abs(det) > 1e-9)
    keep = keep[np.argsort(levels[keep], kind="stable")]
    if not len(keep):
        return covered, flagged
    tri, px, py = _scanlines(corners[keep], height, width)
    # Each triangle's affine map from the frame to the image, through barycentric coordinates.
    a, d, e, photo = a[keep], d[keep], e[keep], source[triangles[keep]]
    inverse = 1.0 / det[keep]
    k1 = np.stack([e[:, 1], -e[:, 0], a[:, 1] * e[:, 0] - a[:, 0] * e[:, 1]], 1) * inverse[:, None]
    k2 = np.stack([-d[:, 1], d[:, 0], a[:, 0] * d[:, 1] - a[:, 1] * d[:, 0]], 1) * inverse[:, None]
    affine = k1[:, :, None] * (photo[:, 1] - photo[:, 0])[:, None] + k2[:, :, None] * (photo[:, 2] - photo[:, 0])[:, None]
    affine[:, 2] += photo[:, 0]
    c = affine.reshape(-1, 6)[tri].T
    sx, sy = c[0] * px + c[2] * py + c[4], c[1] * px + c[3] * py + c[5]
    on_person = person[np.round(sy).astype(np.int64).clip(0, height - 1), np.round(sx).astype(np.int64).clip(0, width - 1)]
    tri, px, py, sx, sy = tri[on_person], px[on_person], py[on_person], sx[on_person], sy[on_person]
    # Painted a level at a time, back to front: within one assignment NumPy does not promise
    # which of two writes to a pixel wins.
    pixel_level, pixel_flag = levels[keep][tri], flags[keep][tri]
    bounds = np.flatnonzero(np.r_[True, pixel_level[1:] != pixel_level[:-1], True])
    for start, end in zip(bounds[:-1], bounds[1:]):
        ys, xs = py[start:end], px[start:end]
        map_x[ys, xs], map_y[ys, xs] = sx[start:end], sy[start:end]
        covered[ys, xs] = True
        flagged[ys, xs] = pixel_flag[start:end]
    return covered, flagged


def _scanlines(corners: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pixel centre inside each triangle (``corners`` (T, 3, 2)), in triangle order:
    (triangle, x, y). A triangle's rows run between its long edge (top to bottom corner) and
    one of its short ones; each edge is walked from its upper end, so the two triangles that
    share it find the same crossings and no pixel centre on it falls between them, and never
    past its ends, so a row let in by the tolerance does not extrapolate a nearly level edge."""
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
    e = edges[tri].T
    along_long = e[0] + np.clip((y - e[1]) * e[3], 0, 1) * e[2]
    upper = e[4] + np.clip((y - e[5]) * e[7], 0, 1) * e[6]
    lower = e[8] + np.clip((y - e[9]) * e[11], 0, 1) * e[10]
    along_short = np.where(y < e[9], upper, lower)
    x0 = np.maximum(np.ceil(np.minimum(along_long, along_short) - eps), 0)
    x1 = np.minimum(np.floor(np.maximum(along_long, along_short) + eps), width - 1)
    count = np.maximum(x1 - x0 + 1, 0).astype(np.int64)
    pixel_tri = np.repeat(tri, count)
    px = (np.repeat(x0, count) + np.arange(len(pixel_tri)) - np.repeat(np.cumsum(count) - count, count)).astype(np.int64)
    return pixel_tri, px, np.repeat(y, count).astype(np.int64)
