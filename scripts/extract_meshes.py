"""Snakemake entry: one DFAUST sequence to one PLY mesh per kept frame."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.meshes import extract_meshes

    extract_meshes(
        registrations=snakemake.input.registrations,
        key=snakemake.wildcards.sequence,
        out_dir=snakemake.output.meshes,
        **snakemake.params,
    )
