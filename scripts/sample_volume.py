"""Snakemake entry: importance-weighted inside/outside points for every frame of one sequence."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.sampling.sequence import sample_volume

    sample_volume(
        mesh_dir=snakemake.input.meshes,
        out=snakemake.output.samples,
        sequence=snakemake.wildcards.sequence,
        **snakemake.params,
    )
