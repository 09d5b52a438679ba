"""The image branch through Snakemake on a tiny demo: every stage runs, and reruns stay local."""

import csv
from collections import Counter
from pathlib import Path

import pytest
import yaml

from shapepose.images.instances import read_instances
from shapepose.images.stanford import read_stanford_cars
from shapepose.tables import markdown_rows

from helpers.jobstats import job_counts
from helpers.workflow import run_snakemake

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.workflow

TINY = {
    "seed": 3,
    "cars": {"dataset": "tiny_cars"},
    "demo_cars": {
        "synthetic": {"models": 6, "image_size": 64, "gt_points": 200},
        "photos": {"train": 4, "test": 4, "segmenter_train": 8, "long_side": [256, 320]},
    },
    "segmentation": {
        "shards": 2,
        "train": {"arch": {"min_size": 128, "max_size": 160}, "steps": 6, "warmup_steps": 2,
                  "checkpoint_every": 3, "validate_every": 3},
    },
}


# Part 1 of the image branch only: the tiny photos give no cut-outs for the style transfer (which
# tests/workflow/test_workflow_style.py runs on a prepared cut-out folder).
# Replicate 0's files, and the summary over every replicate (which asks for the others).
TARGETS = [f"results/normalized/tiny_cars/r0/{split}" for split in ("train", "test")] + [
    f"results/tables/tiny_cars/r0/{name}" for name in (
        "segment_funnel.csv", "segment_filters.csv", "segment_filters.md", "frame_ratio.csv",
        "frame_ratio.md", "frame_ratio.png", "segmentation_quality.csv",
        "segmentation_quality.md")] + [
    f"results/tables/tiny_cars/{name}" for name in ("segmentation_quality.csv", "segmentation_quality.md")]


def snakemake(workdir, *args, config):
    proc = run_snakemake(workdir, *args, config=config, targets=TARGETS)
    return proc.stdout + proc.stderr


def planned(workdir, config):
    text = snakemake(workdir, "-n", config=config)
    counts = job_counts(text)
    return counts, text


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny_cars")
    snakemake(workdir, "--cores", "2", config=TINY)
    return workdir


def test_every_photo_is_segmented_once_and_accounted_for(tiny_run):
    photos = read_stanford_cars(tiny_run / "results/demo_cars/tiny_cars/photos")
    assert len(photos) == 8
    images, _ = read_instances(tiny_run / "results/segments/tiny_cars/r0/instances.json")
    assert sorted(im.image for im in images) == [p.relpath for p in photos]
    with open(tiny_run / "results/cutouts/tiny_cars/r0/decisions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # a photo appears in the decisions through its instances, or through a row saying why not
    assert {row["image"] for row in rows} == {p.relpath for p in photos}


def test_tables_and_normalized_sets_exist(tiny_run):
    tables = tiny_run / "results/tables/tiny_cars/r0"
    for name in ("segment_filters.md", "frame_ratio.md", "frame_ratio.png",
                 "segmentation_quality.md"):
        assert (tables / name).stat().st_size > 0, name
    assert ["photos", "8"] in [row[:2] for row in markdown_rows((tables / "segment_filters.md").read_text())]
    for split in ("train", "test"):
        assert (tiny_run / f"results/normalized/tiny_cars/r0/{split}").is_dir()
    summary = (tiny_run / "results/tables/tiny_cars/segmentation_quality.md").read_text()
    assert "one replicate" in summary


def test_changing_a_filter_threshold_reruns_only_the_filters_and_what_follows(tiny_run):
    assert not planned(tiny_run, TINY)[0]
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["filters"] = {"min_score": 0.5}
    counts, text = planned(tiny_run, changed)
    assert counts == Counter({"filter_segments": 1, "normalize_segments": 1,
                              "tabulate_segments": 1, "summarize_segments": 1}), text


def test_a_second_replicate_plans_only_its_own_jobs_and_the_summary(tiny_run):
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["replicates"] = 2
    counts, text = planned(tiny_run, changed)
    assert counts == Counter({"train_segmenter": 1, "segment": 2, "gather_segments": 1,
                              "filter_segments": 1, "normalize_segments": 1,
                              "tabulate_segments": 1, "summarize_segments": 1}), text
    assert "wildcards: replicate=0" not in text and "replicate=1" in text, text


def test_more_segment_shards_resegment_but_do_not_retrain(tiny_run):
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["segmentation"]["shards"] = 3
    counts, text = planned(tiny_run, changed)
    assert "train_segmenter" not in counts and "make_demo_cars" not in counts, text
    assert counts["segment"] == 3 and counts["gather_segments"] == 1, text
