"""The PMD table: every variant on the seen and unseen test poses, beside seed 000's numbers.

Input: one eval JSON per variant, test list (seen / unseen) and replicate (`eval_pose_transfer`).
Outputs:

- the summary CSV: one row per (source, variant, test): ours trained and at the step-0 weights
  (mean, std and 95 % t interval over the replicates, `shapepose.replicates.aggregate`), the two
  no-learning answers (the same triples for every variant, so one row per test), then the numbers
  seed 000 quotes (one number each);
- the replicates CSV: one row per eval file and method, from which every cell can be recomputed;
- the comparisons CSV: per variant and test, trained against each no-learning answer and against
  the step-0 weights, and each variant against `original`, paired by replicate;
- the Markdown: rows (source, variant) x columns PMD seen / unseen and per-vertex RMS (mm).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from shapepose.errors import InputError
from shapepose.pose_transfer.metrics import vertex_rms_mm
from shapepose.replicates import SPREAD_NOTE, aggregate, difference, stat_cell, verdict
from shapepose.tables import markdown, write_csv, write_markdown

TESTS = ("seen", "unseen")
OURS = "ours"
BASELINES = {"identity_mesh": "identity mesh unchanged", "pose_mesh": "pose mesh itself"}
METHODS = ("trained", "untrained", *BASELINES)
# Seed 000 (the reproduction report), as it states them: (source, variant, test) -> PMD, note.
QUOTED = [
    ("paper (Wang et al.)", "maxpool", "seen", 1.1e-4, "the authors' max-pooling model, 200 epochs"),
    ("paper (Wang et al.)", "maxpool", "unseen", math.nan,
     "printed as '9.3' in seed 000 (presumably 9.3e-4); not shown as a number"),
    ("seed 000 reproduction", "original", "seen", 3.0e-4, "per-point model, 200 epochs"),
    ("seed 000 reproduction", "spadabin", "seen", 5.0e-4,
     "\"SPAdaBIN\": the reproduction's code used instance norm, so the same model as above"),
    ("seed 000 reproduction", "released maxpool", "seen", 7.0e-4,
     "the authors' released weights, scored by the reproduction (average)"),
    ("deformation transfer (quoted)", "13 control points", "seen", 7.7e-4, "as seed 000 quotes the paper"),
    ("deformation transfer (quoted)", "13 control points", "unseen", 6.7e-4, "as seed 000 quotes the paper"),
]
REQUIRED = ("variant", "test", "replicate", "n_pairs", "training",
            *[f"pmd_{m}" for m in METHODS])
REPLICATE_COLUMNS = ["variant", "test", "method", "replicate", "pmd", "rms_mm", "n_pairs"]
COMPARISON_COLUMNS = ["comparison", "test", "a", "b", "test_kind", "n", "difference", "ci_low",
                      "ci_high", "separated", "verdict"]


def read_evaluation(path) -> dict:
    """One eval JSON; InputError naming the file (and key) when unreadable or incomplete."""
    try:
        evaluation = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(path, "pose-transfer evaluation does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read pose-transfer evaluation: {exc}") from None
    if not isinstance(evaluation, dict):
        raise InputError(path, "a pose-transfer evaluation is a JSON object")
    for key in REQUIRED:
        if key not in evaluation:
            raise InputError(path, "pose-transfer evaluation lacks a key", key=key)
    if evaluation["test"] not in TESTS:
        raise InputError(path, f"test is one of {TESTS}, got {evaluation['test']!r}", key="test")
    return evaluation


def replicate_table(evaluations: list[dict], paths: list) -> pd.DataFrame:
    """REPLICATE_COLUMNS, one row per file and method; InputError on a repeated (variant, test,
    replicate) or on baselines that differ between variants (they must be the same triples)."""
    rows, seen, baselines = [], {}, {}
    for path, e in zip(paths, evaluations, strict=True):
        key = (e["variant"], e["test"], int(e["replicate"]))
        if key in seen:
            raise InputError(path, f"the same variant {key[0]}, test {key[1]}, replicate {key[2]} "
                                   f"as {seen[key]}")
        seen[key] = path
        for method in METHODS:
            value = float(e[f"pmd_{method}"])
            if method in BASELINES:
                first = baselines.setdefault((e["test"], method), (value, path))
                if not np.isclose(first[0], value, rtol=1e-6, atol=0):
                    raise InputError(path, f"{method} PMD {value:.6g} differs from {first[0]:.6g} "
                                           f"in {first[1]}: the evaluations scored other triples")
            rows.append({"variant": e["variant"], "test": e["test"], "method": method,
                         "replicate": key[2], "pmd": value, "rms_mm": vertex_rms_mm(value),
                         "n_pairs": int(e["n_pairs"])})
    return pd.DataFrame(rows, columns=REPLICATE_COLUMNS)


def summary_table(per_replicate: pd.DataFrame, variants: list[str], scale: str) -> pd.DataFrame:
    """One row per (source, variant, test): ours (trained, untrained per variant; the baselines
    once per test), then the quoted rows."""
    trained = per_replicate[per_replicate["method"].isin(["trained", "untrained"])]
    ours = aggregate(trained.assign(source=OURS), ["source", "variant", "method", "test"], ["pmd", "rms_mm"])
    base = per_replicate[per_replicate["method"].isin(list(BASELINES))]
    base = base[base["variant"] == base["variant"].iloc[0]] if len(base) else base
    base = aggregate(base.assign(source="no learning", variant=base["method"].map(BASELINES)),
                     ["source", "variant", "method", "test"], ["pmd", "rms_mm"])
    ours["note"] = [scale if m == "trained" else "the same seeds' step-0 weights" for m in ours["method"]]
    base["note"] = "the same test triples for every variant"
    quoted = pd.DataFrame([{"source": s, "variant": v, "method": "quoted", "test": t,
                            "pmd_mean": value, "rms_mm_mean": vertex_rms_mm(value)
                            if not math.isnan(value) else math.nan, "note": note}
                           for s, v, t, value, note in QUOTED])
    order = {v: i for i, v in enumerate(variants)}
    ours = ours.assign(_o=ours["variant"].map(order), _m=ours["method"].map({"trained": 0, "untrained": 1}))
    ours = ours.sort_values(["_m", "_o", "test"]).drop(columns=["_o", "_m"])
    table = pd.concat([ours, base, quoted], ignore_index=True)
    for column in ["replicates", "pmd_n", "rms_mm_n"]:
        table[column] = table[column].astype("Int64")
    return table


def row_label(source: str, method: str) -> str:
    return f"ours, {method}" if source == OURS else source


def wide_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows (source, variant); PMD seen / unseen and RMS seen / unseen as "mean ± std [ci]"."""
    rows = {}
    for _, r in summary.iterrows():
        key = (row_label(r["source"], r["method"]), r["variant"])
        row = rows.setdefault(key, {"source": key[0], "variant": key[1], "note": r["note"],
                                    **{f"{m} {t}": "" for m in ("PMD", "RMS mm") for t in TESTS}})
        if not pd.isna(r["pmd_mean"]):  # the mean alone where there is no spread (stat_cell)
            row[f"PMD {r['test']}"] = stat_cell(r, "pmd", "{:.2e}")
            row[f"RMS mm {r['test']}"] = stat_cell(r, "rms_mm", "{:.1f}")
        elif r["note"] and r["note"] not in row["note"]:
            row["note"] += "; " + r["note"]
    columns = ["source", "variant", *[f"{m} {t}" for m in ("PMD", "RMS mm") for t in TESTS], "note"]
    return pd.DataFrame(list(rows.values()), columns=columns)


