"""The style-transfer experiments over their replicates, and the experiments against each other.

`report_style_transfer` writes one table per (experiment, replicate), long format with columns
experiment, section, name, value, oscillation, n, window and values as 4-significant-digit text
(shapepose.style.report.report_table). This module reads those tables and writes, per experiment,
the spread over the replicates (`shapepose.replicates.aggregate`: n, mean, sample std, 95 % t
interval) of the test split's alpha disagreement (mean and max over its images), the best
checkpoint's validation metrics and every loss term's final value, beside each replicate's own
value. The spread is computed from the tables' 4-digit values.

Then every experiment is compared with the first one on the test alpha disagreement mean, paired
by replicate: replicate r of every experiment trains from the same seed
(replicate_seed(seed, "style_transfer", r)) on the same cut-outs (replicate r of the segmenter),
so two experiments' replicate r differ only in the experiment's settings.

The module reads CSV only (no torch), so it runs without the networks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from shapepose.errors import InputError
from shapepose.replicates import SPREAD_NOTE, aggregate, difference, stat_cell, verdict
from shapepose.tables import markdown, read_table, write_csv, write_markdown

# the columns of report_style_transfer's table (shapepose.style.report.report_table)
TABLE_COLUMNS = ("experiment", "section", "name", "value", "oscillation", "n", "window")
ALPHA_SECTION = "alpha disagreement (test)"
# (section, name in the per-replicate table) -> the quantity's name here, in the order shown;
# loss terms follow, each as "final <term>"
QUANTITIES = {
    (ALPHA_SECTION, "mean"): "test alpha disagreement, mean",
    (ALPHA_SECTION, "max"): "test alpha disagreement, max",
    ("training", "best val_score"): "best val_score",
    ("training", "best val_fd_ratio"): "best val_fd_ratio",
    ("training", "best val_alpha_disagreement"): "best val_alpha_disagreement",
}
COMPARED = ("test alpha disagreement, mean",)
FORMAT = "{:.4g}"  # as the per-experiment tables


def replicate_column(replicate: int) -> str:
    return f"r{int(replicate)}"


def read_experiment_table(path: str | Path, experiment: str, replicate: int) -> pd.DataFrame:
    """(experiment, replicate, quantity, value) rows of one per-replicate report table.

    The file must be report_style_transfer's table of `experiment` and hold the test alpha
    disagreement mean; a quantity whose cell is empty or not a number is NaN (left out of the
    spread). The validation metrics are absent when the run had no validation split.
    """
    table = read_table(path, "style-transfer report table", TABLE_COLUMNS)
    named = set(table["experiment"].astype(str))
    if named != {str(experiment)}:
        raise InputError(path, f"expected the table of experiment {experiment!r}, it holds "
                               f"{sorted(named)}", key="experiment")
    section, name = table["section"].astype(str), table["name"].astype(str)
    if not ((section == ALPHA_SECTION) & (name == "mean")).any():
        raise InputError(path, f"report table has no {ALPHA_SECTION!r} mean row", key="section")
    values = pd.to_numeric(table["value"], errors="coerce")
    rows = []
    for (s, n), quantity in QUANTITIES.items():
        hit = (section == s) & (name == n)
        if hit.any():
            rows.append((quantity, float(values[hit].iloc[0])))
    rows += [(f"final {n}", float(v)) for s, n, v in zip(section, name, values) if s == "loss"]
    return pd.DataFrame([(experiment, int(replicate), q, v) for q, v in rows],
                        columns=["experiment", "replicate", "quantity", "value"])


def read_tables(tables: Sequence[str | Path], experiments: Sequence[str],
                replicates: Sequence[int]) -> pd.DataFrame:
    """Every (experiment, replicate) table as one long frame; the three lists are parallel."""
    if not (len(tables) == len(experiments) == len(replicates)):
        raise ValueError(f"one experiment and one replicate per table: {len(tables)} tables, "
                         f"{len(experiments)} experiments, {len(replicates)} replicates")
    if not tables:
        raise ValueError("no tables given")
    pairs = list(zip(map(str, experiments), map(int, replicates)))
    if len(set(pairs)) != len(pairs):
        raise ValueError(f"each (experiment, replicate) once, got {pairs}")
    return pd.concat([read_experiment_table(path, e, r) for path, (e, r) in zip(tables, pairs)],
                     ignore_index=True)


def spread_table(long: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and quantity (first-seen order): aggregate()'s columns, then r<k>."""
    summary = aggregate(long, ["experiment", "quantity"], ["value"])
    for replicate in sorted(long["replicate"].unique()):
        own = long[long["replicate"] == replicate].set_index(["experiment", "quantity"])["value"]
        summary[replicate_column(replicate)] = [own.get(key, math.nan) for key in
                                                zip(summary["experiment"], summary["quantity"])]
    return summary


