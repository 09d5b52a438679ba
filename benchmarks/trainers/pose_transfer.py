"""Neural pose transfer (seed 000): one step of `shapepose.pose_transfer.train.train_step`.

One case per variant of the config (`pose_transfer.variants`: "pose_transfer" is the default
`original`, "pt_maxpool" and "pt_spadabin" the others); the network and its Adam are built as
`train_pose_transfer` builds them. A step is `batch_size` (identity, pose, target)
triples of one topology: for the demo size the coarse body template the demo set is posed from
(752 vertices, 1500 faces); for the real size (workflow/configs/npt.yaml: width 1024, batch 8,
SMPL's 6890 vertices and 13776 faces) there is no SMPL here, and the stand-in is the demo's fine
body template (`shapepose.bodies.template`: 6746 vertices, 13488 faces, 98 % of SMPL's).

The batch is synthetic and shaped as `draw_batch` gives it: each sample's identity is the
template scaled per axis and its target the identity moved by a few centimetres, the pose is
another sample's target, every mesh bounding-box centred and in its own random vertex order
(faces renumbered to match), float64 as the step reads them.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from benchmarks.trainers.common import Case, acceleration, one_process_wrap
from shapepose.bodies.coarse import load_coarse_template
from shapepose.bodies.template import load_template
from shapepose.pose_transfer.metrics import bbox_centred
from shapepose.pose_transfer.train import PRECISIONS, architecture, initial_model, train_step
from shapepose.training.fast import FastPath

NAMES = {"original": "pose_transfer"}  # the default variant keeps the stage's name


def synthetic_batch(vertices: np.ndarray, faces: np.ndarray, batch: int,
                    generator: torch.Generator) -> dict[str, torch.Tensor]:
    """identity, pose, target (B, N, 3) float64 and faces (B, F, 3) int64, as `draw_batch`."""
    base = torch.from_numpy(np.array(vertices, dtype=np.float64))
    n = len(base)
    scale = 0.9 + 0.2 * torch.rand(batch, 1, 3, generator=generator, dtype=torch.float64)
    identity = base * scale
    target = identity + 0.03 * torch.randn(identity.shape, generator=generator,
                                           dtype=torch.float64)
    pose = target.roll(1, dims=0)
    out = {"identity": [], "pose": [], "target": [], "faces": []}
    for b in range(batch):
        order = torch.randperm(n, generator=generator)
        pose_order = torch.randperm(n, generator=generator)
        position = torch.empty(n, dtype=torch.int64)
        position[order] = torch.arange(n)
        out["identity"].append(torch.from_numpy(bbox_centred(identity[b, order].numpy())))
        out["target"].append(torch.from_numpy(bbox_centred(target[b, order].numpy())))
        out["pose"].append(torch.from_numpy(bbox_centred(pose[b, pose_order].numpy())))
        out["faces"].append(position[torch.from_numpy(np.array(faces, dtype=np.int64))])
    return {key: torch.stack(value) for key, value in out.items()}


def build(device: torch.device, fast_path: FastPath, *, settings: dict, lr: float, batch: int,
          seed: int, real: bool):
    """The network and Adam as `train_pose_transfer` builds them; step(i)."""
    accel = acceleration(fast_path, device, PRECISIONS)
    net = initial_model(architecture(settings), seed).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    # the trainer's `wrap` in one process: 1x1 Conv1d only (nothing for channels-last), compile
    net_train = one_process_wrap(accel)(net, convolutional=False)
    template = load_template() if real else load_coarse_template()
    data = synthetic_batch(template.vertices, template.faces, batch,
                           torch.Generator().manual_seed(0))
    data = {key: value.to(device) for key, value in data.items()}
    edge_weight, edge_form = float(settings["edge_weight"]), str(settings["edge_loss"])

    def step(_i: int) -> None:
        train_step(net, net_train, optimizer, data, accel, edge_weight, edge_form)
        accel.end_step()

    return step


def cases(config: dict, size: str) -> list[Case]:
    section = config["pose_transfer"]
    training = section["training"]
    batch, real = int(training["batch_size"]), size == "real"
    mesh = ("stand-in for SMPL: the fine body template, 6746 vertices" if real
            else "the coarse body template, 752 vertices")
    out = []
    for variant, change in section["variants"].items():
        settings = {**section["defaults"], **(change or {})}
        out.append(Case(
            NAMES.get(variant, f"pt_{variant}"), size, "meshes", batch,
            functools.partial(build, settings=settings, lr=float(training["lr"]), batch=batch,
                              seed=int(config["seed"]), real=real),
            f"variant {variant}: width {settings['width']}, pooling {settings['pose_pooling']}, "
            f"{settings['normalization']} norm; {mesh}"))
    return out
