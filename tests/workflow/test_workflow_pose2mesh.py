"""Pose2Mesh in the workflow: one tiny end-to-end run, and which jobs a config change replans."""

import json
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from shapepose.tables import markdown_rows

from helpers.jobstats import job_counts
from helpers import tiny
from helpers.workflow import run_snakemake

pytestmark = pytest.mark.workflow

TINY = {"seed": 7, "pose2mesh": tiny.POSE2MESH}
DATA = "results/pose2mesh/tiny_p2m"
RUN_RULES = ["train_posenet", "train_meshnet", "eval_pose2mesh"]


def targets(config):
    return [f"results/tables/{config['pose2mesh']['dataset']}/pose2mesh.csv"]


def snakemake(workdir, *args, config):
    return run_snakemake(workdir, *args, config=config, targets=targets(config))


def planned(workdir, config):
    """{rule: count} and the experiments of the jobs a dry run plans."""
    proc = snakemake(workdir, "-n", config=config)
    text = proc.stdout + proc.stderr
    return job_counts(text), set(re.findall(r"p2m_experiment=(\w+)", text)), text


def changed(**sections):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    for key, value in sections.items():
        config["pose2mesh"][key] = value
    return config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny_p2m")
    snakemake(workdir, "--cores", "2", config=TINY)
    return workdir


def test_tiny_run_writes_the_table_curves_figure_and_disk_use(tiny_run):
    for experiment in ("rmsprop", "adam"):
        run = tiny_run / DATA / experiment / "r0"
        summary = json.loads((run / "eval.json").read_text())
        assert summary["experiment"] == experiment and summary["replicate"] == 0
        assert summary["n_test"] == 2 * 2 * 1 * 4 * 3  # S9, S11 x 2 actions x 1 subaction x 4 cameras x frames 0, 2, 4
        for row in ("trained", "untrained", "mean"):
            assert {"mpjpe", "pa_mpjpe", "mpvpe"} <= set(summary[row])
        assert summary["training"]["experiment"]["optimizer"] == experiment
        with np.load(run / "predictions.npz") as npz:
            assert npz["pred_vertices"].shape == npz["true_vertices"].shape == (48, 752, 3)
            assert npz["pred_joints"].shape == npz["true_joints"].shape == (48, 17, 3)
        for losses in ("posenet_losses.csv", "losses.csv"):
            assert pd.read_csv(run / losses)["val_mpjpe"].notna().sum() == 2
        for rule in RUN_RULES:
            assert (tiny_run / f"logs/{rule}/tiny_p2m/{experiment}/r0.log").exists()
            assert (tiny_run / f"benchmarks/{rule}/tiny_p2m/{experiment}/r0.tsv").exists()
        checkpoints = tiny_run / f"results/checkpoints/pose2mesh/tiny_p2m/{experiment}/r0"
        for stage, last in (("posenet", 12), ("meshnet", 8)):  # keep_last 1: the latest and best
            assert sorted(p.name for p in (checkpoints / stage).glob("*.pt")) == \
                ["best.pt", f"step_{last:08d}.pt"]
    tables = tiny_run / "results/tables/tiny_p2m"
    rows = markdown_rows((tables / "pose2mesh.md").read_text())
    assert rows[0] == ["source", "experiment", "row", "replicates", "MPJPE", "PA-MPJPE", "MPVPE", "what"]
    ours = [r for r in rows if r[0] == "ours (demo bodies)"]
    assert [(r[1], r[2]) for r in ours] == [(e, w) for e in ("rmsprop", "adam")
                                            for w in ("trained", "posenet", "untrained", "mean")]
    assert any(r[0] == "seed 001 (Human3.6M)" and r[4] == "64.9" and r[5] == "46.3" for r in rows)
    disk = pd.read_csv(tables / "pose2mesh_checkpoint_disk.csv")
    assert len(disk) == 4 and (disk["bytes"] > 0).all()
    for png in ("pose2mesh_curves.png", "pose2mesh_samples.png"):
        assert Image.open(tables / png).size[0] > 100


def test_finished_run_plans_nothing(tiny_run):
    counts, _, text = planned(tiny_run, TINY)
    assert not counts, text


def test_changing_one_experiments_optimizer_replans_only_that_experiment(tiny_run):
    counts, experiments, text = planned(tiny_run, changed(experiments={"rmsprop": {}, "adam": {"lr": 0.002}}))
    assert counts == Counter({rule: 1 for rule in RUN_RULES} | {"tabulate_pose2mesh": 1}), text
    assert experiments == {"adam"}, text
    counts, experiments, text = planned(
        tiny_run, changed(experiments={"rmsprop": {"optimizer": "adam"}, "adam": {"optimizer": "adam"}}))
    assert counts == Counter({rule: 1 for rule in RUN_RULES} | {"tabulate_pose2mesh": 1}), text
    assert experiments == {"rmsprop"}, text


def test_changing_the_laplacian_rescaling_replans_meshnet_not_posenet(tiny_run):
    counts, experiments, text = planned(
        tiny_run, changed(experiments={"rmsprop": {"rescaling": "faithful"}, "adam": {"optimizer": "adam"}}))
    assert counts == Counter({"train_meshnet": 1, "eval_pose2mesh": 1, "tabulate_pose2mesh": 1}), text
    assert experiments == {"rmsprop"}, text


def test_a_new_experiment_and_a_second_replicate_add_only_their_jobs(tiny_run):
    config = changed(experiments={"rmsprop": {}, "adam": {"optimizer": "adam"},
                                  "adamfast": {"optimizer": "adam", "lr": 0.01}},
                     run=["rmsprop", "adam", "adamfast"])
    counts, experiments, text = planned(tiny_run, config)
    assert counts == Counter({rule: 1 for rule in RUN_RULES} | {"tabulate_pose2mesh": 1}), text
    assert experiments == {"adamfast"}, text
    config = yaml.safe_load(yaml.safe_dump(TINY)) | {"replicates": 2}
    counts, _, text = planned(tiny_run, config)
    assert counts == Counter({rule: 2 for rule in RUN_RULES} | {"tabulate_pose2mesh": 1}), text
    assert "replicate=1" in text and "replicate=0" not in text, text
