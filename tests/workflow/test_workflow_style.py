"""Style transfer in the workflow: a tiny run per experiment, the stylized set, and replanning."""

import csv
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers.jobstats import job_counts
from helpers.workflow import run_snakemake
from shapepose.images.dpc import SPLITS, read_dpc

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.workflow

EXPERIMENTS = ["tight", "loose"]
TINY = {
    "seed": 7,
    "cars": {"dataset": "tiny_style"},  # cutouts: set per run to the test's own folder
    "demo_cars": {"synthetic": {"models": 6, "views": 2, "image_size": 64, "gt_points": 200},
                  "photos": {"train": 2, "test": 2, "segmenter_train": 2, "long_side": [256, 320]}},
    "style_transfer": {
        "model": {"ngf": 4, "ndf": 4, "n_blocks": 1, "image_size": 64},
        "training": {"steps": 4, "batch_size": 2, "pool_size": 3, "checkpoint_every": 2,
                     "validate_every": 2, "log_every": 2, "val_images": 2},
        "report": {"window": 2, "samples": 2},
        "experiments": {"tight": {"lambda_alpha_G": 2, "lambda_alpha_F": 2,
                                  "lambda_resdist_G": 1.75, "lambda_resdist_F": 1.75},
                        "loose": {"lambda_alpha_G": 1, "lambda_alpha_F": 1, "gp_weight": 2,
                                  "spectral_norm": True}},
    },
}


def targets(config):
    """The style-transfer outputs only (rule all would also segment photos and train Neural Parts)."""
    cars = config["cars"]["dataset"]
    out = []
    for e in config["style_transfer"]["experiments"]:
        out += [f"results/stylized/{cars}/{e}/r0", f"results/tables/{cars}/r0/style_{e}.md",
                f"results/tables/{cars}/r0/style_{e}_losses.png",
                f"results/tables/{cars}/r0/style_{e}_samples.png"]
    return out


def snakemake(workdir, *args, config):
    proc = run_snakemake(workdir, *args, config=config, targets=targets(config))
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_cutouts):
    workdir = tmp_path_factory.mktemp("tiny_style")
    shutil.copytree(tiny_cutouts, workdir / "cutouts")
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["cars"]["cutouts"] = str(workdir / "cutouts")
    snakemake(workdir, "--cores", "2", config=config)
    return workdir, config


def test_stylized_set_keeps_layout_cameras_and_alpha(tiny):
    workdir, config = tiny
    source = read_dpc(workdir / "results/demo_cars/tiny_style/synthetic")
    for name in EXPERIMENTS:
        styled = read_dpc(workdir / f"results/stylized/tiny_style/{name}/r0")
        assert styled.n_views == source.n_views == 2
        for split in SPLITS:
            assert styled.split(split) == source.split(split)
        for m in source.models:
            assert (styled.gt_dir / f"{m}.mat").read_bytes() == (source.gt_dir / f"{m}.mat").read_bytes()
            for v in range(source.n_views):
                camera = f"{m}/camera_{v}.mat"
                assert (styled.render_dir / camera).read_bytes() == (source.render_dir / camera).read_bytes()
                a, b = source.load_view(m, v), styled.load_view(m, v)
                assert b.shape == a.shape
                assert np.array_equal(b[..., 3], a[..., 3])  # annotations carried over unchanged
        with open(workdir / f"results/style_transfer/tiny_style/{name}/r0/alpha.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == len(source.models) * source.n_views
        # the alpha table's disagreement, recomputed here from the files: input alpha > 0 vs
        # any stylized RGB channel > 0
        row = rows[0]
        a = source.load_view(row["model"], int(row["view"]))
        b = styled.load_view(row["model"], int(row["view"]))
        expected = np.mean((a[..., 3] > 0) != (b[..., :3] > 0).any(axis=-1))
        assert float(row["alpha_disagreement"]) == pytest.approx(expected)


def test_each_experiment_trains_with_its_own_settings(tiny):
    import torch

    workdir, config = tiny
    for name in EXPERIMENTS:
        model = torch.load(workdir / f"results/style_transfer/tiny_style/{name}/r0/model.pt",
                           weights_only=True)
        settings = model["meta"]["extra"]["settings"]
        for key, value in config["style_transfer"]["experiments"][name].items():
            assert settings[key] == value, (name, key)
        with open(workdir / f"results/style_transfer/tiny_style/{name}/r0/losses.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]  # every step recorded
        assert ("gp_X" in rows[0]) == (name == "loose")
        assert (workdir / f"results/tables/tiny_style/r0/style_{name}.md").stat().st_size > 0
    assert not job_counts(snakemake(workdir, "-n", config=config))


def test_changing_one_experiments_lambda_replans_only_that_experiment(tiny):
    workdir, config = tiny
    changed = yaml.safe_load(yaml.safe_dump(config))
    changed["style_transfer"]["experiments"]["tight"]["lambda_alpha_G"] = 3
    text = snakemake(workdir, "-n", config=changed)
    assert job_counts(text) == Counter({"train_style_transfer": 1, "stylize": 1,
                                        "report_style_transfer": 1}), text
    assert "experiment=tight" in text and "experiment=loose" not in text, text


def test_a_default_replans_every_experiment_that_does_not_override_it(tiny):
    """style_transfer.defaults is where every experiment starts: changing one of its values
    replans the experiments that do not set that value themselves, and only those."""
    workdir, config = tiny
    changed = yaml.safe_load(yaml.safe_dump(config))
    changed["style_transfer"]["experiments"]["tight"]["lambda_A"] = 10  # the default's own value
    assert not job_counts(snakemake(workdir, "-n", config=changed))
    changed["style_transfer"]["defaults"] = {"lambda_A": 5}
    text = snakemake(workdir, "-n", config=changed)
    assert job_counts(text) == Counter({"train_style_transfer": 1, "stylize": 1,
                                        "report_style_transfer": 1}), text
    assert "experiment=loose" in text and "experiment=tight" not in text, text
