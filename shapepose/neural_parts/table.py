"""The Neural Parts table in the layout of seed 003's results: one column per number of primitives.

Input: one eval.json per number of primitives P, replicate r and weights (trained, or the same
architecture at its step-0 weights: "untrained"). Outputs:

- the summary CSV: one row per (source, n_primitives, weights), ours trained and untrained with
  the mean, std and 95 % t interval over the replicates (`shapepose.replicates.aggregate`'s
  columns), then the seed's reproduction and the paper as seed 003 quotes them (one number each);
- the replicates CSV: one row per eval file, from which every cell can be recomputed;
- the Markdown: IoU and Chamfer-L1 rows x one column per P, then the comparisons;
- the comparisons CSV: per P, trained against untrained, and each larger P against the smallest
  (trained), for both metrics, paired by replicate (replicate r shares its seed across P and
  between trained and untrained), with the interval of the difference and its verdict.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from shapepose.errors import InputError
from shapepose.replicates import SPREAD_NOTE, aggregate, difference, stat_cell, verdict
from shapepose.tables import markdown, write_csv, write_markdown

# Seed 003 "Experimental result": first its own reproduction, then "the result of original paper".
SEED_REPRODUCTION = {
    "iou": {2: 0.640, 5: 0.654, 8: 0.645, 10: 0.643},
    "chamfer_l1": {2: 0.109, 5: 0.092, 8: 0.089, 10: 0.089},
}
PAPER = {
    "iou": {2: 0.675, 5: 0.673, 8: 0.676, 10: 0.678},
    "chamfer_l1": {2: 0.101, 5: 0.097, 8: 0.090, 10: 0.095},
}
METRICS = (("iou", "IoU"), ("chamfer_l1", "Chamfer-L1"))
METRIC_KEYS = tuple(key for key, _ in METRICS)
TRAINED, UNTRAINED = "trained", "untrained"
OURS, REPRODUCTION, PAPER_SOURCE = "ours", "seed 003 reproduction", "Neural Parts paper"
QUOTED = ((REPRODUCTION, SEED_REPRODUCTION, "quoted"), (PAPER_SOURCE, PAPER, "quoted by seed 003"))
# what every eval.json must hold (eval_neural_parts writes them)
REQUIRED = ("n_primitives", "untrained", "replicate", "iou", "chamfer_l1", "n_points",
            "n_test_frames", "training")
REQUIRED_TRAINING = ("n_train_frames", "steps")
REPLICATE_COLUMNS = ["n_primitives", "weights", "replicate", "iou", "chamfer_l1", "n_test_frames"]
COMPARISON_COLUMNS = ["comparison", "metric", "a", "b", "test", "n", "difference", "ci_low",
                      "ci_high", "separated", "verdict"]


def read_evaluation(path) -> dict:
    """One eval.json; InputError naming the file (and the key) when it is unreadable or lacks one."""
    try:
        evaluation = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(path, "Neural Parts evaluation does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read Neural Parts evaluation: {exc}") from None
    if not isinstance(evaluation, dict):
        raise InputError(path, "a Neural Parts evaluation is a JSON object")
    for key in REQUIRED:
        if key not in evaluation:
            raise InputError(path, "Neural Parts evaluation lacks a key (written by an older "
                                   "eval_neural_parts?)", key=key)
    training = evaluation["training"]
    for key in REQUIRED_TRAINING:
        if not isinstance(training, dict) or key not in training:
            raise InputError(path, "Neural Parts evaluation lacks a key", key=f"training.{key}")
    if not isinstance(evaluation["untrained"], bool):
        raise InputError(path, f"'untrained' is true or false, got {evaluation['untrained']!r}",
                         key="untrained")
    replicate = evaluation["replicate"]
    if not isinstance(replicate, int) or isinstance(replicate, bool) or replicate < 0:
        raise InputError(path, f"'replicate' is a non-negative integer, got {replicate!r}",
                         key="replicate")
    return evaluation


def replicate_table(evaluations: list[dict], paths: list | None = None) -> pd.DataFrame:
    """One row per evaluation (REPLICATE_COLUMNS), sorted by P, weights (trained first), replicate.

    InputError naming the second file when two evaluations are the same (P, weights, replicate).
    """
    paths = list(paths) if paths is not None else [f"evaluation {i}" for i in range(len(evaluations))]
    rows, seen = [], {}
    for path, e in zip(paths, evaluations, strict=True):
        weights = UNTRAINED if e["untrained"] else TRAINED
        key = (int(e["n_primitives"]), weights, int(e["replicate"]))
        if key in seen:
            raise InputError(path, f"the same P{key[0]} {weights} replicate {key[2]} as {seen[key]}")
        seen[key] = path
        rows.append({"n_primitives": key[0], "weights": weights, "replicate": key[2],
                     "iou": float(e["iou"]), "chamfer_l1": float(e["chamfer_l1"]),
                     "n_test_frames": int(e["n_test_frames"])})
    table = pd.DataFrame(rows, columns=REPLICATE_COLUMNS)
    order = table["weights"].map({TRAINED: 0, UNTRAINED: 1})
    return (table.assign(_order=order).sort_values(["n_primitives", "_order", "replicate"])
            .drop(columns="_order").reset_index(drop=True))


def our_scale(evaluations: list[dict], dataset: str) -> str:
    """How big our run was, e.g. "dfaust_demo: 80 train frames, 300 steps; 22 test frames"."""
    first = next((e for e in evaluations if not e["untrained"]), evaluations[0])
    return (f"{dataset}: {first['training']['n_train_frames']} train frames, "
            f"{first['training']['steps']} steps; {first['n_test_frames']} test frames")


def summary_table(evaluations: list[dict], dataset: str, paths: list | None = None) -> pd.DataFrame:
    """One row per (source, n_primitives, weights): ours from `aggregate` over the replicates,
    then the quoted rows (their mean only; n and replicates empty: the seed gives one number)."""
    per_replicate = replicate_table(evaluations, paths)
    ours = aggregate(per_replicate.assign(source=OURS), ["source", "n_primitives", "weights"],
                     METRIC_KEYS)
    n_points = "/".join(map(str, sorted({e["n_points"] for e in evaluations})))
    ours["note"] = [f"{our_scale(evaluations, dataset)}; Chamfer-L1 in metres, {n_points} "
                    "predicted vs as many ground-truth surface points" if weights == TRAINED
                    else "the same seeds' step-0 weights" for weights in ours["weights"]]
    quoted = []
    for source, numbers, note in QUOTED:
        for n in sorted(numbers["iou"]):
            row = {"source": source, "n_primitives": n, "weights": TRAINED, "note": note}
            for key in METRIC_KEYS:
                row.update({f"{key}_mean": numbers[key].get(n, math.nan), f"{key}_std": math.nan,
                            f"{key}_ci_low": math.nan, f"{key}_ci_high": math.nan})
            quoted.append(row)
    table = pd.concat([ours, pd.DataFrame(quoted)], ignore_index=True)[list(ours.columns)]
    for column in ["replicates", *[f"{key}_n" for key in METRIC_KEYS]]:
        table[column] = table[column].astype("Int64")  # empty for the quoted rows
    return table


def _fmt(value: float) -> str:
    """3 decimals, 4 below 0.1 (Chamfer-L1 in metres is small)."""
    return "{:.4f}" if abs(value) < 0.1 else "{:.3f}"


def source_label(source: str, weights: str) -> str:
    return f"{source}, {weights}" if source == OURS else source


def wide_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Seed 003's layout: rows (metric, source), one column per P of cells "mean ± std [lo, hi]"."""
    counts = sorted(summary["n_primitives"].unique().tolist())
    labels = list(dict.fromkeys(source_label(s, w) for s, w in zip(summary["source"], summary["weights"])))
    notes = {source_label(r["source"], r["weights"]): r["note"] for _, r in summary.iterrows()}
    rows = []
    for key, name in METRICS:
        for label in labels:
            row = {"metric": name, "source": label, **{n: "" for n in counts}}
            for _, r in summary.iterrows():
                if source_label(r["source"], r["weights"]) == label and not pd.isna(r[f"{key}_mean"]):
                    row[int(r["n_primitives"])] = stat_cell(r, key, _fmt(r[f"{key}_mean"]))
            row["note"] = notes[label]
            rows.append(row)
    return pd.DataFrame(rows, columns=["metric", "source", *counts, "note"])


