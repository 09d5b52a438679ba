"""Reading Human3.6M's annotation layout (as Pose2Mesh does) into the arrays the models train on.

For every image of the chosen subjects whose frame index is a multiple of `subsample` (the
release: 5 for training, 50 for testing), sorted by image name as the release sorts them:

- joint_cam (N, 17, 3) mm: the world joints of `_joint_3d.json` in that camera's frame;
- joint_img (N, 17, 2): their projections (pixels); `inputs` are these, or the detections;
- mesh (N, V, 3) m: the body of `_smpl_param.json` in the camera frame, relative to the dataset's
  pelvis (the release's `mesh_cam - joint_cam_h36m[:1]`);
- mesh_valid (N,): the mesh's regressed joints lie within `fitting_threshold` mm (mean, after
  matching the means) of the dataset's, the release's test for a usable fit.

The 2D input of both networks is `normalize_2d(pixels)`: each sample's joints minus their mean,
divided by their standard deviation, per axis. (The release first maps the joints into a crop of
the bounding box and divides by the crop size; both are per-axis affine maps, which the
standardisation removes, so the result is the same.)
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shapepose.bodies import Body
from shapepose.bodies.coarse import load_coarse_template
from shapepose.bodies.model import Identity
from shapepose.errors import InputError
from shapepose.pose2mesh.cameras import cam2pixel, world2cam
from shapepose.pose2mesh.demo import BODY_MODEL, pose_from_params
from shapepose.pose2mesh.joints import N_JOINTS, ROOT
from shapepose.pose2mesh.smpl import load_smpl

REGRESSOR = "J_regressor_h36m_correct.npy"
DETECTIONS = "absnet_output_on_testset.json"


@dataclass
class Samples:
    names: list[str]
    subject: np.ndarray      # (N,) int
    action: np.ndarray       # (N,) int
    joint_cam: np.ndarray    # (N, 17, 3) float32 mm
    joint_img: np.ndarray    # (N, 17, 2) float32 px
    inputs: np.ndarray       # (N, 17, 2) float32 px: the truth's projections or the detections
    mesh: np.ndarray         # (N, V, 3) float32 m, relative to the dataset's pelvis
    mesh_valid: np.ndarray   # (N,) bool

    def __len__(self) -> int:
        return len(self.names)


def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read: {exc}") from None


def annotation_path(root, subject: int, kind: str) -> Path:
    return Path(root) / "annotations" / f"Human36M_subject{subject}_{kind}.json"


def read_regressor(root, n_vertices: int) -> np.ndarray:
    """(17, V) float32; an InputError names the file when the shape or values are wrong."""
    path = Path(root) / REGRESSOR
    try:
        regressor = np.load(path)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read the joint regressor: {exc}") from None
    if regressor.shape != (N_JOINTS, n_vertices):
        raise InputError(path, f"joint regressor has shape {regressor.shape}, expected "
                               f"({N_JOINTS}, {n_vertices}) (joints, mesh vertices)")
    if not np.isfinite(regressor).all():
        raise InputError(path, "joint regressor holds non-finite values")
    return regressor.astype(np.float32)


def mesh_faces(smpl_model: str | None = None) -> np.ndarray:
    """The faces of the body model the parameter files pose: SMPL's when `smpl_model` is given
    (real data), else the demo's coarse template."""
    if smpl_model is not None:
        return load_smpl(smpl_model).faces
    return load_coarse_template().faces.astype(np.int64)


def normalize_2d(pixels: np.ndarray) -> np.ndarray:
    """(..., J, 2) -> per sample and axis: (x - mean) / std over the joints."""
    mean = pixels.mean(-2, keepdims=True)
    std = pixels.std(-2, keepdims=True)
    return ((pixels - mean) / np.maximum(std, 1e-6)).astype(np.float32)


def _body(shape: dict, path: Path, key: str, cache: dict) -> Body:
    token = json.dumps(shape, sort_keys=True)
    if token not in cache:
        try:
            identity = Identity(shape["sex"], np.asarray(shape["length"], dtype=np.float64),
                                np.asarray(shape["thickness"], dtype=np.float64))
        except (KeyError, TypeError) as exc:
            raise InputError(path, f"body shape lacks {exc}", key=key) from None
        cache[token] = Body(identity, load_coarse_template())
    return cache[token]


def _subject_samples(root, subject: int, subsample: int) -> list[dict]:
    data_path = annotation_path(root, subject, "data")
    data = _load_json(data_path)
    try:
        images = {img["id"]: img for img in data["images"]}
        boxes = {ann["image_id"]: ann["bbox"] for ann in data["annotations"]}
    except (KeyError, TypeError) as exc:
        raise InputError(data_path, f"not a COCO-style annotation file: missing {exc}") from None
    camera_path = annotation_path(root, subject, "camera")
    cameras = _load_json(camera_path)
    joint_path = annotation_path(root, subject, "joint_3d")
    joints = _load_json(joint_path)
    param_path = annotation_path(root, subject, "smpl_param")
    params = _load_json(param_path)
    model = params.pop("body_model", "smpl")  # the real files are SMPL fits and say nothing
    if model not in (BODY_MODEL, "smpl"):
        raise InputError(param_path, f"body parameters are for {model!r}; this reader poses "
                                     f"{BODY_MODEL!r} and 'smpl' bodies", key="body_model")
    frames_of = defaultdict(set)
    for img in images.values():
        frames_of[(img["action_idx"], img["subaction_idx"])].add(img["frame_idx"])
    for (action, subaction), frames in sorted(frames_of.items()):
        key = f"{action}/{subaction}"
        stored = joints.get(str(action), {}).get(str(subaction))
        if stored is None:
            raise InputError(joint_path, "no joints for this action/subaction of the data file",
                             key=key)
        if len(stored) != len(frames):
            raise InputError(joint_path, f"{len(stored)} frames of joints, but the data file "
                                         f"{data_path.name} has {len(frames)} (check lengths)",
                             key=key)
    samples = []
    for image_id in sorted(images):
        img = images[image_id]
        if img["frame_idx"] % subsample:
            continue
        a, s, f, c = (str(img[k]) for k in ("action_idx", "subaction_idx", "frame_idx", "cam_idx"))
        if c not in cameras:
            raise InputError(camera_path, f"camera {c} of image {img['file_name']} is missing",
                             key=c)
        try:
            world = np.asarray(joints[a][s][f], dtype=np.float64)
        except KeyError:
            raise InputError(joint_path, "no joints for this frame", key=f"{a}/{s}/{f}") from None
        if world.shape != (N_JOINTS, 3) or not np.isfinite(world).all():
            raise InputError(joint_path, f"joints must be {N_JOINTS} x 3 finite numbers",
                             key=f"{a}/{s}/{f}")
        try:
            param = params[a][s][f]
        except KeyError:
            continue  # the release skips frames without a fit
        samples.append({"img": img, "bbox": boxes.get(image_id), "world": world,
                        "camera": cameras[c], "param": param, "param_path": param_path,
                        "model": model})
    return samples


