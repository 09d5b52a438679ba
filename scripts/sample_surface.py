"""Snakemake entry: surface points with normals for every frame of one sequence."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.sampling.sequence import sample_surface_sequence

    sample_surface_sequence(
        snakemake.input.meshes,
        snakemake.output.samples,
        sequence=snakemake.wildcards.sequence,
        **snakemake.params,
    )
