"""Stanford-Cars-like demo photos: a main vehicle, maybe a second car, people and a pole, on a
textured or gradient background, with the visible mask of every object for scoring.

Each photo is one 3-D scene rendered twice by `SceneRenderer`: shaded (Blinn-Phong, several lights)
and as object ids with the depth test, so a mask is what is left of an object after everything in
front of it and the frame have cut it. Attributes are measured on those masks, not intended:
"occluded" = the mask has several 8-connected components, "cropped" = it touches the frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.ndimage
import trimesh

from shapepose.cars.meshes import CAR, TRUCK, CarShape, Part, car_parts, sample_car_shape, transform_parts, yaw_rotation
from shapepose.cars.scene import SceneRenderer, random_lighting
from shapepose.images.instances import CAR as COCO_CAR, PERSON, TRUCK as COCO_TRUCK
from shapepose.render import Camera

CLASS_NAMES = ["Demo Hatchback 2026", "Demo Sedan 2026", "Demo Estate 2026", "Demo Box Truck 2026"]
MIN_PIXELS = 30  # smaller visible remnants are not labelled (too few pixels to score)


@dataclasses.dataclass
class PhotoObject:
    category_id: int  # COCO id
    mask: np.ndarray  # (H, W) bool, visible pixels
    attributes: dict


@dataclasses.dataclass
class Photo:
    image: np.ndarray  # (H, W, 3) uint8 RGB (equal channels when grayscale)
    grayscale: bool
    objects: list[PhotoObject]  # objects[0] is the main vehicle
    class_id: int  # devkit class of the main vehicle, 1-based into CLASS_NAMES


def devkit_class(shape: CarShape) -> int:
    if shape.kind == TRUCK:
        return 4
    return 1 if shape.length < 4.1 else 2 if shape.length < 4.6 else 3


# ---- backgrounds -----------------------------------------------------------------------------

def _color(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3)


def _value_noise(rng: np.random.Generator, height: int, width: int, octaves: int = 4) -> np.ndarray:
    """Smooth multi-octave noise in [0, 1]: (H, W) float."""
    total = np.zeros((height, width))
    for octave in range(octaves):
        cells = 2 ** (octave + 2)
        coarse = rng.random((cells + 1, cells + 1))
        zoom = (height / cells, width / cells)
        total += scipy.ndimage.zoom(coarse, zoom, order=3)[:height, :width] * 0.5 ** octave
    total -= total.min()
    return total / max(total.max(), 1e-9)


def background(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, str]:
    """A (H, W, 3) float background in [0, 255] and its kind."""
    kind = ["gradient", "noise", "stripes", "checker", "horizon"][int(rng.integers(5))]
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    a, b = _color(rng), _color(rng)
    if kind == "gradient":
        angle = rng.uniform(0, np.pi)
        t = np.cos(angle) * cols / width + np.sin(angle) * rows / height
        t = (t - t.min()) / max(np.ptp(t), 1e-9)
    elif kind == "noise":
        t = _value_noise(rng, height, width)
    elif kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(8, 60)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(angle) * cols + np.sin(angle) * rows) / period)
    elif kind == "checker":
        angle, cell = rng.uniform(0, np.pi / 2), rng.uniform(10, 70)
        u = np.cos(angle) * cols + np.sin(angle) * rows
        v = -np.sin(angle) * cols + np.cos(angle) * rows
        t = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float64)
    else:  # sky above a textured ground
        horizon = rng.uniform(0.3, 0.6) * height
        sky = np.clip(rows / max(horizon, 1), 0, 1)
        ground = _value_noise(rng, height, width) * 0.6 + 0.2
        t = np.where(rows < horizon, sky, ground)
        b = np.array([90.0, 90.0, 90.0]) + rng.uniform(-40, 40, 3)
    image = a * (1 - t[..., None]) + b * t[..., None]
    image += rng.normal(0, 4, image.shape)  # sensor grain
    return np.clip(image, 0, 255), kind


# ---- scene pieces ------------------------------------------------------------------------------

def person_parts(vertices: np.ndarray, faces: np.ndarray, rng: np.random.Generator) -> list[Part]:
    """A demo body (metres, y up, feet on y = 0) as one part in a random clothing colour."""
    return [Part(np.asarray(vertices, np.float64), np.asarray(faces, np.int64),
                 tuple(float(c) for c in rng.uniform(0.1, 0.9, 3)), smooth=True, specular=0.1)]


def pole_parts(base: np.ndarray, radius: float, length: float, rng: np.random.Generator) -> list[Part]:
    """A vertical post centred on `base`; `length` is chosen to cross the whole frame."""
    cyl = trimesh.creation.cylinder(radius=radius, height=length, sections=16)
    # trimesh's cylinder runs along z; turn it upright (about x by -90 degrees keeps the winding).
    rot = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    vertices = np.asarray(cyl.vertices) @ rot.T + base
    grey = float(rng.uniform(0.2, 0.7))
    return [Part(vertices, np.asarray(cyl.faces, np.int64), (grey, grey, grey * 1.05 if grey < 0.9 else grey),
                 smooth=True, specular=0.4)]


def _bounds(objects: list[list[Part]]) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.vstack([p.vertices for parts in objects for p in parts])
    return vertices.min(axis=0), vertices.max(axis=0)


def _projected_box(camera: Camera, parts: list[Part], width: int, height: int) -> np.ndarray:
    """[c0, r0, c1, r1] of the projected bounding-box corners."""
    low, high = _bounds([parts])
    corners = np.array(np.meshgrid(*zip(low, high))).reshape(3, -1).T
    uv = camera.project(corners, width, height)
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])


@dataclasses.dataclass(frozen=True)
class PhotoOptions:
    """What the photos may contain; probabilities are per photo (see the config schema)."""

    long_side: tuple[int, int]
    aspect: tuple[float, float]
    elevation: tuple[float, float]
    fov_y: tuple[float, float]
    car_scale: tuple[float, float]  # sqrt(box area) of the main car / short side
    small_size: tuple[float, float]  # sqrt(box area) of a small car, pixels
    lights: tuple[int, int]
    p_small: float
    p_cropped: float
    p_occluded: float
    p_grayscale: float
    p_person: float
    p_truck: float
    p_second_car: float


def compose_photo(rng: np.random.Generator, renderer: SceneRenderer, options: PhotoOptions,
                  shape_ranges: dict, people: list[tuple[np.ndarray, np.ndarray]]) -> Photo:
    """Draw and render one photo; the main vehicle is always (at least partly) visible."""
    o = options
    long_side = int(rng.integers(o.long_side[0], o.long_side[1] + 1))
    aspect = float(rng.uniform(*o.aspect))
    width, height = long_side, max(int(round(long_side / aspect)), 16)
    if rng.random() < 0.1:  # a few portrait shots
        width, height = height, width

    kind = TRUCK if rng.random() < o.p_truck else CAR
    shape = sample_car_shape(rng, shape_ranges, kind)
    main = transform_parts(car_parts(shape), yaw_rotation(rng.uniform(0, 2 * np.pi)), np.zeros(3))
    objects: list[tuple[int, list[Part]]] = [(COCO_TRUCK if kind == TRUCK else COCO_CAR, main)]
    if rng.random() < o.p_second_car:
        other = sample_car_shape(rng, shape_ranges, CAR)
        side = rng.choice([-1.0, 1.0])
        offset = np.array([rng.uniform(-2.0, 2.0), 0.0, side * rng.uniform(2.4, 5.0)])
        if rng.random() < 0.5:  # behind rather than beside
            offset = np.array([side * rng.uniform(3.0, 6.0), 0.0, -rng.uniform(3.0, 8.0)])
        objects.append((COCO_CAR, transform_parts(car_parts(other), yaw_rotation(rng.uniform(0, 2 * np.pi)), offset)))

    camera_yaw = rng.uniform(0, 360)
    elevation = float(rng.uniform(*o.elevation))
    fov_y = float(rng.uniform(*o.fov_y))
    centre_height = shape.height / 2
    probe = Camera((0.0, centre_height, 0.0), camera_yaw, elevation, 10.0, fov_y)
    box = _projected_box(probe, main, width, height)
    size_at_probe = np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1.0))
    small = rng.random() < o.p_small
    target = (rng.uniform(*o.small_size) if small
              else rng.uniform(*o.car_scale) * min(width, height))
    # Projected size falls as 1 / distance; keep the camera well outside the car.
    distance = max(10.0 * size_at_probe / target, 1.2 * shape.length)
    camera = Camera((0.0, centre_height, 0.0), camera_yaw, elevation, distance, fov_y)

    if rng.random() < o.p_person:
        for _ in range(int(rng.integers(1, 3))):
            vertices, faces = people[int(rng.integers(len(people)))]
            toward_camera = camera.eye - np.array(camera.target)
            toward_camera[1] = 0
            toward_camera /= np.linalg.norm(toward_camera)
            lateral = np.cross([0.0, 1.0, 0.0], toward_camera)
            place = (lateral * rng.choice([-1, 1]) * rng.uniform(0.6, 1.0) * (shape.length / 2 + rng.uniform(0.3, 1.5))
                     + toward_camera * rng.uniform(-1.0, 0.45) * distance * 0.5)
            place[1] = 0.0
            person = transform_parts(person_parts(vertices, faces, rng),
                                     yaw_rotation(rng.uniform(0, 2 * np.pi)), place)
            objects.append((PERSON, person))

    # Move the scene across the image: inside the frame, or (cropped) with the main car past a border.
    view = camera.view_matrix()
    right, up = view[0, :3], view[1, :3]
    box = _projected_box(camera, main, width, height)
    half_w, half_h = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    if rng.random() < o.p_cropped:
        edge = int(rng.integers(4))
        outside = rng.uniform(0.2, 0.45)  # fraction of the car's extent beyond the border
        goal = np.array([rng.uniform(half_w, max(width - half_w, half_w + 1)),
                         rng.uniform(half_h, max(height - half_h, half_h + 1))])
        if edge == 0:
            goal[0] = half_w - 2 * outside * half_w
        elif edge == 1:
            goal[0] = width - half_w + 2 * outside * half_w
        elif edge == 2:
            goal[1] = half_h - 2 * outside * half_h
        else:
            goal[1] = height - half_h + 2 * outside * half_h
    else:
        goal = np.array([rng.uniform(min(half_w + 2, width / 2), max(width - half_w - 2, width / 2)),
                         rng.uniform(min(half_h + 2, height / 2), max(height - half_h - 2, height / 2))])
    focal = camera.focal_px(height)
    shift_px = goal - centre
    shift = right * shift_px[0] * distance / focal - up * shift_px[1] * distance / focal
    objects = [(cat, transform_parts(parts, np.eye(3), shift)) for cat, parts in objects]

    occluder = []
    if rng.random() < o.p_occluded:
        # A post between the camera and the main car, over its middle, narrower than the car.
        car_centre = np.array(camera.target) + shift
        t = rng.uniform(0.35, 0.65)
        across = rng.uniform(-0.2, 0.2) * 2 * half_w * distance / focal
        base = camera.eye + t * (car_centre - camera.eye) + right * across * t
        band = rng.uniform(0.08, 0.2) * 2 * half_w  # post width on the image, pixels
        radius = band / 2 * (t * distance) / focal
        occluder = [pole_parts(base, radius, 4 * distance, rng)]

    lighting = random_lighting(rng, o.lights, specular=True, ambient=float(rng.uniform(0.15, 0.35)))
    rgba, ids = renderer.render([parts for _, parts in objects] + occluder, camera, width, height, lighting)
    bg, _ = background(rng, height, width)
    alpha = rgba[..., 3:4].astype(np.float64) / 255
    image = np.clip(np.rint(alpha * rgba[..., :3] + (1 - alpha) * bg), 0, 255).astype(np.uint8)
    grayscale = rng.random() < o.p_grayscale
    if grayscale:
        gray = np.rint(image @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)
        image = np.repeat(gray[..., None], 3, axis=2)

    labelled = []
    for k, (category, _) in enumerate(objects):
        mask = ids == k + 1
        if k > 0 and mask.sum() < MIN_PIXELS:
            continue
        labelled.append(PhotoObject(category, mask, mask_attributes(mask) | {
            "grayscale": bool(grayscale), "main": k == 0, "small": bool(small) if k == 0 else False}))
    return Photo(image, grayscale, labelled, devkit_class(shape))


def mask_attributes(mask: np.ndarray) -> dict:
    """{"occluded": several 8-connected parts, "cropped": touches the frame} of a (H, W) bool mask."""
    _, n_parts = scipy.ndimage.label(mask, structure=np.ones((3, 3)))
    touches = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    return {"occluded": n_parts > 1, "cropped": touches}
