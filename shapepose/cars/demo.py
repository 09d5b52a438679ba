"""The demo car datasets: synthetic DPC-layout renders, Stanford-layout photos with ground truth,
and a separate labelled photo set for training the segmenter. Same config -> same bytes."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from shapepose.config import section
from shapepose.bodies import example_mesh
from shapepose.cars.photos import CLASS_NAMES, MIN_PIXELS, Photo, PhotoOptions, compose_photo
from shapepose.cars.scene import SceneRenderer
from shapepose.cars.synthetic import write_synthetic
from shapepose.images.instances import ImageInstances, Instance, mask_box, write_instances
from shapepose.images.stanford import write_class_names, write_devkit_annotations
from shapepose.io import atomic_dir
from shapepose.seeding import derive_rng

log = logging.getLogger(__name__)
N_PEOPLE = 4  # distinct demo bodies that the photos draw from


def _people(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [example_mesh(int(derive_rng(seed, "demo_cars", "person", k).integers(2**31)))
            for k in range(N_PEOPLE)]


def _draw_photo(seed: int, label: str, index: int, renderer: SceneRenderer, options: PhotoOptions,
                shape_ranges: dict, people: list) -> Photo:
    """One photo from its own random stream; redrawn until the main vehicle shows."""
    rng = derive_rng(seed, "demo_cars", label, index)
    while True:
        photo = compose_photo(rng, renderer, options, shape_ranges, people)
        if photo.objects[0].mask.sum() >= MIN_PIXELS:
            return photo


def _save_jpeg(path: Path, photo: Photo, quality: int, index: int) -> None:
    """JPEG at `quality`; half the grayscale photos as 1-channel files, half as equal RGB."""
    image = Image.fromarray(photo.image)
    if photo.grayscale and index % 2 == 0:
        image = image.convert("L")
    image.save(path, format="JPEG", quality=quality)


def _image_instances(relpath: str, photo: Photo) -> ImageInstances:
    height, width = photo.image.shape[:2]
    instances = [Instance.from_mask(o.mask, o.category_id, 1.0, attributes=o.attributes)
                 for o in photo.objects]
    return ImageInstances(relpath, width, height, instances)


def write_photos(root: Path, *, seed: int, n_train: int, n_test: int, jpeg_quality: int,
                 options: PhotoOptions, shape_ranges: dict, people: list) -> list[ImageInstances]:
    """The Stanford layout under `root` (empty directory); returns the ground-truth instances."""
    for folder in ("cars_train", "cars_test", "devkit"):
        (root / folder).mkdir()
    truth, annotations = [], {"train": [], "test": []}
    size = options.long_side[1]
    with SceneRenderer(size, size) as renderer:
        for split, count in (("train", n_train), ("test", n_test)):
            for k in tqdm(range(count), desc=f"photos {split}", unit="photo", file=sys.stderr):
                photo = _draw_photo(seed, f"photos_{split}", k, renderer, options, shape_ranges, people)
                fname = f"{k + 1:05d}.jpg"
                _save_jpeg(root / f"cars_{split}" / fname, photo, jpeg_quality, k)
                x, y, w, h = mask_box(photo.objects[0].mask)
                # devkit boxes are MATLAB pixels: 1-based, inclusive.
                annotations[split].append({"bbox_x1": int(x) + 1, "bbox_y1": int(y) + 1,
                                           "bbox_x2": int(x + w), "bbox_y2": int(y + h),
                                           "class": photo.class_id, "fname": fname})
                truth.append(_image_instances(f"cars_{split}/{fname}", photo))
    devkit = root / "devkit"
    write_class_names(devkit / "cars_meta.mat", CLASS_NAMES)
    write_devkit_annotations(devkit / "cars_train_annos.mat", annotations["train"])
    write_devkit_annotations(devkit / "cars_test_annos.mat", annotations["test"], with_class=False)
    write_devkit_annotations(devkit / "cars_test_annos_withlabels.mat", annotations["test"])
    return truth


def write_segmenter_set(root: Path, *, seed: int, count: int, jpeg_quality: int,
                        options: PhotoOptions, shape_ranges: dict, people: list) -> None:
    """`images/*.jpg` + `instances.json` (every labelled object) under `root` (empty directory)."""
    (root / "images").mkdir()
    entries = []
    size = options.long_side[1]
    with SceneRenderer(size, size) as renderer:
        for k in tqdm(range(count), desc="segmenter photos", unit="photo", file=sys.stderr):
            photo = _draw_photo(seed, "segmenter_train", k, renderer, options, shape_ranges, people)
            relpath = f"images/{k + 1:05d}.jpg"
            _save_jpeg(root / relpath, photo, jpeg_quality, k)
            entries.append(_image_instances(relpath, photo))
    write_instances(root / "instances.json", entries, {"source": "make_demo_cars", "seed": seed})


def photo_summary(truth: list[ImageInstances]) -> dict:
    """Counts of photos by kind, measured on the main vehicle's ground truth."""
    mains = [next(i for i in im.instances if i.attributes.get("main")) for im in truth]
    return {
        "photos": len(truth),
        "occluded": sum(m.attributes["occluded"] for m in mains),
        "cropped": sum(m.attributes["cropped"] for m in mains),
        "grayscale": sum(m.attributes["grayscale"] for m in mains),
        "small (sqrt box area < 128)": int(sum(np.sqrt(m.box_area) < 128 for m in mains)),
        "with people": sum(any(i.category_id == 1 for i in im.instances) for im in truth),
        "truck main": sum(m.category_id == 8 for m in mains),
        "several vehicles": sum(sum(i.category_id in (3, 8) for i in im.instances) > 1 for im in truth),
    }


def make_demo_cars(synthetic: str, photos: str, photos_truth: str, segmenter_train: str, *,
                   seed: int, synthetic_options: dict, photo_options: dict, shape: dict) -> None:
    """Write all four demo outputs (config `demo_cars`); each appears only once complete."""
    photo_options = dict(photo_options)
    counts = {k: photo_options.pop(k) for k in ("train", "test", "segmenter_train", "jpeg_quality")}
    options = section(PhotoOptions, photo_options, where="demo_cars.photos")
    people = _people(seed)
    with atomic_dir(synthetic) as tmp:
        summary = write_synthetic(Path(tmp), seed=seed, shape_ranges=shape, **synthetic_options)
    log.info("synthetic set: %s", summary)
    with atomic_dir(photos) as tmp:
        truth = write_photos(Path(tmp), seed=seed, n_train=counts["train"], n_test=counts["test"],
                             jpeg_quality=counts["jpeg_quality"], options=options, shape_ranges=shape,
                             people=people)
    write_instances(photos_truth, truth, {"source": "make_demo_cars", "seed": seed,
                                          "note": "ground truth for scoring only"})
    log.info("photos: %s", photo_summary(truth))
    with atomic_dir(segmenter_train) as tmp:
        write_segmenter_set(Path(tmp), seed=seed, count=counts["segmenter_train"],
                            jpeg_quality=counts["jpeg_quality"], options=options, shape_ranges=shape,
                            people=people)
