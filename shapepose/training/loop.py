"""The shared training loop: seeded, checkpointed, resumable after SIGKILL, clean exit on SIGTERM.

Every training stage hands `Trainer` its modules, optimizers and schedulers and a `step_fn` that
does one optimisation step. The trainer owns everything else: seeding, periodic and best
checkpoints, exact resume (weights, optimizer and scheduler state, every RNG, history, the loss
window being averaged), validation, progress and the exported model file.

Steps are counted as completed optimizer steps: `step_fn(step)` is called with step = 0, 1, ...,
max_steps - 1, and the checkpoint written after it is `step_{step + 1:08d}.pt`.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from shapepose.errors import InputError
from shapepose.io.atomic import atomic_file
from shapepose.training.checkpoint import (
    KEEP_PERIODIC, CheckpointDir, CheckpointUnreadable, TrainingError, capture_rng_state,
    fingerprint_hash,
    read_checkpoint, restore_rng_state, seed_everything, step_name, write_checkpoint,
    write_history, write_timing)
from shapepose.training.device import pick_device

log = logging.getLogger("shapepose.training")

SIGTERM_EXIT_STATUS = 143  # 128 + SIGTERM, what a shell reports for a job ended by SIGTERM
StepFn = Callable[[int], Mapping[str, float]]
ValidateFn = Callable[[], Mapping[str, float]]


@dataclass
class TrainConfig:
    """How long to train and how often to checkpoint, validate and log (counted in steps)."""

    max_steps: int
    checkpoint_every: int = 100
    validate_every: int = 0
    log_every: int = 10
    best_metric: str | None = None
    best_mode: str = "min"
    # periodic checkpoints kept beside best.pt; 1 keeps only the latest (the disk-frugal setting)
    keep_last: int = KEEP_PERIODIC
    # history.csv gets a row of mean losses every `record_every` steps (None: every log line)
    record_every: int | None = None
    # also write the recorded losses and metrics as TensorBoard scalars, when it is installed
    tensorboard: bool = True

    def __post_init__(self):
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("checkpoint_every and log_every must be >= 1")
        if self.keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {self.keep_last}")
        if self.record_every is not None and self.record_every < 1:
            raise ValueError(f"record_every must be >= 1, got {self.record_every}")
        if self.validate_every < 0:
            raise ValueError(f"validate_every must be >= 0, got {self.validate_every}")
        if self.best_mode not in ("min", "max"):
            raise ValueError(f"best_mode must be 'min' or 'max', got {self.best_mode!r}")


@dataclass
class FitResult:
    """What `Trainer.fit` returns; `history` rows are {step, losses, metrics, seconds_per_step}."""

    history: list[dict]
    best_metrics: dict[str, float]
    resumed_from: int | None
    step: int
    best_step: int | None = None
    last_metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class _Progress:
    """The part of the loop state that a checkpoint must carry for an exact resume."""

    step: int = 0
    history: list[dict] = field(default_factory=list)
    best_value: float | None = None
    best_step: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    last_metrics: dict[str, float] = field(default_factory=dict)
    # Sums of the losses since the last log line: a resume mid-window must log the same means.
    window_sums: dict[str, float] = field(default_factory=dict)
    window_count: int = 0
    # The same for the window of the next history row, when rows are recorded more often.
    record_sums: dict[str, float] = field(default_factory=dict)
    record_count: int = 0


class Trainer:
    """One training run, identified by its fingerprint, checkpointed in `checkpoint_dir`.

    `checkpoint_dir` is not a Snakemake output (Snakemake would delete it on failure, losing the
    progress that resume is for); the rule's output is the file written by `export`.

    `fingerprint` must hold everything that changes the result (hyper-parameters, data, model);
    the seed is added to it. `schedulers` takes any object with `state_dict()` and
    `load_state_dict()` (an LR scheduler, an AMP GradScaler) whose state must survive a resume.
    Build modules before the Trainer with a seeded torch RNG, so a fresh run is reproducible;
    a resumed run overwrites them from the checkpoint.
    """

    def __init__(self, checkpoint_dir: str | os.PathLike, *, fingerprint: dict,
                 modules: Mapping[str, torch.nn.Module], seed: int, config: TrainConfig,
                 optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
                 schedulers: Mapping[str, object] | None = None,
                 device: torch.device | str | None = None):
        if not modules:
            raise ValueError("Trainer needs at least one module to train")
        reserved = {"meta"} & set(modules)
        if reserved:
            raise ValueError(f"module name(s) {sorted(reserved)} are reserved for the export file")
        self.store = CheckpointDir(checkpoint_dir)
        self.fingerprint = json.loads(json.dumps(dict(fingerprint), sort_keys=True, default=str))
        self.seed = int(seed)
        self.fingerprint_hash = fingerprint_hash({"fingerprint": self.fingerprint,
                                                  "seed": self.seed})
        self.modules = dict(modules)
        self.optimizers = dict(optimizers or {})
        self.schedulers = dict(schedulers or {})
        self.config = config
        self.device = device if isinstance(device, torch.device) else pick_device(device or "auto")
        self._stop_requested = False
        self._writer = None
        self._window_timer = (0.0, 0)  # (start time, steps) of the current log window, this run

    @property
    def checkpoint_dir(self) -> Path:
        return self.store.root

    # ---------------------------------------------------------------- fit

    def fit(self, step_fn: StepFn, validate_fn: ValidateFn | None = None) -> FitResult:
        """Train until `config.max_steps`, resuming from the newest good checkpoint if any.

        On SIGTERM the current step finishes, a checkpoint is written and `SystemExit(143)` is
        raised. A non-finite loss raises `TrainingError` naming the directory, step and loss.
        """
        self.store.ensure_writable()
        # deterministic kernels whoever calls (the entry scripts also fix the thread count)
        torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())
        progress, resumed_from = self._resume()
        cfg = self.config
        if progress.step >= cfg.max_steps:
            log.info("training in %s is complete (step %d of %d); nothing to do",
                     self.checkpoint_dir, progress.step, cfg.max_steps)
            return self._result(progress, resumed_from)

        previous_handler = self._install_sigterm_handler()
        self._writer = self._open_tensorboard(progress.step)
        try:
            self._run(step_fn, validate_fn, progress)
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGTERM, previous_handler)
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        return self._result(progress, resumed_from)

    def _open_tensorboard(self, step: int):
        """A SummaryWriter in <checkpoint_dir>/tensorboard when tensorboard is installed, else None.

        `purge_step` drops events a killed run wrote after the checkpoint it resumes from.
        """
        if not self.config.tensorboard:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return SummaryWriter(str(self.checkpoint_dir / "tensorboard"), purge_step=step)

    def _tensorboard(self, row: dict) -> None:
        if self._writer is None:
            return
        for group in ("losses", "metrics"):
            for name, value in row[group].items():
                self._writer.add_scalar(f"{group}/{name}", value, row["step"])

    def _run(self, step_fn: StepFn, validate_fn: ValidateFn | None, progress: _Progress) -> None:
        cfg = self.config
        self._window_timer = (time.perf_counter(), 0)
        with tqdm(total=cfg.max_steps, initial=progress.step, file=sys.stderr,
                  desc=f"train {self.checkpoint_dir.name}", unit="step", mininterval=2.0) as bar:
            for step in range(progress.step, cfg.max_steps):
                losses = self._checked_losses(step_fn(step), step)
                self._count_step(progress, losses)
                bar.update(1)
                self._validate_and_log(progress, validate_fn)
                done = progress.step
                finished = done == cfg.max_steps
                if done % cfg.checkpoint_every == 0 or finished or self._stop_requested:
                    path = self._save_periodic(progress)
                    if self._stop_requested and not finished:
                        bar.close()
                        log.warning("SIGTERM: stopped after step %d of %d; checkpoint written to "
                                    "%s; exiting with status %d", done, cfg.max_steps, path,
                                    SIGTERM_EXIT_STATUS)
                        raise SystemExit(SIGTERM_EXIT_STATUS)
        timed = [row["seconds_per_step"] for row in progress.history if row.get("seconds_per_step")]
        log.info("training finished at step %d; checkpoints in %s; %s", progress.step,
                 self.checkpoint_dir, f"{sum(timed) / len(timed):.4g} s per step (mean of "
                 f"{len(timed)} log windows, timing.csv)" if timed else "no step timed")

    def _count_step(self, progress: _Progress, losses: dict[str, float]) -> None:
        """Advance the step and add its losses to the window that the next log line averages."""
        progress.step += 1
        for name, value in losses.items():
            progress.window_sums[name] = progress.window_sums.get(name, 0.0) + value
            progress.record_sums[name] = progress.record_sums.get(name, 0.0) + value
        progress.window_count += 1
        progress.record_count += 1
        start, steps = self._window_timer
        self._window_timer = (start, steps + 1)

    def _validate_and_log(self, progress: _Progress, validate_fn: ValidateFn | None) -> None:
        """Validate and/or log when due, and append the step's history row."""
        cfg, done = self.config, progress.step
        finished = done == cfg.max_steps
        row: dict = {"step": done, "losses": {}, "metrics": {}, "seconds_per_step": None}
        validate = validate_fn is not None and cfg.validate_every > 0 and (
            done % cfg.validate_every == 0 or finished)
        logged = done % cfg.log_every == 0 or finished
        record_every = cfg.record_every or cfg.log_every
        recorded = done % record_every == 0 or finished
        if validate:
            row["metrics"] = self._validate(validate_fn, progress)
        if logged:
            start, steps = self._window_timer
            seconds = (time.perf_counter() - start) / max(steps, 1)
            self._log_window(progress, seconds)
            row["seconds_per_step"] = round(seconds, 6)
            self._window_timer = (time.perf_counter(), 0)
        if recorded:
            count = max(progress.record_count, 1)
            row["losses"] = {k: v / count for k, v in progress.record_sums.items()}
            progress.record_sums, progress.record_count = {}, 0
        if validate or logged or recorded:
            progress.history.append(row)
            self._tensorboard(row)

    def _checked_losses(self, losses: Mapping[str, float], step: int) -> dict[str, float]:
        """Losses as floats; the first non-finite one stops training before it is checkpointed."""
        if not isinstance(losses, Mapping):
            raise TypeError(f"step_fn must return a dict of scalar losses, got {type(losses)}")
        checked = {}
        for name, value in losses.items():
            value = float(value)
            if not math.isfinite(value):
                raise TrainingError(self.checkpoint_dir, f"loss {name!r} is {value} at step "
                                                         f"{step}; training stopped")
            checked[str(name)] = value
        return checked

    def _log_window(self, progress: _Progress, seconds_per_step: float) -> dict[str, float]:
        """Log and return the mean losses since the last log line; start a new window."""
        count = max(progress.window_count, 1)
        means = {k: v / count for k, v in progress.window_sums.items()}
        text = " ".join(f"{k}={v:.6g}" for k, v in means.items())
        log.info("step %d/%d: %s (%.4g s/step)", progress.step, self.config.max_steps, text,
                 seconds_per_step)
        progress.window_sums, progress.window_count = {}, 0
        return means

    def _validate(self, validate_fn: ValidateFn, progress: _Progress) -> dict[str, float]:
        """Run `validate_fn` in eval mode without gradients; track and save the best state."""
        modes = [(m, m.training) for module in self.modules.values() for m in module.modules()]
        for module in self.modules.values():
            module.eval()
        try:
            with torch.no_grad():
                metrics = {str(k): float(v) for k, v in validate_fn().items()}
        finally:
            for m, training in modes:
                m.training = training
        progress.last_metrics = metrics
        log.info("step %d validation: %s", progress.step,
                 " ".join(f"{k}={v:.6g}" for k, v in metrics.items()))
        key = self.config.best_metric
        if key is None:
            return metrics
        if key not in metrics:
            raise TrainingError(self.checkpoint_dir, f"best_metric {key!r} is not among the "
                                                     f"validation metrics {sorted(metrics)}")
        value = metrics[key]
        if not math.isfinite(value):
            log.warning("step %d: validation %s is %s; not a candidate for best", progress.step,
                        key, value)
        elif progress.best_value is None or (value < progress.best_value
                                             if self.config.best_mode == "min"
                                             else value > progress.best_value):
            progress.best_value, progress.best_step = value, progress.step
            progress.best_metrics = dict(metrics)
            self._write(self.store.best_path, progress)
            log.info("step %d: new best %s=%.6g, saved %s", progress.step, key, value,
                     self.store.best_path)
        return metrics

    def _install_sigterm_handler(self):
        """Make SIGTERM only set a flag; returns the previous handler (None off the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        self._stop_requested = False

        def request_stop(signum, frame):
            self._stop_requested = True

        return signal.signal(signal.SIGTERM, request_stop)

    # ------------------------------------------------------- checkpoints

    def _payload(self, progress: _Progress) -> dict:
        return {
            "format": 1,
            "step": progress.step,
            "fingerprint": self.fingerprint,
            "fingerprint_hash": self.fingerprint_hash,
            "seed": self.seed,
            "config": asdict(self.config),
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "rng": capture_rng_state(self.device),
            "progress": asdict(progress),
        }

    def _write(self, path: Path, progress: _Progress) -> None:
        try:
            write_checkpoint(path, self._payload(progress))
        except OSError as exc:
            raise TrainingError(self.checkpoint_dir, f"cannot write checkpoint {path.name}: "
                                                     f"{exc.strerror or exc}") from None

    def _save_periodic(self, progress: _Progress) -> Path:
        path = self.checkpoint_dir / step_name(progress.step)
        self._write(path, progress)
        self.store.prune(self.config.keep_last)
        try:
            write_history(self.store.history_path, progress.history)
            write_timing(self.store.timing_path, progress.history)
        except OSError as exc:
            raise TrainingError(self.checkpoint_dir, f"cannot write history.csv: "
                                                     f"{exc.strerror or exc}") from None
        return path

    def _resume(self) -> tuple[_Progress, int | None]:
        """Load the newest good checkpoint of this fingerprint, or seed a fresh run."""
        found = self.store.newest_readable()
        if found is not None:
            path, payload = found
            if payload.get("fingerprint_hash") != self.fingerprint_hash:
                old = str(payload.get("fingerprint_hash", "unknown"))
                target = self.store.set_aside_stale(old)
                log.warning("checkpoint %s belongs to another configuration (fingerprint %s, "
                            "this run %s); moved old checkpoints to %s and starting from step 0",
                            path, old[:8], self.fingerprint_hash[:8], target)
                found = None
        if found is None:
            if not self.store.periodic():
                log.info("no usable checkpoint in %s; starting from step 0", self.checkpoint_dir)
            self.store.clear_best()  # a best.pt without its run would be exported by mistake
            seed_everything(self.seed)
            return _Progress(), None
        path, payload = found
        self._load_states(path, payload)
        progress = _Progress(**payload["progress"])
        log.info("resuming from step %d (%s)", progress.step, path)
        return progress, progress.step

    def _load_states(self, path: Path, payload: dict) -> None:
        """Put every module, optimizer, scheduler and RNG back as it was at the checkpoint."""
        for kind, live in (("modules", self.modules), ("optimizers", self.optimizers),
                           ("schedulers", self.schedulers)):
            saved = payload[kind]
            if set(saved) != set(live):
                raise TrainingError(path, f"checkpoint holds {kind} {sorted(saved)} but this run "
                                          f"has {sorted(live)}; delete {self.checkpoint_dir} "
                                          "or add what changed to the fingerprint")
            for name, obj in live.items():
                try:
                    obj.load_state_dict(saved[name])
                except (RuntimeError, KeyError, ValueError) as exc:
                    raise TrainingError(path, f"state of {kind[:-1]} {name!r} does not fit: "
                                              f"{exc}") from None
        restore_rng_state(payload["rng"], self.device)

    def _result(self, progress: _Progress, resumed_from: int | None) -> FitResult:
        return FitResult(history=progress.history, best_metrics=dict(progress.best_metrics),
                         resumed_from=resumed_from, step=progress.step,
                         best_step=progress.best_step, last_metrics=dict(progress.last_metrics))

    # ------------------------------------------------------------ export

    def export(self, path: str | os.PathLike, which: str = "best",
               extra: dict | None = None) -> Path:
        """Write the trained modules and their metadata to `path` (the rule's output), atomically.

        `which="best"` takes best.pt and falls back to the last checkpoint when no validation
        selected one. The file holds {module name: state_dict (CPU), "meta": {...}}, where meta
        has the fingerprint (also spread into meta's top level), step, metrics, extra, which and
        seed. `extra` must hold only tensors and plain Python values (it is loaded with
        `weights_only=True`).
        """
        if which not in ("best", "last"):
            raise ValueError(f"which must be 'best' or 'last', got {which!r}")
        last = self._complete_checkpoint()
        source, chosen, metrics = last, "last", last["progress"]["last_metrics"]
        if which == "best":
            best = self._best_checkpoint()
            if best is not None:
                source, chosen = best, "best"
                metrics = best["progress"]["best_metrics"]
            else:
                log.info("no best checkpoint in %s (no validation selected one); exporting the "
                         "last state", self.checkpoint_dir)
        meta = {**self.fingerprint, "fingerprint": self.fingerprint,
                "fingerprint_hash": self.fingerprint_hash, "seed": self.seed,
                "step": source["step"], "metrics": dict(metrics), "which": chosen,
                "extra": dict(extra or {})}
        exported = {name: {k: v.detach().cpu() for k, v in state.items()}
                    for name, state in source["modules"].items()}
        exported["meta"] = meta
        buffer = io.BytesIO()
        torch.save(exported, buffer)
        try:
            torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
        except Exception as exc:
            raise TypeError(f"export extra/fingerprint must hold only tensors and plain Python "
                            f"values: {exc}") from None
        path = Path(path)
        with atomic_file(path) as tmp:
            tmp.write_bytes(buffer.getvalue())
        log.info("exported %s state (step %d) of %s to %s", chosen, source["step"],
                 self.checkpoint_dir, path)
        return path

    def _complete_checkpoint(self) -> dict:
        found = self.store.newest_readable()
        step = found[1]["step"] if found else 0
        if found is None or found[1].get("fingerprint_hash") != self.fingerprint_hash \
                or step < self.config.max_steps:
            raise TrainingError(self.checkpoint_dir, f"training is not complete (newest usable "
                                                     f"checkpoint at step {step} of "
                                                     f"{self.config.max_steps}); run fit() first")
        return found[1]

    def _best_checkpoint(self) -> dict | None:
        if not self.store.best_path.exists():
            return None
        try:
            best = read_checkpoint(self.store.best_path)
        except CheckpointUnreadable as exc:
            raise TrainingError(self.store.best_path, f"best checkpoint is unreadable "
                                                      f"({exc.reason})") from None
        if best.get("fingerprint_hash") != self.fingerprint_hash:
            raise TrainingError(self.store.best_path, "best checkpoint belongs to another "
                                                      "configuration")
        return best


def load_exported(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a file written by `Trainer.export`: {module name: state_dict, "meta": {...}}."""
    try:
        data = torch.load(Path(path), map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise InputError(path, "exported model file does not exist") from None
    except Exception as exc:  # torch.load raises many types for a damaged or foreign file
        raise InputError(path, f"exported model file is unreadable ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("meta"), dict):
        raise InputError(path, "not an exported model: no 'meta' entry")
    return data
