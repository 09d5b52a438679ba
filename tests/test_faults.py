"""Fault injection at the workflow level: a killed driver, an unwritable or full output directory.

Each case runs Snakemake on a tiny configuration in a temporary directory, injects one fault,
checks what a researcher would need to be true afterwards, and records what it saw; at the end
the cases are written to results/tables/faults.json and rendered by scripts/faults_table.py as
results/tables/faults.md. The oracle is an uninterrupted run of the same configuration: outputs
are deterministic, so "recovered" means byte-equal to it.
"""

import contextlib
import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow

TINY = {
    "seed": 5,
    "meshes": {"dataset": "tiny", "registrations": "demo", "subjects": ["50002"],
               "sequences": ["knees", "punching", "jumping_jacks"], "frame_stride": 2,
               "drop_first": 1},
    "demo_bodies": {"n_frames": 9},
    "surface": {"n_points": 3000},
    "volume": {"n_points": 3000, "cell_size": 0.08},
    "render": {"size": 64},
}
SEQUENCES = [f"50002_{q}" for q in TINY["meshes"]["sequences"]]
# explicit targets: the mesh branch only, so neither the image branch nor Neural Parts is built
TARGETS = [path for s in SEQUENCES for path in (
    f"results/samples/tiny/surface/{s}.h5", f"results/samples/tiny/volume/{s}.h5",
    f"results/renders/tiny/{s}")]
VOLUME = "results/samples/tiny/volume/50002_knees.h5"


def snakemake_cmd(workdir: Path, *args) -> list[str]:
    config = workdir / "faults-config.yaml"
    if not config.exists():
        config.write_text(yaml.safe_dump(TINY))
    return [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
            "--directory", str(workdir), "--configfile", str(config), *args]


def snakemake(workdir: Path, *args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_cmd(workdir, *args), capture_output=True, text=True,
                          **kwargs)


def file_digests(workdir: Path) -> dict[str, str]:
    """sha256 of every file under results/ whose name is not a temporary one."""
    return {str(p.relative_to(workdir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((workdir / "results").rglob("*"))
            if p.is_file() and ".partial" not in str(p)}


def partials(workdir: Path) -> list[str]:
    return sorted(str(p.relative_to(workdir)) for p in (workdir / "results").rglob("*.partial"))


def job_outputs(log: str) -> dict[int, list[str]]:
    """{jobid: output paths} of every job a Snakemake log announced."""
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", log):
        jobid = re.search(r"^\s+jobid: (\d+)$", block, re.M)
        output = re.search(r"^\s+output: (.+)$", block, re.M)
        if jobid and output and re.match(r"(?:local)?rule \w+:", block):
            jobs[int(jobid.group(1))] = [p.strip() for p in output.group(1).split(",")]
    return jobs


def finished_jobids(log: str) -> set[int]:
    return {int(j) for j in re.findall(r"Finished jobid: (\d+)", log)}


# ---- the table of outcomes ---------------------------------------------------------------------

CASES: list[dict] = []


@pytest.fixture(scope="module", autouse=True)
def faults_table():
    """Write every recorded case to results/tables/faults.{json,md} once the module is done."""
    yield
    if not CASES:
        return
    tables = ROOT / "results" / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    (tables / "faults.json").write_text(json.dumps(CASES, indent=2) + "\n")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "faults_table.py"),
                    str(tables / "faults.json"), str(tables / "faults.md")], check=True)


@pytest.fixture
def case(request):
    """A row of the table: the test fills `observed`; the outcome is what actually happened."""
    row = {"case": request.node.name, "injected": "", "expected": "", "observed": "",
           "outcome": "FAILED"}
    yield row
    CASES.append(row)


def survived(row: dict) -> None:
    row["outcome"] = "survived"


def skipped(row: dict, reason: str) -> None:
    row["outcome"] = f"not run: {reason}"
    pytest.skip(reason)


# ---- the uninterrupted run: the oracle ---------------------------------------------------------

@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, str]:
    workdir = tmp_path_factory.mktemp("reference")
    out = snakemake(workdir, "--cores", "2", *TARGETS)
    assert out.returncode == 0, out.stderr[-3000:]
    return file_digests(workdir)


# ---- cases -------------------------------------------------------------------------------------