def read_split(root, subjects, subsample: int, regressor: np.ndarray,
               fitting_threshold: float, detections: str | None = None,
               smpl_model: str | None = None) -> Samples:
    """The samples of `subjects` (see the module docstring); `detections`: the detected-2D file
    whose poses replace the projections (its frames must be exactly these, by name);
    `smpl_model`: the SMPL file that SMPL parameters need."""
    rows = []
    for subject in subjects:
        rows.extend(_subject_samples(root, int(subject), int(subsample)))
    if not rows:
        raise InputError(Path(root) / "annotations", f"no images of subjects {list(subjects)} at "
                                                     f"subsampling {subsample}")
    rows.sort(key=lambda r: r["img"]["file_name"].split("/")[-1])
    bodies: dict = {}
    meshes = np.empty((len(rows), regressor.shape[1], 3), dtype=np.float32)
    joint_cam = np.empty((len(rows), N_JOINTS, 3), dtype=np.float32)
    joint_img = np.empty((len(rows), N_JOINTS, 2), dtype=np.float32)
    frames = defaultdict(list)  # (subject, action, subaction, frame) -> rows (one per camera)
    for i, row in enumerate(rows):
        img = row["img"]
        frames[(img["subject"], img["action_idx"], img["subaction_idx"], img["frame_idx"])].append(i)
    by_body = defaultdict(list)  # one posing call per body, each frame posed once
    smpl = None
    for (subject, action, subaction, frame), members in frames.items():
        first = rows[members[0]]
        if first["model"] == "smpl":
            smpl = smpl or load_smpl(smpl_model)
            by_body["smpl"].append((smpl, members))
            continue
        body = _body(first["param"]["shape"], first["param_path"],
                     f"{action}/{subaction}/{frame}", bodies)
        by_body[id(body)].append((body, members))
    for groups in by_body.values():
        body = groups[0][0]
        params = [rows[members[0]]["param"] for _, members in groups]
        pose = np.stack([np.asarray(p["pose"], dtype=np.float64) for p in params])
        trans = np.stack([np.asarray(p["trans"], dtype=np.float64).reshape(3) for p in params])
        if body is smpl:
            world_vertices = smpl.vertices(pose, np.stack([p["shape"] for p in params]),
                                           trans) * 1000.0
        else:
            world_vertices = pose_from_params(body, pose, trans) * 1000.0
        for (_, members), vertices in zip(groups, world_vertices):
            for i in members:
                cam = rows[i]["camera"]
                R, t = np.asarray(cam["R"]), np.asarray(cam["t"])
                joints = world2cam(rows[i]["world"], R, t)
                joint_cam[i] = joints
                joint_img[i] = cam2pixel(joints, cam["f"], cam["c"])
                meshes[i] = (world2cam(vertices, R, t) - joints[ROOT]) / 1000.0
    names = [r["img"]["file_name"] for r in rows]
    regressed = regressor @ (meshes * 1000.0)
    relative = joint_cam - joint_cam[:, ROOT:ROOT + 1]
    error = np.linalg.norm(regressed - regressed.mean(1, keepdims=True)
                           - (relative - relative.mean(1, keepdims=True)), axis=-1).mean(-1)
    inputs = joint_img if detections is None else read_detections(detections, names)
    return Samples(names, np.array([r["img"]["subject"] for r in rows]),
                   np.array([r["img"]["action_idx"] for r in rows]), joint_cam, joint_img,
                   inputs.astype(np.float32), meshes, error <= fitting_threshold)


def read_detections(path, names: list[str]) -> np.ndarray:
    """(N, 17, 2) detected pixels of the images `names`, from the released file's layout."""
    path = Path(path)
    found = _load_json(path)
    if len(found) != len(names):
        raise InputError(path, f"{len(found)} detections for {len(names)} test images (the "
                               "release's 'Check lengths of annotation and detection output')")
    out = np.empty((len(names), N_JOINTS, 2), dtype=np.float32)
    for i, name in enumerate(names):
        if name not in found:
            raise InputError(path, "no detection for this test image", key=name)
        pose = np.asarray(found[name], dtype=np.float64)
        if pose.shape[0] != N_JOINTS or pose.shape[1] < 2 or not np.isfinite(pose[:, :2]).all():
            raise InputError(path, f"detection must be {N_JOINTS} finite 2D points", key=name)
        out[i] = pose[:, :2]
    return out
