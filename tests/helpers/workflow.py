"""Running the workflow from a test: Snakemake on this checkout's Snakefile in a temporary workdir."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def run_snakemake(workdir: str | Path, *args: str, config: dict | None = None,
                  targets: list[str] | tuple[str, ...] = (), replace: bool = False,
                  check: bool = True) -> subprocess.CompletedProcess:
    """`python -m snakemake` in `workdir` with `config` written to test-config.yaml (merged onto
    config.yaml by Snakemake, or replacing it with `replace`), then `args`, then `targets`.

    With `check`, a non-zero exit raises AssertionError holding the command and the output's tail.
    """
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir)]
    if config is not None:
        path = Path(workdir) / "test-config.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd += ["--configfile", str(path)]
        if replace:
            cmd.append("--replace-workflow-config")
    cmd += [*args, *targets]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc
