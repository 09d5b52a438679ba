"""Pose2Mesh's training losses, as released (lib/core/loss.py, lib/core/base.py).

MeshNet stage, on meshes in metres and joints in millimetres:
    L = L1(vertices) + normal_weight * normal + joint_weight * L1(J_reg @ mesh * 1000, joints)
        + joint_weight * L1(lifted pose, joints) [+ edge_weight * edge, from edge_start on]
with L1 the mean absolute difference of the valid entries' coordinates (invalid ones zeroed, the
mean still over all), `normal` the mean |cos| between the predicted faces' edge directions and
the true face normal, `edge` the mean |predicted - true| edge length. PoseNet stage: L1 of the
lifted pose alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossConfig:
    normal_weight: float    # released: 0.1
    joint_weight: float     # released: 1e-3, both joint terms
    edge_weight: float      # released: 20
    edge_start: int         # the edge term is on from this epoch (0-based) on; released: after 7


def masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """mean |pred - target| with invalid samples zeroed (valid: (B,) or broadcastable)."""
    if valid is not None:
        valid = valid.reshape(-1, *([1] * (pred.dim() - 1))).to(pred.dtype)
        pred, target = pred * valid, target * valid
    return (pred - target).abs().mean()


def normal_loss(pred: torch.Tensor, true: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Mean |cos| between the predicted faces' three edge directions and the true faces' normals."""
    def unit(v):
        return F.normalize(v, p=2, dim=2)

    a, b, c = (pred[:, faces[:, k]] for k in range(3))
    ta, tb, tc = (true[:, faces[:, k]] for k in range(3))
    normal = unit(torch.cross(unit(tb - ta), unit(tc - ta), dim=2))
    cosines = [(unit(e) * normal).sum(2).abs() for e in (b - a, c - a, c - b)]
    return torch.stack(cosines, 2).mean()


def edge_loss(pred: torch.Tensor, true: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Mean |predicted - true| length of every face's three edges."""
    pairs = ((0, 1), (0, 2), (1, 2))
    diffs = [((pred[:, faces[:, i]] - pred[:, faces[:, j]]).norm(dim=2)
              - (true[:, faces[:, i]] - true[:, faces[:, j]]).norm(dim=2)).abs() for i, j in pairs]
    return torch.stack(diffs, 2).mean()


def meshnet_losses(*, mesh: torch.Tensor, lifted: torch.Tensor, true_mesh: torch.Tensor,
                   true_joints: torch.Tensor, mesh_valid: torch.Tensor, regressor: torch.Tensor,
                   faces: torch.Tensor, epoch: int, config: LossConfig) -> dict[str, torch.Tensor]:
    """The released terms (weighted) and their sum, "total". mesh, true_mesh: (B, V, 3) m;
    lifted, true_joints: (B, J, 3) mm (root-relative); regressor (J, V)."""
    regressed = torch.einsum("jv,bvc->bjc", regressor, mesh * 1000.0)
    terms = {
        "vertex": masked_l1(mesh, true_mesh, mesh_valid),
        "normal": config.normal_weight * normal_loss(mesh, true_mesh, faces),
        "mesh_joint": config.joint_weight * masked_l1(regressed, true_joints),
        "lifted_joint": config.joint_weight * masked_l1(lifted, true_joints),
    }
    terms["edge"] = (config.edge_weight * edge_loss(mesh, true_mesh, faces)
                     if epoch >= config.edge_start else torch.zeros((), device=mesh.device))
    terms["total"] = sum(terms.values())
    return terms
