"""The demo body's kinematic tree: joint names, parents, rest positions, and per-joint pose limits.

World frame: metres, y up, the subject faces +z, so the subject's left side is +x. Every joint's
local frame is aligned with the world at rest (as in SMPL), so the same Euler axes mean the same
thing everywhere: x = flexion/extension (sagittal plane), y = twist about the vertical, z =
abduction/adduction or side bend (frontal plane).

A local rotation is R = Rz(z) @ Ry(y) @ Rx(x) (extrinsic x, then y, then z; scipy's "xyz").
For a limb hanging down, +x swings it backward and -x forward; for the torso and head, +x bends
forward. On the left side +z moves a limb outward (abduction); the right side mirrors y and z.

The rest pose is an A-pose: arms 16 degrees from vertical, clear of the torso, so that the meshed
surface does not fuse arm to torso and posed frames stay inside the 1 x 2 x 1 m sampling cuboid.
End sites (head top, hand tips, toes) are joints too: they give the leaf bones a length and the
pose models a point to track, but they never rotate (their limits are zero).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

# name, parent, rest position (x, y, z) of the template (a 1.74 m male), left side only for limbs
_TORSO = [
    ("pelvis", None, (0.0, 0.94, 0.0)),
    ("spine", "pelvis", (0.0, 1.07, -0.01)),
    ("chest", "spine", (0.0, 1.23, -0.01)),
    ("neck", "chest", (0.0, 1.44, -0.025)),
    ("head", "neck", (0.0, 1.55, -0.005)),
    ("head_top", "head", (0.0, 1.735, 0.005)),
]
_ARM_ANGLE = np.deg2rad(16.0)  # A-pose: arm direction from straight down, outward
_ARM_DIR = np.array([np.sin(_ARM_ANGLE), -np.cos(_ARM_ANGLE), 0.0])
_SHOULDER = np.array([0.19, 1.40, -0.025])
_LEFT_LIMBS = [
    ("collar", "chest", (0.035, 1.385, -0.01)),
    ("shoulder", "collar", tuple(_SHOULDER)),
    ("elbow", "shoulder", tuple(_SHOULDER + 0.28 * _ARM_DIR + [0, 0, -0.01])),
    ("wrist", "elbow", tuple(_SHOULDER + 0.53 * _ARM_DIR + [0, 0, 0.0])),
    ("hand_tip", "wrist", tuple(_SHOULDER + 0.71 * _ARM_DIR + [0, 0, 0.005])),
    ("hip", "pelvis", (0.09, 0.88, 0.0)),
    ("knee", "hip", (0.10, 0.49, 0.01)),
    ("ankle", "knee", (0.11, 0.085, -0.035)),
    ("toe", "ankle", (0.125, 0.02, 0.12)),
]


def _build():
    names, parents, rest = [], [], []
    for name, parent, pos in _TORSO:
        names.append(name)
        parents.append(-1 if parent is None else names.index(parent))
        rest.append(pos)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        for name, parent, (x, y, z) in _LEFT_LIMBS:
            full_parent = parent if parent in ("chest", "pelvis") else f"{side}_{parent}"
            names.append(f"{side}_{name}")
            parents.append(names.index(full_parent))
            rest.append((sign * x, y, z))
    return tuple(names), np.array(parents, dtype=np.int64), np.array(rest, dtype=np.float64)


JOINT_NAMES, PARENTS, REST_JOINTS = _build()
"""JOINT_NAMES: J names; PARENTS: (J,) int64, -1 for the root; REST_JOINTS: (J, 3) template rest."""
N_JOINTS = len(JOINT_NAMES)
END_SITES = ("head_top", "l_hand_tip", "r_hand_tip", "l_toe", "r_toe")

# Per-joint Euler limits in radians, (x, y, z) each (lo, hi), for the torso and the left limbs.
# Chosen so that every joint alone at either limit keeps the body inside 1 x 2 x 1 m: the x extent
# is the binding one (arm span), which is why shoulder abduction stops a few degrees past rest.
_LIMITS = {
    "pelvis": ((-0.3, 0.3), (-np.pi, np.pi), (-0.3, 0.3)),
    "spine": ((-0.25, 0.5), (-0.4, 0.4), (-0.3, 0.3)),
    "chest": ((-0.2, 0.35), (-0.35, 0.35), (-0.25, 0.25)),
    "neck": ((-0.4, 0.5), (-0.6, 0.6), (-0.4, 0.4)),
    "head": ((-0.4, 0.4), (-0.5, 0.5), (-0.3, 0.3)),
    "collar": ((-0.2, 0.2), (-0.3, 0.3), (-0.1, 0.12)),
    "shoulder": ((-1.7, 0.6), (-0.9, 0.9), (-0.3, 0.12)),
    "elbow": ((-2.4, 0.0), (-0.8, 0.8), (0.0, 0.0)),
    "wrist": ((-0.8, 0.8), (-0.3, 0.3), (-0.4, 0.4)),
    "hip": ((-0.8, 0.45), (-0.5, 0.5), (-0.2, 0.35)),
    "knee": ((0.0, 2.3), (-0.2, 0.2), (0.0, 0.0)),
    "ankle": ((-0.35, 0.7), (-0.3, 0.3), (-0.3, 0.3)),
}


def _limits() -> np.ndarray:
    out = np.zeros((N_JOINTS, 3, 2))
    for j, name in enumerate(JOINT_NAMES):
        side, base = (name[0], name[2:]) if name[:2] in ("l_", "r_") else (None, name)
        if base not in _LIMITS:
            continue  # end site: never rotates
        lim = np.array(_LIMITS[base], dtype=np.float64)
        if side == "r":  # mirror across the x = 0 plane: y and z angles change sign
            lim[1:] = -lim[1:, ::-1]
        out[j] = lim
    return out


LIMITS = _limits()
"""(J, 3, 2) float64: per joint, per Euler axis (x, y, z), the (lo, hi) angle in radians."""


def bone_group(joint: int) -> str:
    """The left/right-free name of the bone ending at `joint` (e.g. 'knee' is the thigh)."""
    name = JOINT_NAMES[joint]
    return name[2:] if name[:2] in ("l_", "r_") else name


def euler_to_matrix(euler: np.ndarray) -> np.ndarray:
    """Local rotations from Euler angles: euler (..., 3) radians -> (..., 3, 3), R = Rz Ry Rx."""
    euler = np.asarray(euler, dtype=np.float64)
    flat = Rotation.from_euler("xyz", euler.reshape(-1, 3)).as_matrix()
    return flat.reshape(euler.shape[:-1] + (3, 3))


def euler_to_axis_angle(euler: np.ndarray) -> np.ndarray:
    """Local rotations as axis-angle vectors: euler (..., 3) -> (..., 3) (angle = norm, radians)."""
    euler = np.asarray(euler, dtype=np.float64)
    flat = Rotation.from_euler("xyz", euler.reshape(-1, 3)).as_rotvec()
    return flat.reshape(euler.shape)


def clip_to_limits(euler: np.ndarray) -> np.ndarray:
    """Euler angles (..., J, 3) clipped into `LIMITS`."""
    return np.clip(euler, LIMITS[..., 0], LIMITS[..., 1])
