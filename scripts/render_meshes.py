"""Snakemake entry: one RGBA image per frame of one sequence, from the fixed elevated camera."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.render import render_meshes

    render_meshes(
        snakemake.input.meshes,
        snakemake.output.renders,
        size=snakemake.params.size,
        camera=dict(snakemake.params.camera),
    )
