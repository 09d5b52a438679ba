"""Neural Parts (seed 003): a shape as the union of spheres mapped through a conditional invertible network.

Where things live:
- `model`: `NeuralParts` (ResNet-18 encoder, per-primitive embeddings, `ConditionalINN`),
  `CouplingLayer`, `implicit`, sphere points and meshes.
- `losses`: the five training losses of seed 003 and their weighted sum.
- `data`: the train/val/test split by sequence and frame, and batches drawn from the sample files.
- `metrics`: weighted IoU from the volume samples, Chamfer-L1, the predicted surface points.
- `train`, `evaluate`, `export`, `table`: what the workflow's rules call.
"""
