"""Neural Parts in the workflow: a tiny end-to-end run, and which jobs a config change replans."""

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml
from PIL import Image

from shapepose.tables import markdown_rows

from helpers.jobstats import job_counts
from helpers.workflow import run_snakemake

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.workflow

TINY = {
    "seed": 5,
    "meshes": {"dataset": "tiny_np", "registrations": "demo", "subjects": ["50002", "50004"],
               "sequences": ["knees", "punching"], "frame_stride": 2, "drop_first": 1},
    "demo_bodies": {"subjects": {"50002": "m", "50004": "f"}, "sequences": ["knees", "punching"],
                    "n_frames": 5, "fps": 60},
    "surface": {"n_points": 600},
    "volume": {"n_points": 800, "cell_size": 0.08},
    "render": {"size": 64},
    "neural_parts": {
        "primitives": [1, 2],
        "split": {"test_sequences": ["50004_punching"], "val_stride": 2},
        "sphere_subdivisions": 1,
        # frozen batch norm: batch statistics of one 1 x 1 feature map do not exist
        "model": {"image_size": 32, "feature_dim": 8, "embedding_dim": 8, "hidden": 16,
                  "freeze_batchnorm": True},
        "training": {"steps": 4, "batch_size": 1, "surface_points": 100, "volume_points": 200,
                     "sphere_points": 20, "checkpoint_every": 2, "validate_every": 2,
                     "log_every": 2, "val_frames": 2},
        "eval": {"n_points": 200},
        "export": {"n_frames": 1},
    },
}
NP_RULES = ["train_neural_parts", "eval_neural_parts", "export_neural_parts"]


def targets(config):
    """The Neural Parts outputs only (rule all would also build the image branch)."""
    dataset = config["meshes"]["dataset"]
    out = [f"results/tables/{dataset}/neural_parts.csv"]
    for n in config["neural_parts"]["primitives"]:
        out += [f"results/neural_parts/{dataset}/P{n}/r0/views",
                f"results/neural_parts/{dataset}/P{n}/r0/primitives"]
    return out


def snakemake(workdir, *args, config):
    return run_snakemake(workdir, *args, config=config, targets=targets(config))


def planned(workdir, config):
    """{rule: count} and the n_primitives wildcards of the jobs a dry run plans."""
    text = snakemake(workdir, "-n", config=config)
    text = text.stdout + text.stderr
    counts = job_counts(text)
    return counts, set(re.findall(r"wildcards: n_primitives=(\d+)", text)), text


def changed(**sections):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    for key, value in sections.items():
        config["neural_parts"][key] = value
    return config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny_np")
    snakemake(workdir, "--cores", "2", config=TINY)
    return workdir


def test_tiny_run_writes_table_metrics_meshes_and_views(tiny_run):
    base = tiny_run / "results/neural_parts/tiny_np"
    for n in (1, 2):
        metrics = json.loads((base / f"P{n}/r0/eval_trained.json").read_text())
        assert metrics["n_primitives"] == n and metrics["n_points"] == 200
        assert metrics["replicate"] == 0 and metrics["untrained"] is False
        untrained = json.loads((base / f"P{n}/r0/eval_untrained.json").read_text())
        assert untrained["untrained"] is True and untrained["iou"] != metrics["iou"]
        assert metrics["n_test_frames"] == 2  # frames 1 and 3 of 50004_punching
        assert 0 <= metrics["iou"] <= 1 and metrics["chamfer_l1"] > 0
        parts = sorted((base / f"P{n}/r0/primitives").glob("*.ply"))
        assert [p.name for p in parts] == [f"50004_punching_frame_000001_part_{m:02d}.ply"
                                           for m in range(n)]
        mesh = trimesh.load(parts[-1], process=False)
        assert len(mesh.vertices) == 42 and mesh.is_watertight  # icosphere, 1 subdivision
        assert len(np.unique(mesh.visual.vertex_colors[:, :3], axis=0)) == 1
        view = np.asarray(Image.open(base / f"P{n}/r0/views/50004_punching_frame_000001.png"))
        assert view.shape == (64, 128, 3)
        assert (tiny_run / f"logs/train_neural_parts/tiny_np/P{n}/r0.log").exists()
        assert (tiny_run / f"benchmarks/train_neural_parts/tiny_np/P{n}/r0.tsv").exists()
        assert (tiny_run / f"results/checkpoints/neural_parts/tiny_np/P{n}/r0/history.csv").exists()
    table = (tiny_run / "results/tables/tiny_np/neural_parts.md").read_text()
    assert markdown_rows(table)[0] == ["metric", "source", "1 primitives", "2 primitives", "5 primitives",
                                       "8 primitives", "10 primitives", "note"]
    assert "Neural Parts paper" in table and "seed 003 reproduction" in table


def test_finished_run_plans_nothing(tiny_run):
    counts, _, text = planned(tiny_run, TINY)
    assert not counts, text


def test_changing_primitive_counts_replans_only_neural_parts_jobs_and_the_table(tiny_run):
    counts, wildcards, text = planned(tiny_run, changed(primitives=[1, 2, 3]))
    assert counts == Counter({rule: 1 for rule in NP_RULES} | {"eval_neural_parts": 2,
                                                               "tabulate_neural_parts": 1}), text
    assert wildcards == {"3"}, text
    # dropping a count remakes only the table
    counts, wildcards, text = planned(tiny_run, changed(primitives=[2]))
    assert counts == Counter({"tabulate_neural_parts": 1}), text


def test_changing_a_loss_weight_retrains_every_count_but_resamples_nothing(tiny_run):
    losses = dict(TINY["neural_parts"].get("losses", {}), overlap=0.2)
    counts, wildcards, text = planned(tiny_run, changed(losses=losses))
    assert counts == Counter({rule: 2 for rule in NP_RULES} | {"eval_neural_parts": 4,
                                                               "tabulate_neural_parts": 1}), text


def test_a_second_replicate_trains_only_itself(tiny_run):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["replicates"] = 2
    counts, _, text = planned(tiny_run, config)
    # replicate 1 of each count, trained and scored at both weights; the table pools them
    assert counts == Counter({"train_neural_parts": 2, "eval_neural_parts": 4,
                              "tabulate_neural_parts": 1}), text
    assert "replicate=0" not in text, text


def test_real_data_config_has_the_seed_sizes():
    config = yaml.safe_load((ROOT / "workflow/configs/dfaust.yaml").read_text())["neural_parts"]
    assert config["primitives"] == [2, 5, 8, 10]
    assert config["model"]["image_size"] == 224 and config["model"]["embedding_dim"] == 256
    assert config["training"]["surface_points"] == 2000 and config["training"]["volume_points"] == 5000
    assert config["losses"]["overlap_lambda"] == 1.95 and config["losses"]["coverage_k"] == 10
