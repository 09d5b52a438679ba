"""Procedural car and truck meshes: a rounded body, a cabin, a roof and wheels, each a closed part.

Units are metres in a y-up frame: the car's length runs along x (front toward +x), its width along
z, and its wheels stand on the ground plane y = 0. Every part is a closed, consistently wound
triangle mesh, so the whole car is a union of watertight shells (parts may overlap; renders and
surface samples do not mind). The DPC-style synthetic set rescales the car to ShapeNet's
normalization (bounding-box centre at the origin, diagonal of a chosen length).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import trimesh

CAR, TRUCK = "car", "truck"
_GLASS = (0.12, 0.15, 0.2)
_TYRE = (0.05, 0.05, 0.05)
_RIM = (0.6, 0.6, 0.62)


@dataclasses.dataclass(frozen=True)
class CarShape:
    """The proportions of one vehicle (metres) and its paint colour (RGB in [0, 1])."""

    kind: str  # CAR or TRUCK
    length: float
    width: float
    height: float  # overall, ground to roof
    clearance: float  # ground to the bottom of the body
    wheel_radius: float
    cabin_length: float  # cars: the glasshouse; trucks: the cab
    cabin_offset: float  # centre of the cabin along x, as a fraction of the length
    color: tuple[float, float, float]


@dataclasses.dataclass
class Part:
    """One closed piece of a mesh with one material."""

    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) int64, counter-clockwise seen from outside
    color: tuple[float, float, float]
    smooth: bool = True  # interpolate vertex normals (False: flat facets)
    specular: float = 0.5  # Blinn-Phong specular strength in photos


def sample_car_shape(rng: np.random.Generator, ranges: dict, kind: str = CAR) -> CarShape:
    """Draw proportions uniformly within `ranges` ({name: [low, high]}, see the config schema)."""
    def draw(name: str) -> float:
        low, high = ranges[name]
        return float(rng.uniform(low, high))

    length = draw("truck_length" if kind == TRUCK else "length")
    width = length * draw("width_ratio")
    height = draw("truck_height" if kind == TRUCK else "height")
    wheel_radius = draw("wheel_radius") * (1.15 if kind == TRUCK else 1.0)
    clearance = wheel_radius * draw("clearance_ratio")
    cabin_length = length * draw("truck_cab_ratio" if kind == TRUCK else "cabin_ratio")
    offset = draw("cabin_offset")
    if kind == TRUCK:  # the cab sits at the front, the cargo box behind it
        offset = 0.5 - cabin_length / length / 2 - 0.02
    # Saturated paints and greys, as in a car park.
    hue = rng.uniform(0, 1)
    saturation = rng.choice([rng.uniform(0.0, 0.15), rng.uniform(0.5, 0.95)])
    value = rng.uniform(0.25, 0.95)
    color = tuple(float(c) for c in _hsv_to_rgb(hue, saturation, value))
    return CarShape(kind, length, width, height, clearance, wheel_radius, cabin_length, offset, color)


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


def rounded_box(size: tuple[float, float, float], center: tuple[float, float, float],
                exponent: float = 8.0, subdivisions: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A superellipsoid |x|^e + |y|^e + |z|^e = 1 scaled to `size` (x, y, z extents): a rounded box.

    An icosphere is pushed radially onto the surface, which keeps it closed and its winding.
    """
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    d = np.asarray(sphere.vertices)
    radius = np.sum(np.abs(d) ** exponent, axis=1) ** (1.0 / exponent)
    unit = d / radius[:, None]
    return unit * (np.asarray(size) / 2) + np.asarray(center), np.asarray(sphere.faces, np.int64)


