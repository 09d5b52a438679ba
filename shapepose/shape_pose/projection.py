"""The differentiable point-cloud projection of seed 002 section 2.4.0.2 (DPC), in torch.

A point cloud seen from a pose becomes a silhouette (and a depth image) through four steps:

1. Camera: cam = R(q) p + (0, 0, d); pinhole u = f x / z, v = f y / z (f in image widths, so the
   image spans u, v in [-0.5, 0.5]: `shapepose.images.dpc.project_points`' camera).
2. Occupancy grid: each point is spread trilinearly over the 8 cells around its position in a
   (D, G, G) grid of (depth, row, column); column = (G - 1) / 2 + G u, and depth cells cover
   z - d in [-depth_range, depth_range]. Sums are clipped to [0, 1], then blurred by a separable
   Gaussian of `sigma` cells: each point becomes a Gaussian density, as DPC's fast path does.
   An optional per-shape factor scales occupancies (DPC's learned occupancy scaling).
3. Ray termination: along each ray (one per pixel, front to back) the ray stops at cell k with
   probability r_k = o_k prod_{u<k} (1 - o_u), and runs out with prod_u (1 - o_u).
   Products are sums of logs (occupancies clipped to [1e-5, 1 - 1e-5], DPC's `drc_logsum`).
4. Images: silhouette = sum_k r_k (signal 1 in every cell, 0 beyond the grid), depth =
   sum_k r_k z_k + r_beyond * max_depth.

Every step is differentiable in the points, the pose and the scale. It runs in fp32 (a training
step calls it outside autocast): splatting sums many small trilinear weights and the ray products
are sums of logs. Its constants are made on the points' device, not copied from the host: a copy
would make the host wait for the device in every training step.
"""

from __future__ import annotations

import math

import torch

from shapepose.images.dpc import CAMERA_DISTANCE, FOCAL_LENGTH
from shapepose.geometry.quaternions import rotate

LOG_CLIP = 1e-5


