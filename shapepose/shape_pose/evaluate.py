"""Evaluation of one shape-and-pose model: table 6.2's metrics and the real-mask disagreement.

`eval_shape_pose` (seed 002 section 6.2, DPC's eval_chamfer / eval_camera_pose): the model's frame
is aligned to the ground truth on the VALIDATION split of its own training set
(`shapepose.shape_pose.alignment`), then every view of a TEST split is scored: Chamfer terms of
the aligned cloud against every ground-truth point (or a prefix, `evaluation.points`), and the
angle between the aligned student pose and the true pose.

`eval_real_masks` (section 6.3, figures 6.5 and 7.1): every held-out real cut-out, and every
view of the synthetic test split, through the network; the predicted cloud drawn sharply from
the predicted pose is compared with the image's mask by XOR. No alignment: cloud and pose share
the model's frame, which the drawing does not depend on.

The file entry points load the network and write; the work is in `evaluate_net` and
`real_mask_rows`, which take any network object with `predict(images) -> {"points", "pose"}`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from shapepose.errors import InputError
from shapepose.images.dpc import read_dpc
from shapepose.images.rgba import mask_disagreement, read_rgba
from shapepose.io import atomic_file
from shapepose.shape_pose.alignment import apply_alignment, fit_alignment
from shapepose.shape_pose.data import ViewSet, cutout_paths, prepare_view
from shapepose.shape_pose.metrics import chamfer, pose_errors_deg, pose_summary
from shapepose.shape_pose.sharp import sharp_mask
from shapepose.shape_pose.train import load_model
from shapepose.tables import write_csv
from shapepose.training.device import pick_device
from shapepose.training.export import load_exported

log = logging.getLogger("shapepose.shape_pose")

UNITS = ("precision, coverage and chamfer in the csv are raw mean nearest-neighbour distances in "
         "ShapeNet units (the model's bounding-box diagonal is 1); the json's are those means x100 "
         "(seed 002 table 6.2); pose errors in degrees")


# ---- prediction ------------------------------------------------------------------------------

def predict_images(net: torch.nn.Module, images: np.ndarray,
                   device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """images (B, 3, S, S) float32 -> (points (B, N, 3) float32, poses (B, 4) float64 unit)."""
    out = net.predict(torch.from_numpy(np.ascontiguousarray(images)).to(device))
    points = out["points"].detach().cpu().numpy().astype(np.float32)
    poses = out["pose"].detach().cpu().numpy().astype(np.float64)
    return points, poses / np.linalg.norm(poses, axis=1, keepdims=True)


def iter_predictions(net: torch.nn.Module, views: ViewSet, device: torch.device, batch: int = 32,
                     desc: str = "predict") -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(model index, points (V, N, 3), predicted poses (V, 4), true poses (V, 4)) model by model.

    Whole models go through the network together, about `batch` views at a time.
    """
    per_batch = max(1, batch // views.n_views)
    for start in tqdm(range(0, len(views), per_batch), desc=desc, unit="batch", file=sys.stderr):
        indices = range(start, min(start + per_batch, len(views)))
        loaded = [views.model(i) for i in indices]
        points, poses = predict_images(net, np.concatenate([images for images, _, _ in loaded]), device)
        V = views.n_views
        for k, (i, (_, _, truth)) in enumerate(zip(indices, loaded)):
            yield i, points[k * V:(k + 1) * V], poses[k * V:(k + 1) * V], truth.astype(np.float64)


def predict_split(net: torch.nn.Module, views: ViewSet, device: torch.device | str,
                  batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Every view of a split: (points (M, V, N, 3) float32, poses (M, V, 4))."""
    device = pick_device(device) if isinstance(device, str) else device
    results = list(iter_predictions(net, views, device, batch))
    return np.stack([r[1] for r in results]), np.stack([r[2] for r in results])


def ground_truth_points(views: ViewSet, index: int, n_points: int | None) -> np.ndarray:
    """The ground-truth cloud a prediction is scored against: every point of the file (None, DPC's
    eval_chamfer), or its first n_points (the files are shuffled, so a prefix is a uniform draw).

    A prefix biases precision upwards: the distance from a predicted point to the nearest of M
    surface points falls as 1 / sqrt(M) (half the mean spacing), so scoring against a quarter of
    the points doubles even a perfect prediction's precision.
    """
    points = views.points(index)
    if n_points is None:
        return points
    if len(points) < n_points:
        raise InputError(views.data.gt_dir / f"{views.models[index]}.mat",
                         f"has {len(points)} ground-truth points; evaluation.points asks for {n_points}",
                         key="points")
    return points[:n_points]


def scored_points(evaluation: dict) -> int | None:
    """evaluation.points as ground_truth_points takes it (None: every point)."""
    return None if evaluation["points"] is None else int(evaluation["points"])


# ---- table 6.2 -------------------------------------------------------------------------------

def fit_split_alignment(net: torch.nn.Module, views: ViewSet, evaluation: dict, device: torch.device,
                        batch: int = 32) -> tuple[np.ndarray, dict]:
    """The model-to-ground-truth rotation fitted on every view of `views` (DPC: the val split)."""
    settings = evaluation["alignment"]
    pred_points, pred_quats, gt_quats, model_index, gt_points, where = [], [], [], [], [], []
    limit = settings["fit_models"]  # DPC fitted on 50 validation models; null: every one
    for i, points, poses, truth in iter_predictions(net, views, device, batch, desc="align"):
        if limit and len(gt_points) >= int(limit):
            break
        gt_points.append(ground_truth_points(views, i, scored_points(evaluation)))
        for v in range(views.n_views):
            pred_points.append(points[v])
            pred_quats.append(poses[v])
            gt_quats.append(truth[v])
            model_index.append(len(gt_points) - 1)
            where.append([views.models[i], v])
    try:
        A, info = fit_alignment(pred_points, np.array(pred_quats), gt_points, np.array(gt_quats),
                                np.array(model_index), models=int(settings["models"]),
                                views_per_model=int(settings["views_per_model"]),
                                icp_threshold=float(settings["icp_threshold"]),
                                icp_iterations=int(settings["icp_iterations"]),
                                starts=bool(settings["starts"]),
                                consensus_deg=float(settings["consensus_deg"]))
    except ValueError as exc:
        raise InputError(views.root, f"alignment on the {views.split} split failed: {exc}") from None
    summary = {"quaternion": A.tolist(), "rmse": info["rmse"], "split": views.split,
               "views": [where[i] for i in info["views"]], "n_candidates": info["n_candidates"],
               "n_kept": info["n_kept"], "pose_start_won": info["pose_start_won"]}
    log.info("alignment on %d %s views: rotation %s, mean ICP RMSE %.4f over %d views",
             info["n_candidates"], views.split, np.round(A, 4).tolist(), info["rmse"], len(info["views"]))
    return A, summary


def evaluate_net(net: torch.nn.Module, *, align_views: ViewSet, test_views: ViewSet,
                 evaluation: dict, device: torch.device | str,
                 batch: int = 32) -> tuple[pd.DataFrame, dict]:
    """Per test view (model, view, precision, coverage, chamfer, pose_error_deg) and the summary.

    The summary holds the means x100 of the distances, the pose accuracy and DPC's median error,
    and the alignment.
    """
    device = pick_device(device) if isinstance(device, str) else device
    A, alignment = fit_split_alignment(net, align_views, evaluation, device, batch)
    rows = []
    for i, points, poses, truth in iter_predictions(net, test_views, device, batch, desc="test"):
        gt = ground_truth_points(test_views, i, scored_points(evaluation))
        aligned_points, aligned_poses = apply_alignment(A, points, poses)
        errors = pose_errors_deg(aligned_poses, truth)
        for v in range(test_views.n_views):
            rows.append({"model": test_views.models[i], "view": v, **chamfer(aligned_points[v], gt),
                         "pose_error_deg": float(errors[v])})
    table = pd.DataFrame(rows, columns=["model", "view", "precision", "coverage", "chamfer",
                                        "pose_error_deg"])
    pose = pose_summary(table["pose_error_deg"].to_numpy(), float(evaluation["accuracy_threshold"]))
    summary = {"n_models": len(test_views), "n_views": len(table),
               **{key: float(table[key].mean() * 100) for key in ("precision", "coverage", "chamfer")},
               "accuracy": pose["accuracy"], "median_error_deg": pose["median"],
               "accuracy_threshold_deg": float(evaluation["accuracy_threshold"]),
               "gt_points": evaluation["points"] or "all", "alignment": alignment, "units": UNITS}
    return table, summary


def load_net(model: str, untrained: bool, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """(network in eval mode, the export's meta) of a file written by train_shape_pose."""
    exported = load_exported(model)
    try:
        net = load_model(exported, device, untrained=untrained)
    except InputError as exc:
        raise InputError(model, exc.problem) from None
    return net, exported["meta"]


def _training_note(meta: dict, untrained: bool) -> dict:
    summary = meta.get("extra", {}).get("summary", {})
    return {"untrained": bool(untrained), "step": 0 if untrained else meta.get("step"),
            "best_step": summary.get("best_step"), "seed": meta.get("seed")}


def as_replicate(value) -> int:
    """A replicate index as a rule passes it (an int, or the digits of a wildcard) -> int >= 0."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise ValueError(f"replicate: a non-negative integer, got {value!r}")


def eval_shape_pose(*, model: str, untrained: bool, align_data: str, test_data: str, variant: str,
                    test_set: str, replicate: int, out_csv: str, out_json: str, evaluation: dict,
                    device: str, seed: int) -> dict:
    """The rule's work: replicate `replicate` of one variant's model on one test set (that
    replicate's copy of it); writes out_csv and out_json (which records the replicate).

    Nothing here is random (predictions, ICP and metrics are deterministic): `seed` is only recorded.
    """
    replicate = as_replicate(replicate)
    device = pick_device(device)
    net, meta = load_net(model, untrained, device)
    size = net.arch.image_size
    # masks are not scored here: asking for them at the image size makes them free; every model
    # is read once, so a small cache keeps memory flat on the seed's 1500 test models
    table, summary = evaluate_net(net, align_views=ViewSet(align_data, "val", size, size, cache=8),
                                  test_views=ViewSet(test_data, "test", size, size, cache=8),
                                  evaluation=evaluation, device=device)
    summary = {"variant": variant, "test_set": test_set, "replicate": replicate, **summary,
               **_training_note(meta, untrained),
               "eval_seed": int(seed)}
    write_csv(table, out_csv, float_format="%.8g")
    with atomic_file(out_json) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    log.info("%s r%d on %s: precision %.3f, coverage %.3f, Chamfer %.3f (x100); accuracy %.3f, median "
             "error %.2f deg over %d views", variant, replicate, test_set, summary["precision"],
             summary["coverage"], summary["chamfer"], summary["accuracy"],
             summary["median_error_deg"], summary["n_views"])
    return summary


# ---- real masks ------------------------------------------------------------------------------

def binary_mask(rgba: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: alpha > 127, box-filtered to `size` and kept where at least half covered."""
    mask = (rgba[..., 3] > 127).astype(np.float32)
    if mask.shape != (size, size):
        mask = np.asarray(Image.fromarray(mask, mode="F").resize((size, size), Image.Resampling.BOX))
    return mask >= 0.5


def _disagreements(net: torch.nn.Module, items: list[tuple[str, Path, np.ndarray]], image_size: int,
                   settings: dict, device: torch.device) -> list[float]:
    """XOR disagreement of each (name, path, rgba) with the network's cloud drawn from its pose."""
    size, radius = int(settings["size"]), float(settings["point_radius"])
    images = np.stack([prepare_view(rgba, image_size, image_size, path)[0] for _, path, rgba in items])
    points, poses = predict_images(net, images, device)
    out = []
    for (_, path, rgba), cloud, pose in zip(items, points, poses):
        try:
            predicted, real = sharp_mask(cloud, pose, size, radius), binary_mask(rgba, size)
            out.append(float(mask_disagreement(predicted, real, relative_to="reference")))
        except ValueError as exc:
            raise InputError(path, str(exc)) from None
    return out


def real_mask_rows(net: torch.nn.Module, *, image_size: int, cutouts: str | Path, synthetic: str | Path,
                   evaluation: dict, device: torch.device | str, batch: int = 32) -> pd.DataFrame:
    """Rows (set: real | synthetic, image, disagreement) for every cut-out and every synthetic test view."""
    device = pick_device(device) if isinstance(device, str) else device
    settings = evaluation["real_masks"]
    paths = cutout_paths(cutouts)
    if not paths:
        raise InputError(cutouts, "no cut-out (*.png) in the folder")
    data = read_dpc(synthetic)
    sources = [("real", p.name, (lambda p=p: read_rgba(p)), p) for p in paths]
    sources += [("synthetic", f"{m}/render_{v}.png", (lambda m=m, v=v: data.load_view(m, v)),
                 data.image_path(m, v)) for m in data.split("test") for v in range(data.n_views)]
    rows = []
    for start in tqdm(range(0, len(sources), batch), desc="real masks", unit="batch", file=sys.stderr):
        chunk = sources[start:start + batch]
        items = [(name, path, load()) for _, name, load, path in chunk]
        for (kind, name, _, _), value in zip(chunk, _disagreements(net, items, image_size, settings, device)):
            rows.append({"set": kind, "image": name, "disagreement": value})
    return pd.DataFrame(rows, columns=["set", "image", "disagreement"])


REAL_MASK_COLUMNS = ["variant", "replicate", "set", "image", "disagreement"]


def eval_real_masks(*, model: str, untrained: bool, cutouts: str, synthetic: str, variant: str,
                    replicate: int, out_csv: str, evaluation: dict, device: str,
                    seed: int) -> pd.DataFrame:
    """The rule's work: replicate `replicate` of one variant's model, its mask disagreement on the
    real cut-outs (that replicate's segmenter's) and the synthetic test views.

    The CSV has one row per image (REAL_MASK_COLUMNS: the variant and replicate on every row).
    Nothing here is random; `seed` keeps the rule's signature uniform.
    """
    replicate = as_replicate(replicate)
    device = pick_device(device)
    net, _ = load_net(model, untrained, device)
    table = real_mask_rows(net, image_size=net.arch.image_size, cutouts=cutouts, synthetic=synthetic,
                           evaluation=evaluation, device=device)
    table = table.assign(variant=variant, replicate=replicate)[REAL_MASK_COLUMNS]
    write_csv(table, out_csv, float_format="%.8g")
    for kind, group in table.groupby("set", sort=False):
        log.info("%s r%d%s: %s: mean disagreement %.3f, median %.3f over %d images", variant, replicate,
                 " (untrained)" if untrained else "", kind, group["disagreement"].mean(),
                 group["disagreement"].median(), len(group))
    return table
