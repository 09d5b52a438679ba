"""Snakemake entry: procedural bodies written as DFAUST registrations (embedded default only)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.bodies.demo import make_demo_bodies

    make_demo_bodies(
        registrations_m=snakemake.output.m,
        registrations_f=snakemake.output.f,
        joints=snakemake.output.joints,
        **snakemake.params,
    )
