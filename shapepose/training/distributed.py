"""Several GPUs on one node: DistributedDataParallel, launched the way torchrun launches.

A training rule asks for `gpu=N` (its `resources`; the SLURM profile turns that into
`--gpus=N --nodes=1`). Its entry script calls `launch(train_fn, kwargs, processes=N)`: with N = 1
that is just `train_fn(**kwargs)`; with N > 1 it starts N worker processes through torchrun's own
launcher (`torch.distributed.launcher.elastic_launch`, rendezvous `c10d` on localhost, as
`torchrun --standalone --nproc-per-node N`), each with RANK, LOCAL_RANK and WORLD_SIZE set, and
each joins the process group (NCCL on CUDA, gloo on the CPU) before calling `train_fn`.

What each rank does (shapepose.training.loop):
- the global batch of a step is the single-GPU run's batch; rank r takes its r-th slice of it
  (`Distributed.shard`), gradients are averaged by DDP, so with batch-mean losses the update equals
  the single-GPU update at the same global batch and learning rate;
- only rank 0 writes checkpoints, history, TensorBoard, the log's progress and the outputs;
- a checkpoint holds the model, optimizer and schedulers once (they are the same on every rank)
  and every rank's RNG state, so it resumes at any world size (ranks it lacks derive their RNGs
  from the seed, the rank and the step);
- a stop (SIGTERM) is agreed by every rank after each step over a CPU (gloo) group, so all stop
  after the same step without a GPU synchronisation.
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger("shapepose.training")

# Rank 0 validates alone while the others wait at their next collective; validation of a real
# config can take minutes, so the collectives wait this long before giving up.
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)


@dataclass
class Distributed:
    """This process's place in the run: rank, world size, and the CPU group for control."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    control: object | None = None  # a gloo process group (or None in a single process)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, global_batch: int) -> slice:
        """This rank's slice of a global batch of `global_batch` samples (equal slices)."""
        if global_batch % self.world_size:
            raise ValueError(f"batch size {global_batch} is not divisible by the {self.world_size} "
                             f"processes (gpu={self.world_size}); use a multiple of "
                             f"{self.world_size} or fewer GPUs")
        size = global_batch // self.world_size
        return slice(self.rank * size, (self.rank + 1) * size)

    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on any (one CPU all-reduce; no GPU sync)."""
        if not self.active:
            return flag
        value = torch.tensor([1 if flag else 0], dtype=torch.int32)
        dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self.control)
        return bool(value.item())

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of `tensor` (on its device, in place of a copy)."""
        if not self.active:
            return tensor
        out = tensor.clone()
        group = self.control if out.device.type == "cpu" else None
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out / self.world_size

    def gather_objects(self, obj) -> list:
        """Every rank's `obj`, in rank order, on every rank (CPU group)."""
        if not self.active:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.control)
        return out

    def broadcast_object(self, obj):
        """Rank 0's `obj` on every rank (CPU group)."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            dist.barrier(group=self.control)


_CONTROL: dict = {}


def current() -> Distributed:
    """The running process's Distributed (a single process when no group is initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Distributed()
    if "group" not in _CONTROL:
        _CONTROL["group"] = (dist.group.WORLD if dist.get_backend() == "gloo"
                             else dist.new_group(backend="gloo", timeout=COLLECTIVE_TIMEOUT))
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())),
                       control=_CONTROL["group"])


def local_device_index() -> int | None:
    """LOCAL_RANK under a launched multi-process run, else None."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return None


def wrap_ddp(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`module` as DistributedDataParallel when several processes run, else itself.

    Batch-norm layers become SyncBatchNorm on CUDA, so the statistics are those of the global
    batch as in one process (PyTorch has no CPU SyncBatchNorm: on the CPU each rank normalizes
    its own slice). Train through the returned wrapper; validate and checkpoint the module.
    """
    if not current().active:
        return module
    if device.type == "cuda":
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=[device.index],
                                                         output_device=device.index)
    return torch.nn.parallel.DistributedDataParallel(module)


# --------------------------------------------------------------------------------- launching

def _configure_worker_logging(log_path: str | None, rank: int) -> None:
    """Each worker appends to the rule's log; ranks above 0 only warnings, each line tagged."""
    stream = open(log_path, "a", buffering=1) if log_path else sys.stderr
    sys.stderr = stream
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, stream=stream,
                        force=True,
                        format=f"%(asctime)s %(levelname)s [rank {rank}] %(name)s: %(message)s")


