"""The thesis filters on Mask R-CNN instances (seed 002 sections 3.1 and 3.2) and the RGBA cut-outs.

Every instance is measured once and judged by every filter, and keeps ALL the reasons it fails, so
the tables can say how many instances each filter rejected and how many it rejected alone. The
thesis ran the filters in two stages (section 3.1 on every segmentation, then occlusion and cropping
on the 17,398 survivors); `STAGE_OF` records which stage each reason belongs to, so the two-stage
counts follow from the reasons without running anything twice.

Readings of the thesis that the text leaves open:

- Grayscale (3.1, item 5) is a property of the photo: a photo is grayscale when, at every pixel, its
  three channels differ by at most `grayscale_tolerance` (JPEG round-trips of a gray picture stored
  as RGB leave differences of a level or two; any colour photo has far larger spreads somewhere).
- Box size and fill (3.1, items 3 and 4) use the PREDICTED box (`Instance.bbox`), as the thesis
  stresses, not the mask's tight box and not the Stanford devkit box.
- Occlusion (3.2.2) counts the connected components of the mask under 8-connectivity (pixels that
  touch at a corner are one component, as a thin diagonal strut of a car should be). Components
  smaller than `min_component_pixels` are ignored; the default 1 counts every speck, as the thesis
  did ("more than one connected component").
- Cropping (3.2.3) looks at the borders of the PHOTO. The cut-out's own (box) border always touches
  the mask, so "covered" could not separate cropped from whole cars there; a car cut off by the
  photo frame, on the other hand, covers a long run of the frame. For each of the four borders the
  strip is ceil(border_fraction x that image dimension) pixels wide (left/right strips scale with
  the width, top/bottom with the height, and are never narrower than one pixel); the instance is
  rejected when its mask covers MORE than `max_border_cover` of any strip's pixels (exactly a third
  passes).
- An empty mask (Mask R-CNN can return one after thresholding) is rejected with its own reason.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

from shapepose.config import section
from shapepose.errors import InputError
from shapepose.images.instances import (CATEGORY_NAMES, ImageInstances, Instance,
                                        read_instances)
from shapepose.images.rgba import colour_correct, read_photo
from shapepose.io import atomic_dir
from shapepose.tables import write_csv

log = logging.getLogger(__name__)

# Reason labels, in the order the thesis lists the filters; the stage is the thesis section.
STAGE_OF = {
    "class": "3.1",
    "score": "3.1",
    "box_size": "3.1",
    "fill": "3.1",
    "grayscale": "3.1",
    "empty_mask": "3.1",
    "occluded": "3.2",
    "cropped": "3.2",
}
REASONS = tuple(STAGE_OF)
SIDES = ("top", "bottom", "left", "right")
# Photo-level outcomes: rows of the decisions table with no instance (index -1).
UNREADABLE, NO_DETECTIONS = "unreadable", "no_detections"


@dataclasses.dataclass(frozen=True)
class FilterThresholds:
    """The thresholds of sections 3.1 and 3.2 (config `filters`; config.yaml has the thesis's)."""

    categories: tuple[int, ...]  # COCO ids that pass the class filter
    min_score: float             # score >= this passes
    min_box_side: float          # sqrt(predicted box area) >= this passes
    min_fill: float              # mask pixels / predicted box area >= this passes
    grayscale_tolerance: int     # max channel spread (0..255) of a gray photo
    min_component_pixels: int    # smaller components are ignored as specks
    border_fraction: float       # width of each border strip, share of the side
    max_border_cover: float      # more than this share of a strip covered fails

    @classmethod
    def from_config(cls, cfg: dict) -> "FilterThresholds":
        return section(cls, cfg, where="filters")


def is_grayscale(photo: np.ndarray, tolerance: int) -> bool:
    """photo: (H, W, 3) uint8. True when every pixel's channels lie within `tolerance` levels."""
    photo = np.asarray(photo)
    if photo.ndim == 2 or photo.shape[2] == 1:
        return True
    rgb = photo[..., :3].astype(np.int16)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    return int(spread.max()) <= tolerance


def count_components(mask: np.ndarray, min_pixels: int = 1) -> int:
    """Number of 8-connected components of a (H, W) bool mask with at least `min_pixels` pixels."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return 0
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    return int((sizes >= max(int(min_pixels), 1)).sum())


def strip_width(length: int, fraction: float) -> int:
    """Pixels in a border strip along an image dimension of `length` pixels: ceil, at least 1."""
    # round() first so that e.g. 0.02 * 150 = 3.0000000000000004 is not lifted to 4 by ceil.
    return max(1, math.ceil(round(fraction * length, 9)))


def border_coverage(mask: np.ndarray, fraction: float) -> dict[str, float]:
    """Share of each border strip of the photo that the (H, W) bool mask covers, per side."""
    height, width = mask.shape
    rows, cols = strip_width(height, fraction), strip_width(width, fraction)
    strips = {"top": mask[:rows], "bottom": mask[height - rows:],
              "left": mask[:, :cols], "right": mask[:, width - cols:]}
    return {side: float(strip.mean()) for side, strip in strips.items()}


@dataclasses.dataclass
class Decision:
    """The measurements of one instance and the reasons it was rejected (none: accepted)."""

    image: str
    index: int  # instance index within the photo; -1 for a photo-level row
    category_id: int | None = None
    score: float | None = None
    bbox: tuple[float, float, float, float] | None = None
    sqrt_box_area: float | None = None
    mask_pixels: int | None = None
    fill: float | None = None
    components: int | None = None
    border: dict[str, float] | None = None
    grayscale: bool | None = None
    reasons: list[str] = dataclasses.field(default_factory=list)
    detail: str = ""  # free text for photo-level rows (the read error)
    cutout: str = ""  # file name of the accepted cut-out

    @property
    def accepted(self) -> bool:
        return self.index >= 0 and not self.reasons

    def row(self) -> dict:
        """One row of decisions.csv."""
        x, y, w, h = self.bbox if self.bbox is not None else (None,) * 4
        border = self.border or {}
        return {
            "image": self.image, "index": self.index, "category_id": self.category_id,
            "category": CATEGORY_NAMES.get(self.category_id, "" if self.category_id is None
                                           else f"coco_{self.category_id}"),
            "score": self.score, "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h,
            "sqrt_box_area": self.sqrt_box_area, "mask_pixels": self.mask_pixels,
            "fill": self.fill, "components": self.components,
            **{f"border_{side}": border.get(side) for side in SIDES},
            "grayscale": self.grayscale, "reasons": ";".join(self.reasons),
            "accepted": self.accepted, "detail": self.detail, "cutout": self.cutout,
        }


def judge_instance(image: str, index: int, instance: Instance, mask: np.ndarray, grayscale: bool,
                   thresholds: FilterThresholds) -> Decision:
    """Measure one instance (mask: (H, W) bool, the photo's size) against every filter."""
    t = thresholds
    box_area = instance.box_area
    pixels = int(mask.sum())
    fill = pixels / box_area if box_area > 0 else 0.0
    components = count_components(mask, t.min_component_pixels)
    border = border_coverage(mask, t.border_fraction)
    failed = {
        "class": instance.category_id not in t.categories,
        "score": instance.score < t.min_score,
        "box_size": math.sqrt(max(box_area, 0.0)) < t.min_box_side,
        "fill": fill < t.min_fill,
        "grayscale": grayscale,
        "empty_mask": pixels == 0,
        "occluded": components > 1,
        "cropped": any(share > t.max_border_cover for share in border.values()),
    }
    return Decision(
        image=image, index=index, category_id=instance.category_id, score=instance.score,
        bbox=tuple(instance.bbox), sqrt_box_area=math.sqrt(max(box_area, 0.0)), mask_pixels=pixels,
        fill=fill, components=components, border=border, grayscale=grayscale,
        reasons=[r for r in REASONS if failed[r]],
    )


def cutout(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The RGBA cut-out of one instance: (h, w, 4) uint8, cropped to the mask's tight box.

    photo: (H, W, 3) uint8, mask: (H, W) bool, not empty. Alpha is 255 on the mask and 0 elsewhere;
    RGB is zeroed off the mask, and mask pixels that are pure black become (1, 1, 1) (seed 002
    section 4.1.1.1), so that "RGB == (0, 0, 0)" means "not car" further down the pipeline.
    The tight box (rather than the predicted box) leaves no empty margin, which the frame-ratio
    normalization then sets on purpose.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    alpha = np.where(mask[window], 255, 0).astype(np.uint8)
    return colour_correct(np.dstack([photo[window][..., :3].astype(np.uint8), alpha]))


def cutout_name(image: str, index: int) -> str:
    """File name of a cut-out: the photo's relative path with '/' as '__', then the instance."""
    stem = image.rsplit(".", 1)[0] if "." in image.rsplit("/", 1)[-1] else image
    return f"{stem.replace('/', '__')}__{index:03d}.png"


def stage_counts(decisions: Iterable[Decision]) -> dict[str, int]:
    """The thesis's funnel: photos -> instances -> after the 3.1 filters -> after the 3.2 filters."""
    decisions = list(decisions)
    instances = [d for d in decisions if d.index >= 0]
    stage1 = [d for d in instances if not any(STAGE_OF[r] == "3.1" for r in d.reasons)]
    return {
        "photos": len({d.image for d in decisions}),
        "photos_unreadable": sum(1 for d in decisions if UNREADABLE in d.reasons),
        "photos_without_detections": sum(1 for d in decisions if NO_DETECTIONS in d.reasons),
        "instances": len(instances),
        "after_3.1": len(stage1),
        "after_3.2": sum(1 for d in stage1 if not d.reasons),
    }


def _photo_row(image: str, reason: str, detail: str = "") -> Decision:
    return Decision(image=image, index=-1, reasons=[reason], detail=detail)


def judge_photo(entry: ImageInstances, load_photo: Callable[[Path], np.ndarray], root: Path,
                thresholds: FilterThresholds, source: str | Path = "instances file"
                ) -> tuple[list[Decision], np.ndarray | None]:
    """Every decision for one photo of an instances file, and the photo when any instance passed.

    A photo the segmenter could not read, one that cannot be read now, one whose size differs from
    the one segmented, and one without detections each give a single photo-level row (index -1)
    and a log line instead of an exception: the other photos are still judged.
    """
    if entry.error:
        log.warning("%s: skipped, the segmenter could not read it: %s", entry.image, entry.error)
        return [_photo_row(entry.image, UNREADABLE, str(entry.error))], None
    if not entry.instances:
        log.info("%s: no detections", entry.image)
        return [_photo_row(entry.image, NO_DETECTIONS)], None
    try:
        photo = load_photo(root / entry.image)
    except InputError as exc:
        log.warning("%s: skipped, unreadable: %s", entry.image, exc.problem)
        return [_photo_row(entry.image, UNREADABLE, exc.problem)], None
    if photo.shape[:2] != (entry.height, entry.width):
        problem = (f"photo is {photo.shape[1]}x{photo.shape[0]} but was segmented at "
                   f"{entry.width}x{entry.height}")
        log.warning("%s: skipped, %s", entry.image, problem)
        return [_photo_row(entry.image, UNREADABLE, problem)], None
    if math.sqrt(entry.width * entry.height) < thresholds.min_box_side:
        log.info("%s: %dx%d is smaller than the size threshold %g; all its instances fail box_size",
                 entry.image, entry.width, entry.height, thresholds.min_box_side)
    grayscale = is_grayscale(photo, thresholds.grayscale_tolerance)
    decisions = []
    for index, instance in enumerate(entry.instances):
        mask = instance.mask
        if mask.shape != photo.shape[:2]:
            # the file contradicts itself: it was not written for these photos
            raise InputError(source, f"mask {index} is {mask.shape[1]}x{mask.shape[0]}, the photo "
                             f"{entry.width}x{entry.height}", key=entry.image)
        decisions.append(judge_instance(entry.image, index, instance, mask, grayscale, thresholds))
    return decisions, photo


def filter_segments(instances: str | Path, photos_root: str | Path, accepted: str | Path,
                    decisions_csv: str | Path, thresholds: FilterThresholds | Mapping,
                    load_photo: Callable[[Path], np.ndarray] | None = None) -> list[Decision]:
    """Judge every instance of an instances file; write the accepted cut-outs and the decisions.

    accepted: directory of RGBA PNGs named by `cutout_name`; decisions_csv: one row per instance
    plus one per photo without any (see `Decision.row`). `load_photo` defaults to
    `shapepose.images.rgba.read_photo`. thresholds: a `FilterThresholds`, or config `filters` for
    its `from_config`.
    """
    if not isinstance(thresholds, FilterThresholds):
        thresholds = FilterThresholds.from_config(dict(thresholds))
    if load_photo is None:
        load_photo = read_photo
    images, _ = read_instances(instances)
    root = Path(photos_root)
    decisions: list[Decision] = []
    with atomic_dir(accepted) as out:
        for entry in tqdm(images, desc="filter", unit="photo", file=sys.stderr):
            rows, photo = judge_photo(entry, load_photo, root, thresholds, instances)
            for decision in rows:
                if decision.accepted:
                    decision.cutout = cutout_name(entry.image, decision.index)
                    rgba = cutout(photo, entry.instances[decision.index].mask)
                    Image.fromarray(rgba, "RGBA").save(out / decision.cutout)
            decisions.extend(rows)
        table = pd.DataFrame([d.row() for d in decisions], columns=DECISION_COLUMNS)
        # whole numbers stay whole in a column that photo-level rows leave empty
        table = table.astype({"category_id": "Int64", "mask_pixels": "Int64", "components": "Int64"})
        write_csv(table, decisions_csv)
    counts = stage_counts(decisions)
    log.info("photos %(photos)d (unreadable %(photos_unreadable)d, without detections "
             "%(photos_without_detections)d), instances %(instances)d, after 3.1 %(after_3.1)d, "
             "after 3.2 %(after_3.2)d", counts)
    return decisions


DECISION_COLUMNS = list(Decision(image="", index=-1).row())
