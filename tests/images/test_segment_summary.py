"""The segmenter's replicates summarized from hand-made per-replicate tables, against scipy."""

import math

import pandas as pd
import pytest
from scipy import stats

from shapepose.errors import InputError
from shapepose.images.summary import accepted_spread, read_funnels, summarize_segments
from shapepose.images.tables import MEAN_IOU, WHOLE_RECALL
from shapepose.tables import markdown_rows

IOU = [0.86, 0.88, 0.93]
RECALL = [0.75, 0.85, 0.70]
ACCEPTED = [40, 42, 44]

TARGETS = {"matched_iou": 0.85, "whole_recall": 0.8, "cutout_spread": 0.1}  # config learning.targets

def _write(tmp_path, replicate, iou, recall, accepted, truth=True):
    quality = tmp_path / f"r{replicate}" / "segmentation_quality.csv"
    funnel = tmp_path / f"r{replicate}" / "segment_funnel.csv"
    quality.parent.mkdir(parents=True, exist_ok=True)
    if truth:
        rows = [("matched pairs", 10 + replicate), (MEAN_IOU, iou), (WHOLE_RECALL, recall),
                ("accepted cut-outs", accepted)]
    else:
        rows = [("ground truth", "none: these photos have no true masks")]
    pd.DataFrame(rows, columns=["metric", "value"]).to_csv(quality, index=False)
    pd.DataFrame({"step": ["photos", "instances", "after 3.1 filters", "after 3.2 filters"],
                  "count": [100, 80, 60, accepted], "thesis": [16185, None, 17398, 14092]}
                 ).to_csv(funnel, index=False)
    return quality, funnel


def _run(tmp_path, replicates, iou=IOU, recall=RECALL, accepted=ACCEPTED, truth=True):
    files = [_write(tmp_path, r, iou[k], recall[k], accepted[k], truth) for k, r in enumerate(replicates)]
    out = {"quality_csv": tmp_path / "q.csv", "quality_md": tmp_path / "q.md",
           "funnel_csv": tmp_path / "f.csv"}
    result = summarize_segments(quality=[q for q, _ in files], funnel=[f for _, f in files],
                                replicates=replicates, targets=TARGETS, **out)
    return result, out


def test_three_replicates_match_scipy_and_keep_each_replicate(tmp_path):
    result, out = _run(tmp_path, [0, 1, 2])
    table = pd.read_csv(out["quality_csv"]).set_index("metric")
    iou = table.loc[MEAN_IOU]
    ci = stats.ttest_1samp(IOU, 0.0).confidence_interval(0.95)
    assert iou["replicates"] == 3 and iou["value_n"] == 3
    assert iou["value_mean"] == pytest.approx(sum(IOU) / 3)
    assert iou["value_std"] == pytest.approx(stats.tstd(IOU))
    assert (iou["value_ci_low"], iou["value_ci_high"]) == pytest.approx((ci.low, ci.high))
    assert [float(iou[c]) for c in ("r0", "r1", "r2")] == IOU
    # targets on the mean: IoU 0.89 >= 0.85 met, recall 0.7667 < 0.8 not
    assert bool(iou["target_met"]) is True and bool(table.loc[WHOLE_RECALL, "target_met"]) is False
    assert math.isnan(table.loc["matched pairs", "target_met"])
    rows = markdown_rows(out["quality_md"].read_text())
    assert rows[0] == ["metric", "value", "target", "mean meets target", "r0", "r1", "r2"]
    by_metric = {r[0]: r for r in rows[1:]}
    assert by_metric[MEAN_IOU][1] == (f"{iou['value_mean']:.3f} ± {iou['value_std']:.3f} "
                                      f"[{ci.low:.3f}, {ci.high:.3f}]")
    assert by_metric[WHOLE_RECALL][2:4] == [">= 0.8", "no"]
    funnel = pd.read_csv(out["funnel_csv"]).set_index("step")
    assert funnel.loc["after 3.2 filters", ["r0", "r1", "r2"]].tolist() == ACCEPTED
    assert funnel.loc["photos", "count_std"] == 0.0


def test_accepted_cutouts_spread_by_hand(tmp_path):
    result, out = _run(tmp_path, [0, 1, 2])
    spread = result["accepted"]
    assert (spread["min"], spread["max"], spread["mean"]) == (40, 44, 42)
    assert spread["spread"] == pytest.approx(4 / 42) and spread["within_target"] is True
    assert ("min 40, max 44, mean 42.0; spread (max - min) / mean = 9.5 %, within the 10 % target"
            in out["quality_md"].read_text())
    wide = accepted_spread(pd.DataFrame({"replicate": [0, 1, 2], "step": ["after 3.2 filters"] * 3,
                                         "count": [40, 45, 50]}), 0.1)
    assert wide["spread"] == pytest.approx(10 / 45) and wide["within_target"] is False


def test_one_replicate_gives_the_mean_only_and_says_so(tmp_path):
    result, out = _run(tmp_path, [3])
    row = result["quality"].set_index("metric").loc[MEAN_IOU]
    assert row["value_mean"] == IOU[0] and math.isnan(row["value_std"]) and math.isnan(row["value_ci_low"])
    text = out["quality_md"].read_text()
    assert "One replicate here: the mean alone, no spread." in text
    assert {r[0]: r[1] for r in markdown_rows(text)}[MEAN_IOU] == "0.860"
    assert result["accepted"]["spread"] is None
    assert "40 from one replicate; no spread across replicates" in text
    assert list(result["quality"].columns)[-1] == "r3"


def test_real_photos_pass_the_no_truth_row_through(tmp_path):
    result, out = _run(tmp_path, [0, 1], truth=False)
    table = pd.read_csv(out["quality_csv"])
    assert table["metric"].tolist() == ["ground truth"]
    assert table.loc[0, "value_n"] == 0 and table.loc[0, "r1"].startswith("none:")
    rows = markdown_rows(out["quality_md"].read_text())
    assert rows[0] == ["metric", "value", "r0", "r1"]  # no targets without truth
    assert rows[1][1] == "none: these photos have no true masks"
    assert result["accepted"]["spread"] == pytest.approx(2 / 41)


def test_bad_input_is_named(tmp_path):
    quality, funnel = _write(tmp_path, 0, 0.9, 0.9, 40)
    with pytest.raises(ValueError, match="one file per replicate"):
        summarize_segments(quality=[quality], funnel=[funnel], replicates=[0, 1],
                           quality_csv=tmp_path / "q.csv", quality_md=tmp_path / "q.md",
                           funnel_csv=tmp_path / "f.csv", targets=TARGETS)
    pd.DataFrame({"step": ["photos"], "count": [3]}).to_csv(funnel, index=False)
    with pytest.raises(InputError, match="after 3.2 filters"):
        read_funnels([funnel], [0])
