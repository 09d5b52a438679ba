"""Reader of the differentiable-point-clouds (DPC) ShapeNet renders, and the camera they imply.

The layout is that of eldar/differentiable-point-clouds' `data/` folder after its download scripts:

    <root>/renders/<category>/<model_id>/render_{k}.png   RGBA, alpha = mask, k = 0 .. n_views-1
    <root>/renders/<category>/<model_id>/camera_{k}.mat   `extrinsic` (4, 4), `pos` (1, 3)
    <root>/gt/downsampled/<category>/<model_id>.mat        `points` (N, 3) surface samples
    <root>/splits/<category>_{train,val,test}.txt          one model id per line

Cameras follow the Blender renders the files come from: `extrinsic` maps Blender world points
(z up) to computer-vision camera coordinates (x right, y down, z forward), and `pos` is the
camera centre in that world. ShapeNet coordinates s (y up; the point clouds) sit in the Blender
world as b = (-s_x, s_z, s_y). `shapenet_camera` composes the two, which is what DPC's
`camera_from_blender` does up to its axis order, and `project_points` applies the intrinsics DPC
assumes: focal length 1.875 in units of the whole image width, so the image spans normalized
coordinates f x / z in [-0.5, 0.5] (DPC's `pointcloud2voxels3d_fast` grid) and the field of view
is 2 atan(0.5 / 1.875) = 29.9 degrees.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from shapepose.errors import InputError

CAR_CATEGORY = "02958343"  # ShapeNet synset of cars
SPLITS = ("train", "val", "test")
FOCAL_LENGTH = 1.875  # DPC's focal length, in units of the image width (field of view 29.9 deg)
CAMERA_DISTANCE = 2.0  # DPC's camera-to-object distance, ShapeNet units

# ShapeNet (y up) -> Blender world (z up): b = SHAPENET_TO_BLENDER @ s.
SHAPENET_TO_BLENDER = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


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
        path = self.image_path(model_id, view)
        try:
            with Image.open(path) as im:
                rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
        except (OSError, ValueError) as exc:
            raise InputError(path, f"cannot read render: {exc}") from None
        return rgba

    def load_camera(self, model_id: str, view: int) -> dict:
        """{"extrinsic": (4, 4) float64 Blender world -> CV camera, "position": (3,) float64}."""
        path = self.render_dir / model_id / f"camera_{view}.mat"
        mat = _load_mat(path, ("extrinsic", "pos"))
        extrinsic = np.asarray(mat["extrinsic"], dtype=np.float64)
        if extrinsic.shape == (3, 4):
            extrinsic = np.vstack([extrinsic, [0.0, 0.0, 0.0, 1.0]])
        position = np.asarray(mat["pos"], dtype=np.float64).reshape(-1)
        if extrinsic.shape != (4, 4) or position.shape != (3,):
            raise InputError(path, f"expected extrinsic (4, 4) and pos (3,), got "
                                   f"{extrinsic.shape} and {position.shape}")
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


def shapenet_camera(extrinsic: np.ndarray) -> np.ndarray:
    """A file's Blender extrinsic -> (4, 4) ShapeNet world -> CV camera (x right, y down, z forward)."""
    to_blender = np.eye(4)
    to_blender[:3, :3] = SHAPENET_TO_BLENDER
    return np.asarray(extrinsic, dtype=np.float64) @ to_blender


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
