"""Shape and pose in the workflow: a tiny run of the whole DAG, table 6.2, the report, and replanning."""

import copy
import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from shapepose.tables import markdown_rows

from helpers import tiny as toy
from helpers.configs import merged_config
from helpers.jobstats import job_counts
from helpers.workflow import run_snakemake

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.workflow

CARS = "tiny_sp"
EXPERIMENT = "tight"
VARIANTS = ["untrained", "original", EXPERIMENT]  # the table's order: untrained first
TEST_SETS = ["original", EXPERIMENT]
# The whole workflow at toy size (133 s on two idle cores, 2026-12-02): every branch feeds collect_tables and
# the report. The run replaces config.yaml by config.yaml merged with these settings and with its
# style experiments and pose-transfer variants replaced by the ones here (they would stay
# otherwise: tests/helpers/configs.py).
TINY = {
    "seed": 13,
    "meshes": {"dataset": "tiny_sp_meshes", "registrations": "demo", "subjects": ["50002"],
               "sequences": ["knees", "punching"], "frame_stride": 2, "drop_first": 1},
    "demo_bodies": {"subjects": {"50002": "m"}, "sequences": ["knees", "punching"], "n_frames": 5,
                    "fps": 60},
    "surface": {"n_points": 300},
    "volume": {"n_points": 400, "cell_size": 0.08},
    "render": {"size": 32},
    "neural_parts": {
        "primitives": [1],
        "split": {"test_sequences": ["50002_punching"], "val_stride": 2},
        "sphere_subdivisions": 1,
        "model": {"image_size": 32, "feature_dim": 8, "embedding_dim": 8, "hidden": 16,
                  "freeze_batchnorm": True},
        "training": {"steps": 2, "batch_size": 1, "surface_points": 50, "volume_points": 100,
                     "sphere_points": 10, "checkpoint_every": 2, "validate_every": 2,
                     "log_every": 1, "val_frames": 1},
        "eval": {"n_points": 100},
        "export": {"n_frames": 1},
    },
    "cars": {"dataset": CARS},  # cutouts: set per run to the test's own folder
    # 6 models x 3 views: 4 train, 1 validation (alignment), 1 test model
    "demo_cars": {"synthetic": {"models": 6, "views": 3, "image_size": 64, "gt_points": 200},
                  "photos": {"train": 2, "test": 2, "segmenter_train": 2, "long_side": [256, 320]}},
    "segmentation": {"shards": 1,
                     "train": {"arch": {"min_size": 128, "max_size": 160}, "steps": 2,
                               "warmup_steps": 1, "checkpoint_every": 2, "validate_every": 2}},
    "style_transfer": {
        "model": {"ngf": 4, "ndf": 4, "n_blocks": 1, "image_size": 64},
        "training": {"steps": 2, "batch_size": 2, "pool_size": 2, "checkpoint_every": 2,
                     "validate_every": 2, "log_every": 1, "val_images": 2},
        "report": {"window": 2, "samples": 2},
        "experiments": {EXPERIMENT: {"lambda_alpha_G": 2, "lambda_alpha_F": 2}},
    },
    "shape_pose": {
        "device": "cpu",
        "model": {"image_size": 32, "filters": 4, "encoder_pairs": 2, "fc": 32, "points": 200,
                  "candidates": 2, "pose_hidden": 8},
        "projection": {"grid": 16, "sigma": [1.0, 0.5], "kernel_size": 5},
        "training": {"steps": 6, "models_per_batch": 2, "views_per_model": 2,
                     "checkpoint_every": 3, "validate_every": 3, "log_every": 2, "val_models": 1},
        "evaluation": {"points": 100, "accuracy_threshold": 30,
                       "alignment": {"models": 1, "views_per_model": 2, "icp_iterations": 5},
                       "real_masks": {"size": 32, "kde_points": 20}},
    },
    # the other systems that feed collect_tables, at their own workflow tests' toy sizes
    "pose_transfer": copy.deepcopy(toy.POSE_TRANSFER),
    "pose2mesh": copy.deepcopy(toy.POSE2MESH),
    "lwgan": copy.deepcopy(toy.LWGAN),
}
N_REAL_TEST, N_TEST_VIEWS = 2, 3
SHAPE_POSE_RULES = ["train_shape_pose", "eval_shape_pose", "eval_real_masks", "tabulate_shape_pose"]


