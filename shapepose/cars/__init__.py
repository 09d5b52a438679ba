"""Procedural demo cars (seed 002): meshes, scenes, the DPC-style renders and the Stanford-style photos."""
