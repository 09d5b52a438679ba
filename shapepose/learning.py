"""Does each trained stage learn? The learning table and the validation curves (issue 15).

Per stage, the headline metric on held-out data: the trained models' mean over replicates with
its spread (shapepose.replicates), the untrained or trivial baseline, the target of
`learning.targets` in the config and whether the mean meets it:

- shape and pose (`original` variant, original test split): pose accuracy at the threshold, median
  pose error and Chamfer, against the `untrained` row (the same networks at their step-0 weights);
- Neural Parts, per number of primitives: IoU and Chamfer-L1 on the test frames, against the
  step-0 weights of each replicate;
- segmenter: mean mask IoU of matched pairs and recall of whole, unoccluded cars on the demo
  photos with known masks, and the spread of accepted cut-outs over replicates, (max - min) / mean;
- style transfer (one experiment, `learning.style_experiment`): alpha disagreement between the
  test renders and their stylized copies, against the untrained generator's;
- pose transfer, Pose2Mesh and the Liquid Warping GAN (`SUMMARY_SPECS`), per variant or
  experiment: their held-out metric against the step-0 weights and the answers that need no
  learning (the identity or pose mesh unchanged, the mean training pose, the pasted warped source).

This module reads the stages' output files (JSON and CSV) and imports no stage.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from shapepose.errors import InputError
from shapepose.io import atomic_file
from shapepose.replicates import SPREAD_NOTE, cell, summarize
from shapepose.tables import markdown, read_table, write_csv, write_markdown

COLUMNS = ["stage", "metric", "replicates", "trained_mean", "trained_std", "trained_ci_low",
           "trained_ci_high", "baseline", "baseline_mean", "target", "met", "note"]

# the validation metric each trainer selects its best checkpoint by (its losses.csv column)
CURVES = {
    "shape_pose": ("val_student_reprojection", "validation: student's reprojection error (lower is better)"),
    "neural_parts": ("val_iou", "validation IoU (higher is better)"),
    "segmentation": ("val_pq", "validation panoptic quality (higher is better)"),
    "style_transfer": ("val_alpha_disagreement", "validation alpha disagreement (lower is better)"),
    "pose_transfer": ("val_pmd", "validation PMD, m^2 (lower is better)"),
    "pose2mesh": ("val_mpjpe", "validation MPJPE, mm (lower is better)"),
    "lwgan": ("val_masked_l1", "validation masked L1, self-imitation (lower is better)"),
}

# Stages whose evaluation summaries hold the trained value beside its baselines (`summary_rows`):
# stage -> (the table's stage name, the row specs). Every row asks the trained mean to beat the
# named baseline on held-out data; no number of its own is targeted.
SUMMARY_SPECS = {
    "pose_transfer": ("pose transfer", [
        {"metric": "PMD (m^2), held-out identities, seen poses, {group}", "key": "pmd_trained",
         "baseline_key": "pmd_untrained", "baseline": "untrained", "better": "lower", "ratio": None},
        {"metric": "PMD (m^2), held-out identities, seen poses, {group}", "key": "pmd_trained",
         "baseline_key": "pmd_identity_mesh", "baseline": "identity mesh unchanged",
         "better": "lower", "ratio": None},
        {"metric": "PMD (m^2), held-out identities, seen poses, {group}", "key": "pmd_trained",
         "baseline_key": "pmd_pose_mesh", "baseline": "pose mesh itself", "better": "lower",
         "ratio": None, "note": "the pose mesh uses the vertex correspondence the network is not given"},
    ]),
    "pose2mesh": ("Pose2Mesh", [
        {"metric": "MPJPE (mm), test subjects, {group}", "key": "trained.mpjpe",
         "baseline_key": "untrained.mpjpe", "baseline": "untrained", "better": "lower", "ratio": None},
        {"metric": "MPJPE (mm), test subjects, {group}", "key": "trained.mpjpe",
         "baseline_key": "mean.mpjpe", "baseline": "mean training mesh", "better": "lower",
         "ratio": None},
        {"metric": "MPVPE (mm), test subjects, {group}", "key": "trained.mpvpe",
         "baseline_key": "mean.mpvpe", "baseline": "mean training mesh", "better": "lower",
         "ratio": None},
    ]),
    "lwgan": ("Liquid Warping GAN", [
        {"metric": "SSIM, held-out self-imitation, {group}", "key": "trained.ssim",
         "baseline_key": "untrained.ssim", "baseline": "untrained", "better": "higher", "ratio": None},
        {"metric": "masked L1, held-out self-imitation, {group}", "key": "trained.masked_l1",
         "baseline_key": "untrained.masked_l1", "baseline": "untrained", "better": "lower", "ratio": None},
        {"metric": "masked L1, held-out self-imitation, {group}", "key": "trained.masked_l1",
         "baseline_key": "paste.masked_l1", "baseline": "warped source pasted on the background",
         "better": "lower", "ratio": None,
         "note": "the demo's flow is exact (our renderer), so pasting is near an oracle where visible"},
    ]),
}

SEG_IOU = "mean mask IoU of matched pairs"
SEG_WHOLE_RECALL = "share of whole, unoccluded truth cars found (recall)"
SEG_ACCEPTED = "accepted cut-outs"
STYLE_SECTION = "alpha disagreement (test)"


def _json(path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read evaluation summary: {exc}") from None


def _value(summary: dict, key: str, path) -> float:
    """summary[key] as a float (None: nan); a dotted key ("trained.ssim") reads nested mappings."""
    node = summary
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise InputError(path, "evaluation summary lacks a value", key=key)
        node = node[part]
    return math.nan if node is None else float(node)


def _row(stage, metric, trained, baseline_text, baseline_values, target_text, met, note=""):
    stats = summarize(trained)
    base = summarize(baseline_values)["mean"] if baseline_values is not None else math.nan
    return {"stage": stage, "metric": metric, "replicates": stats["n"],
            "trained_mean": stats["mean"], "trained_std": stats["std"],
            "trained_ci_low": stats["ci_low"], "trained_ci_high": stats["ci_high"],
            "baseline": baseline_text, "baseline_mean": base, "target": target_text,
            "met": met(stats["mean"], base) if not math.isnan(stats["mean"]) else None, "note": note}


def shape_pose_rows(files: list[str], variants: list[str], targets: dict) -> list[dict]:
    """Rows of the original variant on the original test split, against the untrained row."""
    values: dict[str, dict[str, list[float]]] = {"original": {}, "untrained": {}}
    threshold = None
    for path, variant in zip(files, variants, strict=True):
        summary = _json(path)
        threshold = summary.get("accuracy_threshold_deg", threshold)
        for key in ("accuracy", "median_error_deg", "chamfer"):
            values[variant].setdefault(key, []).append(_value(summary, key, path))
    trained, untrained = values["original"], values["untrained"]
    at = f"{threshold:g} deg" if threshold is not None else "threshold"
    ratio = float(targets["chamfer_ratio"])
    return [
        _row("shape and pose", f"pose accuracy at {at}", trained.get("accuracy", []),
             "untrained", untrained.get("accuracy"), f">= {targets['accuracy']:g}",
             lambda m, b: bool(m >= targets["accuracy"])),
        _row("shape and pose", "median pose error (deg)", trained.get("median_error_deg", []),
             "untrained", untrained.get("median_error_deg"), f"<= {targets['median_error_deg']:g}",
             lambda m, b: bool(m <= targets["median_error_deg"])),
        _row("shape and pose", "Chamfer x100", trained.get("chamfer", []), "untrained",
             untrained.get("chamfer"), f"<= {ratio:g} x untrained",
             lambda m, b: bool(m <= ratio * b) if not math.isnan(b) else None),
    ]


def neural_parts_rows(files: list[str], counts: list[int], weights: list[str], targets: dict) -> list[dict]:
    """Per number of primitives: IoU (target) and Chamfer-L1 (below the untrained model's)."""
    values: dict[tuple[int, str], dict[str, list[float]]] = {}
    for path, n, kind in zip(files, counts, weights, strict=True):
        summary = _json(path)
        slot = values.setdefault((int(n), kind), {})
        for key in ("iou", "chamfer_l1"):
            slot.setdefault(key, []).append(_value(summary, key, path))
    rows = []
    for n in sorted({n for n, _ in values}):
        trained, untrained = values.get((n, "trained"), {}), values.get((n, "untrained"), {})
        rows.append(_row("Neural Parts", f"IoU, {n} primitives", trained.get("iou", []), "untrained",
                         untrained.get("iou"), f">= {targets['iou']:g}",
                         lambda m, b: bool(m >= targets["iou"])))
        rows.append(_row("Neural Parts", f"Chamfer-L1 (m), {n} primitives", trained.get("chamfer_l1", []),
                         "untrained", untrained.get("chamfer_l1"), "< untrained",
                         lambda m, b: bool(m < b) if not math.isnan(b) else None))
    return rows


def _metric(table: pd.DataFrame, name: str, path) -> float:
    hits = table[table["metric"] == name]
    if hits.empty:
        raise InputError(path, f"segmentation quality table lacks the row {name!r}")
    return float(hits["value"].iloc[0])


def segmentation_rows(files: list[str], targets: dict) -> list[dict]:
    """Mask IoU and whole-car recall against their targets; accepted cut-outs' spread."""
    ious, recalls, accepted = [], [], []
    for path in files:
        table = read_table(path, "segmentation quality table", ["metric", "value"])
        ious.append(_metric(table, SEG_IOU, path))
        recalls.append(_metric(table, SEG_WHOLE_RECALL, path))
        accepted.append(_metric(table, SEG_ACCEPTED, path))
    spread = (max(accepted) - min(accepted)) / np.mean(accepted) if accepted and np.mean(accepted) else math.nan
    limit = float(targets["cutout_spread"])
    spread_row = _row("segmenter", "accepted cut-outs: (max - min) / mean over replicates",
                      [spread] if len(accepted) > 1 else [], "", None, f"<= {limit:g}",
                      lambda m, b: bool(m <= limit),
                      note="accepted per replicate: " + ", ".join(f"{a:g}" for a in accepted))
    spread_row["replicates"] = len(accepted)
    if len(accepted) < 2:
        spread_row["note"] += "; one replicate: no spread"
    return [
        _row("segmenter", "mean mask IoU of matched pairs", ious, "", None,
             f">= {targets['matched_iou']:g}", lambda m, b: bool(m >= targets["matched_iou"]),
             note="matched at mask IoU >= 0.5; an untrained detector finds nothing to match"),
        _row("segmenter", "recall of whole, unoccluded cars", recalls, "", None,
             f">= {targets['whole_recall']:g}", lambda m, b: bool(m >= targets["whole_recall"])),
        spread_row,
    ]


def _style_value(table: pd.DataFrame, section: str, name: str, path) -> float:
    hits = table[(table["section"] == section) & (table["name"] == name)]
    if hits.empty:
        raise InputError(path, f"style table lacks the row {section!r} / {name!r}")
    return float(hits["value"].iloc[0])


def style_rows(files: list[str], experiment: str, targets: dict) -> list[dict]:
    """Test alpha disagreement of one experiment against its target and the untrained generator's."""
    values, untrained = [], []
    for path in files:
        table = read_table(path, "style-transfer table", ["section", "name", "value"])
        values.append(_style_value(table, STYLE_SECTION, "mean", path))
        hits = table[(table["section"] == STYLE_SECTION) & (table["name"] == "untrained mean")]
        if not hits.empty:
            untrained.append(float(hits["value"].iloc[0]))
    limit = float(targets["alpha_disagreement"])
    return [_row("style transfer", f"alpha disagreement on the test renders ({experiment})", values,
                 "untrained G" if untrained else "", untrained or None, f"<= {limit:g}",
                 lambda m, b: bool(m <= limit),
                 note="share of pixels whose Alpha differs between a render and its stylized copy")]


def summary_rows(stage: str, files: list[str], groups: list[str], specs: list[dict]) -> list[dict]:
    """Rows from evaluation summaries (JSON) that hold the trained value and a baseline's side by side.

    files[i] is one replicate of group groups[i] (a variant, an experiment, a test list). Each spec
    gives one row per group: {"metric": label (may hold "{group}"), "key": the trained value's key,
    "baseline_key": the baseline's key in the same file, "baseline": its label, "better": "lower"
    or "higher", and "ratio": the target as a multiple of the baseline (None: beat it)}. Met: the
    trained mean is at most (lower) or at least (higher) ratio x the baseline mean.
    """
    values: dict[str, dict[str, list[float]]] = {}
    for path, group in zip(files, groups, strict=True):
        summary = _json(path)
        slot = values.setdefault(group, {})
        keys = dict.fromkeys(k for spec in specs for k in (spec["key"], spec["baseline_key"]))
        for key in keys:
            slot.setdefault(key, []).append(_value(summary, key, path))
    rows = []
    for group, slot in values.items():
        for spec in specs:
            lower = spec["better"] == "lower"
            ratio = spec.get("ratio")
            factor = 1.0 if ratio is None else float(ratio)
            if ratio is None:
                target = f"{'<' if lower else '>'} {spec['baseline']}"
            else:
                target = f"{'<=' if lower else '>='} {factor:g} x {spec['baseline']}"

            def met(m, b, lower=lower, factor=factor, strict=ratio is None):
                if math.isnan(b):
                    return None
                if strict:
                    return bool(m < b) if lower else bool(m > b)
                return bool(m <= factor * b) if lower else bool(m >= factor * b)

            rows.append(_row(stage, spec["metric"].format(group=group), slot[spec["key"]],
                             spec["baseline"], slot[spec["baseline_key"]], target, met,
                             note=spec.get("note", "")))
    return rows


def _format(value: float) -> str:
    """Three decimals, or three significant digits for small values (PMD is ~1e-3 m^2)."""
    return "{:.3g}" if value and not math.isnan(value) and abs(value) < 0.01 else "{:.3f}"


def learning_markdown(table: pd.DataFrame, title: str, scale: str) -> str:
    shown = pd.DataFrame({
        "stage": table["stage"], "metric": table["metric"], "n": table["replicates"],
        "trained": [cell(r.trained_mean, r.trained_std, r.trained_ci_low, r.trained_ci_high,
                         _format(r.trained_mean)) for r in table.itertuples()],
        "baseline": [f"{r.baseline} {_format(r.baseline_mean).format(r.baseline_mean)}"
                     if not math.isnan(r.baseline_mean) else "" for r in table.itertuples()],
        "target": table["target"],
        "met": ["yes" if m is True else "no" if m is False else "" for m in table["met"]],
        "note": table["note"],
    })
    intro = (f"{scale}. Trained: {SPREAD_NOTE}. Baseline (the mean over replicates): 'untrained' is "
             "the same networks at their step-0 weights; the others are answers that need no learning. Met: whether the trained mean meets the target; the "
             "targets are set for workflow/configs/learning.yaml.")
    return markdown(shown, title=title, intro=intro)


def read_curves(files: list[str], column: str) -> list[pd.DataFrame]:
    """(step, value) of one validation column of each losses.csv, rows without it dropped."""
    curves = []
    for path in files:
        frame = read_table(path, "loss history", ["step"])
        if column not in frame:
            raise InputError(path, f"loss history lacks the validation column {column!r}")
        curves.append(frame[["step", column]].dropna().rename(columns={column: "value"}))
    return curves


def plot_curves(stage: str, files: list[str], groups: list[str], replicates: list[int], out) -> None:
    """One stage's validation metric against the step: a colour per group, replicates overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    column, label = CURVES[stage]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    order = list(dict.fromkeys(groups))
    styles = ["-", "--", ":", "-."]
    for curve, group, r in zip(read_curves(files, column), groups, replicates, strict=True):
        ax.plot(curve["step"], curve["value"], styles[r % len(styles)], marker="o", markersize=3,
                color=colours[order.index(group) % len(colours)], label=f"{group}, replicate {r}")
    ax.set_xlabel("training step")
    ax.set_ylabel(column)
    ax.set_title(f"{stage.replace('_', ' ')}: {label}", fontsize=10)
    ax.grid(alpha=0.3)
    if files:
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_file(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def tabulate_learning(*, shape_pose: list[str], shape_pose_variants: list[str],
                      neural_parts: list[str], neural_parts_counts: list[int],
                      neural_parts_weights: list[str], segmentation: list[str], style: list[str],
                      style_experiment: str, curves: dict[str, dict], targets: dict,
                      out_csv: str, out_md: str, out_curves: dict[str, str], scale: str,
                      summaries: dict[str, dict] | None = None) -> pd.DataFrame:
    """The rule's work: the learning table (CSV, Markdown) and one curve PNG per stage.

    curves: stage -> {"files": losses.csv paths, "groups": label per file, "replicates": r per file}.
    summaries: stage of SUMMARY_SPECS -> {"files": evaluation JSONs, "groups": the variant or
    experiment of each}. Stages with no files (no trained segmenter, the style experiment not
    configured) are left out.
    """
    rows = []
    if shape_pose:
        rows += shape_pose_rows(shape_pose, shape_pose_variants, targets["shape_pose"])
    if neural_parts:
        rows += neural_parts_rows(neural_parts, neural_parts_counts, neural_parts_weights,
                                  targets["neural_parts"])
    if segmentation:
        rows += segmentation_rows(segmentation, targets["segmentation"])
    if style:
        rows += style_rows(style, style_experiment, targets["style_transfer"])
    for stage, spec in (summaries or {}).items():
        if spec["files"]:
            name, specs = SUMMARY_SPECS[stage]
            rows += summary_rows(name, list(spec["files"]), list(spec["groups"]), specs)
    table = pd.DataFrame(rows, columns=COLUMNS)
    write_csv(table, out_csv, float_format="%.6g")
    write_markdown(out_md, learning_markdown(table, "Does each trained stage learn?", scale))
    for stage, out in out_curves.items():
        spec = curves.get(stage, {"files": [], "groups": [], "replicates": []})
        plot_curves(stage, list(spec["files"]), list(spec["groups"]), list(spec["replicates"]), out)
    return table
