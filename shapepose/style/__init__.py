"""Annotation-invariant style transfer (seed 002 chapter 4) with the GAN stabilizers of seed 004.

networks: ResNet generator and PatchGAN critic; losses: LSGAN, cycle, identity, alpha and ResNet
feature terms, gradient penalty; train: the CycleGAN step on the shared trainer; stylize: a
synthetic set through G in its own layout; report: curves, sample grid, table per experiment;
summary: the experiments over their replicates, and each against the first.
"""
