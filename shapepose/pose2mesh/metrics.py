"""Pose2Mesh's evaluation on Human3.6M (protocol 2), per sample, in millimetres.

- MPJPE: both poses made relative to their pelvis, mean Euclidean distance over the 14
  evaluation joints (`joints.EVAL_JOINTS`);
- PA-MPJPE: the same after aligning the prediction to the truth by the similarity transform
  (rotation, translation, scale; reflections excluded) minimising the squared distances, per sample;
- MPVPE: mean Euclidean distance over every mesh vertex, both meshes relative to the pelvis
  regressed from them.
"""

from __future__ import annotations

import numpy as np

from shapepose.pose2mesh.joints import EVAL_JOINTS, ROOT


def similarity_align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`source` (N, 3) moved by the best similarity transform onto `target` (N, 3) (Umeyama)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(s.T @ t)  # s^T t = U S V^T; R = V D U^T
    d = np.ones(3)
    if np.linalg.det(vt.T @ u.T) < 0:  # a reflection: flip the weakest direction
        d[-1] = -1
    rotation = vt.T @ np.diag(d) @ u.T
    scale = float((sigma * d).sum() / (s ** 2).sum())
    return scale * s @ rotation.T + mu_t


def _root_relative(joints: np.ndarray) -> np.ndarray:
    return joints - joints[..., ROOT:ROOT + 1, :]


def mpjpe(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-sample MPJPE (N,) of 17-joint poses (N, 17, 3)."""
    p, t = _root_relative(pred)[:, EVAL_JOINTS], _root_relative(true)[:, EVAL_JOINTS]
    return np.linalg.norm(p - t, axis=-1).mean(-1)


def pa_mpjpe(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-sample PA-MPJPE (N,): MPJPE after a similarity alignment of each prediction."""
    p, t = _root_relative(pred)[:, EVAL_JOINTS], _root_relative(true)[:, EVAL_JOINTS]
    aligned = np.stack([similarity_align(a, b) for a, b in zip(p, t)])
    return np.linalg.norm(aligned - t, axis=-1).mean(-1)


def mpvpe(pred_vertices: np.ndarray, true_vertices: np.ndarray, pred_root: np.ndarray,
          true_root: np.ndarray) -> np.ndarray:
    """Per-sample MPVPE (N,): vertices (N, V, 3) relative to their roots (N, 3)."""
    p = pred_vertices - pred_root[:, None]
    t = true_vertices - true_root[:, None]
    return np.linalg.norm(p - t, axis=-1).mean(-1)
