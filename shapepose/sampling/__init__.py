"""Surface and importance-weighted volume samples of meshes, and their compressed HDF5 files.

Where things live (imported from the modules, so that reading samples needs only h5py and numpy):
- `inside`: `WindingNumber`, `inside_mesh` -- the inside test (generalized winding number).
- `surface`: `sample_surface_points` -- area-uniform points with face normals.
- `volume`: `sample_volume_points`, `VolumeSamples` -- stratified points, labels, unbiased weights.
- `store`: `read_surface_samples`, `read_volume_samples` and the writers.
- `sequence`: `sample_surface`, `sample_volume` -- per-sequence drivers.
"""