def tapered_box(bottom: tuple[float, float], top: tuple[float, float], height: float,
                top_shift: float, base: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A hexahedron: bottom rectangle (length, width) at `base`, top rectangle `height` above.

    `top_shift` moves the top along x (a raked windscreen). Faces wind outward.
    """
    (bl, bw), (tl, tw) = bottom, top
    x0, y0, z0 = base
    vertices = np.array([
        [x0 - bl / 2, y0, z0 - bw / 2], [x0 + bl / 2, y0, z0 - bw / 2],
        [x0 + bl / 2, y0, z0 + bw / 2], [x0 - bl / 2, y0, z0 + bw / 2],
        [x0 + top_shift - tl / 2, y0 + height, z0 - tw / 2],
        [x0 + top_shift + tl / 2, y0 + height, z0 - tw / 2],
        [x0 + top_shift + tl / 2, y0 + height, z0 + tw / 2],
        [x0 + top_shift - tl / 2, y0 + height, z0 + tw / 2],
    ])
    faces = np.array([
        [0, 1, 2], [0, 2, 3],  # bottom (faces -y)
        [4, 6, 5], [4, 7, 6],  # top (+y)
        [0, 4, 5], [0, 5, 1],  # -z side
        [2, 6, 7], [2, 7, 3],  # +z side
        [1, 5, 6], [1, 6, 2],  # front (+x)
        [3, 7, 4], [3, 4, 0],  # back (-x)
    ], dtype=np.int64)
    return vertices, faces


def wheel(radius: float, width: float, center: tuple[float, float, float],
          sections: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A closed cylinder with its axis along z (the car's width)."""
    cyl = trimesh.creation.cylinder(radius=radius, height=width, sections=sections)
    return np.asarray(cyl.vertices) + np.asarray(center), np.asarray(cyl.faces, np.int64)


def car_parts(shape: CarShape) -> list[Part]:
    """The closed parts of one vehicle, wheels on y = 0, centred on x = z = 0."""
    L, W, H = shape.length, shape.width, shape.height
    r, c = shape.wheel_radius, shape.clearance
    paint = shape.color
    parts = []
    wheel_width = 0.14 * W
    axle_x = 0.5 * L - 1.25 * r
    for x in (-axle_x, axle_x):
        for side in (-1, 1):
            z = side * (W / 2 - 0.52 * wheel_width)  # rim flush with the body side
            parts.append(Part(*wheel(r, wheel_width, (x, r, z)), _TYRE, smooth=False, specular=0.05))
            parts.append(Part(*wheel(0.6 * r, wheel_width * 1.04, (x, r, z), sections=12), _RIM,
                              smooth=False, specular=0.8))
    if shape.kind == TRUCK:
        # Chassis, then a cab at the front and a taller cargo box behind it.
        chassis_top = c + 0.45 * (H - c)
        parts.append(Part(*rounded_box((L, chassis_top - c, W * 0.98), (0, (c + chassis_top) / 2, 0),
                                       exponent=10), paint, specular=0.6))
        cab_x = shape.cabin_offset * L
        cab_h = H - chassis_top
        parts.append(Part(*rounded_box((shape.cabin_length, 0.92 * cab_h, W),
                                       (cab_x, chassis_top + 0.46 * cab_h, 0), exponent=6),
                          paint, specular=0.6))
        glass_x = cab_x + 0.3 * shape.cabin_length
        parts.append(Part(*tapered_box((0.45 * shape.cabin_length, 0.9 * W), (0.3 * shape.cabin_length, 0.88 * W),
                                       0.45 * cab_h, -0.05 * shape.cabin_length,
                                       (glass_x, chassis_top + 0.42 * cab_h, 0)),
                          _GLASS, smooth=False, specular=1.0))
        cargo_len = L - shape.cabin_length - 0.06 * L
        cargo_x = -L / 2 + cargo_len / 2 + 0.01 * L
        cargo_h = H - chassis_top
        parts.append(Part(*tapered_box((cargo_len, W), (cargo_len, W), cargo_h + 0.02, 0.0,
                                       (cargo_x, chassis_top - 0.02, 0)),
                          tuple(0.85 * np.asarray(paint) + 0.1), smooth=False, specular=0.2))
        return parts
    body_top = c + 0.55 * (H - c)
    parts.append(Part(*rounded_box((L, body_top - c, W), (0, (c + body_top) / 2, 0), exponent=6),
                      paint, specular=0.7))
    cabin_h = H - body_top
    cabin_x = shape.cabin_offset * L
    bottom_len = shape.cabin_length
    top_len = 0.62 * bottom_len
    parts.append(Part(*tapered_box((bottom_len, 0.9 * W), (top_len, 0.8 * W), 0.9 * cabin_h,
                                   -0.08 * bottom_len, (cabin_x, body_top - 0.02, 0)),
                      _GLASS, smooth=False, specular=1.0))
    parts.append(Part(*rounded_box((top_len * 1.02, 0.14 * cabin_h, 0.82 * W),
                                   (cabin_x - 0.08 * bottom_len, H - 0.07 * cabin_h, 0),
                                   exponent=8, subdivisions=2),
                      paint, specular=0.7))
    return parts


def merge_parts(parts: list[Part]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One mesh of all parts: vertices (V, 3) float64, faces (F, 3) int64, colors (V, 3) float32."""
    vertices, faces, colors, offset = [], [], [], 0
    for part in parts:
        vertices.append(part.vertices)
        faces.append(part.faces + offset)
        colors.append(np.tile(np.asarray(part.color, np.float32), (len(part.vertices), 1)))
        offset += len(part.vertices)
    return np.vstack(vertices), np.vstack(faces), np.vstack(colors)


def transform_parts(parts: list[Part], rotation: np.ndarray, translation: np.ndarray,
                    scale: float = 1.0) -> list[Part]:
    """Parts moved to scale * R @ v + t (R a proper rotation, so windings stay outward)."""
    return [dataclasses.replace(p, vertices=scale * p.vertices @ np.asarray(rotation).T
                                + np.asarray(translation)) for p in parts]


def yaw_rotation(angle: float) -> np.ndarray:
    """(3, 3) rotation by `angle` radians about +y."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def shapenet_normalize(parts: list[Part], diagonal: float = 1.0) -> list[Part]:
    """Parts scaled and moved so the bounding box is centred at the origin with this diagonal."""
    vertices = np.vstack([p.vertices for p in parts])
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    scale = diagonal / np.linalg.norm(high - low)
    return transform_parts(parts, np.eye(3), -scale * (low + high) / 2, scale)
