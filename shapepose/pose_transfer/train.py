"""Training one pose-transfer variant with the shared trainer (resume, best by validation PMD).

A training sample, as the authors' loader draws it: identity mesh (i, q) and pose mesh (k, p)
from the training identities and poses, ground truth (i, p); every mesh centred on its bounding
box. The identity meshes walk the training meshes in a fresh order each epoch
(`epoch_walk(..., "pose_transfer", "identity")`); the pose mesh and two vertex permutations per
sample come from the step's stream (`step_rng(seed, step, "pose_transfer", "pairs")`): identity and
ground truth share one permutation and the pose mesh gets another, because the claim under test is
invariance to vertex order. So the draws differ between epochs and repeat on a rerun or a resume.

The fast path (`shapepose.training.fast`): the batch of a step is drawn on the host
(`draw_batch`, a pure function of the seed and the step, so DataLoader workers may draw it); the
network runs under the run's autocast, but its output layer and the losses stay in full precision
(see PRECISIONS). Several processes (`shapepose.training.distributed`): every rank draws the whole
global batch's randomness and keeps its `Trainer.shard` of the samples. With instance norm (the
`original` and `maxpool` variants) each sample is normalized on its own, so N processes give one
process's update up to the order of additions (how close that stays under Adam:
tests/pose_transfer/test_pose_transfer_distributed.py); `spadabin`'s batch-instance norm takes batch
statistics, which on CUDA are the global batch's (SyncBatchNorm) but on the CPU each rank's own
slice's, and its running statistics are rank 0's (DDP broadcasts buffers from rank 0).
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import torch

from shapepose.config import section
from shapepose.pose_transfer.losses import pose_transfer_loss
from shapepose.pose_transfer.meshes import MeshStore, Triple, mesh_path, read_triples
from shapepose.pose_transfer.metrics import bbox_centred, pmd
from shapepose.pose_transfer.model import Architecture, PoseTransferNet
from shapepose.training import Trainer, TrainConfig, pick_device, seed_everything
from shapepose.training.batches import epoch_walk, step_rng
from shapepose.seeding import derive_rng
from shapepose.training.fast import Acceleration
from shapepose.training.fingerprint import data_fingerprint

log = logging.getLogger(__name__)

STAGE = "pose_transfer"  # the first label of every random stream of this stage
ARCH_KEYS = ("width", "pose_pooling", "normalization", "first_block_normalized")
# Low precisions the network allows: its 1x1 convolutions and instance norms run well in bf16 or
# fp16 (with the gradient scaler). The output layer (`model.Decoder`) and the losses stay fp32:
# coordinates near 1 m have a resolution of 4 mm in bf16, too coarse for the 1-2 cm edges of an
# SMPL body that the edge loss compares, and the reconstruction loss is of squared centimetres.
PRECISIONS = ("bf16", "fp16")


def architecture(settings: dict) -> Architecture:
    """The network part of a variant's settings (defaults with the variant's overrides)."""
    return section(Architecture, {k: settings[k] for k in ARCH_KEYS}, where="pose_transfer variant")


def initial_model(arch: Architecture, seed: int) -> PoseTransferNet:
    """The network a run with `seed` starts from, built on the CPU with torch's generator seeded
    with derive_seed(seed, "pose_transfer", "init"); the caller's torch RNG state is kept."""
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed, STAGE, "init")
        return PoseTransferNet(arch)


def to_points(vertices: np.ndarray, device: torch.device) -> torch.Tensor:
    """(B, N, 3) array -> (B, 3, N) float32 tensor, the layout the network reads."""
    return torch.from_numpy(np.ascontiguousarray(vertices, dtype=np.float32)).transpose(1, 2).to(device)


class TrainingMeshes:
    """The training identities x poses, each mesh checked when first read (MeshStore)."""

    def __init__(self, store: MeshStore, identities: list[int], poses: list[int]):
        if not identities or not poses:
            raise ValueError("training needs at least one identity and one pose")
        self.store, self.identities, self.poses = store, list(identities), list(poses)
        for i in self.identities:  # every pairing is drawn: all must exist (one clear error)
            for p in self.poses:
                mesh_path(store.root, i, p)
        self.vertices(self.identities[0], self.poses[0])  # sets store.faces and the count

    def vertices(self, identity: int, pose: int) -> np.ndarray:
        return bbox_centred(self.store.identity_pose(identity, pose))

    @property
    def n_vertices(self) -> int:
        return int(self.store.n_vertices)


