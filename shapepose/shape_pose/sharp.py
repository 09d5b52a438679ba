"""Sharp silhouettes of predicted point clouds, for the pixel disagreement of seed 002 section 6.3.

The thesis rendered each predicted cloud from its predicted pose with DPC's Blender point
renderer (a small sphere per point) and compared the result with the real segmentation by XOR.
Here every point is a sphere of world radius `radius`, drawn as the filled disk of pixel radius
S f radius / z around its pinhole projection (DPC camera: shapepose.images.dpc), which
is that sphere's image up to the small perspective stretch of spheres off the optical axis.
The disagreement itself is `shapepose.images.rgba.mask_disagreement(..., relative_to="reference")`.
"""

from __future__ import annotations

import numpy as np

from shapepose.images.dpc import CAMERA_DISTANCE, FOCAL_LENGTH
from shapepose.geometry import matrix_from_quaternion

# Points closer to the camera plane than this (in camera z) are not drawn: their disks would
# cover the whole image, and points behind the camera are not seen at all.
NEAR = 1e-3


def project(points: np.ndarray, quat: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 3) seen from pose quat (4,): (pixel (column, row) (N, 2), camera depth z (N,))."""
    cam = np.asarray(points, dtype=np.float64).reshape(-1, 3) @ matrix_from_quaternion(quat).T
    cam[:, 2] += CAMERA_DISTANCE
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        pixel = (size - 1) / 2 + size * FOCAL_LENGTH * cam[:, :2] / z[:, None]
    return pixel, z


def sharp_mask(points: np.ndarray, quat: np.ndarray, size: int, radius: float) -> np.ndarray:
    """(size, size) bool silhouette of points (N, 3) as spheres of world radius `radius`.

    A pixel is set when its centre lies in some point's disk. Points are grouped by the half
    width of their disk's bounding box, and each group is drawn at once over that box.
    """
    pixel, z = project(points, quat, size)
    seen = z > NEAR
    pixel, z = pixel[seen], z[seen]
    r_px = size * FOCAL_LENGTH * radius / z
    # a disk that lies entirely off the image draws nothing
    on = ((pixel + r_px[:, None] >= -0.5) & (pixel - r_px[:, None] <= size - 0.5)).all(axis=1)
    pixel, r_px = pixel[on], r_px[on]
    mask = np.zeros((size, size), dtype=bool)
    half = np.minimum(np.ceil(r_px).astype(np.int64), size)
    for k in np.unique(half):
        group = half == k
        _draw_disks(mask, pixel[group], r_px[group], int(k))
    return mask


def _draw_disks(mask: np.ndarray, centres: np.ndarray, r_px: np.ndarray, half: int) -> None:
    """Set the pixels of `mask` whose centres are within r_px (n,) of centres (n, 2) (col, row).

    half bounds every disk's radius, so each disk lies in the (2 half + 1)^2 pixels around the
    pixel nearest its centre.
    """
    size = mask.shape[0]
    offsets = np.arange(-half, half + 1)
    col = np.rint(centres[:, 0]).astype(np.int64)[:, None, None] + offsets[None, None, :]
    row = np.rint(centres[:, 1]).astype(np.int64)[:, None, None] + offsets[None, :, None]
    inside = ((col - centres[:, 0, None, None]) ** 2 + (row - centres[:, 1, None, None]) ** 2
              <= r_px[:, None, None] ** 2)
    inside &= (col >= 0) & (col < size) & (row >= 0) & (row < size)
    rows, cols = np.broadcast_arrays(row, col)
    mask[rows[inside], cols[inside]] = True

