"""Snakemake entry: one DFAUST sequence to one PLY mesh per kept frame."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.meshes import extract_meshes

    extract_meshes(
        snakemake.input.registrations,
        snakemake.wildcards.sequence,
        snakemake.output.meshes,
        frame_stride=snakemake.params.frame_stride,
        drop_first=snakemake.params.drop_first,
        max_frames=snakemake.params.max_frames,
        repair_holes=snakemake.params.repair_holes,
    )
