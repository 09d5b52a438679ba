"""The Neural Parts table over replicates: its cells and comparisons against scipy's t intervals,
the per-replicate CSV, one replicate without an interval, and bad eval files named."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shapepose.errors import InputError
from shapepose.neural_parts.table import PAPER, SEED_REPRODUCTION, tabulate_neural_parts
from shapepose.tables import markdown_rows

# IoU and Chamfer-L1 per (P, trained?) and replicate 0, 1, 2
IOU = {(2, True): [0.52, 0.55, 0.49], (2, False): [0.21, 0.26, 0.22],
       (4, True): [0.58, 0.57, 0.53], (4, False): [0.23, 0.25, 0.27]}
CHAMFER = {(2, True): [0.061, 0.055, 0.066], (2, False): [0.21, 0.19, 0.24],
           (4, True): [0.052, 0.054, 0.050], (4, False): [0.20, 0.23, 0.22]}


def evaluation(n, trained, replicate, iou, chamfer):
    return {"n_primitives": n, "untrained": not trained, "replicate": replicate, "iou": iou,
            "chamfer_l1": chamfer, "accuracy": chamfer, "completeness": chamfer, "n_points": 5000,
            "n_test_frames": 22, "training": {"n_train_frames": 80, "steps": 200},
            "frames": [{"sequence": "s", "frame": 0, "iou": iou, "chamfer_l1": chamfer}]}


def write_evaluations(folder, replicates=3, counts=(2, 4)):
    paths = []
    for (n, trained), ious in IOU.items():
        if n not in counts:
            continue
        for r in range(replicates):
            path = folder / f"P{n}_r{r}_{'trained' if trained else 'untrained'}.json"
            path.write_text(json.dumps(evaluation(n, trained, r, ious[r], CHAMFER[n, trained][r])))
            paths.append(path)
    return paths[::-1]  # any order


def tabulate(folder, paths):
    out = {name: folder / name for name in ("t.csv", "t.md", "r.csv", "c.csv")}
    tabulate_neural_parts(paths, out["t.csv"], out["t.md"], out["r.csv"], out["c.csv"], "demo")
    return (pd.read_csv(out["t.csv"]), out["t.md"].read_text(), pd.read_csv(out["r.csv"]),
            pd.read_csv(out["c.csv"]))


def row(table, **keys):
    selected = table
    for key, value in keys.items():
        selected = selected[selected[key] == value]
    assert len(selected) == 1, (keys, selected)
    return selected.iloc[0]


def test_summary_cells_are_scipys_one_sample_t_intervals(tmp_path):
    summary, md, per_replicate, _ = tabulate(tmp_path, write_evaluations(tmp_path))
    assert list(summary.columns[:4]) == ["source", "n_primitives", "weights", "replicates"]
    assert [c for c in summary.columns if c.startswith("iou_")] == [
        "iou_n", "iou_mean", "iou_std", "iou_ci_low", "iou_ci_high"]
    for (n, trained), values in IOU.items():
        got = row(summary, source="ours", n_primitives=n, weights="trained" if trained else "untrained")
        ci = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
        assert got["replicates"] == 3 and got["iou_n"] == 3
        assert got["iou_mean"] == pytest.approx(np.mean(values), rel=1e-5)
        assert got["iou_std"] == pytest.approx(np.std(values, ddof=1), rel=1e-5)
        assert (got["iou_ci_low"], got["iou_ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-5)
        chamfer = stats.ttest_1samp(CHAMFER[n, trained], 0.0).confidence_interval(0.95)
        assert got["chamfer_l1_ci_high"] == pytest.approx(chamfer.high, rel=1e-5)
    # quoted rows: the seed's numbers, no spread, no replicate count
    paper = row(summary, source="Neural Parts paper", n_primitives=5)
    assert paper["iou_mean"] == PAPER["iou"][5] and paper["chamfer_l1_mean"] == PAPER["chamfer_l1"][5]
    assert math.isnan(paper["replicates"]) and math.isnan(paper["iou_std"])
    assert row(summary, source="seed 003 reproduction", n_primitives=2)["iou_mean"] == \
        SEED_REPRODUCTION["iou"][2]

    # the per-replicate CSV recomputes every cell
    assert list(per_replicate.columns) == ["n_primitives", "weights", "replicate", "iou",
                                           "chamfer_l1", "n_test_frames"]
    assert len(per_replicate) == 12
    p2 = per_replicate[(per_replicate["n_primitives"] == 2) & (per_replicate["weights"] == "trained")]
    assert p2["replicate"].tolist() == [0, 1, 2] and p2["iou"].tolist() == IOU[2, True]

    # the Markdown: seed 003's layout, cells "mean ± std [lo, hi]"
    assert md.startswith("Neural Parts on demo (seed 003): IoU and Chamfer-L1 per number of primitives\n\n")
    assert "95 % Student-t interval of the mean" in md
    rows = markdown_rows(md)
    assert rows[0] == ["metric", "source", "2 primitives", "4 primitives", "5 primitives",
                       "8 primitives", "10 primitives", "note"]
    values = IOU[2, True]
    ci = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    expected = f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f} [{ci.low:.3f}, {ci.high:.3f}]"
    assert rows[1][:3] == ["IoU", "ours, trained", expected]
    assert rows[2][:2] == ["IoU", "ours, untrained"]
    assert rows[4][:7] == ["IoU", "Neural Parts paper", "0.675", "", "0.673", "0.676", "0.678"]
    chamfer = next(r for r in rows if r[:2] == ["Chamfer-L1", "ours, trained"])
    assert chamfer[2].startswith(f"{np.mean(CHAMFER[2, True]):.4f} ± ")  # 4 decimals below 0.1


def test_comparisons_are_scipys_paired_t_intervals(tmp_path):
    _, md, _, comparisons = tabulate(tmp_path, write_evaluations(tmp_path))
    expected = [("P2 trained", "P2 untrained", IOU[2, True], IOU[2, False], "IoU"),
                ("P2 trained", "P2 untrained", CHAMFER[2, True], CHAMFER[2, False], "Chamfer-L1"),
                ("P4 trained", "P4 untrained", IOU[4, True], IOU[4, False], "IoU"),
                ("P4 trained", "P2 trained", IOU[4, True], IOU[2, True], "IoU"),
                ("P4 trained", "P2 trained", CHAMFER[4, True], CHAMFER[2, True], "Chamfer-L1")]
    assert len(comparisons) == 6  # 2 x trained vs untrained, 1 x P4 vs P2; both metrics each
    for a, b, x, y, metric in expected:
        got = row(comparisons, a=a, b=b, metric=metric)
        ci = stats.ttest_rel(x, y).confidence_interval(0.95)
        assert got["test"] == "paired" and got["n"] == 3
        assert got["difference"] == pytest.approx(np.mean(x) - np.mean(y), rel=1e-5)
        assert (got["ci_low"], got["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-5)
        separated = ci.low > 0 or ci.high < 0
        assert got["verdict"] == ("separated" if separated else "not separated")
    assert row(comparisons, a="P2 trained", b="P2 untrained", metric="IoU")["verdict"] == "separated"
    assert row(comparisons, a="P4 trained", b="P2 trained", metric="IoU")["comparison"] == "P4 vs P2"

    assert "## Comparisons" in md
    block = markdown_rows(md[md.index("## Comparisons"):])
    assert block[0] == ["metric", "a - b", "difference [95 % interval]", "replicates", "verdict"]
    ci = stats.ttest_rel(IOU[2, True], IOU[2, False]).confidence_interval(0.95)
    diff = np.mean(IOU[2, True]) - np.mean(IOU[2, False])
    assert block[1] == ["IoU", "P2 trained - P2 untrained", f"{diff:.3f} [{ci.low:.3f}, {ci.high:.3f}]",
                        "3 (paired)", "separated"]


def test_one_replicate_gives_the_mean_and_no_interval(tmp_path):
    summary, md, _, comparisons = tabulate(tmp_path, write_evaluations(tmp_path, replicates=1))
    got = row(summary, source="ours", n_primitives=2, weights="trained")
    assert got["replicates"] == 1 and got["iou_mean"] == IOU[2, True][0]
    assert math.isnan(got["iou_std"]) and math.isnan(got["iou_ci_low"])
    assert markdown_rows(md)[1][:4] == ["IoU", "ours, trained", f"{IOU[2, True][0]:.3f}",
                                        f"{IOU[4, True][0]:.3f}"]
    assert set(comparisons["verdict"]) == {"no interval (one replicate)"}
    assert comparisons["separated"].isna().all() and comparisons["ci_low"].isna().all()
    assert "no interval (one replicate)" in md


def test_an_eval_file_without_a_key_is_named(tmp_path):
    paths = write_evaluations(tmp_path)
    broken = json.loads(paths[3].read_text())
    del broken["replicate"]
    paths[3].write_text(json.dumps(broken))
    with pytest.raises(InputError, match="replicate") as caught:
        tabulate(tmp_path, paths)
    assert caught.value.path == str(paths[3]) and caught.value.key == "replicate"
    assert not (tmp_path / "t.csv").exists()


def test_the_same_replicate_twice_is_named(tmp_path):
    paths = write_evaluations(tmp_path)
    copy = tmp_path / "copy.json"
    copy.write_text(paths[0].read_text())
    with pytest.raises(InputError, match="replicate") as caught:
        tabulate(tmp_path, [*paths, copy])
    assert caught.value.path == str(copy)
