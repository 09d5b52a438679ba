"""The PMD table: pooled replicates, the no-learning rows once per test list, seed 000's numbers,
paired comparisons, and one clear error for an evaluation that does not fit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shapepose.errors import InputError
from shapepose.pose_transfer.table import tabulate_pose_transfer
from shapepose.tables import markdown_rows

VARIANTS = ["original", "maxpool", "spadabin"]


def evaluation(variant, test, replicate, trained, untrained=0.09, identity=0.013, pose=4.5e-4):
    return {"variant": variant, "test": test, "replicate": replicate, "n_pairs": 24,
            "n_vertices": 752, "pmd_trained": trained, "pmd_untrained": untrained,
            "pmd_identity_mesh": identity, "pmd_pose_mesh": pose,
            "training": {"steps": 400, "batch_size": 8, "n_train_identities": 8, "n_train_poses": 24}}


def write(tmp_path, evaluations):
    paths = []
    for e in evaluations:
        path = tmp_path / f"{e['variant']}_{e['test']}_{e['replicate']}.json"
        path.write_text(json.dumps(e))
        paths.append(str(path))
    return paths


def run(tmp_path, paths):
    out = {k: str(tmp_path / f"{k}.{'md' if k == 'md' else 'csv'}") for k in ("csv", "md", "rep", "cmp")}
    summary = tabulate_pose_transfer(paths, out["csv"], out["md"], out["rep"], out["cmp"],
                                     dataset="npt_demo", variants=VARIANTS)
    return summary, out


TRAINED = {("original", "seen"): [3e-3, 4e-3], ("maxpool", "seen"): [2e-3, 2.6e-3],
           ("spadabin", "seen"): [3.2e-3, 3.4e-3], ("original", "unseen"): [5e-3, 6e-3],
           ("maxpool", "unseen"): [4e-3, 4.4e-3], ("spadabin", "unseen"): [5.5e-3, 5.1e-3]}


def all_evaluations():
    return [evaluation(v, t, r, values[r]) for (v, t), values in TRAINED.items() for r in (0, 1)]


def test_table_pools_replicates_and_quotes_seed_000(tmp_path):
    summary, out = run(tmp_path, write(tmp_path, all_evaluations()))
    ours = summary[(summary["source"] == "ours") & (summary["method"] == "trained")]
    for (variant, test), values in TRAINED.items():
        row = ours[(ours["variant"] == variant) & (ours["test"] == test)].iloc[0]
        assert row["pmd_mean"] == pytest.approx(np.mean(values))
        assert row["pmd_std"] == pytest.approx(np.std(values, ddof=1))
        half = stats.t.ppf(0.975, 1) * np.std(values, ddof=1) / np.sqrt(2)
        assert row["pmd_ci_high"] == pytest.approx(np.mean(values) + half)
    base = summary[summary["source"] == "no learning"]
    assert len(base) == 4  # two answers x two test lists, not repeated per variant
    assert set(base["variant"]) == {"identity mesh unchanged", "pose mesh itself"}
    quoted = summary[summary["method"] == "quoted"].set_index(["source", "variant", "test"])["pmd_mean"]
    assert quoted[("paper (Wang et al.)", "maxpool", "seen")] == 1.1e-4
    assert quoted[("seed 000 reproduction", "original", "seen")] == 3.0e-4
    assert quoted[("seed 000 reproduction", "spadabin", "seen")] == 5.0e-4
    rows = markdown_rows((tmp_path / "md.md").read_text())
    assert rows[0] == ["source", "variant", "PMD seen", "PMD unseen", "RMS mm seen", "RMS mm unseen", "note"]
    maxpool = next(r for r in rows if r[:2] == ["ours, trained", "maxpool"])
    assert maxpool[2].startswith("2.30e-03 ± 4.24e-04")
    rms = np.mean([1000 * np.sqrt(3 * v) for v in TRAINED[("maxpool", "seen")]])  # mean of per-replicate RMS
    assert maxpool[4].startswith(f"{rms:.1f} ± ")
    per_replicate = pd.read_csv(out["rep"])
    assert len(per_replicate) == 12 * 4  # every file x trained, untrained and both answers


def test_comparisons_are_paired_by_replicate(tmp_path):
    run(tmp_path, write(tmp_path, all_evaluations()))
    comparisons = pd.read_csv(tmp_path / "cmp.csv")
    row = comparisons[(comparisons["comparison"] == "maxpool vs original") & (comparisons["test"] == "seen")].iloc[0]
    differences = np.subtract(TRAINED[("maxpool", "seen")], TRAINED[("original", "seen")])
    assert row["difference"] == pytest.approx(differences.mean())
    half = stats.t.ppf(0.975, 1) * differences.std(ddof=1) / np.sqrt(2)
    assert row["ci_low"] == pytest.approx(differences.mean() - half)
    pose = comparisons[(comparisons["comparison"] == "trained vs pose_mesh") & (comparisons["a"] == "original trained")]
    assert pose.iloc[0]["difference"] == pytest.approx(3.5e-3 - 4.5e-4)


def test_baselines_that_differ_between_variants_and_missing_keys_name_the_file(tmp_path):
    evaluations = all_evaluations()
    evaluations[3]["pmd_pose_mesh"] = 5e-4
    paths = write(tmp_path, evaluations)
    with pytest.raises(InputError, match=r"maxpool_seen_1\.json: pose_mesh PMD 0.0005 differs from 0.00045 in .*original_seen_0\.json"):
        run(tmp_path, paths)
    broken = all_evaluations()
    del broken[0]["pmd_untrained"]
    with pytest.raises(InputError, match=r"original_seen_0\.json.*key 'pmd_untrained'"):
        run(tmp_path, write(tmp_path, broken))
    (tmp_path / "copy.json").write_text(json.dumps(all_evaluations()[0]))
    with pytest.raises(InputError, match=r"copy\.json: the same variant original, test seen, replicate 0"):
        run(tmp_path, write(tmp_path, all_evaluations()) + [str(tmp_path / "copy.json")])