def snakemake(workdir, *args, config, check=True):
    proc = run_snakemake(workdir, *args, config=merged_config(config, replace=("style_transfer.experiments", "pose_transfer.variants")),
                         replace=True, check=check)
    return proc.stdout + proc.stderr


def write_cutouts(folder: Path, n: int, seed: int) -> None:
    """Square RGBA cut-outs like the normalized ones: a textured ellipse on transparent black."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    for i in range(n):
        cy, cx = rng.uniform(26, 38, 2)
        inside = ((yy - cy) / rng.uniform(8, 14)) ** 2 + ((xx - cx) / rng.uniform(14, 24)) ** 2 <= 1
        rgb = rng.integers(40, 255, (64, 64, 3), dtype=np.uint8)
        rgba = np.dstack([np.where(inside[..., None], rgb, 0), np.where(inside, 255, 0)])
        Image.fromarray(rgba.astype(np.uint8), mode="RGBA").save(folder / f"cut_{i:02d}.png")


def edited(config, section, key, value):
    """A copy of config with shape_pose.<section>.<key> (a dotted key goes one level deeper) set."""
    config = yaml.safe_load(yaml.safe_dump(config))
    target = config["shape_pose"][section]
    *parents, last = key.split(".")
    for parent in parents:
        target = target[parent]
    target[last] = value
    return config


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny_sp")
    write_cutouts(workdir / "cutouts" / "train", 4, seed=1)
    write_cutouts(workdir / "cutouts" / "test", N_REAL_TEST, seed=2)
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["cars"]["cutouts"] = str(workdir / "cutouts")
    snakemake(workdir, "--cores", "2", config=config)
    return workdir, config


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_table_6_2_has_every_variant_on_every_test_set_and_the_seed_rows(tiny):
    workdir, _ = tiny
    rows = read_csv(workdir / f"results/tables/{CARS}/shape_pose.csv")
    ours = [(r["variant"], r["test_set"]) for r in rows if r["source"] == "ours"]
    assert ours == [(v, t) for v in VARIANTS for t in TEST_SETS]
    quoted = [r for r in rows if r["source"] != "ours"]
    assert len(quoted) == 9 and all("seed 002" in r["source"] for r in quoted)
    baseline = next(r for r in quoted if (r["variant"], r["test_set"]) == ("Baseline", "Original"))
    assert float(baseline["chamfer_mean"]) == pytest.approx(2.95)  # seed 002 table 6.2
    assert float(baseline["median_error_deg_mean"]) == pytest.approx(6.95)
    table = (workdir / f"results/tables/{CARS}/shape_pose.md").read_text()
    assert "seed 002 table 6.2" in table
    for variant, test_set in ours:
        assert [variant, test_set] in [row[:2] for row in markdown_rows(table)]

    # one replicate: each row is that replicate's numbers, with no spread
    per_replicate = read_csv(workdir / f"results/tables/{CARS}/shape_pose_replicates.csv")
    assert [(r["variant"], r["test_set"], r["replicate"]) for r in per_replicate] == [
        (v, t, "0") for v, t in ours]
    for row, one in zip((r for r in rows if r["source"] == "ours"), per_replicate):
        assert row["replicates"] == "1" and row["chamfer_std"] == ""
        assert float(row["chamfer_mean"]) == pytest.approx(float(one["chamfer"]))
    assert "no interval (one replicate)" in table

    # each replicate's numbers, recomputed by hand from that evaluation's per-view file
    for row in per_replicate:
        views = read_csv(workdir / f"results/shape_pose/{CARS}/{row['variant']}/r0/"
                                   f"eval_{row['test_set']}.csv")
        assert len(views) == N_TEST_VIEWS
        for key in ("precision", "coverage", "chamfer"):  # raw distances -> the table's x100
            assert float(row[key]) == pytest.approx(100 * np.mean([float(v[key]) for v in views]),
                                                    rel=1e-4)
        errors = sorted(float(v["pose_error_deg"]) for v in views)
        assert float(row["accuracy"]) == pytest.approx(np.mean([e < 30 for e in errors]))
        assert float(row["median_error_deg"]) == pytest.approx(errors[len(errors) // 2], rel=1e-4)
        assert int(row["n_views"]) == N_TEST_VIEWS


def test_real_masks_plot_and_collected_tables(tiny):
    workdir, _ = tiny
    for variant in VARIANTS:
        rows = read_csv(workdir / f"results/shape_pose/{CARS}/{variant}/r0/real_masks.csv")
        assert Counter(r["set"] for r in rows) == {"real": N_REAL_TEST, "synthetic": N_TEST_VIEWS}
        assert all(float(r["disagreement"]) >= 0 for r in rows)
    plot = Image.open(workdir / f"results/tables/{CARS}/shape_pose_real_masks.png")
    assert plot.format == "PNG" and min(plot.size) > 100
    real = (workdir / f"results/tables/{CARS}/shape_pose_real_masks.md").read_text()
    for variant in VARIANTS:
        # variant, images, replicates, n (pooled over the replicates)
        assert [variant, "real", "1", str(N_REAL_TEST)] in [row[:4] for row in markdown_rows(real)]
    index = (workdir / "results/tables/index.md").read_text()
    assert "seed 002 table 6.2" in index and "shape_pose_real_masks.png" in index
    for rule, name in [("train_shape_pose", "original/r0"), ("train_shape_pose", f"{EXPERIMENT}/r0"),
                       ("eval_shape_pose", "untrained/r0/original"), ("eval_real_masks", "untrained/r0")]:
        assert (workdir / f"logs/{rule}/{CARS}/{name}.log").exists()
        assert (workdir / f"benchmarks/{rule}/{CARS}/{name}.tsv").exists()
    assert (workdir / f"results/checkpoints/shape_pose/{CARS}/{EXPERIMENT}/r0").is_dir()


def test_report_is_one_html_file_with_the_shape_pose_captions(tiny):
    workdir, config = tiny
    out = snakemake(workdir, "--report", "results/report.html", config=config)
    assert "ERROR" not in out  # docutils reports bad reStructuredText in a caption this way
    html = (workdir / "results/report.html").read_text()
    for caption in ("shape_pose_table.rst", "shape_pose_real_masks.rst", "shape_pose_real_masks_plot.rst"):
        first_line = (ROOT / "workflow/report" / caption).read_text().splitlines()[0]
        assert first_line.replace('"', "&quot;") in html, caption
    for name in ("shape_pose.md", "shape_pose.csv", "shape_pose_real_masks.png", "index.md",
                 "neural_parts.csv", f"style_{EXPERIMENT}_losses.png"):
        assert f'"{name}"' in html, name
    assert "Shape and pose" in html and "Metric tables" in html


def test_finished_run_plans_nothing(tiny):
    workdir, config = tiny
    text = snakemake(workdir, "-n", config=config)
    assert not job_counts(text), text


def outputs(workdir: Path) -> dict[Path, Path]:
    """Every file the rules wrote under results/ (checkpoints are the trainers' own, not outputs)."""
    root = workdir / "results"
    return {p.relative_to(root): p for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).parts[0] != "checkpoints" and p.name != "report.html"}


