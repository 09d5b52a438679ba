"""Test-session order: the real-SLURM test goes last.

Once SLURM's client tools are installed but no controller runs (the cluster test stops its
cluster when done), the SLURM executor plugin, which Snakemake imports on every start, asks
`scontrol show config` and waits up to 10 s for an answer. .ci/slurm/stop.sh removes the
slurm.conf it wrote, which ends that; running the cluster test last keeps the other workflow
tests clear of it even if a stop fails.
"""


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.path.name == "test_slurm.py")  # stable: others keep order
