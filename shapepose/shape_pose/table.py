"""Table 6.2 of seed 002 (our variants x test sets beside the seed's rows) and figures 6.5 / 7.1.

The table reads the eval_shape_pose summaries (Chamfer terms already x100); the figure and its
small table read the eval_real_masks rows: the cumulative distribution of the normalized pixel
disagreement per variant, on the real cut-outs (solid) and the synthetic test views (dashed),
smoothed with a Gaussian kernel density estimate as in the thesis.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import gaussian_kde

from shapepose.errors import InputError
from shapepose.io import atomic_file
from shapepose.tables import markdown, read_table, write_csv, write_markdown

UNTRAINED = "untrained"
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

COLUMNS = ["source", "variant", "test_set", "precision", "coverage", "chamfer", "accuracy",
           "median_error_deg", "n_views", "note"]
# Markdown header and number format of each column
MD_COLUMNS = {"variant": ("variant", None), "test_set": ("test set", None),
              "precision": ("precision", "{:.2f}"), "coverage": ("coverage", "{:.2f}"),
              "chamfer": ("Chamfer", "{:.2f}"), "accuracy": ("accuracy", "{:.2f}"),
              "median_error_deg": ("median error (deg)", "{:.2f}"), "n_views": ("views", "{:d}"),
              "note": ("note", None)}


def variant_order(variants: list[str]) -> list[str]:
    """Untrained first, then the others as given (original, then the experiments)."""
    return sorted(dict.fromkeys(variants), key=lambda v: (v != UNTRAINED, variants.index(v)))


def _read_summary(path: str | Path) -> dict:
    try:
        summary = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read evaluation summary: {exc}") from None
    missing = [k for k in ("variant", "test_set", "precision", "coverage", "chamfer", "accuracy",
                           "median_error_deg", "n_views") if k not in summary]
    if missing:
        raise InputError(path, "evaluation summary lacks a value", key=missing[0])
    return summary


def _note(summary: dict) -> str:
    if summary.get("untrained"):
        return "step-0 weights"
    step = summary.get("step")
    return f"step {step}" if step is not None else ""


def shape_pose_table(summaries: list[dict], variants: list[str]) -> pd.DataFrame:
    """Our rows (variant x test set, in table 6.2's order) then the seed's, in COLUMNS."""
    order = variant_order(variants + [s["variant"] for s in summaries])
    test_sets = list(dict.fromkeys(["original"] + [s["test_set"] for s in summaries]))
    ours = sorted(summaries, key=lambda s: (order.index(s["variant"]), test_sets.index(s["test_set"])))
    rows = [{"source": "ours", **{k: s[k] for k in COLUMNS[1:-2]}, "n_views": int(s["n_views"]),
             "note": _note(s)} for s in ours]
    seed = SEED_TABLE_6_2.assign(source="seed 002", n_views=7500, note=SEED_NOTE)
    return pd.concat([pd.DataFrame(rows, columns=COLUMNS), seed[COLUMNS]], ignore_index=True)


def markdown_table(table: pd.DataFrame, columns: dict[str, tuple[str, str | None]], **options) -> str:
    """A pipe table of the given columns: key -> (header, cell format or None for str)."""
    return markdown(table, headers={k: header for k, (header, _) in columns.items()},
                    formats={k: fmt for k, (_, fmt) in columns.items() if fmt is not None}, **options)


def table_markdown(table: pd.DataFrame, dataset: str, threshold: float | None) -> str:
    """Our block and the seed's block, each under its own heading."""
    at = f"{threshold:g} degrees" if threshold is not None else "the configured threshold"
    intro = (f"Precision, coverage and Chamfer distance x100 (mean nearest-neighbour distances, "
             f"ShapeNet units), pose accuracy at {at} and median pose error (DPC's: the "
             f"element n // 2 of the sorted errors), after aligning each model's frame on its "
             f"training set's validation split. Rows: the variant a model was trained on; test set: "
             f"the synthetic test split, original or stylized by that experiment.\n")
    ours = table[table["source"] == "ours"]
    seed = table[table["source"] == "seed 002"]
    return "\n".join([
        markdown_table(ours, MD_COLUMNS, title=f"Shape and pose on {dataset} (seed 002 table 6.2): ours",
                       intro=intro),
        markdown_table(seed, {k: v for k, v in MD_COLUMNS.items() if k != "n_views"}, title=SEED_TITLE)])


# ---- real masks (figures 6.5 and 7.1) ----------------------------------------------------------

def read_real_masks(paths: list[str], variants: list[str]) -> pd.DataFrame:
    """Rows (variant, set, image, disagreement) of every variant's eval_real_masks CSV, in order."""
    if len(paths) != len(variants):
        raise InputError(paths[0] if paths else "?",
                         f"{len(paths)} real-mask tables for {len(variants)} variants {variants}")
    frames = []
    for path, variant in zip(paths, variants):
        frame = read_table(path, "real-mask table", ["set", "image", "disagreement"])
        frames.append(frame.assign(variant=variant))
    return pd.concat(frames, ignore_index=True)[["variant", "set", "image", "disagreement"]]


def real_mask_summary(rows: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    """Per variant (untrained first) and set (real, then synthetic): n, mean, median, share < 0.5."""
    out = []
    for variant in variant_order(variants):
        for kind in ("real", "synthetic"):
            values = rows[(rows["variant"] == variant) & (rows["set"] == kind)]["disagreement"].to_numpy()
            if len(values):
                out.append({"variant": variant, "set": kind, "n": len(values),
                            "mean": float(values.mean()), "median": float(np.median(values)),
                            "share_below_0.5": float(np.mean(values < 0.5))})
    return pd.DataFrame(out, columns=["variant", "set", "n", "mean", "median", "share_below_0.5"])


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
    """Figures 6.5 + 7.1: CDFs of the disagreement per variant, real (solid) and synthetic (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = variant_order(variants)
    groups = {(v, k): rows[(rows["variant"] == v) & (rows["set"] == k)]["disagreement"].to_numpy()
              for v in order for k in ("real", "synthetic")}
    groups = {key: values for key, values in groups.items() if len(values)}
    grid = cdf_grid(list(groups.values()), kde_points) if groups else np.linspace(0, 1, kde_points)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, variant in enumerate(order):
        for kind, style in (("real", "-"), ("synthetic", "--")):
            if (variant, kind) in groups:
                values = groups[(variant, kind)]
                ax.plot(grid, cdf_curve(values, grid), style, color=colours[i % len(colours)],
                        label=f"{variant}, {kind} (n={len(values)})")
    ax.set_xlabel("normalized pixels in disagreement  |predicted XOR real| / |real|")
    ax.set_ylabel("cumulative share of images (Gaussian KDE)")
    ax.set_title("Mask disagreement: real cut-outs (solid) vs synthetic test views (dashed)", fontsize=10)
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


REAL_MD_COLUMNS = {"variant": ("variant", None), "set": ("images", None), "n": ("n", "{:d}"),
                   "mean": ("mean", "{:.3f}"), "median": ("median", "{:.3f}"),
                   "share_below_0.5": ("share < 0.5", "{:.3f}")}


def tabulate_shape_pose(*, summaries: list[str], real_masks: list[str], variants: list[str],
                        out_csv: str, out_md: str, out_plot: str, out_real_md: str, dataset: str,
                        kde_points: int = 200) -> pd.DataFrame:
    """The rule's work: table 6.2 (CSV, Markdown), the disagreement CDF plot and its table.

    real_masks: one eval_real_masks CSV per variant, in the order of `variants`.
    """
    loaded = [_read_summary(path) for path in summaries]
    table = shape_pose_table(loaded, list(variants))
    write_csv(table, out_csv, float_format="%.6g")
    thresholds = {s.get("accuracy_threshold_deg") for s in loaded} - {None}
    write_markdown(out_md, table_markdown(table, dataset, thresholds.pop() if len(thresholds) == 1 else None))
    rows = read_real_masks(list(real_masks), list(variants))
    plot_real_masks(rows, list(variants), out_plot, kde_points)
    summary = real_mask_summary(rows, list(variants))
    write_markdown(out_real_md, markdown_table(
        summary, REAL_MD_COLUMNS,
        title=f"Mask disagreement on {dataset} (seed 002 section 6.3, figures 6.5 / 7.1)",
        intro="Per image, |predicted XOR real| / |real|: the predicted cloud drawn as spheres from the "
              "predicted pose against the image's mask; real = the held-out real cut-outs, "
              "synthetic = every synthetic test view."))
    return table