def test_the_same_config_gives_the_same_bytes(tiny, tmp_path):
    """A second run of the whole toy workflow (all four trainers: the segmenter, style transfer,
    shape and pose, Neural Parts) in another directory writes every output byte for byte."""
    workdir, config = tiny
    again = tmp_path / "again"
    write_cutouts(again / "cutouts" / "train", 4, seed=1)
    write_cutouts(again / "cutouts" / "test", N_REAL_TEST, seed=2)
    repeat = yaml.safe_load(yaml.safe_dump(config))
    repeat["cars"]["cutouts"] = str(again / "cutouts")
    snakemake(again, "--cores", "2", config=repeat)
    first, second = outputs(workdir), outputs(again)
    assert sorted(first) == sorted(second)
    assert any(name.suffix == ".pt" for name in first) and len(first) > 100
    differ = [str(name) for name in first if first[name].read_bytes() != second[name].read_bytes()]
    assert differ == []


def test_changing_a_training_setting_replans_only_shape_pose_and_the_tables(tiny):
    workdir, config = tiny
    text = snakemake(workdir, "-n", config=edited(config, "training", "lr", 0.001))
    n_variants = len(VARIANTS)
    assert job_counts(text) == Counter({
        "train_shape_pose": n_variants - 1,  # the untrained row reuses the original's model file
        "eval_shape_pose": n_variants * len(TEST_SETS), "eval_real_masks": n_variants,
        "tabulate_shape_pose": 1, "tabulate_learning": 1, "collect_tables": 1, "all": 1}), text


