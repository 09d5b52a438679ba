"""Training Pose2Mesh in the release's two stages on the shared trainer (resume, best by val MPJPE).

Stage 1 (`train_posenet`): PoseNet alone, L1 on the root-relative camera-frame joints (mm).
Stage 2 (`train_meshnet`): the whole model, PoseNet starting from stage 1's exported weights and
MeshNet from the seed, with the released losses (`losses.meshnet_losses`).

Inputs are the true projections plus synthetic detector noise drawn per step (the release adds
noise drawn from per-joint error statistics of a detector; here each joint moves, with probability
`probability`, by N(0, (std / 256 * bounding-box side)^2) pixels). Validation: the subjects of
`split.val_subjects` (held out of training; the release selects its best epoch on the test set),
with noise drawn once from their own stream. The optimizer is the experiment's (`rmsprop`,
released, or `adam`), with the release's step schedule (learning rate times `lr_factor` at each
epoch of `lr_steps`).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict

import numpy as np
import torch

from shapepose.config import section
from shapepose.pose2mesh import data as h36m
from shapepose.pose2mesh.graph import network_laplacians
from shapepose.pose2mesh.joints import FLIP_PAIRS, N_JOINTS, SKELETON, TRAIN_SUBJECTS
from shapepose.pose2mesh.losses import LossConfig, masked_l1, meshnet_losses
from shapepose.pose2mesh.metrics import mpjpe, mpvpe
from shapepose.pose2mesh.model import MeshNet, Pose2Mesh, PoseNet
from shapepose.seeding import derive_rng
from shapepose.training import Trainer, TrainConfig, load_exported, pick_device, seed_everything
from shapepose.training.batches import epoch_of, epoch_walk, step_rng, steps_per_epoch
from shapepose.training.fingerprint import data_fingerprint

log = logging.getLogger(__name__)

STAGE = "pose2mesh"
OPTIMIZERS = ("rmsprop", "adam")


def build_posenet(model: dict) -> PoseNet:
    return PoseNet(N_JOINTS, model["posenet_hidden"], model["posenet_blocks"], model["dropout"])


@functools.lru_cache(maxsize=4)
def _graphs(faces_bytes: bytes, n_vertices: int, levels: int, rescaling: str):
    faces = np.frombuffer(faces_bytes, dtype=np.int64).reshape(-1, 3)
    return network_laplacians(faces, n_vertices, N_JOINTS, SKELETON, FLIP_PAIRS, levels, rescaling)


def build_meshnet(model: dict, graph: dict, faces: np.ndarray, n_vertices: int) -> MeshNet:
    laplacians, graphs = _graphs(np.ascontiguousarray(faces, dtype=np.int64).tobytes(), n_vertices,
                                 graph["levels"], graph["rescaling"])
    return MeshNet(laplacians, graphs.reverse, 5, model["meshnet_width"], model["chebyshev_order"])


def initial_posenet(model: dict, seed: int) -> PoseNet:
    """Stage 1's starting weights: drawn from derive_seed(seed, "pose2mesh", "posenet", "init")."""
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed, STAGE, "posenet", "init")
        return build_posenet(model)


def initial_meshnet(model: dict, graph: dict, faces: np.ndarray, n_vertices: int,
                    seed: int) -> MeshNet:
    """Stage 2's starting MeshNet: drawn from derive_seed(seed, "pose2mesh", "meshnet", "init")."""
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed, STAGE, "meshnet", "init")
        return build_meshnet(model, graph, faces, n_vertices)


def make_optimizer(params, experiment: dict) -> torch.optim.Optimizer:
    name = experiment["optimizer"]
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=experiment["lr"])
    if name == "adam":
        return torch.optim.Adam(params, lr=experiment["lr"])
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def step_schedule(optimizer, training: dict, n_train: int):
    """The release's step schedule, its epochs turned into steps."""
    per_epoch = steps_per_epoch(n_train, training["batch_size"])
    milestones = [int(e) * per_epoch for e in training["lr_steps"]]
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones,
                                                gamma=training["lr_factor"])


def noisy(pixels: np.ndarray, noise: dict, rng: np.random.Generator) -> np.ndarray:
    """Synthetic detector noise on (B, J, 2) pixels (see the module docstring)."""
    side = (pixels.max(1) - pixels.min(1)).max(1)  # (B,)
    moved = rng.uniform(size=pixels.shape[:2]) < noise["probability"]
    offset = rng.normal(0.0, 1.0, pixels.shape) * (noise["std"] / 256.0 * side)[:, None, None]
    return pixels + offset * moved[..., None]


