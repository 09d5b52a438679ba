"""The style-transfer experiments over replicates, from hand-made per-replicate report tables."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shapepose.errors import InputError
from shapepose.style.summary import read_experiment_table, tabulate_style_transfer
from shapepose.tables import markdown_rows

# per experiment, per replicate 0..2: (test alpha mean, test alpha max, best val_score, final G_total)
NUMBERS = {
    "constrained": [(0.0120, 0.050, 61.2, 3.10), (0.0140, 0.061, 58.4, 3.30), (0.0110, 0.048, 60.0, 2.90)],
    "less_constrained": [(0.0210, 0.090, 55.0, 2.80), (0.0250, 0.101, 57.5, 2.70),
                         (0.0190, 0.085, 54.1, 2.95)],
}


def _table(path, experiment, alpha_mean, alpha_max, val_score, g_total, validation=True):
    rows = [("loss", "gan_G", f"{0.5:.4g}", "0.01", 20, 20), ("loss", "G_total", f"{g_total:.4g}", "0.1", 20, 20),
            ("training", "steps trained", "300", None, None, None)]
    if validation:
        rows += [("training", "best step", "200", None, None, None),
                 ("training", "best val_score", f"{val_score:.4g}", None, None, None),
                 ("training", "best val_fd_ratio", "1.25", None, None, None),
                 ("training", "best val_alpha_disagreement", "0.0105", None, None, None)]
    rows += [("alpha disagreement (test)", "images", "8", None, None, None),
             ("alpha disagreement (test)", "mean", f"{alpha_mean:.4g}", None, None, None),
             ("alpha disagreement (test)", "max", f"{alpha_max:.4g}", None, None, None),
             ("setting", "lambda_A", "10", None, None, None)]
    table = pd.DataFrame(rows, columns=["section", "name", "value", "oscillation", "n", "window"])
    table.insert(0, "experiment", experiment)
    table.to_csv(path, index=False)
    return path


def _run(tmp_path, replicates=(0, 1, 2), experiments=tuple(NUMBERS), **kwargs):
    tables, names, reps = [], [], []
    for experiment in experiments:
        for r in replicates:
            path = tmp_path / f"r{r}" / f"style_{experiment}.csv"
            path.parent.mkdir(exist_ok=True)
            tables.append(_table(path, experiment, *NUMBERS[experiment][r], **kwargs))
            names.append(experiment)
            reps.append(r)
    out = {"csv": tmp_path / "style.csv", "md": tmp_path / "style.md",
           "comparison_csv": tmp_path / "style_comparison.csv"}
    return tabulate_style_transfer(tables=tables, experiments=names, replicates=reps, **out), out


def test_spread_over_three_replicates_matches_scipy(tmp_path):
    result, out = _run(tmp_path)
    table = pd.read_csv(out["csv"]).set_index(["experiment", "quantity"])
    alpha = [n[0] for n in NUMBERS["constrained"]]
    row = table.loc[("constrained", "test alpha disagreement, mean")]
    ci = stats.ttest_1samp(alpha, 0.0).confidence_interval(0.95)
    assert row["replicates"] == 3 and row["value_mean"] == pytest.approx(np.mean(alpha))
    assert (row["value_ci_low"], row["value_ci_high"]) == pytest.approx((ci.low, ci.high))
    assert row[["r0", "r1", "r2"]].tolist() == pytest.approx(alpha)
    quantities = table.loc["less_constrained"].index.tolist()
    assert quantities == ["test alpha disagreement, mean", "test alpha disagreement, max",
                          "best val_score", "best val_fd_ratio", "best val_alpha_disagreement",
                          "final gan_G", "final G_total"]
    assert table.loc[("less_constrained", "final G_total"), "value_mean"] == pytest.approx(
        np.mean([n[3] for n in NUMBERS["less_constrained"]]))
    assert table.loc[("constrained", "best val_fd_ratio"), "value_std"] == 0.0


def test_experiments_are_compared_paired_by_replicate(tmp_path):
    result, out = _run(tmp_path)
    a = [n[0] for n in NUMBERS["less_constrained"]]
    b = [n[0] for n in NUMBERS["constrained"]]
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    compared = pd.read_csv(out["comparison_csv"])
    assert len(compared) == 1
    row = compared.iloc[0]
    assert (row["experiment"], row["against"], row["test"], row["pairs"]) == (
        "less_constrained", "constrained", "paired", 3)
    assert row["difference"] == pytest.approx(np.mean(np.subtract(a, b)))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert bool(row["separated"]) is True and row["verdict"] == "separated"
    rows = markdown_rows(out["md"].read_text())
    assert rows[-1][:4] == ["less_constrained", "constrained", "test alpha disagreement, mean", "3"]
    assert rows[-1][-1] == "separated"


def test_one_replicate_gives_the_mean_only(tmp_path):
    result, out = _run(tmp_path, replicates=(1,), validation=False)
    spread = result["spread"].set_index(["experiment", "quantity"])
    row = spread.loc[("constrained", "test alpha disagreement, mean")]
    assert row["value_mean"] == 0.014 and math.isnan(row["value_std"])
    assert ("constrained", "best val_score") not in spread.index  # no validation split
    text = out["md"].read_text()
    assert "One replicate here: the mean alone, no spread." in text
    cells = {r[0]: r[1] for r in markdown_rows(text)}
    assert cells["test alpha disagreement, mean"] == "0.025"  # the last experiment's table
    assert result["comparisons"].iloc[0]["verdict"] == "no interval (one replicate)"


def test_one_experiment_has_nothing_to_compare(tmp_path):
    result, out = _run(tmp_path, experiments=("constrained",))
    assert result["comparisons"].empty
    assert "One experiment: nothing to compare." in out["md"].read_text()


def test_a_table_of_another_experiment_is_named(tmp_path):
    path = _table(tmp_path / "t.csv", "constrained", 0.01, 0.02, 50.0, 3.0)
    with pytest.raises(InputError, match="expected the table of experiment 'other'"):
        read_experiment_table(path, "other", 0)
    with pytest.raises(ValueError, match="each \\(experiment, replicate\\) once"):
        tabulate_style_transfer(tables=[path, path], experiments=["constrained"] * 2, replicates=[0, 0],
                                csv=tmp_path / "a.csv", md=tmp_path / "a.md",
                                comparison_csv=tmp_path / "b.csv")
