"""The authors' pose-transfer data on disk: one OBJ per mesh, and the test lists of triples.

Meshes: `{root}/id{i}_{p}.obj` (identity i in pose p; the reproduction's name) or `{root}/{i}_{p}.obj`
(the authors' loader's), `v x y z` lines and 1-based `f a b c` lines, every mesh of one topology.
Test lists: one line per triple `identity pose ground_truth`, each a file name relative to the
root; the ground truth is the identity's body in the pose mesh's pose.

Every mesh is centred on its bounding-box centre before it meets the network
(`metrics.bbox_centred`), as the authors' loader does. The meshes must have no global rotation (the authors' issue #15: a rotated
body gives meaningless results): `tilt_problem` checks that the body's longest principal axis is
within a bound of the +y (up) axis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shapepose.errors import InputError


def mesh_name(identity: int, pose: int) -> str:
    """The file name the demo writes for identity `identity` in pose `pose`."""
    return f"id{identity}_{pose}.obj"


def mesh_path(root: str | os.PathLike, identity: int, pose: int) -> Path:
    """`id{i}_{p}.obj` under `root`, or the authors' `{i}_{p}.obj` when only that exists."""
    root = Path(root)
    path = root / mesh_name(identity, pose)
    if path.is_file():
        return path
    plain = root / f"{identity}_{pose}.obj"
    if plain.is_file():
        return plain
    raise InputError(path, f"mesh of identity {identity} in pose {pose} does not exist (nor {plain.name})")


def write_obj(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray) -> None:
    """`v` lines (6 decimals, micrometres) then 1-based `f` lines; the caller writes atomically."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices, dtype=np.float64)]
    lines += [f"f {a} {b} {c}" for a, b, c in np.asarray(faces, dtype=np.int64) + 1]
    Path(path).write_text("\n".join(lines) + "\n")


def read_obj(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """vertices (V, 3) float64 and faces (F, 3) int64 (0-based) of an OBJ of triangles.

    InputError naming the file when it is missing, has no vertices or faces, a face that is not a
    triangle or points past the vertices, or a non-finite coordinate.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(path, "mesh file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the mesh file ({exc})") from None
    vertices, faces = [], []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "v":
                vertices.append([float(x) for x in parts[1:4]])
            elif parts[0] == "f":
                corners = [int(c.split("/")[0]) for c in parts[1:]]
                if len(corners) != 3:
                    raise InputError(path, f"line {number}: a face of {len(corners)} corners; "
                                           "the meshes are triangles")
                faces.append(corners)
        except ValueError:
            raise InputError(path, f"line {number} is not a valid OBJ {parts[0]} line: {line!r}") from None
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3) - 1
    if not len(vertices) or not len(faces):
        raise InputError(path, f"mesh has {len(vertices)} vertices and {len(faces)} faces")
    if not np.isfinite(vertices).all():
        bad = int(np.flatnonzero(~np.isfinite(vertices).all(axis=1))[0])
        raise InputError(path, f"non-finite vertex coordinates (first at vertex {bad + 1})")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(path, f"a face refers to vertex {faces.max() + 1} or {faces.min() + 1} "
                               f"of {len(vertices)}")
    return vertices, faces


def tilt_degrees(vertices: np.ndarray) -> float:
    """Angle between the longest principal axis of the vertices and the y axis, in [0, 90]."""
    x = vertices - vertices.mean(axis=0)
    _, vectors = np.linalg.eigh(x.T @ x)
    return float(np.degrees(np.arccos(min(1.0, abs(vectors[1, -1])))))


def tilt_problem(vertices: np.ndarray, max_tilt_deg: float | None) -> str | None:
    """Why a body mesh looks globally rotated, or None: its longest principal axis is more than
    `max_tilt_deg` from +y (None: no check)."""
    if max_tilt_deg is None:
        return None
    tilt = tilt_degrees(vertices)
    if tilt > max_tilt_deg:
        return (f"the body's long axis is {tilt:.0f} degrees from the y (up) axis (at most "
                f"{max_tilt_deg:g}): a mesh with a global rotation, on which pose transfer is "
                "meaningless (authors' issue #15); give the meshes without global rotation")
    return None


@dataclass(frozen=True)
class Triple:
    """One test pair and its answer: file names of the identity, pose and ground-truth meshes."""

    identity: str
    pose: str
    ground_truth: str


def read_triples(path: str | os.PathLike, root: str | os.PathLike) -> list[Triple]:
    """The triples of a test list, every named mesh checked to exist under `root`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(path, "test list does not exist") from None
    triples = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 3:
            raise InputError(path, f"line {number}: expected 'identity pose ground_truth', got {line!r}")
        for name in parts:
            if not (Path(root) / name).is_file():
                raise InputError(path, f"line {number}: mesh {name} does not exist in {root}")
        triples.append(Triple(*parts))
    if not triples:
        raise InputError(path, "test list holds no triples")
    return triples


class MeshStore:
    """Meshes read on demand and kept (the demo's all fit; the authors' 24k read as needed).

    Every mesh is checked on first read: finite, the expected vertex count and faces of the first
    mesh read (one topology), and no global rotation.
    """

    def __init__(self, root: str | os.PathLike, *, max_tilt_deg: float | None,
                 n_vertices: int | None = None, capacity: int = 100_000):
        self.root = Path(root)
        self.max_tilt_deg = max_tilt_deg
        self.n_vertices = n_vertices
        self.faces: np.ndarray | None = None
        self.capacity = capacity
        self._cache: dict[Path, np.ndarray] = {}

    def vertices(self, path: str | os.PathLike) -> np.ndarray:
        """(V, 3) float32 of the mesh file `path`, as stored (not centred)."""
        path = Path(path)
        if path in self._cache:
            return self._cache[path]
        vertices, faces = read_obj(path)
        if self.n_vertices is not None and len(vertices) != self.n_vertices:
            raise InputError(path, f"mesh has {len(vertices)} vertices, the model {self.n_vertices}: "
                                   "every mesh of a run shares one topology (the original variant "
                                   "pairs pose and identity points one to one, so needs equal counts)")
        if self.faces is None:
            self.faces, self.n_vertices = faces, len(vertices)
        elif faces.shape != self.faces.shape or not np.array_equal(faces, self.faces):
            raise InputError(path, "mesh faces differ from the first mesh's: the meshes must share "
                                   "one topology")
        problem = tilt_problem(vertices, self.max_tilt_deg)
        if problem is not None:
            raise InputError(path, problem)
        vertices = vertices.astype(np.float32)
        if len(self._cache) < self.capacity:
            self._cache[path] = vertices
        return vertices

    def identity_pose(self, identity: int, pose: int) -> np.ndarray:
        return self.vertices(mesh_path(self.root, identity, pose))
