"""The transformation flow between two frames and the condition maps, from exact correspondences.

Seed 004 figure 1(b) / the Liquid Warping GAN's flow composition: each reference pixel shows a
surface point (its face and barycentric coordinates in the reference render); the same point in
the source pose, projected by the source camera, is where the source image has that point's
colour. The original code takes this from a CUDA-only mesh renderer and never checks that the
point is visible in the source (a point on the back, hidden in a frontal source, samples the
front). Here a reference pixel is valid only when it is on the body and its point is the one the
source render shows at the projected pixel (same face, or within `DEPTH_TOLERANCE` of the
source's visible surface there); every other pixel gets the grid value `INVALID`, outside
[-1, 1], which grid_sample (zeros padding) turns into 0.

Grids follow torch's grid_sample with align_corners=False: (x, y) in [-1, 1], x along columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shapepose.render.correspondence import pixel_to_grid, project_weak, surface_points

INVALID = -2.0  # grid value of a pixel with no source colour
DEPTH_TOLERANCE = 0.02  # metres: a source point this close to the visible surface counts as seen


@dataclass(frozen=True)
class FrameGeometry:
    """One frame's posed mesh, camera and correspondence render.

    vertices: (V, 3) posed; faces: (F, 3); cam: [s, tx, ty]; face: (S, S) int64, -1 background;
    bary: (S, S, 3) float32."""

    vertices: np.ndarray
    faces: np.ndarray
    cam: np.ndarray
    face: np.ndarray
    bary: np.ndarray

    @property
    def size(self) -> int:
        return self.face.shape[0]

    @property
    def body(self) -> np.ndarray:
        """(S, S) bool: pixels on the body."""
        return self.face >= 0


def identity_grid(size: int) -> np.ndarray:
    """(S, S, 2) float64: every pixel's own centre in grid_sample coordinates."""
    cols, rows = np.meshgrid(np.arange(size), np.arange(size))
    return pixel_to_grid(np.stack([cols, rows], axis=-1), size)


def transformation_flow(source: FrameGeometry, reference: FrameGeometry
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Flow T from source to reference: (S, S, 2) float32 grid and (S, S) bool valid mask.

    grid_sample(source image, T) is the source's colours moved into the reference's pose.
    """
    if source.size != reference.size or len(source.vertices) != len(reference.vertices):
        raise ValueError("source and reference must share the image size and the mesh topology")
    size = reference.size
    body = reference.body
    # the reference pixels' surface points, in the source pose
    points = surface_points(source.vertices, reference.faces, reference.face, reference.bary)
    pixels = project_weak(points.reshape(-1, 3), source.cam, size).reshape(size, size, 2)
    col = np.rint(pixels[..., 0]).astype(np.int64)
    row = np.rint(pixels[..., 1]).astype(np.int64)
    inside = body & (col >= 0) & (col < size) & (row >= 0) & (row < size)
    c, r = np.clip(col, 0, size - 1), np.clip(row, 0, size - 1)
    seen_face = source.face[r, c]
    seen_points = surface_points(source.vertices, source.faces, source.face, source.bary)[r, c]
    same_face = seen_face == reference.face
    near = np.abs(seen_points[..., 2] - points[..., 2]) <= DEPTH_TOLERANCE
    valid = inside & (seen_face >= 0) & (same_face | near)
    grid = np.where(valid[..., None], pixel_to_grid(pixels, size), INVALID)
    return grid.astype(np.float32), valid


def condition_map(geometry: FrameGeometry, rest_vertices: np.ndarray,
                  rest_bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(4, S, S) float32: each pixel's rest-pose surface coordinates scaled to [-1, 1] by
    `rest_bounds` (low, high), 0 on the background, and the background flag (1 = background).

    Our body model has no UV part map; its rest-pose coordinates name a surface point just as
    SMPL's part / UV map does (the real path builds that from SMPL)."""
    rest = surface_points(rest_vertices, geometry.faces, geometry.face, geometry.bary)
    low, high = (np.asarray(b, dtype=np.float64) for b in rest_bounds)
    scaled = 2 * (rest - low) / (high - low) - 1
    body = geometry.body
    scaled[~body] = 0
    flag = (~body).astype(np.float64)[..., None]
    return np.concatenate([scaled, flag], axis=-1).transpose(2, 0, 1).astype(np.float32)
