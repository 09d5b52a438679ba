"""Snakemake entry: held-out self-imitation metrics, predictions and the imitation strip/GIF."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    import torchvision  # noqa: F401  (before any EGL render in the process, or it segfaults)

    from shapepose.training.device import configure_torch

    from shapepose.lwgan.evaluate import evaluate_lwgan

    configure_torch(snakemake.threads)
    evaluate_lwgan(
        model=snakemake.input.model,
        data=snakemake.input.data,
        metrics=snakemake.output.metrics,
        predictions=snakemake.output.predictions,
        strip=snakemake.output.strip,
        animation=snakemake.output.animation,
        **snakemake.params,
    )
