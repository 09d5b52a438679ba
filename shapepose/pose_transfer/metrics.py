"""PMD, the point-wise mesh Euclidean distance, exactly as the authors' evaluate.py computes it.

Both meshes are moved so that their axis-aligned bounding boxes are centred on the origin, then
PMD = mean over vertices and coordinates of the squared difference, in m^2 for meshes in metres
(1.1e-4 is a per-coordinate RMS of about 1 cm). The two meshes must be in the same vertex order
(the prediction is in the identity's order, and so is its ground truth). The tables also give the
per-vertex RMS distance, sqrt(3 PMD), in millimetres.

Seed 000's text defines PMD otherwise, as "the mean of distances between vertices": the mean
Euclidean distance of corresponding vertices, not squared. Its numbers (1.1e-4, 3.0e-4) are of the
code's squared form (a mean distance of 1.1e-4 m would be a tenth of a millimetre); the evaluation
JSON also gives the text's form (`mean_vertex_distance`, in millimetres) for every answer.
"""

from __future__ import annotations

import numpy as np


def bbox_centred(vertices: np.ndarray) -> np.ndarray:
    """(..., V, 3) moved so that each mesh's bounding box is centred on the origin."""
    vertices = np.asarray(vertices, dtype=np.float64)
    centre = (vertices.max(axis=-2, keepdims=True) + vertices.min(axis=-2, keepdims=True)) / 2
    return vertices - centre


def pmd(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """PMD of each mesh pair: pred and target (..., V, 3) -> (...) float64."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"PMD compares meshes of one shape: {pred.shape} vs {target.shape}")
    return np.mean((bbox_centred(pred) - bbox_centred(target)) ** 2, axis=(-2, -1))


def vertex_rms_mm(pmd_value: float) -> float:
    """Per-vertex RMS distance in millimetres of a PMD in m^2: 1000 sqrt(3 PMD)."""
    return 1000.0 * float(np.sqrt(3.0 * pmd_value))


def mean_vertex_distance(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Seed 000's text: mean over vertices of |pred_v - target_v| after bounding-box centring, (...)."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"distances compare meshes of one shape: {pred.shape} vs {target.shape}")
    return np.linalg.norm(bbox_centred(pred) - bbox_centred(target), axis=-1).mean(axis=-1)