def draw_batch(data: TrainingMeshes, *, seed: int, step: int, batch_size: int,
               part: slice = slice(None)) -> dict[str, np.ndarray]:
    """Step `step`'s batch: identity, pose, target (B, N, 3) float64 (bounding-box centred),
    faces (B, F, 3) int64 in each sample's identity order. A pure function of (seed, step, data).

    `part` keeps only those samples of the batch (a process's `Trainer.shard`); every sample's
    draws are made all the same, so the kept samples are those of the whole batch.
    """
    n_poses = len(data.poses)
    chosen = epoch_walk(len(data.identities) * n_poses, batch_size, step, seed, STAGE, "identity")
    rng = step_rng(seed, step, STAGE, "pairs")
    kept = range(len(chosen))[part]
    n = data.n_vertices
    out = {"identity": [], "pose": [], "target": [], "faces": []}
    for sample, index in enumerate(chosen):
        i, q = data.identities[index // n_poses], data.poses[index % n_poses]
        k = data.identities[int(rng.integers(len(data.identities)))]
        p = data.poses[int(rng.integers(n_poses))]
        order, pose_order = rng.permutation(n), rng.permutation(n)
        if sample not in kept:
            continue
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)  # where each original vertex went
        out["identity"].append(data.vertices(i, q)[order])
        out["target"].append(data.vertices(i, p)[order])
        out["pose"].append(data.vertices(k, p)[pose_order])
        out["faces"].append(position[data.store.faces])
    return {key: np.stack(value) for key, value in out.items()}


def pose_permutation(seed: int, list_name: str, index: int, n: int) -> np.ndarray:
    """The fixed random vertex order of the pose mesh of triple `index` of a list (evaluation)."""
    return derive_rng(seed, STAGE, "eval", list_name, index).permutation(n)


def triple_arrays(store: MeshStore, triples: list[Triple], seed: int,
                  list_name: str) -> dict[str, np.ndarray]:
    """identity, pose (permuted, `pose_permutation`), ground truth (T, N, 3) float32, each as
    stored; the pose mesh also in file order (`pose_file_order`) for the pose baseline."""
    identity = np.stack([store.vertices(store.root / t.identity) for t in triples])
    pose = np.stack([store.vertices(store.root / t.pose) for t in triples])
    target = np.stack([store.vertices(store.root / t.ground_truth) for t in triples])
    orders = np.stack([pose_permutation(seed, list_name, j, pose.shape[1]) for j in range(len(triples))])
    permuted = np.take_along_axis(pose, orders[:, :, None], axis=1)
    return {"identity": identity, "pose": permuted, "pose_file_order": pose,
            "ground_truth": target, "pose_order": orders}


def train_step(net: PoseTransferNet, net_train: torch.nn.Module, optimizer: torch.optim.Optimizer,
               batch: dict[str, torch.Tensor], accel: Acceleration, edge_weight: float,
               edge_form: str) -> dict[str, torch.Tensor]:
    """One Adam step on a `draw_batch` batch on the device; the losses, detached.

    `net_train` is what the trainer's `wrap(net)` returned (DDP, compiled or `net` itself); the
    gates of batch-instance norm are clamped on `net` after the step, on every process alike.
    The losses compare with the float64 targets, as the step has always done.
    """
    net_train.train()
    identity = batch["identity"]
    with accel.autocast():
        pred = net_train(batch["pose"].float().transpose(1, 2), identity.float().transpose(1, 2))
        with accel.full_precision():
            terms = pose_transfer_loss(pred.float(), batch["target"], identity, batch["faces"],
                                       edge_weight, edge_form)
    optimizer.zero_grad(set_to_none=True)
    accel.backward(terms["total"])
    accel.step(optimizer)
    net.clamp_gates()
    return {name: value.detach() for name, value in terms.items()}


