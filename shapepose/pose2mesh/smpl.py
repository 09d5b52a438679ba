"""SMPL, for the real Human3.6M's `_smpl_param.json` (pose 72, shape 10, trans 3 per frame).

The model file is an `.npz` with SMPL's arrays: v_template (V, 3), shapedirs (V, 3, B),
posedirs (V, 3, 207), J_regressor (24, V), weights (V, 24), kintree_table (2, 24), f (F, 3)
(the official `.pkl` files hold chumpy objects; convert them once, e.g. with `np.savez` of each
array after loading with chumpy installed). Vertices, in metres:

    v_shaped = v_template + shapedirs . beta;  J = J_regressor v_shaped
    v_posed  = v_shaped + posedirs . (R_j - I for joints 1..23, flattened)
    v        = sum_j w_j G_j (v_posed - J_j) + trans,  G_j the world transform of joint j

As the release, a shape with a coefficient beyond +-3 is replaced by the mean shape. The release
rotates the root orientation by the camera's R and compensates the translation; that equals
R (v + trans) + t, which is what the reader computes (world vertices, then the camera).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from shapepose.errors import InputError

KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


@dataclass(frozen=True)
class SMPL:
    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray

    def vertices(self, pose: np.ndarray, shape: np.ndarray, trans: np.ndarray) -> np.ndarray:
        """pose (N, 72) axis-angle, shape (N, B), trans (N, 3) -> vertices (N, V, 3) m."""
        pose = np.asarray(pose, dtype=np.float64).reshape(len(pose), -1, 3)
        shape = np.array(shape, dtype=np.float64).reshape(len(pose), -1)
        shape[(np.abs(shape) > 3).any(axis=1)] = 0.0  # the release's guard against bad fits
        n_betas = min(shape.shape[1], self.shapedirs.shape[2])
        v_shaped = self.v_template + np.einsum("vcb,nb->nvc", self.shapedirs[..., :n_betas],
                                               shape[:, :n_betas])
        joints = np.einsum("jv,nvc->njc", self.J_regressor, v_shaped)
        rot = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(len(pose), -1, 3, 3)
        features = (rot[:, 1:] - np.eye(3)).reshape(len(pose), -1)
        v_posed = v_shaped + np.einsum("vcp,np->nvc", self.posedirs, features)
        n_joints = len(self.parents)
        world = np.zeros((len(pose), n_joints, 4, 4))
        for j in range(n_joints):
            local = np.zeros((len(pose), 4, 4))
            local[:, :3, :3] = rot[:, j]
            parent = self.parents[j]
            local[:, :3, 3] = joints[:, j] - (joints[:, parent] if parent >= 0 else 0.0)
            local[:, 3, 3] = 1.0
            world[:, j] = local if parent < 0 else world[:, parent] @ local
        # transforms that map rest-pose points (relative to the origin) to posed ones
        offset = world[:, :, :3, :3] @ joints[..., None]
        world[:, :, :3, 3] -= offset[..., 0]
        blended = np.einsum("vj,njab->nvab", self.weights, world)
        out = np.einsum("nvab,nvb->nva", blended[..., :3, :3], v_posed) + blended[..., :3, 3]
        return out + np.asarray(trans, dtype=np.float64).reshape(len(pose), 1, 3)


def load_smpl(path) -> SMPL:
    """The SMPL model of an `.npz` file (see the module docstring); InputError naming the file."""
    if path is None:
        raise InputError("pose2mesh.smpl_model", "the parameter files are SMPL fits: set "
                                                 "pose2mesh.smpl_model to the SMPL model (.npz)")
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in KEYS}
    except KeyError as exc:
        raise InputError(path, f"SMPL model lacks the array {exc}") from None
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read the SMPL model as .npz ({exc}); convert the .pkl "
                               "once (see shapepose/pose2mesh/smpl.py)") from None
    parents = arrays["kintree_table"][0].astype(np.int64)
    parents[0] = -1
    return SMPL(arrays["v_template"].astype(np.float64), arrays["shapedirs"].astype(np.float64),
                arrays["posedirs"].astype(np.float64), arrays["J_regressor"].astype(np.float64),
                arrays["weights"].astype(np.float64), parents, arrays["f"].astype(np.int64))
