"""Test-set evaluation of one trained Neural Parts model: IoU and Chamfer-L1 per frame and in the mean."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import torch
from tqdm import tqdm

from shapepose.errors import InputError
from shapepose.io import atomic_file
from shapepose.neural_parts.data import FrameCache, frame_tensors, split_frames
from shapepose.neural_parts.metrics import chamfer_l1, predicted_surface, weighted_iou
from shapepose.neural_parts.model import union_implicit
from shapepose.neural_parts.train import STAGE, evenly_spaced, load_model, sequence_files
from shapepose.replicates import replicate_seed
from shapepose.seeding import derive_rng
from shapepose.training import load_exported, pick_device

log = logging.getLogger(__name__)


def evaluate_frame(model, samples, device, *, n_points: int, rng: np.random.Generator,
                   subdivisions: int) -> dict[str, float]:
    """IoU over every stored volume point, and Chamfer-L1 with n_points on each side."""
    batch = frame_tensors(samples, device)
    with torch.no_grad():
        condition = model.conditions(batch["images"])
        G = union_implicit(model.implicit(condition, batch["volume_points"]))[0].cpu().numpy()
    iou = weighted_iou(G <= 0, samples.inside, samples.weights)
    stored = len(samples.surface_points)
    if n_points > stored:
        raise ValueError(f"eval.n_points {n_points} exceeds the {stored} stored surface samples")
    target = samples.surface_points[rng.choice(stored, size=n_points, replace=False)]
    predicted = predicted_surface(model, condition, n_points, rng, subdivisions)
    return {"iou": iou, **chamfer_l1(predicted, target)}


def check_replicate(model_path: str, meta: dict, seed: int, replicate: int) -> None:
    """The model file must be replicate `replicate` of config seed `seed`: trained with
    replicate_seed(seed, "neural_parts", replicate). InputError naming the file otherwise."""
    expected = replicate_seed(seed, STAGE, replicate)
    if meta.get("seed") != expected:
        raise InputError(model_path, f"trained with seed {meta.get('seed')}, but replicate "
                                     f"{replicate} of seed {seed} trains with {expected}", key="seed")


def eval_neural_parts(*, model_path: str, sequences: list[str], surface: list[str],
                      volume: list[str], renders: list[str], out: str, seed: int, device: str,
                      split: dict, n_points: int, max_frames: int | None, subdivisions: int,
                      image_size: int, untrained: bool, replicate: int) -> dict:
    """Evaluate on every test frame (or `max_frames` evenly spaced ones) and write `out` (JSON).

    `seed` is the config seed: the per-frame Chamfer samples are drawn from it (the same for every
    replicate and for the untrained weights, so paired comparisons share them), and the model
    file must have been trained with replicate_seed(seed, "neural_parts", replicate).
    untrained=True scores the same architecture at its step-0 weights (`load_model`).
    """
    if not isinstance(untrained, bool):
        raise TypeError(f"untrained is True or False, got {untrained!r}")
    device = pick_device(device)
    exported = load_exported(model_path, map_location=device)
    meta = exported["meta"]
    check_replicate(model_path, meta, seed, replicate)
    try:
        model = load_model(exported, device, untrained=untrained)
    except KeyError as error:
        raise InputError(model_path, f"not a Neural Parts model file (no {error})") from None
    weights = "untrained" if untrained else "trained"
    frames = split_frames(sequence_files(sequences, surface, volume, renders),
                          split["test_sequences"], split["val_stride"])["test"]
    if not frames:
        raise InputError(model_path, f"no test frames: none of neural_parts.split.test_sequences "
                                     f"{split['test_sequences']} is among the sequences")
    frames = evenly_spaced(frames, max_frames) if max_frames else frames
    cache = FrameCache(image_size, capacity=1)
    rows = []
    for ref in tqdm(frames, desc="eval_neural_parts", unit="frame", file=sys.stderr):
        rng = derive_rng(seed, "neural_parts", "eval", ref.files.sequence, ref.frame)
        try:
            scores = evaluate_frame(model, cache(ref), device, n_points=n_points, rng=rng,
                                    subdivisions=subdivisions)
        except ValueError as error:
            raise InputError(ref.files.surface, str(error), frame=ref.frame) from None
        rows.append({"sequence": ref.files.sequence, "frame": ref.frame, **scores})
    result = {
        "n_primitives": model.n_primitives,
        "untrained": bool(untrained),
        "replicate": int(replicate),
        "iou": float(np.mean([r["iou"] for r in rows])),
        "chamfer_l1": float(np.mean([r["chamfer_l1"] for r in rows])),
        "accuracy": float(np.mean([r["accuracy"] for r in rows])),
        "completeness": float(np.mean([r["completeness"] for r in rows])),
        "n_points": n_points,
        "n_test_frames": len(rows),
        "units": "metres (Chamfer-L1); IoU weighted by the volume samples' importance weights",
        "training": {"steps": meta["extra"]["steps"],
                     "step_exported": 0 if untrained else meta["step"],
                     "n_train_frames": meta["extra"]["n_train_frames"], "seed": meta["seed"],
                     "val_iou": None if untrained else meta["metrics"].get("val_iou")},
        "eval_seed": int(seed),
        "frames": rows,
    }
    log.info("P%d replicate %d, %s weights: IoU %.4f, Chamfer-L1 %.4f m over %d test frames "
             "(%d points each side)", model.n_primitives, replicate, weights, result["iou"],
             result["chamfer_l1"], len(rows), n_points)
    with atomic_file(out) as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n")
    return result
