"""Shape and pose (seed 002 chapter 5, DPC): one step of `shapepose.shape_pose.train.train_step`.

A step is `models_per_batch` models x `views_per_model` views (16 images at both sizes); the
network and its Adam are built as `train_shape_pose` builds them. The batch is random images and
binary masks of the real shapes, at the last step of the schedules: the final sigma and every
point kept (the point dropout keeps more points as training goes on, so this is the step that
splats the most and needs the most memory).
"""

from __future__ import annotations

import torch

from benchmarks.trainers.common import Case, acceleration, one_process_wrap
from shapepose.shape_pose.losses import draw_point_subsets
from shapepose.shape_pose.model import Architecture, build_model
from shapepose.shape_pose.train import (PRECISIONS, loss_settings, make_optimizer, make_projector,
                                        train_step)
from shapepose.training.fast import FastPath


def cases(config: dict, size: str) -> list[Case]:
    section = config["shape_pose"]
    training = section["training"]
    B, W = int(training["models_per_batch"]), int(training["views_per_model"])
    arch = Architecture.from_config(dict(section["model"]))
    grid = int(section["projection"]["grid"])

    def build(device: torch.device, fast_path: FastPath):
        projector = make_projector(section["projection"])
        settings = loss_settings(section["losses"], section["projection"])
        net = build_model(arch, int(config["seed"])).to(device)
        optimizer = make_optimizer(net, float(training["lr"]), float(training["weight_decay"]))
        accel = acceleration(fast_path, device, PRECISIONS)
        net_train = one_process_wrap(accel)(net, convolutional=True)
        generator = torch.Generator().manual_seed(0)
        S = arch.image_size
        sigma, keep = settings.sigma[1], settings.point_keep[1]
        subsets = draw_point_subsets(B, W, arch.candidates, arch.points, settings.pairing, keep,
                                     generator)  # None: every point kept
        batch = {"images": (torch.rand(B, W, 3, S, S, generator=generator) * 2 - 1).to(device),
                 "masks": (torch.rand(B, W, grid, grid, generator=generator) > 0.5).float()
                 .to(device),
                 "subsets": None if subsets is None else subsets.to(device)}

        def step(_i: int) -> None:
            train_step(net_train, optimizer, accel, batch, projector, settings, sigma, keep)
            accel.end_step()

        return step

    note = (f"{B} models x {W} views, {arch.image_size} px, {arch.points} points, grid {grid}, "
            f"kernel {section['projection']['kernel_size']}")
    return [Case("shape_pose", size, "images", B * W, build, note)]