def _values(per_replicate, variant, test, method):
    rows = per_replicate[(per_replicate["variant"] == variant) & (per_replicate["test"] == test)
                         & (per_replicate["method"] == method)]
    return dict(zip(rows["replicate"], rows["pmd"]))


def comparison_table(per_replicate: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    """Differences of PMD a - b (negative: a is better), paired by replicate."""
    pairs = []
    for test in TESTS:
        for v in variants:
            for method in ("pose_mesh", "identity_mesh", "untrained"):
                pairs.append((f"trained vs {method}", test, (v, "trained"), (v, method)))
        for v in variants:
            if v != "original" and "original" in variants:
                pairs.append((f"{v} vs original", test, (v, "trained"), ("original", "trained")))
    rows = []
    for comparison, test, a, b in pairs:
        va, vb = _values(per_replicate, a[0], test, a[1]), _values(per_replicate, b[0], test, b[1])
        if not va or not vb:
            continue
        replicates = sorted(set(va) | set(vb))
        result = difference([va.get(r, math.nan) for r in replicates],
                            [vb.get(r, math.nan) for r in replicates], paired=True)
        rows.append({"comparison": comparison, "test": test, "a": f"{a[0]} {a[1]}",
                     "b": f"{b[0]} {b[1]}", "test_kind": result["test"], "n": result["n"],
                     "difference": result["difference"], "ci_low": result["ci_low"],
                     "ci_high": result["ci_high"], "separated": result["separated"],
                     "verdict": verdict(result["separated"])})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _diff_cell(d, lo, hi) -> str:
    if math.isnan(d):
        return ""
    return f"{d:.2e}" if math.isnan(lo) else f"{d:.2e} [{lo:.2e}, {hi:.2e}]"


def comparison_markdown(comparisons: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "test poses": comparisons["test"],
        "a - b": [f"{a} - {b}" for a, b in zip(comparisons["a"], comparisons["b"])],
        "PMD difference [95 % interval]": [_diff_cell(d, lo, hi) for d, lo, hi in zip(
            comparisons["difference"], comparisons["ci_low"], comparisons["ci_high"])],
        "replicates": [f"{n} ({k})" for n, k in zip(comparisons["n"], comparisons["test_kind"])],
        "verdict": comparisons["verdict"],
    }, dtype=object)
    intro = ("PMD differences a - b (negative: a is closer to the ground truth), with the 95 % "
             "Student-t interval of the per-replicate differences (paired: replicate r of every "
             "variant shares its seed, and every variant is scored on the same triples).")
    return markdown(shown, title="Comparisons", level=2, intro=intro)


