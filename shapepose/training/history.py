"""The loss history of a training run: history.csv and timing.csv beside the checkpoints, and the
same rows as TensorBoard scalars.

A history row is {step, losses: {name: mean since the last row}, metrics: {name: value},
seconds_per_step}. history.csv is copied to the rule's `losses.csv`, so it holds no wall-clock
time (the same config gives the same bytes); seconds per step go to the log and to timing.csv.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from shapepose.io.atomic import atomic_file


def history_columns(history: list[dict]) -> list[str]:
    """CSV header: step, losses, then metrics (`val_` added on a name clash).

    Wall-clock time is not among them: the history is a rule's output (losses.csv) and the same
    config must give the same bytes. Seconds per step go to the log and to timing.csv.
    """
    losses: list[str] = []
    metrics: list[str] = []
    for row in history:
        losses += [k for k in row.get("losses", {}) if k not in losses]
        metrics += [k for k in row.get("metrics", {}) if k not in metrics]
    return ["step", *losses, *[_metric_column(k, losses) for k in metrics]]


def _metric_column(key: str, losses: list[str]) -> str:
    """A metric's CSV column: its own name unless a loss or the step column already has it."""
    return f"val_{key}" if key in losses or key == "step" else key


def write_history(path: Path, history: list[dict]) -> None:
    """Write the history rows as CSV, atomically; missing values are empty cells."""
    columns = history_columns(history)
    losses = [k for row in history for k in row.get("losses", {})]
    with atomic_file(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in history:
            cells = {"step": row["step"]}
            cells.update(row.get("losses", {}))
            cells.update({_metric_column(k, losses): v for k, v in row.get("metrics", {}).items()})
            writer.writerow([_cell(cells.get(c)) for c in columns])


def write_timing(path: Path, history: list[dict]) -> None:
    """step, seconds_per_step of every logged window, atomically (beside the checkpoints)."""
    with atomic_file(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "seconds_per_step"])
        for row in history:
            if row.get("seconds_per_step") is not None:
                writer.writerow([row["step"], _cell(row["seconds_per_step"])])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


class TensorBoardLog:
    """History rows as TensorBoard scalars in <checkpoint_dir>/tensorboard, when it is installed.

    `purge_step` drops events a killed run wrote after the checkpoint it resumes from.
    """

    def __init__(self, folder: Path, step: int, enabled: bool):
        self._writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self._writer = SummaryWriter(str(folder), purge_step=step)

    def add(self, row: dict) -> None:
        if self._writer is None:
            return
        for group in ("losses", "metrics"):
            for name, value in row[group].items():
                self._writer.add_scalar(f"{group}/{name}", value, row["step"])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
