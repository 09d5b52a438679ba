"""Inside/outside test for points against a closed triangle mesh: the generalized winding number.

Which test, and why
-------------------
A point is inside when the generalized winding number w of the mesh around it exceeds 1/2.
Bodies posed by linear blend skinning self-intersect where limbs overlap: there w = 2, while a
ray-parity test (trimesh's `mesh.contains`, the occupancy-networks `check_mesh_contains`) counts
an even number of crossings and calls the overlap outside. The winding number also degrades
gracefully at tiny cracks (it moves continuously across a hole instead of flipping), and the
answer does not depend on a ray direction.

How it is computed
------------------
For a closed, consistently (outward) oriented mesh, w is an integer and equals the signed number
of surface crossings along any ray from the point to infinity: +1 for each face the ray leaves
through (d . n > 0), -1 for each it enters. We count those crossings with Embree (through
embreex, the ray engine trimesh already uses) along a fixed direction and along its opposite. The
two half-rays form one line, on which the signed crossings must sum to zero, so the two counts must
agree. Where they do not -- a ray grazed an edge, two faces lay closer along the ray than our step
past a hit, or the line threads a crack in an open mesh -- we try a second line, and if that fails
too the point gets the exact generalized winding number (a sum of solid angles over all faces).

Measured on one core, demo body frame (13.5k faces), the 100k stratified points of `volume.py`
(half of them near the surface): libigl `fast_winding_number` 0.17 s, trimesh `contains` (ray
parity, Embree) 0.11 s, `WindingNumber` with half-lines to infinity 0.08 s. The volume sampler,
which casts lines only for points near the surface and only to the nearest surface-free cell,
draws and labels all 100k in 0.05 s. All agree with the exact winding number on every point.
"""

from __future__ import annotations

import igl
import numpy as np
from embreex import rtcore_scene
from embreex.mesh_construction import TriangleMesh

INSIDE_TEST = ("generalized winding number > 0.5; computed as signed Embree ray crossings along "
               "both halves of a line, which must agree, else the exact sum of solid angles")

# Generic directions, not parallel to the axis-aligned faces of test solids; a point whose line
# fails along one is tried along the next.
LINE_DIRECTIONS = tuple(
    d / np.linalg.norm(d) for d in (np.array([0.4395064455, 0.617598629942, 0.652231566745]),
                                    np.array([-0.5810232, 0.2764751, 0.7654219]))
)


_SMALL_BATCH = 1 << 17  # points x faces below which numpy beats libigl's fixed ~10 ms per call


