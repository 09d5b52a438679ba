"""Benchmark cases of the style-transfer CycleGAN (`shapepose.style.train`): ours and the plain one.

"style_transfer" is the config's experiment `constrained` (seed 002 table 6.1: the alpha losses and
the ResNet feature distance), with Phi the random-weight ResNet-18 (`ResNetFeatures(None)`: the
thesis's network without its ImageNet file); "cyclegan_plain" is the same model with those four
weights 0, the stock CycleGAN objective, which never runs Phi (as `benchmarks/style_step.py`
compares them). Sizes: config.yaml's demo widths, or workflow/configs/cars.yaml's stock ones
(64, 9 blocks, 128 px, batch 4, pool 50). A sample is one image of each domain (the batch size).

The batch is one pair of procedural ellipse batches (x and y) on the device; a step is
`CycleGAN.train_step` with the step's generator (`step_draws`), so the image pools fill over the
first pool / batch steps and swap afterwards, as in training.
"""

from __future__ import annotations

import functools

import torch

from benchmarks.trainers.common import Case, acceleration, one_process_wrap
from shapepose.config import section
from shapepose.style.features import ResNetFeatures
from shapepose.style.train import (PRECISIONS, STAGE, Architecture, CycleGAN, Experiment,
                                   step_draws)
from shapepose.training import seed_everything
from shapepose.training.fast import FastPath

SEED = 0
# the stock CycleGAN objective: the constrained experiment without its alpha and feature terms
PLAIN = {"lambda_alpha_G": 0, "lambda_alpha_F": 0, "lambda_resdist_G": 0, "lambda_resdist_F": 0}


def ellipses(generator: torch.Generator, n: int, size: int) -> torch.Tensor:
    """(n, 3, size, size) in [-1, 1]: one coloured ellipse per image on "nothing" (-1)."""
    rand = lambda *shape: torch.rand(*shape, generator=generator)
    centre, axes = 0.3 + 0.4 * rand(n, 2, 1, 1), 0.15 + 0.2 * rand(n, 2, 1, 1)
    grid = (torch.arange(size) + 0.5) / size
    inside = (((grid.view(1, -1, 1) - centre[:, 0]) / axes[:, 0]) ** 2
              + ((grid.view(1, 1, -1) - centre[:, 1]) / axes[:, 1]) ** 2) <= 1.0  # (n, S, S)
    colour = rand(n, 3, 1, 1) * 1.8 - 0.8
    return torch.where(inside.unsqueeze(1), colour, torch.tensor(-1.0))


def build(device: torch.device, fast_path: FastPath, *, arch: Architecture, exp: Experiment,
          pool_size: int, batch: int):
    """The networks, optimizers and pools as `train_cyclegan` builds them, one batch; step(i)."""
    accel = acceleration(fast_path, device, PRECISIONS)
    seed_everything(SEED, STAGE, "init")
    model = CycleGAN(arch, exp, pool_size, ResNetFeatures(None).to(device), device)
    model.train_through(accel, one_process_wrap(accel))
    generator = torch.Generator().manual_seed(SEED)
    x = ellipses(generator, batch, arch.image_size).to(device)
    y = ellipses(generator, batch, arch.image_size).to(device)

    def step(i: int) -> None:
        gen, _ = step_draws(SEED, i, batch)
        model.train_step(x, y, gen)

    return step


def cases(config: dict, size: str) -> list[Case]:
    style = config["style_transfer"]
    arch = section(Architecture, style["model"], where="style_transfer.model")
    constrained = {**style["defaults"], **style["experiments"]["constrained"]}
    batch, pool_size = int(style["training"]["batch_size"]), int(style["training"]["pool_size"])
    shape = (f"ngf {arch.ngf}, ndf {arch.ndf}, {arch.n_blocks} blocks, {arch.image_size} px, "
             f"pool {pool_size}")
    out = []
    for name, weights, note in (
            ("style_transfer", {}, "experiment constrained, Phi a random-weight ResNet-18"),
            ("cyclegan_plain", PLAIN, "stock CycleGAN objective (no alpha or feature terms)")):
        exp = Experiment.from_config({**constrained, **weights}, name)
        out.append(Case(trainer=name, size=size, unit="images", samples=batch,
                        build=functools.partial(build, arch=arch, exp=exp, pool_size=pool_size,
                                                batch=batch),
                        note=f"{note}; {shape}"))
    return out
