"""Reader of the differentiable-point-clouds (DPC) ShapeNet renders, and the camera they imply.

The layout is that of eldar/differentiable-point-clouds' `data/` folder after its download scripts:

    <root>/renders/<category>/<model_id>/render_{k}.png   RGBA, alpha = mask, k = 0 .. n_views-1
    <root>/renders/<category>/<model_id>/camera_{k}.mat   `extrinsic` (4, 4), `pos` (1, 3)
    <root>/gt/downsampled/<category>/<model_id>.mat        `points` (N, 3) surface samples
    <root>/splits/<category>_{train,val,test}.txt          one model id per line

Frames. The ground-truth clouds are in ShapeNet's own coordinates s (y up): DPC samples them
from the raw `model.obj` files without any change of axes (densify/densify_single.py). The renders
were made in Blender (z up), into which an OBJ is imported as b = (s_x, -s_z, s_y)
(`SHAPENET_TO_BLENDER`, Blender's default OBJ axes: forward -Z, up Y). `pos` is the camera
centre in that world; `extrinsic` maps Blender world points to computer-vision camera
coordinates (x right, y down, z forward) of a camera at `pos` looking at the origin with z up.

Poses. DPC's evaluation (eval_camera_pose.py, compute_alignment.py) and its camera-supervised
training take the true pose from `pos` alone (`quaternion_from_campos`: yaw and pitch of the
camera position); that is the look-at camera at `pos` applied to s through the OBJ import, so
`camera_pose(pos)` is the pose every stage uses. DPC's `camera_from_blender`, used only by a
matrix code path that none of its experiments runs, reads the extrinsic with b = (-s_x, s_z, s_y)
instead: 180 degrees about the up axis from the frame of its own ground truth (a constant right
factor diag(-1, 1, -1) on the pose). `load_camera` checks that each file's extrinsic and `pos`
describe the same camera in the frame above and names the file when they do not.

`project_points` applies the intrinsics DPC assumes: focal length 1.875 in units of the whole
image width, so the image spans normalized coordinates f x / z in [-0.5, 0.5] (DPC's
`pointcloud2voxels3d_fast` grid) and the field of view is 2 atan(0.5 / 1.875) = 29.9 degrees.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from shapepose.errors import InputError
from shapepose.geometry import angle_between, look_at_rotation, quaternion_from_matrix
from shapepose.images.rgba import read_rgba

CAR_CATEGORY = "02958343"  # ShapeNet synset of cars
SPLITS = ("train", "val", "test")
FOCAL_LENGTH = 1.875  # DPC's focal length, in units of the image width (field of view 29.9 deg)
CAMERA_DISTANCE = 2.0  # DPC's camera-to-object distance, ShapeNet units

# ShapeNet (y up) -> Blender world (z up) as Blender imports an OBJ: b = SHAPENET_TO_BLENDER @ s.
SHAPENET_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
CAMERA_CHECK_DEG = 0.05  # extrinsic and pos must agree this closely (degrees; float32 files: ~1e-5)


def _load_mat(path: Path, keys: tuple[str, ...]) -> dict:
    if not path.is_file():
        raise InputError(path, "missing file")
    try:
        mat = scipy.io.loadmat(str(path))
    except (OSError, ValueError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError) as exc:
        raise InputError(path, f"cannot read MATLAB file: {exc}") from None
    for key in keys:
        if key not in mat:
            raise InputError(path, "missing variable", key=key)
    return mat


def _read_split(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(path, "missing split list")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


class DPCDataset:
    """The renders, cameras and ground-truth point clouds of one ShapeNet category."""

    def __init__(self, root: str | Path, category: str = CAR_CATEGORY):
        self.root = Path(root).resolve()
        self.category = category
        self.render_dir = self.root / "renders" / category
        self.gt_dir = self.root / "gt" / "downsampled" / category
        if not self.render_dir.is_dir():
            raise InputError(self.render_dir, f"missing render folder of category {category}")
        self.models: list[str] = sorted(p.name for p in self.render_dir.iterdir() if p.is_dir())
        if not self.models:
            raise InputError(self.render_dir, "no model folders")
        known = set(self.models)
        self._splits: dict[str, list[str]] = {}
        for name in SPLITS:
            path = self.root / "splits" / f"{category}_{name}.txt"
            ids = _read_split(path)
            unknown = [m for m in ids if m not in known]
            if unknown:
                raise InputError(path, f"{len(unknown)} listed models have no renders, e.g. {unknown[0]}")
            self._splits[name] = ids
        first = self.render_dir / self.models[0]
        self.n_views: int = len(list(first.glob("render_*.png")))
        if self.n_views == 0:
            raise InputError(first, "no render_{k}.png images")

    def split(self, name: str) -> list[str]:
        """Model ids of the "train", "val" or "test" split, in the order of the split file."""
        if name not in self._splits:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return list(self._splits[name])

    def image_path(self, model_id: str, view: int) -> Path:
        return self.render_dir / model_id / f"render_{view}.png"

    def load_view(self, model_id: str, view: int) -> np.ndarray:
        """(S, S, 4) uint8 RGBA; alpha is the mask (fractional on the silhouette)."""
        return read_rgba(self.image_path(model_id, view), what="render")

    def load_camera(self, model_id: str, view: int) -> dict:
        """{"extrinsic": (4, 4) float64 Blender world -> CV camera, "position": (3,) float64}.

        The two must describe one camera (`check_camera`); a file where they do not raises
        InputError naming it.
        """
        path = self.render_dir / model_id / f"camera_{view}.mat"
        mat = _load_mat(path, ("extrinsic", "pos"))
        extrinsic = np.asarray(mat["extrinsic"], dtype=np.float64)
        if extrinsic.shape == (3, 4):
            extrinsic = np.vstack([extrinsic, [0.0, 0.0, 0.0, 1.0]])
        position = np.asarray(mat["pos"], dtype=np.float64).reshape(-1)
        if extrinsic.shape != (4, 4) or position.shape != (3,):
            raise InputError(path, f"expected extrinsic (4, 4) and pos (3,), got "
                                   f"{extrinsic.shape} and {position.shape}")
        problem = check_camera(extrinsic, position)
        if problem:
            raise InputError(path, problem)
        return {"extrinsic": extrinsic, "position": position}

    def load_points(self, model_id: str) -> np.ndarray:
        """(N, 3) float32 ground-truth surface points in ShapeNet coordinates."""
        path = self.gt_dir / f"{model_id}.mat"
        points = np.asarray(_load_mat(path, ("points",))["points"], dtype=np.float32)
        if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
            raise InputError(path, f"points must have shape (N, 3), got {points.shape}", key="points")
        return points


def read_dpc(root: str | Path, category: str = CAR_CATEGORY) -> DPCDataset:
    """Open a DPC-layout dataset; a missing folder, split file or listed model raises InputError."""
    return DPCDataset(root, category)


def camera_pose(position: np.ndarray) -> np.ndarray:
    """(3, 3) ShapeNet -> CV camera rotation for a DPC camera at Blender position `position`.

    What DPC's `quaternion_from_campos` gives for the ground-truth clouds, in our axis order (DPC
    orders camera axes as depth, up, right: tests/images/test_dpc_camera.py compares the two).
    """
    return look_at_rotation(position) @ SHAPENET_TO_BLENDER


def pose_from_position(position: np.ndarray, rtol: float = 1e-4) -> np.ndarray:
    """A camera file's `pos` -> (4,) quaternion (w, x, y, z; w >= 0) of the ShapeNet -> camera rotation.

    The pose every stage takes as the truth, as DPC's evaluation does (see the module docstring).
    Raises ValueError when the camera is not DPC's (not at CAMERA_DISTANCE from the origin),
    because the projection assumes exactly that distance.
    """
    position = np.asarray(position, dtype=np.float64).reshape(3)
    distance = float(np.linalg.norm(position))
    if not abs(distance - CAMERA_DISTANCE) <= rtol * CAMERA_DISTANCE:
        raise ValueError(f"camera at distance {distance:.4f} from the origin, not {CAMERA_DISTANCE}: "
                         f"DPC cameras look at the origin from distance 2")
    return quaternion_from_matrix(camera_pose(position))


def shapenet_camera(extrinsic: np.ndarray) -> np.ndarray:
    """A file's Blender extrinsic -> (4, 4) ShapeNet world -> CV camera (x right, y down, z forward)."""
    to_blender = np.eye(4)
    to_blender[:3, :3] = SHAPENET_TO_BLENDER
    return np.asarray(extrinsic, dtype=np.float64) @ to_blender


