"""What every Snakemake entry script shares: its log file, its progress and its one-line errors."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Iterator

from shapepose.errors import InputError

# A full disk, a quota, a file size limit, a read-only mount or a permission: the output cannot be
# written, which is the researcher's to fix (space, quota, permissions), not a bug to trace.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES})
# HDF5 reports the file inside its message rather than in OSError.filename
_HDF5_FILENAME = re.compile(r"filename = '([^']+)'")


def storage_error(exc: BaseException) -> OSError | None:
    """The OSError with a storage errno that `exc` is or was raised from (cause/context), if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def unwritable_path(exc: OSError, outputs: list[str]) -> str:
    """The file the failed write was for: an output when the error names its temporary file.

    `atomic_file` writes `.<name>.<random>.partial` beside the output `<name>`; the error names
    the temporary file (OSError.filename, or HDF5's message), the researcher wants the output.
    """
    failed = exc.filename
    if failed is None:
        match = _HDF5_FILENAME.search(str(exc))
        failed = match.group(1) if match else None
    if failed is None:
        return ", ".join(outputs) if outputs else "an output"
    failed = Path(os.fsdecode(failed))
    for output in outputs:
        target = Path(output)
        if failed == target or (failed.parent.resolve() == target.parent.resolve()
                                and failed.name.startswith(f".{target.name}.")
                                and failed.name.endswith(".partial")):
            return output
    return str(failed)


@contextlib.contextmanager
def script_logging(snakemake) -> Iterator[logging.Logger]:
    """Send stderr (logging and tqdm) to the rule's log; end bad input with one clear line.

    An `InputError` is written as a single `ERROR:` line naming file, key and frame, and the
    script exits with status 1 so Snakemake removes the job's outputs. So is an output that
    cannot be written (full disk, quota, file size limit, read-only or forbidden directory):
    `ERROR: cannot write <path>: <reason>`. Any other exception keeps its traceback, since that
    one is a bug rather than bad input.
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    if log_path:  # emptied, then appended to: a training rule's worker processes append too
        open(log_path, "w").close()
    stream = open(log_path, "a", buffering=1) if log_path else sys.stderr
    old_stderr = sys.stderr
    sys.stderr = stream
    held = _HeldReports()
    logging.basicConfig(level=logging.INFO, stream=stream, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger = logging.getLogger(f"shapepose.rules.{snakemake.rule}")
    logger.info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards.items()))

    def fail(message: str) -> None:
        print(f"ERROR: {message}", file=stream, flush=True)
        if stream is not old_stderr:
            print(f"ERROR in rule {snakemake.rule}: {message}", file=old_stderr, flush=True)
        sys.exit(1)

    try:
        yield logger
    except InputError as exc:
        held.replay()
        fail(str(exc))
    except SystemExit:
        held.replay()
        raise  # a deliberate exit (e.g. a trainer checkpointing on SIGTERM) has said why already
    except BaseException as exc:
        cause = storage_error(exc)
        if cause is None:
            held.replay()
            traceback.print_exc(file=stream)
            raise
        reason = os.strerror(cause.errno)
        echoes = held.replay(drop=reason)  # this same failure again; anything else is shown
        note = f" ({echoes} repeated reports of it from HDF5 object clean-up not shown)" if echoes else ""
        fail(f"cannot write {unwritable_path(cause, list(snakemake.output))}: {reason}{note}")
    else:
        held.replay()
    finally:
        held.release()
        sys.stderr = old_stderr
        if stream is not old_stderr:
            stream.flush()


class _HeldReports:
    """Hold the errors Python reports without raising them, until the script's fate is known.

    After a failed write, h5py reports it again from every object it frees ("Exception ignored
    in: 'h5py._objects.ObjectID.__dealloc__'"): Cython prints each once through sys.excepthook
    and once through sys.unraisablehook, dozens per file. Once the script has failed for that
    reason they say nothing new; in every other case they are shown as Python would have.
    """

    def __init__(self):
        self._excepthook, self._unraisablehook = sys.excepthook, sys.unraisablehook
        self._reports: list[tuple[str, tuple]] = []
        sys.excepthook = lambda *args: self._reports.append(("except", args))
        sys.unraisablehook = lambda args: self._reports.append(("unraisable", (args,)))

    def replay(self, drop: str | None = None) -> int:
        """Report what was held (to the current sys.stderr), except messages holding `drop`.

        Returns how many were dropped.
        """
        dropped = 0
        for kind, args in self._reports:
            value = args[1] if kind == "except" else args[0].exc_value
            if drop is not None and drop in str(value):
                dropped += 1
            elif kind == "except":
                self._excepthook(*args)
            else:
                self._unraisablehook(*args)
        self._reports.clear()
        return dropped

    def release(self) -> None:
        sys.excepthook, sys.unraisablehook = self._excepthook, self._unraisablehook
