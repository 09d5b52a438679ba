"""Neural pose transfer by spatially adaptive instance normalization (seed 000, Wang et al. 2020).

The pose of one body mesh is put on another body's identity without vertex correspondence.

Where things live:
- `meshes`: the authors' data layout (one OBJ per mesh, `id{i}_{p}.obj` or `{i}_{p}.obj`; test
  lists of `identity pose ground_truth` lines) and the checks on what is read.
- `demo`: the demo set from the coarse body template, in that layout.
- `model`: the pose encoder, SPAdaIN, its residual block, the decoder and the three variants.
- `losses`: reconstruction plus the edge loss; `metrics`: PMD after bounding-box centring.
- `train`, `evaluate`, `table`, `figure`: what the workflow's rules call.
"""
