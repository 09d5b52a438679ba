"""The Neural Parts network (seed 003 "Network" and "Hidden details").

An image is encoded by a ResNet-18 into a feature f. Primitive m gets the condition
C_m = [f, e_m], with e_m a learned embedding. One conditional invertible network phi(x; C_m), shared
by all primitives, maps the sphere of radius r onto primitive m:

    phi = affine o normalizer o coupling_4 o coupling_3 o coupling_2 o coupling_1

Each coupling layer changes one predefined coordinate from the other two (`COUPLING_AXES`); the
normalizer scales each axis by elu(.) + 1; the affine layer rotates (a unit quaternion) and
translates, both from 2-layer ReLU MLPs of C_m. The implicit function of primitive m is
g_m(x) = ||phi^-1(x; C_m)|| - r (negative inside) and the shape's is G(x) = min_m g_m(x).

Shapes: B frames, M primitives, N points, D = feature_dim + embedding_dim.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from shapepose.errors import InputError
from shapepose.geometry.quaternions import quaternion_to_matrix

log = logging.getLogger(__name__)

# The coordinate each of the 4 coupling layers changes: x, y, z, then x again. Fixed rather than
# random (as in the authors' code) so that the architecture is the same in every run.
COUPLING_AXES = (0, 1, 2, 0)
# |s| stays below this through a soft clamp (s_max tanh(s / s_max)): the scale exp(s) can neither
# vanish nor overflow, and the layer stays exactly invertible since s depends only on kept coordinates.
MAX_LOG_SCALE = 5.0
# Keeps the normalizer's scale elu(a) + 1 = exp(a) for a < 0 away from an underflow to zero.
MIN_SCALE = 1e-3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageEncoder(nn.Module):
    """ResNet-18 without its classifier, then a linear layer: images (B, 3, H, W) -> (B, feature_dim).

    `pretrained`: path of a torchvision ResNet-18 state dict (e.g. ImageNet weights a user has
    downloaded), or None for random initialisation; nothing is ever downloaded. Images are floats
    in [0, 1] and are standardised with the ImageNet statistics the pretrained weights expect.
    `freeze_batchnorm` keeps batch-norm layers on their stored statistics (the authors' choice with
    pretrained weights and batches of one frame).
    """

    def __init__(self, feature_dim: int, pretrained: str | None = None, freeze_batchnorm: bool = False):
        super().__init__()
        backbone = torchvision.models.resnet18(weights=None)
        if pretrained:
            backbone.load_state_dict(_load_resnet_weights(pretrained))
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.head = nn.Linear(512, feature_dim)
        self.freeze_batchnorm = freeze_batchnorm
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.train()  # modules start in training mode; this applies the freeze from the start

    def train(self, mode: bool = True) -> ImageEncoder:
        super().train(mode)
        if mode and self.freeze_batchnorm:
            for module in self.backbone.modules():
                # SyncBatchNorm: what several CUDA processes turn the layers into
                if isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm)):
                    module.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone((images - self.mean) / self.std))


def _load_resnet_weights(path: str) -> dict:
    """A torchvision ResNet-18 state dict from `path`; InputError naming the file otherwise."""
    if not Path(path).is_file():
        raise InputError(path, "pretrained ResNet-18 weights: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt or foreign file
        raise InputError(path, f"pretrained ResNet-18 weights: cannot load ({error})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    expected = set(torchvision.models.resnet18(weights=None).state_dict())
    if not isinstance(state, dict) or set(state) != expected:
        raise InputError(path, "pretrained ResNet-18 weights: not a torchvision resnet18 state dict")
    return state


class CouplingLayer(nn.Module):
    """Changes coordinate `axis` from the other two and the condition (seed 003, z for example):

        forward:  out_a = t(x_kept, C) + x_a * exp(s(x_kept, C)),  other coordinates unchanged
        inverse:  x_a = (out_a - t(out_kept, C)) * exp(-s(out_kept, C))

    s and t come from one MLP whose first layer adds a projection of the two kept coordinates to a
    projection of C (the same as a linear layer on their concatenation, without copying C per point).
    """

    def __init__(self, axis: int, condition_dim: int, hidden: int):
        super().__init__()
        self.axis = axis
        self.kept = [k for k in range(3) if k != axis]
        self.point_in = nn.Linear(2, hidden)
        self.condition_in = nn.Linear(condition_dim, hidden)
        self.trunk = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def _log_scale_shift(self, kept: torch.Tensor, condition: torch.Tensor):
        """kept (B, M, N, 2), condition (B, M, D) -> s, t (B, M, N)."""
        h = self.point_in(kept) + self.condition_in(condition)[:, :, None, :]
        s, t = self.trunk(h).unbind(-1)
        return MAX_LOG_SCALE * torch.tanh(s / MAX_LOG_SCALE), t

    def _with_axis(self, points: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        columns = list(points.unbind(-1))
        columns[self.axis] = value
        return torch.stack(columns, dim=-1)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """x (B, M, N, 3), condition (B, M, D) -> (B, M, N, 3)."""
        s, t = self._log_scale_shift(x[..., self.kept], condition)
        return self._with_axis(x, t + x[..., self.axis] * torch.exp(s))

    def inverse(self, y: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Exact inverse of `forward`: the kept coordinates, hence s and t, pass through unchanged."""
        s, t = self._log_scale_shift(y[..., self.kept], condition)
        return self._with_axis(y, (y[..., self.axis] - t) * torch.exp(-s))


