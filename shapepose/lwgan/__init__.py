"""Liquid Warping GAN (seed 004): iPER data, flow, three-stream generator, stabilizer study."""
