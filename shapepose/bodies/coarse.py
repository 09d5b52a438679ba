"""The coarse body template: the demo template decimated once, for models that read every vertex.

Neural pose transfer and Pose2Mesh take whole meshes as input and output; at the template's ~6.7k
vertices their demo training would not fit a 2-core budget. `load_coarse_template()` decimates the
template by quadric edge collapse (libigl's qslim) to `COARSE_FACES` faces (752 vertices), which is
deterministic: the same faces and vertices on every run. Each coarse vertex takes its bone weights
from the closest point of the fine surface (barycentric blend of that face's three vertices),
renormalized, and its skinning weights follow from them as the template's do, so a coarse `Body`
is posed, reshaped and checked exactly like a fine one.
"""

from __future__ import annotations

import functools

import numpy as np

from shapepose.bodies.template import Template, closed_manifold_problem, driver_weights, load_template
from shapepose.meshes import signed_volume

COARSE_FACES = 1500  # faces after decimation: 752 vertices, closed and genus 0


def carry_weights(fine: np.ndarray, fine_faces: np.ndarray, weights: np.ndarray,
                  points: np.ndarray) -> np.ndarray:
    """Per-vertex `weights` (V, K) of a fine mesh at `points` (N, 3): the barycentric blend at
    each point's closest surface point, rows renormalized to sum to 1. (N, K) float64."""
    import igl

    _, face, closest = igl.point_mesh_squared_distance(points, fine, fine_faces)
    tri = fine_faces[face]
    bary = igl.barycentric_coordinates(closest, fine[tri[:, 0]], fine[tri[:, 1]], fine[tri[:, 2]])
    bary = np.clip(bary, 0.0, None)
    bary /= bary.sum(axis=1, keepdims=True)
    out = np.einsum("nc,nck->nk", bary, weights[tri])
    return out / out.sum(axis=1, keepdims=True)


def build_coarse_template(n_faces: int = COARSE_FACES, template: Template | None = None) -> Template:
    """The template decimated to `n_faces` faces, weights carried over; checked watertight."""
    import igl

    fine = template if template is not None else load_template()
    vertices, faces, _, _ = igl.qslim(np.ascontiguousarray(fine.vertices),
                                      np.ascontiguousarray(fine.faces), int(n_faces))[:4]
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if signed_volume(vertices, faces) < 0:
        faces = faces[:, ::-1].copy()
    problem = closed_manifold_problem(len(vertices), faces)
    if problem is not None:
        raise RuntimeError(f"coarse body template ({n_faces} faces) is not watertight: {problem}")
    bone_weights = carry_weights(fine.vertices, fine.faces, fine.bone_weights, vertices)
    ground = vertices[:, 1].min()  # decimation may lift the soles a little: back onto y = 0
    vertices = vertices - [0.0, ground, 0.0]
    joints = fine.joints - [0.0, ground, 0.0]
    coarse = Template(vertices, faces, joints, bone_weights, driver_weights(bone_weights))
    for array in (coarse.vertices, coarse.faces, coarse.joints, coarse.bone_weights,
                  coarse.skin_weights):
        array.flags.writeable = False
    return coarse


@functools.lru_cache(maxsize=1)
def load_coarse_template() -> Template:
    """The coarse template, built once per process (deterministic, so caching changes nothing)."""
    return build_coarse_template()
