"""Evaluation of Neural Parts: weighted volumetric IoU, Chamfer-L1, and the predicted surface.

IoU uses the importance-weighted volume samples: a point is predicted inside where G <= 0, and
IoU = sum(w [pred and gt]) / sum(w [pred or gt]); the weights make both sums unbiased estimates of
volume fractions of the cuboid. Chamfer-L1 = 0.5 (accuracy + completeness), where accuracy is the
mean Euclidean distance from each predicted surface point to the nearest ground-truth point and
completeness the reverse, with the SAME number of points on both sides.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from shapepose.neural_parts.model import NeuralParts, sphere_mesh
from shapepose.sampling.surface import sample_on_faces

# Candidates drawn per wanted point on the union of the primitive meshes: the ones inside another
# primitive are dropped, and enough must remain.
OVERSAMPLE = 4


def weighted_iou(predicted: np.ndarray, inside: np.ndarray, weights: np.ndarray) -> float:
    """IoU of two occupancies (N,) bool at weighted points (N,); 1.0 when both are empty."""
    predicted, inside = np.asarray(predicted, bool), np.asarray(inside, bool)
    weights = np.asarray(weights, dtype=np.float64)
    union = weights[predicted | inside].sum()
    if union == 0:
        return 1.0
    return float(weights[predicted & inside].sum() / union)


def chamfer_l1(predicted: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Accuracy, completeness and Chamfer-L1 between predicted (N, 3) and target (N', 3) points."""
    accuracy = cKDTree(target).query(predicted)[0].mean()
    completeness = cKDTree(predicted).query(target)[0].mean()
    return {"accuracy": float(accuracy), "completeness": float(completeness),
            "chamfer_l1": float(0.5 * (accuracy + completeness))}


def primitive_meshes(model: NeuralParts, condition: torch.Tensor,
                     subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """The icosphere of radius r mapped through phi(.; C_m) for every primitive of one frame.

    condition (1, M, D) -> vertices (M, V, 3) float32, faces (F, 3) int64 shared by all primitives
    (phi is a homeomorphism, so the mapped spheres keep the icosphere's connectivity).
    """
    vertices, faces = sphere_mesh(subdivisions, model.radius)
    sphere = torch.from_numpy(vertices).to(condition.device)
    with torch.no_grad():
        mapped = model.primitive_points(condition, sphere)[0]
    return mapped.cpu().numpy(), faces


def predicted_surface(model: NeuralParts, condition: torch.Tensor, n_points: int,
                      rng: np.random.Generator, subdivisions: int) -> np.ndarray:
    """n_points on the surface of the union of primitives: (n_points, 3) float64.

    Points are drawn uniformly by area on the mapped sphere meshes of all primitives; a point of
    primitive m that lies inside another primitive (g_k < 0 for some k != m) is interior to the
    union and dropped; n_points are then chosen at random from the rest (with repeats only if too
    few remain).
    """
    vertices, faces = primitive_meshes(model, condition, subdivisions)
    m, v = len(vertices), vertices.shape[1]
    # all primitives as one mesh: primitive k's faces index its own block of vertices
    union_faces = (faces[None] + v * np.arange(m)[:, None, None]).reshape(-1, 3)
    candidates, which = sample_on_faces(vertices.reshape(m * v, 3), union_faces,
                                        OVERSAMPLE * n_points, rng)
    owner = which // len(faces)
    points = torch.from_numpy(candidates.astype(np.float32)).to(condition.device)
    with torch.no_grad():
        g = model.implicit(condition, points[None])[0].cpu().numpy()  # (M, C)
    g[owner, np.arange(len(owner))] = np.inf  # a point's own primitive does not hide it
    on_union = g.min(axis=0) >= 0
    kept = candidates[on_union]
    if len(kept) == 0:
        kept = candidates
    chosen = rng.choice(len(kept), size=n_points, replace=len(kept) < n_points)
    return kept[chosen]
