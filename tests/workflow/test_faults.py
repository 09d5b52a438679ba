"""Fault injection at the workflow level: a killed driver or trainer, damaged checkpoints, an
unwritable or full output directory.

Each case runs Snakemake on a tiny configuration in a temporary directory, injects one fault,
checks what a researcher would need to be true afterwards, and records what it saw; at the end
the cases are written as faults.json and faults.md (tests/helpers/faults_table.py) into a
temporary directory, never into the checkout, and the path is printed. The oracle is an uninterrupted run of the same configuration: outputs
are deterministic, so "recovered" means byte-equal to it (for a trained model: every tensor of
every exported state dict equal).
"""

import contextlib
import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
import yaml
from helpers.faults_table import write_table

ROOT = Path(__file__).resolve().parents[2]
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


def snakemake_cmd(workdir: Path, *args, config: dict = TINY) -> list[str]:
    path = workdir / "faults-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
            "--directory", str(workdir), "--configfile", str(path), *args]


def snakemake(workdir: Path, *args, config: dict = TINY,
              **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_cmd(workdir, *args, config=config), capture_output=True,
                          text=True, **kwargs)


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
def faults_table(tmp_path_factory, request):
    """Write every recorded case to faults.{json,md} in a temporary directory once the module is done."""
    yield
    if not CASES:
        return
    table = write_table(CASES, tmp_path_factory.mktemp("faults_table"))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
        print(f"\nfault-injection table: {table}")


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
def reference_dir(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("reference")
    out = snakemake(workdir, "--cores", "2", *TARGETS)
    assert out.returncode == 0, out.stderr[-3000:]
    return workdir


@pytest.fixture(scope="module")
def reference(reference_dir) -> dict[str, str]:
    return file_digests(reference_dir)


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
        case["expected"] = ("non-zero exit; the rule's log ends with one line naming the file "
                            "and the reason, no traceback; no output and no temporary file left")
        assert out.returncode != 0
        log = (tmp_path / "logs/sample_volume/tiny/50002_knees.log").read_text()
        errors = [line for line in log.splitlines() if "ERROR" in line or reason in line]
        assert len(errors) == 1, log[-3000:]
        assert errors[0].startswith(f"ERROR: cannot write {VOLUME}: {reason}"), errors
        assert "Traceback" not in log and "Exception ignored" not in log, log[-3000:]
        assert "Error in rule sample_volume" in out.stderr
        assert not (tmp_path / VOLUME).exists()
        assert file_digests(tmp_path) == upstream and not partials(tmp_path)
    rerun = snakemake(tmp_path, "--cores", "2", VOLUME)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert file_digests(tmp_path)[VOLUME] == reference[VOLUME]
    case["observed"] = (f"exit {out.returncode}; the log's one error line: '{errors[0]}'; "
                        "nothing left; rerun with space succeeds")
    survived(case)


# ---- training jobs: killed, terminated, a damaged checkpoint -----------------------------------

# Neural Parts on the mesh branch's tiny outputs (the same files the reference run built), small
# enough that a training job runs for a few seconds and checkpoints every few steps.
TRAIN = {**TINY, "neural_parts": {
    "primitives": [1],
    "split": {"test_sequences": ["50002_jumping_jacks"], "val_stride": 2},
    "sphere_subdivisions": 1,
    # frozen batch norm: batch statistics of one 1 x 1 feature map do not exist
    "model": {"image_size": 32, "feature_dim": 8, "embedding_dim": 8, "hidden": 16,
              "freeze_batchnorm": True},
    "training": {"steps": 30, "batch_size": 1, "surface_points": 100, "volume_points": 200,
                 "sphere_points": 20, "checkpoint_every": 3, "validate_every": 10,
                 "log_every": 1, "val_frames": 1},
}}
MODEL = "results/neural_parts/tiny/P1/r0/model.pt"
TRAIN_LOG = "logs/train_neural_parts/tiny/P1/r0.log"
CHECKPOINTS = "results/checkpoints/neural_parts/tiny/P1/r0"


def train_cmd(workdir: Path, *args) -> list[str]:
    return snakemake_cmd(workdir, "--cores", "1", *args, MODEL, config=TRAIN)


def weights(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The exported state dicts of a model file (its metadata names input mtimes: not compared)."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    return {name: state for name, state in data.items() if name != "meta"}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[m].keys() == b[m].keys() and all(torch.equal(a[m][k], b[m][k]) for k in a[m])
        for m in a)


def checkpoint_steps(workdir: Path, checkpoints: str = CHECKPOINTS) -> list[int]:
    return sorted(int(p.stem.split("_")[1]) for p in (workdir / checkpoints).glob("step_*.pt"))


def logged_step(workdir: Path, train_log: str = TRAIN_LOG) -> int:
    """The last step the training log reports (log_every is 1), 0 before the first."""
    log = workdir / train_log
    steps = re.findall(r"step (\d+)/\d+:", log.read_text()) if log.exists() else []
    return int(steps[-1]) if steps else 0


def resumed_from(workdir: Path, train_log: str = TRAIN_LOG) -> list[int]:
    return [int(n) for n in re.findall(r"resuming from step (\d+)",
                                       (workdir / train_log).read_text())]


def trainer_process(driver: subprocess.Popen, rule: str = "train_neural_parts"
                    ) -> psutil.Process | None:
    """The python process running the rule's script, among the driver's descendants."""
    for child in psutil.Process(driver.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name().startswith("python") and any(
                    rule in part for part in child.cmdline()):
                return child
    return None


def start_training(workdir: Path, until, *, new_session: bool = False, cmd: list[str] | None = None,
                   rule: str = "train_neural_parts"):
    """Start the training job under Snakemake; return (driver, trainer) once `until()` holds.

    Fails when the job ends first: the fault must hit it mid-way.
    """
    log = open(workdir / "driver.log", "w")
    driver = subprocess.Popen(cmd or train_cmd(workdir), stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=new_session)
    log.close()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        if until():
            trainer = trainer_process(driver, rule)
            if trainer is not None:
                return driver, trainer
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        driver.kill()
    driver.wait()
    raise AssertionError("training ended before the fault could be injected:\n"
                         + (workdir / "driver.log").read_text()[-3000:])


@pytest.fixture(scope="module")
def trained(reference_dir, tmp_path_factory) -> dict:
    """Weights of an uninterrupted training run on the reference run's samples and renders."""
    workdir = tmp_path_factory.mktemp("trained")
    shutil.copytree(reference_dir, workdir, symlinks=True, dirs_exist_ok=True)
    out = subprocess.run(train_cmd(workdir), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert not resumed_from(workdir)
    return weights(workdir / MODEL)


@pytest.fixture
def train_dir(reference_dir, tmp_path) -> Path:
    """A workdir where everything upstream of training is done (a copy keeps mtimes)."""
    shutil.copytree(reference_dir, tmp_path, symlinks=True, dirs_exist_ok=True)
    return tmp_path


def test_killed_training_job_resumes_from_its_last_checkpoint(train_dir, trained, case):
    every = TRAIN["neural_parts"]["training"]["checkpoint_every"]
    case["injected"] = ("SIGKILL to the snakemake process group while train_neural_parts runs "
                        f"(>= 2 steps past a checkpoint; checkpoint_every {every})")
    case["expected"] = ("after --unlock, --rerun-incomplete resumes from the newest checkpoint "
                        "(step N > 0); final weights equal an uninterrupted run's")
    driver, _ = start_training(
        train_dir, lambda: checkpoint_steps(train_dir) and
        logged_step(train_dir) >= checkpoint_steps(train_dir)[-1] + 2, new_session=True)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    reached = logged_step(train_dir)
    saved = checkpoint_steps(train_dir)
    assert not (train_dir / MODEL).exists()
    assert snakemake(train_dir, "--unlock", MODEL, config=TRAIN).returncode == 0
    rerun = subprocess.run(train_cmd(train_dir, "--rerun-incomplete"), capture_output=True,
                           text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    # the newest checkpoint on disk when the job died: at most checkpoint_every - 1 steps lost
    assert resumed_from(train_dir) == [saved[-1]] and 0 < saved[-1] <= reached < saved[-1] + every
    assert same_weights(weights(train_dir / MODEL), trained)
    case["observed"] = (f"killed at step {reached} of 30; rerun resumed from step {saved[-1]} "
                        f"({reached - saved[-1]} step(s) redone); model.pt weights equal the "
                        "uninterrupted run's")
    survived(case)


def test_terminated_training_job_checkpoints_and_resumes(train_dir, trained, case):
    case["injected"] = "SIGTERM to the train_neural_parts python process mid-way"
    case["expected"] = ("a checkpoint at the step reached, job exits non-zero and Snakemake "
                        "reports it failed; the rerun resumes there; weights equal")
    driver, trainer = start_training(
        train_dir, lambda: checkpoint_steps(train_dir) and logged_step(train_dir) >= 4)
    trainer.send_signal(signal.SIGTERM)
    driver.wait()
    stopped = [int(n) for n in re.findall(r"SIGTERM: stopped after step (\d+)",
                                          (train_dir / TRAIN_LOG).read_text())]
    driver_log = (train_dir / "driver.log").read_text()
    assert driver.returncode != 0, driver_log[-3000:]
    assert "Error in rule train_neural_parts" in driver_log, driver_log[-3000:]
    assert len(stopped) == 1 and stopped[0] in checkpoint_steps(train_dir), stopped
    assert not (train_dir / MODEL).exists()
    rerun = subprocess.run(train_cmd(train_dir), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert resumed_from(train_dir) == stopped
    assert same_weights(weights(train_dir / MODEL), trained)
    exit_status = re.search(r"exit status (\d+)|returned non-zero exit status (\d+)", driver_log)
    status = next((g for g in exit_status.groups() if g), "?") if exit_status else "non-zero"
    case["observed"] = (f"checkpoint step_{stopped[0]:08d}.pt written, job exit {status}, "
                        f"snakemake exit {driver.returncode} with 'Error in rule "
                        f"train_neural_parts'; rerun resumed from step {stopped[0]}; weights "
                        "equal the uninterrupted run's")
    survived(case)


def test_truncated_checkpoint_is_named_and_the_previous_one_used(train_dir, trained, case):
    case["injected"] = ("the training job SIGKILLed after >= 2 checkpoints, then the newest "
                        "checkpoint truncated to half its size")
    case["expected"] = ("one log line naming the truncated file; training continues from the "
                        "previous good checkpoint; weights equal")
    driver, trainer = start_training(train_dir, lambda: len(checkpoint_steps(train_dir)) >= 2)
    trainer.kill()
    driver.wait()
    assert driver.returncode != 0 and not (train_dir / MODEL).exists()
    *_, previous, newest = checkpoint_steps(train_dir)
    damaged = Path(CHECKPOINTS) / f"step_{newest:08d}.pt"
    size = (train_dir / damaged).stat().st_size
    os.truncate(train_dir / damaged, size // 2)
    rerun = subprocess.run(train_cmd(train_dir), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = (train_dir / TRAIN_LOG).read_text().splitlines()
    named = [line for line in log if str(damaged) in line]
    assert len(named) == 1 and "unreadable" in named[0] and "ERROR" in named[0], named
    assert resumed_from(train_dir) == [previous]
    assert same_weights(weights(train_dir / MODEL), trained)
    # set aside for inspection, not deleted
    assert (train_dir / CHECKPOINTS / "corrupt" / damaged.name).exists()
    case["observed"] = (f"{named[0].split(': ', 1)[-1]}; resumed from step {previous}; "
                        "weights equal the uninterrupted run's")
    survived(case)


# ---- the style-transfer trainer (seed 002 chapter 4), killed mid-way ----------------------------

# Tiny demo renders and a folder of procedural cut-outs stand in for the image branch's upstream
# (segmenting photos is not what this case is about); narrow networks, 64-px images.
STYLE = {
    "seed": 5,
    "cars": {"dataset": "tiny_faults"},
    "demo_cars": {"synthetic": {"models": 6, "views": 2, "image_size": 64, "gt_points": 200},
                  "photos": {"train": 2, "test": 2, "segmenter_train": 2, "long_side": [256, 320]}},
    "style_transfer": {
        "model": {"ngf": 8, "ndf": 8, "n_blocks": 2, "image_size": 64},
        "training": {"steps": 40, "batch_size": 2, "pool_size": 3, "checkpoint_every": 5,
                     "validate_every": 10, "log_every": 1, "val_images": 2},
        "experiments": {"tight": {"lambda_alpha_G": 2, "lambda_alpha_F": 2,
                                  "lambda_resdist_G": 1.75, "lambda_resdist_F": 1.75}},
    },
}
STYLE_MODEL = "results/style_transfer/tiny_faults/tight/r0/model.pt"
STYLE_LOG = "logs/train_style_transfer/tiny_faults/tight/r0.log"
STYLE_CHECKPOINTS = "results/checkpoints/style_transfer/tiny_faults/tight/r0"


def style_config(workdir: Path) -> dict:
    config = yaml.safe_load(yaml.safe_dump(STYLE))
    config["cars"]["cutouts"] = str(workdir / "cutouts")
    return config


def style_cmd(workdir: Path, *args) -> list[str]:
    return snakemake_cmd(workdir, "--cores", "1", *args, STYLE_MODEL, config=style_config(workdir))


@pytest.fixture(scope="module")
def style_upstream(tmp_path_factory, tiny_cutouts) -> Path:
    """A workdir with the tiny demo renders made and the cut-out folder copied in."""
    workdir = tmp_path_factory.mktemp("style_upstream")
    shutil.copytree(tiny_cutouts, workdir / "cutouts")
    out = snakemake(workdir, "--cores", "1", "results/demo_cars/tiny_faults/synthetic",
                    config=style_config(workdir))
    assert out.returncode == 0, out.stderr[-3000:]
    return workdir


def test_killed_style_transfer_job_resumes_from_its_last_checkpoint(style_upstream, tmp_path, case):
    every = STYLE["style_transfer"]["training"]["checkpoint_every"]
    case["injected"] = ("SIGKILL to the snakemake process group while train_style_transfer runs "
                        f"(past its first checkpoint; checkpoint_every {every})")
    case["expected"] = ("after --unlock, --rerun-incomplete resumes from the newest checkpoint; "
                        "final weights of G, F, D_X, D_Y equal an uninterrupted run's")
    straight = tmp_path / "straight"
    shutil.copytree(style_upstream, straight, symlinks=True)
    out = subprocess.run(style_cmd(straight), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert not resumed_from(straight, STYLE_LOG)

    workdir = tmp_path / "killed"
    shutil.copytree(style_upstream, workdir, symlinks=True)
    driver, _ = start_training(
        workdir, lambda: checkpoint_steps(workdir, STYLE_CHECKPOINTS) and
        logged_step(workdir, STYLE_LOG) > checkpoint_steps(workdir, STYLE_CHECKPOINTS)[-1],
        new_session=True, cmd=style_cmd(workdir), rule="train_style_transfer")
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    reached = logged_step(workdir, STYLE_LOG)
    saved = checkpoint_steps(workdir, STYLE_CHECKPOINTS)
    assert len(saved) == 1  # only the latest periodic checkpoint is kept (beside best.pt)
    assert not (workdir / STYLE_MODEL).exists()
    assert snakemake(workdir, "--unlock", STYLE_MODEL, config=style_config(workdir)).returncode == 0
    rerun = subprocess.run(style_cmd(workdir, "--rerun-incomplete"), capture_output=True,
                           text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert resumed_from(workdir, STYLE_LOG) == saved and saved[0] <= reached
    assert same_weights(weights(workdir / STYLE_MODEL), weights(straight / STYLE_MODEL))
    case["observed"] = (f"killed at step {reached} of 40; rerun resumed from step {saved[0]}; "
                        "model.pt weights (G, F, D_X, D_Y) equal the uninterrupted run's")
    survived(case)
