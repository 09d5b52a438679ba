"""Benchmark cases of the Liquid Warping GAN (`shapepose.lwgan.train`).

"lwgan" is the experiment `baseline` (lwgan.defaults), "lwgan_gp" the experiment `gp10` (its
gradient penalty differentiates the critic a second time every step). Sizes: config.yaml's demo,
or workflow/configs/iper.yaml's original ones (256 px, conv_dim 64, 6 blocks, batch 4). Where the
config names VGG-19 weights (iper.yaml does) the perceptual loss runs VGG-19 at random weights
(`VGGPerceptual(None)`: the same network without the ImageNet file); the face loss is off (its
SphereFace file is TorchScript the workflow does not make), so it is not timed. A sample is one
(source, reference) pair: one generated frame.

The batch is a synthetic `pair_frames` batch of the real shapes (frames, condition maps of an
elliptical body, a flow near the identity on the body) on the device; a step finishes it with
`assemble_inputs` and runs `LWGAN.train_step`, as a training step does.
"""

from __future__ import annotations

import functools

import torch

from benchmarks.trainers.common import Case, acceleration, one_process_wrap
from shapepose.config import section
from shapepose.lwgan.flow import INVALID
from shapepose.lwgan.inputs import assemble_inputs
from shapepose.lwgan.losses import VGGPerceptual
from shapepose.lwgan.train import (PRECISIONS, LWGAN, Architecture, Experiment,
                                   step_generator_for)
from shapepose.training.fast import FastPath

SEED = 0
EXPERIMENTS = {"lwgan": "baseline", "lwgan_gp": "gp10"}


def synthetic_frames(generator: torch.Generator, batch: int, size: int) -> dict[str, torch.Tensor]:
    """A `pair_frames` batch: an elliptical body per frame with rest coordinates in [-1, 1] and
    the background flag, frames in [-1, 1], and a flow within a pixel of the identity on the
    reference's body (INVALID elsewhere)."""
    rand = lambda *shape: torch.rand(*shape, generator=generator)
    grid = (torch.arange(size) + 0.5) / size * 2 - 1  # pixel centres, align_corners=False
    rows, cols = grid.view(1, -1, 1), grid.view(1, 1, -1)

    def condition() -> torch.Tensor:
        centre, axes = 0.4 * rand(batch, 2, 1, 1) - 0.2, 0.3 + 0.3 * rand(batch, 2, 1, 1)
        u, v = torch.broadcast_tensors((cols - centre[:, 0]) / axes[:, 0],
                                       (rows - centre[:, 1]) / axes[:, 1])  # (B, S, S)
        body = (u ** 2 + v ** 2 <= 1.0).float()
        depth = (1 - u ** 2 - v ** 2).clamp_min(0).sqrt()
        coords = torch.stack([u, v, depth], dim=1).clamp(-1, 1) * body.unsqueeze(1)
        return torch.cat([coords, (1 - body).unsqueeze(1)], dim=1)

    src_cond, ref_cond = condition(), condition()
    body = ref_cond[:, -1] < 0.5
    identity = torch.stack(torch.broadcast_tensors(cols, rows), dim=-1).expand(batch, -1, -1, -1)
    flow = identity + (rand(batch, size, size, 2) - 0.5) * 2 / size
    return {"src": rand(batch, 3, size, size) * 2 - 1, "ref": rand(batch, 3, size, size) * 2 - 1,
            "src_cond": src_cond, "ref_cond": ref_cond,
            "flow": torch.where(body.unsqueeze(-1), flow, torch.tensor(INVALID)), "valid": body}


def build(device: torch.device, fast_path: FastPath, *, arch: Architecture, exp: Experiment,
          vgg: bool, batch: int):
    """G, D, their optimizers and the loss networks as `train_lwgan` builds them; step(i)."""
    accel = acceleration(fast_path, device, PRECISIONS)
    net = LWGAN(arch, exp, SEED, device, VGGPerceptual(None) if vgg else None, None)
    net.train_through(accel, one_process_wrap(accel))
    frames = {k: v.to(device) for k, v in synthetic_frames(
        torch.Generator().manual_seed(SEED), batch, arch.image_size).items()}

    def step(i: int) -> None:
        net.train_step(assemble_inputs(frames, arch.morphology), step_generator_for(SEED, i))

    return step


def cases(config: dict, size: str) -> list[Case]:
    lw = config["lwgan"]
    arch = section(Architecture, lw["model"], where="lwgan.model")
    batch, vgg = int(lw["training"]["batch_size"]), bool(lw["weights"]["vgg"])
    shape = (f"{arch.image_size} px, conv_dim {arch.conv_dim}, {arch.n_blocks} blocks, ndf "
             f"{arch.ndf}, {arch.d_layers} critic layers; tsf loss "
             f"{'VGG-19 (random weights)' if vgg else 'L1'}, no face loss")
    out = []
    for name, experiment in EXPERIMENTS.items():
        settings = {**lw["defaults"], **(lw["experiments"][experiment] or {})}
        exp = section(Experiment, settings, where=f"lwgan.experiments.{experiment}")
        out.append(Case(trainer=name, size=size, unit="frames", samples=batch,
                        build=functools.partial(build, arch=arch, exp=exp, vgg=vgg, batch=batch),
                        note=f"experiment {experiment}; {shape}"))
    return out
