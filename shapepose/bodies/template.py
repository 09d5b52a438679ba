"""The demo body's one template mesh: an implicit union of round cones, meshed once at rest.

Each bone (named by the joint it ends at) owns a few round cones (the convex hull of two spheres).
The body is their smooth union, meshed with marching cubes on a grid fine enough for about 7k
vertices (SMPL has 6890). Skinning weights come from the bone each vertex is closest to, blurred
along the surface, so weights never leak across a gap (arm to torso, leg to leg) the way a
distance-based softmax would. Nothing here is random: the template is the same on every run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from skimage.measure import marching_cubes

from shapepose.bodies.skeleton import JOINT_NAMES, N_JOINTS, PARENTS, REST_JOINTS
from shapepose.meshes import signed_volume, watertight_problem

SMOOTH_UNION_K = 0.01  # metres: how far the smooth union rounds the creases between primitives
GRID_SPACING = 0.0185  # metres: picked so the template has ~6.9k vertices
TAUBIN_STEPS = 4
WEIGHT_DIFFUSION_STEPS = 30  # blur radius ~ sqrt(steps / 2) edges, a few cm either side of a joint
WEIGHT_FLOOR = 0.05  # weights below this are dropped (continuously): mid-limb weights are exactly 1


@dataclass(frozen=True)
class RoundCone:
    """The convex hull of the spheres (a, ra) and (b, rb); owned by the bone ending at `bone`."""

    bone: str
    a: tuple[float, float, float]
    b: tuple[float, float, float]
    ra: float
    rb: float


def _joint(name: str) -> np.ndarray:
    return REST_JOINTS[JOINT_NAMES.index(name)]


def _lerp(p: str, q: str, s: float) -> np.ndarray:
    return (1 - s) * _joint(p) + s * _joint(q)


def _left_primitives() -> list[RoundCone]:
    """Round cones of the left limbs and the left half of the hips and shoulders."""
    j = _joint
    hand = (j("l_hand_tip") - j("l_wrist")) / np.linalg.norm(j("l_hand_tip") - j("l_wrist"))
    flat = np.array([0.0, 0.0, 0.013])  # the hand is flat in the plane of the arm and +z
    cones = [
        # hip and buttock (bone pelvis -> hip, so hip width scales them)
        RoundCone("l_hip", (0.02, 0.92, -0.01), (0.09, 0.88, -0.01), 0.10, 0.088),
        RoundCone("l_hip", (0.06, 0.92, -0.04), (0.075, 0.86, -0.035), 0.088, 0.08),
        # shoulder girdle (bone collar -> shoulder)
        RoundCone("l_shoulder", (0.035, 1.385, -0.02), tuple(j("l_shoulder") + [-0.01, 0, 0]),
                  0.065, 0.055),
        RoundCone("l_elbow", tuple(j("l_shoulder")), tuple(j("l_elbow")), 0.047, 0.037),  # arm
        RoundCone("l_wrist", tuple(j("l_elbow")), tuple(j("l_wrist")), 0.036, 0.026),  # forearm
        RoundCone("l_knee", tuple(j("l_hip")), tuple(j("l_knee")), 0.08, 0.05),  # thigh
        RoundCone("l_ankle", tuple(j("l_knee")), tuple(j("l_ankle")), 0.05, 0.033),  # shin
        RoundCone("l_ankle", tuple(_lerp("l_knee", "l_ankle", 0.1) + [0, 0, -0.02]),  # calf
                  tuple(_lerp("l_knee", "l_ankle", 0.6) + [0, 0, -0.012]), 0.05, 0.038),
        # foot: heel to toes, two side by side for a flat sole
        RoundCone("l_toe", (0.10, 0.035, -0.06), (0.105, 0.022, 0.12), 0.033, 0.022),
        RoundCone("l_toe", (0.12, 0.035, -0.06), (0.145, 0.022, 0.11), 0.033, 0.022),
    ]
    for side in (-1, 1):
        cones.append(RoundCone("l_hand_tip", tuple(j("l_wrist") + 0.025 * hand + side * flat),
                               tuple(j("l_hand_tip") - 0.02 * hand + side * flat), 0.022, 0.018))
    return cones


def primitives() -> list[RoundCone]:
    """Every round cone of the body, left limbs mirrored onto the right."""
    cones = []
    for sx in (-1, 1):  # the torso: side-by-side pairs, wider than deep
        cones += [
            RoundCone("spine", (sx * 0.06, 0.93, 0.0), (sx * 0.06, 1.10, -0.005), 0.095, 0.09),
            RoundCone("chest", (sx * 0.06, 1.08, -0.005), (sx * 0.06, 1.25, 0.0), 0.09, 0.095),
            RoundCone("neck", (sx * 0.06, 1.24, 0.0), (sx * 0.05, 1.36, -0.025), 0.092, 0.075),
        ]
    cones += [  # midline cones fill the crease between the side-by-side pairs and add depth
        RoundCone("spine", (0.0, 0.95, 0.01), (0.0, 1.10, 0.005), 0.09, 0.085),
        RoundCone("chest", (0.0, 1.10, 0.005), (0.0, 1.25, 0.012), 0.085, 0.09),
        RoundCone("neck", (0.0, 1.25, 0.012), (0.0, 1.36, -0.015), 0.088, 0.07),
        RoundCone("head", (0.0, 1.38, -0.025), (0.0, 1.55, -0.005), 0.055, 0.05),
        RoundCone("head_top", (0.0, 1.575, 0.015), (0.0, 1.64, 0.0), 0.085, 0.095),
    ]
    for cone in _left_primitives():
        cones.append(cone)
        cones.append(RoundCone("r_" + cone.bone[2:], _mirror(cone.a), _mirror(cone.b),
                               cone.ra, cone.rb))
    return cones


def _mirror(p) -> tuple[float, float, float]:
    """A point reflected across the body's plane of symmetry, x = 0."""
    return (-p[0], p[1], p[2])


