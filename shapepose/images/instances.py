"""Object instances found in (or drawn into) photos, stored as COCO-style run-length masks.

One format serves the segmenter's predictions and the demo photos' ground truth, so the filters,
the scores and the tables read both the same way. A file is JSON:

    {"meta": {...}, "images": [
        {"image": "cars_test/00001.jpg", "width": 640, "height": 480, "error": null,
         "instances": [{"category_id": 3, "score": 0.97, "bbox": [x, y, w, h],
                        "segmentation": {"size": [480, 640], "counts": "..."},
                        "attributes": {"occluded": false}}]}]}

`bbox` is COCO's [x, y, width, height] in pixels; `category_id` uses COCO ids (person 1, car 3,
truck 8); `segmentation` is pycocotools' compressed RLE with `counts` as text. An image that could
not be processed keeps its entry with `error` set and no instances, so nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterable

import numpy as np
from pycocotools import mask as mask_utils

from shapepose.errors import InputError
from shapepose.io import atomic_file

# COCO category ids (the 80-class numbering that Mask R-CNN checkpoints use).
PERSON, CAR, TRUCK = 1, 3, 8
CATEGORY_NAMES = {PERSON: "person", CAR: "car", TRUCK: "truck"}


def encode_mask(mask: np.ndarray) -> dict:
    """mask: (H, W) bool -> COCO compressed RLE {"size": [H, W], "counts": str}."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode_mask(rle: dict) -> np.ndarray:
    """COCO compressed RLE -> (H, W) bool."""
    coded = {"size": list(rle["size"]), "counts": rle["counts"].encode("ascii")}
    return mask_utils.decode(coded).astype(bool)


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The tight [x, y, w, h] box of a (H, W) bool mask in pixels; zeros for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return (0.0, 0.0, 0.0, 0.0)
    return (float(cols[0]), float(rows[0]),
            float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1))


@dataclasses.dataclass
class Instance:
    """One object in one image."""

    category_id: int
    score: float
    bbox: tuple[float, float, float, float]  # [x, y, w, h], pixels
    segmentation: dict  # COCO compressed RLE
    # Optional facts about the object, e.g. ground truth's {"occluded": true, "cropped": false}.
    attributes: dict = dataclasses.field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool."""
        return decode_mask(self.segmentation)

    @property
    def box_area(self) -> float:
        return float(self.bbox[2] * self.bbox[3])

    @classmethod
    def from_mask(cls, mask: np.ndarray, category_id: int, score: float = 1.0,
                  bbox: Iterable[float] | None = None, attributes: dict | None = None) -> "Instance":
        """An instance from a bool mask; the box defaults to the mask's tight box."""
        box = tuple(float(v) for v in bbox) if bbox is not None else mask_box(mask)
        return cls(int(category_id), float(score), box, encode_mask(mask), dict(attributes or {}))

    def to_json(self) -> dict:
        doc = {"category_id": self.category_id, "score": self.score,
               "bbox": [float(v) for v in self.bbox], "segmentation": self.segmentation}
        if self.attributes:
            doc["attributes"] = self.attributes
        return doc


@dataclasses.dataclass
class ImageInstances:
    """Every instance of one image; `image` is the path relative to the dataset root."""

    image: str
    width: int
    height: int
    instances: list[Instance] = dataclasses.field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict:
        return {"image": self.image, "width": self.width, "height": self.height,
                "error": self.error, "instances": [i.to_json() for i in self.instances]}


def write_instances(path: str | Path, images: Iterable[ImageInstances], meta: dict | None = None) -> None:
    """Write an instances file atomically (see the module docstring for the layout)."""
    doc = {"meta": dict(meta or {}), "images": [im.to_json() for im in images]}
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")


def read_instances(path: str | Path) -> tuple[list[ImageInstances], dict]:
    """Read an instances file -> (images, meta); a malformed file raises `InputError` naming it."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read instances: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise InputError(path, "not an instances file: expected a JSON object with an 'images' list")
    images = []
    for k, entry in enumerate(doc["images"]):
        try:
            instances = [
                Instance(int(i["category_id"]), float(i["score"]),
                         tuple(float(v) for v in i["bbox"]), dict(i["segmentation"]),
                         dict(i.get("attributes") or {}))
                for i in entry["instances"]
            ]
            for inst in instances:
                if len(inst.bbox) != 4 or set(inst.segmentation) != {"size", "counts"}:
                    raise ValueError("bbox must have 4 numbers and segmentation size and counts")
            images.append(ImageInstances(str(entry["image"]), int(entry["width"]),
                                         int(entry["height"]), instances, entry.get("error")))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(path, f"malformed entry: {exc!r}", key=f"images[{k}]") from None
    return images, dict(doc.get("meta") or {})
