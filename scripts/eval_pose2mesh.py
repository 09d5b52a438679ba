"""Snakemake entry: score one Pose2Mesh run on the test subjects; write the summary and predictions."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch

    from shapepose.pose2mesh.evaluate import eval_pose2mesh

    configure_torch(snakemake.threads)
    eval_pose2mesh(data=snakemake.input.data, posenet=snakemake.input.posenet,
                   model=snakemake.input.model, out=snakemake.output.metrics,
                   predictions=snakemake.output.predictions,
                   experiment=snakemake.wildcards.p2m_experiment, **snakemake.params)
