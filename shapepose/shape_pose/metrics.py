"""The shape and pose metrics of seed 002 (section 5.4): Chamfer terms and pose accuracy / median.

Chamfer follows Definition 2: plain means of Euclidean (not squared) nearest-neighbour distances,
precision = mean over predicted points of the distance to the ground truth, coverage = the
reverse, Chamfer = their sum. The tables report them x100, as DPC and the seed do; these
functions return raw distances (ShapeNet units).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from shapepose.geometry import angle_between


def nearest_distances(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(N,) Euclidean distance from each src point (N, 3) to its nearest dst point (M, 3)."""
    src = np.asarray(src, dtype=np.float64).reshape(-1, 3)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 3)
    if len(src) == 0 or len(dst) == 0:
        raise ValueError(f"nearest distances need two non-empty clouds, got {len(src)} and {len(dst)} points")
    return cKDTree(dst).query(src)[0]


def chamfer(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """{precision: mean pred -> gt, coverage: mean gt -> pred, chamfer: their sum} (raw distances)."""
    precision = float(nearest_distances(pred, gt).mean())
    coverage = float(nearest_distances(gt, pred).mean())
    return {"precision": precision, "coverage": coverage, "chamfer": precision + coverage}


def pose_errors_deg(pred_q: np.ndarray, gt_q: np.ndarray) -> np.ndarray:
    """(n,) angle in degrees of the rotation between each predicted and ground-truth pose (n, 4)."""
    return np.degrees(angle_between(pred_q, gt_q))


def pose_summary(errors_deg: np.ndarray, threshold: float = 30.0) -> dict[str, float]:
    """{accuracy: share of errors < threshold, median: error in degrees} of (n,) pose errors.

    The median is DPC's (eval_camera_pose.py): sorted(errors)[n // 2], the upper middle value for
    an even n rather than the mean of the two middle ones, so our numbers compare with theirs.
    """
    errors = np.asarray(errors_deg, dtype=np.float64).reshape(-1)
    if len(errors) == 0:
        raise ValueError("pose summary of no errors")
    return {"accuracy": float(np.mean(errors < threshold)),
            "median": float(np.sort(errors)[len(errors) // 2])}
