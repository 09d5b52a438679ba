"""Training the demo Mask R-CNN from scratch on photos with known masks (`train_segmenter`).

The training set is a directory with `instances.json` (the shared instances format, `image` keys
relative to the directory or to its `images/` folder) and the photos. A seeded slice of it is held
out; the best checkpoint is the one with the highest panoptic quality (mask IoU with misses and
false detections counted) on that slice. Batches and augmentation are a pure function of
(seed, step), so a resumed run sees exactly the batches the uninterrupted one would; they are made
on the host (`draw_batch`: lists of images and targets, which DataLoader workers may make).

Precision (PRECISIONS): the model runs under the run's autocast, which computes its losses
(cross-entropy, smooth L1, BCE with logits) in fp32, as does torchvision's RoI align; their sum
is taken in fp32.

Several processes (`shapepose.training.distributed`): each rank draws the whole global batch's
photos and augmentations and keeps its `Trainer.shard`; the trunk's GroupNorm is per image. What
is not one process's run: the RPN's and RoI heads' box samplers draw from each rank's own global
RNG, and their losses are means over each rank's sampled anchors and boxes (so the mean over
ranks weighs them a little differently from one mean over the whole batch); each rank pads its
images to the largest of its own slice rather than of the batch.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np
import torch

from shapepose.errors import InputError
from shapepose.images.instances import ImageInstances, mask_box, read_instances
from shapepose.images.rgba import read_photo
from shapepose.images.scoring import score_images
from shapepose.seeding import derive_rng
from shapepose.segmentation.backends import TorchvisionSegmenter
from shapepose.segmentation.model import build_demo_model
from shapepose.training import TrainConfig, Trainer, count_parameters, pick_device, seed_everything
from shapepose.training.batches import epoch_walk, step_rng
from shapepose.training.fast import Acceleration
from shapepose.training.fingerprint import data_fingerprint

log = logging.getLogger("shapepose.segmentation")

STAGE = "segmentation"  # the first label of every random stream of this stage

GRADIENT_CLIP_NORM = 5.0  # seed 002 appendix C
# Low precisions the model allows: torchvision's Mask R-CNN trains under autocast (its reference
# scripts' --amp); fp16 with the gradient scaler.
PRECISIONS = ("bf16", "fp16")


@dataclasses.dataclass
class TrainingPhoto:
    """One photo with its objects as torchvision's Mask R-CNN wants them."""

    key: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2 (the masks' tight boxes)
    labels: np.ndarray  # (N,) int64 COCO category ids
    masks: np.ndarray  # (N, H, W) uint8
    truth: ImageInstances  # the file's entry, for validation scoring


def _photo_path(root: Path, key: str) -> Path:
    for candidate in (root / key, root / "images" / key):
        if candidate.is_file():
            return candidate
    raise InputError(root / "instances.json", f"photo {key!r} is in neither {root} nor "
                                              f"{root / 'images'}", key=key)


def load_training_set(root: str | Path) -> list[TrainingPhoto]:
    """Every photo of the training set with its non-empty masks, sorted by key."""
    root = Path(root)
    index = root / "instances.json"
    if not index.is_file():
        raise InputError(index, "segmenter training set has no instances.json")
    entries, _ = read_instances(index)
    if not entries:
        raise InputError(index, "segmenter training set lists no photos")
    photos = []
    for entry in sorted(entries, key=lambda e: e.image):
        path = _photo_path(root, entry.image)
        image = read_photo(path)
        if image.shape[:2] != (entry.height, entry.width):
            raise InputError(index, f"photo is {image.shape[1]}x{image.shape[0]}, the file says "
                                    f"{entry.width}x{entry.height}", key=entry.image)
        masks, boxes, labels = [], [], []
        for inst in entry.instances:
            mask = inst.mask
            if mask.shape != image.shape[:2]:
                raise InputError(index, f"mask of size {mask.shape} on a photo of "
                                        f"{image.shape[:2]}", key=entry.image)
            x, y, w, h = mask_box(mask)
            if w == 0:  # a wholly hidden object teaches nothing and breaks the box loss
                continue
            masks.append(mask)
            boxes.append((x, y, x + w, y + h))
            labels.append(inst.category_id)
        height, width = image.shape[:2]
        photos.append(TrainingPhoto(
            entry.image, image, np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(labels, np.int64),
            np.asarray(masks, np.uint8).reshape(-1, height, width), entry))
    return photos


def training_set_fingerprint(root: str | Path) -> str:
    """The training fingerprint's data: instances.json and every photo it names."""
    root = Path(root)
    entries, _ = read_instances(root / "instances.json")
    photos = [_photo_path(root, entry.image) for entry in entries]
    return data_fingerprint([root / "instances.json", *photos], root=root)


def split_holdout(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, held out): a seeded `fraction` of n (at least one when n >= 2) held out."""
    n_val = min(max(int(round(n * fraction)), 1 if n >= 2 and fraction > 0 else 0), n - 1)
    order = derive_rng(seed, STAGE, "holdout").permutation(n)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def augmented_sample(photo: TrainingPhoto, rng: np.random.Generator,
                     jitter: float) -> tuple[torch.Tensor, dict]:
    """(3, H, W) float image in [0, 1] and its target, flipped and colour-jittered by `rng`; on
    the host."""
    image = photo.image.astype(np.float32) / 255.0
    masks, boxes = photo.masks, photo.boxes.copy()
    if rng.random() < 0.5:  # horizontal flip: cars face both ways in photos
        width = image.shape[1]
        image, masks = image[:, ::-1], masks[:, :, ::-1]
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    if jitter > 0:  # brightness and contrast, as lighting varies between photos
        gain, offset = rng.uniform(1 - jitter, 1 + jitter), rng.uniform(-jitter, jitter) / 2
        image = np.clip((image - 0.5) * gain + 0.5 + offset, 0.0, 1.0)
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    target = {"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(photo.labels),
              "masks": torch.from_numpy(np.ascontiguousarray(masks))}
    return tensor, target


def draw_batch(train: list[TrainingPhoto], *, seed: int, step: int, batch_size: int,
               jitter: float, part: slice = slice(None)) -> dict[str, list]:
    """Step `step`'s images and targets (host lists, `augmented_sample`), a pure function of
    (seed, step); `part` keeps those samples (a process's shard) after every sample's draws."""
    chosen = epoch_walk(len(train), batch_size, step, seed, STAGE, "photos")
    rng = step_rng(seed, step, STAGE, "augment")
    images, targets = zip(*(augmented_sample(train[k], rng, jitter) for k in chosen))
    return {"images": list(images)[part], "targets": list(targets)[part]}


def train_step(model_train: torch.nn.Module, optimizer: torch.optim.Optimizer,
               params: list[torch.nn.Parameter], images: list[torch.Tensor], targets: list[dict],
               accel: Acceleration) -> dict[str, torch.Tensor]:
    """One AdamW step with the gradient norm clipped to GRADIENT_CLIP_NORM; the losses, detached
    (their sum as "loss")."""
    model_train.train()  # the validation segmenter leaves the model in eval mode
    with accel.autocast():
        losses = model_train(images, targets)
        with accel.full_precision():
            total = sum(loss.float() for loss in losses.values())
    optimizer.zero_grad(set_to_none=True)
    accel.backward(total)
    accel.step(optimizer, clip=(params, GRADIENT_CLIP_NORM))
    return {"loss": total.detach(), **{k: v.detach() for k, v in losses.items()}}


def _schedule(warmup: int, total: int, floor: float = 0.05):
    """Linear warm-up, then cosine decay to `floor` of the base rate (from-scratch training
    diverges without the warm-up)."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return factor


def train_segmenter(*, train_set: str | Path, out: str | Path, losses_csv: str | Path,
                    checkpoint_dir: str | Path, training: dict, seed: int, device: str,
                    fast_path: dict | None = None, rule: str | None = None) -> dict:
    """Train the demo model with the shared trainer; export the best state to `out` and the loss
    history to `losses_csv`.

    training: config segmentation.train (arch, the optimizer's settings, holdout, jitter and the
    trainer's loop settings); fast_path: the config's `fast_path` section
    (`shapepose.training.fast`); rule: the Snakemake rule, named in an out-of-memory error.
    Returns the exported state's validation metrics.
    """
    device = pick_device(device)
    arch, steps, batch_size = training["arch"], training["steps"], training["batch_size"]
    lr, weight_decay, warmup_steps = training["lr"], training["weight_decay"], training["warmup_steps"]
    jitter, holdout = training["jitter"], training["holdout"]
    photos = load_training_set(train_set)
    train_idx, val_idx = split_holdout(len(photos), holdout, seed)
    train = [photos[i] for i in train_idx]
    held_out = [photos[i] for i in val_idx]
    if not any(len(p.labels) for p in train):
        raise InputError(Path(train_set) / "instances.json", "no training photo has a non-empty mask")
    log.info("segmenter training set %s: %d photos for training, %d held out", train_set,
             len(train), len(held_out))

    seed_everything(seed, STAGE, "init")  # the initial weights too must follow from the seed
    model = build_demo_model(arch).to(device)
    log.info("demo Mask R-CNN %s: %.2f M parameters, device %s", arch,
             count_parameters(model) / 1e6, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(warmup_steps, steps))

    segmenter = TorchvisionSegmenter(model, device)

    def validate_fn() -> dict[str, float]:
        predicted = [ImageInstances(p.key, p.truth.width, p.truth.height,
                                    segmenter.predict(p.image)) for p in held_out]
        scores = score_images(predicted, [p.truth for p in held_out])
        return {"val_pq": scores["panoptic_quality"], "val_recall": scores["recall"],
                "val_precision": scores["precision"], "val_matched_iou": scores["matched_iou"]}

    validate = validate_fn if held_out else None
    fingerprint = {"arch": arch, "steps": steps, "batch_size": batch_size, "lr": lr,
                   "weight_decay": weight_decay, "warmup_steps": warmup_steps, "jitter": jitter,
                   "holdout": holdout, "data": training_set_fingerprint(train_set)}
    trainer = Trainer(
        checkpoint_dir, fingerprint=fingerprint, modules={"model": model},
        optimizers={"adamw": optimizer}, lr_schedulers={"lr": scheduler}, seed=seed,
        stage=STAGE, device=device,
        config=TrainConfig.from_section(training, best_metric="val_pq", best_mode="max",
                                        validate=bool(held_out)),
        fast_path=fast_path, precisions=PRECISIONS,
        batch_size=("segmentation.train.batch_size", batch_size), rule=rule)
    model_train = trainer.wrap(model, convolutional=True)
    part = trainer.shard(batch_size)

    def make_batch(step: int) -> dict[str, list]:
        return draw_batch(train, seed=seed, step=step, batch_size=batch_size, jitter=jitter,
                          part=part)

    def step_fn(step: int, batch: dict[str, list]) -> dict[str, torch.Tensor]:
        return train_step(model_train, optimizer, params, batch["images"], batch["targets"],
                          trainer.accel)

    result = trainer.fit(step_fn, validate, batches=make_batch)
    trainer.export(out, which="best", extra={
        "arch": dict(arch), "train_photos": [p.key for p in train],
        "held_out_photos": [p.key for p in held_out]})
    trainer.write_losses(losses_csv)
    metrics = result.best_metrics or result.last_metrics
    log.info("exported %s: held-out %s", out, metrics)
    return metrics
