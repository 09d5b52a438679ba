"""Scoring predicted instances against ground truth: greedy mask-IoU matching and its summaries.

Matching follows the COCO evaluation's rule at one IoU threshold: predictions in order of falling
score each take the still-unmatched truth of the same category that they overlap most, if that
mask IoU reaches the threshold.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from pycocotools import mask as mask_utils

from shapepose.images.instances import ImageInstances, Instance


def _coco_rle(instance: Instance) -> dict:
    seg = instance.segmentation
    return {"size": list(seg["size"]), "counts": seg["counts"].encode("ascii")}


def mask_ious(pred: list[Instance], truth: list[Instance]) -> np.ndarray:
    """(len(pred), len(truth)) float64 mask IoU; an empty mask has IoU 0 with everything."""
    if not pred or not truth:
        return np.zeros((len(pred), len(truth)))
    sizes = {tuple(i.segmentation["size"]) for i in pred + truth}
    if len(sizes) != 1:
        raise ValueError(f"masks of different image sizes cannot be compared: {sorted(sizes)}")
    ious = mask_utils.iou([_coco_rle(i) for i in pred], [_coco_rle(i) for i in truth],
                          [0] * len(truth))
    return np.asarray(ious, dtype=np.float64).reshape(len(pred), len(truth))


def match_instances(pred: list[Instance], truth: list[Instance], iou_threshold: float = 0.5,
                    *, same_category: bool = True) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matches (pred_idx, truth_idx, mask_iou), highest-scoring prediction first.

    A prediction matches the unmatched truth it overlaps most (among truths of its category when
    `same_category`), if that IoU is at least `iou_threshold`. Ties in score keep list order.
    """
    ious = mask_ious(pred, truth)
    order = sorted(range(len(pred)), key=lambda k: -pred[k].score)
    taken: set[int] = set()
    matches = []
    for p in order:
        best, best_iou = None, iou_threshold
        for t in range(len(truth)):
            if t in taken or (same_category and truth[t].category_id != pred[p].category_id):
                continue
            if ious[p, t] >= best_iou and (best is None or ious[p, t] > best_iou):
                best, best_iou = t, ious[p, t]
        if best is not None:
            taken.add(best)
            matches.append((p, best, float(best_iou)))
    return matches


def score_images(pred: Iterable[ImageInstances], truth: Iterable[ImageInstances], *,
                 iou_threshold: float = 0.5, min_score: float = 0.5,
                 categories: Iterable[int] | None = None) -> dict[str, float]:
    """Mask quality of predictions over many images, matched per image by `match_instances`.

    Predictions below `min_score`, and instances of both sides outside `categories` (when given),
    are left out. Returns n_truth, n_pred, n_matched, recall and precision at the IoU threshold,
    matched_iou (mean mask IoU of the matches) and panoptic quality (sum of matched IoUs over
    matches + (misses + false detections) / 2), one number that rewards all three.
    Images are paired by their `image` key; a truth image without predictions counts as missed.
    """
    keep = set(categories) if categories is not None else None
    by_image = {im.image: im for im in pred}
    n_truth = n_pred = 0
    ious: list[float] = []
    for gt in truth:
        found = by_image.get(gt.image)
        p = [i for i in (found.instances if found else [])
             if i.score >= min_score and (keep is None or i.category_id in keep)]
        t = [i for i in gt.instances if keep is None or i.category_id in keep]
        n_truth += len(t)
        n_pred += len(p)
        ious += [iou for _, _, iou in match_instances(p, t, iou_threshold)]
    n_matched = len(ious)
    misses_and_extras = (n_truth - n_matched) + (n_pred - n_matched)
    return {
        "n_truth": float(n_truth), "n_pred": float(n_pred), "n_matched": float(n_matched),
        "recall": n_matched / n_truth if n_truth else float("nan"),
        "precision": n_matched / n_pred if n_pred else float("nan"),
        "matched_iou": float(np.mean(ious)) if ious else float("nan"),
        "panoptic_quality": (sum(ious) / (n_matched + 0.5 * misses_and_extras)
                             if n_matched + misses_and_extras else float("nan")),
    }
