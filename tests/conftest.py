"""Test-session order (the real-SLURM test goes last) and the tiny datasets shared by several files.

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

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.path.name == "test_slurm.py")  # stable: others keep order


# ---- tiny datasets shared by several files, built by tests/helpers/data.py (imported when first
# needed, so a session that uses none imports nothing more). Read-only: a test that writes into
# one copies it first.

@pytest.fixture(scope="session")
def tiny_dpc(tmp_path_factory) -> Path:
    """A synthetic car set in DPC's layout: data.TINY_DPC (8 models, 4 views, 64 px)."""
    from helpers import data

    return data.write_tiny_dpc(tmp_path_factory.mktemp("tiny_dpc") / "synthetic", **data.TINY_DPC)


@pytest.fixture(scope="session")
def tiny_cutouts(tmp_path_factory) -> Path:
    """A cars.cutouts folder: train/ with 6 and test/ with 2 textured-ellipse cut-outs (64 px)."""
    from helpers import data

    return data.write_cutout_splits(tmp_path_factory.mktemp("tiny_cutouts") / "cutouts",
                                    {"train": 6, "test": 2})


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test: on a shared 2-core box a second thread only waits for a
    busy core (detection models run up to 10x slower). Files use it through `pytestmark`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
