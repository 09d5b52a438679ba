"""Snakemake entry: coloured primitive meshes and union renders of a few test frames."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch

    from shapepose.neural_parts.export import export_neural_parts

    configure_torch(snakemake.threads)
    export_neural_parts(
        model_path=snakemake.input.model,
        surface=list(snakemake.input.surface),
        volume=list(snakemake.input.volume),
        renders=list(snakemake.input.renders),
        primitives_dir=snakemake.output.primitives,
        views_dir=snakemake.output.views,
        **snakemake.params,
    )