@torch.no_grad()
def predict(net: PoseTransferNet, identity: np.ndarray, pose: np.ndarray, device: torch.device,
            chunk: int = 8) -> np.ndarray:
    """The identities (T, N, 3) in the poses of `pose` (T, Np, 3), each centred on its bounding
    box first: (T, N, 3) float32 in the identities' vertex order (eval mode)."""
    net.eval()
    out = []
    for start in range(0, len(identity), chunk):
        ids = to_points(bbox_centred(identity[start:start + chunk]), device)
        poses = to_points(bbox_centred(pose[start:start + chunk]), device)
        out.append(net(poses, ids).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def train_pose_transfer(*, meshes: str, val_list: str, out: str, losses_csv: str,
                        checkpoint_dir: str, variant: str, settings: dict, train_identities: list[int],
                        train_poses: list[int], max_tilt_deg: float | None, seed: int,
                        device: str, training: dict, fast_path: dict | None = None,
                        rule: str | None = None) -> dict:
    """Train one variant on the training identities x poses under `meshes`, validate on the
    triples of `val_list` (PMD), export the best checkpoint to `out` and the history to
    `losses_csv`. Returns the export's `extra`.

    fast_path: the config's `fast_path` section (`shapepose.training.fast`); rule: the Snakemake
    rule, named in an out-of-memory error."""
    device = pick_device(device)
    arch = architecture(settings)
    store = MeshStore(meshes, max_tilt_deg=max_tilt_deg)
    data = TrainingMeshes(store, train_identities, train_poses)
    val_triples = read_triples(val_list, meshes)[: training["val_pairs"]]
    val = triple_arrays(store, val_triples, seed, "val")
    log.info("pose transfer %s: %d identities x %d poses of %d vertices, %d validation triples, "
             "device %s", variant, len(data.identities), len(data.poses), data.n_vertices,
             len(val_triples), device)
    net = initial_model(arch, seed).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=training["lr"])
    edge_weight, edge_form = float(settings["edge_weight"]), str(settings["edge_loss"])
    fingerprint = {"variant": variant, "architecture": asdict(arch), "edge_weight": edge_weight,
                   "edge_loss": edge_form,
                   "training": training, "train_identities": data.identities,
                   "train_poses": data.poses, "max_tilt_deg": max_tilt_deg,
                   "data": data_fingerprint([meshes, val_list])}
    batch_size = training["batch_size"]
    trainer = Trainer(checkpoint_dir, fingerprint=fingerprint, modules={"model": net},
                      optimizers={"adam": optimizer}, seed=seed, stage=STAGE, device=device,
                      config=TrainConfig.from_section(training, best_metric="val_pmd", best_mode="min"),
                      fast_path=fast_path, precisions=PRECISIONS,
                      batch_size=("pose_transfer.training.batch_size", batch_size), rule=rule)
    net_train = trainer.wrap(net)  # 1x1 Conv1d only: nothing for channels-last
    part = trainer.shard(batch_size)

    def make_batch(step: int) -> dict[str, np.ndarray]:
        return draw_batch(data, seed=seed, step=step, batch_size=batch_size, part=part)

    def step_fn(step: int, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return train_step(net, net_train, optimizer, batch, trainer.accel, edge_weight, edge_form)

    def validate_fn() -> dict[str, float]:
        pred = predict(net, val["identity"], val["pose"], device)
        return {"val_pmd": float(pmd(pred, val["ground_truth"]).mean())}

    trainer.fit(step_fn, validate_fn, batches=make_batch)
    extra = {"variant": variant, "architecture": asdict(arch), "edge_weight": edge_weight,
             "edge_loss": edge_form,
             "n_vertices": data.n_vertices, "steps": training["steps"],
             "batch_size": training["batch_size"], "lr": training["lr"],
             "n_train_identities": len(data.identities), "n_train_poses": len(data.poses)}
    trainer.export(out, which="best", extra=extra)
    trainer.write_losses(losses_csv)
    return extra


def load_model(exported: dict, device: torch.device, untrained: bool = False) -> PoseTransferNet:
    """The network of a file written by `train_pose_transfer`, in eval mode on `device`;
    untrained=True: the same architecture at its step-0 weights, rebuilt from the recorded seed."""
    meta = exported["meta"]
    arch = Architecture(**meta["extra"]["architecture"])
    net = initial_model(arch, int(meta["seed"])) if untrained else PoseTransferNet(arch)
    if not untrained:
        net.load_state_dict(exported["model"])
    return net.to(device).eval()
