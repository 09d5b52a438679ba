"""Identity (bone lengths and thicknesses) and pose (joint rotations) applied to the template.

Identity reshapes the rest template by a per-vertex blend of per-bone affine maps, so every
identity shares the template's vertices and faces. Pose then moves that rest shape by linear blend
skinning around the identity's own joints. Neither step changes the connectivity, so every body
in every pose is exactly as watertight as the template.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shapepose.bodies.skeleton import (
    N_JOINTS,
    PARENTS,
    bone_group,
    clip_to_limits,
    euler_to_matrix,
)
from shapepose.bodies.template import Template, load_template

SEXES = ("m", "f")

# Stature factor relative to the template (1.74 m): (mean, sd, lo, hi) per sex.
_STATURE = {"m": (1.0, 0.025, 0.95, 1.05), "f": (0.935, 0.025, 0.89, 0.985)}
# Build (overall thickness) factor: (mean, sd, lo, hi) per sex.
_BUILD = {"m": (1.0, 0.05, 0.9, 1.12), "f": (0.97, 0.05, 0.88, 1.1)}
# Sex-specific proportions on top of stature/build, by bone group (the joint a bone ends at).
# 'shoulder' is collar->shoulder (shoulder width), 'hip' is pelvis->hip (hip width).
_LENGTH_SHAPE = {
    "m": {},
    "f": {"shoulder": 0.88, "collar": 0.95, "hip": 1.12, "elbow": 0.98, "wrist": 0.98},
}
_THICKNESS_SHAPE = {
    "m": {"shoulder": 1.05, "elbow": 1.04},
    "f": {"shoulder": 0.9, "elbow": 0.9, "wrist": 0.9, "hand_tip": 0.92, "neck": 0.93,
          "chest": 0.95, "hip": 1.08, "knee": 1.06},
}
_HEAD_GROUPS = ("neck", "head", "head_top")  # neck/head size varies less than stature
_GROUP_SD = 0.02  # per-bone proportion noise around the stature (lengths) or build (thickness)


@dataclass(frozen=True)
class Identity:
    """One body's shape: per-bone factors; entry j is the bone ending at joint j (root: 1).

    length: (J,) float64, multiplies the bone's length; thickness: (J,) float64, multiplies the
    body's extent across the bone. Left and right bones always share their factors.
    """

    sex: str
    length: np.ndarray
    thickness: np.ndarray


def _bone_groups() -> list[str]:
    """Bone group names in a fixed order, so the random draws are always made in the same order."""
    return sorted({bone_group(j) for j in range(N_JOINTS) if PARENTS[j] >= 0})


def sample_identity(rng: np.random.Generator, sex: str) -> Identity:
    """Draw an identity of the given sex ('m' or 'f') from `rng`."""
    if sex not in SEXES:
        raise ValueError(f"sex must be one of {SEXES}, got {sex!r}")
    mean, sd, lo, hi = _STATURE[sex]
    stature = float(np.clip(rng.normal(mean, sd), lo, hi))
    mean, sd, lo, hi = _BUILD[sex]
    build = float(np.clip(rng.normal(mean, sd), lo, hi))
    groups = _bone_groups()
    length_noise = np.clip(rng.normal(0.0, _GROUP_SD, len(groups)), -2 * _GROUP_SD, 2 * _GROUP_SD)
    thick_noise = np.clip(rng.normal(0.0, _GROUP_SD, len(groups)), -2 * _GROUP_SD, 2 * _GROUP_SD)
    length_of, thickness_of = {}, {}
    for g, dl, dt in zip(groups, length_noise, thick_noise):
        scale = np.sqrt(stature) if g in _HEAD_GROUPS else stature
        length_of[g] = scale * (1 + dl) * _LENGTH_SHAPE[sex].get(g, 1.0)
        thickness_of[g] = build * (1 + dt) * _THICKNESS_SHAPE[sex].get(g, 1.0)
    length = np.ones(N_JOINTS)
    thickness = np.ones(N_JOINTS)
    for j in range(N_JOINTS):
        if PARENTS[j] >= 0:
            length[j] = length_of[bone_group(j)]
            thickness[j] = thickness_of[bone_group(j)]
    return Identity(sex, length, thickness)


def scaled_joints(rest_joints: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Joints (J, 3) after scaling each bone by `length` (J,), root kept where it was."""
    out = rest_joints.copy()
    for j in range(1, N_JOINTS):  # parents come before children in the joint order
        p = PARENTS[j]
        out[j] = out[p] + length[j] * (rest_joints[j] - rest_joints[p])
    return out


