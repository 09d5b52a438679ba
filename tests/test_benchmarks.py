"""benchmarks/train_step.py: every trainer has a case at its demo and its real size, read from the
configs the workflow reads, and one case measures end to end (times and a fresh process's memory)."""

import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import train_step  # noqa: E402
from shapepose.training.fast import FastPath  # noqa: E402

TRAINERS = {"style_transfer", "cyclegan_plain", "lwgan", "lwgan_gp", "shape_pose",
            "neural_parts", "pose_transfer", "pt_maxpool", "pt_spadabin", "posenet", "meshnet"}


def test_every_trainer_has_a_demo_and_a_real_case_of_its_configs_batch():
    demo = {c.trainer: c for c in train_step.load_cases(["demo"], set())}
    real = {c.trainer: c for c in train_step.load_cases(["real"], set())}
    assert set(demo) == TRAINERS | {"segmentation"}  # the real configs do not train the segmenter
    assert set(real) == TRAINERS
    configs = {name: yaml.safe_load((ROOT / "workflow" / "configs" / name).read_text())
               for name in ("cars.yaml", "iper.yaml", "npt.yaml", "h36m.yaml")}
    assert real["style_transfer"].samples == configs["cars.yaml"]["style_transfer"]["training"]["batch_size"]
    assert real["shape_pose"].samples == 16  # cars.yaml: 4 models x 4 views
    assert real["lwgan"].samples == configs["iper.yaml"]["lwgan"]["training"]["batch_size"]
    assert real["pose_transfer"].samples == configs["npt.yaml"]["pose_transfer"]["training"]["batch_size"]
    assert real["posenet"].samples == configs["h36m.yaml"]["pose2mesh"]["posenet"]["training"]["batch_size"]
    assert "ngf 64" in real["style_transfer"].note and "256 px" in real["lwgan"].note


def test_one_case_measures_both_paths_side_by_side():
    (case,) = train_step.load_cases(["demo"], {"posenet"})
    torch.set_num_threads(1)
    result = train_step.measure(case, torch.device("cpu"), FastPath.off(precision="bf16"), steps=1)
    for variant in ("fp32", "fast"):
        assert result[variant]["seconds"] > 0
        assert result[variant]["rate"] == case.samples / result[variant]["seconds"]
        assert 0 < result[variant]["peak_mb"] < 2000
