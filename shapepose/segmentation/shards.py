"""Segmentation of a photo dataset in shards (Snakemake scatter/gather) and their merge.

Shard k of n (Snakemake's scatter item "k-of-n", k from 1) holds `sorted(relpaths)[k-1::n]`, so
the gather step can check that every photo was segmented exactly once. A shard never stops on one
bad photo: an unreadable file keeps its entry with `error` set, a photo without detections keeps
an empty list, and empty masks and tiny photos pass through for the filters to reject with reasons.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from shapepose.errors import InputError
from shapepose.images.instances import ImageInstances, read_instances, write_instances
from shapepose.images.rgba import read_photo
from shapepose.images.stanford import read_stanford_cars
from shapepose.segmentation.backends import DETECTRON2_CONFIG, Segmenter, load_segmenter

log = logging.getLogger("shapepose.segmentation")

_SCATTER_ITEM = re.compile(r"^(\d+)-of-(\d+)$")


def parse_shard(item: str) -> tuple[int, int]:
    """Snakemake's scatter item "k-of-n" (k from 1) -> (0-based index, count)."""
    found = _SCATTER_ITEM.match(str(item))
    if not found or not 1 <= int(found.group(1)) <= int(found.group(2)):
        raise ValueError(f"shard {item!r} is not of the form 'k-of-n' with 1 <= k <= n")
    return int(found.group(1)) - 1, int(found.group(2))


def shard_of(relpaths: Iterable[str], index: int, count: int) -> list[str]:
    """The photos of shard `index` (0-based) of `count`: every count-th of the sorted list."""
    return sorted(relpaths)[index::count]


def segment_photos(segmenter: Segmenter, photos: list[tuple[str, Path]]) -> list[ImageInstances]:
    """Segment each (relpath, path); per-photo trouble is recorded in `error`, never raised.

    Only if every photo fails inside the model (not one unreadable file) is the last failure
    raised: that is a broken model or device, not bad photos.
    """
    results, model_failures, last_failure = [], 0, None
    empty = 0
    start = time.perf_counter()
    for relpath, path in tqdm(photos, desc="segment", unit="photo", file=sys.stderr, mininterval=2):
        try:
            image = read_photo(path)
        except InputError as exc:
            log.warning("skipping unreadable photo %s: %s", relpath, exc.problem)
            results.append(ImageInstances(relpath, 0, 0, [], error=f"unreadable: {exc.problem}"))
            continue
        height, width = image.shape[:2]
        try:
            instances = segmenter.predict(image)
        except (RuntimeError, ValueError) as exc:
            model_failures, last_failure = model_failures + 1, exc
            log.warning("segmentation failed on %s (%dx%d): %s", relpath, width, height, exc)
            results.append(ImageInstances(relpath, width, height, [],
                                          error=f"segmentation failed: {exc}"))
            continue
        empty += not instances
        results.append(ImageInstances(relpath, width, height, instances))
    if photos and model_failures == len(photos):
        raise last_failure
    seconds = time.perf_counter() - start
    errors = sum(r.error is not None for r in results)
    log.info("segmented %d photos in %.1f s (%.3f s/photo): %d instances, %d photos without "
             "detections, %d with errors", len(photos), seconds, seconds / max(len(photos), 1),
             sum(len(r.instances) for r in results), empty, errors)
    return results


def segment_shard(photos_root: str | Path, out: str | Path, *, shard: str,
                  segmenter: Segmenter) -> dict:
    """Segment shard `shard` ("k-of-n") of the Stanford-layout dataset at `photos_root` into `out`."""
    index, count = parse_shard(shard)
    photos = {p.relpath: p.path for p in read_stanford_cars(photos_root)}
    chosen = shard_of(photos, index, count)
    log.info("shard %s: %d of %d photos", shard, len(chosen), len(photos))
    results = segment_photos(segmenter, [(r, photos[r]) for r in chosen])
    # No timings in the file: the same photos and weights must give the same bytes (the log and
    # the rule's benchmark keep the seconds per photo).
    meta = {"shard": shard, "n_photos": len(chosen), "segmenter": segmenter.describe()}
    write_instances(out, results, meta)
    return meta


def segment(*, photos: str | Path, weights: str | Path, out: str | Path, shard: str,
            backend: str, arch: str = "demo", detectron2_config: str = DETECTRON2_CONFIG,
            score_threshold: float, nms_threshold: float, mask_threshold: float,
            device: str = "auto") -> dict:
    """Shard `shard` ("k-of-n") of the photos at `photos` through the configured Mask R-CNN.

    The segmenter is `load_segmenter(backend, weights, ...)` on `device` ("auto": a GPU where
    there is one); see `segment_shard` for what `out` holds.
    """
    from shapepose.training.device import pick_device

    segmenter = load_segmenter(backend, weights, arch=arch, detectron2_config=detectron2_config,
                               score_threshold=score_threshold, nms_threshold=nms_threshold,
                               mask_threshold=mask_threshold, device=pick_device(device))
    return segment_shard(photos, out, shard=shard, segmenter=segmenter)


def gather_segments(*, shards: list[str | Path], photos: str | Path, out: str | Path) -> dict:
    """Merge the shard files (in shard order 1..n) into `out`, each photo exactly once.

    A shard holding a photo that is not its own or holding one twice, or a photo no shard holds,
    is an `InputError` naming the shard file.
    """
    relpaths = sorted(p.relpath for p in read_stanford_cars(photos))
    count = len(shards)
    merged: dict[str, ImageInstances] = {}
    describe = None
    for index, path in enumerate(shards):
        images, meta = read_instances(path)
        expected = shard_of(relpaths, index, count)
        if meta.get("shard") != f"{index + 1}-of-{count}":
            raise InputError(path, f"shard file says it is shard {meta.get('shard')!r}, expected "
                                   f"{index + 1}-of-{count}", key="meta.shard")
        names = [im.image for im in images]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        foreign = sorted(set(names) - set(expected))
        missing = sorted(set(expected) - set(names))
        for problem, which in (("photos listed twice", duplicated),
                               ("photos that belong to no shard here or to another shard", foreign),
                               ("photos of this shard are missing", missing)):
            if which:
                raise InputError(path, f"{problem}: {which[:5]}{' ...' if len(which) > 5 else ''}")
        merged.update({im.image: im for im in images})
        describe = describe or meta.get("segmenter")
    images = [merged[r] for r in relpaths]
    meta = {"segmenter": describe, "shards": count, "n_photos": len(images),
            "n_instances": sum(len(im.instances) for im in images),
            "n_errors": sum(im.error is not None for im in images)}
    write_instances(out, images, meta)
    log.info("gathered %d shards: %d photos, %d instances, %d errors", count,
             meta["n_photos"], meta["n_instances"], meta["n_errors"])
    return meta
