"""Benchmark: one training step of every trainer, fp32 against the fast path, side by side.

For each trainer (benchmarks/trainers/<stage>.py) at its demo size (config.yaml) and its real size
(workflow/configs/*.yaml), the stage's own step code runs on a synthetic batch of the real shapes
built once on the device, so data loading is not timed. Two copies of each model are built from
the same seed: the plain path (fp32, contiguous, no autotuning, no compile: FastPath.off()) and
the fast path. After one warm-up step each (compilation, cuDNN autotuning) they alternate step
by step, so both see the same machine state; the median of the timed steps is reported with
samples (images, meshes, ...) per second. Peak memory is measured separately per copy, from
before its build to after two steps: on CUDA torch.cuda.max_memory_allocated in this process; on
the CPU, where freed memory stays resident and would hide a second build's need, in a fresh
process of this script (`--memory-of`): its peak resident memory (VmHWM) above its resident memory
before the build. For the CycleGAN, our step (seed 002's alpha and ResNet-feature losses) is
also compared with a plain CycleGAN step at the same settings.

The fast path is config.yaml's fast_path, whose `auto` switches are on for CUDA only; on a CPU
that would compare fp32 with itself, so there the default is bf16 autocast and channels-last
(`--fast` sets any switch). On a CPU only the demo sizes run unless --size says otherwise (the
real sizes take seconds to minutes per step there); on a GPU every size runs. Ratios come last.

    python benchmarks/train_step.py                       # CPU: demo sizes; GPU: demo and real
    python benchmarks/train_step.py --size real --trainers style_transfer,cyclegan_plain
    python benchmarks/train_step.py --fast precision=bf16,compile=true --steps 10
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import yaml  # noqa: E402

from shapepose.training import pick_device  # noqa: E402
from shapepose.training.fast import FastPath  # noqa: E402

MODULES = ("style_transfer", "lwgan", "shape_pose", "neural_parts", "pose_transfer", "pose2mesh",
           "segmentation")


def parse_fast(text: str | None, device: torch.device) -> FastPath:
    """config.yaml's fast_path, with bf16 + channels-last on a CPU, then --fast's changes."""
    settings = yaml.safe_load((ROOT / "config.yaml").read_text())["fast_path"]
    settings["loader_workers"] = 0
    if device.type == "cpu":
        settings.update(precision="bf16", channels_last=True)
    for item in filter(None, (text or "").split(",")):
        key, _, value = item.partition("=")
        settings[key.strip()] = yaml.safe_load(value)
    return FastPath.from_config(settings)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cuda_peak_mb(case, device: torch.device, fast_path: FastPath) -> float:
    """MB allocated at the peak on the GPU by building the copy and running two steps."""
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    step = build(case, device, fast_path)
    step(0)
    step(1)
    sync(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def cpu_peak_mb(case, fast_path: FastPath, threads: int) -> float:
    """MB of peak resident memory above the start, of a fresh process building the copy and
    running two steps (this script with --memory-of)."""
    spec = json.dumps({"trainer": case.trainer, "size": case.size, "fast_path": vars(fast_path)})
    out = subprocess.run([sys.executable, __file__, "--memory-of", spec, "--threads",
                          str(threads), "--device", "cpu"], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"memory of {case.trainer} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


def memory_of(spec_text: str) -> None:
    """The --memory-of worker: one copy's peak resident memory above the start, as JSON."""
    spec = json.loads(spec_text)
    (case,) = [c for c in load_cases([spec["size"]], {spec["trainer"]})]
    # torch's first operations map its kernels and thread pools (about 100 MB): not the model's
    x = torch.ones(1, 3, 16, 16, requires_grad=True)
    torch.nn.functional.conv2d(x, torch.ones(4, 3, 3, 3)).sum().backward()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.nn.functional.conv2d(x, torch.ones(4, 3, 3, 3)).float().sum().backward()
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux 4.0 and later)
    before = rss_mb("VmRSS")
    step = build(case, torch.device("cpu"), FastPath.from_config(spec["fast_path"]))
    step(0)
    step(1)
    print(json.dumps({"peak_mb": rss_mb("VmHWM") - before}))


def build(case, device: torch.device, fast_path: FastPath):
    torch.manual_seed(0)  # both copies start from the same weights and batch
    return case.build(device, fast_path)


