"""The segmenter's replicates side by side: segmentation quality and accepted cut-outs.

Replicate r of the segmenter gives its own segments, filter decisions and cut-outs, and
`tabulate_segments` writes its quality table (metric, value) and filter funnel (step, count). This
module reads those per-replicate tables and writes, per quality metric, the spread over the
replicates (`shapepose.replicates.aggregate`: n, mean, sample std, 95 % t interval) beside each
replicate's own value, and how much the number of accepted cut-outs varies between replicates.

Issue 15's targets for the segmenter are shown beside the rows they concern: mean mask IoU of
matched pairs >= 0.85, recall of whole, unoccluded truth cars >= 0.8 (checked on the mean over
replicates), and accepted cut-outs varying by at most 10 % across replicates, measured as
(max - min) / mean. Real photos have no true masks: their quality table holds one text row
("ground truth", "none: ..."), which is passed through as text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from shapepose.errors import InputError
from shapepose.images.tables import MEAN_IOU, WHOLE_RECALL
from shapepose.replicates import SPREAD_NOTE, aggregate, stat_cell, summarize
from shapepose.tables import markdown, read_table, write_csv, write_markdown

ACCEPTED_STEP = "after 3.2 filters"  # the funnel's step that counts the accepted cut-outs


def metric_targets(targets: dict) -> dict[str, tuple[float, str]]:
    """config learning.targets.segmentation -> metric row -> (the lowest acceptable mean, its text)."""
    return {MEAN_IOU: (float(targets["matched_iou"]), f">= {targets['matched_iou']:g}"),
            WHOLE_RECALL: (float(targets["whole_recall"]), f">= {targets['whole_recall']:g}")}


def replicate_column(replicate: int) -> str:
    return f"r{int(replicate)}"


def _check_replicates(replicates: Sequence[int], *files: Sequence) -> list[int]:
    replicates = [int(r) for r in replicates]
    for named in files:
        if len(named) != len(replicates):
            raise ValueError(f"one file per replicate: {len(named)} files for replicates {replicates}")
    if len(set(replicates)) != len(replicates):
        raise ValueError(f"replicates must be distinct, got {replicates}")
    if not replicates:
        raise ValueError("no replicates given")
    return replicates


def _numeric(value) -> float | None:
    """The value as a float, or None for text (the real photos' "none: ..." row)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_quality(paths: Sequence[str | Path], replicates: Sequence[int]) -> pd.DataFrame:
    """Long table (replicate, metric, value, text): value NaN and `text` set for a text cell."""
    rows = []
    for path, replicate in zip(paths, replicates):
        table = read_table(path, "segmentation quality CSV", ["metric", "value"])
        for metric, value in zip(table["metric"].astype(str), table["value"]):
            number = _numeric(value)
            rows.append({"replicate": replicate, "metric": metric,
                         "value": math.nan if number is None else number,
                         "text": None if number is not None else str(value)})
    return pd.DataFrame(rows, columns=["replicate", "metric", "value", "text"])


def read_funnels(paths: Sequence[str | Path], replicates: Sequence[int]) -> pd.DataFrame:
    """Long table (replicate, step, count) of every replicate's filter funnel."""
    frames = []
    for path, replicate in zip(paths, replicates):
        table = read_table(path, "segment funnel CSV", ["step", "count"])
        if ACCEPTED_STEP not in set(table["step"].astype(str)):
            raise InputError(path, f"segment funnel CSV has no {ACCEPTED_STEP!r} step", key="step")
        counts = pd.to_numeric(table["count"], errors="coerce")
        if counts.isna().any():
            row = int(np.flatnonzero(counts.isna().to_numpy())[0])
            raise InputError(path, f"count must be a number, got {table['count'].iloc[row]!r}",
                             key="count", frame=row)
        frames.append(pd.DataFrame({"replicate": replicate, "step": table["step"].astype(str),
                                    "count": counts.astype(np.int64)}))
    return pd.concat(frames, ignore_index=True)


def _with_replicate_columns(summary: pd.DataFrame, long: pd.DataFrame, key: str, value: str,
                            replicates: list[int], text: str | None = None) -> pd.DataFrame:
    """`summary` (one row per `key`) with one column per replicate holding its own value."""
    for replicate in replicates:
        own = long[long["replicate"] == replicate].drop_duplicates(key).set_index(key)
        values = own[value].astype(object)
        if text is not None:
            values = values.where(own[text].isna(), own[text])
        summary[replicate_column(replicate)] = summary[key].map(values)
    return summary


def quality_summary(quality: pd.DataFrame, replicates: list[int], targets: dict) -> pd.DataFrame:
    """Per metric (first-seen order): replicates, value_<stat> (aggregate's layout), target,
    target_met (by the mean; empty without a target or a mean), then r<k>: each replicate's value."""
    TARGETS = metric_targets(targets)
    summary = aggregate(quality, ["metric"], ["value"])
    summary["target"] = summary["metric"].map(lambda m: TARGETS[m][1] if m in TARGETS else None)
    # checked on the mean; a mean at the target up to rounding (0.8000000000000002) meets it
    summary["target_met"] = [
        (None if math.isnan(mean) else bool(mean >= TARGETS[m][0] - 1e-9)) if m in TARGETS else None
        for m, mean in zip(summary["metric"], summary["value_mean"])]
    return _with_replicate_columns(summary, quality, "metric", "value", replicates, text="text")


def accepted_spread(funnels: pd.DataFrame, max_spread: float) -> dict:
    """Accepted cut-outs over the replicates: n, mean, min, max, (max - min) / mean and the target.

    `spread` and `within_target` are None with one replicate (no spread to measure).
    """
    counts = funnels.loc[funnels["step"] == ACCEPTED_STEP, "count"].to_numpy(dtype=np.float64)
    stats = summarize(counts)
    low, high = float(counts.min()), float(counts.max())
    spread = None
    if len(counts) > 1:
        spread = (high - low) / stats["mean"] if stats["mean"] > 0 else (0.0 if high == low else math.inf)
    return {**stats, "min": low, "max": high, "spread": spread, "target": float(max_spread),
            "within_target": None if spread is None else bool(spread <= max_spread)}


def accepted_line(spread: dict) -> str:
    """One sentence on the accepted cut-outs' spread against the 10 % target."""
    target = f"{spread['target'] * 100:.0f} %"
    if spread["spread"] is None:
        return (f"Accepted cut-outs: {spread['mean']:.0f} from one replicate; no spread across "
                f"replicates to hold against the {target} target (issue 15).")
    verdict = "within" if spread["within_target"] else "outside"
    return (f"Accepted cut-outs over {spread['n']} replicates: min {spread['min']:.0f}, max "
            f"{spread['max']:.0f}, mean {spread['mean']:.1f}; spread (max - min) / mean = "
            f"{spread['spread'] * 100:.1f} %, {verdict} the {target} target (issue 15).")


def _metric_format(values: pd.Series) -> str:
    finite = values.dropna()
    if len(finite) and (finite == finite.round()).all() and (finite.abs() >= 1).any():
        return "{:.1f}"  # counts
    return "{:.3f}"


def summary_markdown(quality: pd.DataFrame, long_quality: pd.DataFrame, funnel: pd.DataFrame,
                     spread: dict, replicates: list[int]) -> str:
    """The quality table (stat_cell over replicates, each replicate's value), the funnel, the line."""
    n = len(replicates)
    one = n == 1
    note = SPREAD_NOTE + (". One replicate here: the mean alone, no spread." if one else ".")
    columns = [replicate_column(r) for r in replicates]
    cells = []
    for row in quality.to_dict("records"):
        fmt = _metric_format(long_quality.loc[long_quality["metric"] == row["metric"], "value"])
        texts = [row[c] for c in columns]
        if all(isinstance(t, str) for t in texts) and len(set(texts)) == 1:
            shown = texts[0]  # real photos: "none: these photos have no true masks"
        else:
            shown = stat_cell(row, "value", fmt)
        cells.append({"metric": row["metric"], "value": shown, "target": row["target"],
                      "mean meets target": {True: "yes", False: "no"}.get(row["target_met"]),
                      **{c: _replicate_cell(row[c], fmt) for c in columns}})
    table = pd.DataFrame(cells, columns=["metric", "value", "target", "mean meets target", *columns])
    targets = table["target"].notna().any()
    if not targets:
        table = table.drop(columns=["target", "mean meets target"])
    funnel_cells = pd.DataFrame(
        [{"step": row["step"], "count": stat_cell(row, "count", "{:.1f}"),
          **{c: _replicate_cell(row[c], "{:.0f}") for c in columns}} for row in funnel.to_dict("records")],
        columns=["step", "count", *columns])
    blocks = [
        markdown(table, title=f"Segmentation and filters against the true masks, {n} replicate"
                              f"{'' if one else 's'} of the segmenter",
                 intro=f"value: {note} Columns {', '.join(columns)}: each replicate's own value. "
                       + (" Targets (issue 15) are checked on the mean." if targets else "")),
        markdown(funnel_cells, title="Segmentations through the filters, per replicate", level=3,
                 intro=f"count: {note}"),
        accepted_line(spread) + "\n",
    ]
    return "\n".join(blocks)


def _replicate_cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        return value
    return fmt.format(float(value))


def summarize_segments(*, quality: Sequence[str | Path], funnel: Sequence[str | Path],
                       replicates: Sequence[int], quality_csv: str | Path, quality_md: str | Path,
                       funnel_csv: str | Path, targets: dict) -> dict:
    """Write the quality summary (CSV, Markdown) and the funnel summary (CSV) over replicates.

    quality, funnel: per replicate, tabulate_segments' quality_csv and funnel_csv, parallel to
    `replicates`. targets: config learning.targets.segmentation (matched_iou, whole_recall,
    cutout_spread). Returns {"quality", "funnel", "accepted"} (the tables and accepted_spread()).
    """
    replicates = _check_replicates(replicates, quality, funnel)
    long_quality = read_quality(quality, replicates)
    funnels = read_funnels(funnel, replicates)
    summary = quality_summary(long_quality, replicates, targets)
    funnel_summary = _with_replicate_columns(aggregate(funnels, ["step"], ["count"]), funnels,
                                             "step", "count", replicates)
    spread = accepted_spread(funnels, float(targets["cutout_spread"]))
    text = summary_markdown(summary, long_quality, funnel_summary, spread, replicates)
    write_csv(summary, quality_csv)
    write_csv(funnel_summary, funnel_csv)
    write_markdown(quality_md, text)
    return {"quality": summary, "funnel": funnel_summary, "accepted": spread}

