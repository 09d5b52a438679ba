"""The pose-transfer network as the authors' code builds it (jiashunwang/Neural-Pose-Transfer).

Shapes: points travel as (B, 3, N) and features as (B, C, N); every convolution is 1 x 1.

- Pose encoder: 1x1 convolutions 3 -> w/16 -> w/8 -> w, each followed by non-affine instance
  norm and ReLU (authors: w = 1024, so 64, 128, 1024). `pose_pooling: max` (the authors'
  released model_maxpool.py) takes the maximum over the pose points and repeats it at every
  identity point, so the pose mesh may have any vertex count and any order; `none` (model.py,
  the paper's figure) keeps one feature per point, so the pose and identity meshes must have
  equally many vertices.
- The pose feature is concatenated with the identity's xyz: C = w + 3 channels (the "+3" the
  reproduction asked the authors about).
- SPAdaIN(x, m) = gamma(m) * norm(x) + beta(m), gamma and beta 1x1 convolutions 3 -> C of the
  identity points m; norm is non-affine instance norm (`normalization: instance`), or batch-
  instance norm (`batch_instance`, Nam and Kim 2018: rho * BN(x) + (1 - rho) * IN(x), one gate rho
  per channel in [0, 1], initialised to 1 as their code does and clamped after every step), or
  none (the authors' maxpool model's first block: `first_block_normalized: false`).
- Residual block: [SPAdaIN, ReLU, conv, SPAdaIN, ReLU, conv] + [SPAdaIN, ReLU, conv] on the skip.
- Decoder: conv C -> C, block(C), conv C -> C/2, block(C/2), conv C/2 -> C/4, block(C/4),
  conv C/4 -> 3, then 2 tanh (integer halving, as the authors': 1027, 513, 256).
- Initialisation: every convolution weight from N(0, 0.02) (authors' weights_init), biases as
  torch draws them.
- Mixed precision: under a bf16 / fp16 autocast every layer but the last runs in it; the last
  convolution and the tanh stay fp32 (the training's PRECISIONS says why).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

POOLINGS = ("none", "max")
NORMALIZATIONS = ("instance", "batch_instance")


@dataclass(frozen=True)
class Architecture:
    """One variant's network: `width` w (authors 1024), the pooling of the pose feature, the
    normalization inside SPAdaIN, and whether the first residual block normalizes at all."""

    width: int
    pose_pooling: str
    normalization: str
    first_block_normalized: bool

    def __post_init__(self):
        if self.width < 16:
            raise ValueError(f"width must be at least 16, got {self.width}")
        if self.pose_pooling not in POOLINGS:
            raise ValueError(f"pose_pooling must be one of {POOLINGS}, got {self.pose_pooling!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")


class BatchInstanceNorm1d(nn.Module):
    """rho * BN(x) + (1 - rho) * IN(x) per channel, both without an affine map (SPAdaIN gives it).

    BN uses the batch's statistics in training and running ones in eval, as nn.BatchNorm1d;
    `clamp_gate()` keeps rho in [0, 1] (Nam and Kim clamp it after each optimizer step).
    """

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.batch = nn.BatchNorm1d(channels, eps=eps, momentum=momentum, affine=False)
        self.eps = eps
        self.gate = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rho = self.gate[None, :, None]
        return rho * self.batch(x) + (1 - rho) * F.instance_norm(x, eps=self.eps)

    @torch.no_grad()
    def clamp_gate(self) -> None:
        self.gate.clamp_(0.0, 1.0)


def make_norm(kind: str | None, channels: int) -> nn.Module:
    if kind is None:
        return nn.Identity()
    if kind == "instance":
        return nn.InstanceNorm1d(channels)  # affine=False, no running statistics
    if kind == "batch_instance":
        return BatchInstanceNorm1d(channels)
    raise ValueError(f"unknown normalization {kind!r}")


class SPAdaIN(nn.Module):
    """gamma(m) * norm(x) + beta(m); x (B, C, N), m the identity points (B, 3, N)."""

    def __init__(self, channels: int, norm: str | None, condition_channels: int = 3):
        super().__init__()
        self.norm = make_norm(norm, channels)
        self.gamma = nn.Conv1d(condition_channels, channels, 1)
        self.beta = nn.Conv1d(condition_channels, channels, 1)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.gamma(condition) * self.norm(x) + self.beta(condition)


class SPAdaINResBlock(nn.Module):
    def __init__(self, channels: int, norm: str | None):
        super().__init__()
        self.spadain1 = SPAdaIN(channels, norm)
        self.conv1 = nn.Conv1d(channels, channels, 1)
        self.spadain2 = SPAdaIN(channels, norm)
        self.conv2 = nn.Conv1d(channels, channels, 1)
        self.spadain_skip = SPAdaIN(channels, norm)
        self.conv_skip = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.spadain1(x, condition)))
        out = self.conv2(F.relu(self.spadain2(out, condition)))
        return out + self.conv_skip(F.relu(self.spadain_skip(x, condition)))


class PoseEncoder(nn.Module):
    """(B, 3, Np) pose points -> (B, w, Np) per-point features, or (B, w) when pooled."""

    def __init__(self, width: int, pooled: bool):
        super().__init__()
        sizes = [3, width // 16, width // 8, width]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, 1) for a, b in zip(sizes, sizes[1:]))
        self.pooled = pooled

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        x = pose
        for conv in self.convs:
            x = F.relu(F.instance_norm(conv(x)))
        return x.max(dim=2).values if self.pooled else x


class Decoder(nn.Module):
    def __init__(self, channels: int, norm: str, first_block_normalized: bool):
        super().__init__()
        c = [channels, channels // 2, channels // 4]
        self.conv1 = nn.Conv1d(c[0], c[0], 1)
        self.block1 = SPAdaINResBlock(c[0], norm if first_block_normalized else None)
        self.conv2 = nn.Conv1d(c[0], c[1], 1)
        self.block2 = SPAdaINResBlock(c[1], norm)
        self.conv3 = nn.Conv1d(c[1], c[2], 1)
        self.block3 = SPAdaINResBlock(c[2], norm)
        self.conv4 = nn.Conv1d(c[2], 3, 1)

    def forward(self, x: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        x = self.block1(self.conv1(x), identity)
        x = self.block2(self.conv2(x), identity)
        x = self.block3(self.conv3(x), identity)
        # The output layer in fp32 under a low-precision autocast (a no-op in fp32): bf16 would
        # round coordinates near 1 m to 4 mm, coarser than the edges the edge loss compares.
        with torch.autocast(x.device.type, enabled=False):
            return 2 * torch.tanh(self.conv4(x.to(self.conv4.weight.dtype)))


class PoseTransferNet(nn.Module):
    """forward(pose (B, 3, Np), identity (B, 3, N)) -> the identity in the pose, (B, N, 3)."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        self.encoder = PoseEncoder(arch.width, pooled=arch.pose_pooling == "max")
        self.decoder = Decoder(arch.width + 3, arch.normalization, arch.first_block_normalized)
        for module in self.modules():
            if isinstance(module, nn.Conv1d):
                nn.init.normal_(module.weight, 0.0, 0.02)

    def forward(self, pose: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        feature = self.encoder(pose)
        n = identity.shape[2]
        if self.arch.pose_pooling == "max":
            feature = feature[:, :, None].expand(-1, -1, n)
        elif pose.shape[2] != n:
            raise ValueError(f"the original (per-point) variant needs as many pose points as "
                             f"identity points: {pose.shape[2]} vs {n}")
        out = self.decoder(torch.cat([feature, identity], dim=1), identity)
        return out.transpose(1, 2)

    def clamp_gates(self) -> None:
        """Keep every batch-instance gate in [0, 1] (after each optimizer step)."""
        for module in self.modules():
            if isinstance(module, BatchInstanceNorm1d):
                module.clamp_gate()
