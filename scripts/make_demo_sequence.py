"""Snakemake entry: one procedural subject performing one motion, as a DFAUST-layout file."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.bodies.demo import MODEL_VERSION, write_demo_sequence

    params = dict(snakemake.params)
    if params.pop("model_version") != MODEL_VERSION:
        raise RuntimeError("the DAG was built with another shapepose.bodies version; rerun snakemake")
    subject = snakemake.wildcards.sequence.split("_", 1)[0]
    write_demo_sequence(
        snakemake.output.registrations, snakemake.output.joints, subject=subject, **params
    )