def load_splits(data_root: str, split: dict, noise: dict, seed: int,
                smpl_model: str | None = None):
    """(train, val, regressor, faces); val inputs carry noise drawn once from their own stream."""
    faces = h36m.mesh_faces(smpl_model)
    regressor = h36m.read_regressor(data_root, int(faces.max()) + 1)
    val_subjects = [int(s) for s in split["val_subjects"]]
    train_subjects = [s for s in TRAIN_SUBJECTS if s not in val_subjects]
    sub = split["subsample"]
    train = h36m.read_split(data_root, train_subjects, sub["train"], regressor,
                            split["fitting_threshold"], smpl_model=smpl_model)
    val = h36m.read_split(data_root, val_subjects, sub["val"], regressor,
                          split["fitting_threshold"], smpl_model=smpl_model) if val_subjects else None
    if val is not None:
        val.inputs = noisy(val.inputs, noise, derive_rng(seed, STAGE, "val_noise")).astype(np.float32)
    return train, val, regressor, faces


def relative(joints: np.ndarray) -> np.ndarray:
    return joints - joints[:, :1]


def batch_inputs(samples: h36m.Samples, index: np.ndarray, noise: dict | None,
                 rng: np.random.Generator | None, device) -> torch.Tensor:
    pixels = samples.inputs[index]
    if noise is not None:
        pixels = noisy(pixels, noise, rng)
    return torch.from_numpy(h36m.normalize_2d(pixels)).to(device)


def predict(model, samples: h36m.Samples, batch_size: int, device) -> tuple[np.ndarray, ...]:
    """PoseNet's (N, J, 3) mm, or the whole model's (mesh (N, V, 3) m, lifted (N, J, 3) mm)."""
    outs = []
    for start in range(0, len(samples), batch_size):
        index = np.arange(start, min(start + batch_size, len(samples)))
        out = model(batch_inputs(samples, index, None, None, device))
        outs.append(tuple(o.cpu().numpy() for o in (out if isinstance(out, tuple) else (out,))))
    return tuple(np.concatenate(parts) for parts in zip(*outs))


def _trainer(checkpoint_dir, fingerprint, modules, optimizer, scheduler, seed, device, training,
             validate, part):
    """The shared trainer of one stage (`part`: "posenet" or "meshnet")."""
    return Trainer(checkpoint_dir, fingerprint=fingerprint, modules=modules,
                   optimizers={"optimizer": optimizer}, lr_schedulers={"lr": scheduler},
                   seed=seed, stage=f"{STAGE}_{part}", device=device,
                   config=TrainConfig.from_section(training, best_metric="val_mpjpe",
                                                   best_mode="min", validate=validate))


