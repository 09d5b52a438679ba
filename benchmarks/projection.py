"""Benchmark: seconds per differentiable projection (forward and backward), ours against conv3d.

Ours is `Projector.render` as training uses it, whose Gaussian blur is three products with banded
(Toeplitz) matrices; the baseline is the same projection with the blur written as DPC writes it,
three separable 1-channel 3-D convolutions (`torch.nn.functional.conv3d`). Both render the same
random clouds from the same poses and give the same images (checked before timing). The default
size is one demo training step: 4 models x 6 view pairs x 4 pose candidates = 96 renders of 1000
points on a 32^3 grid, kernel 9. The two alternate one call at a time after a warm-up each, so that
they share the machine's state; the medians are reported and the ratio (ours / conv3d) printed last.
Run from anywhere: python benchmarks/projection.py [--iters 5] [--threads 1] [--grid 32] [--renders 96]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as nnf

from shapepose.geometry.quaternions import normalize
from shapepose.shape_pose.projection import Projector, gaussian_kernel


class Conv3dProjector(Projector):
    """The same projection with the blur as three 1-channel conv3d passes (zero padding)."""

    def blur(self, volume: torch.Tensor, sigma: float) -> torch.Tensor:
        k = gaussian_kernel(sigma, self.kernel_size, volume.dtype).to(volume.device)
        pad = self.kernel_size // 2
        v = volume[:, None]
        v = nnf.conv3d(v, k.view(1, 1, -1, 1, 1), padding=(pad, 0, 0))
        v = nnf.conv3d(v, k.view(1, 1, 1, -1, 1), padding=(0, pad, 0))
        v = nnf.conv3d(v, k.view(1, 1, 1, 1, -1), padding=(0, 0, pad))
        return v[:, 0]


def step(projector: Projector, points: torch.Tensor, quats: torch.Tensor, sigma: float) -> float:
    points = points.detach().requires_grad_()
    quats = quats.detach().requires_grad_()
    start = time.perf_counter()
    projector.render(points, quats, sigma)["silhouette"].square().sum().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--grid", type=int, default=32)
    parser.add_argument("--renders", type=int, default=96)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--kernel", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    points = torch.rand(args.renders, args.points, 3, generator=generator) - 0.5
    quats = normalize(torch.randn(args.renders, 4, generator=generator))
    ours = Projector(args.grid, kernel_size=args.kernel)
    baseline = Conv3dProjector(args.grid, kernel_size=args.kernel)
    sigma = 1.0
    same = torch.allclose(ours.render(points, quats, sigma)["silhouette"],
                          baseline.render(points, quats, sigma)["silhouette"], atol=1e-5)
    if not same:
        raise SystemExit("the two projections disagree; nothing to compare")
    times = {"ours": [], "conv3d": []}
    step(ours, points, quats, sigma), step(baseline, points, quats, sigma)  # warm-up
    for _ in range(args.iters):
        times["ours"].append(step(ours, points, quats, sigma))
        times["conv3d"].append(step(baseline, points, quats, sigma))
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"{args.renders} renders of {args.points} points, grid {args.grid}^3, kernel "
          f"{args.kernel}, {args.threads} thread(s), forward + backward, median of {args.iters}")
    for name, value in medians.items():
        print(f"  {name:7s} {value:.4f} s")
    print(f"ratio ours / conv3d: {medians['ours'] / medians['conv3d']:.3f}")


if __name__ == "__main__":
    main()
