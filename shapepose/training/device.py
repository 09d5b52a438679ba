"""Pick the torch device from the config's `device` value, so every stage reads it the same way."""

from __future__ import annotations

import torch


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
