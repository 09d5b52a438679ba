"""Training Neural Parts for one number of primitives with the shared trainer (resume, best by val IoU).

The batch of a step (`draw_batch`: frames, their stored rows, the sphere points) is drawn on the
host as a pure function of (seed, step); `train_step` is the step itself, which the benchmark
(benchmarks/trainers/neural_parts.py) runs too.

Several processes (the rule's `gpu`) each take their slice of a step's frames after the whole
global batch is drawn, and every loss is a mean over frames or points, so the averaged gradients
are one process's, with one exception: the ResNet-18's batch-norm layers (unless
`freeze_batchnorm`). On CUDA they become SyncBatchNorm (`Trainer.wrap`), normalising over the
global batch as one process does; on the CPU (no SyncBatchNorm in PyTorch) each process
normalises its own frames, and the running statistics kept are rank 0's.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import torch

from shapepose.config import section
from shapepose.errors import InputError
from shapepose.neural_parts.data import (FrameCache, FrameRef, SequenceFiles, draw_batch,
                                         frame_tensors, mean_surface_point, split_frames)
from shapepose.neural_parts.losses import LossConfig, neural_parts_losses
from shapepose.neural_parts.model import NeuralParts, union_implicit
from shapepose.neural_parts.metrics import weighted_iou
from shapepose.training import Trainer, TrainConfig, pick_device, seed_everything
from shapepose.training.fast import Acceleration
from shapepose.training.fingerprint import data_fingerprint

log = logging.getLogger(__name__)

STAGE = "neural_parts"  # the first label of every random stream of this stage
# What the network may train in besides fp32: bf16, for the ResNet-18 image encoder only. The
# invertible network, its implicit function, the normal loss's gradient of it and the Chamfer
# distances (|a|^2 + |b|^2 - 2 a.b, a difference of nearly equal numbers) stay fp32
# (`NeuralParts.forward`, `train_step`). Not fp16: the occupancy loss's logits are -G / tau, so
# a primitive thrown far off early in training makes losses of 1e9 (the tests' tiny run: 2e9
# over its first 2 steps), whose gradients overflow fp16. fp32 and bf16 (fp32's range) recover
# within a few steps; in fp16 the gradient scaler skipped 9 of that run's first 10 steps and its
# loss stayed at 5e9.
PRECISIONS = ("bf16",)


def build_model(n_primitives: int, model: dict) -> NeuralParts:
    """The network from the config's `neural_parts.model` section (image_size is the data's)."""
    return NeuralParts(
        n_primitives, feature_dim=model["feature_dim"], embedding_dim=model["embedding_dim"],
        hidden=model["hidden"], radius=model["radius"], pretrained=model["pretrained"],
        freeze_batchnorm=model["freeze_batchnorm"])


def initial_model(n_primitives: int, model: dict, seed: int) -> NeuralParts:
    """The network a run with `seed` starts from: `build_model` on the CPU with torch's generator
    seeded with derive_seed(seed, "neural_parts", "init"), the caller's torch RNG state left as it
    was. Training sets `inn.origin` (the training shapes' mean point) afterwards."""
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed, STAGE, "init")  # torch's generator gets derive_seed(seed, STAGE, "init")
        return build_model(n_primitives, model)


def sequence_files(sequences: list[str], surface: list[str], volume: list[str],
                   renders: list[str]) -> list[SequenceFiles]:
    if not len(sequences) == len(surface) == len(volume) == len(renders):
        raise ValueError("one surface file, volume file and render directory per sequence")
    return [SequenceFiles(*row) for row in zip(sequences, surface, volume, renders)]


def validation_iou(model: NeuralParts, frames: list[FrameRef], cache: FrameCache,
                   device: torch.device) -> float:
    """Mean weighted IoU over `frames`, every stored volume point of each (no grad by the caller)."""
    ious = []
    for ref in frames:
        batch = frame_tensors(cache(ref), device)
        G = union_implicit(model.implicit(model.conditions(batch["images"]), batch["volume_points"]))
        ious.append(weighted_iou((G[0] <= 0).cpu().numpy(), batch["inside"][0].cpu().numpy(),
                                 batch["weights"][0].cpu().numpy()))
    return float(np.mean(ious))


def train_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer, accel: Acceleration,
               batch: dict[str, torch.Tensor], sphere: torch.Tensor,
               config: LossConfig) -> dict[str, torch.Tensor]:
    """One optimisation step on one batch (`draw_batch`'s tensors and sphere, on the device): the
    network's forward (the encoder in the run's precision, the rest fp32), the losses in fp32,
    the backward pass and the Adam step. `net` is what the step trains through (the trainer's
    `wrap` of the network). Returns the loss terms as tensors on the device."""
    surface = batch["surface_points"].detach().requires_grad_(True)
    with accel.autocast():
        out = net(accel.images(batch["images"]), surface, batch["volume_points"], sphere)
        with accel.full_precision():
            terms = neural_parts_losses(out, batch, surface, config)
    optimizer.zero_grad(set_to_none=True)
    accel.backward(terms["total"])
    accel.step(optimizer)
    return {name: value.detach() for name, value in terms.items()}


