"""The global rotation from an unsupervised model's canonical frame to the ground-truth frame.

Unsupervised pose learning fixes its own frame, so predicted clouds and poses are compared with
the ground truth only after one rotation A shared by the whole model. DPC estimates it on
validation views (compute_alignment.py); in our conventions:

- a view's prediction satisfies R_pred P_pred ~ R_gt P_gt, so A0 = R_gt^T R_pred maps the
  predicted cloud onto the ground-truth one;
- point-to-point ICP of the predicted cloud onto the ground truth refines A0 and gives an RMSE;
- each model keeps its `views_per_model` lowest-RMSE views, the `models` models with the lowest
  mean RMSE are kept, and their rotations are averaged with Markley's method
  (`shapepose.geometry.average_rotation`).

Two additions make it work when the predicted poses are still poor (a short demo run): ICP also
starts from the 24 rotations of the cube (`starts`), and a view keeps whichever start ends with
the lowest RMSE; and the average is taken over the largest group of kept rotations that agree
within `consensus_deg` (a car's front-back symmetry can leave two groups 180 degrees apart,
whose plain average would be meaningless). With good poses the pose-initialised start wins,
every kept rotation agrees, and the result is DPC's.

ICP here fits a rotation about the origin only: A is applied as a pure rotation, and the
points' origin is the point the camera looks at (DPC's open3d ICP also fits a translation and
then discards it).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from shapepose.geometry import (angle_between, average_rotation, matrix_from_quaternion,
                                quaternion_from_matrix)


def cube_rotations() -> np.ndarray:
    """(24, 3, 3): the rotations that map the coordinate axes onto themselves (signed permutations, det 1)."""
    out = []
    for perm in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
        for signs in np.ndindex(2, 2, 2):
            R = np.zeros((3, 3))
            R[range(3), perm] = [1 - 2 * s for s in signs]
            if np.linalg.det(R) > 0:
                out.append(R)
    return np.array(out)


def kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(3, 3) rotation R minimizing sum |R src_i - dst_i|^2 over paired points (K, 3), no translation.

    SVD of the cross-covariance; the sign of the last singular direction is flipped when needed
    so the result is a rotation, never a reflection.
    """
    H = np.asarray(src, dtype=np.float64).T @ np.asarray(dst, dtype=np.float64)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(Vt.T @ U.T)) or 1.0
    return Vt.T @ np.diag([1.0, 1.0, d]) @ U.T


def icp(src: np.ndarray, dst: np.ndarray, init_R: np.ndarray, threshold: float,
        iterations: int) -> tuple[np.ndarray, float]:
    """Point-to-point ICP of src (N, 3) onto dst (M, 3), rotation only: (R (3, 3), inlier RMSE).

    Each iteration pairs every rotated src point with its nearest dst point, keeps the pairs
    closer than `threshold`, and solves for the rotation of those pairs. Stops early once the
    rotation no longer changes. The RMSE is over the inlier pairs of the returned rotation
    (as open3d's `inlier_rmse`); inf when no pair is within the threshold.
    """
    src = np.asarray(src, dtype=np.float64)
    tree = cKDTree(np.asarray(dst, dtype=np.float64))
    R = np.asarray(init_R, dtype=np.float64)
    for _ in range(iterations):
        dist, idx = tree.query(src @ R.T)
        inliers = dist < threshold
        if inliers.sum() < 3:  # too few pairs to fix a rotation: keep the last one
            break
        R_new = kabsch(src[inliers], tree.data[idx[inliers]])
        converged = np.abs(R_new - R).max() < 1e-10
        R = R_new
        if converged:
            break
    dist = tree.query(src @ R.T)[0]
    inliers = dist < threshold
    rmse = float(np.sqrt(np.mean(dist[inliers] ** 2))) if inliers.any() else float("inf")
    return R, rmse


