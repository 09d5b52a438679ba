"""Table 6.2 of seed 002 (our variants x test sets beside the seed's rows) and figures 6.5 / 7.1.

Every model exists once per replicate. The table reads the eval_shape_pose summaries (variant x
test set x replicate; Chamfer terms already x100) and reports each (variant, test set) as the
spread over its replicates (shapepose.replicates: mean, std, 95 % t interval), beside one row per
replicate in a CSV of its own. The thesis's question (does stylized training help?) is answered
by paired differences over the replicates: each stylized variant against `original`, and
`original` against `untrained`, in median pose error per test set and in mean real-mask
disagreement. The figure and its small table read the eval_real_masks rows: the cumulative
distribution of the normalized pixel disagreement per variant (the images of every replicate
pooled), on the real cut-outs (solid) and the synthetic test views (dashed), smoothed with a
Gaussian kernel density estimate as in the thesis.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import gaussian_kde

from shapepose.errors import InputError
from shapepose.io import atomic_file
from shapepose.replicates import (
    SPREAD_NOTE,
    STATS,
    aggregate,
    difference,
    stat_cell,
    summarize,
    verdict,
)
from shapepose.tables import markdown, read_table, write_csv, write_markdown

UNTRAINED = "untrained"
ORIGINAL = "original"
SEED_NOTE = "7500 test views (1500 models)"
SEED_TITLE = "seed 002 table 6.2 (quoted; ShapeNet cars, 600k steps)"

# Seed 002 table 6.2, typed in from the thesis: (experiment, dataset) -> precision, coverage,
# Chamfer (all x100), accuracy at 30 degrees, median error in degrees.
SEED_TABLE_6_2 = pd.DataFrame(
    [("Baseline", "Original", 1.60, 1.35, 2.95, 0.82, 6.95),
     ("Baseline", "Stylized 2", 1.61, 1.37, 2.98, 0.83, 7.01),
     ("Baseline", "Stylized 3", 1.61, 1.37, 2.98, 0.83, 7.01),
     ("Experiment 2", "Original", 1.59, 1.37, 2.96, 0.83, 4.55),
     ("Experiment 2", "Stylized 2", 1.57, 1.35, 2.92, 0.84, 4.27),
     ("Experiment 2", "Stylized 3", 1.57, 1.35, 2.93, 0.84, 4.27),
     ("Experiment 3", "Original", 1.62, 1.36, 2.97, 0.84, 6.01),
     ("Experiment 3", "Stylized 2", 1.61, 1.34, 2.95, 0.84, 5.64),
     ("Experiment 3", "Stylized 3", 1.60, 1.34, 2.95, 0.84, 5.65)],
    columns=["variant", "test_set", "precision", "coverage", "chamfer", "accuracy", "median_error_deg"])

METRICS = ("precision", "coverage", "chamfer", "accuracy", "median_error_deg")
# table 6.2 (CSV): our rows aggregated over the replicates (aggregate()'s layout), then the seed's
# rows with their single values in the `_mean` columns
COLUMNS = ["source", "variant", "test_set", "replicates",
           *[f"{m}_{s}" for m in METRICS for s in STATS], "n_views", "note"]
PER_REPLICATE_COLUMNS = ["variant", "test_set", "replicate", *METRICS, "n_views", "note"]
DIFFERENCE_COLUMNS = ["comparison", "test_set", "metric", "n", "difference", "ci_low", "ci_high",
                      "separated"]
# Markdown header and number format of each column
MD_COLUMNS = {"variant": ("variant", None), "test_set": ("test set", None),
              "precision": ("precision", "{:.2f}"), "coverage": ("coverage", "{:.2f}"),
              "chamfer": ("Chamfer", "{:.2f}"), "accuracy": ("accuracy", "{:.2f}"),
              "median_error_deg": ("median error (deg)", "{:.2f}"), "n_views": ("views", "{:d}"),
              "note": ("note", None)}
OURS_MD_COLUMNS = {"variant": ("variant", None), "test_set": ("test set", None),
                   "replicates": ("replicates", "{:d}"),
                   **{m: (MD_COLUMNS[m][0], None) for m in METRICS},  # stat_cell text
                   "n_views": ("views", "{:d}"), "note": ("note", None)}
METRIC_FORMAT = "{:.2f}"


def variant_order(variants: list[str]) -> list[str]:
    """Untrained first, then the others as given (original, then the experiments)."""
    return sorted(dict.fromkeys(variants), key=lambda v: (v != UNTRAINED, variants.index(v)))


def _read_summary(path: str | Path) -> dict:
    """One eval_shape_pose summary, with the file it came from under "path"."""
    try:
        summary = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read evaluation summary: {exc}") from None
    if not isinstance(summary, dict):
        raise InputError(path, "evaluation summary is not a JSON object")
    missing = [k for k in ("variant", "test_set", "replicate", *METRICS, "n_views") if k not in summary]
    if missing:
        raise InputError(path, "evaluation summary lacks a value", key=missing[0])
    replicate = summary["replicate"]
    if not isinstance(replicate, int) or isinstance(replicate, bool) or replicate < 0:
        raise InputError(path, f"replicate is not a non-negative integer: {replicate!r}", key="replicate")
    return {**summary, "path": str(path)}


def _note(summary: dict) -> str:
    if summary.get("untrained"):
        return "step-0 weights"
    step = summary.get("step")
    return f"step {step}" if step is not None else ""


def _span(values: list, one: str, many: str) -> str:
    """"one X" for a single distinct value, "many LOW-HIGH" for several (steps, views)."""
    distinct = sorted(set(values))
    if len(distinct) == 1:
        return one.format(distinct[0])
    return many.format(distinct[0], distinct[-1])


def _check_replicates(groups: dict[tuple, dict[int, str]], replicates: int | None, what: str) -> None:
    """Each group ({replicate: file}) holds replicates 0 .. replicates-1, when a count is given."""
    if replicates is None:
        return
    want = set(range(int(replicates)))
    for key, files in groups.items():
        if set(files) != want:
            missing, extra = sorted(want - set(files)), sorted(set(files) - want)
            problem = (f"{what} {' / '.join(map(str, key))}: replicates {sorted(files)}, "
                       f"expected 0..{int(replicates) - 1}")
            problem += f" (missing {missing})" if missing else ""
            problem += f" (unexpected {extra})" if extra else ""
            raise InputError(next(iter(files.values())), problem, key="replicate")


def _group_note(group: pd.DataFrame) -> str:
    """The note of one aggregated row: step-0 weights, or the training step(s) of its replicates."""
    if group["untrained"].all():
        note = "step-0 weights"
    else:
        steps = [int(step) for step in group["step"] if pd.notna(step)]
        note = _span(steps, "step {}", "steps {}-{}") if steps else ""
    if group["n_views"].nunique() > 1:
        views = f"views {int(group['n_views'].min())}-{int(group['n_views'].max())} per replicate"
        note = f"{note}; {views}" if note else views
    return note


def per_replicate_table(summaries: list[dict], variants: list[str],
                        replicates: int | None = None) -> pd.DataFrame:
    """One row per summary (variant, test set, replicate: table 6.2's order), in PER_REPLICATE_COLUMNS.

    Two summaries of one (variant, test set, replicate), or, with `replicates`, a (variant, test
    set) without every replicate 0 .. replicates-1, are an InputError naming a file.
    """
    order = variant_order(list(variants) + [s["variant"] for s in summaries])
    test_sets = list(dict.fromkeys(["original"] + [s["test_set"] for s in summaries]))
    groups: dict[tuple, dict[int, str]] = {}
    for s in summaries:
        files = groups.setdefault((s["variant"], s["test_set"]), {})
        if s["replicate"] in files:
            raise InputError(s["path"], f"a second summary of {s['variant']} on {s['test_set']}, "
                             f"replicate {s['replicate']} (the first: {files[s['replicate']]})")
        files[s["replicate"]] = s["path"]
    _check_replicates(groups, replicates, "variant / test set")
    ours = sorted(summaries, key=lambda s: (order.index(s["variant"]), test_sets.index(s["test_set"]),
                                            s["replicate"]))
    rows = [{**{k: s[k] for k in ("variant", "test_set", "replicate", *METRICS)},
             "n_views": int(s["n_views"]), "note": _note(s), "untrained": bool(s.get("untrained")),
             "step": s.get("step")} for s in ours]
    return pd.DataFrame(rows, columns=[*PER_REPLICATE_COLUMNS, "untrained", "step"])


def shape_pose_table(per_replicate: pd.DataFrame) -> pd.DataFrame:
    """Our rows (variant x test set, aggregated over the replicates) then the seed's, in COLUMNS."""
    ours = aggregate(per_replicate, ["variant", "test_set"], METRICS)
    groups = per_replicate.groupby(["variant", "test_set"], sort=False)
    views = [int(group["n_views"].min()) for _, group in groups]
    notes = [_group_note(group) for _, group in groups]
    ours = ours.assign(source="ours", n_views=views, note=notes)
    seed = SEED_TABLE_6_2.rename(columns={m: f"{m}_mean" for m in METRICS})
    seed = seed.assign(source="seed 002", n_views=7500, note=SEED_NOTE)
    frames = [ours.reindex(columns=COLUMNS), seed.reindex(columns=COLUMNS)]
    table = pd.concat(frames, ignore_index=True)
    table["replicates"] = table["replicates"].astype("Int64")
    for m in METRICS:
        table[f"{m}_n"] = table[f"{m}_n"].astype("Int64")
    return table


def markdown_table(table: pd.DataFrame, columns: dict[str, tuple[str, str | None]], **options) -> str:
    """A pipe table of the given columns: key -> (header, cell format or None for str)."""
    return markdown(table, headers={k: header for k, (header, _) in columns.items()},
                    formats={k: fmt for k, (_, fmt) in columns.items() if fmt is not None}, **options)


def table_markdown(table: pd.DataFrame, dataset: str, threshold: float | None) -> str:
    """Our block (stat_cell: the spread over replicates) and the seed's block, each under its heading."""
    at = f"{threshold:g} degrees" if threshold is not None else "the configured threshold"
    intro = (f"Precision, coverage and Chamfer distance x100 (mean nearest-neighbour distances, "
             f"ShapeNet units), pose accuracy at {at} and median pose error (DPC's: the "
             f"element n // 2 of the sorted errors), after aligning each model's frame on its "
             f"training set's validation split. Rows: the variant a model was trained on; test set: "
             f"the synthetic test split, original or stylized by that experiment (each replicate "
             f"scored on its own replicate's copy). Cells: {SPREAD_NOTE}; views: per replicate.\n")
    ours = table[table["source"] == "ours"]
    cells = ours[["variant", "test_set", "replicates", "n_views", "note"]].copy()
    for m in METRICS:
        cells[m] = [stat_cell(row, m, METRIC_FORMAT) for _, row in ours.iterrows()]
    seed = table[table["source"] == "seed 002"].rename(columns={f"{m}_mean": m for m in METRICS})
    return "\n".join([
        markdown_table(cells, OURS_MD_COLUMNS,
                       title=f"Shape and pose on {dataset} (seed 002 table 6.2): ours", intro=intro),
        markdown_table(seed, {k: v for k, v in MD_COLUMNS.items() if k != "n_views"}, title=SEED_TITLE)])


# ---- real masks (figures 6.5 and 7.1) ----------------------------------------------------------

REAL_COLUMNS = ["variant", "replicate", "set", "image", "disagreement"]  # eval_real_masks' CSV
SETS = ("real", "synthetic")


def read_real_masks(paths: list[str], replicates: int | None = None) -> pd.DataFrame:
    """Rows (REAL_COLUMNS) of every eval_real_masks CSV, one (variant, replicate) per file.

    The variant and replicate are read from the files' own columns. A file with more than one of
    either, two files of one (variant, replicate), or, with `replicates`, a variant without every
    replicate 0 .. replicates-1, are an InputError naming a file.
    """
    frames, groups = [], {}
    for path in paths:
        frame = read_table(path, "real-mask table", REAL_COLUMNS)
        if frame.empty:
            raise InputError(path, "real-mask table has no rows")
        for column in ("variant", "replicate"):
            if frame[column].nunique(dropna=False) != 1:
                found = sorted(frame[column].astype(str).unique())
                raise InputError(path, f"real-mask table holds {column}s {found}; one file per variant "
                                 "and replicate", key=column)
        variant, replicate = str(frame["variant"].iloc[0]), frame["replicate"].iloc[0]
        if not pd.api.types.is_integer_dtype(frame["replicate"]) or replicate < 0:
            raise InputError(path, f"replicate is not a non-negative integer: {replicate!r}", key="replicate")
        unknown = sorted(set(frame["set"]) - set(SETS))
        if unknown:
            raise InputError(path, f"image set(s) {unknown}; expected {list(SETS)}", key="set")
        files = groups.setdefault((variant,), {})
        if int(replicate) in files:
            raise InputError(path, f"a second real-mask table of {variant}, replicate {int(replicate)} "
                             f"(the first: {files[int(replicate)]})")
        files[int(replicate)] = str(path)
        frames.append(frame.assign(variant=variant, replicate=int(replicate))[REAL_COLUMNS])
    if not frames:
        raise InputError("?", "no real-mask table given")
    _check_replicates(groups, replicates, "real masks of variant")
    return pd.concat(frames, ignore_index=True)


def replicate_means(rows: pd.DataFrame) -> pd.DataFrame:
    """The mean disagreement of each (variant, set, replicate), in column mean_disagreement."""
    means = rows.groupby(["variant", "set", "replicate"], sort=False)["disagreement"].mean()
    return means.rename("mean_disagreement").reset_index()


REAL_SUMMARY_COLUMNS = ["variant", "set", "replicates", "n", *[f"mean_disagreement_{s}" for s in STATS],
                        "median", "share_below_0.5"]


def real_mask_summary(rows: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    """Per variant (untrained first) and set (real, then synthetic), in REAL_SUMMARY_COLUMNS.

    mean_disagreement_*: the spread over the replicates of each replicate's mean disagreement
    (summarize()); n, median and share below 0.5 pool the images of every replicate.
    """
    means = replicate_means(rows)
    out = []
    for variant in variant_order(list(variants) + list(rows["variant"])):
        for kind in SETS:
            pooled = rows[(rows["variant"] == variant) & (rows["set"] == kind)]
            if pooled.empty:
                continue
            values = pooled["disagreement"].to_numpy()
            mine = means[(means["variant"] == variant) & (means["set"] == kind)]
            spread = summarize(mine["mean_disagreement"])
            out.append({"variant": variant, "set": kind, "replicates": int(pooled["replicate"].nunique()),
                        "n": len(values), **{f"mean_disagreement_{s}": spread[s] for s in STATS},
                        "median": float(np.median(values)), "share_below_0.5": float(np.mean(values < 0.5))})
    return pd.DataFrame(out, columns=REAL_SUMMARY_COLUMNS)


# ---- the thesis's question: does stylized training help? -------------------------------------

DIFFERENCE_METRICS = {"median_error_deg": ("median pose error (deg)", "{:+.2f}"),
                      "mean_disagreement": ("mean mask disagreement", "{:+.3f}")}
SET_NAMES = {"real": "real cut-outs", "synthetic": "synthetic test views"}


def comparisons(variants: list[str]) -> list[tuple[str, str]]:
    """(a, b) pairs compared as a - b: each stylized variant vs original, then original vs untrained."""
    order = variant_order(list(variants))
    pairs = [(v, ORIGINAL) for v in order if v not in (UNTRAINED, ORIGINAL)] if ORIGINAL in order else []
    if ORIGINAL in order and UNTRAINED in order:
        pairs.append((ORIGINAL, UNTRAINED))
    return pairs


def _paired(values: pd.DataFrame, a: str, b: str, metric: str) -> dict | None:
    """difference(paired=True) of `metric` between variants a and b, replicate by replicate.

    A replicate one side lacks is a NaN pair (dropped); None when no replicate has both.
    """
    side = {v: dict(zip(values[values["variant"] == v]["replicate"], values[values["variant"] == v][metric]))
            for v in (a, b)}
    reps = sorted(set(side[a]) | set(side[b]))
    xa = [side[a].get(r, math.nan) for r in reps]
    xb = [side[b].get(r, math.nan) for r in reps]
    got = difference(xa, xb, paired=True)
    return None if got["n"] == 0 else got


def differences_table(per_replicate: pd.DataFrame, real_rows: pd.DataFrame | None,
                      variants: list[str]) -> pd.DataFrame:
    """The comparisons (comparisons()) as rows in DIFFERENCE_COLUMNS, paired by replicate.

    Per comparison: the median pose error on each test set, then the mean real-mask disagreement
    on the real cut-outs and the synthetic test views. A (test set, comparison) no replicate of
    both variants reached is left out.
    """
    order = variant_order(list(variants) + list(per_replicate["variant"])
                          + ([] if real_rows is None else list(real_rows["variant"])))
    test_sets = list(dict.fromkeys(per_replicate["test_set"]))
    means = replicate_means(real_rows) if real_rows is not None else None
    rows = []
    for a, b in comparisons(order):
        name = f"{a} - {b}"
        for test_set in test_sets:
            got = _paired(per_replicate[per_replicate["test_set"] == test_set], a, b,
                          "median_error_deg")
            if got is not None:
                rows.append({"comparison": name, "test_set": test_set, "metric": "median_error_deg",
                             **{k: got[k] for k in DIFFERENCE_COLUMNS[3:]}})
        for kind in SETS if means is not None else ():
            got = _paired(means[means["set"] == kind], a, b, "mean_disagreement")
            if got is not None:
                rows.append({"comparison": name, "test_set": kind, "metric": "mean_disagreement",
                             **{k: got[k] for k in DIFFERENCE_COLUMNS[3:]}})
    table = pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS)
    table["n"] = table["n"].astype(int)
    table["separated"] = table["separated"].astype(object)
    return table


def _difference_cell(row, fmt: str) -> str:
    if pd.isna(row["difference"]):
        return ""
    text = fmt.format(row["difference"])
    if pd.notna(row["ci_low"]):
        text += f" [{fmt.format(row['ci_low'])}, {fmt.format(row['ci_high'])}]"
    return text


def _seed_answer() -> str:
    """The seed's own answer, from its quoted table: one training run per experiment, no spread."""
    seed = SEED_TABLE_6_2
    base = seed[seed["variant"] == "Baseline"]["median_error_deg"]
    other = seed[seed["variant"] != "Baseline"]["median_error_deg"]
    return (f"Seed 002 answers yes from one training run per experiment: median errors "
            f"{other.min():.2f}-{other.max():.2f} degrees for its stylized experiments against "
            f"{base.min():.2f}-{base.max():.2f} for its baseline, without a spread to weigh them by.")


def differences_markdown(differences: pd.DataFrame, dataset: str) -> str:
    """The comparisons as a pipe table: difference [95 % interval] and verdict()."""
    cells = pd.DataFrame({
        "comparison": differences["comparison"],
        "test_set": [SET_NAMES.get(t, t) if m == "mean_disagreement" else t
                     for t, m in zip(differences["test_set"], differences["metric"])],
        "metric": [DIFFERENCE_METRICS[m][0] for m in differences["metric"]],
        "n": differences["n"],
        "difference": [_difference_cell(row, DIFFERENCE_METRICS[row["metric"]][1])
                       for _, row in differences.iterrows()],
        "verdict": [verdict(None if pd.isna(s) else bool(s)) for s in differences["separated"]]})
    intro = ("Replicate r of two variants shares everything but the training images (the same "
             "replicate's renders, stylized copies, test images and real cut-outs), so each "
             "comparison is paired: the difference a - b per replicate, their mean and its 95 % "
             "Student-t interval. Negative: a has the lower pose error / mask disagreement. "
             "Separated: the interval excludes zero; not separated: the replicates cannot tell "
             "the two apart. Mask disagreement: each replicate's mean over its images. "
             "`original - untrained` shows what training adds. " + _seed_answer())
    return markdown_table(cells, {"comparison": ("comparison (a - b)", None), "test_set": ("images", None),
                                  "metric": ("metric", None), "n": ("replicates", "{:d}"),
                                  "difference": ("difference [95 % interval]", None),
                                  "verdict": ("verdict", None)},
                          title=f"Does stylized training help? (seed 002's question, {dataset})", intro=intro)


def cdf_curve(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The cumulative distribution on `grid` of a Gaussian KDE of `values` (Scott's bandwidth).

    With fewer than two distinct values there is no spread to smooth: the empirical CDF instead.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(np.unique(values)) < 2:
        return np.mean(values[None, :] <= grid[:, None], axis=1)
    kde = gaussian_kde(values)
    return np.array([kde.integrate_box_1d(-np.inf, x) for x in grid])


def cdf_grid(groups: list[np.ndarray], n: int) -> np.ndarray:
    """n points from 0 to past every group's largest value by four kernel widths (the CDF reaches 1)."""
    top = 1.0
    for values in groups:
        spread = np.std(values) * len(values) ** (-1 / 5) if len(values) > 1 else 0.0  # Scott
        top = max(top, float(np.max(values)) + 4 * spread)
    return np.linspace(0.0, top, n)


def plot_real_masks(rows: pd.DataFrame, variants: list[str], path: str | Path, kde_points: int = 200) -> None:
    """Figures 6.5 + 7.1: CDFs of the disagreement per variant, real (solid) and synthetic (dashed).

    Each curve pools the images of every replicate of its variant.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = variant_order(list(variants) + list(rows["variant"]))
    selected = {(v, k): rows[(rows["variant"] == v) & (rows["set"] == k)] for v in order for k in SETS}
    groups = {key: frame["disagreement"].to_numpy() for key, frame in selected.items() if len(frame)}
    counts = {key: int(frame["replicate"].nunique()) for key, frame in selected.items() if len(frame)}
    grid = cdf_grid(list(groups.values()), kde_points) if groups else np.linspace(0, 1, kde_points)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, variant in enumerate(order):
        for kind, style in (("real", "-"), ("synthetic", "--")):
            if (variant, kind) in groups:
                values, r = groups[(variant, kind)], counts[(variant, kind)]
                pooled = f", {r} replicates pooled" if r > 1 else ", 1 replicate"
                ax.plot(grid, cdf_curve(values, grid), style, color=colours[i % len(colours)],
                        label=f"{variant}, {kind} (n={len(values)} images{pooled})")
    ax.set_xlabel("normalized pixels in disagreement  |predicted XOR real| / |real|")
    ax.set_ylabel("cumulative share of images (Gaussian KDE)")
    ax.set_title("Mask disagreement: real cut-outs (solid) vs synthetic test views (dashed);\n"
                 "each curve pools the images of every replicate of its variant", fontsize=10)
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


REAL_MD_COLUMNS = {"variant": ("variant", None), "set": ("images", None),
                   "replicates": ("replicates", "{:d}"), "n": ("n (pooled)", "{:d}"),
                   "mean": ("mean over replicates", None), "median": ("median (pooled)", "{:.3f}"),
                   "share_below_0.5": ("share < 0.5 (pooled)", "{:.3f}")}


def real_mask_markdown(summary: pd.DataFrame, dataset: str) -> str:
    """real_mask_summary() as a pipe table, the mean's spread over replicates in a stat_cell."""
    cells = summary.assign(mean=[stat_cell(row, "mean_disagreement") for _, row in summary.iterrows()])
    return markdown_table(
        cells, REAL_MD_COLUMNS,
        title=f"Mask disagreement on {dataset} (seed 002 section 6.3, figures 6.5 / 7.1)",
        intro="Per image, |predicted XOR real| / |real|: the predicted cloud drawn as spheres from the "
              "predicted pose against the image's mask; real = the held-out real cut-outs (each "
              "replicate's own segmenter's), synthetic = every synthetic test view. Mean: each "
              f"replicate's mean over its images, then {SPREAD_NOTE}. n, median and share below 0.5 "
              "pool the images of every replicate, as the curves do.")


def tabulate_shape_pose(*, summaries: list[str], real_masks: list[str], variants: list[str],
                        out_csv: str, out_per_replicate_csv: str, out_differences_csv: str,
                        out_md: str, out_plot: str, out_real_md: str, dataset: str,
                        kde_points: int = 200, replicates: int | None = None) -> pd.DataFrame:
    """The rule's work: table 6.2 over the replicates (CSV, Markdown with the paired comparisons),
    the per-replicate rows, the comparisons' CSV, the disagreement CDF plot and its table.

    summaries: every eval_shape_pose JSON (variant x test set x replicate; each names its own).
    real_masks: every eval_real_masks CSV (variant x replicate; read from its columns), any order.
    variants: the variants' order (untrained is put first). replicates: when given, every
    (variant, test set) and every variant's real masks must hold replicates 0 .. replicates-1.
    """
    loaded = [_read_summary(path) for path in summaries]
    if not loaded:
        raise InputError("?", "no evaluation summary given")
    per_replicate = per_replicate_table(loaded, list(variants), replicates)
    rows = read_real_masks(list(real_masks), replicates)
    table = shape_pose_table(per_replicate)
    differences = differences_table(per_replicate, rows, list(variants))
    thresholds = {s.get("accuracy_threshold_deg") for s in loaded} - {None}
    threshold = thresholds.pop() if len(thresholds) == 1 else None
    md = [table_markdown(table, dataset, threshold), differences_markdown(differences, dataset)]
    write_csv(table, out_csv, float_format="%.8g")
    write_csv(per_replicate[PER_REPLICATE_COLUMNS], out_per_replicate_csv, float_format="%.8g")
    write_csv(differences, out_differences_csv, float_format="%.8g")
    write_markdown(out_md, "\n".join(md))
    plot_real_masks(rows, list(variants), out_plot, kde_points)
    write_markdown(out_real_md, real_mask_markdown(real_mask_summary(rows, list(variants)), dataset))
    return table
