"""Quaternions in torch (batched, differentiable): what the shape-and-pose losses and Neural Parts'
primitives differentiate. Conventions as in `shapepose.geometry`: (w, x, y, z), w real.
"""

from __future__ import annotations

import torch



def normalize(q: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Unit quaternions (..., 4); a zero vector stays finite (eps)."""
    return q / q.norm(dim=-1, keepdim=True).clamp_min(eps)


def conjugate(q: torch.Tensor) -> torch.Tensor:
    """(w, -x, -y, -z): the inverse of a unit quaternion."""
    # negation, not a product with a sign vector: a vector made on the host would be copied to
    # the device at every call, a synchronisation per training step
    return torch.cat([q[..., :1], -q[..., 1:]], dim=-1)


def multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a b (..., 4): the rotation b followed by a."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (normalized here, see `normalize`) -> (..., 3, 3) rotation matrices."""
    w, x, y, z = normalize(q).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*q.shape[:-1], 3, 3)


def rotate(q: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Points (..., N, 3) rotated by quaternions (..., 4) (same leading shape): R(q) p for every point."""
    return points @ quaternion_to_matrix(q).transpose(-1, -2)
