"""script_logging: bad input and unwritable outputs end in one log line; bugs keep a traceback.

The oracles are written by hand: the log lines a researcher must see (the C library's wording of
each errno, the output path) and, for a real full file system, what an 8 KiB budget does to an
HDF5 write in a child process.
"""

import errno
import gc
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from shapepose.errors import InputError
from shapepose.workflow import script_logging

ROOT = Path(__file__).resolve().parents[2]


def fake_snakemake(tmp_path: Path, outputs: list[str]) -> SimpleNamespace:
    return SimpleNamespace(log=[str(tmp_path / "job.log")], rule="write_things",
                           wildcards={"sequence": "s1"}, output=outputs)


def log_lines(tmp_path: Path) -> list[str]:
    return (tmp_path / "job.log").read_text().splitlines()


@pytest.mark.parametrize("code, reason", [
    (errno.ENOSPC, "No space left on device"),
    (errno.EDQUOT, "Disk quota exceeded"),
    (errno.EFBIG, "File too large"),
    (errno.EROFS, "Read-only file system"),
    (errno.EACCES, "Permission denied"),
])
def test_storage_error_on_a_temporary_file_names_the_output(tmp_path, code, reason):
    out = tmp_path / "results" / "x.h5"
    snakemake = fake_snakemake(tmp_path, [str(out)])
    with pytest.raises(SystemExit) as exit_info:
        with script_logging(snakemake):
            raise OSError(code, os.strerror(code), str(out.parent / ".x.h5.abc123.partial"))
    assert exit_info.value.code == 1
    errors = [line for line in log_lines(tmp_path) if "ERROR" in line]
    assert errors == [f"ERROR: cannot write {out}: {reason}"]
    assert not any("Traceback" in line for line in log_lines(tmp_path))


def test_storage_error_raised_from_another_names_the_file_it_carries(tmp_path):
    snakemake = fake_snakemake(tmp_path, [str(tmp_path / "a.png")])
    with pytest.raises(SystemExit):
        with script_logging(snakemake):
            try:
                raise OSError(errno.EROFS, "Read-only file system", "/mnt/ro/cache.bin")
            except OSError as exc:
                raise RuntimeError("saving failed") from exc
    assert log_lines(tmp_path)[-1] == "ERROR: cannot write /mnt/ro/cache.bin: Read-only file system"


def test_hdf5_message_names_the_file_when_oserror_does_not(tmp_path):
    out = tmp_path / "v.h5"
    message = (f"Can't close file (file write failed: filename = '{tmp_path}/.v.h5.q1.partial', "
               "errno = 28, error message = 'No space left on device')")
    snakemake = fake_snakemake(tmp_path, ["other.h5", str(out)])
    with pytest.raises(SystemExit):
        with script_logging(snakemake):
            raise OSError(errno.ENOSPC, message)
    assert log_lines(tmp_path)[-1] == f"ERROR: cannot write {out}: No space left on device"


def test_other_oserror_is_a_bug_and_keeps_its_traceback(tmp_path):
    snakemake = fake_snakemake(tmp_path, [str(tmp_path / "a")])
    with pytest.raises(FileNotFoundError):
        with script_logging(snakemake):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", "missing.txt")
    text = "\n".join(log_lines(tmp_path))
    assert "Traceback" in text and "ERROR: cannot write" not in text


def test_input_error_is_one_line(tmp_path):
    snakemake = fake_snakemake(tmp_path, [str(tmp_path / "a")])
    with pytest.raises(SystemExit) as exit_info:
        with script_logging(snakemake):
            raise InputError("in.h5", "dataset 'points' is missing")
    assert exit_info.value.code == 1
    errors = [line for line in log_lines(tmp_path) if line.startswith("ERROR")]
    assert len(errors) == 1 and "in.h5" in errors[0] and "'points' is missing" in errors[0]


class _Grumpy:
    """An object whose finalizer fails: Python reports that through sys.unraisablehook."""

    def __del__(self):
        raise ValueError("finalizer trouble")


def test_unrelated_unraisable_reports_are_still_shown_and_hooks_restored(tmp_path, monkeypatch):
    # Python's own hook (pytest installs one that collects instead of printing)
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)
    hooks = (sys.excepthook, sys.unraisablehook)
    snakemake = fake_snakemake(tmp_path, [str(tmp_path / "a")])
    with script_logging(snakemake):
        _Grumpy()
        gc.collect()
    text = "\n".join(log_lines(tmp_path))
    assert "finalizer trouble" in text and "Exception ignored" in text
    assert (sys.excepthook, sys.unraisablehook) == hooks


SCRIPT = textwrap.dedent("""
    import sys
    from types import SimpleNamespace
    import numpy as np, h5py
    from shapepose.io.atomic import atomic_file
    from shapepose.workflow import script_logging
    out = sys.argv[1]
    snakemake = SimpleNamespace(log=[sys.argv[2]], rule="write_h5", wildcards={}, output=[out])
    with script_logging(snakemake):
        with atomic_file(out) as tmp, h5py.File(tmp, "w") as h5:
            for k in range(8):  # several datasets: each one freed after the failure complains
                h5.create_dataset(f"d{k}", data=np.arange(20000, dtype=np.float64))
""")


def test_real_full_write_from_hdf5_ends_in_one_line_and_nothing_left(tmp_path):
    """A child limited to 8 KiB per file (EFBIG; Python ignores SIGXFSZ) writes 1.3 MB of HDF5."""
    out, log = tmp_path / "big.h5", tmp_path / "job.log"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out), str(log)], cwd=ROOT,
                          capture_output=True, text=True, preexec_fn=limit)
    assert proc.returncode == 1, proc.stderr
    lines = log.read_text().splitlines()
    assert lines[-1].startswith(f"ERROR: cannot write {out}: File too large"), lines[-5:]
    assert sum("ERROR" in line for line in lines) == 1
    assert "Traceback" not in log.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.log"]  # no output, no .partial