def train_posenet(*, data: str, out: str, losses_csv: str, checkpoint_dir: str, experiment: dict,
                  seed: int, device: str, split: dict, noise: dict, model: dict,
                  training: dict, smpl_model: str | None = None) -> dict:
    """Stage 1; exports the best PoseNet by validation MPJPE (mm, lifted pose) to `out`."""
    device = pick_device(device)
    train, val, _, _ = load_splits(data, split, noise, seed, smpl_model)
    log.info("PoseNet: %d train, %d val samples, %s lr %g, device %s", len(train),
             len(val) if val else 0, experiment["optimizer"], experiment["lr"], device)
    net = initial_posenet(model, seed).to(device)
    optimizer = make_optimizer(net.parameters(), experiment)
    scheduler = step_schedule(optimizer, training, len(train))
    targets = torch.from_numpy(relative(train.joint_cam)).to(device)
    fingerprint = {"experiment": experiment, "split": split, "noise": noise, "model": model,
                   "training": training, "data": data_fingerprint([data] + ([smpl_model] if smpl_model else []))}
    trainer = _trainer(checkpoint_dir, fingerprint, {"posenet": net}, optimizer, scheduler, seed,
                       device, training, val is not None, "posenet")

    def step_fn(step: int) -> dict[str, float]:
        index = epoch_walk(len(train), training["batch_size"], step, seed, STAGE, "posenet")
        inputs = batch_inputs(train, index, noise, step_rng(seed, step, STAGE, "posenet_noise"),
                              device)
        loss = masked_l1(net(inputs), targets[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"lifted_joint": float(loss.detach())}

    def validate_fn() -> dict[str, float]:
        (lifted,) = predict(net, val, 256, device)
        return {"val_mpjpe": float(mpjpe(lifted, val.joint_cam).mean())}

    trainer.fit(step_fn, validate_fn if val is not None else None)
    extra = {"model": model, "experiment": experiment, "n_train": len(train),
             "n_val": len(val) if val else 0}
    trainer.export(out, which="best", extra=extra)
    trainer.write_losses(losses_csv)
    return extra


def load_posenet(path: str, device) -> PoseNet:
    exported = load_exported(path)
    net = build_posenet(exported["meta"]["extra"]["model"])
    net.load_state_dict(exported["posenet"])
    return net.to(device).eval()


def initial_pose2mesh(posenet_path: str, model: dict, graph: dict, faces: np.ndarray,
                      n_vertices: int, seed: int) -> Pose2Mesh:
    """Stage 2's starting model: the trained PoseNet and a MeshNet drawn from the seed."""
    posenet = load_posenet(posenet_path, "cpu").train()
    return Pose2Mesh(posenet, initial_meshnet(model, graph, faces, n_vertices, seed))


def train_meshnet(*, data: str, posenet: str, out: str, losses_csv: str, checkpoint_dir: str,
                  experiment: dict, seed: int, device: str, split: dict, noise: dict, model: dict,
                  graph: dict, losses: dict, training: dict, smpl_model: str | None = None) -> dict:
    """Stage 2; exports the best whole model by validation MPJPE (joints regressed from the mesh)."""
    device = pick_device(device)
    train, val, regressor, faces = load_splits(data, split, noise, seed, smpl_model)
    loss_config = section(LossConfig, losses, where="pose2mesh.losses")
    graph = {"levels": graph["levels"], "rescaling": experiment["rescaling"]}
    net = initial_pose2mesh(posenet, model, graph, faces, regressor.shape[1], seed).to(device)
    log.info("MeshNet: %d train (%d with a valid mesh), %d val samples, graph sizes %s, %s lr %g, "
             "Laplacians %s, device %s", len(train), int(train.mesh_valid.sum()),
             len(val) if val else 0, net.meshnet.sizes, experiment["optimizer"], experiment["lr"],
             graph["rescaling"], device)
    optimizer = make_optimizer(net.parameters(), experiment)
    scheduler = step_schedule(optimizer, training, len(train))
    tensors = {
        "mesh": torch.from_numpy(train.mesh).to(device),
        "joints": torch.from_numpy(relative(train.joint_cam)).to(device),
        "valid": torch.from_numpy(train.mesh_valid.astype(np.float32)).to(device),
    }
    regressor_t = torch.from_numpy(regressor).to(device)
    faces_t = torch.from_numpy(faces).to(device)
    fingerprint = {"experiment": experiment, "split": split, "noise": noise, "model": model,
                   "graph": graph, "losses": asdict(loss_config), "training": training,
                   "data": data_fingerprint([data] + ([smpl_model] if smpl_model else [])), "posenet": data_fingerprint([posenet])}
    trainer = _trainer(checkpoint_dir, fingerprint, {"pose2mesh": net}, optimizer, scheduler, seed,
                       device, training, val is not None, "meshnet")

    def step_fn(step: int) -> dict[str, float]:
        index = epoch_walk(len(train), training["batch_size"], step, seed, STAGE, "meshnet")
        inputs = batch_inputs(train, index, noise, step_rng(seed, step, STAGE, "meshnet_noise"),
                              device)
        mesh, lifted = net(inputs)
        terms = meshnet_losses(
            mesh=mesh, lifted=lifted, true_mesh=tensors["mesh"][index],
            true_joints=tensors["joints"][index], mesh_valid=tensors["valid"][index],
            regressor=regressor_t, faces=faces_t,
            epoch=epoch_of(step, len(train), training["batch_size"]), config=loss_config)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        return {name: float(value.detach()) for name, value in terms.items()}

    def validate_fn() -> dict[str, float]:
        mesh, _ = predict(net, val, 128, device)
        regressed = regressor @ (mesh * 1000.0)
        true_root = (regressor[:1] @ (val.mesh * 1000.0))[:, 0]
        return {"val_mpjpe": float(mpjpe(regressed, val.joint_cam).mean()),
                "val_mpvpe": float(mpvpe(mesh * 1000.0, val.mesh * 1000.0, regressed[:, 0],
                                         true_root).mean())}

    trainer.fit(step_fn, validate_fn if val is not None else None)
    extra = {"model": model, "graph": graph, "experiment": experiment, "n_train": len(train),
             "n_val": len(val) if val else 0, "n_vertices": int(regressor.shape[1]),
             "epochs": training["steps"] * training["batch_size"] / len(train),
             # the trivial baseline: the mean root-relative training pose (mm) and mesh (m)
             "mean_pose": relative(train.joint_cam).mean(0).tolist(),
             "mean_mesh": train.mesh.mean(0).tolist()}
    trainer.export(out, which="best", extra=extra)
    trainer.write_losses(losses_csv)
    return extra


def load_pose2mesh(path: str, faces: np.ndarray, device, untrained: bool = False,
                   posenet_path: str | None = None) -> Pose2Mesh:
    """The whole model of a stage-2 file, in eval mode; `untrained`: its stage's step-0 state
    (the trained PoseNet of `posenet_path` and the MeshNet drawn from the recorded seed)."""
    exported = load_exported(path)
    meta = exported["meta"]
    extra = meta["extra"]
    if untrained:
        net = initial_pose2mesh(posenet_path, extra["model"], extra["graph"], faces,
                                extra["n_vertices"], int(meta["seed"]))
    else:
        net = Pose2Mesh(build_posenet(extra["model"]),
                        build_meshnet(extra["model"], extra["graph"], faces, extra["n_vertices"]))
        net.load_state_dict(exported["pose2mesh"])
    return net.to(device).eval()

