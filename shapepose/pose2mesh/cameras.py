"""Human3.6M cameras (OpenCV axes, t in mm, f and c in pixels) from the project's renderer camera.

The renderer's `Camera` maps world (metres, y up) to OpenGL eye coordinates (looking down -z, y
up). Human3.6M's files hold R, t of X_cam = R X_world + t with X_world in millimetres and OpenCV
axes (x right, y down, z forward), and pixels u = f_x X / Z + c_x, v = f_y Y / Z + c_y. So
R = diag(1, -1, -1) R_gl, t = 1000 diag(1, -1, -1) t_gl, f = the renderer's focal length and c
its image centre ((w - 1) / 2, (h - 1) / 2): `cam2pixel(world2cam(X))` equals `Camera.project(X)`.
"""

from __future__ import annotations

import numpy as np

from shapepose.render.camera import Camera

GL_TO_CV = np.diag([1.0, -1.0, -1.0])


def h36m_camera(camera: Camera, width: int, height: int) -> dict[str, list]:
    """One camera's entry of `Human36M_subject{S}_camera.json`."""
    view = camera.view_matrix()
    focal = camera.focal_px(height)
    return {"R": (GL_TO_CV @ view[:3, :3]).tolist(),
            "t": (1000.0 * GL_TO_CV @ view[:3, 3]).tolist(),
            "f": [focal, focal],
            "c": [(width - 1) / 2.0, (height - 1) / 2.0]}


def world2cam(world_mm: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(..., 3) world mm -> camera mm: R X + t."""
    return world_mm @ np.asarray(R).T + np.asarray(t).reshape(3)


def cam2pixel(cam_mm: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(..., 3) camera mm -> (..., 2) pixels (column, row)."""
    f, c = np.asarray(f).reshape(2), np.asarray(c).reshape(2)
    return cam_mm[..., :2] / cam_mm[..., 2:3] * f + c
