"""shapepose: raw 3D meshes and photographs to trained shape-and-pose models and their tables."""

__version__ = "0.1.0"
