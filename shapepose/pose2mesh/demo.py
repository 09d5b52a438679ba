"""A demo Human3.6M in the annotation layout Pose2Mesh reads, from the coarse demo body.

    annotations/Human36M_subject{S}_data.json      COCO-style images (+ bbox annotations)
    annotations/Human36M_subject{S}_camera.json    {cam_idx: {R, t (mm), f, c (px)}}, OpenCV axes
    annotations/Human36M_subject{S}_joint_3d.json  [action][subaction][frame] -> 17 x 3 world mm
    annotations/Human36M_subject{S}_smpl_param.json [action][subaction][frame] -> {pose, shape,
                                                   trans}, and "body_model": which model they pose
    J_regressor_h36m_correct.npy                   (17, V) mesh -> joints
    absnet_output_on_testset.json                  {file_name: 17 x 2 detected pixels}, test frames

Subjects S1, S5, S6, S7, S8 (train) and S9, S11 (test), each a demo identity of the release's
gender; the configured motions are the actions (numbered from 2, as Human3.6M's), each performed
`subactions` times with its own personal variation, seen by 4 cameras placed around the subject.
The world joints are the demo skeleton's (the Human3.6M joint each one stands for, `joints.BODY_JOINT`);
the regressor is fitted to them as sparse convex combinations of vertices, so, as with the real
one, the joints regressed from a mesh differ a little from the dataset's. The "detections" are
the true projections plus Gaussian noise and, now and then, a left/right swap of the arms or
legs, from their own random stream. No images: Pose2Mesh never reads pixels.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
from scipy.optimize import nnls
from scipy.spatial.transform import Rotation

from shapepose.bodies import JOINT_NAMES as BODY_JOINTS
from shapepose.bodies import Body, sample_identity
from shapepose.bodies.coarse import load_coarse_template
from shapepose.bodies.motions import sample_variation, trajectory
from shapepose.bodies.skeleton import clip_to_limits, euler_to_matrix
from shapepose.io.atomic import atomic_dir
from shapepose.pose2mesh.cameras import cam2pixel, h36m_camera, world2cam
from shapepose.pose2mesh.joints import (BODY_JOINT, JOINT_NAMES, SUBJECT_SEX,
                                        TEST_SUBJECTS, TRAIN_SUBJECTS)
from shapepose.render.camera import Camera
from shapepose.seeding import derive_rng

log = logging.getLogger(__name__)

STAGE = "pose2mesh"
BODY_MODEL = "shapepose_coarse"  # the "body_model" key of the demo's parameter files
FIRST_ACTION = 2  # Human3.6M numbers its actions 2 .. 16
BODY_INDEX = [BODY_JOINTS.index(BODY_JOINT[name]) for name in JOINT_NAMES]
LEGS = ((1, 4), (2, 5), (3, 6))
ARMS = ((14, 11), (15, 12), (16, 13))


def file_name(subject: int, action: int, subaction: int, camera: int, frame: int) -> str:
    """Human3.6M's image path: s_09_act_02_subact_01_ca_01/s_09_act_02_subact_01_ca_01_000001.jpg."""
    stem = f"s_{subject:02d}_act_{action:02d}_subact_{subaction:02d}_ca_{camera:02d}"
    return f"{stem}/{stem}_{frame + 1:06d}.jpg"


def subject_body(seed: int, subject: int) -> Body:
    identity = sample_identity(derive_rng(seed, STAGE, "identity", subject), SUBJECT_SEX[subject])
    return Body(identity, load_coarse_template())


def subject_cameras(seed: int, subject: int, cameras: dict) -> list[Camera]:
    """Four cameras around the subject, each a little off its nominal place (like each subject's
    own calibration in Human3.6M)."""
    rng = derive_rng(seed, STAGE, "cameras", subject)
    out = []
    for azimuth in cameras["azimuths"]:
        out.append(Camera(
            target=(0.0, 0.9, 0.0), azimuth=float(azimuth + rng.uniform(-1, 1) * cameras["jitter_deg"]),
            elevation=float(rng.uniform(*cameras["elevation"])),
            distance=float(rng.uniform(*cameras["distance"])), fov_y=float(cameras["fov_y"])))
    return out


def perform(body: Body, motion: str, frames: int, fps: float, rng: np.random.Generator):
    """Axis-angle pose (T, J, 3), translation (T, 3) m, vertices (T, V, 3) m, 17 joints (T, 17, 3) m."""
    euler, translation = trajectory(motion, np.arange(frames) / float(fps), sample_variation(rng))
    rotations = euler_to_matrix(clip_to_limits(euler))
    vertices, joints = body.pose_rotations(rotations, translation)
    pose = Rotation.from_matrix(rotations.reshape(-1, 3, 3)).as_rotvec().reshape(euler.shape)
    return pose, translation, vertices, joints[:, BODY_INDEX]


def pose_from_params(body: Body, pose: np.ndarray, translation: np.ndarray):
    """Vertices (T, V, 3) m of axis-angle poses (T, J, 3) and translations (T, 3): what the
    `_smpl_param.json` entries of the demo give back."""
    rotations = Rotation.from_rotvec(np.asarray(pose).reshape(-1, 3)).as_matrix()
    return body.pose_rotations(rotations.reshape(np.shape(pose)[:-1] + (3, 3)),
                               np.asarray(translation, dtype=np.float64))[0]


