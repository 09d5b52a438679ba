"""Scoring one trained Pose2Mesh on the test subjects' detected 2D poses, beside its baselines.

Rows of the summary (`eval.json`), every value the mean over the test samples in mm:

- trained: the exported model; MPJPE / PA-MPJPE of the joints regressed from its mesh against
  the dataset's camera-frame joints (14 evaluation joints), MPVPE, and the MPJPE of its own lifted
  pose;
- posenet: stage 1's PoseNet alone (MPJPE and PA-MPJPE of the lifted pose);
- untrained: stage 2 at step 0 (stage 1's PoseNet, MeshNet as drawn from the seed);
- mean: the mean root-relative training pose and mesh (camera frame), the trivial baseline.

`predictions.npz` holds what every number is computed from: the test image names, the true
joints (mm, camera frame) and vertices (mm, relative to the dataset's pelvis), the trained
model's mesh and regressed joints, the lifted poses, the untrained model's joints, the mean
pose and mesh, the regressor and each row's per-sample errors.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import torch

from shapepose.io import atomic_file, write_npz
from shapepose.pose2mesh import data as h36m
from shapepose.pose2mesh.joints import TEST_SUBJECTS
from shapepose.pose2mesh.metrics import mpjpe, mpvpe, pa_mpjpe
from shapepose.pose2mesh.train import load_pose2mesh, load_posenet, predict
from shapepose.training import load_exported, pick_device

log = logging.getLogger(__name__)


def mesh_scores(mesh_mm: np.ndarray, true_mesh_mm: np.ndarray, true_joints: np.ndarray,
                regressor: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample MPJPE, PA-MPJPE (joints regressed from the mesh) and MPVPE, mm."""
    joints = regressor @ mesh_mm
    true_root = (regressor[:1] @ true_mesh_mm)[:, 0]
    return {"mpjpe": mpjpe(joints, true_joints), "pa_mpjpe": pa_mpjpe(joints, true_joints),
            "mpvpe": mpvpe(mesh_mm, true_mesh_mm, joints[:, 0], true_root), "joints": joints}


def _means(scores: dict) -> dict[str, float]:
    return {k: float(np.mean(v)) for k, v in scores.items() if k != "joints"}


def eval_pose2mesh(*, data: str, posenet: str, model: str, out: str, predictions: str,
                   experiment: str, replicate: int, split: dict, device: str,
                   smpl_model: str | None = None) -> dict:
    """Write `out` (summary JSON) and `predictions` (npz); returns the summary."""
    device = pick_device(device)
    faces = h36m.mesh_faces(smpl_model)
    regressor = h36m.read_regressor(data, int(faces.max()) + 1)
    test = h36m.read_split(data, TEST_SUBJECTS, split["subsample"]["test"], regressor,
                           split["fitting_threshold"], detections=f"{data}/{h36m.DETECTIONS}",
                           smpl_model=smpl_model)
    truth_mm = test.mesh * 1000.0
    log.info("Pose2Mesh %s r%d: %d test samples (S9, S11, detected 2D)", experiment, replicate,
             len(test))
    with torch.no_grad():
        lifted_alone = predict(load_posenet(posenet, device), test, 256, device)[0]
        mesh, lifted = predict(load_pose2mesh(model, faces, device), test, 128, device)
        mesh0, _ = predict(load_pose2mesh(model, faces, device, untrained=True,
                                          posenet_path=posenet), test, 128, device)
    trained = mesh_scores(mesh * 1000.0, truth_mm, test.joint_cam, regressor)
    untrained = mesh_scores(mesh0 * 1000.0, truth_mm, test.joint_cam, regressor)
    meta = load_exported(model)["meta"]
    mean_pose = np.asarray(meta["extra"]["mean_pose"])
    mean_mesh = np.asarray(meta["extra"]["mean_mesh"]) * 1000.0
    baseline = mesh_scores(np.broadcast_to(mean_mesh, truth_mm.shape), truth_mm, test.joint_cam,
                           regressor)
    pose_only = {"mpjpe": mpjpe(np.broadcast_to(mean_pose, test.joint_cam.shape), test.joint_cam),
                 "pa_mpjpe": pa_mpjpe(np.broadcast_to(mean_pose, test.joint_cam.shape),
                                      test.joint_cam)}
    lifted_scores = {"mpjpe": mpjpe(lifted_alone, test.joint_cam),
                     "pa_mpjpe": pa_mpjpe(lifted_alone, test.joint_cam)}
    summary = {
        "experiment": experiment, "replicate": int(replicate), "n_test": len(test),
        "trained": {**_means(trained), "lifted_mpjpe": float(mpjpe(lifted, test.joint_cam).mean())},
        "posenet": _means(lifted_scores),
        "untrained": _means(untrained),
        "mean": {**_means(baseline), "pose_mpjpe": float(pose_only["mpjpe"].mean()),
                 "pose_pa_mpjpe": float(pose_only["pa_mpjpe"].mean())},
        "training": {"step": int(meta["step"]), "which": meta["which"],
                     "val_metrics": meta["metrics"], **{k: meta["extra"][k] for k in
                     ("n_train", "n_val", "epochs", "experiment", "graph")}},
    }
    write_npz(
        predictions, names=np.array(test.names), inputs_2d=test.inputs,
        true_joints=test.joint_cam, true_vertices=truth_mm.astype(np.float32),
        pred_vertices=(mesh * 1000.0).astype(np.float32),
        pred_joints=trained["joints"].astype(np.float32), lifted_joints=lifted.astype(np.float32),
        posenet_joints=lifted_alone.astype(np.float32),
        untrained_joints=untrained["joints"].astype(np.float32),
        mean_pose=mean_pose.astype(np.float32), mean_vertices=mean_mesh.astype(np.float32),
        regressor=regressor, faces=faces,
        **{f"{row}_{k}": v for row, scores in (("trained", trained), ("untrained", untrained),
                                                ("mean", baseline), ("posenet", lifted_scores))
           for k, v in scores.items() if k != "joints"})
    with atomic_file(out) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    log.info("trained MPJPE %.1f PA-MPJPE %.1f MPVPE %.1f; mean pose/mesh MPJPE %.1f; untrained %.1f",
             summary["trained"]["mpjpe"], summary["trained"]["pa_mpjpe"], summary["trained"]["mpvpe"],
             summary["mean"]["mpjpe"], summary["untrained"]["mpjpe"])
    return summary
