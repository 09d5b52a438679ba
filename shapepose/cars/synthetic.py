"""The synthetic set in the differentiable-point-clouds layout (see `shapepose.images.dpc`).

Each model is a procedural car normalized like ShapeNet (box centre at the origin) and seen from
DPC's camera: distance 2, focal length 1.875 (image-width units: 29.9 degrees), azimuth U[0, 360), elevation
U[low, high], always looking at the origin. A random number of lights from random directions
gives plain diffuse shading; the background is transparent (alpha = mask).

Camera files are written the way DPC's Blender renders were made (its render script, adapted
from the OGN renderer): the car is in Blender as imported from an OBJ (`SHAPENET_TO_BLENDER`),
the camera is placed at the script's (azimuth, elevation) position, x and y swapped
(`blender_location`), and turned towards the origin by a TRACK_TO constraint (view axis -Z, up
axis Y); `pos` is that location and `extrinsic` the camera's world -> computer-vision matrix,
diag(1, -1, -1) times Blender's world -> camera matrix.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from shapepose.cars.meshes import CAR, TRUCK, car_parts, merge_parts, sample_car_shape, shapenet_normalize
from shapepose.cars.scene import SceneRenderer, random_lighting
from shapepose.geometry import look_at_rotation
from shapepose.images.dpc import CAMERA_DISTANCE, CAR_CATEGORY, FOCAL_LENGTH, SHAPENET_TO_BLENDER, SPLITS
from shapepose.images.matfile import save_mat
from shapepose.render import Camera
from shapepose.sampling.surface import sample_on_faces
from shapepose.seeding import derive_rng

DPC_FOV_Y = float(2 * np.degrees(np.arctan(0.5 / FOCAL_LENGTH)))  # 29.9 degrees


def model_id(rng: np.random.Generator) -> str:
    """A ShapeNet-like 32-hex-digit model id."""
    return "".join(f"{b:02x}" for b in rng.integers(0, 256, 16))


def blender_location(azimuth: float, elevation: float, distance: float) -> np.ndarray:
    """DPC's render script: (d cos az cos el, d sin az cos el, d sin el) with x and y swapped."""
    az, el = np.radians(azimuth), np.radians(elevation)
    x, y, z = distance * np.cos(az) * np.cos(el), distance * np.sin(az) * np.cos(el), distance * np.sin(el)
    return np.array([y, x, z])


def blender_extrinsic(location: np.ndarray) -> np.ndarray:
    """(4, 4) world -> CV camera of a Blender camera at `location` tracking the origin.

    A TRACK_TO camera (-Z to the target, Y up, world z up) seen in CV axes is the look-at
    rotation the reader checks files against (`shapepose.geometry.look_at_rotation`; tests
    build the same matrix from Blender's Euler angles instead).
    """
    extrinsic = np.eye(4)
    extrinsic[:3, :3] = look_at_rotation(location)
    extrinsic[:3, 3] = -extrinsic[:3, :3] @ location
    return extrinsic


def render_camera(location: np.ndarray) -> Camera:
    """Our renderer's y-up camera (ShapeNet frame) at the Blender `location`."""
    eye = SHAPENET_TO_BLENDER.T @ location
    distance = float(np.linalg.norm(eye))
    return Camera(target=(0.0, 0.0, 0.0), azimuth=float(np.degrees(np.arctan2(eye[0], eye[2]))),
                  elevation=float(np.degrees(np.arcsin(eye[1] / distance))), distance=distance,
                  fov_y=DPC_FOV_Y)


def split_models(ids: list[str], fractions: dict, rng: np.random.Generator) -> dict[str, list[str]]:
    """Shuffle ids into train/val/test with the given fractions (test takes the remainder)."""
    order = [ids[k] for k in rng.permutation(len(ids))]
    n_train = int(round(fractions["train"] * len(ids)))
    n_val = int(round(fractions["val"] * len(ids)))
    return {"train": sorted(order[:n_train]), "val": sorted(order[n_train:n_train + n_val]),
            "test": sorted(order[n_train + n_val:])}


def write_synthetic(root: Path, *, seed: int, models: int, views: int, image_size: int,
                    diagonal: float, elevation: tuple[float, float], lights: tuple[int, int],
                    gt_points: int, split: dict, truck_fraction: float, shape_ranges: dict) -> dict:
    """Write the DPC-layout set under `root` (an empty directory); returns a summary for the log."""
    render_dir = root / "renders" / CAR_CATEGORY
    gt_dir = root / "gt" / "downsampled" / CAR_CATEGORY
    gt_dir.mkdir(parents=True)
    (root / "splits").mkdir()
    ids, ratios = [], []
    with SceneRenderer(image_size, image_size) as renderer:
        for m in tqdm(range(models), desc="synthetic", unit="model", file=sys.stderr):
            rng = derive_rng(seed, "demo_cars", "synthetic", m)
            ident = model_id(rng)
            kind = TRUCK if rng.random() < truck_fraction else CAR
            parts = shapenet_normalize(car_parts(sample_car_shape(rng, shape_ranges, kind)), diagonal)
            vertices, faces, _ = merge_parts(parts)
            folder = render_dir / ident
            folder.mkdir(parents=True)
            for k in range(views):
                location = blender_location(float(rng.uniform(0, 360)), float(rng.uniform(*elevation)),
                                            CAMERA_DISTANCE)
                rgba, _ = renderer.render([parts], render_camera(location), image_size, image_size,
                                          random_lighting(rng, lights, specular=False, ambient=0.3))
                Image.fromarray(rgba).save(folder / f"render_{k}.png")
                save_mat(folder / f"camera_{k}.mat",
                         {"extrinsic": blender_extrinsic(location), "pos": location.reshape(1, 3)})
                alpha = rgba[..., 3]
                ratios.append(np.count_nonzero(alpha) / max(np.count_nonzero(alpha == 0), 1))
            points = sample_on_faces(vertices, faces, gt_points, rng)[0]
            # rows come grouped by face; a reader taking a prefix must still get a uniform draw
            points = points[rng.permutation(len(points))].astype(np.float32)
            save_mat(gt_dir / f"{ident}.mat", {"points": points})
            ids.append(ident)
    splits = split_models(ids, split, derive_rng(seed, "demo_cars", "synthetic", "split"))
    for name in SPLITS:
        (root / "splits" / f"{CAR_CATEGORY}_{name}.txt").write_text("".join(f"{m}\n" for m in splits[name]))
    return {"models": len(ids), "views": views, "frame_ratio_mean": float(np.mean(ratios)),
            "frame_ratio_std": float(np.std(ratios)),
            **{f"n_{name}": len(splits[name]) for name in SPLITS}}
