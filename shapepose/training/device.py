"""Pick the torch device from the config's `device` value, and make torch deterministic."""

from __future__ import annotations

import os

import torch


def configure_torch(threads: int) -> None:
    """Same config, same bytes on one machine: deterministic kernels and a fixed thread count.

    Called first by every entry script that runs torch, with the rule's `threads` (reductions
    split across threads add in another order, so the count is part of the result). On CPU every
    op must have a deterministic implementation (an op without one raises); on CUDA, where the
    splatting atomics of some stages have none, such ops only warn.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's deterministic mode
    torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())
    torch.backends.cudnn.benchmark = False


def pick_device(name: str = "auto") -> torch.device:
    """`"auto"`: CUDA when available, else CPU; `"cpu"`; `"cuda"` or `"cuda:k"` (must exist).

    Asking for a CUDA device that is not there is a configuration error, raised here rather than
    at the first tensor copy deep inside a model.
    """
    name = str(name).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device {name!r} is not 'auto', 'cpu' or 'cuda[:k]': {exc}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} was asked for but CUDA is not available here")
        index = device.index if device.index is not None else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} was asked for but only "
                             f"{torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type != "cpu":
        raise ValueError(f"device {name!r} is not 'auto', 'cpu' or 'cuda[:k]'")
    return device
