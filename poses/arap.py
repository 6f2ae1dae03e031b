"""As-rigid-as-possible deformation of a 2D triangle mesh by pinned handles.

Igarashi and Igarashi (2009), "Implementing as-rigid-as-possible shape manipulation and
surface flattening", as AnimatedDrawings uses it: step 1 finds the vertices whose every edge
is its neighbourhood's best similarity of the mesh's own edge (rotation and scale free),
step 2 the vertices whose edges are the mesh's edges turned by step 1's rotations (rotation
free, length kept). Both are linear least squares whose matrices depend on the mesh and the
handles' places in it only, so each is factorised once (sparse LU) and a deformation costs
three sparse solves. Each vertex is also drawn, weakly, to an anchor: what no handle reaches
(a piece of the mesh without handles) still has a place, and the matrices stay regular.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu


class Arap:
    """``vertices`` (N, 2), ``triangles`` (T, 3); ``pins`` (P, N) sparse: each row a handle
    as a combination of vertices (barycentric weights in a triangle)."""

    def __init__(self, vertices: np.ndarray, triangles: np.ndarray, pins: sp.csr_matrix, pin_weight: float,
                 anchor_weight: float):
        n = len(vertices)
        i, j, neighbours, present = _edge_neighbourhoods(triangles)
        # Step 1's similarity of each edge's neighbourhood, linear in the moved vertices:
        # c = sum(a_k dx_k + ...), with a_k, b_k from the mesh's own neighbourhood.
        relative = (vertices[neighbours] - vertices[i][:, None]) * present[..., None]
        total = (relative**2).sum((1, 2))
        edge = vertices[j] - vertices[i]
        a = (relative[..., 0] * edge[:, 0, None] + relative[..., 1] * edge[:, 1, None]) / total[:, None] * present
        b = (relative[..., 1] * edge[:, 0, None] - relative[..., 0] * edge[:, 1, None]) / total[:, None] * present
        m = len(edge)
        rows_x, rows_y = np.repeat(np.arange(m), 3), m + np.repeat(np.arange(m), 3)
        xs, ys, ix, iy = neighbours.ravel(), neighbours.ravel() + n, np.repeat(i, 3), np.repeat(i, 3) + n
        a, b = a.ravel(), b.ravel()
        # Residual x: (x_j - x_i) - sum(a_k (x_k - x_i) + b_k (y_k - y_i)); residual y:
        # (y_j - y_i) - sum(-b_k (x_k - x_i) + a_k (y_k - y_i)).
        rows = np.concatenate([np.arange(m), np.arange(m), m + np.arange(m), m + np.arange(m),
                               rows_x, rows_x, rows_x, rows_x, rows_y, rows_y, rows_y, rows_y])
        columns = np.concatenate([j, i, j + n, i + n, xs, ys, ix, iy, xs, ys, ix, iy])
        values = np.concatenate([np.ones(m), -np.ones(m), np.ones(m), -np.ones(m), -a, -b, a, b, b, -a, -b, a])
        similar = sp.csr_matrix((values, (rows, columns)), shape=(2 * m, 2 * n))
        difference = sp.csr_matrix((np.r_[np.ones(m), -np.ones(m)], (np.r_[np.arange(m), np.arange(m)], np.r_[j, i])),
                                   shape=(m, n))
        pins_xy = sp.block_diag([pins, pins], format="csr")
        weight = pin_weight**2
        self._step1 = splu((similar.T @ similar + weight * pins_xy.T @ pins_xy + anchor_weight * sp.identity(2 * n)).tocsc())
        self._step2 = splu((difference.T @ difference + weight * pins.T @ pins + anchor_weight * sp.identity(n)).tocsc())
        self._pins, self._pins_xy, self._difference = pins, pins_xy, difference
        self._weight, self._anchor_weight = weight, anchor_weight
        self._i, self._neighbours, self._present = i, neighbours, present
        self._relative, self._total, self._edge = relative, total, edge

    def solve(self, pins: np.ndarray, anchors: np.ndarray) -> np.ndarray:
        """The vertices (N, 2) that put the handles nearest ``pins`` (P, 2), each vertex drawn
        weakly to its ``anchors`` (N, 2)."""
        n = len(anchors)
        rhs = self._weight * (self._pins_xy.T @ np.r_[pins[:, 0], pins[:, 1]]) + self._anchor_weight * np.r_[anchors[:, 0], anchors[:, 1]]
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
        rhs = self._difference.T @ turned + self._weight * (self._pins.T @ pins) + self._anchor_weight * anchors
        return self._step2.solve(rhs)


def _edge_neighbourhoods(triangles: np.ndarray):
    """The mesh's edges (i, j), each with its neighbourhood: its far end and the opposite
    corners of its one or two triangles, (E, 3) padded with i where there is no second
    triangle (``present`` False there)."""
    corner = np.concatenate([triangles[:, [0, 1, 2]], triangles[:, [1, 2, 0]], triangles[:, [2, 0, 1]]])
    edges, inverse = np.unique(np.sort(corner[:, :2], axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    opposite = np.full((len(edges), 2), -1, np.int64)
    order = np.argsort(inverse, kind="stable")
    first = np.r_[True, inverse[order][1:] != inverse[order][:-1]]
    opposite[inverse[order][first], 0] = corner[order][first, 2]
    opposite[inverse[order][~first], 1] = corner[order][~first, 2]
    i, j = edges[:, 0], edges[:, 1]
    neighbours = np.stack([j, opposite[:, 0], opposite[:, 1]], 1)
    present = neighbours >= 0
    return i, j, np.where(present, neighbours, i[:, None]), present