def test_killed_driver_resumes_without_redoing_finished_jobs(tmp_path, reference, case):
    case["injected"] = "SIGKILL to the snakemake process group mid-DAG (>= 4 jobs done, 1 running)"
    case["expected"] = ("after --unlock, a rerun with --rerun-incomplete finishes; "
                        "no finished job rerun; "
                        "outputs byte-equal to an uninterrupted run")
    log_path = tmp_path / "killed.log"
    incomplete = tmp_path / ".snakemake" / "incomplete"
    with open(log_path, "w") as log:
        driver = subprocess.Popen(snakemake_cmd(tmp_path, "--cores", "1", *TARGETS),
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None:
            done = len(finished_jobids(log_path.read_text()))
            if done >= 4 and incomplete.is_dir() and any(incomplete.iterdir()):
                break
            time.sleep(0.05)
        assert driver.poll() is None, "the run ended before it could be killed"
        os.killpg(driver.pid, signal.SIGKILL)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    first = log_path.read_text()
    announced = job_outputs(first)
    finished = {p for j in finished_jobids(first) for p in announced[j]}
    running = {p for j in set(announced) - finished_jobids(first) for p in announced[j]}
    assert finished and running, first[-3000:]
    assert any(incomplete.iterdir()), "no job was marked running when the driver was killed"
    stamps = {p: (tmp_path / p).stat().st_mtime_ns for p in finished}
    left = partials(tmp_path)

    # SIGKILL leaves Snakemake's lock behind; the driver says so and names --unlock
    locked = snakemake(tmp_path, "--cores", "2", "--rerun-incomplete", *TARGETS)
    assert locked.returncode != 0 and "--unlock" in locked.stderr
    assert snakemake(tmp_path, "--unlock", *TARGETS).returncode == 0
    rerun = snakemake(tmp_path, "--cores", "2", "--rerun-incomplete", *TARGETS)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    redone = {p for outputs in job_outputs(rerun.stderr).values() for p in outputs}
    assert not redone & finished, f"finished jobs were rerun: {sorted(redone & finished)}"
    assert running & redone == running, "the job killed mid-way was not rerun"
    assert {p: (tmp_path / p).stat().st_mtime_ns for p in finished} == stamps
    assert file_digests(tmp_path) == reference
    case["observed"] = (f"{len(finished_jobids(first))} jobs done, killed during "
                        f"{sorted(running)}; the stale lock is reported and --unlock clears it; "
                        f"rerun ran {len(job_outputs(rerun.stderr))} jobs, "
                        f"none of the finished ones; outputs equal the uninterrupted run's; "
                        f"{len(left)} temporary .partial name(s) of the killed job left behind")
    survived(case)


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """Mount a tmpfs at `path` for the block; None when this machine does not allow mounts."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True).returncode == 0
    try:
        yield path if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], check=True)


def build_meshes(workdir: Path) -> dict[str, str]:
    """Run the jobs upstream of the volume samples, so the fault hits one job only."""
    out = snakemake(workdir, "--cores", "2", "results/meshes/tiny/50002_knees")
    assert out.returncode == 0, out.stderr[-3000:]
    return file_digests(workdir)


def test_unwritable_output_directory_fails_cleanly(tmp_path, reference, case):
    upstream = build_meshes(tmp_path)
    target_dir = tmp_path / Path(VOLUME).parent
    with tmpfs(target_dir, "ro,size=64k") as readonly:
        if readonly is None:
            # we may run as root, where permissions do not stop writes: a file in the way does
            target_dir.rmdir()
            target_dir.write_text("not a directory\n")
            case["injected"] = f"{Path(VOLUME).parent} is a file (no mount permitted here)"
            reason = "Not a directory"
        else:
            case["injected"] = f"{Path(VOLUME).parent} is a read-only tmpfs mount"
            reason = "Read-only file system"
        case["expected"] = "non-zero exit, an error naming the path, nothing written"
        out = snakemake(tmp_path, "--cores", "2", VOLUME)
        assert out.returncode != 0
        errors = [line for line in out.stderr.splitlines() if reason in line]
        assert errors and all(VOLUME in line for line in errors), out.stderr[-3000:]
        assert not (tmp_path / VOLUME).exists()
        in_the_way = str(Path(VOLUME).parent)
        left = {k: v for k, v in file_digests(tmp_path).items() if k != in_the_way}
        assert left == upstream and not partials(tmp_path)
        if readonly is None:
            target_dir.unlink()
    rerun = snakemake(tmp_path, "--cores", "2", VOLUME)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert file_digests(tmp_path)[VOLUME] == reference[VOLUME]
    case["observed"] = (f"exit {out.returncode}, Snakemake stops before the job with "
                        f"'{errors[-1].strip()}'; nothing written; rerun once writable succeeds")
    survived(case)


def _limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_disk_full_fails_cleanly_and_leaves_nothing(tmp_path, reference, case):
    upstream = build_meshes(tmp_path)
    target_dir = tmp_path / Path(VOLUME).parent
    with tmpfs(target_dir, "size=8k") as small:
        if small is not None:
            case["injected"] = f"{Path(VOLUME).parent} is an 8 KiB tmpfs (ENOSPC mid-write)"
            out = snakemake(tmp_path, "--cores", "2", VOLUME)
            reason = "No space left on device"
        else:
            # no mount: every file of the run may grow to 16 KiB (EFBIG; Python ignores SIGXFSZ)
            case["injected"] = "RLIMIT_FSIZE 16 KiB on the run (EFBIG mid-write; no mount here)"
            out = snakemake(tmp_path, "--cores", "2", VOLUME,
                            preexec_fn=_limit_file_size(16 * 1024))
            reason = "File too large"
        case["expected"] = ("non-zero exit; the rule's log names the file and the reason; "
                            "no output and no temporary file left")
        assert out.returncode != 0
        log = (tmp_path / "logs/sample_volume/tiny/50002_knees.log").read_text()
        named = [line for line in log.splitlines()
                 if reason in line and str(target_dir) in line]
        assert named, log[-3000:]
        assert "Error in rule sample_volume" in out.stderr
        assert not (tmp_path / VOLUME).exists()
        assert file_digests(tmp_path) == upstream and not partials(tmp_path)
        noise = sum(line.startswith("Traceback") for line in log.splitlines())
    rerun = snakemake(tmp_path, "--cores", "2", VOLUME)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert file_digests(tmp_path)[VOLUME] == reference[VOLUME]
    case["observed"] = (f"exit {out.returncode}; log names the temporary file and '{reason}' "
                        f"(among {noise} h5py tracebacks: not yet one line); nothing left; "
                        "rerun with space succeeds")
    survived(case)