def _worker(fn: Callable, kwargs: dict, log_path: str | None, threads: int | None):
    """One process of a launched run: join the group, train, leave the group."""
    rank = int(os.environ["RANK"])
    _configure_worker_logging(log_path, rank)
    from shapepose.training.device import configure_torch

    if threads:
        configure_torch(threads)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=COLLECTIVE_TIMEOUT)
    try:
        return fn(**kwargs)
    except SystemExit:
        raise
    except Exception as exc:
        from shapepose.errors import InputError

        if isinstance(exc, InputError):
            print(f"ERROR: [rank {rank}] {exc}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        raise
    finally:
        _CONTROL.clear()
        if dist.is_initialized():
            dist.destroy_process_group()


class LaunchFailed(RuntimeError):
    """A launched multi-process run failed; `exit_code` is the first failed rank's status."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def launch(fn: Callable, kwargs: dict, processes: int, *, log_path: str | None = None,
           threads: int | None = None):
    """`fn(**kwargs)` in `processes` processes (torchrun's launcher) or in this one (1).

    Returns rank 0's result. A worker ended by SIGTERM (preemption) ends the launch with
    SystemExit(143), as a single-process trainer does; another failure raises LaunchFailed
    naming the rank and its exit status (its message is in the rule's log).
    """
    processes = int(processes or 1)
    if processes <= 1:
        return fn(**kwargs)
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=processes,
                          run_id=f"shapepose-{uuid.uuid4().hex[:12]}", rdzv_backend="c10d",
                          rdzv_endpoint="127.0.0.1:0", max_restarts=0, start_method="spawn",
                          monitor_interval=0.1)
    log.info("launching %d training processes (torchrun: --standalone --nproc-per-node %d)",
             processes, processes)
    # The launcher logs a failed worker as its own traceback of the pool's join; the worker has
    # written the real error to the log already, and the LaunchFailed below names the rank.
    logging.getLogger("torch.distributed.elastic.multiprocessing.api").setLevel(logging.CRITICAL)
    # A spawned worker re-runs the main module when it knows its file: Snakemake's `script:`
    # (run as `python script.py`, no __main__ guard) would start training again in every worker.
    # `fn` lives in shapepose, so the workers need nothing from __main__.
    main = sys.modules["__main__"]
    main_file = main.__dict__.pop("__file__", None) if getattr(main, "__spec__", None) is None \
        else None
    try:
        results = elastic_launch(config, _worker)(fn, kwargs, log_path, threads)
    except SignalException as exc:
        log.warning("launcher received %s; the workers checkpointed and stopped", exc.sigval)
        raise SystemExit(128 + int(exc.sigval)) from None
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        code = int(failure.exitcode)
        if code == 128 + signal.SIGTERM:
            raise SystemExit(code) from None
        raise LaunchFailed(f"training process of rank {rank} (of {processes}) failed with exit "
                           f"status {code}; its error is in the log", code) from None
    finally:
        if main_file is not None:
            main.__file__ = main_file
    return results[0]


def processes_for(gpus: int | str | None, devices: Sequence | None = None) -> int:
    """How many processes a rule with `gpu=gpus` runs: its GPU count (1 when it asks for none).

    On a machine without CUDA the same count of CPU processes runs (gloo), which is how the
    tests exercise the multi-process path.
    """
    try:
        count = int(gpus or 0)
    except (TypeError, ValueError):
        raise ValueError(f"resource gpu must be an integer, got {gpus!r}") from None
    if torch.cuda.is_available() and count > torch.cuda.device_count():
        raise ValueError(f"the rule asks for gpu={count} but this node has "
                         f"{torch.cuda.device_count()} GPU(s) visible")
    return max(count, 1)


def run_training(snakemake, train_fn, **kwargs):
    """A training rule's work: `train_fn(**kwargs)` in as many processes as the rule has GPUs.

    The rule's `gpu` resource (1 by default; `--set-resources rule:gpu=4`, which the SLURM
    profile turns into `--gpus=4 --nodes=1`) is the number of processes (one per GPU, launched as
    torchrun does; `shapepose.training.distributed`). Every trainer also gets the config's
    `fast_path` section (read here, not a rule param: it says how to train, not what, so changing
    it reruns nothing; the precision is part of each run's fingerprint all the same) and the rule's
    name, for the out-of-memory message. Call it inside `shapepose.workflow.script_logging`
    (it lives here, not there, so that scripts which train nothing do not reach torch).
    """
    processes = processes_for(snakemake.resources.get("gpu", 0))
    kwargs.update(fast_path=snakemake.config.get("fast_path"), rule=snakemake.rule)
    log_path = snakemake.log[0] if len(snakemake.log) else None
    sys.stderr.flush()
    try:
        return launch(train_fn, kwargs, processes, log_path=log_path, threads=snakemake.threads)
    except LaunchFailed as exc:
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code or 1)