def _mlp2(condition_dim: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(condition_dim, hidden), nn.ReLU(), nn.Linear(hidden, out))


def q_identity(like: torch.Tensor) -> torch.Tensor:
    """The identity rotation (w, x, y, z) = (1, 0, 0, 0) with the dtype and device of `like`
    (made there: a copy from the host would make it wait for the device in every step)."""
    return torch.eye(4, dtype=like.dtype, device=like.device)[0]


class ConditionalINN(nn.Module):
    """phi(x; C): 4 coupling layers, the elu normalizer, then rotation and translation.

    `origin` (3,) is a fixed offset added after the translation (the training shapes' mean point),
    so that the learned translations start near the shapes instead of at the world origin.
    """

    def __init__(self, condition_dim: int, hidden: int):
        super().__init__()
        self.layers = nn.ModuleList(CouplingLayer(a, condition_dim, hidden) for a in COUPLING_AXES)
        self.scale_net = _mlp2(condition_dim, hidden, 3)
        self.rotation_net = _mlp2(condition_dim, hidden, 4)
        self.translation_net = _mlp2(condition_dim, hidden, 3)
        self.register_buffer("origin", torch.zeros(3))

    def scale(self, condition: torch.Tensor) -> torch.Tensor:
        """Per-axis positive scale (B, M, 3): elu(a(C)) + 1 (seed 003 "Hidden details")."""
        return F.elu(self.scale_net(condition)) + 1 + MIN_SCALE

    def rotation(self, condition: torch.Tensor) -> torch.Tensor:
        """Rotation matrices (B, M, 3, 3); the identity quaternion is added so that q starts near it."""
        q = self.rotation_net(condition) + q_identity(condition)
        return quaternion_to_matrix(q)  # normalized there, eps 1e-8

    def translation(self, condition: torch.Tensor) -> torch.Tensor:
        """(B, M, 3)."""
        return self.translation_net(condition) + self.origin

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Sphere-side points x (B, M, N, 3) -> primitive points (B, M, N, 3)."""
        for layer in self.layers:
            x = layer(x, condition)
        x = x * self.scale(condition)[:, :, None, :]
        rotated = torch.einsum("bmij,bmnj->bmni", self.rotation(condition), x)
        return rotated + self.translation(condition)[:, :, None, :]

    def inverse(self, y: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Primitive-side points y (B, M, N, 3) -> sphere-side points (B, M, N, 3)."""
        y = y - self.translation(condition)[:, :, None, :]
        x = torch.einsum("bmji,bmnj->bmni", self.rotation(condition), y)  # R^T y
        x = x / self.scale(condition)[:, :, None, :]
        for layer in reversed(self.layers):
            x = layer.inverse(x, condition)
        return x


