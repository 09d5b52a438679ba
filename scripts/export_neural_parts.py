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
        sequences=list(snakemake.params.sequences),
        surface=list(snakemake.input.surface),
        volume=list(snakemake.input.volume),
        renders=list(snakemake.input.renders),
        primitives_dir=snakemake.output.primitives,
        views_dir=snakemake.output.views,
        device=snakemake.params.device,
        split=dict(snakemake.params.split),
        image_size=snakemake.params.image_size,
        render_size=snakemake.params.render_size,
        camera=dict(snakemake.params.camera),
        subdivisions=snakemake.params.subdivisions,
        **snakemake.params.export,
    )
