"""Training the shape-and-pose model on one variant's views, on the shared trainer.

One step: `models_per_batch` training models, `views_per_model` random views of each (DPC: 4
models x 4 views = 16 images); every image goes through the network once; the losses of
`shapepose.shape_pose.losses` over the projections of `losses.pairing` (DPC's first view against
every view, or every pair); one Adam step, weight decay on the weights only.

Validation (every `validate_every` steps) runs the network as it is used at test time: for the
first `val_models` validation models and every pair of their views, the cloud of one view seen
from the STUDENT pose of the other, compared with that view's mask, at the final sigma and with
every point. Its mean (val_student_reprojection) picks the exported checkpoint; the ensemble's
min-over-candidates error (val_reprojection) is recorded beside it.

The batch of a step (`make_batch`: the models, their views and the point dropout's subsets) is
drawn on the host as a pure function of (seed, step); `train_step` is the step itself, which the
benchmark (benchmarks/trainers/shape_pose.py) runs too. Several processes (the rule's `gpu`)
each take their slice of the step's models after the whole global batch is drawn, so together
they see the models, views and point subsets one process sees; the losses are means over the
models, so the averaged gradients are one process's (up to the order of the sums).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from shapepose.config import section
from shapepose.errors import InputError
from shapepose.shape_pose.data import ViewSet, batch_choice
from shapepose.shape_pose.losses import (
    LossSettings,
    draw_point_subsets,
    linear_schedule,
    pair_losses,
    student_reprojection,
)
from shapepose.shape_pose.model import Architecture, ShapePoseNet, build_model
from shapepose.shape_pose.projection import Projector
from shapepose.training.batches import step_generator
from shapepose.training.device import pick_device
from shapepose.training.export import load_exported
from shapepose.training.fast import Acceleration
from shapepose.training.fingerprint import data_fingerprint
from shapepose.training.loop import TrainConfig, Trainer

log = logging.getLogger("shapepose.shape_pose")

STAGE = "shape_pose"  # the first label of every random stream of this stage
# What the network may train in besides fp32. Its encoder and shared MLP are plain convolutions,
# linear layers and leaky ReLUs (no normalisation, activations of order one), fine in bf16 and,
# with the gradient scaler, fp16. The rest stays fp32: the shape and pose branches
# (`ShapePoseNet.forward`: low-precision points and poses would sit on a lattice as coarse as the
# final Gaussian), and in `train_step` the projection (a scatter-add of many small trilinear
# weights, a Gaussian blur and sums of logs along each ray) and the losses (squared mask errors
# summed over the grid's pixels).
PRECISIONS = ("bf16", "fp16")


def make_projector(projection: dict) -> Projector:
    """The Projector of config shape_pose.projection ({grid, sigma, kernel_size}): a depth of
    `grid` cells, as DPC's default."""
    return Projector(int(projection["grid"]), kernel_size=int(projection["kernel_size"]))


def loss_settings(losses: dict, projection: dict) -> LossSettings:
    """Config shape_pose.losses with shape_pose.projection's sigma schedule."""
    return section(LossSettings, {**losses, "sigma": projection["sigma"]},
                   where="shape_pose.losses")


