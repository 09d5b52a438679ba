"""Benchmark: per-frame sampling time (ours vs trimesh's default path) and bytes per frame on disk.

One demo frame (about 7k vertices), 100k surface + 100k volume points, one CPU core. Our path is
`sample_surface_points` + `sample_volume_points` (stratified draws, winding-number labels). The
trimesh path does the same job the default way: `trimesh.sample.sample_surface` with face normals, and
`mesh.contains` on the very points our volume sampler drew (their stratified drawing is not
charged to trimesh). Each timed call starts from bare arrays, as a new frame would, so both pay
for building their ray-tracing structures. Sizes: our per-sequence HDF5 files divided by their
frame count, against an uncompressed float64 layout like the peer's (surface points and normals,
volume points, labels, weights). Run from anywhere: python benchmarks/sampling.py
"""

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads its thread pools
os.sched_setaffinity(0, {0})

import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import trimesh  # noqa: E402

from shapepose.bodies.demo import example_mesh  # noqa: E402
from shapepose.io import write_ply  # noqa: E402
from shapepose.sampling.sequence import sample_surface, sample_volume  # noqa: E402
from shapepose.sampling.surface import sample_surface_points  # noqa: E402
from shapepose.sampling.volume import DEFAULT_STRATA, sample_volume_points  # noqa: E402

N_POINTS = 100_000
CUBOID = (1.0, 2.0, 1.0)
CELL_SIZE = 0.04
REPEATS = 7
SIZE_FRAMES = 4
TARGET_SPEEDUP = 2.0
TARGET_BYTES = 1.3e6


def ours(vertices: np.ndarray, faces: np.ndarray, seed: int):
    """Our per-frame path: surface points with normals, labelled weighted volume points."""
    rng = np.random.default_rng(seed)
    points, normals = sample_surface_points(vertices, faces, N_POINTS, rng)
    samples = sample_volume_points(vertices, faces, N_POINTS, rng, cuboid=CUBOID,
                                   cell_size=CELL_SIZE)
    return points, normals, samples


def trimesh_default(vertices: np.ndarray, faces: np.ndarray, volume_points: np.ndarray):
    """The default trimesh path for the same job, labelling our volume points by ray parity."""
    mesh = trimesh.Trimesh(vertices, faces)
    points, face_index = trimesh.sample.sample_surface(mesh, N_POINTS)
    normals = mesh.face_normals[face_index]
    return points, normals, mesh.contains(volume_points)


def best_times(jobs: dict, repeats: int) -> dict:
    """Best wall time of each job; the jobs take turns so that they share the machine's state."""
    best = {name: np.inf for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def stage_times(vertices, faces, volume_points) -> dict:
    """Per-stage best times of both paths, for the table."""
    mesh_args = (vertices, faces)
    return best_times({
        "ours: surface": lambda: sample_surface_points(*mesh_args, N_POINTS,
                                                       np.random.default_rng(0)),
        "ours: volume (draws + labels)": lambda: sample_volume_points(
            *mesh_args, N_POINTS, np.random.default_rng(0), cuboid=CUBOID, cell_size=CELL_SIZE),
        "trimesh: sample_surface": lambda: trimesh.sample.sample_surface(
            trimesh.Trimesh(*mesh_args), N_POINTS),
        "trimesh: contains": lambda: trimesh.Trimesh(*mesh_args).contains(volume_points),
    }, REPEATS)


def file_sizes(workdir: Path) -> tuple[float, float, float]:
    """Bytes per frame: our surface file, our volume file, the float64 peer layout."""
    mesh_dir = workdir / "meshes"
    mesh_dir.mkdir()
    for frame in range(SIZE_FRAMES):
        write_ply(mesh_dir / f"frame_{frame:06d}.ply", *example_mesh(seed=frame))
    surface, volume = workdir / "surface.h5", workdir / "volume.h5"
    sample_surface(str(mesh_dir), str(surface), sequence="bench", n_points=N_POINTS, seed=0)
    sample_volume(str(mesh_dir), str(volume), sequence="bench", n_points=N_POINTS,
                  cuboid=CUBOID, center="bbox", cell_size=CELL_SIZE, strata=DEFAULT_STRATA, seed=0)
    vertices, faces = example_mesh(seed=0)
    points, normals, samples = ours(vertices, faces, seed=0)
    peer = workdir / "peer.npz"
    np.savez(peer, surface_points=points, surface_normals=normals, volume_points=samples.points,
             occupancies=samples.inside, weights=samples.weights)
    return (surface.stat().st_size / SIZE_FRAMES, volume.stat().st_size / SIZE_FRAMES,
            float(peer.stat().st_size))


def main() -> None:
    vertices, faces = example_mesh(seed=0)
    _, _, samples = ours(vertices, faces, seed=0)
    volume_points = samples.points
    totals = best_times({
        "ours": lambda: ours(vertices, faces, seed=0),
        "trimesh": lambda: trimesh_default(vertices, faces, volume_points),
    }, REPEATS)
    stages = stage_times(vertices, faces, volume_points)
    parity = trimesh_default(vertices, faces, volume_points)[2]
    with tempfile.TemporaryDirectory() as tmp:
        surface_bytes, volume_bytes, peer_bytes = file_sizes(Path(tmp))
    ours_bytes = surface_bytes + volume_bytes

    print(f"demo frame: {len(vertices)} vertices, {len(faces)} faces; {N_POINTS} surface + "
          f"{N_POINTS} volume points; cuboid {CUBOID}, cells {CELL_SIZE} m; one core, best of {REPEATS}")
    print(f"volume points inside: {samples.inside.mean():.3f}; weighted inside fraction "
          f"{np.sum(samples.weights * samples.inside):.5f}; labels differing from trimesh.contains: "
          f"{int(np.sum(parity != samples.inside))}")
    print()
    print(f"{'seconds per frame':<34}{'s':>10}")
    for name, seconds in stages.items():
        print(f"  {name:<32}{seconds:>10.4f}")
    print(f"  {'ours: total':<32}{totals['ours']:>10.4f}")
    print(f"  {'trimesh default: total':<32}{totals['trimesh']:>10.4f}")
    print()
    print(f"{'bytes per frame on disk':<34}{'MB':>10}")
    print(f"  {'ours: surface HDF5':<32}{surface_bytes / 1e6:>10.3f}")
    print(f"  {'ours: volume HDF5':<32}{volume_bytes / 1e6:>10.3f}")
    print(f"  {'ours: total':<32}{ours_bytes / 1e6:>10.3f}")
    print(f"  {'peer: float64, uncompressed':<32}{peer_bytes / 1e6:>10.3f}")
    print()
    speedup = totals["trimesh"] / totals["ours"]
    print(f"speed-up (trimesh / ours): {speedup:.2f}x   target >= {TARGET_SPEEDUP:.0f}x   "
          f"{'met' if speedup >= TARGET_SPEEDUP else 'MISSED'}")
    print(f"size (ours / peer): {ours_bytes / peer_bytes:.3f} ({ours_bytes / 1e6:.2f} MB per frame)   "
          f"target <= {TARGET_BYTES / 1e6:.1f} MB   {'met' if ours_bytes <= TARGET_BYTES else 'MISSED'}")


if __name__ == "__main__":
    main()
