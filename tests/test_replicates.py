"""Replicate seeds and the spread over replicates, checked against scipy's own t intervals."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shapepose.replicates import aggregate, cell, difference, replicate_seed, summarize, verdict
from shapepose.seeding import derive_seed

VALUES = [0.61, 0.55, 0.70, 0.64]


def test_summary_matches_scipy_one_sample_interval():
    got = summarize(VALUES)
    ci = stats.ttest_1samp(VALUES, 0.0).confidence_interval(0.95)
    assert got["n"] == 4
    assert got["mean"] == pytest.approx(np.mean(VALUES))
    assert got["std"] == pytest.approx(np.std(VALUES, ddof=1))
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((ci.low, ci.high))


def test_summary_by_hand_for_three_replicates():
    # t(0.975, 2) = 4.302652729911275 (tables); mean 2, std 1 -> half width 4.3027 / sqrt(3)
    got = summarize([1.0, 2.0, 3.0])
    assert got["ci_high"] - 2.0 == pytest.approx(4.302652729911275 / math.sqrt(3))


def test_one_replicate_has_no_spread_and_nan_is_left_out():
    one = summarize([0.5])
    assert one["mean"] == 0.5 and math.isnan(one["std"]) and math.isnan(one["ci_low"])
    assert summarize([0.5, math.nan, 0.7])["n"] == 2
    assert summarize([])["n"] == 0


def test_paired_difference_is_the_interval_of_the_differences():
    a, b = np.array([5.0, 6.0, 7.5]), np.array([4.0, 5.5, 6.0])
    got = difference(a, b, paired=True)
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert got["difference"] == pytest.approx(np.mean(a - b))
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert got["separated"] is bool(ci.low > 0 or ci.high < 0)


def test_welch_difference_matches_scipy():
    a, b = np.array([0.62, 0.60, 0.66, 0.59]), np.array([0.48, 0.47, 0.52])
    got = difference(a, b, paired=False)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert got["separated"] is True
    overlapping = difference([1.0, 2.0, 3.0], [1.5, 2.5, 2.0], paired=False)
    assert overlapping["separated"] is False and verdict(False) == "not separated"


def test_one_replicate_comparison_has_no_verdict():
    got = difference([1.0], [0.0], paired=True)
    assert got["difference"] == 1.0 and got["separated"] is None
    assert verdict(None).startswith("no interval")


def test_replicate_seed_is_derived_per_stage_and_replicate():
    assert replicate_seed(7, "shape_pose", 2) == derive_seed(7, "shape_pose", "replicate", 2)
    seeds = {replicate_seed(7, s, r) for s in ("shape_pose", "neural_parts") for r in range(3)}
    assert len(seeds) == 6
    with pytest.raises(ValueError):
        replicate_seed(7, "shape_pose", -1)


def test_aggregate_groups_in_first_seen_order():
    frame = pd.DataFrame({"variant": ["b", "b", "a", "a"], "replicate": [0, 1, 0, 1],
                          "iou": [0.4, 0.6, 0.1, 0.3]})
    table = aggregate(frame, ["variant"], ["iou"])
    assert list(table["variant"]) == ["b", "a"]
    assert table.loc[0, "iou_mean"] == pytest.approx(0.5)
    assert table.loc[1, "replicates"] == 2
    ci = stats.ttest_1samp([0.1, 0.3], 0.0).confidence_interval(0.95)
    assert table.loc[1, "iou_ci_low"] == pytest.approx(ci.low)
    assert cell(0.5, math.nan, math.nan, math.nan) == "0.500"
    assert cell(0.5, 0.1, 0.3, 0.7) == "0.500 ± 0.100 [0.300, 0.700]"
