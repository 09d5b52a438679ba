"""The five Neural Parts losses of seed 003 and their weighted sum.

    L = w_rec L_rec + w_occ L_occ + w_norm L_norm + w_overlap L_overlap + w_cover L_cover

g: (B, M, N) implicit values of the M primitives (negative inside), G = min_m g: (B, N).
Soft occupancy of a primitive: sigmoid(-g / tau), tau the sharpness (the authors' code multiplies
by 1 / tau = 250).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shapepose.neural_parts.model import union_implicit

# Seed 003's coverage: -log(1e-6 + sigmoid(-g / tau)); the 1e-6 bounds each term by -log(1e-6).
COVERAGE_EPS = 1e-6


@dataclass(frozen=True)
class LossConfig:
    """Weights and shape parameters of the losses (config neural_parts.losses; config.yaml has the
    authors' DFAUST settings)."""

    reconstruction: float
    occupancy: float
    normal: float
    overlap: float
    coverage: float
    tau: float             # sharpness: sigmoid(-g / tau)
    overlap_lambda: float  # seed 003: lambda = 1.95 in the original paper
    coverage_k: int        # seed 003: the 10 lowest-g target points per primitive


def pairwise_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (B, P, Q) between a (B, P, 3) and b (B, Q, 3).

    Expanded as |a|^2 + |b|^2 - 2 a.b (one matrix product instead of a (B, P, Q, 3) difference
    tensor); the clamp keeps rounding from going negative and gives coincident points a finite
    gradient.
    """
    squared = (a.square().sum(-1)[:, :, None] + b.square().sum(-1)[:, None, :]
               - 2 * a @ b.transpose(1, 2))
    return squared.clamp_min(1e-12).sqrt()


def chamfer_loss(primitive_points: torch.Tensor, surface: torch.Tensor) -> torch.Tensor:
    """L_rec: bidirectional Chamfer distance between points mapped from the sphere and the target.

    primitive_points (B, M, K, 3) (all primitives together form the prediction), surface
    (B, N, 3). Mean nearest Euclidean distance target -> prediction plus prediction -> target,
    averaged over frames (Euclidean, not squared, as in the authors' DFAUST configuration).
    """
    predicted = primitive_points.flatten(1, 2)
    d = pairwise_distances(predicted, surface)
    return d.min(dim=1).values.mean() + d.min(dim=2).values.mean()


def occupancy_loss(G: torch.Tensor, inside: torch.Tensor, weights: torch.Tensor, tau: float) -> torch.Tensor:
    """L_occ: binary cross-entropy of sigmoid(-G / tau) against the labels, importance-weighted.

    G, inside (bool) and weights: (B, N) volume samples. A frame's drawn weights are renormalised
    to sum to 1, so the loss estimates the mean cross-entropy over the cuboid's volume (the stored
    weights undo the sampler's preference for points near the body).
    """
    bce = F.binary_cross_entropy_with_logits(-G / tau, inside.to(G.dtype), reduction="none")
    share = weights / weights.sum(dim=1, keepdim=True)
    return (share * bce).sum(dim=1).mean()


def normal_consistency_loss(G: torch.Tensor, points: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """L_norm: mean of 1 - <grad G / ||grad G||, n> at the surface samples.

    G (B, N) must have been computed from `points` (B, N, 3) with requires_grad; the gradient is
    taken by autograd with create_graph, so the loss trains the network. normals (B, N, 3) unit.
    """
    gradient = torch.autograd.grad(G.sum(), points, create_graph=True)[0]
    predicted = gradient / gradient.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (1 - (predicted * normals).sum(-1)).mean()


def overlap_loss(g: torch.Tensor, tau: float, overlap_lambda: float) -> torch.Tensor:
    """L_overlap: mean over points of max(0, sum_m sigmoid(-g_m / tau) - lambda); g (B, M, N)."""
    return F.relu(torch.sigmoid(-g / tau).sum(dim=1) - overlap_lambda).mean()


def coverage_loss(g: torch.Tensor, inside: torch.Tensor, tau: float, k: int) -> torch.Tensor:
    """L_cover in the form seed 003 found to work (the authors' code, not the paper's formula).

    For every frame b and primitive m, the k target-interior points with the lowest g_m each give
    -log(1e-6 + sigmoid(-g_m(x) / tau)); the loss is the MEAN over (frame, k, primitive), as the
    authors' `min_points_loss` takes it (its weight 0.01 is tuned for the mean; a sum over k and
    the primitives would be M k times larger). g (B, M, N), inside (B, N) bool. Points outside
    the target never count; a frame with fewer than k interior points pads with points whose term
    is -log(1e-6), as the authors' +1e6 mask does.
    """
    k = min(k, g.shape[2])
    masked = torch.where(inside[:, None, :], g, torch.full_like(g, float("inf")))
    lowest = torch.topk(masked, k, dim=2, largest=False).values
    terms = -torch.log(COVERAGE_EPS + torch.sigmoid(-lowest / tau))
    return terms.mean()


def neural_parts_losses(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                        surface: torch.Tensor, config: LossConfig) -> dict[str, torch.Tensor]:
    """Every loss term and their weighted sum ("total") for one batch, in fp32.

    out: the network's outputs for the batch (`NeuralParts.forward`), computed from `surface`,
    the batch's surface points with requires_grad (the normal loss differentiates G there).
    batch: surface_points and surface_normals (B, Ns, 3), inside (B, Nv) bool, weights (B, Nv).
    Every term is a mean over the batch's frames (or its points), so processes that each hold a
    slice of a batch average to the whole batch's losses.
    """
    g_volume = out["g_volume"]
    terms = {
        "reconstruction": chamfer_loss(out["primitive_points"], batch["surface_points"]),
        "occupancy": occupancy_loss(union_implicit(g_volume), batch["inside"], batch["weights"], config.tau),
        "normal": normal_consistency_loss(out["G_surface"], surface, batch["surface_normals"]),
        "overlap": overlap_loss(g_volume, config.tau, config.overlap_lambda),
        "coverage": coverage_loss(g_volume, batch["inside"], config.tau, config.coverage_k),
    }
    terms["total"] = sum(getattr(config, name) * value for name, value in terms.items())
    return terms
