"""The shape-and-pose network of seed 002 section 5.1 (differentiable point clouds, DPC).

- Encoder CNN, 7 layers at the seed's size: a 5 x 5 convolution of `filters` channels with
  stride 2, then `encoder_pairs` pairs of 3 x 3 convolutions (stride 2, then stride 1) whose width
  doubles at the first of each pair; leaky ReLU (slope 0.2) after every convolution.
- A shared MLP of two `fc`-unit layers (leaky ReLU).
- Shape branch: one `fc`-unit hidden layer, then 3 N outputs; tanh times `point_range` gives N
  points (DPC's `pc_unit_cube`: range 0.5). With occupancy scaling, one more unit of the hidden
  layer gives a per-shape factor sigmoid(.) in (0, 1) that scales the projection's occupancies
  (DPC's `pc_learn_occupancy_scaling`).
- Pose branch: one `fc`-unit hidden layer, then K candidate regressors and one student, each an
  MLP of two `pose_hidden`-unit layers (leaky ReLU) and a 4-unit linear output, a quaternion.

Initialisation follows DPC: He (variance-scaling) weights everywhere except the point and scale
outputs, drawn from N(0, 0.025^2) truncated at two deviations, so the first clouds are small.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from shapepose.config import section
from shapepose.geometry.quaternions import normalize
from shapepose.seeding import derive_seed

SLOPE = 0.2  # every leaky ReLU of the network (seed 002 section 5.1)
OUTPUT_INIT_STD = 0.025  # DPC's pc_decoder_init_stddev


@dataclass(frozen=True)
class Architecture:
    """Sizes of the network (config shape_pose.model; the seed's values in workflow/configs/cars.yaml)."""

    image_size: int
    filters: int
    encoder_pairs: int
    fc: int
    points: int
    candidates: int
    pose_hidden: int
    point_range: float
    occupancy_scaling: bool

    @classmethod
    def from_config(cls, config: dict) -> Architecture:
        return section(cls, config, where="shape_pose.model")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def feature_side(self) -> int:
        """Side of the encoder's last feature map (the input halves at every stride-2 layer)."""
        side = self.image_size
        for _ in range(1 + self.encoder_pairs):
            side = (side + 1) // 2
        return side


def _leaky() -> nn.Module:
    return nn.LeakyReLU(SLOPE)


def _pose_head(width: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), _leaky(), nn.Linear(hidden, hidden), _leaky(),
                         nn.Linear(hidden, 4))


class ShapePoseNet(nn.Module):
    """Images (B, 3, S, S) in [-1, 1] -> points, K candidate poses, the student pose, a scale."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        layers: list[nn.Module] = [nn.Conv2d(3, arch.filters, 5, stride=2, padding=2), _leaky()]
        width = arch.filters
        for _ in range(arch.encoder_pairs):
            layers += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), _leaky(),
                       nn.Conv2d(2 * width, 2 * width, 3, stride=1, padding=1), _leaky()]
            width *= 2
        self.encoder = nn.Sequential(*layers)
        flat = width * arch.feature_side ** 2
        self.shared = nn.Sequential(nn.Flatten(), nn.Linear(flat, arch.fc), _leaky(),
                                    nn.Linear(arch.fc, arch.fc), _leaky())
        self.shape_hidden = nn.Sequential(nn.Linear(arch.fc, arch.fc), _leaky())
        self.points_out = nn.Linear(arch.fc, 3 * arch.points)
        self.scale_out = nn.Linear(arch.fc, 1) if arch.occupancy_scaling else None
        self.pose_hidden = nn.Sequential(nn.Linear(arch.fc, arch.fc), _leaky())
        self.candidates = nn.ModuleList(_pose_head(arch.fc, arch.pose_hidden)
                                        for _ in range(arch.candidates))
        self.student = _pose_head(arch.fc, arch.pose_hidden)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, a=SLOPE, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
        for module in (self.points_out, self.scale_out):
            if module is not None:
                nn.init.trunc_normal_(module.weight, std=OUTPUT_INIT_STD,
                                      a=-2 * OUTPUT_INIT_STD, b=2 * OUTPUT_INIT_STD)
                nn.init.zeros_(module.bias)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, fc), the shared embedding both branches read."""
        S = self.arch.image_size
        if images.shape[1:] != (3, S, S):
            raise ValueError(f"expected images (B, 3, {S}, {S}), got {tuple(images.shape)}")
        return self.shared(self.encoder(images))

    def shape(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, fc) -> (points (B, N, 3), scale (B,) or None)."""
        hidden = self.shape_hidden(features)
        points = torch.tanh(self.points_out(hidden)).view(-1, self.arch.points, 3) * self.arch.point_range
        scale = torch.sigmoid(self.scale_out(hidden))[:, 0] if self.scale_out is not None else None
        return points, scale

    def pose(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, fc) -> (candidates (B, K, 4), student (B, 4)), unit quaternions."""
        hidden = self.pose_hidden(features)
        candidates = torch.stack([head(hidden) for head in self.candidates], dim=1)
        return normalize(candidates), normalize(self.student(hidden))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor | None]:
        features = self.features(images)
        # Both branches in fp32 whatever autocast the caller runs (a no-op in fp32): in bf16 the
        # points, and the rotations they are seen from, would sit on a lattice of 2^-9 (points
        # in [0.25, 0.5]), about 0.12 of a cell of the seed's 64-cell grid, beside a final
        # Gaussian of 0.2 cells.
        with torch.autocast(images.device.type, enabled=False):
            features = features.float()
            points, scale = self.shape(features)
            candidates, student = self.pose(features)
        return {"points": points, "candidates": candidates, "student": student, "scale": scale}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Test time: the cloud and the student's pose of each image (eval mode, no gradient)."""
        was_training = self.training
        self.eval()
        try:
            out = self(images)
        finally:
            self.train(was_training)
        return {"points": out["points"], "pose": out["student"], "scale": out["scale"]}


def build_model(arch: Architecture, seed: int) -> ShapePoseNet:
    """The network at its step-0 weights: the same (arch, seed) always gives the same weights."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(derive_seed(seed, "shape_pose", "init"))
        return ShapePoseNet(arch)
    finally:
        torch.random.set_rng_state(state)