def evenly_spaced(frames: list, limit: int) -> list:
    if len(frames) <= limit:
        return list(frames)
    return [frames[i] for i in np.linspace(0, len(frames) - 1, limit).round().astype(int)]


def train_neural_parts(*, sequences: list[str], surface: list[str], volume: list[str],
                       renders: list[str], out: str, losses_csv: str, checkpoint_dir: str,
                       n_primitives: int, seed: int, device: str, split: dict, model: dict,
                       losses: dict, training: dict, fast_path: dict | None = None,
                       rule: str | None = None) -> dict:
    """Train on the train split of `sequences` (the test sequences must not be among them),
    export the best checkpoint by validation IoU to `out` and the loss history to `losses_csv`.
    Returns the export's `extra`. `fast_path`: the config's fast_path section (None: none);
    `rule`: the Snakemake rule, named when the GPU runs out of memory."""
    device = pick_device(device)
    files = sequence_files(sequences, surface, volume, renders)
    frames = split_frames(files, split["test_sequences"], split["val_stride"])
    if frames["test"]:
        raise ValueError("test sequences must not be passed to training")
    if not frames["train"]:
        raise InputError(surface[0], f"no training frames: every frame went to validation "
                                     f"(val_stride {split['val_stride']})")
    cache = FrameCache(model["image_size"], training["cache_frames"])
    val_frames = evenly_spaced(frames["val"], training["val_frames"])
    log.info("Neural Parts P%d: %d train, %d val frames (%d used to validate), device %s",
             n_primitives, len(frames["train"]), len(frames["val"]), len(val_frames), device)

    net = initial_model(n_primitives, model, seed)  # the initial weights follow the seed
    net.inn.origin.copy_(torch.from_numpy(mean_surface_point(frames["train"], cache)))
    net.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=training["lr"])
    loss_config = section(LossConfig, losses, where="neural_parts.losses")
    fingerprint = {"n_primitives": n_primitives, "model": model, "losses": asdict(loss_config),
                   "training": training, "split": split,
                   "data": data_fingerprint(surface + volume + renders)}
    batch_size = int(training["batch_size"])
    trainer = Trainer(
        checkpoint_dir, fingerprint=fingerprint, modules={"model": net},
        optimizers={"adam": optimizer}, seed=seed, stage=STAGE, device=device,
        config=TrainConfig.from_section(training, best_metric="val_iou", best_mode="max",
                                        validate=bool(val_frames)),
        fast_path=fast_path, precisions=PRECISIONS,
        batch_size=("neural_parts.training.batch_size", batch_size), rule=rule)
    if trainer.accel.compile:
        log.warning("fast_path.compile is ignored for Neural Parts: its normal loss needs a "
                    "double backward, which torch.compile does not support")
    # torch.compile (AOTAutograd) cannot differentiate a compiled graph twice, and the normal
    # loss differentiates the network's gradient
    net_train = trainer.wrap(net, convolutional=True, compile=False)
    part = trainer.shard(batch_size)
    radius = net.radius

    def make_batch(step: int) -> dict:
        """This process's frames of step `step`, on the host, after the global batch's draws."""
        batch, sphere = draw_batch(
            frames["train"], cache, seed=seed, stage=STAGE, step=step, batch_size=batch_size,
            n_surface=training["surface_points"], n_volume=training["volume_points"],
            n_sphere=training["sphere_points"], radius=radius, part=part)
        return {"batch": batch, "sphere": sphere}

    def step_fn(step: int, batch: dict) -> dict[str, torch.Tensor]:
        return train_step(net_train, optimizer, trainer.accel, batch["batch"], batch["sphere"],
                          loss_config)

    def validate_fn() -> dict[str, float]:
        return {"val_iou": validation_iou(net, val_frames, cache, device)}

    trainer.fit(step_fn, validate_fn if val_frames else None, batches=make_batch)
    extra = {"model": dict(model, n_primitives=n_primitives), "n_train_frames": len(frames["train"]),
             "n_val_frames": len(frames["val"]), "steps": training["steps"],
             "batch_size": training["batch_size"]}
    trainer.export(out, which="best", extra=extra)
    trainer.write_losses(losses_csv)
    return extra


def load_model(exported: dict, device: torch.device, untrained: bool = False) -> NeuralParts:
    """The network of a file written by `train_neural_parts`, in eval mode on `device`.

    untrained=True gives the same architecture at the weights its training started from (step 0),
    rebuilt by `initial_model` from the seed the file records, with the file's `inn.origin` (set
    from the training data before the first step; a buffer no step changes): the "untrained" row
    of the table. With `model.pretrained` set that needs the pretrained file at the recorded path.
    KeyError when the file lacks the model's settings or the seed.
    """
    meta = exported["meta"]
    args = dict(meta["extra"]["model"])
    n_primitives = args.pop("n_primitives")
    if untrained:
        net = initial_model(n_primitives, args, int(meta["seed"]))
        net.inn.origin.copy_(exported["model"]["inn.origin"])
    else:
        net = build_model(n_primitives, dict(args, pretrained=None))  # the file holds every weight
        net.load_state_dict(exported["model"])
    return net.to(device).eval()
