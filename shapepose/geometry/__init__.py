"""Rotations, in one place: quaternions in torch (batched, differentiable) and in numpy (scipy).

Conventions, used everywhere in shapepose:

- A quaternion is (w, x, y, z) with w the real part (DPC's order, and our files'); a unit
  quaternion q stands for the rotation R(q), and q and -q are the same rotation. scipy's
  `Rotation` orders them (x, y, z, w); every call to it here passes `scalar_first=True`, so no
  caller ever sees scipy's order.
- numpy results are float64; quaternions computed from matrices have w >= 0 (scipy's canonical
  sign).
- torch is for what is differentiated (the shape-and-pose losses, Neural Parts' primitives);
  numpy for evaluation, alignment and cameras, where scipy's `Rotation` does the work.

The torch half is `shapepose.geometry.quaternions`; this module needs numpy and scipy alone, so
it also serves rules whose environments have no torch (the DPC camera reader in the cars and
images environments).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

# ----------------------------------------------------------------------------- numpy (scipy)


def matrix_from_quaternion(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (normalized here) -> (..., 3, 3) rotation matrices, float64."""
    return Rotation.from_quat(np.asarray(q, dtype=np.float64), scalar_first=True).as_matrix()


def quaternion_from_matrix(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions with w >= 0, float64.

    A matrix that is not quite orthogonal (a float32 file) is read as its nearest rotation.
    """
    return Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_quat(canonical=True, scalar_first=True)


def angle_between(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Rotation angle (radians, in [0, pi]) of q1^-1 q2 for (..., 4) quaternions (broadcast).

    2 acos(|<q1, q2>|) of the normalized inputs, DPC's pose error: the absolute value makes q
    and -q the same pose.
    """
    a = np.asarray(q1, dtype=np.float64)
    b = np.asarray(q2, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    dot = np.abs(np.sum(a * b, axis=-1))
    return 2.0 * np.arccos(np.clip(dot, 0.0, 1.0))


def average_rotation(quats: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(4,) mean rotation of (n, 4) quaternions, w >= 0: scipy's `Rotation.mean`.

    That is the chordal L2 mean (the rotation M minimizing sum w_i |R_i - M|^2, Frobenius),
    which is Markley et al.'s (2007) average: the eigenvector of sum w_i q_i q_i^T with the
    largest eigenvalue. q_i q_i^T is the same for q and -q, so the signs of the inputs do not
    matter.
    """
    q = np.asarray(quats, dtype=np.float64).reshape(-1, 4)
    if len(q) == 0:
        raise ValueError("average of no rotations")
    w = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    mean = Rotation.from_quat(q, scalar_first=True).mean(weights=w)
    return mean.as_quat(canonical=True, scalar_first=True)


def look_at_rotation(position: np.ndarray) -> np.ndarray:
    """(3, 3) world -> CV camera rotation (x right, y down, z forward) of a camera at `position`
    looking at the origin, with world z up.

    Rows: right, down, forward, with forward = -position / |position| and right horizontal
    (Blender's TRACK_TO constraint). Undefined straight above or below the origin.
    """
    position = np.asarray(position, dtype=np.float64).reshape(3)
    distance = np.linalg.norm(position)
    if distance == 0:
        raise ValueError("camera at the origin has no viewing direction")
    forward = -position / distance
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-9:
        raise ValueError(f"camera at {position.tolist()} looks straight along the up axis")
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(forward, right), forward])
