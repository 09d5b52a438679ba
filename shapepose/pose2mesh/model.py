"""PoseNet (2D pose -> root-relative 3D pose, mm) and MeshNet (pose -> mesh, m), as Pose2Mesh has them.

PoseNet: linear 2J -> hidden, `blocks` residual blocks of (batch norm, ReLU, dropout, linear) x 2,
linear -> 3J. (The release defines a batch norm after its first linear layer but never calls it;
neither do we.)

MeshNet: Chebyshev graph convolutions of order K over the graphs of `graph.network_laplacians`.
Block 0 works on the joint graph (input: normalized 2D pose and PoseNet's 3D pose / 1000, the
latter detached), a fully connected layer maps its features to the coarsest mesh level used, then
each block convolves on one level, adds its input (channels linearly interpolated to the block's
width, as released) and doubles the vertex count by copying every vertex to its two children,
until the mesh level; two last blocks convolve on the mesh, the final one without batch norm or
ReLU, to 3 coordinates in metres. Widths follow the release's pattern for a base width W
(released: W = 256 over 7 upsamplings):

    joints (in, W/8, W/4, W/4) | fc | (W/4, W/2, W) | (W, W, W) x (U - 3) | (W, W/2, W/2) |
    (W/2, W/2, W/2) | mesh: (W/2, W/2, W/2) | (W/2, W/4, 3)
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn


def sparse_tensor(matrix: sp.spmatrix) -> torch.Tensor:
    coo = sp.coo_matrix(matrix)
    coo.sum_duplicates()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    return torch.sparse_coo_tensor(indices, values, coo.shape, check_invariants=False).coalesce()


def chebyshev_basis(x: torch.Tensor, laplacian: torch.Tensor, order: int) -> torch.Tensor:
    """[T_0(L) x, ..., T_{K-1}(L) x] side by side: x (V, B, F) -> (V, B, K * F).

    T_0 = I, T_1 = L, T_k = 2 L T_{k-1} - T_{k-2}. Features are kept vertex-major, (V, B, F), so
    that L applies to a (V, B * F) view without copies; the release's (B, V, F) layout orders the
    linear layer's input columns by (feature, k) instead of (k, feature), the same layer permuted.
    """
    n, batch, features = x.shape
    x0 = x.reshape(n, batch * features)
    terms = [x0]
    if order > 1:
        terms.append(torch.sparse.mm(laplacian, x0))
    for _ in range(2, order):
        terms.append(2 * torch.sparse.mm(laplacian, terms[-1]) - terms[-2])
    return torch.cat([t.reshape(n, batch, features) for t in terms], dim=2)


class ChebConv(nn.Module):
    """One Chebyshev graph convolution: a linear map of the K filtered copies, then batch norm."""

    def __init__(self, fin: int, fout: int, order: int, batch_norm: bool):
        super().__init__()
        self.order = order
        self.linear = nn.Linear(order * fin, fout)
        scale = np.sqrt(2.0 / (order * fin + fout))  # the release's uniform initialisation
        with torch.no_grad():
            self.linear.weight.uniform_(-scale, scale)
            self.linear.bias.zero_()
        self.norm = nn.BatchNorm1d(fout) if batch_norm else None

    def forward(self, x: torch.Tensor, laplacian: torch.Tensor) -> torch.Tensor:
        """x (V, B, F) -> (V, B, F_out).

        Under a low-precision autocast the Laplacian products run in the Laplacian's precision
        (fp32: torch.sparse does not autocast), and so does the layer without batch norm, MeshNet's
        output (coordinates in metres, which bf16 rounds to 2-4 mm near 0.5-1 m); the linear map
        and batch norm of the other layers run in the autocast's precision.
        """
        n, batch, _ = x.shape
        with torch.autocast(x.device.type, enabled=False):
            basis = chebyshev_basis(x.to(laplacian.dtype), laplacian, self.order)
            if self.norm is None:
                return self.linear(basis.to(self.linear.weight.dtype))
        out = self.linear(basis)
        # over every vertex of every sample, fake vertices included
        return self.norm(out.reshape(n * batch, -1)).reshape(n, batch, -1)


class PoseNet(nn.Module):
    """2D joints (B, J, 2), normalized -> root-relative 3D joints (B, J, 3) in mm."""

    def __init__(self, n_joints: int, hidden: int, blocks: int, dropout: float):
        super().__init__()
        self.n_joints = n_joints
        self.inp = nn.Linear(2 * n_joints, hidden)
        self.blocks = nn.ModuleList(_Residual(hidden, dropout) for _ in range(blocks))
        self.out = nn.Linear(hidden, 3 * n_joints)

    def forward(self, pose2d: torch.Tensor) -> torch.Tensor:
        y = self.inp(pose2d.reshape(len(pose2d), -1))
        for block in self.blocks:
            y = block(y)
        return self.out(y).reshape(-1, self.n_joints, 3)


class _Residual(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, width),
            nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, width))

    def forward(self, x):
        return x + self.layers(x)


def block_widths(n_in: int, n_out: int, width: int, upsamplings: int) -> list[tuple[int, ...]]:
    """Feature widths per block (see the module docstring); the release's for width 256, U = 7."""
    if upsamplings < 3:
        raise ValueError(f"MeshNet needs at least 3 upsamplings, got {upsamplings}")
    if width % 8:
        raise ValueError(f"MeshNet width must be a multiple of 8, got {width}")
    w, h, q, e = width, width // 2, width // 4, width // 8
    return ([(n_in, e, q, q), (q, h, w)] + [(w, w, w)] * (upsamplings - 3)
            + [(w, h, h), (h, h, h), (h, h, h), (h, q, n_out)])


