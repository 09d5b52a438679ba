"""The pinhole camera every renderer shares: an orbit around a fixed world point (OpenGL axes)."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Camera:
    """A pinhole camera orbiting a fixed world point; world units are metres, +y is up.

    The eye sits at `target + distance * (cos(el) sin(az), sin(el), cos(el) cos(az))`: azimuth 0
    looks from +z toward the target (then +x is to the right in the image), positive azimuth
    moves the eye toward +x, and positive elevation raises it above the target. The camera's up
    vector is the world +y projected onto the image plane, so vertical lines stay vertical in the
    centre column.

    The defaults frame a person standing at the origin: the target is pelvis height, and with a
    45 degree vertical field of view a 1.9 m person spans about 65 % of the image height (rows
    ~33-179 of 224), leaving room above the head for a 0.3 m hop.
    """

    target: tuple[float, float, float] = (0.0, 0.9, 0.0)
    azimuth: float = 45.0  # degrees
    elevation: float = 30.0  # degrees
    distance: float = 3.5  # metres from eye to target
    fov_y: float = 45.0  # vertical field of view, degrees
    near: float = 0.1  # clip planes, metres
    far: float = 100.0

    def __post_init__(self) -> None:
        # Config files give lists; a tuple keeps the dataclass hashable and immutable.
        object.__setattr__(self, "target", tuple(float(t) for t in self.target))
        if len(self.target) != 3:
            raise ValueError(f"camera target must have 3 coordinates, got {self.target}")
        if not self.distance > 0:
            raise ValueError(f"camera distance must be positive, got {self.distance}")
        if not 0 < self.fov_y < 180:
            raise ValueError(f"camera fov_y must be in (0, 180) degrees, got {self.fov_y}")
        if not -90 < self.elevation < 90:
            # At +-90 the view direction is parallel to world up and the image roll is undefined.
            raise ValueError(f"camera elevation must be in (-90, 90) degrees, got {self.elevation}")
        if not 0 < self.near < self.far:
            raise ValueError(f"camera needs 0 < near < far, got near={self.near}, far={self.far}")

    @property
    def eye(self) -> np.ndarray:
        """Camera position in the world: (3,) float64."""
        az, el = np.radians(self.azimuth), np.radians(self.elevation)
        offset = np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
        return np.asarray(self.target) + self.distance * offset

    def view_matrix(self) -> np.ndarray:
        """World -> camera transform, (4, 4) float64; the camera looks down -z, +y up (OpenGL)."""
        eye = self.eye
        forward = (np.asarray(self.target) - eye) / self.distance
        right = np.cross(forward, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        view = np.eye(4)
        view[0, :3], view[1, :3], view[2, :3] = right, up, -forward
        view[:3, 3] = -view[:3, :3] @ eye
        return view

    def projection_matrix(self, aspect: float = 1.0) -> np.ndarray:
        """Camera -> clip space, (4, 4) float64, OpenGL convention; `aspect` is width / height."""
        f = 1.0 / np.tan(np.radians(self.fov_y) / 2)
        n, fa = self.near, self.far
        proj = np.zeros((4, 4))
        proj[0, 0] = f / aspect
        proj[1, 1] = f
        proj[2, 2] = (fa + n) / (n - fa)
        proj[2, 3] = 2 * fa * n / (n - fa)
        proj[3, 2] = -1.0
        return proj

    def focal_px(self, height: int) -> float:
        """Focal length in pixels for an image `height` pixels tall (pixels are square)."""
        return (height / 2) / np.tan(np.radians(self.fov_y) / 2)

    def project(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """World points (N, 3) -> pixel coordinates (N, 2) float64 as (column, row).

        Rows grow downward, as in the rendered arrays. The centre of the top-left pixel is (0, 0),
        so the image centre is ((width - 1) / 2, (height - 1) / 2). Points behind the camera give
        meaningless coordinates; callers keep them in front.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        view = self.view_matrix()
        cam = points @ view[:3, :3].T + view[:3, 3]
        depth = -cam[:, 2]  # distance along the viewing direction
        f = self.focal_px(height)
        column = (width - 1) / 2 + f * cam[:, 0] / depth
        row = (height - 1) / 2 - f * cam[:, 1] / depth
        return np.stack([column, row], axis=1)