class NeuralParts(nn.Module):
    """Image -> M primitives, each the image of the sphere of radius `radius` under phi(.; C_m)."""

    def __init__(self, n_primitives: int, *, feature_dim: int = 256, embedding_dim: int = 256,
                 hidden: int = 256, radius: float = 0.25, pretrained: str | None = None,
                 freeze_batchnorm: bool = False):
        super().__init__()
        self.n_primitives = n_primitives
        self.radius = radius
        self.encoder = ImageEncoder(feature_dim, pretrained, freeze_batchnorm)
        # Seed 003: the primitive embeddings are initialised as random numbers.
        self.embeddings = nn.Parameter(torch.randn(n_primitives, embedding_dim))
        self.inn = ConditionalINN(feature_dim + embedding_dim, hidden)

    def forward(self, images: torch.Tensor, surface_points: torch.Tensor,
                volume_points: torch.Tensor, sphere: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the losses of one training batch need, in one call (the call DistributedDataParallel
        sees): G at the surface samples (B, Ns) (give them requires_grad for the normal loss),
        g_m at the volume samples (B, M, Nv) and the sphere's points on every primitive
        (B, M, K, 3).

        Only the image encoder follows the caller's autocast. The invertible network runs in
        fp32 whatever it is (a no-op in fp32): g is the norm of a point pulled back through four
        exponential scalings, read at the sharpness tau = 0.004 (bf16 steps by 0.002 at the
        radius 0.25), and the normal loss differentiates it.
        """
        condition = self.conditions(images)
        with torch.autocast(images.device.type, enabled=False):
            G_surface = union_implicit(self.implicit(condition, surface_points))
            g_volume = self.implicit(condition, volume_points)
            primitives = self.primitive_points(condition, sphere)
        return {"G_surface": G_surface, "g_volume": g_volume, "primitive_points": primitives}

    def conditions(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1] -> C (B, M, D): the image feature beside each embedding
        (fp32, also under autocast)."""
        feature = self.encoder(images).float()
        batch = feature.shape[0]
        return torch.cat([feature[:, None, :].expand(-1, self.n_primitives, -1),
                          self.embeddings[None].expand(batch, -1, -1)], dim=-1)

    def primitive_points(self, condition: torch.Tensor, sphere: torch.Tensor) -> torch.Tensor:
        """Points on the sphere (K, 3) of radius r -> their images on every primitive (B, M, K, 3)."""
        batch, m, _ = condition.shape
        return self.inn(sphere[None, None].expand(batch, m, -1, -1), condition)

    def implicit(self, condition: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """g_m(x) = ||phi^-1(x; C_m)|| - r for points (B, N, 3): (B, M, N), negative inside."""
        m = condition.shape[1]
        inverse = self.inn.inverse(points[:, None].expand(-1, m, -1, -1), condition)
        return inverse.norm(dim=-1) - self.radius


def union_implicit(g: torch.Tensor) -> torch.Tensor:
    """G(x) = min_m g_m(x): (B, M, N) -> (B, N); the shape is where G <= 0."""
    return g.min(dim=1).values


def sphere_points(n: int, radius: float, rng: np.random.Generator) -> torch.Tensor:
    """n points uniform on the sphere of `radius` about the origin: (n, 3) float32."""
    directions = rng.standard_normal((n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return torch.from_numpy((radius * directions).astype(np.float32))


def sphere_mesh(subdivisions: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """An icosphere of `radius`: vertices (V, 3) float32 on the sphere, faces (F, 3) int64 outward."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return np.asarray(sphere.vertices, dtype=np.float32), np.asarray(sphere.faces, dtype=np.int64)
