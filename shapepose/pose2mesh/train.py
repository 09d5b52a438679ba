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

Batches (`StepBatches`): the samples of a step and their noisy, normalized 2D inputs are drawn on
the host (numpy, from the step's stream, the values they always had); the targets (meshes,
joints) stay on the device when they fit in `fast_path.preload_mb` (the demo's do: each step then
gathers its rows there), else each step's rows travel with its inputs, made by DataLoader workers
when `fast_path.loader_workers` asks for them (the real set's 250k meshes do not fit).

Precision (PRECISIONS): PoseNet and MeshNet run under the run's autocast but for MeshNet's sparse
Laplacian products and its output layer (`model.ChebConv`); the losses are computed in fp32.

Several processes (`shapepose.training.distributed`): each rank draws the whole global batch's
samples and noise and keeps its `Trainer.shard`. What is not one process's run: PoseNet's and
MeshNet's batch norms normalize each rank's slice on the CPU (on CUDA they become SyncBatchNorm,
the global batch's statistics), their running statistics are rank 0's (DDP broadcasts buffers),
and the dropout masks are drawn by each rank from its own global RNG, so they differ from one
process's masks (both are random draws of the same distribution).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

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
from shapepose.training.fast import Acceleration
from shapepose.training.fingerprint import data_fingerprint
from shapepose.training.pipeline import nbytes

log = logging.getLogger(__name__)

STAGE = "pose2mesh"
OPTIMIZERS = ("rmsprop", "adam")
# Low precisions the models allow: PoseNet's linear layers, batch norms and dropout, and MeshNet's
# linear maps and batch norms, run well in bf16 or fp16 (with the gradient scaler); what must stay
# fp32 does so inside the model (MeshNet's sparse Laplacians and output layer) or the step (losses).
PRECISIONS = ("bf16", "fp16")


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
                 rng: np.random.Generator | None, device=None) -> torch.Tensor:
    """The normalized 2D inputs (B, J, 2) float32 of samples `index`, with noise drawn from `rng`
    when `noise` is given; on `device`, or on the host (None)."""
    pixels = samples.inputs[index]
    if noise is not None:
        pixels = noisy(pixels, noise, rng)
    inputs = torch.from_numpy(h36m.normalize_2d(pixels))
    return inputs if device is None else inputs.to(device)


class StepBatches:
    """The batches of one training stage: `make(step)` draws them (a pure function of the step,
    on the host), `targets(batch)` gives a batch's target rows on the device.

    Every step draws the whole global batch (`epoch_walk(..., label)`) and its input noise
    (`step_rng(seed, step, "pose2mesh", f"{label}_noise")`), then keeps the samples of `part`.
    `arrays` (name -> (N, ...) array of the training samples) go to the device when they fit in
    `preload_mb` (`preloaded`: a batch carries the row indices), else a batch carries its rows.
    """

    def __init__(self, samples: h36m.Samples, arrays: dict[str, np.ndarray], noise: dict, *,
                 seed: int, label: str, batch_size: int, part: slice, device: torch.device,
                 preload_mb: int):
        self.samples, self.noise, self.seed, self.label = samples, noise, seed, label
        self.batch_size, self.part = batch_size, part
        self.preloaded = nbytes(*arrays.values()) <= preload_mb * 2**20
        if self.preloaded:
            self.arrays = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
        else:
            self.arrays = arrays
        log.info("%s: training targets of %.0f MB %s", label, nbytes(*arrays.values()) / 2**20,
                 f"kept on {device}" if self.preloaded else "sent with each batch")

    def make(self, step: int) -> dict[str, np.ndarray | torch.Tensor]:
        index = epoch_walk(len(self.samples), self.batch_size, step, self.seed, STAGE, self.label)
        rng = step_rng(self.seed, step, STAGE, f"{self.label}_noise")
        inputs = batch_inputs(self.samples, index, self.noise, rng)[self.part]
        index = index[self.part]
        if self.preloaded:
            return {"inputs": inputs, "index": index}
        return {"inputs": inputs, **{k: v[index] for k, v in self.arrays.items()}}

    def targets(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.preloaded:
            return {k: v[batch["index"]] for k, v in self.arrays.items()}
        return {k: batch[k] for k in self.arrays}


def posenet_step(net_train: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 inputs: torch.Tensor, joints: torch.Tensor, accel: Acceleration
                 ) -> dict[str, torch.Tensor]:
    """One stage-1 step: L1 of the lifted pose (mm) against the root-relative joints."""
    with accel.autocast():
        lifted = net_train(inputs)
        with accel.full_precision():
            loss = masked_l1(lifted.float(), joints)
    optimizer.zero_grad(set_to_none=True)
    accel.backward(loss)
    accel.step(optimizer)
    return {"lifted_joint": loss.detach()}


def meshnet_step(net_train: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 inputs: torch.Tensor, targets: dict[str, torch.Tensor], regressor: torch.Tensor,
                 faces: torch.Tensor, epoch: int, config: LossConfig, accel: Acceleration
                 ) -> dict[str, torch.Tensor]:
    """One stage-2 step of the whole model; targets: mesh (B, V, 3) m, joints (B, J, 3) mm,
    valid (B,) (`StepBatches.targets`)."""
    with accel.autocast():
        mesh, lifted = net_train(inputs)
        with accel.full_precision():
            terms = meshnet_losses(
                mesh=mesh.float(), lifted=lifted.float(), true_mesh=targets["mesh"],
                true_joints=targets["joints"], mesh_valid=targets["valid"], regressor=regressor,
                faces=faces, epoch=epoch, config=config)
    optimizer.zero_grad(set_to_none=True)
    accel.backward(terms["total"])
    accel.step(optimizer)
    return {name: value.detach() for name, value in terms.items()}


def predict(model, samples: h36m.Samples, batch_size: int, device) -> tuple[np.ndarray, ...]:
    """PoseNet's (N, J, 3) mm, or the whole model's (mesh (N, V, 3) m, lifted (N, J, 3) mm)."""
    outs = []
    for start in range(0, len(samples), batch_size):
        index = np.arange(start, min(start + batch_size, len(samples)))
        out = model(batch_inputs(samples, index, None, None, device))
        outs.append(tuple(o.cpu().numpy() for o in (out if isinstance(out, tuple) else (out,))))
    return tuple(np.concatenate(parts) for parts in zip(*outs))


def _trainer(checkpoint_dir, fingerprint, modules, optimizer, scheduler, seed, device, training,
             validate, part, fast_path, rule):
    """The shared trainer of one stage (`part`: "posenet" or "meshnet")."""
    return Trainer(checkpoint_dir, fingerprint=fingerprint, modules=modules,
                   optimizers={"optimizer": optimizer}, lr_schedulers={"lr": scheduler},
                   seed=seed, stage=f"{STAGE}_{part}", device=device,
                   config=TrainConfig.from_section(training, best_metric="val_mpjpe",
                                                   best_mode="min", validate=validate),
                   fast_path=fast_path, precisions=PRECISIONS,
                   batch_size=(f"pose2mesh.{part}.training.batch_size", training["batch_size"]),
                   rule=rule)


def _batches(trainer: Trainer, train: h36m.Samples, arrays: dict[str, np.ndarray], noise: dict,
             seed: int, training: dict, part: str) -> StepBatches:
    batch_size = training["batch_size"]
    return StepBatches(train, arrays, noise, seed=seed, label=part, batch_size=batch_size,
                       part=trainer.shard(batch_size), device=trainer.device,
                       preload_mb=trainer.accel.config.preload_mb)


def train_posenet(*, data: str, out: str, losses_csv: str, checkpoint_dir: str, experiment: dict,
                  seed: int, device: str, split: dict, noise: dict, model: dict,
                  training: dict, smpl_model: str | None = None, fast_path: dict | None = None,
                  rule: str | None = None) -> dict:
    """Stage 1; exports the best PoseNet by validation MPJPE (mm, lifted pose) to `out`.
    fast_path: the config's `fast_path` section (`shapepose.training.fast`); rule: the Snakemake
    rule, named in an out-of-memory error."""
    device = pick_device(device)
    train, val, _, _ = load_splits(data, split, noise, seed, smpl_model)
    log.info("PoseNet: %d train, %d val samples, %s lr %g, device %s", len(train),
             len(val) if val else 0, experiment["optimizer"], experiment["lr"], device)
    net = initial_posenet(model, seed).to(device)
    optimizer = make_optimizer(net.parameters(), experiment)
    scheduler = step_schedule(optimizer, training, len(train))
    fingerprint = {"experiment": experiment, "split": split, "noise": noise, "model": model,
                   "training": training, "data": data_fingerprint([data] + ([smpl_model] if smpl_model else []))}
    trainer = _trainer(checkpoint_dir, fingerprint, {"posenet": net}, optimizer, scheduler, seed,
                       device, training, val is not None, "posenet", fast_path, rule)
    net_train = trainer.wrap(net)
    batches = _batches(trainer, train, {"joints": relative(train.joint_cam)}, noise, seed,
                       training, "posenet")

    def step_fn(step: int, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return posenet_step(net_train, optimizer, batch["inputs"],
                            batches.targets(batch)["joints"], trainer.accel)

    def validate_fn() -> dict[str, float]:
        (lifted,) = predict(net, val, 256, device)
        return {"val_mpjpe": float(mpjpe(lifted, val.joint_cam).mean())}

    trainer.fit(step_fn, validate_fn if val is not None else None, batches=batches.make,
                host_batches=not batches.preloaded)
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
                  graph: dict, losses: dict, training: dict, smpl_model: str | None = None,
                  fast_path: dict | None = None, rule: str | None = None) -> dict:
    """Stage 2; exports the best whole model by validation MPJPE (joints regressed from the mesh).
    fast_path: the config's `fast_path` section (`shapepose.training.fast`); rule: the Snakemake
    rule, named in an out-of-memory error."""
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
    regressor_t = torch.from_numpy(regressor).to(device)
    faces_t = torch.from_numpy(faces).to(device)
    fingerprint = {"experiment": experiment, "split": split, "noise": noise, "model": model,
                   "graph": graph, "losses": asdict(loss_config), "training": training,
                   "data": data_fingerprint([data] + ([smpl_model] if smpl_model else [])), "posenet": data_fingerprint([posenet])}
    trainer = _trainer(checkpoint_dir, fingerprint, {"pose2mesh": net}, optimizer, scheduler, seed,
                       device, training, val is not None, "meshnet", fast_path, rule)
    # Every rank builds the graphs alike, and DDP cannot broadcast buffers that are sparse tensors.
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
        net, [f"meshnet.{name}" for name in net.meshnet.graph_buffers])
    net_train = trainer.wrap(net)
    arrays = {"mesh": train.mesh, "joints": relative(train.joint_cam),
              "valid": train.mesh_valid.astype(np.float32)}
    batches = _batches(trainer, train, arrays, noise, seed, training, "meshnet")

    def step_fn(step: int, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return meshnet_step(net_train, optimizer, batch["inputs"], batches.targets(batch),
                            regressor_t, faces_t,
                            epoch_of(step, len(train), training["batch_size"]), loss_config,
                            trainer.accel)

    def validate_fn() -> dict[str, float]:
        mesh, _ = predict(net, val, 128, device)
        regressed = regressor @ (mesh * 1000.0)
        true_root = (regressor[:1] @ (val.mesh * 1000.0))[:, 0]
        return {"val_mpjpe": float(mpjpe(regressed, val.joint_cam).mean()),
                "val_mpvpe": float(mpvpe(mesh * 1000.0, val.mesh * 1000.0, regressed[:, 0],
                                         true_root).mean())}

    trainer.fit(step_fn, validate_fn if val is not None else None, batches=batches.make,
                host_batches=not batches.preloaded)
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