def check_camera(extrinsic: np.ndarray, position: np.ndarray,
                 tolerance_deg: float = CAMERA_CHECK_DEG) -> str | None:
    """None when `extrinsic` is the look-at camera at `position`; else what is wrong, in words.

    The extrinsic's camera centre -R^T t must be `position` (to the tolerance, as an angle seen
    from the origin and as a relative distance), and its rotation the look-at rotation.
    """
    R, t = extrinsic[:3, :3], extrinsic[:3, 3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-3) or np.linalg.det(R) < 0:
        return "extrinsic rotation is not a rotation matrix"
    tol = np.radians(tolerance_deg)
    centre = -R.T @ t
    distance = np.linalg.norm(position)
    if not np.linalg.norm(centre - position) <= tol * max(distance, 1e-12):
        return (f"extrinsic puts the camera at {np.round(centre, 4).tolist()} but pos is "
                f"{np.round(position, 4).tolist()}")
    try:
        expected = look_at_rotation(position)
    except ValueError as exc:
        return str(exc)
    angle = float(np.degrees(angle_between(quaternion_from_matrix(expected), quaternion_from_matrix(R))))
    if angle > tolerance_deg:
        return (f"extrinsic and pos disagree: the extrinsic's rotation is {angle:.2f} degrees from "
                f"the camera at pos looking at the origin with z up (x right, y down, z forward); "
                f"the ground-truth pose is taken from pos, as DPC's evaluation does")
    return None


def project_points(points: np.ndarray, extrinsic: np.ndarray, size: int,
                   focal_length: float = FOCAL_LENGTH) -> np.ndarray:
    """ShapeNet points (N, 3) -> (N, 2) float64 pixel (column, row) in a size x size render.

    Row 0 is the top; the centre of the top-left pixel is (0, 0), so the image centre is at
    ((size - 1) / 2, (size - 1) / 2) and one unit of normalized image coordinate f x / z is `size`
    pixels (the image's edges are at -0.5 and 0.5).
    """
    cam = np.asarray(points, dtype=np.float64) @ shapenet_camera(extrinsic)[:3, :3].T
    cam += shapenet_camera(extrinsic)[:3, 3]
    column = (size - 1) / 2 + size * focal_length * cam[:, 0] / cam[:, 2]
    row = (size - 1) / 2 + size * focal_length * cam[:, 1] / cam[:, 2]
    return np.stack([column, row], axis=1)
