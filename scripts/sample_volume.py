"""Snakemake entry: importance-weighted inside/outside points for every frame of one sequence."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.sampling.sequence import sample_volume_sequence

    sample_volume_sequence(
        snakemake.input.meshes,
        snakemake.output.samples,
        sequence=snakemake.wildcards.sequence,
        **snakemake.params,
    )
