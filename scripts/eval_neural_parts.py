"""Snakemake entry: IoU and Chamfer-L1 of one Neural Parts model on the test frames.

params: sequences, split, image_size, subdivisions, n_points, max_frames, device, seed (the config
seed), untrained (bool: score the step-0 weights instead of the trained ones) and replicate (int).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch

    from shapepose.neural_parts.evaluate import eval_neural_parts

    configure_torch(snakemake.threads)
    eval_neural_parts(
        model_path=snakemake.input.model,
        surface=list(snakemake.input.surface),
        volume=list(snakemake.input.volume),
        renders=list(snakemake.input.renders),
        out=snakemake.output.metrics,
        **snakemake.params,
    )
