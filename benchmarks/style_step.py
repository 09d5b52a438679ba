"""Benchmark: seconds per style-transfer training iteration, ours against a plain CycleGAN step.

Ours is `CycleGAN.train_step` with seed 002 table 6.1's constrained weights (lambda_alpha 2 / 2,
lambda_resdist 1.75 / 1.75, Phi a random-weight ResNet-18); plain is the same model with those
four weights 0, the stock CycleGAN objective, which never runs Phi. Both update both generators
and both discriminators against a pool of 50 fakes, at 128 x 128, batch 4, stock widths 64 and 9
residual blocks by default, on procedural ellipse images. The two alternate one iteration at a
time after one warm-up iteration each, so that they share the machine's state; the median of
each is reported and the ratio (ours / plain) is printed last.
Run from anywhere: python benchmarks/style_step.py [--iters 3] [--threads 2] [--size 128]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from shapepose.seeding import derive_rng  # noqa: E402
from shapepose.style.features import ResNetFeatures  # noqa: E402
from shapepose.style.train import Architecture, CycleGAN, Experiment  # noqa: E402
from shapepose.training import pick_device, seed_everything  # noqa: E402
from shapepose.training.batches import step_generator  # noqa: E402

SEED = 0
POOL_SIZE = 50  # seed 002 section 6.1.1
CONSTRAINED = {"lambda_alpha_G": 2.0, "lambda_alpha_F": 2.0,  # seed 002 table 6.1, experiment 2
               "lambda_resdist_G": 1.75, "lambda_resdist_F": 1.75}


def ellipse_batch(rng: np.random.Generator, n: int, size: int) -> torch.Tensor:
    """(n, 3, size, size) in [-1, 1]: one coloured ellipse per image on "nothing" (-1)."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    images = np.full((n, 3, size, size), -1.0, np.float32)
    for image in images:
        cy, cx = rng.uniform(0.3, 0.7, 2) * size
        ay, ax = rng.uniform(0.15, 0.35, 2) * size
        inside = ((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 <= 1.0
        image[:, inside] = rng.uniform(-0.8, 1.0, (3, 1))
    return torch.from_numpy(images)


def build(arch: Architecture, weights: dict, phi: torch.nn.Module | None,
          device: torch.device) -> CycleGAN:
    seed_everything(SEED, "benchmark", "init")  # both models start from the same weights
    defaults = yaml.safe_load((ROOT / "config.yaml").read_text())["style_transfer"]["defaults"]
    return CycleGAN(arch, Experiment.from_config({**defaults, **weights}), POOL_SIZE, phi, device)


def timed_step(model: CycleGAN, x: torch.Tensor, y: torch.Tensor, step: int,
               device: torch.device) -> float:
    gen = step_generator(SEED, step, "benchmark")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    model.train_step(x, y, gen)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ngf", type=int, default=64, help="generator and critic width")
    parser.add_argument("--blocks", type=int, default=9, help="residual blocks of the generators")
    parser.add_argument("--size", type=int, default=128, help="image size in pixels")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--iters", type=int, default=5, help="timed iterations of each step")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch CPU threads")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:k]")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    arch = Architecture(ngf=args.ngf, ndf=args.ngf, n_blocks=args.blocks, image_size=args.size)

    phi = ResNetFeatures(None).to(device)
    models = {"ours": build(arch, CONSTRAINED, phi, device),
              "plain": build(arch, {}, None, device)}
    rng = derive_rng(SEED, "style_step")
    x = ellipse_batch(rng, args.batch, args.size).to(device)
    y = ellipse_batch(rng, args.batch, args.size).to(device)

    times: dict[str, list[float]] = {name: [] for name in models}
    for step in range(args.iters + 1):  # step 0 is the warm-up, not counted
        for name, model in models.items():
            seconds = timed_step(model, x, y, step, device)
            if step > 0:
                times[name].append(seconds)
            print(f"  {'warm-up' if step == 0 else f'iteration {step}'} {name:<6}{seconds:>9.3f} s",
                  file=sys.stderr, flush=True)

    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"CycleGAN step: {args.size} x {args.size}, batch {args.batch}, width {args.ngf}, "
          f"{args.blocks} blocks, pool {POOL_SIZE}; device {device}, {args.threads} CPU thread(s); "
          f"median of {args.iters} after 1 warm-up")
    print(f"ours: lambda_alpha 2/2, lambda_resdist 1.75/1.75, Phi {phi.source}; plain: those 0")
    print()
    print(f"{'seconds per iteration':<28}{'median':>10}{'min':>10}{'max':>10}")
    for name in models:
        print(f"  {name:<26}{median[name]:>10.3f}{min(times[name]):>10.3f}{max(times[name]):>10.3f}")
    print()
    print(f"ratio (ours / plain): {median['ours'] / median['plain']:.3f}")


if __name__ == "__main__":
    main()
