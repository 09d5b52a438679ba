"""The training loss: reconstruction plus the edge loss (authors' train.py and utils.py).

    L = mean over batch, vertices and coordinates of (pred - gt)^2
        + edge_weight * mean over batch and faces of sum over the face's edges (AB, BC, AC) of
          | |pred_a - pred_b| / |identity_a - identity_b| - 1 |

with the authors' edge_weight 5e-4. The edge lengths of the identity mesh are the targets, so a
prediction that keeps the identity's edges scores 0 and the identity scaled by s scores 3 |s - 1|.
The authors loop over the batch in numpy; this is the same sum, vectorized, with each sample's
faces given in its own (permuted) vertex order.
"""

from __future__ import annotations

import torch

EDGES = ((0, 1), (1, 2), (0, 2))


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every sample, vertex and coordinate; (B, N, 3) each."""
    return torch.mean((pred - target) ** 2)


def _corners(points: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B, F, 3 corners, 3 coords) of points (B, N, 3) at faces (B, F, 3)."""
    b = torch.arange(points.shape[0], device=points.device)[:, None, None]
    return points[b, faces]


def edge_loss(pred: torch.Tensor, identity: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Mean over samples and faces of the summed |edge ratio - 1| of the three edges.

    pred, identity: (B, N, 3) in the same vertex order; faces: (B, F, 3) int64 into that order.
    """
    p, q = _corners(pred, faces), _corners(identity, faces)
    total = 0
    for a, b in EDGES:
        length = torch.linalg.vector_norm(p[:, :, a] - p[:, :, b], dim=-1)
        target = torch.linalg.vector_norm(q[:, :, a] - q[:, :, b], dim=-1)
        total = total + torch.abs(length / target - 1)
    return total.mean()


def pose_transfer_loss(pred: torch.Tensor, target: torch.Tensor, identity: torch.Tensor,
                       faces: torch.Tensor, edge_weight: float) -> dict[str, torch.Tensor]:
    """{"reconstruction", "edge", "total"} with total = reconstruction + edge_weight * edge."""
    rec = reconstruction_loss(pred, target)
    edge = edge_loss(pred, identity, faces)
    return {"reconstruction": rec, "edge": edge, "total": rec + edge_weight * edge}
