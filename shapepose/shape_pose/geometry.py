"""Quaternions and the DPC camera, in torch (batched, differentiable) and numpy.

Conventions, used everywhere in `shapepose.shape_pose`:

- A quaternion is (w, x, y, z) with w the real part; a unit quaternion q stands for the rotation
  R(q), and q and -q are the same rotation.
- A pose is the rotation from the frame the points live in (ShapeNet for ground truth, the
  model's own canonical frame for predictions) to computer-vision camera coordinates (x right,
  y down, z forward). The camera sits at `CAMERA_DISTANCE` on the optical axis looking at the
  origin, so a point p is at R p + (0, 0, d) in camera coordinates: DPC's camera model.
- `pose_from_position` turns a DPC `camera_{k}.mat` camera position into that rotation, the way
  DPC's evaluation takes the true pose (`shapepose.images.dpc` says why from `pos`, not the
  extrinsic).
"""

from __future__ import annotations

import numpy as np
import torch

from shapepose.images.dpc import CAMERA_DISTANCE, camera_pose


def normalize(q: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Unit quaternions (..., 4); a zero vector stays finite (eps)."""
    return q / q.norm(dim=-1, keepdim=True).clamp_min(eps)


def conjugate(q: torch.Tensor) -> torch.Tensor:
    """(w, -x, -y, -z): the inverse of a unit quaternion."""
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a b (..., 4): the rotation b followed by a."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)


def to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (normalized here) -> (..., 3, 3) rotation matrices."""
    w, x, y, z = normalize(q).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*q.shape[:-1], 3, 3)


def rotate(q: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Points (..., N, 3) rotated by quaternions (..., 4) (same leading shape): R(q) p for every point."""
    return points @ to_matrix(q).transpose(-1, -2)


def from_matrix(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions with w >= 0 (numpy, float64).

    Shepperd's method: the largest of w, x, y, z is found from the diagonal first, so no branch
    divides by a small number.
    """
    R = np.asarray(R, dtype=np.float64)
    flat = R.reshape(-1, 3, 3)
    out = np.empty((len(flat), 4))
    for i, m in enumerate(flat):
        trace = np.trace(m)
        candidates = [trace, m[0, 0], m[1, 1], m[2, 2]]
        k = int(np.argmax(candidates))
        if k == 0:
            s = 2.0 * np.sqrt(max(1.0 + trace, 0.0))
            q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
        elif k == 1:
            s = 2.0 * np.sqrt(max(1.0 + m[0, 0] - m[1, 1] - m[2, 2], 0.0))
            q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
        elif k == 2:
            s = 2.0 * np.sqrt(max(1.0 - m[0, 0] + m[1, 1] - m[2, 2], 0.0))
            q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
        else:
            s = 2.0 * np.sqrt(max(1.0 - m[0, 0] - m[1, 1] + m[2, 2], 0.0))
            q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
        q = np.asarray(q)
        q /= np.linalg.norm(q)
        out[i] = q if q[0] >= 0 else -q
    return out.reshape(*R.shape[:-2], 4)


def matrix_np(q: np.ndarray) -> np.ndarray:
    """numpy (..., 4) -> (..., 3, 3), float64."""
    return to_matrix(torch.as_tensor(np.asarray(q, dtype=np.float64))).numpy()


def angle_between(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Rotation angle (radians, in [0, pi]) of q1^-1 q2 for unit-normalized (..., 4) quaternions.

    2 acos(|<q1, q2>|): the absolute value makes q and -q the same pose.
    """
    a = np.asarray(q1, dtype=np.float64)
    b = np.asarray(q2, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    dot = np.abs(np.sum(a * b, axis=-1))
    return 2.0 * np.arccos(np.clip(dot, 0.0, 1.0))


def pose_from_position(position: np.ndarray, rtol: float = 1e-4) -> np.ndarray:
    """A DPC camera file's `pos` -> (4,) quaternion of the ShapeNet -> camera rotation.

    Raises ValueError when the camera is not DPC's (not at CAMERA_DISTANCE from the origin),
    because the projection assumes exactly that distance.
    """
    position = np.asarray(position, dtype=np.float64).reshape(3)
    distance = float(np.linalg.norm(position))
    if not abs(distance - CAMERA_DISTANCE) <= rtol * CAMERA_DISTANCE:
        raise ValueError(f"camera at distance {distance:.4f} from the origin, not {CAMERA_DISTANCE}: "
                         f"DPC cameras look at the origin from distance 2")
    return from_matrix(camera_pose(position))