def test_a_second_replicate_plans_only_its_own_jobs_and_the_tables_that_pool_them(tiny):
    workdir, config = tiny
    more = yaml.safe_load(yaml.safe_dump(config))
    more["replicates"] = 2
    text = snakemake(workdir, "-n", config=more)
    n_variants = len(VARIANTS)
    n_pt, n_p2m, n_lwgan = (len(config["pose_transfer"]["variants"]), len(config["pose2mesh"]["run"]),
                            len(config["lwgan"]["run"]))
    assert job_counts(text) == Counter({
        "train_segmenter": 1, "segment": 1, "gather_segments": 1, "filter_segments": 1,
        "normalize_segments": 1, "tabulate_segments": 1, "summarize_segments": 1,
        "train_style_transfer": 1, "stylize": 1, "report_style_transfer": 1,
        "tabulate_style_transfer": 1,
        "train_shape_pose": n_variants - 1, "eval_shape_pose": n_variants * len(TEST_SETS),
        "eval_real_masks": n_variants, "tabulate_shape_pose": 1,
        "train_neural_parts": 1, "eval_neural_parts": 2, "tabulate_neural_parts": 1,
        # the other systems: replicate 1 of each variant or experiment, and the tables pooling them
        "train_pose_transfer": n_pt, "eval_pose_transfer": 2 * n_pt, "tabulate_pose_transfer": 1,
        "train_posenet": n_p2m, "train_meshnet": n_p2m, "eval_pose2mesh": n_p2m, "tabulate_pose2mesh": 1,
        "train_lwgan": n_lwgan, "eval_lwgan": n_lwgan, "tabulate_lwgan": 1,
        "tabulate_learning": 1, "collect_tables": 1, "all": 1}), text
    assert "replicate=0" not in text and "replicate=1" in text, text


@pytest.mark.parametrize("key, value, rules", [
    ("points", 50, ["eval_shape_pose"]),
    ("real_masks.point_radius", 0.035, ["eval_real_masks"]),  # the default is 0.02
    ("real_masks.kde_points", 30, []),  # the plot's grid only
])
def test_changing_an_evaluation_setting_rescores_without_retraining(tiny, key, value, rules):
    workdir, config = tiny
    text = snakemake(workdir, "-n", config=edited(config, "evaluation", key, value))
    per_rule = {"eval_shape_pose": len(VARIANTS) * len(TEST_SETS), "eval_real_masks": len(VARIANTS)}
    # the learning table reads the original and untrained rows' scores on the original test set
    learning = {"tabulate_learning": 1} if "eval_shape_pose" in rules else {}
    assert job_counts(text) == Counter({rule: per_rule[rule] for rule in rules} | learning
                                       | {"tabulate_shape_pose": 1, "collect_tables": 1, "all": 1}), text


def test_an_experiment_named_untrained_is_rejected_before_any_job(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(TINY))
    bad["cars"]["cutouts"] = str(tmp_path / "cutouts")
    bad["style_transfer"]["experiments"] = {"untrained": {}}
    out = snakemake(tmp_path, "-n", config=bad, check=False)
    assert "may not be named 'untrained'" in out
    assert not (tmp_path / "results").exists()
