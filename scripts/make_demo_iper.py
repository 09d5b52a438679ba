"""Snakemake entry: write the demo iPER dataset (frames, fits, keypoints, splits)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    import torchvision  # noqa: F401  (before any EGL render in the process, or it segfaults)

    from shapepose.lwgan.data import make_demo_iper

    make_demo_iper(snakemake.output.data, **snakemake.params)
