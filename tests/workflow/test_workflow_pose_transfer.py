"""Neural pose transfer in the workflow: a tiny end-to-end run, and which jobs a config change replans."""

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from shapepose.pose_transfer.metrics import pmd
from shapepose.tables import markdown_rows

from helpers.configs import merged_config
from helpers.jobstats import job_counts
from helpers import tiny
from helpers.workflow import run_snakemake

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.workflow

TINY = {"seed": 5, "pose_transfer": tiny.POSE_TRANSFER}
VARIANTS = ["original", "maxpool"]
PER_VARIANT = {"train_pose_transfer": 1, "eval_pose_transfer": 2}


def targets(config):
    dataset = config["pose_transfer"]["dataset"]
    return [f"results/tables/{dataset}/pose_transfer.csv", f"results/tables/{dataset}/pose_transfer_grid.png"]


def snakemake(workdir, *args, config):
    """config.yaml with `config` on top, the variants replaced whole (a merge cannot drop one)."""
    return run_snakemake(workdir, *args, config=merged_config(config, replace=("pose_transfer.variants",)),
                         replace=True, targets=targets(config))


def planned(workdir, config):
    """{rule: count} and the pt_variant wildcards of the jobs a dry run plans."""
    proc = snakemake(workdir, "-n", config=config)
    text = proc.stdout + proc.stderr
    return job_counts(text), set(re.findall(r"pt_variant=(\w+)", text)), text


def changed(**sections):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    for key, value in sections.items():
        config["pose_transfer"][key] = value
    return config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny_pt")
    snakemake(workdir, "--cores", "2", config=TINY)
    return workdir


def test_tiny_run_writes_meshes_metrics_predictions_table_and_grid(tiny_run):
    demo = tiny_run / "results/demo_pose_pairs/tiny_pt"
    assert len(list((demo / "meshes").glob("id*_*.obj"))) == 2 * 3 + 2 * 3 + 2 * 4
    assert len((demo / "test_unseen.txt").read_text().splitlines()) == 3
    base = tiny_run / "results/pose_transfer/tiny_pt"
    for variant in VARIANTS:
        for test in ("seen", "unseen"):
            metrics = json.loads((base / f"{variant}/r0/eval_{test}.json").read_text())
            assert metrics["variant"] == variant and metrics["test"] == test and metrics["replicate"] == 0
            assert metrics["n_pairs"] == 3 and len(metrics["pairs"]) == 3
            saved = np.load(base / f"{variant}/r0/predictions_{test}.npz")
            assert saved["predicted"].shape == saved["ground_truth"].shape == (3, 752, 3)
            assert pmd(saved["predicted"], saved["ground_truth"]).mean() == pytest.approx(metrics["pmd_trained"])
            assert pmd(saved["identity"], saved["ground_truth"]).mean() == pytest.approx(metrics["pmd_identity_mesh"])
            assert metrics["pmd_trained"] != metrics["pmd_untrained"]
        losses = (base / f"{variant}/r0/losses.csv").read_text().splitlines()[0]
        assert "val_pmd" in losses and "reconstruction" in losses and "edge" in losses
        assert (tiny_run / f"logs/train_pose_transfer/tiny_pt/{variant}/r0.log").exists()
        assert (tiny_run / f"benchmarks/eval_pose_transfer/tiny_pt/{variant}/r0/seen.tsv").exists()
    rows = markdown_rows((tiny_run / "results/tables/tiny_pt/pose_transfer.md").read_text())
    assert rows[0][:4] == ["source", "variant", "PMD seen", "PMD unseen"]
    sources = [r[0] for r in rows[1:]]
    assert sources.count("ours, trained") == 2 and "pose mesh itself" in [r[1] for r in rows]
    assert "seed 000 reproduction" in sources and "paper (Wang et al.)" in sources
    grid = np.asarray(Image.open(tiny_run / "results/tables/tiny_pt/pose_transfer_grid.png"))
    assert grid.shape == (16 + 2 * 48, 5 * 48, 3)  # identity, pose, 2 variants, truth
    assert (grid[16:, :48] < 200).any()  # a body is drawn in the first panel


def test_finished_run_plans_nothing(tiny_run):
    counts, _, text = planned(tiny_run, TINY)
    assert not counts, text


def test_changing_one_variants_setting_replans_only_that_variant_and_the_outputs(tiny_run):
    variants = dict(TINY["pose_transfer"]["variants"],
                    maxpool={"pose_pooling": "max", "first_block_normalized": False, "width": 32})
    counts, wildcards, text = planned(tiny_run, changed(variants=variants))
    assert counts == Counter(PER_VARIANT | {"tabulate_pose_transfer": 1, "draw_pose_transfer_grid": 1}), text
    assert wildcards == {"maxpool"}, text


def test_changing_a_default_retrains_every_variant_but_remakes_no_data(tiny_run):
    defaults = dict(TINY["pose_transfer"]["defaults"], edge_weight=0.001)
    counts, wildcards, text = planned(tiny_run, changed(defaults=defaults))
    assert counts == Counter({rule: 2 * n for rule, n in PER_VARIANT.items()}
                             | {"tabulate_pose_transfer": 1, "draw_pose_transfer_grid": 1}), text
    assert wildcards == set(VARIANTS), text


def test_a_second_replicate_trains_only_itself_and_the_table(tiny_run):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["replicates"] = 2
    counts, _, text = planned(tiny_run, config)
    # the grid draws replicate 0 only
    assert counts == Counter({rule: 2 * n for rule, n in PER_VARIANT.items()} | {"tabulate_pose_transfer": 1}), text
    assert "replicate=0" not in text, text


def test_real_config_has_the_authors_sizes():
    config = yaml.safe_load((ROOT / "workflow/configs/npt.yaml").read_text())["pose_transfer"]
    assert config["defaults"]["width"] == 1024 and config["defaults"]["edge_weight"] == 5e-4
    assert config["training"]["lr"] == 5e-5 and config["training"]["batch_size"] == 8
    assert config["data"]["train_identities"] == [0, 16] and config["data"]["train_poses"] == [200, 600]
