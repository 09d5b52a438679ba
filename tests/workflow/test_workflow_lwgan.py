"""The Liquid Warping GAN in the workflow: a tiny end-to-end run, and which jobs a change replans."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from shapepose.tables import markdown_rows

from helpers.jobstats import job_counts
from helpers import tiny
from helpers.workflow import run_snakemake

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.workflow

TINY = {"seed": 2, "lwgan": tiny.LWGAN}
PER_EXPERIMENT = ["train_lwgan", "eval_lwgan"]


def snakemake(workdir, *args, config):
    return run_snakemake(workdir, *args, config=config, targets=["lwgan"])


def planned(workdir, config):
    text = snakemake(workdir, "-n", config=config)
    text = text.stdout + text.stderr
    return job_counts(text), text


def changed(**sections):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["lwgan"].update(sections)
    return config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny_lwgan")
    snakemake(workdir, "--cores", "2", config=TINY)
    return workdir


def test_tiny_run_writes_tables_curves_predictions_and_animation(tiny_run):
    data = tiny_run / "results/demo_iper/iPER"
    assert (data / "train.txt").read_text().split() == ["001/1/1", "001/1/2", "002/1/1", "002/1/2"]
    assert sorted(p.name for p in (data / "images/003/1/2").iterdir()) == ["0.jpg", "1.jpg",
                                                                           "2.jpg", "3.jpg"]
    for exp in ("baseline", "gp10"):
        base = tiny_run / f"results/lwgan/{exp}/r0"
        metrics = json.loads((base / "eval.json").read_text())
        assert metrics["experiment"] == exp and metrics["replicate"] == 0
        assert metrics["n_pairs"] == 6 and metrics["data_range"] == 255
        for method in ("trained", "untrained", "paste"):
            assert set(metrics[method]) == {"ssim", "psnr", "masked_l1"}
        assert metrics["lpips"] == "n/a (no weights)"
        saved = np.load(base / "predictions.npz")
        assert saved["trained"].shape == (6, 32, 32, 3)
        assert saved["trained_ssim"].mean() == pytest.approx(metrics["trained"]["ssim"])
        losses = pd.read_csv(base / "losses.csv")
        assert list(losses["step"]) == [1, 2, 3, 4] and losses["val_masked_l1"].notna().sum() == 2
        strip = np.asarray(Image.open(base / "imitation.png"))
        assert strip.shape == (2 * 32, 3 * 32, 3)  # every other of 4 frames: source | ref | ours
        gif = Image.open(base / "imitation.gif")
        assert gif.n_frames == 4
        assert (tiny_run / f"logs/train_lwgan/{exp}/r0.log").exists()
        assert (tiny_run / f"benchmarks/eval_lwgan/{exp}/r0.tsv").exists()
    gp = pd.read_csv(tiny_run / "results/checkpoints/lwgan/gp10/r0/history.csv")
    assert "d_gp" in gp and "d_gp" not in pd.read_csv(tiny_run / "results/lwgan/baseline/r0/losses.csv")
    study = markdown_rows((tiny_run / "results/tables/lwgan/lwgan_study.md").read_text())
    assert study[0][:4] == ["experiment", "replicates", "ΔL_face % (ours)", "ΔL_face % (seed)"]
    assert [row[0] for row in study[1:]] == ["baseline", "gp10"]
    assert study[2][3] == "-13.00" and study[1][2] == "n/a (no weights)"
    table = pd.read_csv(tiny_run / "results/tables/lwgan/lwgan_metrics.csv")
    assert list(table["model"][:4]) == ["baseline", "gp10", "untrained (step 0)",
                                        "warped source pasted on the background"]
    assert set(table["pairs"]) == {"all", "turn", "motion"}
    assert (tiny_run / "results/tables/lwgan/lwgan_losses.png").stat().st_size > 0


def test_finished_run_plans_nothing(tiny_run):
    counts, text = planned(tiny_run, TINY)
    assert not counts, text


def test_changing_one_experiment_replans_only_it(tiny_run):
    experiments = {"gp10": {"gp_weight": 5.0}}
    counts, text = planned(tiny_run, changed(experiments=experiments))
    assert counts == Counter({**{r: 1 for r in PER_EXPERIMENT}, "tabulate_lwgan": 1, "lwgan": 1}), text
    assert "lw_experiment=gp10" in text and "lw_experiment=baseline" not in text


def test_adding_an_experiment_to_the_run_trains_only_it(tiny_run):
    counts, text = planned(tiny_run, changed(run=["baseline", "gp10", "E3"]))
    assert counts == Counter({**{r: 1 for r in PER_EXPERIMENT}, "tabulate_lwgan": 1, "lwgan": 1}), text
    assert "lw_experiment=E3" in text


def test_a_second_replicate_trains_only_itself(tiny_run):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["replicates"] = 2
    counts, text = planned(tiny_run, config)
    assert counts == Counter({**{r: 2 for r in PER_EXPERIMENT}, "tabulate_lwgan": 1, "lwgan": 1}), text
    assert "replicate=0" not in text


def test_the_default_and_real_configs_hold_the_study():
    default = yaml.safe_load((ROOT / "config.yaml").read_text())["lwgan"]
    assert set(default["experiments"]) == {
        "baseline", "label_smoothing", "gp10", "gp2", "spectral_norm", "ttur_g1_d4", "ttur_g4_d1",
        "lambda_rec15", "lambda_face10", "E1", "E2", "E3", "E4"}
    e3 = {**default["defaults"], **default["experiments"]["E3"]}
    assert e3["spectral_norm"] and (e3["lr_g"], e3["lr_d"], e3["lr_final"]) == (4e-4, 1e-4, 1e-5)
    assert e3["decay_epochs"] == 15 and e3["lambda_rec"] == 15
    e1 = {**default["defaults"], **default["experiments"]["E1"]}
    assert (e1["gp_weight"], e1["lr_g"], e1["lr_d"]) == (2.0, 1e-4, 3e-4)
    real = yaml.safe_load((ROOT / "workflow/configs/iper.yaml").read_text())["lwgan"]
    assert real["run"] is None and real["model"]["image_size"] == 256
    assert real["model"]["conv_dim"] == 64 and real["model"]["n_blocks"] == 6