def identity_rest(template: Template, identity: Identity) -> tuple[np.ndarray, np.ndarray]:
    """The identity's rest shape: vertices (V, 3) and joints (J, 3), float64, feet on y = 0.

    Bone j (parent p) maps x to J'_p + M_j (x - J_p), with M_j scaling by the length factor
    along the bone and by the thickness factor across it; each vertex blends these maps with its
    bone weights. The maps of two bones agree at their shared joint, so the blend is seamless.
    """
    rest = template.joints
    joints = scaled_joints(rest, identity.length)
    vertices = np.zeros_like(template.vertices)
    for j in range(1, N_JOINTS):
        w = template.bone_weights[:, j]
        if not w.any():
            continue
        p = PARENTS[j]
        d = (rest[j] - rest[p]) / np.linalg.norm(rest[j] - rest[p])
        along = np.outer(d, d)
        m = identity.length[j] * along + identity.thickness[j] * (np.eye(3) - along)
        vertices += w[:, None] * (joints[p] + (template.vertices - rest[p]) @ m.T)
    ground = np.array([0.0, vertices[:, 1].min(), 0.0])
    return vertices - ground, joints - ground


def forward_kinematics(rest_joints: np.ndarray, rotations: np.ndarray,
                       translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World frames of every joint for T poses.

    rest_joints: (J, 3); rotations: (T, J, 3, 3) local; translation: (T, 3) of the root.
    Returns world rotations (T, J, 3, 3) and world joint positions (T, J, 3). The root rotates
    about its own rest position, then moves by `translation`.
    """
    world_rot = np.empty_like(rotations)
    world_pos = np.empty(rotations.shape[:2] + (3,))
    world_rot[:, 0] = rotations[:, 0]
    world_pos[:, 0] = rest_joints[0] + translation
    for j in range(1, N_JOINTS):
        p = PARENTS[j]
        world_rot[:, j] = world_rot[:, p] @ rotations[:, j]
        world_pos[:, j] = world_pos[:, p] + world_rot[:, p] @ (rest_joints[j] - rest_joints[p])
    return world_rot, world_pos


def skin(rest_vertices: np.ndarray, rest_joints: np.ndarray, world_rot: np.ndarray,
         world_pos: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Linear blend skinning: v' = sum_j w_j (R_j (v - J_j) + P_j).

    rest_vertices: (V, 3); rest_joints: (J, 3); world_rot: (T, J, 3, 3); world_pos: (T, J, 3);
    weights: (V, J) rows summing to 1. Returns posed vertices (T, V, 3) float64.
    """
    offset = world_pos - np.einsum("tjab,jb->tja", world_rot, rest_joints)  # (T, J, 3)
    affine = np.concatenate([world_rot, offset[..., None]], axis=-1)  # (T, J, 3, 4)
    blended = np.einsum("vj,tjab->tvab", weights, affine)  # (T, V, 3, 4)
    return np.einsum("tvab,vb->tva", blended[..., :3], rest_vertices) + blended[..., 3]


class Body:
    """One identity of the demo body model, ready to be posed.

    rest_vertices: (V, 3) and rest_joints: (J, 3) float64, the identity at rest (feet on y = 0);
    faces: (F, 3) int64, shared by every body.
    """

    def __init__(self, identity: Identity, template: Template | None = None):
        self.template = template if template is not None else load_template()
        self.identity = identity
        self.rest_vertices, self.rest_joints = identity_rest(self.template, identity)

    @property
    def faces(self) -> np.ndarray:
        return self.template.faces

    def pose_rotations(self, rotations: np.ndarray,
                       translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pose by local rotation matrices (T, J, 3, 3) (no limits applied) and root translation
        (T, 3).

        Returns vertices (T, V, 3) and world joints (T, J, 3), float64.
        """
        world_rot, world_pos = forward_kinematics(self.rest_joints, rotations, translation)
        vertices = skin(self.rest_vertices, self.rest_joints, world_rot, world_pos,
                        self.template.skin_weights)
        return vertices, world_pos

    def pose(self, euler: np.ndarray, translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pose by Euler angles (T, J, 3) (clipped to the joint limits) and translation (T, 3)."""
        return self.pose_rotations(euler_to_matrix(clip_to_limits(euler)), translation)
