"""Pose2Mesh (seed 001): one step of each stage, `posenet_step` and `meshnet_step` of
`shapepose.pose2mesh.train`.

"posenet" is stage 1 (PoseNet alone), "meshnet" stage 2 (PoseNet and MeshNet together), each with
the config's default experiment (`pose2mesh.defaults`: the optimizer, its rate and the Laplacian
rescaling) and built as `train_posenet` / `train_meshnet` build them, but for stage 2's PoseNet,
which starts from the seed's weights rather than stage 1's file. A sample is one 2D pose (and, for
MeshNet, its mesh). Sizes: config.yaml's demo (the coarse body template of the demo data, 752
vertices, 5 coarsenings), or workflow/configs/h36m.yaml's released ones (PoseNet hidden 4096,
batch 64; MeshNet width 256 over 9 coarsenings of SMPL's 6890 vertices). There is no SMPL here:
the real size's stand-in mesh is the demo's fine body template (`shapepose.bodies.template`, 6746
vertices), whose 9 coarsenings give levels of 10752 ... 84 vertices (SMPL's: 12288 ... 96).

The batch is synthetic, on the device: standardized 2D joints, the template (metres) moved by a
few centimetres per vertex as the true mesh, its joints regressed by a random regressor (each
joint the mean of 12 random vertices, as the demo's), every mesh valid; the MeshNet step is taken
at the epoch the edge loss starts (every loss term on).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from benchmarks.trainers.common import Case, acceleration, one_process_wrap
from shapepose.bodies.coarse import load_coarse_template
from shapepose.bodies.template import load_template
from shapepose.config import section
from shapepose.pose2mesh.joints import N_JOINTS
from shapepose.pose2mesh.losses import LossConfig
from shapepose.pose2mesh.model import Pose2Mesh
from shapepose.pose2mesh.train import (PRECISIONS, initial_meshnet, initial_posenet,
                                       make_optimizer, meshnet_step, posenet_step)
from shapepose.training.fast import FastPath

REGRESSOR_VERTICES = 12  # vertices per joint of the synthetic regressor


def synthetic_batch(vertices: np.ndarray, batch: int, generator: torch.Generator
                    ) -> dict[str, torch.Tensor]:
    """inputs (B, J, 2) standardized 2D joints; mesh (B, V, 3) m, joints (B, J, 3) mm
    (root-relative), valid (B,); regressor (J, V)."""
    base = torch.from_numpy(np.array(vertices, dtype=np.float32))
    base = base - base.mean(dim=0)
    n = len(base)
    mesh = base + 0.03 * torch.randn(batch, n, 3, generator=generator)
    regressor = torch.zeros(N_JOINTS, n)
    for j in range(N_JOINTS):
        regressor[j, torch.randperm(n, generator=generator)[:REGRESSOR_VERTICES]] = \
            1.0 / REGRESSOR_VERTICES
    joints = torch.einsum("jv,bvc->bjc", regressor, mesh * 1000.0)
    inputs = torch.randn(batch, N_JOINTS, 2, generator=generator)
    inputs = (inputs - inputs.mean(1, keepdim=True)) / inputs.std(1, keepdim=True, unbiased=False)
    return {"inputs": inputs, "mesh": mesh, "joints": joints - joints[:, :1],
            "valid": torch.ones(batch), "regressor": regressor}


def build_posenet(device: torch.device, fast_path: FastPath, *, model: dict, experiment: dict,
                  batch: int, seed: int, vertices: np.ndarray):
    """PoseNet and its optimizer as `train_posenet` builds them; step(i)."""
    accel = acceleration(fast_path, device, PRECISIONS)
    net = initial_posenet(model, seed).to(device)
    optimizer = make_optimizer(net.parameters(), experiment)
    net_train = one_process_wrap(accel)(net, convolutional=False)
    data = {k: v.to(device) for k, v in synthetic_batch(
        vertices, batch, torch.Generator().manual_seed(0)).items()}

    def step(_i: int) -> None:
        posenet_step(net_train, optimizer, data["inputs"], data["joints"], accel)
        accel.end_step()

    return step


def build_meshnet(device: torch.device, fast_path: FastPath, *, model: dict, experiment: dict,
                  graph: dict, losses: LossConfig, batch: int, seed: int, vertices: np.ndarray,
                  faces: np.ndarray):
    """The whole model and its optimizer as `train_meshnet` builds them; step(i)."""
    accel = acceleration(fast_path, device, PRECISIONS)
    graph = {"levels": graph["levels"], "rescaling": experiment["rescaling"]}
    net = Pose2Mesh(initial_posenet(model, seed),
                    initial_meshnet(model, graph, faces, len(vertices), seed)).to(device)
    optimizer = make_optimizer(net.parameters(), experiment)
    net_train = one_process_wrap(accel)(net, convolutional=False)
    data = {k: v.to(device) for k, v in synthetic_batch(
        vertices, batch, torch.Generator().manual_seed(0)).items()}
    targets = {k: data[k] for k in ("mesh", "joints", "valid")}
    faces_t = torch.from_numpy(np.array(faces, dtype=np.int64)).to(device)

    def step(_i: int) -> None:
        meshnet_step(net_train, optimizer, data["inputs"], targets, data["regressor"], faces_t,
                     losses.edge_start, losses, accel)
        accel.end_step()

    return step


def cases(config: dict, size: str) -> list[Case]:
    p2m = config["pose2mesh"]
    model, experiment, graph = p2m["model"], dict(p2m["defaults"]), p2m["graph"]
    losses = section(LossConfig, p2m["losses"], where="pose2mesh.losses")
    template = load_template() if size == "real" else load_coarse_template()
    vertices, faces = template.vertices, template.faces
    mesh = ("stand-in for SMPL: the fine body template, 6746 vertices" if size == "real"
            else "the coarse body template, 752 vertices")
    seed = int(config["seed"])
    posenet_batch = int(p2m["posenet"]["training"]["batch_size"])
    meshnet_batch = int(p2m["meshnet"]["training"]["batch_size"])
    return [
        Case("posenet", size, "samples", posenet_batch,
             functools.partial(build_posenet, model=model, experiment=experiment,
                               batch=posenet_batch, seed=seed, vertices=vertices),
             f"hidden {model['posenet_hidden']}, {model['posenet_blocks']} blocks; "
             f"{experiment['optimizer']}"),
        Case("meshnet", size, "samples", meshnet_batch,
             functools.partial(build_meshnet, model=model, experiment=experiment, graph=graph,
                               losses=losses, batch=meshnet_batch, seed=seed, vertices=vertices,
                               faces=faces),
             f"width {model['meshnet_width']}, {graph['levels']} coarsenings of {mesh}; "
             f"{experiment['optimizer']}, {experiment['rescaling']} Laplacians"),
    ]
