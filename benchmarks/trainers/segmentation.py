"""The demo Mask R-CNN segmenter (seed 002 chapter 3): one step of
`shapepose.segmentation.train.train_step`.

Only the demo size: the real configuration segments with COCO weights and trains nothing
(`common.REAL_CONFIG["segmentation"]` is None), so "real" has no case. The model and its AdamW are
built as `train_segmenter` builds them from config.yaml's `segmentation.train`; a sample is one
photo. The batch is synthetic, the shape of the demo's segmenter photos (`demo_cars.photos`:
long side 320-640 px, aspect 1.2-1.8; here 480 x 320): a noisy background with one bright
car-sized box (its mask and box, COCO's car) per photo, and a second, smaller one in every other
photo. The model resizes photos to `arch.min_size` / `max_size` itself.
"""

from __future__ import annotations

import functools

import torch

from benchmarks.trainers.common import Case, acceleration, one_process_wrap
from shapepose.images.instances import CAR
from shapepose.segmentation.model import build_demo_model
from shapepose.segmentation.train import PRECISIONS, STAGE, train_step
from shapepose.training import seed_everything
from shapepose.training.fast import FastPath

WIDTH, HEIGHT = 480, 320  # a demo segmenter photo (long side 320-640, aspect 1.2-1.8)


def synthetic_photos(batch: int, generator: torch.Generator) -> tuple[list, list]:
    """`draw_batch`'s images ((3, H, W) in [0, 1]) and targets (boxes, labels, uint8 masks)."""
    images, targets = [], []
    for b in range(batch):
        image = 0.35 * torch.rand(3, HEIGHT, WIDTH, generator=generator)
        boxes, masks = [], []
        sizes = [(0.6, 0.5), (0.25, 0.2)][: 1 + b % 2]  # width, height as fractions of the photo
        for w, h in sizes:
            bw, bh = int(w * WIDTH), int(h * HEIGHT)
            x0 = int(torch.randint(0, WIDTH - bw, (), generator=generator))
            y0 = int(torch.randint(0, HEIGHT - bh, (), generator=generator))
            mask = torch.zeros(HEIGHT, WIDTH, dtype=torch.uint8)
            mask[y0:y0 + bh, x0:x0 + bw] = 1
            image[:, mask.bool()] = 0.7 + 0.3 * torch.rand(3, 1, generator=generator)
            boxes.append([x0, y0, x0 + bw, y0 + bh])
            masks.append(mask)
        images.append(image)
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32),
                        "labels": torch.full((len(boxes),), CAR, dtype=torch.int64),
                        "masks": torch.stack(masks)})
    return images, targets


def build(device: torch.device, fast_path: FastPath, *, training: dict, seed: int):
    """The model and AdamW as `train_segmenter` builds them; step(i)."""
    accel = acceleration(fast_path, device, PRECISIONS)
    seed_everything(seed, STAGE, "init")
    model = build_demo_model(training["arch"]).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=training["lr"], weight_decay=training["weight_decay"])
    model_train = one_process_wrap(accel)(model, convolutional=True)
    images, targets = synthetic_photos(int(training["batch_size"]),
                                       torch.Generator().manual_seed(0))
    images = [image.to(device) for image in images]
    targets = [{k: v.to(device) for k, v in target.items()} for target in targets]

    def step(_i: int) -> None:
        train_step(model_train, optimizer, params, images, targets, accel)
        accel.end_step()

    return step


def cases(config: dict, size: str) -> list[Case]:
    if size == "real":  # COCO weights, no training (common.REAL_CONFIG)
        return []
    training = config["segmentation"]["train"]
    arch = training["arch"]
    batch = int(training["batch_size"])
    return [Case("segmentation", size, "images", batch,
                 functools.partial(build, training=training, seed=int(config["seed"])),
                 f"{arch['backbone']} trunk, FPN {arch['fpn_channels']}, heads "
                 f"{arch['head_channels']}; {WIDTH} x {HEIGHT} photos resized to "
                 f"{arch['min_size']}-{arch['max_size']} px")]