def round_cone_distance(points: np.ndarray, cone: RoundCone) -> np.ndarray:
    """Exact signed distance from points (N, 3) to a round cone: (N,) float64, negative inside.

    Work in the half-plane through the axis: u along the axis from a, v >= 0 away from it. The
    side of the hull is the line tangent to both circles; its unit normal n = (sin t, cos t) with
    sin t = (ra - rb) / L. Points whose projection along the side falls before the tangent point on
    sphere a (or after the one on sphere b) are nearest to that sphere, the rest to the side line.
    """
    a, b = np.asarray(cone.a), np.asarray(cone.b)
    axis = b - a
    length = np.linalg.norm(axis)
    axis = axis / length
    rel = points - a
    u = rel @ axis
    v = np.linalg.norm(rel - u[:, None] * axis, axis=1)
    sin_t = (cone.ra - cone.rb) / length
    cos_t = np.sqrt(1.0 - sin_t**2)
    along_side = u * cos_t - v * sin_t  # coordinate along the tangent line, 0 at sphere a
    to_a = np.hypot(u, v) - cone.ra
    to_b = np.hypot(u - length, v) - cone.rb
    to_side = u * sin_t + v * cos_t - cone.ra
    return np.where(along_side < 0, to_a, np.where(along_side > length * cos_t, to_b, to_side))


def primitive_distances(points: np.ndarray, cones: list[RoundCone]) -> np.ndarray:
    """Signed distance to each cone: points (N, 3) -> (N, P) float64."""
    return np.stack([round_cone_distance(points, c) for c in cones], axis=1)


def smooth_union(distances: np.ndarray, k: float = SMOOTH_UNION_K) -> np.ndarray:
    """Log-sum-exp smooth minimum over the last axis: (..., P) -> (...), at most min(d)."""
    low = distances.min(axis=-1)
    return low - k * np.log(np.exp(-(distances - low[..., None]) / k).sum(axis=-1))


def body_field(points: np.ndarray) -> np.ndarray:
    """The implicit body at rest: points (N, 3) -> (N,) float64, negative inside."""
    return smooth_union(primitive_distances(points, primitives()))


