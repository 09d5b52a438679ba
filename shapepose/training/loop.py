"""The shared training loop: seeded, checkpointed, resumable after SIGKILL, clean exit on SIGTERM.

Every training stage hands `Trainer` its modules, optimizers, learning-rate schedulers and a
`step_fn` that does one optimisation step. The trainer owns everything else: seeding, stepping
the learning-rate schedulers, periodic and best checkpoints, exact resume (weights, optimizer and
scheduler state, every RNG, history, the loss window being averaged), validation, progress,
seconds per step, and the rule's two outputs (`export`: model.pt, `write_losses`: losses.csv).
Its parts live beside it: checkpoint.py (the file format and directory), rng.py (seeding and RNG
capture), history.py (history.csv, timing.csv, TensorBoard), export.py (the exported model).

Steps are counted as completed optimizer steps: `step_fn(step)` is called with step = 0, 1, ...,
max_steps - 1, and the checkpoint written after it is `step_{step + 1:08d}.pt`. With
`fit(..., batches=make_batch)` the batch of each step is made by `make_batch(step)` (inline or in
DataLoader workers, `shapepose.training.pipeline`), put on the device, and passed as
`step_fn(step, batch)`.

No host-device synchronisation per step: `step_fn` may return its losses as (detached) tensors;
the trainer keeps them on the device and reads them all at once at the next log, validation or
checkpoint step (a non-finite loss is then reported with the step it happened at, before any
checkpoint is written after it). Under several processes (`shapepose.training.distributed`)
those losses are averaged over the ranks, so the history is the global batch's, and only rank 0
writes anything. The fast path (mixed precision, channels-last, cuDNN autotuning, compile) is
`self.accel` (`shapepose.training.fast`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from shapepose.io.atomic import atomic_file
from shapepose.training.checkpoint import (
    CheckpointDir, CheckpointUnreadable, TrainingError, fingerprint_hash, read_checkpoint,
    step_name, write_checkpoint)
from shapepose.training.device import pick_device
from shapepose.training.distributed import current as current_distributed, wrap_ddp
from shapepose.training.export import export_checkpoint
from shapepose.training.fast import Acceleration, FastPath
from shapepose.training.history import TensorBoardLog, write_history, write_timing
from shapepose.training.pipeline import step_batches
from shapepose.training.rng import capture_rng_state, restore_rng_state, seed_everything

log = logging.getLogger("shapepose.training")

SIGTERM_EXIT_STATUS = 143  # 128 + SIGTERM, what a shell reports for a job ended by SIGTERM
StepFn = Callable[..., Mapping[str, "float | torch.Tensor"]]
ValidateFn = Callable[[], Mapping[str, float]]


CHECKPOINT_FORMAT = 3  # part of every run's identity: checkpoints of another format are stale


@dataclass(frozen=True)
class TrainConfig:
    """How long to train and how often to checkpoint, validate and log (counted in steps).

    The first seven fields are a stage's config `training` section (`from_section`); the best
    metric and its direction are the stage's own choice.
    """

    max_steps: int
    checkpoint_every: int
    validate_every: int      # 0: never
    log_every: int
    # history.csv gets a row of mean losses every `record_every` steps (None: every log line)
    record_every: int | None
    # periodic checkpoints kept beside best.pt; 1 keeps only the latest (the disk-frugal setting)
    keep_last: int
    # also write the recorded losses and metrics as TensorBoard scalars, when it is installed
    tensorboard: bool
    best_metric: str | None = None
    best_mode: str = "min"

    # config key -> field; the other keys of a training section belong to the stage
    SECTION_KEYS = {"steps": "max_steps", "checkpoint_every": "checkpoint_every",
                    "validate_every": "validate_every", "log_every": "log_every",
                    "record_every": "record_every", "keep_last": "keep_last",
                    "tensorboard": "tensorboard"}

    @classmethod
    def from_section(cls, section: Mapping, *, best_metric: str | None = None,
                     best_mode: str = "min", validate: bool = True) -> TrainConfig:
        """The loop settings of a config `training` section; `validate=False` (no validation
        data) turns validation off whatever the section says."""
        missing = [key for key in cls.SECTION_KEYS if key not in section]
        if missing:
            raise ValueError(f"config training section lacks {missing}")
        values = {field_: section[key] for key, field_ in cls.SECTION_KEYS.items()}
        if not validate:
            values["validate_every"] = 0
        return cls(**values, best_metric=best_metric if validate else None, best_mode=best_mode)

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
    the seed, the stage and the checkpoint format are added to it. `lr_schedulers` are
    `torch.optim.lr_scheduler` objects, stepped by the trainer after every step (the one way a
    stage changes its learning rates). `states` takes any other object with `state_dict()` and
    `load_state_dict()` (an image pool, an AMP GradScaler) whose state must survive a resume.
    Build modules before the Trainer after `seed_everything(seed, stage, "init")`, so a fresh run
    is reproducible; a resumed run overwrites them from the checkpoint. The global RNGs are
    seeded with (seed, stage, "global") before the first step.
    """

    def __init__(self, checkpoint_dir: str | os.PathLike, *, fingerprint: dict,
                 modules: Mapping[str, torch.nn.Module], seed: int, stage: str,
                 config: TrainConfig,
                 optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
                 lr_schedulers: Mapping[str, torch.optim.lr_scheduler.LRScheduler] | None = None,
                 states: Mapping[str, object] | None = None,
                 device: torch.device | str | None = None,
                 fast_path: FastPath | Mapping | None = None,
                 precisions: tuple[str, ...] = (),
                 batch_size: tuple[str, int] | None = None,
                 rule: str | None = None):
        if not modules:
            raise ValueError("Trainer needs at least one module to train")
        reserved = {"meta"} & set(modules)
        if reserved:
            raise ValueError(f"module name(s) {sorted(reserved)} are reserved for the export file")
        self.store = CheckpointDir(checkpoint_dir)
        self.dist = current_distributed()
        self.device = device if isinstance(device, torch.device) else pick_device(device or "auto")
        # precisions: what the stage's model allows besides fp32 ("bf16", "fp16")
        self.accel = Acceleration(FastPath.from_config(fast_path), self.device, precisions)
        self.fingerprint = json.loads(json.dumps(dict(fingerprint), sort_keys=True, default=str))
        self.seed = int(seed)
        self.stage = str(stage)
        self.fingerprint_hash = fingerprint_hash({"fingerprint": self.fingerprint,
                                                  "seed": self.seed, "stage": self.stage,
                                                  "precision": self.accel.precision,
                                                  "format": CHECKPOINT_FORMAT})
        self.modules = dict(modules)
        self.optimizers = dict(optimizers or {})
        self.lr_schedulers = dict(lr_schedulers or {})
        self.states = dict(states or {})
        if self.accel.scaler is not None:
            self.states["grad_scaler"] = self.accel.scaler
        clash = set(self.lr_schedulers) & set(self.states)
        if clash:
            raise ValueError(f"names {sorted(clash)} are both lr_schedulers and states")
        self.config = config
        # (config key, value) of the batch size, and the rule: named when the GPU runs out of memory
        self.batch_size = batch_size
        self.rule = rule
        self._stop_requested = False
        self._current_step = 0  # the step being taken (named by the out-of-memory error)
        self._tensorboard = None
        self._window_timer = (0.0, 0)  # (start time, steps) of the current log window, this run
        self.seconds_per_step: float | None = None  # mean over this run's log windows
        self.accel.apply_backend_settings()

    def wrap(self, module: torch.nn.Module, convolutional: bool = False,
             compile: bool = True):
        """What a stage's training step calls instead of `module`: channels-last (convolutional
        modules, when on), DistributedDataParallel (several processes) and torch.compile (when
        on, and the module allows it: `compile=False` for one whose graph is differentiated
        twice, which compiled graphs are not). The trainer keeps, checkpoints and exports
        `module` itself, and validation uses it."""
        self.accel.prepare(module, convolutional)
        wrapped = wrap_ddp(module, self.device)
        return self.accel.compiled(wrapped) if compile else wrapped

    def shard(self, global_batch: int) -> slice:
        """This process's slice of a step's global batch (everything in one process)."""
        return self.dist.shard(global_batch)

    @property
    def checkpoint_dir(self) -> Path:
        return self.store.root

    # ---------------------------------------------------------------- fit

    def fit(self, step_fn: StepFn, validate_fn: ValidateFn | None = None, *,
            batches: Callable[[int], object] | None = None, host_batches: bool = True
            ) -> FitResult:
        """Train until `config.max_steps`, resuming from the newest good checkpoint if any.

        `batches`: the stage's batch of a step, `batches(step)`, passed to `step_fn(step, batch)`
        on the device; `host_batches` says it is made on the host (so DataLoader workers may
        make it, `fast_path.loader_workers`), False that it is drawn from data on the device.
        On SIGTERM the current step finishes, a checkpoint is written and `SystemExit(143)` is
        raised. A non-finite loss raises `TrainingError` naming the directory, step and loss.
        A GPU out of memory raises `TrainingError` naming the rule and the batch size to lower.
        """
        if self.dist.is_main:
            self.store.ensure_writable()
        self.dist.barrier()
        # deterministic kernels whoever calls (the entry scripts also fix the thread count)
        torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())
        progress, resumed_from = self._resume()
        cfg = self.config
        if progress.step >= cfg.max_steps:
            log.info("training in %s is complete (step %d of %d); nothing to do",
                     self.checkpoint_dir, progress.step, cfg.max_steps)
            return self._result(progress, resumed_from)
        log.info("fast path: %s on %s%s", self.accel.describe(), self.device,
                 f", {self.dist.world_size} processes" if self.dist.active else "")
        self._check_device_memory()

        previous_handler = self._install_sigterm_handler()
        self._tensorboard = TensorBoardLog(self.checkpoint_dir / "tensorboard", progress.step,
                                           self.config.tensorboard and self.dist.is_main)
        try:
            if batches is None:
                source = None
            else:
                workers = self.accel.config.loader_workers if host_batches else 0
                source = step_batches(batches, progress.step, cfg.max_steps, self.device,
                                      workers=workers, prefetch=self.accel.config.prefetch,
                                      pin_memory=self.accel.pin_memory and host_batches)
            self._run(step_fn, validate_fn, progress, source)
        except torch.OutOfMemoryError as exc:
            raise self._out_of_memory(progress, exc) from None
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGTERM, previous_handler)
            self._tensorboard.close()
        return self._result(progress, resumed_from)

    def _run(self, step_fn: StepFn, validate_fn: ValidateFn | None, progress: _Progress,
             source) -> None:
        cfg = self.config
        self._window_timer = (time.perf_counter(), 0)
        pending: list[tuple[int, Mapping]] = []  # steps done since the last read of the losses
        with tqdm(total=cfg.max_steps, initial=progress.step, file=sys.stderr,
                  desc=f"train {self.checkpoint_dir.name}", unit="step", mininterval=2.0,
                  disable=not self.dist.is_main) as bar:
            for step in range(progress.step, cfg.max_steps):
                self._current_step = step
                losses = step_fn(step) if source is None else step_fn(step, next(source))
                if not isinstance(losses, Mapping):
                    raise TypeError(f"step_fn must return a dict of scalar losses, got "
                                    f"{type(losses)}")
                self.accel.end_step()
                for scheduler in self.lr_schedulers.values():
                    scheduler.step()
                pending.append((step, losses))
                bar.update(1)
                done = step + 1
                stop = self.dist.any(self._stop_requested)
                finished = done == cfg.max_steps
                checkpoint = done % cfg.checkpoint_every == 0 or finished or stop
                if not (checkpoint or self._due(done)):
                    continue  # the losses stay on the device until a step that needs them
                for index, values in self._read_losses(pending):
                    self._count_step(progress, values)
                    self._validate_and_log(progress, validate_fn if index == step else None,
                                           last=index == step)
                pending = []
                if not stop:  # a SIGTERM that came while this step validated or logged
                    stop = self.dist.any(self._stop_requested)
                    checkpoint = checkpoint or stop
                if checkpoint:
                    path = self._save_periodic(progress)
                    if stop and not finished:
                        bar.close()
                        log.warning("SIGTERM: stopped after step %d of %d; checkpoint written to "
                                    "%s; exiting with status %d", done, cfg.max_steps, path,
                                    SIGTERM_EXIT_STATUS)
                        raise SystemExit(SIGTERM_EXIT_STATUS)
        timed = [row["seconds_per_step"] for row in progress.history if row.get("seconds_per_step")]
        self.seconds_per_step = sum(timed) / len(timed) if timed else None
        log.info("training finished at step %d; checkpoints in %s; %s", progress.step,
                 self.checkpoint_dir, f"{self.seconds_per_step:.4g} s per step (mean of "
                 f"{len(timed)} log windows, timing.csv)" if timed else "no step timed")

    def _due(self, done: int) -> bool:
        """Whether step `done` logs or validates (so its losses must be read now)."""
        cfg = self.config
        return done % cfg.log_every == 0 or (cfg.validate_every > 0 and
                                             done % cfg.validate_every == 0)

    def _read_losses(self, pending: list[tuple[int, Mapping]]) -> list[tuple[int, dict]]:
        """The pending steps' losses as floats, in one device-to-host copy (averaged over the
        processes when several run); the first non-finite one raises `TrainingError`."""
        names = list(dict.fromkeys(name for _, losses in pending for name in losses))
        tensors = [(i, n) for i, (_, losses) in enumerate(pending) for n in names
                   if isinstance(losses.get(n), torch.Tensor)]
        values: dict[tuple[int, str], float] = {}
        if tensors:
            stacked = torch.stack([pending[i][1][n].detach().reshape(()).to(torch.float64)
                                   for i, n in tensors])
            stacked = self.dist.mean(stacked)
            values = dict(zip(tensors, stacked.cpu().tolist()))
        out = []
        for i, (step, losses) in enumerate(pending):
            checked = {}
            for name in losses:
                value = values[(i, name)] if (i, name) in values else float(losses[name])
                if not math.isfinite(value):
                    raise TrainingError(self.checkpoint_dir, f"loss {name!r} is {value} at step "
                                                             f"{step}; training stopped")
                checked[str(name)] = value
            out.append((step, checked))
        return out

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

    def _validate_and_log(self, progress: _Progress, validate_fn: ValidateFn | None,
                          last: bool = True) -> None:
        """Validate and/or log when due, and append the step's history row. Steps read before
        the last of a batch of pending steps (`last=False`) only record their losses."""
        cfg, done = self.config, progress.step
        finished = done == cfg.max_steps
        row: dict = {"step": done, "losses": {}, "metrics": {}, "seconds_per_step": None}
        validate = validate_fn is not None and cfg.validate_every > 0 and (
            done % cfg.validate_every == 0 or finished)
        logged = last and (done % cfg.log_every == 0 or finished)
        record_every = cfg.record_every or cfg.log_every
        recorded = done % record_every == 0 or finished
        if validate and self.dist.is_main:  # rank 0 validates alone, on the unwrapped modules
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
            self._tensorboard.add(row)

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
            self._write(self.store.best_path, progress, every_rank=False)
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

    def _payload(self, progress: _Progress, every_rank: bool = True) -> dict:
        """The checkpoint's contents. Modules, optimizers and schedulers are the same on every
        rank; the RNG states are not, so `rng_by_rank` holds each rank's (`every_rank`: gathered
        from all, a collective every rank must reach; best.pt, written by rank 0 alone, holds
        rank 0's)."""
        rng = capture_rng_state(self.device)
        by_rank = self.dist.gather_objects(rng) if every_rank else [rng]
        return {
            "format": CHECKPOINT_FORMAT,
            "step": progress.step,
            "fingerprint": self.fingerprint,
            "fingerprint_hash": self.fingerprint_hash,
            "seed": self.seed,
            "stage": self.stage,
            "config": asdict(self.config),
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "lr_schedulers": {k: s.state_dict() for k, s in self.lr_schedulers.items()},
            "states": {k: s.state_dict() for k, s in self.states.items()},
            "rng": rng,
            "rng_by_rank": by_rank,
            "fast_path": self.accel.describe(),
            "world_size": self.dist.world_size,
            "progress": asdict(progress),
        }

    def _write(self, path: Path, progress: _Progress, every_rank: bool = True) -> None:
        payload = self._payload(progress, every_rank)
        if not self.dist.is_main:
            return
        try:
            write_checkpoint(path, payload)
        except OSError as exc:
            raise TrainingError(self.checkpoint_dir, f"cannot write checkpoint {path.name}: "
                                                     f"{exc.strerror or exc}") from None

    def _save_periodic(self, progress: _Progress) -> Path:
        path = self.checkpoint_dir / step_name(progress.step)
        self._write(path, progress)
        if not self.dist.is_main:
            return path
        self.store.prune(self.config.keep_last)
        try:
            write_history(self.store.history_path, progress.history)
            write_timing(self.store.timing_path, progress.history)
        except OSError as exc:
            raise TrainingError(self.checkpoint_dir, f"cannot write history.csv: "
                                                     f"{exc.strerror or exc}") from None
        return path

    def _resume(self) -> tuple[_Progress, int | None]:
        """Load the newest good checkpoint of this fingerprint, or seed a fresh run.

        Rank 0 chooses (and tidies the directory); the other ranks load the file it chose.
        """
        chosen = self._choose_checkpoint() if self.dist.is_main else None
        chosen = self.dist.broadcast_object(chosen)
        if chosen is None:
            seed_everything(self.seed, self.stage, "global")
            if self.dist.rank > 0:  # each rank its own stream (dropout masks, ...)
                seed_everything(self.seed, self.stage, "global", "rank", self.dist.rank)
            return _Progress(), None
        path = Path(chosen)
        payload = read_checkpoint(path)
        self._load_states(path, payload)
        progress = _Progress(**payload["progress"])
        log.info("resuming from step %d (%s)%s", progress.step, path,
                 f", written by {payload.get('world_size', 1)} process(es)"
                 if payload.get("world_size", 1) != self.dist.world_size else "")
        return progress, progress.step

    def _choose_checkpoint(self) -> str | None:
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
            return None
        return str(found[0])

    def _load_states(self, path: Path, payload: dict) -> None:
        """Put every module, optimizer, scheduler and RNG back as it was at the checkpoint."""
        for kind, live in (("modules", self.modules), ("optimizers", self.optimizers),
                           ("lr_schedulers", self.lr_schedulers), ("states", self.states)):
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
        by_rank = payload.get("rng_by_rank") or [payload["rng"]]
        if self.dist.rank < len(by_rank):
            restore_rng_state(by_rank[self.dist.rank], self.device)
        else:  # a rank the checkpoint's run did not have: its own stream from this step on
            seed_everything(self.seed, self.stage, "global", "rank", self.dist.rank, "resume",
                            int(payload["step"]))

    def _check_device_memory(self) -> None:
        """Log the GPU's memory beside what the rule declared its real config needs."""
        if self.device.type != "cuda":
            return
        total_mb = torch.cuda.get_device_properties(self.device).total_memory / 2**20
        log.info("GPU %s: %.0f MB", torch.cuda.get_device_name(self.device), total_mb)

    def _out_of_memory(self, progress: _Progress, exc: BaseException) -> TrainingError:
        """One clear error for a GPU that is too small: the rule, the batch size to lower."""
        where = f"rule {self.rule}" if self.rule else f"stage {self.stage}"
        if self.device.type == "cuda":
            total = torch.cuda.get_device_properties(self.device).total_memory / 2**30
            peak = torch.cuda.max_memory_allocated(self.device) / 2**30
            device = (f"{torch.cuda.get_device_name(self.device)} ({total:.1f} GiB; "
                      f"{peak:.1f} GiB allocated at the peak)")
        else:
            device = str(self.device)
        advice = (f"lower {self.batch_size[0]} (now {self.batch_size[1]})"
                  if self.batch_size else "lower the batch size")
        return TrainingError(self.checkpoint_dir, f"{where}: out of memory on {device} at step "
                                                  f"{self._current_step}; {advice}, or give the "
                                                  f"rule a GPU with more memory. Training resumes "
                                                  f"from the last checkpoint when rerun")

    def _result(self, progress: _Progress, resumed_from: int | None) -> FitResult:
        return FitResult(history=progress.history, best_metrics=dict(progress.best_metrics),
                         resumed_from=resumed_from, step=progress.step,
                         best_step=progress.best_step, last_metrics=dict(progress.last_metrics))

    # ------------------------------------------------------------ export

    def export(self, path: str | os.PathLike, which: str = "best",
               extra: dict | None = None) -> Path:
        """Write the trained modules and their metadata to `path` (the rule's model.pt).

        `which="best"` takes best.pt and falls back to the last checkpoint when no validation
        selected one; see `shapepose.training.export` for the file's contents.
        """
        if which not in ("best", "last"):
            raise ValueError(f"which must be 'best' or 'last', got {which!r}")
        if not self.dist.is_main:  # rank 0 writes the outputs
            return Path(path)
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
                "fingerprint_hash": self.fingerprint_hash, "seed": self.seed, "stage": self.stage,
                "step": source["step"], "metrics": dict(metrics), "which": chosen,
                "fast_path": source.get("fast_path", {}),
                "world_size": source.get("world_size", 1), "extra": dict(extra or {})}
        export_checkpoint(path, source["modules"], meta)
        log.info("exported %s state (step %d) of %s to %s", chosen, source["step"],
                 self.checkpoint_dir, path)
        return Path(path)

    def write_losses(self, path: str | os.PathLike) -> Path:
        """Copy the finished run's history.csv to `path` (the rule's losses.csv), atomically."""
        if not self.dist.is_main:
            return Path(path)
        self._complete_checkpoint()
        with atomic_file(path) as tmp:
            shutil.copyfile(self.store.history_path, tmp)
        return Path(path)

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