def fit_regressor(vertices: np.ndarray, joints: np.ndarray, rest: np.ndarray,
                  rest_joints: np.ndarray, candidates: int) -> np.ndarray:
    """(17, V) rows of non-negative weights summing to one, over each joint's `candidates`
    nearest rest vertices, fitted by NNLS to vertices (T, V, 3) -> joints (T, 17, 3)."""
    n_joints, n_vertices = joints.shape[1], vertices.shape[1]
    regressor = np.zeros((n_joints, n_vertices))
    for j in range(n_joints):
        near = np.argsort(np.linalg.norm(rest - rest_joints[j], axis=1), kind="stable")[:candidates]
        a = vertices[:, near].transpose(0, 2, 1).reshape(-1, candidates)  # (3T, K)
        b = joints[:, j].reshape(-1)
        # the sum-to-one constraint as a heavily weighted extra row
        weight = 100.0 * np.sqrt(len(b))
        w, _ = nnls(np.vstack([a, weight * np.ones(candidates)]), np.append(b, weight))
        if w.sum() <= 0:
            w = np.ones(candidates)
        regressor[j, near] = w / w.sum()
    return regressor


def detect(pixels: np.ndarray, std: float, swap_probability: float,
           rng: np.random.Generator) -> np.ndarray:
    """A detector's 17 x 2 pixels: truth + N(0, (std / 256 * bbox side)^2), sometimes arms or
    legs swapped left for right."""
    side = float(np.max(pixels.max(0) - pixels.min(0)))
    out = pixels + rng.normal(0.0, std / 256.0 * side, pixels.shape)
    if rng.uniform() < swap_probability:
        for a, b in (LEGS if rng.uniform() < 0.5 else ARMS):
            out[[a, b]] = out[[b, a]]
    return out


def bbox_of(pixels: np.ndarray, margin: float = 0.2) -> list[float]:
    lo, hi = pixels.min(0), pixels.max(0)
    pad = margin * (hi - lo)
    lo, hi = lo - pad, hi + pad
    return [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]


def make_demo_h36m(*, out: str | os.PathLike, seed: int, motions: list[str], frames: int,
                   fps: float, subactions: int, image_size: list[int], cameras: dict,
                   regressor: dict, detections: dict, test_subsample: int) -> None:
    """Write the demo dataset to the directory `out` (atomically: all of it or nothing)."""
    width, height = (int(v) for v in image_size)
    subjects = list(TRAIN_SUBJECTS) + list(TEST_SUBJECTS)
    with atomic_dir(out) as root:
        annotations = Path(root) / "annotations"
        annotations.mkdir()
        fit_vertices, fit_joints, detected = [], [], {}
        image_id = 0
        for subject in subjects:
            body = subject_body(seed, subject)
            rig = subject_cameras(seed, subject, cameras)
            camera_file = {str(c + 1): h36m_camera(cam, width, height) for c, cam in enumerate(rig)}
            data = {"images": [], "annotations": []}
            joint_file, param_file = {}, {"body_model": BODY_MODEL}
            shape = {"sex": body.identity.sex, "length": body.identity.length.tolist(),
                     "thickness": body.identity.thickness.tolist()}
            for a, motion in enumerate(motions):
                action = FIRST_ACTION + a
                joint_file[str(action)], param_file[str(action)] = {}, {}
                for subaction in range(1, subactions + 1):
                    rng = derive_rng(seed, STAGE, "performance", subject, action, subaction)
                    pose, trans, vertices, joints = perform(body, motion, frames, fps, rng)
                    if subject in TRAIN_SUBJECTS:
                        fit_vertices.append(vertices[::4])
                        fit_joints.append(joints[::4])
                    joint_file[str(action)][str(subaction)] = {
                        str(f): (1000.0 * joints[f]).tolist() for f in range(frames)}
                    param_file[str(action)][str(subaction)] = {
                        str(f): {"pose": pose[f].tolist(), "shape": shape, "trans": trans[f].tolist()}
                        for f in range(frames)}
                    for c, camera in camera_file.items():
                        pixels = cam2pixel(world2cam(1000.0 * joints, camera["R"], camera["t"]),
                                           camera["f"], camera["c"])
                        for f in range(frames):
                            name = file_name(subject, action, subaction, int(c), f)
                            data["images"].append({
                                "id": image_id, "file_name": name, "width": width, "height": height,
                                "subject": subject, "action_name": motion, "action_idx": action,
                                "subaction_idx": subaction, "cam_idx": int(c), "frame_idx": f})
                            data["annotations"].append({"id": image_id, "image_id": image_id,
                                                        "bbox": bbox_of(pixels[f])})
                            if subject in TEST_SUBJECTS and f % test_subsample == 0:
                                det_rng = derive_rng(seed, STAGE, "detections", image_id)
                                detected[name] = detect(pixels[f], detections["std"],
                                                        detections["swap_probability"],
                                                        det_rng).tolist()
                            image_id += 1
            prefix = annotations / f"Human36M_subject{subject}"
            for suffix, content in (("data", data), ("camera", camera_file),
                                    ("joint_3d", joint_file), ("smpl_param", param_file)):
                Path(f"{prefix}_{suffix}.json").write_text(json.dumps(content))
            log.info("S%d: %d images", subject, len(data["images"]))
        template = load_coarse_template()
        rest_body = Body(sample_identity(derive_rng(seed, STAGE, "identity", 1), "f"), template)
        rest_joints = rest_body.rest_joints[BODY_INDEX]
        weights = fit_regressor(np.concatenate(fit_vertices), np.concatenate(fit_joints),
                                rest_body.rest_vertices, rest_joints, regressor["candidates"])
        np.save(Path(root) / "J_regressor_h36m_correct.npy", weights.astype(np.float32))
        (Path(root) / "absnet_output_on_testset.json").write_text(json.dumps(detected))