def _mesh_field(spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of `body_field` on a grid of `spacing`: vertices (V, 3), faces (F, 3)."""
    cones = primitives()
    ends = np.array([c.a for c in cones] + [c.b for c in cones])
    radius = max(max(c.ra, c.rb) for c in cones)
    lo = ends.min(axis=0) - radius - 2 * spacing
    hi = ends.max(axis=0) + radius + 2 * spacing
    axes = [np.arange(lo[i], hi[i] + spacing, spacing) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    field = body_field(grid).reshape(len(axes[0]), len(axes[1]), len(axes[2]))
    # a grid value exactly on the level set would give zero-length edges; nudge it outside
    field[field == 0.0] = 1e-12
    verts, faces, _, _ = marching_cubes(field, level=0.0, spacing=(spacing,) * 3,
                                        gradient_direction="ascent", allow_degenerate=False)
    return verts.astype(np.float64) + lo, faces.astype(np.int64)


def _weld(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge bit-identical vertices and drop faces that collapse; keeps vertex order stable."""
    unique, first, inverse = np.unique(vertices, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # renumber by first appearance, not by coordinate
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    faces = rank[inverse.reshape(-1)][faces]
    keep = np.all(faces != np.roll(faces, 1, axis=1), axis=1)  # three distinct corners
    return unique[order], faces[keep]


def vertex_adjacency(n_vertices: int, faces: np.ndarray) -> sp.csr_matrix:
    """Symmetric 0/1 vertex adjacency (V, V) of a triangle mesh."""
    i = faces[:, [0, 1, 2, 1, 2, 0]].reshape(-1)
    j = faces[:, [1, 2, 0, 0, 1, 2]].reshape(-1)
    adj = sp.csr_matrix((np.ones(len(i)), (i, j)), shape=(n_vertices, n_vertices))
    adj.data[:] = 1.0
    return adj


def _neighbour_mean(adj: sp.csr_matrix) -> sp.csr_matrix:
    degree = np.asarray(adj.sum(axis=1)).ravel()
    return sp.diags(1.0 / degree) @ adj


def taubin_smooth(vertices: np.ndarray, faces: np.ndarray, steps: int,
                  lam: float = 0.5, mu: float = -0.53) -> np.ndarray:
    """Taubin's shrink-free smoothing: alternate umbrella steps of weight `lam` and `mu`."""
    mean = _neighbour_mean(vertex_adjacency(len(vertices), faces))
    v = vertices.copy()
    for _ in range(steps):
        v = v + lam * (mean @ v - v)
        v = v + mu * (mean @ v - v)
    return v


def closed_manifold_problem(n_vertices: int, faces: np.ndarray) -> str | None:
    """Why a mesh is not one closed, consistently wound genus-0 surface, or None if it is."""
    problem = watertight_problem(faces)
    if problem is not None:
        return problem
    directed = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    undirected = np.unique(np.sort(directed, axis=1), axis=0)
    used = np.unique(faces)
    if len(used) != n_vertices:
        return f"{n_vertices - len(used)} vertices are in no face"
    n_components, _ = connected_components(vertex_adjacency(n_vertices, faces))
    if n_components != 1:
        return f"{n_components} connected components"
    euler = n_vertices - len(undirected) + len(faces)
    if euler != 2:
        return f"Euler characteristic {euler}, expected 2 (a sphere-like surface)"
    return None


def _bone_weights(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-vertex weight of each bone, (V, J), column j = bone ending at joint j; rows sum to 1.

    Each vertex starts fully owned by the bone with the nearest primitive; the labels are then
    blurred by repeated neighbour averaging on the mesh, and small weights are dropped by a
    continuous soft threshold, so mid-limb vertices keep weight exactly 1 on their own bone.
    """
    cones = primitives()
    distances = primitive_distances(vertices, cones)
    bone_of_cone = np.array([JOINT_NAMES.index(c.bone) for c in cones])
    owner = bone_of_cone[np.argmin(distances, axis=1)]
    weights = np.zeros((len(vertices), N_JOINTS))
    weights[np.arange(len(vertices)), owner] = 1.0
    mean = _neighbour_mean(vertex_adjacency(len(vertices), faces))
    for _ in range(WEIGHT_DIFFUSION_STEPS):
        weights = 0.5 * weights + 0.5 * (mean @ weights)
    weights = np.maximum(weights - WEIGHT_FLOOR, 0.0)
    return weights / weights.sum(axis=1, keepdims=True)


def driver_weights(bone_weights: np.ndarray) -> np.ndarray:
    """Skinning weights per driving joint from bone weights: (V, J) -> (V, J).

    The bone ending at joint j moves with its parent's frame, so its weight goes to PARENTS[j].
    """
    skin = np.zeros_like(bone_weights)
    for j in range(N_JOINTS):
        if PARENTS[j] >= 0:
            skin[:, PARENTS[j]] += bone_weights[:, j]
    return skin


@dataclass(frozen=True)
class Template:
    """The rest-pose template every demo body is made from.

    vertices: (V, 3) float64 rest surface, feet on y = 0; faces: (F, 3) int64, outward winding;
    joints: (J, 3) float64 rest joints in the same frame; bone_weights: (V, J), column j is the
    bone ending at joint j; skin_weights: (V, J), weight of each joint's frame in skinning.
    """

    vertices: np.ndarray
    faces: np.ndarray
    joints: np.ndarray
    bone_weights: np.ndarray
    skin_weights: np.ndarray


def build_template(spacing: float = GRID_SPACING) -> Template:
    """Mesh the implicit body, smooth it, orient it outward, check it, and attach weights."""
    vertices, faces = _weld(*_mesh_field(spacing))
    vertices = taubin_smooth(vertices, faces, TAUBIN_STEPS)
    if signed_volume(vertices, faces) < 0:
        faces = faces[:, ::-1].copy()
    problem = closed_manifold_problem(len(vertices), faces)
    if problem is not None:
        raise RuntimeError(f"demo body template is not watertight: {problem}")
    bone_weights = _bone_weights(vertices, faces)  # in the frame the primitives are given in
    ground = vertices[:, 1].min()  # put the soles exactly on y = 0
    vertices = vertices - [0.0, ground, 0.0]
    joints = REST_JOINTS - [0.0, ground, 0.0]
    template = Template(vertices, faces, joints, bone_weights, driver_weights(bone_weights))
    for array in (template.vertices, template.faces, template.joints, template.bone_weights,
                  template.skin_weights):
        array.flags.writeable = False  # shared through the cache: nobody may edit it in place
    return template


@functools.lru_cache(maxsize=1)
def load_template() -> Template:
    """The template, built once per process (it is deterministic, so caching changes nothing)."""
    return build_template()