class MeshNet(nn.Module):
    """Pose (B, J, C) -> mesh vertices (B, V, 3) in metres, relative to the pelvis."""

    def __init__(self, laplacians: list[sp.spmatrix], reverse: np.ndarray, n_in: int,
                 width: int, order: int):
        super().__init__()
        self.upsamplings = len(laplacians) - 2
        self.widths = block_widths(n_in, 3, width, self.upsamplings)
        self.sizes = [m.shape[0] for m in laplacians]  # finest mesh level first, joints last
        for i, matrix in enumerate(laplacians):
            self.register_buffer(f"laplacian{i}", sparse_tensor(matrix), persistent=False)
        self.register_buffer("reverse", torch.as_tensor(reverse, dtype=torch.int64),
                             persistent=False)
        n_blocks = len(self.widths)
        self.convs = nn.ModuleList()
        for b, chans in enumerate(self.widths):
            for k in range(len(chans) - 1):
                last = b == n_blocks - 1 and k == len(chans) - 2
                self.convs.append(ChebConv(chans[k], chans[k + 1], order, batch_norm=not last))
        self.fc = nn.Linear(self.sizes[-1] * self.widths[0][-1],
                            self.sizes[-2] * self.widths[1][0])

    @property
    def graph_buffers(self) -> list[str]:
        """The names of the buffers that hold the graphs (the Laplacians, sparse, and `reverse`):
        built from the mesh, never trained, not in the state dict."""
        return [f"laplacian{i}" for i in range(len(self.sizes))] + ["reverse"]

    def _laplacian(self, block: int) -> torch.Tensor:
        """Block 0: the joints; blocks 1 .. U: coarsest used level up to level 1; then level 0."""
        level = len(self.sizes) - 1 - block  # index into the list, joints last
        return getattr(self, f"laplacian{max(level, 0)}")

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        x = pose.transpose(0, 1)  # (J, B, C): vertex-major, see chebyshev_basis
        batch = pose.shape[0]
        conv = iter(self.convs)
        n_blocks = len(self.widths)
        for b, chans in enumerate(self.widths):
            residual = x
            laplacian = self._laplacian(b)
            for k in range(len(chans) - 1):
                x = next(conv)(x, laplacian)
                if not (b == n_blocks - 1 and k == len(chans) - 2):
                    x = F.relu(x)
            if b == 0:
                x = self.fc(x.transpose(0, 1).reshape(batch, -1))
                x = x.reshape(batch, self.sizes[-2], self.widths[1][0]).transpose(0, 1)
            elif b <= self.upsamplings + 1:
                # the block's input, its channels linearly interpolated to the block's width
                x = x + F.interpolate(residual, size=x.shape[2], mode="linear")
                if b <= self.upsamplings:
                    x = x.repeat_interleave(2, dim=0)  # children 2i and 2i + 1 copy vertex i
        return x[self.reverse].transpose(0, 1)


class Pose2Mesh(nn.Module):
    """PoseNet then MeshNet on [2D pose, detached 3D pose / 1000]: (mesh (B, V, 3) m, pose (B, J, 3) mm)."""

    def __init__(self, posenet: PoseNet, meshnet: MeshNet):
        super().__init__()
        self.posenet = posenet
        self.meshnet = meshnet

    def forward(self, pose2d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pose3d = self.posenet(pose2d)
        mesh = self.meshnet(torch.cat([pose2d, pose3d.detach() / 1000.0], dim=2))
        return mesh, pose3d
