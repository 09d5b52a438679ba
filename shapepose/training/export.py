"""The finished model a training rule hands on (model.pt), and reading it back.

The file is `torch.save` of {module name: state_dict on the CPU, "meta": {...}}, where meta holds
the run's fingerprint (also spread into meta's top level), its hash, seed, stage, step, the
validation metrics of the exported state, which state it is ("best" or "last") and the stage's
`extra`. Everything in it loads with `weights_only=True`, so reading a model runs no pickled code.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from shapepose.errors import InputError
from shapepose.io.atomic import atomic_file


def export_checkpoint(path: str | os.PathLike, modules: Mapping[str, dict], meta: dict) -> Path:
    """Write modules' state dicts (moved to the CPU) and `meta` to `path`, atomically.

    meta (and so a stage's `extra`) must hold only tensors and plain Python values.
    """
    exported = {name: {k: v.detach().cpu() for k, v in state.items()}
                for name, state in modules.items()}
    if "meta" in exported:
        raise ValueError("module name 'meta' is reserved for the export file")
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
    return path


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