def make_optimizer(net: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with weight decay on the weights only (convolution kernels and linear matrices).

    DPC adds weight_decay * sum(w^2) / 2 over its 'kernel' and 'weights' variables to the loss
    (util/losses.py regularization_loss), biases excluded; its gradient weight_decay * w is what
    torch's Adam adds for the parameters of the decayed group.
    """
    weights = [p for p in net.parameters() if p.ndim >= 2]
    others = [p for p in net.parameters() if p.ndim < 2]
    return torch.optim.Adam([{"params": weights, "weight_decay": weight_decay},
                             {"params": others, "weight_decay": 0.0}], lr=lr)


def forward_views(net: torch.nn.Module, images: torch.Tensor,
                  accel: Acceleration | None = None) -> dict:
    """images (B, W, 3, S, S) -> the network's outputs reshaped to (B, W, ...); with `accel`, the
    images go in in the memory format of its prepared modules."""
    B, W = images.shape[:2]
    flat = images.flatten(0, 1)
    out = net(flat if accel is None else accel.images(flat))
    return {key: (None if value is None else value.view(B, W, *value.shape[1:]))
            for key, value in out.items()}


def train_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer, accel: Acceleration,
               batch: dict, projector: Projector, settings: LossSettings, sigma: float,
               keep: float) -> dict[str, torch.Tensor]:
    """One optimisation step on one batch on the device: the network's forward in the run's
    precision, the projections and losses in fp32, the backward pass and the Adam step.

    `net` is what the step trains through (the trainer's `wrap` of the network); `batch` holds
    images (B, W, 3, S, S), masks (B, W, G, G) and subsets, the point dropout's draws for these
    models (`draw_point_subsets`; None keeps every point). Returns the losses as tensors on the
    device (nothing waits for the device).
    """
    with accel.autocast():
        out = forward_views(net, batch["images"], accel)
        with accel.full_precision():
            out = {key: (None if value is None else value.float()) for key, value in out.items()}
            terms = pair_losses(out, batch["masks"].float(), projector, settings, sigma, keep,
                                subsets=batch["subsets"])
    optimizer.zero_grad(set_to_none=True)
    accel.backward(terms["total"])
    accel.step(optimizer)
    return {"total": terms["total"].detach(), "reprojection": terms["reprojection"].detach(),
            "student": terms["student"].detach()}


@torch.no_grad()
def validation_losses(net: ShapePoseNet, val: ViewSet, n_models: int, projector: Projector,
                      settings: LossSettings, device: torch.device) -> dict[str, float]:
    """Mean student (every view pair) and min-candidate (the training pairing) reprojection errors
    of n_models models."""
    was_training = net.training
    net.eval()
    student, ensemble = [], []
    try:
        for index in range(min(n_models, len(val))):
            batch = val.batch(np.array([index]), np.arange(val.n_views)[None])
            images, masks = batch["images"].to(device), batch["masks"].to(device)
            out = forward_views(net, images)
            sigma = settings.sigma[1]
            student.append(float(student_reprojection(out, masks, projector, sigma).mean()))
            ensemble.append(float(pair_losses(out, masks, projector, settings, sigma, 1.0)["reprojection"]))
    finally:
        net.train(was_training)
    return {"val_student_reprojection": float(np.mean(student)),
            "val_reprojection": float(np.mean(ensemble))}


def train_shape_pose(*, data: str, out: str, losses_csv: str, checkpoint_dir: str, model: dict,
                     projection: dict, losses: dict, training: dict, device: str, seed: int,
                     fast_path: dict | None = None, rule: str | None = None) -> dict:
    """The rule's work: train on `data` (a DPC-layout folder), export the best checkpoint.

    `fast_path`: the config's fast_path section (None: none); `rule`: the Snakemake rule, named
    when the GPU runs out of memory.
    """
    device = pick_device(device)
    arch = Architecture.from_config(dict(model))
    projector = make_projector(projection)
    settings = loss_settings(losses, projection)
    train = ViewSet(data, "train", arch.image_size, projector.grid)
    val = ViewSet(data, "val", arch.image_size, projector.grid)
    W = int(training["views_per_model"])
    if W < 2 or W > train.n_views:
        raise InputError(Path(data), f"views_per_model {W} must be between 2 and the {train.n_views} "
                                     f"views per model")
    steps, B = int(training["steps"]), int(training["models_per_batch"])
    n_val = len(val) if training["val_models"] is None else min(int(training["val_models"]), len(val))

    net = build_model(arch, seed).to(device)
    optimizer = make_optimizer(net, float(training["lr"]), float(training["weight_decay"]))
    files = [train.data.image_path(m, v) for m in train.models + val.models for v in range(train.n_views)]
    fingerprint = {"architecture": arch.to_dict(), "projection": projection, "losses": losses,
                   "training": training, "data": data_fingerprint(files, root=data)}
    trainer = Trainer(
        checkpoint_dir, fingerprint=fingerprint, modules={"net": net},
        optimizers={"adam": optimizer}, seed=seed, stage=STAGE, device=device,
        config=TrainConfig.from_section(training, best_metric="val_student_reprojection",
                                        best_mode="min"),
        fast_path=fast_path, precisions=PRECISIONS,
        batch_size=("shape_pose.training.models_per_batch", B), rule=rule)
    log.info("shape and pose: %d training models (%d views each), %d validation models; %d steps "
             "of %d models x %d views (%.1f epochs); %d points, %d pose candidates, grid %d; "
             "device %s", len(train), train.n_views, n_val, steps, B, W, steps * B / len(train),
             arch.points, arch.candidates, projector.grid, device)
    net_train = trainer.wrap(net, convolutional=True)
    part = trainer.shard(B)

    def make_batch(step: int) -> dict:
        """This process's models of step `step`, on the host, after the global batch's draws."""
        models, views = batch_choice(len(train), train.n_views, B, W, step, seed, STAGE)
        keep = linear_schedule(*settings.point_keep, step, steps)
        subsets = draw_point_subsets(B, W, arch.candidates, arch.points, settings.pairing, keep,
                                     step_generator(seed, step, STAGE))
        views_of = train.batch(models[part], views[part])
        return {"images": views_of["images"], "masks": views_of["masks"],
                "subsets": None if subsets is None else subsets[part]}

    def step_fn(step: int, batch: dict) -> dict:
        sigma = linear_schedule(*settings.sigma, step, steps)
        keep = linear_schedule(*settings.point_keep, step, steps)
        terms = train_step(net_train, optimizer, trainer.accel, batch, projector, settings,
                           sigma, keep)
        return {**terms, "sigma": sigma, "point_keep": keep}

    def validate_fn() -> dict[str, float]:
        return validation_losses(net, val, n_val, projector, settings, device)

    result = trainer.fit(step_fn, validate_fn, batches=make_batch)
    summary = {"n_train": len(train), "n_val": n_val, "epochs": steps * B / len(train),
               "best_step": result.best_step, "best_metrics": result.best_metrics,
               "resumed_from": result.resumed_from}
    extra = {"architecture": arch.to_dict(), "projection": dict(projection), "losses": dict(losses),
             "summary": json.loads(json.dumps(summary, default=str))}
    trainer.export(out, which="best", extra=extra)
    trainer.write_losses(losses_csv)
    return extra


def load_model(source: str | Path | dict, device: torch.device | str = "cpu",
               untrained: bool = False) -> ShapePoseNet:
    """The network of a file written by `train_shape_pose` (or its loaded dict), in eval mode.

    untrained=True gives the same architecture at its step-0 weights, rebuilt from the seed the
    file records: the "untrained" row of the tables.
    """
    exported = source if isinstance(source, dict) else load_exported(source)
    try:
        arch = Architecture.from_config(exported["meta"]["extra"]["architecture"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(source if not isinstance(source, dict) else "?",
                         f"not a shape-and-pose model file ({exc})") from None
    net = build_model(arch, int(exported["meta"]["seed"]))
    if not untrained:
        net.load_state_dict(exported["net"])
    return net.to(pick_device(device) if isinstance(device, str) else device).eval()


def load_projector(source: str | Path | dict) -> Projector:
    """The Projector a model file was trained with."""
    exported = source if isinstance(source, dict) else load_exported(source)
    return make_projector(exported["meta"]["extra"]["projection"])
