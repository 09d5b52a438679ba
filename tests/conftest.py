"""Test-session order: the real-SLURM test goes last.

Once SLURM's client tools are installed but no controller runs (the cluster test stops its
cluster when done), the SLURM executor plugin, which Snakemake imports on every start, asks
`scontrol show config` and waits up to 10 s for an answer. .ci/slurm/stop.sh removes the
slurm.conf it wrote, which ends that; running the cluster test last keeps the other workflow
tests clear of it even if a stop fails.
"""


# torch's optimizers import torch._dynamo, and with it triton, on first construction. Triton
# loaded after Mesa's software renderer has made an EGL context crashes the process (as
# torchvision does), so a test that builds an optimizer after one that renders would segfault
# when run without the suite's other modules: load it before any test.
import torch._dynamo  # noqa: F401


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.path.name == "test_slurm.py")  # stable: others keep order
