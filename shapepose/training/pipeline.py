"""Input pipelines that keep a GPU busy while drawing exactly the batches of an inline run.

Every stage's batch is a pure function of the step (`shapepose.training.batches`), so the batches
can be prepared anywhere, in any order, by any number of processes: `step_batches` indexes a
map-style dataset by the step and hands it to a DataLoader with `workers` processes, pinned
memory and `prefetch` batches each in flight, then copies each batch to the device without
blocking. With 0 workers the same batches are made inline. A resumed run starts the loader at the
resumed step, so it draws what the uninterrupted run would have drawn.

A stage whose data is small keeps it on the device (`preload`) and draws its batches there, inline.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

MakeBatch = Callable[[int], object]


class StepDataset(Dataset):
    """dataset[step] = make_batch(step): the map-style view of a stage's batch function."""

    def __init__(self, make_batch: MakeBatch, stop: int):
        self.make_batch = make_batch
        self.stop = stop

    def __len__(self) -> int:
        return self.stop

    def __getitem__(self, step: int):
        return self.make_batch(int(step))


def _ignore_sigterm(_worker_id: int) -> None:
    # SIGTERM (preemption) is the trainer's to handle: it finishes the step and checkpoints.
    # A worker that died of it would instead fail the next fetch.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def to_device(batch, device: torch.device, non_blocking: bool = False):
    """A nested batch (dicts, lists, tuples of tensors or arrays) on `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, np.ndarray) and batch.dtype != object:
        return torch.from_numpy(batch).to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, non_blocking) for v in batch)
    return batch


def step_batches(make_batch: MakeBatch, start: int, stop: int, device: torch.device, *,
                 workers: int = 0, prefetch: int = 2, pin_memory: bool = False
                 ) -> Iterator:
    """The batches of steps start .. stop - 1, in order, on `device`.

    workers > 0: prepared by that many processes (each batch by one of them), `prefetch` each
    ahead, in pinned memory when `pin_memory`; copied to the device asynchronously.
    """
    if workers == 0:
        for step in range(start, stop):
            yield to_device(make_batch(step), device)
        return
    # Its own generator: a DataLoader without one seeds its workers with a draw from torch's
    # global generator, which would shift the stage's later global draws (dropout, box samplers).
    loader = DataLoader(StepDataset(make_batch, stop), batch_size=None,
                        sampler=range(start, stop), num_workers=workers,
                        generator=torch.Generator(),
                        prefetch_factor=prefetch, pin_memory=pin_memory,
                        worker_init_fn=_ignore_sigterm, persistent_workers=False)
    for batch in loader:
        yield to_device(batch, device, non_blocking=pin_memory)


def nbytes(*arrays) -> int:
    """Bytes of arrays / tensors (to decide whether a dataset is preloaded to the device)."""
    total = 0
    for a in arrays:
        if isinstance(a, torch.Tensor):
            total += a.numel() * a.element_size()
        elif a is not None:
            total += np.asarray(a).nbytes
    return total
