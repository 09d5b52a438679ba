"""The trainer's checkpoint files: a checksummed format and the directory's bookkeeping.

A checkpoint file is one header line `SHAPEPOSE-CHECKPOINT 1 <sha256 hex>` followed by the bytes of
`torch.save(payload)`. The checksum catches a file that is truncated or damaged even where the
damage would still unpickle. Files are written through `atomic_file` and fsynced before the
rename, so a killed job leaves either the old set of checkpoints or the new one.

Layout of a checkpoint directory (not a Snakemake output; the trainer owns it):

    step_00000300.pt   periodic checkpoints, the last `KEEP_PERIODIC` kept
    best.pt            the state with the best validation metric so far
    history.csv        one row per recorded or validated step: losses and metrics
    timing.csv         seconds per step of every log window (wall-clock, so kept out of history)
    corrupt/           unreadable checkpoints moved out of the way, kept for inspection
    stale/<hash8>/     checkpoints of a run with another fingerprint (config changed)
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
from pathlib import Path

import torch

from shapepose.errors import InputError
from shapepose.io.atomic import atomic_file

log = logging.getLogger("shapepose.training")

MAGIC = b"SHAPEPOSE-CHECKPOINT 1 "
HEADER_LEN = len(MAGIC) + 64 + 1  # magic, sha256 hex digest, newline
KEEP_PERIODIC = 2
BEST_NAME = "best.pt"
HISTORY_NAME = "history.csv"
TIMING_NAME = "timing.csv"
STEP_PATTERN = re.compile(r"^step_(\d{8,})\.pt$")


class TrainingError(InputError):
    """Training cannot go on (non-finite loss, unwritable checkpoint directory, ...).

    A subclass of `InputError`, so entry scripts end with one line naming the place and problem.
    """


class CheckpointUnreadable(Exception):
    """A checkpoint file that is truncated, damaged or not a checkpoint; `reason` says which."""

    def __init__(self, path: Path, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"checkpoint {path} is unreadable ({reason})")


def fingerprint_hash(fingerprint: dict) -> str:
    """sha256 hex of the canonical JSON of a run's fingerprint (keys sorted, tuples as lists)."""
    text = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def step_name(step: int) -> str:
    """File name of the periodic checkpoint after `step` completed steps."""
    return f"step_{step:08d}.pt"


def write_checkpoint(path: Path, payload: dict) -> None:
    """Write `payload` atomically with its checksum header; fsync so a crash cannot reorder it."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest().encode("ascii")
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        f.write(MAGIC + digest + b"\n")
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _verified_body(path: Path) -> bytes:
    """The payload bytes of a checkpoint whose header and sha256 check out."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointUnreadable(path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) < HEADER_LEN:
        raise CheckpointUnreadable(path, f"truncated: {len(data)} bytes, shorter than the header")
    if not data.startswith(MAGIC) or data[HEADER_LEN - 1:HEADER_LEN] != b"\n":
        raise CheckpointUnreadable(path, "no shapepose checkpoint header")
    expected = data[len(MAGIC):HEADER_LEN - 1].decode("ascii", errors="replace")
    body = data[HEADER_LEN:]
    actual = hashlib.sha256(body).hexdigest()
    if actual != expected:
        raise CheckpointUnreadable(path, f"sha256 mismatch: {len(body)} payload bytes hash to "
                                         f"{actual[:12]}..., header says {expected[:12]}...; "
                                         "truncated or damaged")
    return body


def read_checkpoint(path: Path) -> dict:
    """Read and verify a checkpoint; raise `CheckpointUnreadable` saying why it cannot be used.

    Only files that pass the checksum are unpickled, and those were written by this trainer, so
    the full pickle loader (optimizer and scheduler states hold arbitrary Python values) is safe.
    """
    body = _verified_body(path)
    try:
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=False)
    except Exception as exc:  # the checksum matched, so this is a torch version problem
        raise CheckpointUnreadable(path, f"cannot unpickle: {exc}") from None
    if not isinstance(payload, dict) or "step" not in payload:
        raise CheckpointUnreadable(path, "payload is not a trainer checkpoint")
    return payload


class CheckpointDir:
    """The trainer's directory: which checkpoints exist, which is usable, and keeping it tidy."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def ensure_writable(self) -> None:
        """Create the directory and prove a file can be written there; else one `TrainingError`."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-probe.{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise TrainingError(self.root, f"checkpoint directory is not writable: "
                                           f"{exc.strerror or exc}") from None

    def periodic(self) -> list[tuple[int, Path]]:
        """(step, path) of every periodic checkpoint, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            match = STEP_PATTERN.match(path.name)
            if match and path.is_file():
                found.append((int(match.group(1)), path))
        return sorted(found)

    @property
    def best_path(self) -> Path:
        return self.root / BEST_NAME

    @property
    def history_path(self) -> Path:
        return self.root / HISTORY_NAME

    @property
    def timing_path(self) -> Path:
        return self.root / TIMING_NAME

    def newest_readable(self) -> tuple[Path, dict] | None:
        """The newest periodic checkpoint that reads and verifies, with its payload.

        Each unreadable one is logged at ERROR level, naming the file, the reason and the one used
        instead, and moved into `corrupt/` so that it is neither retried nor kept by pruning.
        """
        candidates = self.periodic()[::-1]
        for i, (_, path) in enumerate(candidates):
            try:
                return path, read_checkpoint(path)
            except CheckpointUnreadable as exc:
                fallback = self._first_good_name(candidates[i + 1:])
                log.error("checkpoint %s is unreadable (%s); using %s", path, exc.reason, fallback)
                self._set_aside(path, self.root / "corrupt")
        return None

    @staticmethod
    def _first_good_name(candidates: list[tuple[int, Path]]) -> str:
        """What the fallback will be, for the error line: header and checksum only."""
        for _, path in candidates:
            try:
                _verified_body(path)
                return str(path)
            except CheckpointUnreadable:
                continue
        return "none: starting from step 0"

    def set_aside_stale(self, old_hash: str) -> Path:
        """Move every checkpoint and the history of another fingerprint to `stale/<hash8>/`."""
        target = self.root / "stale" / old_hash[:8]
        for _, path in self.periodic():
            self._set_aside(path, target)
        for path in (self.best_path, self.history_path, self.timing_path):
            if path.exists():
                self._set_aside(path, target)
        return target

    @staticmethod
    def _set_aside(path: Path, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(path, folder / path.name)

    def prune(self, keep: int = KEEP_PERIODIC) -> None:
        """Delete all but the newest `keep` periodic checkpoints."""
        for _, path in self.periodic()[:-keep]:
            path.unlink(missing_ok=True)

    def clear_best(self) -> None:
        self.best_path.unlink(missing_ok=True)