def _paired(per_replicate: pd.DataFrame, metric: str, a: tuple[int, str], b: tuple[int, str]):
    """The metric of (P, weights) a and b over the union of their replicates (NaN where missing)."""
    def values(n, weights):
        rows = per_replicate[(per_replicate["n_primitives"] == n) & (per_replicate["weights"] == weights)]
        return dict(zip(rows["replicate"], rows[metric]))

    va, vb = values(*a), values(*b)
    replicates = sorted(set(va) | set(vb))
    return ([va.get(r, math.nan) for r in replicates], [vb.get(r, math.nan) for r in replicates])


def comparison_table(per_replicate: pd.DataFrame) -> pd.DataFrame:
    """COMPARISON_COLUMNS: difference a - b, its 95 % interval (paired by replicate), verdict.

    Per P with both weights: trained - untrained. Each larger P (trained) - the smallest P.
    """
    present = set(zip(per_replicate["n_primitives"], per_replicate["weights"]))
    counts = sorted({n for n, w in present if w == TRAINED})
    pairs = [("trained vs untrained", (n, TRAINED), (n, UNTRAINED))
             for n in sorted({n for n, _ in present}) if {(n, TRAINED), (n, UNTRAINED)} <= present]
    pairs += [(f"P{n} vs P{counts[0]}", (n, TRAINED), (counts[0], TRAINED)) for n in counts[1:]]
    rows = []
    for comparison, a, b in pairs:
        for key, name in METRICS:
            result = difference(*_paired(per_replicate, key, a, b), paired=True)
            rows.append({"comparison": comparison, "metric": name, "a": f"P{a[0]} {a[1]}",
                         "b": f"P{b[0]} {b[1]}", "test": result["test"], "n": result["n"],
                         "difference": result["difference"], "ci_low": result["ci_low"],
                         "ci_high": result["ci_high"], "separated": result["separated"],
                         "verdict": verdict(result["separated"])})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def difference_cell(value: float, low: float, high: float) -> str:
    """"difference [low, high]", the difference alone without an interval, empty without either."""
    if math.isnan(value):
        return ""
    fmt = _fmt(value)
    text = fmt.format(value)
    return text if math.isnan(low) else f"{text} [{fmt.format(low)}, {fmt.format(high)}]"