def gaussian_kernel(sigma: float, size: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(size,) normalized 1-D Gaussian of standard deviation `sigma` cells (size odd)."""
    if size % 2 != 1:
        raise ValueError(f"kernel size must be odd, got {size}")
    x = torch.arange(size, dtype=dtype, device=device) - size // 2
    k = torch.exp(-x * x / (2.0 * sigma * sigma))
    return k / k.sum()


def banded_kernel(sigma: float, size: int, n: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(n, n) symmetric matrix M with M[i, j] = kernel[j - i + size // 2]: x @ M convolves x."""
    k = gaussian_kernel(sigma, size, dtype, device)
    index = torch.arange(n, device=device)
    offset = index[None, :] - index[:, None] + size // 2
    inside = (offset >= 0) & (offset < size)
    zero = torch.zeros((), dtype=dtype, device=device)
    return torch.where(inside, k[offset.clamp(0, size - 1)], zero)


class Projector:
    """Renders batches of point clouds from quaternion poses on a fixed (D, G, G) grid."""

    def __init__(self, grid: int, depth: int | None = None, *, focal_length: float = FOCAL_LENGTH,
                 distance: float = CAMERA_DISTANCE, depth_range: float = math.sqrt(3) / 2,
                 kernel_size: int = 9, max_depth: float = 10.0):
        self.grid, self.depth = int(grid), int(depth or grid)
        self.focal_length, self.distance = float(focal_length), float(distance)
        self.depth_range, self.kernel_size, self.max_depth = float(depth_range), int(kernel_size), float(max_depth)

    def to_camera(self, points: torch.Tensor, quats: torch.Tensor) -> torch.Tensor:
        """(R, N, 3) points and (R, 4) poses -> (R, N, 3) camera coordinates."""
        cam = rotate(quats, points)
        return torch.cat([cam[..., :2], cam[..., 2:] + self.distance], dim=-1)

    def grid_coordinates(self, cam: torch.Tensor) -> torch.Tensor:
        """(R, N, 3) camera coordinates -> continuous (depth, row, column) cell indices."""
        z = cam[..., 2]
        G, D = self.grid, self.depth
        column = (G - 1) / 2 + G * self.focal_length * cam[..., 0] / z
        row = (G - 1) / 2 + G * self.focal_length * cam[..., 1] / z
        depth = (z - self.distance + self.depth_range) * (D / (2 * self.depth_range)) - 0.5
        return torch.stack([depth, row, column], dim=-1)

    def splat(self, coords: torch.Tensor) -> torch.Tensor:
        """Trilinear splatting of (R, N, 3) cell indices -> (R, D, G, G) summed weights.

        Corners outside the grid get no weight (DPC drops points outside the grid).
        """
        R, _N, _ = coords.shape
        D, G = self.depth, self.grid
        base = torch.floor(coords.detach())
        frac = coords - base
        base = base.long()
        # the 8 corners at once: (R, N, 8) cell indices and weights, one index_add; corner i is
        # the (depth, row, column) offset (i // 4, i // 2 % 2, i % 2)
        bits = torch.arange(8, device=coords.device)
        corner = torch.stack([bits // 4, bits // 2 % 2, bits % 2], dim=1)
        cells = base[..., None, :] + corner  # (R, N, 8, 3)
        weights = torch.where(corner.bool(), frac[..., None, :], 1 - frac[..., None, :]).prod(dim=-1)
        size = torch.where(torch.arange(3, device=coords.device) == 0, D, G)  # (D, G, G)
        inside = ((cells >= 0) & (cells < size)).all(dim=-1)
        cells = torch.minimum(cells.clamp_min(0), size - 1)
        index = (cells[..., 0] * G + cells[..., 1]) * G + cells[..., 2]
        index = index + torch.arange(R, device=coords.device)[:, None, None] * (D * G * G)
        out = coords.new_zeros(R * D * G * G).index_add(0, index.reshape(-1),
                                                        (weights * inside).reshape(-1))
        return out.view(R, D, G, G)

    def blur(self, volume: torch.Tensor, sigma: float) -> torch.Tensor:
        """(R, D, G, G) -> the same, convolved with a separable Gaussian (zero padding).

        Each 1-D pass is a product with a banded (Toeplitz) matrix: the same sums as a
        convolution of `kernel_size` taps, several times faster on a CPU than a 1-channel conv3d.
        """
        if sigma <= 0:
            return volume
        D, G = volume.shape[1], volume.shape[2]
        along_grid = banded_kernel(sigma, self.kernel_size, G, volume.dtype, volume.device)
        along_depth = along_grid if D == G else banded_kernel(sigma, self.kernel_size, D,
                                                              volume.dtype, volume.device)
        v = volume @ along_grid  # columns (the matrix is symmetric)
        v = along_grid @ v  # rows
        return torch.einsum("kd,rdij->rkij", along_depth, v)  # depth

    def occupancy(self, points: torch.Tensor, quats: torch.Tensor, sigma: float,
                  scale: torch.Tensor | None = None) -> torch.Tensor:
        """(R, D, G, G) occupancies in [0, 1] of clouds (R, N, 3) seen from poses (R, 4)."""
        volume = self.splat(self.grid_coordinates(self.to_camera(points, quats))).clamp(0.0, 1.0)
        volume = self.blur(volume, sigma)
        if scale is not None:
            volume = volume * scale.view(-1, 1, 1, 1)
        return volume.clamp(0.0, 1.0)

    def depth_values(self, like: torch.Tensor) -> torch.Tensor:
        """(D,) camera depth of each cell's centre."""
        D = self.depth
        centres = (torch.arange(D, dtype=like.dtype, device=like.device) + 0.5) * (2 * self.depth_range / D)
        return self.distance - self.depth_range + centres

    def ray_termination(self, occupancy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, D, G, G) occupancies -> (r (R, D, G, G), r_beyond (R, G, G)) front to back."""
        o = occupancy.clamp(LOG_CLIP, 1.0 - LOG_CLIP)
        log_free = torch.log1p(-o)
        before = torch.cumsum(log_free, dim=1) - log_free  # sum over u < k of log(1 - o_u)
        r = o * torch.exp(before)
        beyond = torch.exp(log_free.sum(dim=1))
        return r, beyond

    def render(self, points: torch.Tensor, quats: torch.Tensor, sigma: float,
               scale: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{"silhouette": (R, G, G) in [0, 1], "depth": (R, G, G)} of clouds seen from poses."""
        r, beyond = self.ray_termination(self.occupancy(points, quats, sigma, scale))
        silhouette = r.sum(dim=1)
        depth = (r * self.depth_values(r).view(1, -1, 1, 1)).sum(dim=1) + beyond * self.max_depth
        return {"silhouette": silhouette, "depth": depth}