def measure(case, device: torch.device, fast: FastPath, steps: int) -> dict:
    """Timed steps of the plain and fast copies, alternating; then each copy's peak memory."""
    variants = {"fp32": FastPath.off(), "fast": fast}
    runners = {name: build(case, device, path) for name, path in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(steps + 1):  # step 0 warms up (compilation, autotuning): not counted
        for name, step in runners.items():
            sync(device)
            start = time.perf_counter()
            step(i)
            sync(device)
            if i:
                times[name].append(time.perf_counter() - start)
    del runners, step
    peak = {name: cuda_peak_mb(case, device, path) if device.type == "cuda"
            else cpu_peak_mb(case, path, torch.get_num_threads())
            for name, path in variants.items()}
    out = {}
    for name in variants:
        seconds = statistics.median(times[name])
        out[name] = {"seconds": seconds, "rate": case.samples / seconds, "peak_mb": peak[name]}
    return out


def load_cases(sizes: list[str], wanted: set[str]) -> list:
    """Every trainer's cases at these sizes (those named in `wanted`, or all)."""
    from benchmarks.trainers.common import load_config

    cases = []
    for module_name in MODULES:
        module = importlib.import_module(f"benchmarks.trainers.{module_name}")
        for size in sizes:
            try:
                config = load_config(module_name, size)
            except ValueError:
                continue  # no real-data training config (the segmenter uses COCO weights)
            cases += [c for c in module.cases(config, size) if not wanted or c.trainer in wanted]
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("demo", "real", "all"), default=None,
                        help="default: demo on a CPU, all on a GPU")
    parser.add_argument("--trainers", default="", help="comma-separated names (default: all)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps of each copy")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch CPU threads")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:k]")
    parser.add_argument("--fast", default=None,
                        help="fast-path switches, e.g. precision=fp16,compile=true")
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_of:
        memory_of(args.memory_of)
        return
    device = pick_device(args.device)
    fast = parse_fast(args.fast, device)
    sizes = {"demo": ["demo"], "real": ["real"], "all": ["demo", "real"]}[
        args.size or ("all" if device.type == "cuda" else "demo")]
    wanted = {t.strip() for t in args.trainers.split(",") if t.strip()}

    cases = load_cases(sizes, wanted)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {args.threads} thread(s)"
    print(f"one training step per trainer on {device} ({name}); torch {torch.__version__}; "
          f"median of {args.steps} after 1 warm-up; fast path: {vars(fast)}", flush=True)
    header = (f"{'trainer':<16}{'size':<6}{'batch':>7} {'unit':<8}{'fp32 s':>9}{'fast s':>9}"
              f"{'fp32 /s':>10}{'fast /s':>10}{'fp32 MB':>10}{'fast MB':>10}")
    print(header)
    results = {}
    for case in cases:
        result = measure(case, device, fast, args.steps)
        results[(case.trainer, case.size)] = result
        f, s = result["fp32"], result["fast"]
        print(f"{case.trainer:<16}{case.size:<6}{case.samples:>7} {case.unit:<8}"
              f"{f['seconds']:>9.4f}{s['seconds']:>9.4f}{f['rate']:>10.1f}{s['rate']:>10.1f}"
              f"{f['peak_mb']:>10.0f}{s['peak_mb']:>10.0f}"
              + (f"   ({case.note})" if case.note else ""), flush=True)

    print()
    print("ratios (speed-up = fp32 seconds / fast seconds; memory = fast peak / fp32 peak)")
    for (trainer, size), result in results.items():
        f, s = result["fp32"], result["fast"]
        memory = s["peak_mb"] / f["peak_mb"] if f["peak_mb"] > 0 else float("nan")
        print(f"  {trainer:<16}{size:<6} speed-up {f['seconds'] / s['seconds']:6.2f}   "
              f"memory {memory:6.2f}")
    for size in sizes:
        ours, plain = results.get(("style_transfer", size)), results.get(("cyclegan_plain", size))
        if ours and plain:
            for variant in ("fp32", "fast"):
                print(f"  CycleGAN {size} {variant}: ours / plain seconds per step "
                      f"{ours[variant]['seconds'] / plain[variant]['seconds']:.3f}")


if __name__ == "__main__":
    main()
