"""Table 6.2 over replicates, the paired comparisons and the real-mask table, on hand-made inputs.

Three variants (untrained, original, one stylized experiment "style_a") x two test sets x three
replicates; every spread and every paired interval is checked against scipy's own t intervals.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shapepose.errors import InputError
from shapepose.replicates import summarize
from shapepose.shape_pose.table import tabulate_shape_pose
from shapepose.tables import markdown_rows

VARIANTS = ["original", "style_a", "untrained"]  # the rule's order; untrained is put first
TEST_SETS = ["original", "style_a"]
# median pose error (deg) per (variant, test set), one value per replicate 0, 1, 2
MEDIAN = {("untrained", "original"): [88.0, 90.0, 86.0], ("untrained", "style_a"): [89.0, 91.0, 87.5],
          ("original", "original"): [12.0, 13.0, 11.5], ("original", "style_a"): [14.0, 15.0, 13.5],
          # on its own test set style_a is clearly lower (-5, -5, -4.8); on the original one the
          # differences (-0.1, +0.2, -0.2) straddle zero
          ("style_a", "original"): [11.9, 13.2, 11.3], ("style_a", "style_a"): [9.0, 10.0, 8.7]}
# real-mask disagreement per (variant, replicate): the real cut-outs, then the synthetic views
REAL = {"untrained": [[0.9, 1.2, 0.4], [1.0, 1.1, 0.8], [0.7, 1.3, 0.9]],
        "original": [[0.1, 0.3, 0.6], [0.2, 0.4, 0.5], [0.3, 0.2, 0.4]],
        "style_a": [[0.1, 0.2, 0.3], [0.2, 0.1, 0.3], [0.2, 0.2, 0.2]]}
SYNTHETIC = {"untrained": [1.0, 0.9, 1.1], "original": [0.2, 0.25, 0.15], "style_a": [0.22, 0.2, 0.19]}
OUTPUTS = {"out_csv": "t.csv", "out_per_replicate_csv": "per_rep.csv", "out_differences_csv": "diff.csv",
           "out_md": "t.md", "out_plot": "p.png", "out_real_md": "r.md"}


def _summary(path, variant, test_set, replicate, median, **extra):
    untrained = variant == "untrained"
    summary = {"variant": variant, "test_set": test_set, "replicate": replicate, "n_views": 12,
               "precision": 1.0 + median / 100, "coverage": 2.5, "chamfer": 3.5 + median / 100,
               "accuracy": 1.0 - median / 100, "median_error_deg": median, "accuracy_threshold_deg": 30.0,
               "untrained": untrained, "step": 0 if untrained else 400, **extra}
    path.write_text(json.dumps(summary))
    return str(path)


def _real_csv(path, variant, replicate, real, synthetic):
    sets = ["real"] * len(real) + ["synthetic"]
    pd.DataFrame({"variant": variant, "replicate": replicate, "set": sets,
                  "image": [f"img{i}.png" for i in range(len(sets))],
                  "disagreement": [*real, synthetic]}).to_csv(path, index=False)
    return str(path)


def _inputs(tmp_path, replicates=(0, 1, 2)):
    summaries, real = [], []
    for (variant, test_set), values in MEDIAN.items():
        for r in replicates:
            summaries.append(_summary(tmp_path / f"{variant}_{test_set}_r{r}.json", variant, test_set, r, values[r]))
    for variant in REAL:
        for r in replicates:
            real.append(_real_csv(tmp_path / f"{variant}_r{r}.csv", variant, r, REAL[variant][r],
                                  SYNTHETIC[variant][r]))
    return summaries[::-1], real  # any order: every file names its variant and replicate


def _run(tmp_path, summaries, real, **options):
    out = {k: tmp_path / name for k, name in OUTPUTS.items()}
    tabulate_shape_pose(summaries=summaries, real_masks=real, variants=VARIANTS, dataset="cars_demo",
                        **{k: str(v) for k, v in out.items()}, **options)
    return out


@pytest.fixture
def tables(tmp_path):
    return _run(tmp_path, *_inputs(tmp_path), replicates=3)


def test_aggregated_cells_match_scipy_one_sample_interval(tables):
    table = pd.read_csv(tables["out_csv"])
    ours = table[table["source"] == "ours"]
    assert list(zip(ours["variant"], ours["test_set"])) == [
        ("untrained", "original"), ("untrained", "style_a"), ("original", "original"),
        ("original", "style_a"), ("style_a", "original"), ("style_a", "style_a")]
    assert list(table.columns[:9]) == ["source", "variant", "test_set", "replicates", "precision_n",
                                       "precision_mean", "precision_std", "precision_ci_low", "precision_ci_high"]
    row = ours[(ours["variant"] == "original") & (ours["test_set"] == "original")].iloc[0]
    values = MEDIAN[("original", "original")]
    ci = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    assert row["replicates"] == 3 and row["median_error_deg_n"] == 3
    assert row["median_error_deg_mean"] == pytest.approx(np.mean(values))
    assert row["median_error_deg_std"] == pytest.approx(np.std(values, ddof=1))
    assert (row["median_error_deg_ci_low"], row["median_error_deg_ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-5)
    assert row["n_views"] == 12 and row["note"] == "step 400"
    assert ours.iloc[0]["note"] == "step-0 weights"
    # the seed's quoted rows: their single values in the _mean columns, no spread
    seed = table[table["source"] == "seed 002"]
    assert len(seed) == 9 and seed["median_error_deg_std"].isna().all()
    baseline = seed[(seed["variant"] == "Baseline") & (seed["test_set"] == "Original")].iloc[0]
    assert (baseline["precision_mean"], baseline["median_error_deg_mean"]) == (1.60, 6.95)
    # the Markdown cell: mean ± std [95 % interval]
    md = tables["out_md"].read_text()
    lines = markdown_rows(md)
    assert lines[0] == ["variant", "test set", "replicates", "precision", "coverage", "Chamfer", "accuracy",
                        "median error (deg)", "views", "note"]
    assert lines[3][:3] == ["original", "original", "3"]
    assert lines[3][7] == (f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f} "
                           f"[{ci.low:.2f}, {ci.high:.2f}]")
    assert "95 % Student-t interval" in md
    assert md.index("## Shape and pose") < md.index("## seed 002") < md.index("## Does stylized training help?")
    seed_rows = [row[:7] for row in lines if row[0] == "Experiment 2" and row[1] == "Original"]
    assert seed_rows == [["Experiment 2", "Original", "1.59", "1.37", "2.96", "0.83", "4.55"]]


def test_per_replicate_rows(tables):
    rows = pd.read_csv(tables["out_per_replicate_csv"])
    assert list(rows.columns) == ["variant", "test_set", "replicate", "precision", "coverage", "chamfer",
                                  "accuracy", "median_error_deg", "n_views", "note"]
    assert len(rows) == 3 * 2 * 3
    assert list(rows["variant"][:6]) == ["untrained"] * 6 and list(rows["replicate"][:3]) == [0, 1, 2]
    got = rows[(rows["variant"] == "style_a") & (rows["test_set"] == "style_a")]["median_error_deg"]
    assert list(got) == MEDIAN[("style_a", "style_a")]


def test_paired_differences_match_scipy_and_give_verdicts(tables):
    diff = pd.read_csv(tables["out_differences_csv"])
    assert list(diff.columns) == ["comparison", "test_set", "metric", "n", "difference", "ci_low",
                                  "ci_high", "separated"]
    assert list(dict.fromkeys(diff["comparison"])) == ["style_a - original", "original - untrained"]
    pose = diff[diff["metric"] == "median_error_deg"].set_index(["comparison", "test_set"])
    for test_set, separated in (("style_a", True), ("original", False)):
        a, b = MEDIAN[("style_a", test_set)], MEDIAN[("original", test_set)]
        ci = stats.ttest_rel(a, b).confidence_interval(0.95)
        row = pose.loc[("style_a - original", test_set)]
        assert row["n"] == 3 and row["difference"] == pytest.approx(np.mean(np.subtract(a, b)))
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-5)
        assert bool(row["separated"]) is separated
    # the real-mask comparison pairs each replicate's mean disagreement
    masks = diff[diff["metric"] == "mean_disagreement"].set_index(["comparison", "test_set"])
    a = [np.mean(v) for v in REAL["style_a"]]
    b = [np.mean(v) for v in REAL["original"]]
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    row = masks.loc[("style_a - original", "real")]
    assert (row["difference"], row["ci_low"], row["ci_high"]) == pytest.approx(
        (np.mean(np.subtract(a, b)), ci.low, ci.high), rel=1e-5)
    assert masks.loc[("original - untrained", "real")]["separated"]  # training helps, clearly
    assert set(masks.index.get_level_values("test_set")) == {"real", "synthetic"}
    # the Markdown: difference [interval] and verdict
    md = tables["out_md"].read_text()
    block = markdown_rows(md[md.index("## Does stylized training help?"):])
    assert block[0] == ["comparison (a - b)", "images", "metric", "replicates", "difference [95 % interval]",
                        "verdict"]
    by_key = {(r[0], r[1], r[2]): r for r in block[1:]}
    sep = by_key[("style_a - original", "style_a", "median pose error (deg)")]
    assert sep[5] == "separated" and sep[4].startswith("-4.93 [")
    assert by_key[("style_a - original", "original", "median pose error (deg)")][5] == "not separated"
    assert by_key[("style_a - original", "real cut-outs", "mean mask disagreement")][3] == "3"


def test_real_mask_table_spreads_the_replicate_means_and_pools_the_images(tables):
    rows = markdown_rows(tables["out_real_md"].read_text())
    assert rows[0] == ["variant", "images", "replicates", "n (pooled)", "mean over replicates",
                       "median (pooled)", "share < 0.5 (pooled)"]
    assert [r[:2] for r in rows[1:3]] == [["untrained", "real"], ["untrained", "synthetic"]]
    original_real = next(r for r in rows if r[:2] == ["original", "real"])
    means = [np.mean(v) for v in REAL["original"]]
    spread = summarize(means)
    pooled = np.concatenate(REAL["original"])
    assert original_real[2:4] == ["3", "9"]
    assert original_real[4] == (f"{spread['mean']:.3f} ± {spread['std']:.3f} "
                                f"[{spread['ci_low']:.3f}, {spread['ci_high']:.3f}]")
    assert original_real[5:] == [f"{np.median(pooled):.3f}", f"{np.mean(pooled < 0.5):.3f}"]
    assert tables["out_plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_replicate_has_the_mean_alone_and_no_verdict(tmp_path):
    out = _run(tmp_path, *_inputs(tmp_path, replicates=(0,)))
    lines = markdown_rows(out["out_md"].read_text())
    assert lines[3][:3] == ["original", "original", "1"] and lines[3][7] == "12.00"
    md = out["out_md"].read_text()
    block = markdown_rows(md[md.index("## Does stylized training help?"):])
    assert {r[5] for r in block[1:]} == {"no interval (one replicate)"}
    diff = pd.read_csv(out["out_differences_csv"])
    assert diff["separated"].isna().all() and diff["ci_low"].isna().all() and (diff["n"] == 1).all()


def test_bad_inputs_name_the_file(tmp_path):
    summaries, real = _inputs(tmp_path)
    bad = tmp_path / "no_replicate.json"
    summary = json.loads(Path(summaries[0]).read_text())
    del summary["replicate"]
    bad.write_text(json.dumps(summary))
    with pytest.raises(InputError, match="no_replicate.json.*'replicate'"):
        _run(tmp_path, [*summaries, str(bad)], real)
    twice = _summary(tmp_path / "twice.json", "original", "original", 1, 12.0)
    with pytest.raises(InputError, match="twice.json.*second summary"):
        _run(tmp_path, [*summaries, twice], real)
    with pytest.raises(InputError, match=r"missing \[2\]"):
        _run(tmp_path, [s for s in summaries if not s.endswith("original_original_r2.json")], real, replicates=3)
    mixed = tmp_path / "mixed.csv"
    pd.concat([pd.read_csv(real[0]), pd.read_csv(real[1])]).to_csv(mixed, index=False)
    with pytest.raises(InputError, match="mixed.csv.*one file per variant and replicate"):
        _run(tmp_path, summaries, [*real[2:], str(mixed)])
    old = tmp_path / "old.csv"
    pd.read_csv(real[0]).drop(columns=["replicate"]).to_csv(old, index=False)
    with pytest.raises(InputError, match="old.csv.*lacks column"):
        _run(tmp_path, summaries, [*real[1:], str(old)])
    with pytest.raises(InputError, match=r"style_a_r0.csv.*real masks of variant style_a: replicates \[0, 2\].*missing \[1\]"):
        _run(tmp_path, summaries, [p for p in real if not p.endswith("style_a_r1.csv")], replicates=3)