def tabulate_pose_transfer(evaluation_files: list[str], csv_out: str, md_out: str,
                           replicates_csv: str, comparisons_csv: str, dataset: str,
                           variants: list[str]) -> pd.DataFrame:
    """Read every eval JSON and write the four tables; returns the summary."""
    if not evaluation_files:
        raise ValueError("tabulate_pose_transfer needs at least one evaluation")
    paths = [str(p) for p in evaluation_files]
    evaluations = [read_evaluation(p) for p in paths]
    per_replicate = replicate_table(evaluations, paths)
    first = evaluations[0]
    t = first["training"]
    scale = (f"{dataset}: {t['n_train_identities']} identities x {t['n_train_poses']} poses of "
             f"{first.get('n_vertices', '?')} vertices, {t['steps']} steps of batch {t['batch_size']}")
    summary = summary_table(per_replicate, variants, scale)
    comparisons = comparison_table(per_replicate, variants)
    wide = wide_table(summary)
    n_pairs = "/".join(map(str, sorted(set(per_replicate["n_pairs"]))))
    n_rep = "/".join(map(str, sorted(set(per_replicate.groupby(["variant", "test"])["replicate"].nunique()))))
    intro = (f"Neural pose transfer on {dataset} (seed 000): PMD (m^2, after bounding-box centring) "
             f"on {n_pairs} held-out triples per test list, and the per-vertex RMS distance "
             f"sqrt(3 PMD) in millimetres\n\nOurs: {n_rep} replicate(s) per cell; cells are "
             f"{SPREAD_NOTE}. 'untrained' is each variant's step-0 weights; the two no-learning "
             "answers need no training. Quoted rows are seed 000's numbers (one each), on the "
             "authors' SMPL set, not on this data.")
    text = markdown(wide, intro=intro)
    write_csv(summary, csv_out, float_format="%.6g")
    write_csv(per_replicate, replicates_csv, float_format="%.8g")
    write_csv(comparisons, comparisons_csv, float_format="%.6g")
    write_markdown(md_out, text, comparison_markdown(comparisons) if len(comparisons) else "")
    return summary
