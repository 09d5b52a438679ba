"""Points drawn uniformly by area on a triangle mesh, with the unit normals of their faces."""

from __future__ import annotations

import numpy as np


def sample_on_faces(
    vertices: np.ndarray, faces: np.ndarray, n_points: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n_points uniformly over the surface area: points (N, 3) float64 and their faces (N,).

    vertices: (V, 3) float, faces: (F, 3) int. Zero-area faces are never chosen. Rows come
    grouped by face: as a set they are N independent area-uniform draws, so take random rows, not
    a prefix.
    """
    triangles = np.asarray(vertices, dtype=np.float64)[np.asarray(faces, dtype=np.int64)]
    # Per face: a corner and the two edges leaving it, gathered once per point below.
    frames = np.stack([triangles[:, 0], triangles[:, 1] - triangles[:, 0],
                       triangles[:, 2] - triangles[:, 0]], axis=1)  # (F, 3, 3)
    doubled_area = np.linalg.norm(np.cross(frames[:, 1], frames[:, 2]), axis=1)
    total = doubled_area.sum()
    if not total > 0:
        raise ValueError("the mesh has no surface area to sample")
    # Points per face ~ Multinomial(N, area / total) is the same draw as N independent
    # area-weighted face choices, seen as a set, and costs O(F) instead of N binary searches.
    per_face = rng.multinomial(n_points, doubled_area / total)
    chosen = np.repeat(np.arange(len(per_face)), per_face)
    # sqrt of the first variate makes the barycentric draw uniform over the triangle's area:
    # p = corner + s (1 - t) edge1 + s t edge2 with s = sqrt(u).
    s = np.sqrt(rng.random(n_points))
    t = rng.random(n_points)
    coefficients = np.stack([np.ones(n_points), s * (1.0 - t), s * t], axis=1)  # (N, 3)
    points = np.einsum("nk,nkd->nd", coefficients, np.take(frames, chosen, axis=0))
    return points, chosen


def sample_surface_points(
    vertices: np.ndarray, faces: np.ndarray, n_points: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n_points uniformly over the surface area of the mesh, with their face normals.

    vertices: (V, 3) float, faces: (F, 3) int, outward oriented. Returns points (N, 3) float64 and
    normals (N, 3) float64, the unit normal of the face each point lies on; for the polyhedral
    surface these are its exact normals. See `sample_on_faces` for the draw.
    """
    points, chosen = sample_on_faces(vertices, faces, n_points, rng)
    triangles = np.asarray(vertices, dtype=np.float64)[np.asarray(faces, dtype=np.int64)[chosen]]
    cross = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    return points, cross / np.linalg.norm(cross, axis=1, keepdims=True)
