"""The learning table: each stage's trained mean and interval, its baseline, target and verdict."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shapepose.errors import InputError
from shapepose.learning import SEG_ACCEPTED, SEG_IOU, SEG_WHOLE_RECALL, STYLE_SECTION, tabulate_learning

TARGETS = {
    "shape_pose": {"accuracy": 0.6, "median_error_deg": 30, "chamfer_ratio": 0.6},
    "neural_parts": {"iou": 0.6},
    "segmentation": {"matched_iou": 0.85, "whole_recall": 0.8, "cutout_spread": 0.1},
    "style_transfer": {"alpha_disagreement": 0.05},
}
ACCURACY = [0.70, 0.62, 0.66]
UNTRAINED_CHAMFER = [10.0, 11.0, 12.0]


def _write_json(path, data):
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def inputs(tmp_path):
    sp, sp_variants = [], []
    for variant in ("original", "untrained"):
        for r in range(3):
            trained = variant == "original"
            sp.append(_write_json(tmp_path / f"sp_{variant}_{r}.json", {
                "variant": variant, "accuracy": ACCURACY[r] if trained else 0.0,
                "median_error_deg": 25.0 + r if trained else 120.0,
                "chamfer": 7.0 if trained else UNTRAINED_CHAMFER[r], "accuracy_threshold_deg": 30}))
            sp_variants.append(variant)
    np_files, counts, weights = [], [], []
    for n in (2, 4):
        for r in range(3):
            for kind in ("trained", "untrained"):
                iou = {"trained": 0.5 + 0.05 * r + 0.03 * (n - 2), "untrained": 0.1}[kind]
                np_files.append(_write_json(tmp_path / f"np_{n}_{r}_{kind}.json",
                                            {"iou": iou, "chamfer_l1": 0.05 if kind == "trained" else 0.2}))
                counts.append(n)
                weights.append(kind)
    seg = []
    for r, accepted in enumerate([40, 44, 42]):
        path = tmp_path / f"quality_{r}.csv"
        pd.DataFrame({"metric": [SEG_IOU, SEG_WHOLE_RECALL, SEG_ACCEPTED],
                      "value": [0.86 + 0.01 * r, 0.75, accepted]}).to_csv(path, index=False)
        seg.append(str(path))
    style = []
    for r in range(3):
        path = tmp_path / f"style_{r}.csv"
        pd.DataFrame({"experiment": "constrained", "section": [STYLE_SECTION, STYLE_SECTION],
                      "name": ["images", "mean"], "value": [40, 0.02 * (r + 1)]}).to_csv(path, index=False)
        style.append(str(path))
    losses = []
    for r in range(3):
        path = tmp_path / f"losses_{r}.csv"
        pd.DataFrame({"step": [1, 2, 3, 4], "total": [3.0, 2.0, 1.5, 1.2],
                      "val_student_reprojection": [np.nan, 5.0, np.nan, 4.0]}).to_csv(path, index=False)
        losses.append(str(path))
    return dict(shape_pose=sp, shape_pose_variants=sp_variants, neural_parts=np_files,
                neural_parts_counts=counts, neural_parts_weights=weights, segmentation=seg,
                style=style, style_experiment="constrained",
                curves={"shape_pose": {"files": losses, "groups": ["original"] * 3, "replicates": [0, 1, 2]}},
                targets=TARGETS, scale="test scale")


def test_learning_table_numbers_and_verdicts(tmp_path, inputs):
    out = {"shape_pose": tmp_path / "curve_sp.png"}
    table = tabulate_learning(**inputs, out_csv=tmp_path / "l.csv", out_md=tmp_path / "l.md",
                              out_curves=out)
    rows = {r.metric: r for r in table.itertuples()}
    accuracy = rows["pose accuracy at 30 deg"]
    ci = stats.ttest_1samp(ACCURACY, 0.0).confidence_interval(0.95)
    assert accuracy.trained_mean == pytest.approx(np.mean(ACCURACY))
    assert (accuracy.trained_ci_low, accuracy.trained_ci_high) == pytest.approx((ci.low, ci.high))
    assert accuracy.baseline_mean == 0.0 and accuracy.met is True
    assert rows["median pose error (deg)"].met is True  # mean 26 <= 30
    # Chamfer 7 <= 0.6 x the untrained mean 11 = 6.6? no
    assert rows["Chamfer x100"].met is False
    assert rows["IoU, 2 primitives"].trained_mean == pytest.approx(0.55)
    assert rows["IoU, 2 primitives"].met is False and rows["IoU, 4 primitives"].met is True
    assert rows["Chamfer-L1 (m), 4 primitives"].met is True
    assert rows["mean mask IoU of matched pairs"].met is True
    assert rows["recall of whole, unoccluded cars"].met is False
    spread = rows["accepted cut-outs: (max - min) / mean over replicates"]
    assert spread.trained_mean == pytest.approx((44 - 40) / 42) and spread.met is True
    assert rows["alpha disagreement on the test renders (constrained)"].trained_mean == pytest.approx(0.04)
    assert (tmp_path / "curve_sp.png").read_bytes()[:4] == b"\x89PNG"
    md = (tmp_path / "l.md").read_text()
    assert "0.660 ± 0.040" in md and "| yes " in md and "| no " in md
    again = pd.read_csv(tmp_path / "l.csv")
    assert again["trained_mean"].iloc[0] == pytest.approx(np.mean(ACCURACY))


def test_learning_table_names_a_file_that_lacks_a_row(tmp_path, inputs):
    bad = tmp_path / "bad_quality.csv"
    pd.DataFrame({"metric": [SEG_IOU], "value": [0.9]}).to_csv(bad, index=False)
    inputs["segmentation"] = [str(bad)]
    with pytest.raises(InputError, match="bad_quality.csv"):
        tabulate_learning(**inputs, out_csv=tmp_path / "l.csv", out_md=tmp_path / "l.md", out_curves={})
    assert not (tmp_path / "l.csv").exists()


def test_one_replicate_gives_a_mean_without_spread(tmp_path, inputs):
    inputs["shape_pose"] = [inputs["shape_pose"][0], inputs["shape_pose"][3]]
    inputs["shape_pose_variants"] = ["original", "untrained"]
    inputs["segmentation"] = inputs["segmentation"][:1]
    table = tabulate_learning(**inputs, out_csv=tmp_path / "l.csv", out_md=tmp_path / "l.md", out_curves={})
    accuracy = table[table["metric"] == "pose accuracy at 30 deg"].iloc[0]
    assert accuracy["trained_mean"] == 0.70 and np.isnan(accuracy["trained_ci_low"])
    spread = table[table["metric"].str.startswith("accepted")].iloc[0]
    assert "one replicate" in spread["note"] and spread["met"] is None


def test_summary_rows_pool_replicates_per_group_against_a_baseline_in_the_same_file(tmp_path):
    from shapepose.learning import summary_rows

    files, groups = [], []
    for group, trained in (("a", [1.0, 2.0, 3.0]), ("b", [9.0, 10.0, 11.0])):
        for r, value in enumerate(trained):
            files.append(_write_json(tmp_path / f"{group}{r}.json", {"err": value, "base": 8.0 + r}))
            groups.append(group)
    specs = [{"metric": "error ({group})", "key": "err", "baseline_key": "base", "baseline": "mean pose",
              "better": "lower", "ratio": 0.5},
             {"metric": "error, beat it ({group})", "key": "err", "baseline_key": "base",
              "baseline": "mean pose", "better": "lower", "ratio": None}]
    rows = {r["metric"]: r for r in summary_rows("pose", files, groups, specs)}
    a = rows["error (a)"]
    assert a["replicates"] == 3 and a["trained_mean"] == pytest.approx(2.0)
    assert a["trained_std"] == pytest.approx(1.0) and a["baseline_mean"] == pytest.approx(9.0)
    low, high = stats.ttest_1samp([1.0, 2.0, 3.0], 0.0).confidence_interval(0.95)
    assert (a["trained_ci_low"], a["trained_ci_high"]) == pytest.approx((low, high))
    assert a["met"] is True and a["target"] == "<= 0.5 x mean pose"  # 2 <= 4.5
    assert rows["error (b)"]["met"] is False  # 10 > 4.5
    assert rows["error, beat it (b)"]["met"] is False and rows["error, beat it (a)"]["met"] is True
    with pytest.raises(InputError, match="lacks"):
        summary_rows("pose", files[:1], ["a"], [dict(specs[0], key="missing")])


def test_pose_transfer_and_lwgan_rows_read_their_evaluation_files(tmp_path, inputs):
    """The stage specs read the keys the stages write: PMD beside its three baselines, LWGAN's
    nested per-method metrics; small values keep three significant digits in the Markdown."""
    pt = [_write_json(tmp_path / f"pt{r}.json", {"pmd_trained": 3.3e-3 + 1e-4 * r, "pmd_untrained": 8.7e-2,
                                                "pmd_identity_mesh": 1.3e-2, "pmd_pose_mesh": 4.5e-4})
          for r in range(2)]
    lw = [_write_json(tmp_path / f"lw{r}.json", {m: {"ssim": s, "masked_l1": l1} for m, s, l1 in (
        ("trained", 0.65 + 0.01 * r, 0.10), ("untrained", 0.39, 0.17), ("paste", 0.83, 0.07))})
          for r in range(2)]
    p2m = [_write_json(tmp_path / f"p2m{r}.json", {m: {"mpjpe": e, "pa_mpjpe": e / 2, "mpvpe": e + 20}
                                                   for m, e in (("trained", 75.0 + r), ("untrained", 488.0),
                                                                ("mean", 199.0))})
           for r in range(2)]
    summaries = {"pose_transfer": {"files": pt, "groups": ["maxpool"] * 2},
                 "pose2mesh": {"files": p2m, "groups": ["adam"] * 2},
                 "lwgan": {"files": lw, "groups": ["baseline"] * 2}}
    table = tabulate_learning(**inputs, out_csv=tmp_path / "l.csv", out_md=tmp_path / "l.md",
                              out_curves={}, summaries=summaries)
    pmd = table[table["stage"] == "pose transfer"].set_index("baseline")
    assert pmd.loc["untrained", "trained_mean"] == pytest.approx(3.35e-3)
    assert pmd.loc["untrained", "met"] and pmd.loc["identity mesh unchanged", "met"]
    assert not pmd.loc["pose mesh itself", "met"]
    lwgan = table[table["stage"] == "Liquid Warping GAN"]
    ssim = lwgan[lwgan["metric"].str.startswith("SSIM")].iloc[0]
    assert ssim["trained_mean"] == pytest.approx(0.655) and ssim["baseline_mean"] == pytest.approx(0.39)
    assert ssim["met"] == True  # noqa: E712 (a numpy bool from the frame; None would fail)
    paste = lwgan[lwgan["baseline"].str.startswith("warped")].iloc[0]
    assert paste["met"] == False  # noqa: E712
    p2m_rows = table[table["stage"] == "Pose2Mesh"]
    assert len(p2m_rows) == 3 and p2m_rows["met"].all()
    mpvpe = p2m_rows[p2m_rows["metric"].str.startswith("MPVPE")].iloc[0]
    assert mpvpe["trained_mean"] == pytest.approx(95.5) and mpvpe["baseline_mean"] == pytest.approx(219.0)
    md = (tmp_path / "l.md").read_text()
    assert "0.00335 ± 7.07e-05" in md and "untrained 0.087" in md