def comparison_markdown(comparisons: pd.DataFrame) -> str:
    """The comparisons as a Markdown block under a "Comparisons" heading."""
    shown = pd.DataFrame({
        "metric": comparisons["metric"],
        "a - b": [f"{a} - {b}" for a, b in zip(comparisons["a"], comparisons["b"])],
        "difference [95 % interval]": [
            difference_cell(d, lo, hi) for d, lo, hi in
            zip(comparisons["difference"], comparisons["ci_low"], comparisons["ci_high"])],
        "replicates": [f"{n} ({test})" for n, test in zip(comparisons["n"], comparisons["test"])],
        "verdict": comparisons["verdict"],
    }, dtype=object)
    intro = ("Differences a - b of the means over the replicates, with the 95 % Student-t interval "
             "of the per-replicate differences (paired by replicate: replicate r has the same seed "
             "for every number of primitives and for its trained and untrained weights); "
             "\"separated\" when the interval excludes zero.")
    return markdown(shown, title="Comparisons", level=2, intro=intro)


def tabulate_neural_parts(evaluation_files: list[str], csv_out: str, md_out: str,
                          replicates_csv: str, comparisons_csv: str, dataset: str) -> pd.DataFrame:
    """Read every eval.json (each P x replicate x trained/untrained) and write the summary CSV,
    the per-replicate CSV, the comparisons CSV and the Markdown. Returns the summary table."""
    if not evaluation_files:
        raise ValueError("tabulate_neural_parts needs at least one eval.json")
    paths = [str(p) for p in evaluation_files]
    evaluations = [read_evaluation(p) for p in paths]
    per_replicate = replicate_table(evaluations, paths)
    summary = summary_table(evaluations, dataset, paths)
    comparisons = comparison_table(per_replicate)
    wide = wide_table(summary)
    headers = {"metric": "metric", "source": "source",
               **{c: f"{c} primitives" for c in wide.columns[2:-1]}, "note": "note"}
    n_replicates = per_replicate.groupby(["n_primitives", "weights"])["replicate"].nunique()
    replicates = "/".join(map(str, sorted(set(n_replicates.tolist()))))
    intro = (f"Neural Parts on {dataset} (seed 003): IoU and Chamfer-L1 per number of primitives\n\n"
             f"Ours: {replicates} replicate(s) per cell, trained and at the untrained (step-0) "
             f"weights of the same seeds; cells are {SPREAD_NOTE}. The seed's reproduction and "
             "the paper are quoted (one number each).")
    text = markdown(wide, headers=headers, intro=intro)
    blocks = [text, comparison_markdown(comparisons)] if len(comparisons) else [text]
    write_csv(summary, csv_out, float_format="%.6g")
    write_csv(per_replicate, replicates_csv, float_format="%.8g")
    write_csv(comparisons, comparisons_csv, float_format="%.6g")
    write_markdown(md_out, *blocks)
    return summary
