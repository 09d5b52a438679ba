"""Neural Parts (seed 003): one step of `shapepose.neural_parts.train.train_step`.

A step is `batch_size` frames (2 at both sizes), each with `surface_points` surface samples,
`volume_points` volume samples and `sphere_points` sphere points per primitive; the network and
its Adam are built as `train_neural_parts` builds them. The batch is synthetic: random images,
surface points on an ellipsoid the size of a person with their normals, volume points in the
config's cuboid labelled inside that ellipsoid, random importance weights.

The cost grows with the number of primitives (the invertible network runs once per point and
primitive), so it is a parameter, by default the config's largest: 4 for the demo, seed 003's 10
for the real size (`cases(config, size, n_primitives=5)` for another count).
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.trainers.common import Case, acceleration
from shapepose.config import section as build_section
from shapepose.neural_parts.losses import LossConfig
from shapepose.neural_parts.model import sphere_points
from shapepose.neural_parts.train import PRECISIONS, initial_model, train_step
from shapepose.training.fast import FastPath

HALF_AXES = (0.2, 0.45, 0.15)  # the synthetic body: an ellipsoid of these half-axes (metres)


def synthetic_batch(frames: int, image_size: int, n_surface: int, n_volume: int,
                    cuboid: list[float], generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The tensors `draw_batch` gives (host), for an ellipsoid at the cuboid's centre."""
    axes = torch.tensor(HALF_AXES)
    directions = torch.randn(frames, n_surface, 3, generator=generator)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    surface = directions * axes
    normals = directions / axes  # the ellipsoid's gradient direction at those points
    normals = normals / normals.norm(dim=-1, keepdim=True)
    volume = (torch.rand(frames, n_volume, 3, generator=generator) - 0.5) * torch.tensor(cuboid)
    inside = ((volume / axes) ** 2).sum(dim=-1) <= 1
    return {"images": torch.rand(frames, 3, image_size, image_size, generator=generator),
            "surface_points": surface, "surface_normals": normals, "volume_points": volume,
            "inside": inside, "weights": torch.rand(frames, n_volume, generator=generator) + 0.1}


def cases(config: dict, size: str, n_primitives: int | None = None) -> list[Case]:
    section = config["neural_parts"]
    model, training = section["model"], section["training"]
    n_primitives = int(n_primitives or max(section["primitives"]))
    B = int(training["batch_size"])
    cuboid = list(config["volume"]["cuboid"])

    def build(device: torch.device, fast_path: FastPath):
        net = initial_model(n_primitives, model, int(config["seed"]))
        generator = torch.Generator().manual_seed(0)
        batch = synthetic_batch(B, int(model["image_size"]), int(training["surface_points"]),
                                int(training["volume_points"]), cuboid, generator)
        net.inn.origin.copy_(batch["surface_points"].mean(dim=(0, 1)))
        net.to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=training["lr"])
        loss_config = build_section(LossConfig, section["losses"], where="neural_parts.losses")
        accel = acceleration(fast_path, device, PRECISIONS)
        # never compiled, as in train_neural_parts: torch.compile has no double backward
        net_train = accel.prepare(net, convolutional=True)
        batch = {key: value.to(device) for key, value in batch.items()}
        sphere = sphere_points(int(training["sphere_points"]), net.radius,
                               np.random.default_rng(0)).to(device)

        def step(_i: int) -> None:
            train_step(net_train, optimizer, accel, batch, sphere, loss_config)
            accel.end_step()

        return step

    note = (f"{n_primitives} primitives, {model['image_size']} px, {training['surface_points']} "
            f"surface + {training['volume_points']} volume points, {training['sphere_points']} "
            f"sphere points per primitive")
    return [Case("neural_parts", size, "frames", B, build, note)]
