"""Training one pose-transfer variant with the shared trainer (resume, best by validation PMD).

A training sample, as the authors' loader draws it: identity mesh (i, q) and pose mesh (k, p)
from the training identities and poses, ground truth (i, p); every mesh centred on its bounding
box. The identity meshes walk the training meshes in a fresh order each epoch
(`epoch_walk(..., "pose_transfer", "identity")`); the pose mesh and two vertex permutations per
sample come from the step's stream (`step_rng(seed, step, "pose_transfer", "pairs")`): identity and
ground truth share one permutation and the pose mesh gets another, because the claim under test is
invariance to vertex order. So the draws differ between epochs and repeat on a rerun or a resume.
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
from shapepose.training.fingerprint import data_fingerprint

log = logging.getLogger(__name__)

STAGE = "pose_transfer"  # the first label of every random stream of this stage
ARCH_KEYS = ("width", "pose_pooling", "normalization", "first_block_normalized")


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


def draw_batch(data: TrainingMeshes, *, seed: int, step: int, batch_size: int) -> dict[str, np.ndarray]:
    """Step `step`'s batch: identity, pose, target (B, N, 3) float32, faces (B, F, 3) int64 in
    each sample's identity order. A pure function of (seed, step, data)."""
    n_poses = len(data.poses)
    chosen = epoch_walk(len(data.identities) * n_poses, batch_size, step, seed, STAGE, "identity")
    rng = step_rng(seed, step, STAGE, "pairs")
    n = data.n_vertices
    out = {"identity": [], "pose": [], "target": [], "faces": []}
    for index in chosen:
        i, q = data.identities[index // n_poses], data.poses[index % n_poses]
        k = data.identities[int(rng.integers(len(data.identities)))]
        p = data.poses[int(rng.integers(n_poses))]
        order, pose_order = rng.permutation(n), rng.permutation(n)
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
                        device: str, training: dict) -> dict:
    """Train one variant on the training identities x poses under `meshes`, validate on the
    triples of `val_list` (PMD), export the best checkpoint to `out` and the history to
    `losses_csv`. Returns the export's `extra`."""
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
    trainer = Trainer(checkpoint_dir, fingerprint=fingerprint, modules={"model": net},
                      optimizers={"adam": optimizer}, seed=seed, stage=STAGE, device=device,
                      config=TrainConfig.from_section(training, best_metric="val_pmd", best_mode="min"))

    def step_fn(step: int) -> dict[str, float]:
        net.train()
        batch = draw_batch(data, seed=seed, step=step, batch_size=training["batch_size"])
        pred = net(to_points(batch["pose"], device), to_points(batch["identity"], device))
        terms = pose_transfer_loss(pred, torch.from_numpy(batch["target"]).to(device),
                                   torch.from_numpy(batch["identity"]).to(device),
                                   torch.from_numpy(batch["faces"]).to(device), edge_weight,
                                   edge_form)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        net.clamp_gates()
        return {name: float(value.detach()) for name, value in terms.items()}

    def validate_fn() -> dict[str, float]:
        pred = predict(net, val["identity"], val["pose"], device)
        return {"val_pmd": float(pmd(pred, val["ground_truth"]).mean())}

    trainer.fit(step_fn, validate_fn)
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
