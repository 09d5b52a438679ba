"""What every trainer's benchmark case shares: the config at a size, the Case record, memory."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from shapepose.training.fast import Acceleration, FastPath

ROOT = Path(__file__).resolve().parents[2]
# the real-data config of each stage (workflow/configs/*.yaml)
REAL_CONFIG = {"style_transfer": "cars.yaml", "shape_pose": "cars.yaml",
               "neural_parts": "dfaust.yaml", "pose_transfer": "npt.yaml",
               "pose2mesh": "h36m.yaml", "lwgan": "iper.yaml", "segmentation": None}

Step = Callable[[int], None]


@dataclass
class Case:
    """One trainer at one size: `build(device, fast_path)` -> one optimisation step, step(i)."""

    trainer: str
    size: str                 # "demo" or "real"
    unit: str                 # what a sample is: images, meshes, samples, frames
    samples: int              # samples per step (the global batch)
    build: Callable[[torch.device, FastPath], Step]
    note: str = ""


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(stage: str, size: str) -> dict:
    """config.yaml, with the stage's real-data config on top when size == "real"."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    if size == "real":
        name = REAL_CONFIG[stage]
        if name is None:
            raise ValueError(f"{stage} has no real-data training config")
        config = merge(config, yaml.safe_load((ROOT / "workflow" / "configs" / name).read_text()))
    return config


def acceleration(fast_path: FastPath, device: torch.device, precisions) -> Acceleration:
    accel = Acceleration(fast_path, device, precisions)
    accel.apply_backend_settings()
    return accel


def one_process_wrap(accel: Acceleration):
    """`Trainer.wrap` in one process, for the builders: channels-last (convolutional modules,
    when on) and torch.compile (when on); no DDP. Returns wrap(module, convolutional)."""
    return lambda module, convolutional=False: accel.compiled(accel.prepare(module, convolutional))