def solid_angle_sum(triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Winding numbers (Q,) float64 of triangles (F, 3, 3) at points (Q, 3), summed exactly.

    Each triangle subtends the solid angle 2 atan2(a . (b x c), |a||b||c| + (a . b)|c| +
    (b . c)|a| + (c . a)|b|) with a, b, c its corners relative to the point (Van Oosterom and
    Strackee, 1983); the winding number is their sum over 4 pi.
    """
    a, b, c = (triangles[None, :, corner] - points[:, None] for corner in range(3))  # (Q, F, 3)
    la, lb, lc = (np.linalg.norm(v, axis=2) for v in (a, b, c))
    det = np.einsum("qfi,qfi->qf", a, np.cross(b, c))
    dot_ab = np.einsum("qfi,qfi->qf", a, b)
    dot_bc = np.einsum("qfi,qfi->qf", b, c)
    dot_ca = np.einsum("qfi,qfi->qf", c, a)
    angles = np.arctan2(det, la * lb * lc + dot_ab * lc + dot_bc * la + dot_ca * lb)
    return angles.sum(axis=1) / (2.0 * np.pi)


class WindingNumber:
    """Winding numbers of one triangle mesh, from Embree ray crossings with an exact fallback.

    vertices: (V, 3) float, faces: (F, 3) int, faces oriented outward (counter-clockwise seen from
    outside). Build one per mesh and query it many times: the Embree scene is built once.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        self.vertices = np.ascontiguousarray(vertices, dtype=np.float64)
        self.faces = np.ascontiguousarray(faces, dtype=np.int64)
        lower, upper = self.vertices.min(axis=0), self.vertices.max(axis=0)
        # Embree works in float32; centring the mesh keeps its coordinates small, so the float32
        # rounding of ray origins stays far below the step we take past each hit.
        self._shift = 0.5 * (lower + upper)
        self._step = np.float32(1e-5 * (float(np.linalg.norm(upper - lower)) or 1.0))
        centred = (self.vertices - self._shift).astype(np.float32)
        corners = centred[self.faces]
        self._normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        # Embree's fast (not watertight) triangle test may lose or double a ray through a shared
        # edge, a few per million rays; the two halves of a line then disagree and we retry.
        self._scene = rtcore_scene.EmbreeScene()
        TriangleMesh(scene=self._scene, vertices=centred, indices=self.faces.astype(np.int32))

    def crossings(
        self, origins: np.ndarray, directions: np.ndarray, t_max: np.ndarray | None = None,
        max_hits: int = 256,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Signed face crossings of the segments origins + t * directions, 0 < t < t_max.

        origins: (Q, 3) float; directions: (3,) or (Q, 3) unit vectors; t_max: (Q,) float, inf for
        a half-ray (the default). Returns counts (Q,) int32 (+1 per face left through, -1 per face
        entered) and reliable (Q,) bool: False where a ray met the face it had just stepped past,
        grazed a face edge-on or hit more than `max_hits` faces, so its count cannot be trusted.
        """
        n = len(origins)
        counts = np.zeros(n, dtype=np.int32)
        reliable = np.ones(n, dtype=bool)
        remaining = np.asarray(np.inf if t_max is None else t_max, dtype=np.float32)
        remaining = np.broadcast_to(remaining, (n,))
        ray = np.flatnonzero(remaining > 0)
        origin = (np.asarray(origins, dtype=np.float64)[ray] - self._shift).astype(np.float32)
        direction = np.broadcast_to(np.asarray(directions, dtype=np.float32), (n, 3))[ray]
        remaining = remaining[ray]
        last_face = np.full(len(ray), -1, dtype=np.int64)
        for _ in range(max_hits):
            if ray.size == 0:
                return counts, reliable
            # Embree writes each hit distance into `dists`, so it gets a copy.
            hit = self._scene.run(origin, direction, dists=remaining.copy(), output=1)
            face = hit["primID"].astype(np.int64)
            got = face != -1
            ray, origin, direction, remaining, last_face, face, t = (
                x[got] for x in (ray, origin, direction, remaining, last_face, face, hit["tfar"]))
            side = np.sign(np.einsum("ij,ij->i", self._normals[face], direction)).astype(np.int32)
            # Meeting the face just stepped past, or a face edge-on, leaves the count in doubt;
            # the caller then tries another line.
            bad = (face == last_face) | (side == 0)
            if bad.any():
                reliable[ray[bad]] = False
                good = ~bad
                ray, origin, direction, remaining, face, t, side = (
                    x[good] for x in (ray, origin, direction, remaining, face, t, side))
            counts[ray] += side
            advance = t + self._step
            origin += advance[:, None] * direction
            remaining -= advance
            more = remaining > 0
            ray, origin, direction, remaining, last_face = (
                x[more] for x in (ray, origin, direction, remaining, face))
        reliable[ray] = False
        return counts, reliable

    def exact(self, points: np.ndarray) -> np.ndarray:
        """Exact generalized winding number (sum of solid angles): points (Q, 3) -> (Q,) float64."""
        points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
        if len(points) * len(self.faces) <= _SMALL_BATCH:
            # libigl spends ~10 ms per call before its first point; a few points are cheaper here.
            return solid_angle_sum(self.vertices[self.faces], points)
        return igl.winding_number(self.vertices, self.faces, points)

    def line_winding(
        self, points: np.ndarray, directions: np.ndarray,
        t_after: np.ndarray | None = None, w_after: np.ndarray | int = 0,
        t_before: np.ndarray | None = None, w_before: np.ndarray | int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Winding numbers from both halves of the lines through points (Q, 3) along directions.

        Each half runs to a point of known winding number, w_after at points + t_after * d and
        w_before at points - t_before * d (default: infinity, winding 0), and gives
        w(p) = w_ref + crossings. Returns winding (Q,) int32 and agreed (Q,) bool, False where
        the halves disagree or either count is unreliable.
        """
        directions = np.asarray(directions, dtype=np.float64)
        after, ok_after = self.crossings(points, directions, t_after)
        before, ok_before = self.crossings(points, -directions, t_before)
        after += np.asarray(w_after, dtype=np.int32)
        before += np.asarray(w_before, dtype=np.int32)
        return after, ok_after & ok_before & (after == before)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Winding numbers at points (Q, 3) -> (Q,) float64.

        Lines along LINE_DIRECTIONS in turn; points on which no line agrees get the exact value.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        winding = np.zeros(len(points))
        todo = np.arange(len(points))
        for direction in LINE_DIRECTIONS:
            if todo.size == 0:
                return winding
            values, agreed = self.line_winding(points[todo], direction)
            winding[todo[agreed]] = values[agreed]
            todo = todo[~agreed]
        winding[todo] = self.exact(points[todo])
        return winding

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Inside labels for points (Q, 3) -> (Q,) bool: winding number > 0.5."""
        return self(points) > 0.5


def inside_mesh(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Inside labels (Q,) bool for points (Q, 3) against the mesh (V, 3), (F, 3): w > 0.5."""
    return WindingNumber(vertices, faces).contains(points)