def fit_alignment(pred_points: list[np.ndarray], pred_quats: np.ndarray,
                  gt_points: list[np.ndarray], gt_quats: np.ndarray, model_index: np.ndarray, *,
                  models: int, views_per_model: int, icp_threshold: float,
                  icp_iterations: int, starts: bool = True,
                  consensus_deg: float = 30.0) -> tuple[np.ndarray, dict]:
    """The rotation A (4,) from the predicted frame to the ground-truth frame, and how it was found.

    pred_points: one predicted cloud (N, 3) per view; pred_quats, gt_quats: (n, 4) poses of the
    same n views; gt_points: one ground-truth cloud per MODEL, indexed by model_index (n,) ints.
    starts: also start ICP from the 24 cube rotations (a few iterations each; the best start is
    then refined). info: {rmse: mean ICP RMSE of the views averaged, views: positions (in
    0 .. n-1) of those views, view_rmse: every view's RMSE (n,), n_candidates: n,
    pose_start_won: share of views whose best start was the pose-initialised one}.
    """
    pred_quats = np.asarray(pred_quats, dtype=np.float64).reshape(-1, 4)
    gt_quats = np.asarray(gt_quats, dtype=np.float64).reshape(-1, 4)
    model_index = np.asarray(model_index, dtype=np.int64).reshape(-1)
    n = len(pred_points)
    if not (n == len(pred_quats) == len(gt_quats) == len(model_index)) or n == 0:
        raise ValueError(f"alignment needs as many clouds, poses and model indices, got {n}, "
                         f"{len(pred_quats)}, {len(gt_quats)}, {len(model_index)}")
    R_pred, R_gt = matrix_from_quaternion(pred_quats), matrix_from_quaternion(gt_quats)
    extra = cube_rotations() if starts else np.empty((0, 3, 3))
    rotations = np.empty((n, 4))
    rmse = np.empty(n)
    pose_won = 0
    for i in range(n):
        src, dst = pred_points[i], gt_points[model_index[i]]
        inits = [R_gt[i].T @ R_pred[i], *extra]
        if len(inits) > 1:  # a short run from every start, then the best one to convergence
            trials = [icp(src, dst, R0, icp_threshold, max(3, icp_iterations // 5)) for R0 in inits]
            best = int(np.argmin([r for _, r in trials]))
            pose_won += best == 0
            init = trials[best][0]
        else:
            init, pose_won = inits[0], pose_won + 1
        R, rmse[i] = icp(src, dst, init, icp_threshold, icp_iterations)
        rotations[i] = quaternion_from_matrix(R)
    # per model, its best views; then the best models by their mean (DPC's two filters)
    candidates = []
    for m in np.unique(model_index):
        views = np.flatnonzero(model_index == m)
        views = views[np.argsort(rmse[views], kind="stable")][:views_per_model]
        views = views[np.isfinite(rmse[views])]
        if len(views):
            candidates.append((float(rmse[views].mean()), int(m), views))
    if not candidates:
        raise ValueError(f"ICP found no point pairs within {icp_threshold} in any view: "
                         "no alignment can be fitted")
    candidates.sort(key=lambda c: (c[0], c[1]))
    kept = np.concatenate([views for _, _, views in candidates[:models]])
    # the largest group of kept rotations that agree (ties: the lower RMSE), then its average
    near = np.degrees(angle_between(rotations[kept][:, None], rotations[kept][None])) <= consensus_deg
    sizes = near.sum(axis=1)
    centre = min(range(len(kept)), key=lambda j: (-sizes[j], rmse[kept[j]]))
    used = kept[near[centre]]
    A = average_rotation(rotations[used])
    info = {"rmse": float(rmse[used].mean()), "views": sorted(int(i) for i in used),
            "view_rmse": rmse.tolist(), "n_candidates": n, "n_kept": len(kept),
            "pose_start_won": pose_won / n}
    return A, info


def apply_alignment(A_quat: np.ndarray, points: np.ndarray,
                    pred_quats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predictions moved into the ground-truth frame: (A p for points (..., N, 3), poses (..., 4)).

    The poses become R_pred A^T, so R_aligned (A p) = R_pred p: the camera sees the same image.
    Returned quaternions have w >= 0.
    """
    A = matrix_from_quaternion(A_quat)
    aligned_points = np.asarray(points, dtype=np.float64) @ A.T
    aligned_R = matrix_from_quaternion(pred_quats) @ A.T
    return aligned_points.astype(np.asarray(points).dtype), quaternion_from_matrix(aligned_R)