def comparisons(long: pd.DataFrame, quantities: Sequence[str] = COMPARED) -> pd.DataFrame:
    """Every experiment after the first against the first, paired by replicate, per quantity.

    A replicate that only one of the two has, or whose value is NaN, drops out of the pairs.
    """
    experiments = list(dict.fromkeys(long["experiment"]))
    replicates = sorted(long["replicate"].unique())
    rows = []
    for quantity in quantities:
        values = long[long["quantity"] == quantity].set_index(["experiment", "replicate"])["value"]

        def of(experiment):
            return np.array([values.get((experiment, r), math.nan) for r in replicates], np.float64)

        base = experiments[0]
        for other in experiments[1:]:
            d = difference(of(other), of(base), paired=True)
            rows.append({"experiment": other, "against": base, "quantity": quantity,
                         "test": d["test"], "pairs": d["n"], "difference": d["difference"],
                         "ci_low": d["ci_low"], "ci_high": d["ci_high"],
                         "separated": d["separated"], "verdict": verdict(d["separated"])})
    return pd.DataFrame(rows, columns=["experiment", "against", "quantity", "test", "pairs",
                                       "difference", "ci_low", "ci_high", "separated", "verdict"])


def summary_markdown(spread: pd.DataFrame, compared: pd.DataFrame, n_replicates: int) -> str:
    """The spread per experiment (one sub-table each) and the comparisons."""
    columns = [c for c in spread.columns if c.startswith("r") and c[1:].isdigit()]
    one = n_replicates == 1
    note = SPREAD_NOTE + (". One replicate here: the mean alone, no spread." if one else ".")
    blocks = [f"## Style transfer over {n_replicates} replicate{'' if one else 's'}\n\n"
              f"value: {note} Columns {', '.join(columns)}: each replicate's own value. Values are "
              "read from the per-replicate tables (4 significant digits); final losses are means "
              "over each run's last recorded steps.\n"]
    for experiment, rows in spread.groupby("experiment", sort=False):
        cells = pd.DataFrame(
            [{"quantity": row["quantity"], "value": stat_cell(row, "value", FORMAT),
              **{c: "" if math.isnan(row[c]) else FORMAT.format(row[c]) for c in columns}}
             for row in rows.to_dict("records")], columns=["quantity", "value", *columns])
        blocks.append(markdown(cells, title=f"Experiment {experiment}", level=3))
    intro = ("Each experiment against the first, paired by replicate: replicate r of every "
             "experiment trains from the same seed on the same cut-outs, so a pair differs only in "
             "the experiment's settings. Difference = experiment - against, with the 95 % "
             "Student-t interval of the paired differences; separated when it excludes zero.")
    if compared.empty:
        blocks.append("### Experiments compared\n\nOne experiment: nothing to compare.\n")
    else:
        cells = pd.DataFrame(
            [{"experiment": row["experiment"], "against": row["against"], "quantity": row["quantity"],
              "pairs": row["pairs"],
              "difference": "" if math.isnan(row["difference"]) else
              (FORMAT.format(row["difference"]) if math.isnan(row["ci_low"]) else
               f"{FORMAT.format(row['difference'])} [{FORMAT.format(row['ci_low'])}, "
               f"{FORMAT.format(row['ci_high'])}]"),
              "verdict": row["verdict"]} for row in compared.to_dict("records")],
            columns=["experiment", "against", "quantity", "pairs", "difference", "verdict"])
        blocks.append(markdown(cells, title="Experiments compared", level=3, intro=intro))
    return "\n".join(blocks)


def tabulate_style_transfer(*, tables: Sequence[str | Path], experiments: Sequence[str],
                            replicates: Sequence[int], csv: str | Path, md: str | Path,
                            comparison_csv: str | Path) -> dict:
    """Write the spread over replicates (CSV, Markdown with the comparisons) and the comparisons (CSV).

    tables: report_style_transfer's table_csv of each (experiment, replicate), parallel to
    `experiments` and `replicates`. The first experiment named is the one the others are compared
    with. Returns {"spread", "comparisons"}.
    """
    long = read_tables(tables, experiments, replicates)
    spread = spread_table(long)
    compared = comparisons(long)
    text = summary_markdown(spread, compared, int(long["replicate"].nunique()))
    write_csv(spread, csv)
    write_csv(compared, comparison_csv)
    write_markdown(md, text)
    return {"spread": spread, "comparisons": compared}
