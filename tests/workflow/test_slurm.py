"""The cluster profile on a real single-node SLURM, and GPU rules on a workstation without a GPU.

The SLURM test starts the cluster with .ci/slurm/start.sh, runs a tiny mesh-branch configuration
with `--profile profiles/slurm` (partition and status command set as a site would), checks that
every job went through sbatch (its job id in Snakemake's log, and in `squeue --states=all` with
the partition, memory and time limit the rule declared), compares the outputs byte for byte with
a local run of the same configuration, and stops the cluster. Where SLURM cannot be installed
(not root, no apt, no Debian mirror) the test is skipped with that reason.
"""

import hashlib
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.workflow

PARTITION = "shapepose_ci"  # not the name a real site uses, so the override is visible in squeue
TINY = {
    "seed": 11,
    "meshes": {"dataset": "tiny", "registrations": "demo", "subjects": ["50002"],
               "sequences": ["knees"], "frame_stride": 2, "drop_first": 1},
    "demo_bodies": {"n_frames": 5},
    "surface": {"n_points": 600},
    "volume": {"n_points": 800, "cell_size": 0.08},
    "render": {"size": 64},
}
# one sequence: every job is a SLURM submission whose completion is polled at growing intervals,
# so each extra DAG level or CPU-bound wave costs 15-25 s on a 2-core node
SEQUENCES = ["50002_knees"]
TARGETS = [path for s in SEQUENCES for path in (
    f"results/samples/tiny/surface/{s}.h5", f"results/samples/tiny/volume/{s}.h5",
    f"results/renders/tiny/{s}")]
# counted by hand from the DAG: per sequence, its demo file, its meshes, two samples, its renders
EXPECTED_JOBS = Counter({rule: len(SEQUENCES) for rule in (
    "make_demo_sequence", "extract_meshes", "sample_surface", "sample_volume", "render_meshes")})
# what each rule declares on its first attempt: (memory, time limit as squeue prints them)
DECLARED = {"make_demo_sequence": ("1000M", "10:00"), "extract_meshes": ("1000M", "30:00"),
            "sample_surface": ("1000M", "30:00"), "sample_volume": ("1000M", "30:00"),
            "render_meshes": ("1000M", "30:00")}


def snakemake(workdir: Path, *args) -> subprocess.CompletedProcess:
    config = workdir / "slurm-config.yaml"
    config.write_text(yaml.safe_dump(TINY))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(config), *args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(cmd)}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def digests(workdir: Path) -> dict[str, str]:
    return {str(p.relative_to(workdir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((workdir / "results").rglob("*")) if p.is_file()}


def site_profile(directory: Path) -> Path:
    """profiles/slurm with what a site would set: its partition, and squeue (no slurmdbd here)."""
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = PARTITION
    profile["slurm-status-command"] = "squeue"
    # MinJobAge (300 s) must stay >= 3 x this, or finished jobs leave squeue before being seen
    profile["slurm-init-seconds-before-status-checks"] = 2
    directory.mkdir()
    (directory / "config.yaml").write_text(yaml.safe_dump(profile))
    return directory


@pytest.fixture(scope="module")
def slurm():
    start = subprocess.run(["bash", str(ROOT / ".ci/slurm/start.sh")], capture_output=True,
                           text=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                           "SLURM_PARTITION": PARTITION})
    if start.returncode == 77:
        pytest.skip(f"SLURM cannot be installed here: {start.stderr.strip().splitlines()[-1]}")
    try:
        assert start.returncode == 0, f"starting SLURM failed:\n{start.stdout}\n{start.stderr}"
        yield
    finally:
        subprocess.run(["bash", str(ROOT / ".ci/slurm/stop.sh")], capture_output=True)


def test_profile_runs_the_workflow_through_slurm(slurm, tmp_path):
    began = time.monotonic()
    profile = site_profile(tmp_path / "profile")
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    out = snakemake(cluster, "--profile", str(profile), *TARGETS)
    wall = time.monotonic() - began
    log = out.stdout + out.stderr

    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) "
                           r"\(log: \S*/rule_(\w+)/", log)
    assert Counter(rule for _, rule in submitted) == EXPECTED_JOBS, log[-4000:]
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)
    queue = subprocess.run(["squeue", "--states=all", "--noheader", "-o", "%i|%j|%P|%T|%m|%l"],
                           capture_output=True, text=True, check=True).stdout
    seen = {line.split("|")[0]: line.split("|")[1:] for line in queue.splitlines()}
    for jobid, rule in submitted:
        name, partition, state, memory, limit = seen[jobid]
        assert (name, partition, state) == (run_id, PARTITION, "COMPLETED"), seen[jobid]
        assert (memory, limit) == DECLARED[rule], (rule, seen[jobid])

    local = tmp_path / "local"
    local.mkdir()
    snakemake(local, "--cores", "2", *TARGETS)
    assert digests(cluster) == digests(local)
    assert all((cluster / target).exists() for target in TARGETS)
    print(f"\nSLURM: {len(submitted)} jobs through sbatch, cluster run {wall:.0f} s")


def test_gpu_rules_run_locally_without_a_gpu(tmp_path):
    """A rule asking for `gpu=1` runs under profiles/default with `--cores 1` on a CPU-only box."""
    (tmp_path / "Snakefile").write_text(
        'rule all:\n    input: "trained.txt"\n\n'
        'rule train:\n    output: "trained.txt"\n    threads: 1\n'
        "    resources:\n        gpu=1,\n        mem_mb=lambda wildcards, attempt: 1000 * attempt,\n"
        '    shell: "echo done > {output}"\n')
    profile = tmp_path / "profiles" / "default"
    profile.mkdir(parents=True)
    profile.joinpath("config.yaml").write_text((ROOT / "profiles/default/config.yaml").read_text())
    out = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "workflow specific profile profiles/default" in out.stderr
    assert (tmp_path / "trained.txt").read_text() == "done\n"


def test_default_profile_does_not_override_the_cluster_profile():
    """profiles/default is read under `--profile` too and wins on shared keys: it may only agree."""
    default = yaml.safe_load((ROOT / "profiles/default/config.yaml").read_text())
    cluster = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    clashes = {key: (value, cluster[key]) for key, value in default.items()
               if key in cluster and cluster[key] != value}
    assert not clashes
    assert "resources" not in default, "a global gpu/mem limit here would cap the cluster run too"
