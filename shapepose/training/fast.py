"""The trainer's fast path: mixed precision, channels-last, cuDNN autotuning and torch.compile.

Config `fast_path` (config.yaml holds the defaults) says what to use; `Acceleration` is that
config resolved for one device and one stage, and is what the trainer and a stage's step use:

    with trainer.accel.autocast():        # bf16 / fp16 autocast, or nothing (fp32)
        loss = ...
    trainer.accel.backward(loss)          # scaled by the GradScaler under fp16
    trainer.accel.step(optimizer, clip=(params, 5.0))   # unscale, clip, step (skipped on inf)

`auto` means "on for CUDA, off on the CPU", so on a CPU the same code runs exactly as before the
fast path existed (fp32, contiguous memory, no compile) and runs stay bit-identical on a rerun.
Precision `auto` is bf16 where the GPU has it and the stage allows it, else fp16 with a gradient
scaler where the stage allows that, else fp32. A stage lists the precisions its model allows
(`precisions=`): the ops that must stay in fp32 inside an allowed stage (splatting, sparse
Laplacians, Chamfer distances) are wrapped by the stage in `full_precision()`.

Only the resolved precision is part of a run's identity (the trainer's fingerprint): the other
switches change speed and the last bits of rounding, not the arithmetic the run means to do.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

log = logging.getLogger("shapepose.training")

PRECISIONS = ("fp32", "bf16", "fp16")
AUTO_SWITCHES = ("channels_last", "cudnn_benchmark", "pin_memory")


@dataclass(frozen=True)
class FastPath:
    """Config `fast_path` (config.yaml holds every default and says what each switch does)."""

    precision: str                   # auto | fp32 | bf16 | fp16
    channels_last: str | bool        # auto (CUDA only) | true | false
    cudnn_benchmark: str | bool      # auto (CUDA only) | true | false
    compile: bool                    # torch.compile the training forward
    loader_workers: int              # DataLoader worker processes for host-side batches (0: none)
    prefetch: int                    # batches each worker prepares ahead
    pin_memory: str | bool           # page-locked host batches: auto (CUDA only) | true | false
    preload_mb: int                  # a training set at most this big is kept on the device

    def __post_init__(self):
        if self.precision not in ("auto", *PRECISIONS):
            raise ValueError(f"fast_path.precision must be auto, fp32, bf16 or fp16, got "
                             f"{self.precision!r}")
        for name in AUTO_SWITCHES:
            value = getattr(self, name)
            if value not in ("auto", True, False):
                raise ValueError(f"fast_path.{name} must be auto, true or false, got {value!r}")
        if self.loader_workers < 0 or self.prefetch < 1 or self.preload_mb < 0:
            raise ValueError("fast_path: loader_workers >= 0, prefetch >= 1, preload_mb >= 0")

    @classmethod
    def off(cls, **changes) -> FastPath:
        """No fast path at all (fp32, contiguous, no autotuning, no compile, inline batches): what a
        trainer built without a config section runs (the tests' toys); `changes` turn parts on."""
        plain = dict(precision="fp32", channels_last=False, cudnn_benchmark=False, compile=False,
                     loader_workers=0, prefetch=2, pin_memory=False, preload_mb=0)
        return cls(**{**plain, **changes})

    @classmethod
    def from_config(cls, section: Mapping | FastPath | None) -> FastPath:
        """Config `fast_path`; a partial mapping fills the rest from `off()` (tests); None: off."""
        if section is None:
            return cls.off()
        if isinstance(section, FastPath):
            return section
        from shapepose.config import section as build

        plain = {k: v for k, v in vars(cls.off()).items() if k not in section}
        return build(cls, {**plain, **dict(section)}, where="fast_path")


def _on(value: str | bool, device: torch.device) -> bool:
    return device.type == "cuda" if value == "auto" else bool(value)


def resolve_precision(wanted: str, device: torch.device, allowed: Iterable[str]) -> str:
    """The precision a run uses: `wanted` ('auto' or one of PRECISIONS) on `device` for a stage
    whose model allows `allowed` (a subset of bf16, fp16; fp32 is always allowed)."""
    allowed = {"fp32", *allowed}
    if wanted == "auto":
        if device.type != "cuda":
            return "fp32"
        if "bf16" in allowed and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp16" if "fp16" in allowed else "fp32"
    if wanted not in allowed:
        raise ValueError(f"fast_path.precision {wanted} is not allowed for this stage (allowed: "
                         f"{sorted(allowed)}); use auto or one of those")
    return wanted


class Acceleration:
    """The fast path of one run: resolved switches, the autocast context and the gradient scaler.

    `scaler` (fp16 only) is checkpointed by the trainer with the other states, so a resumed run
    continues with the same loss scale.
    """

    def __init__(self, fast_path: FastPath, device: torch.device, allowed: Iterable[str] = ()):
        self.config = fast_path
        self.device = device
        self.precision = resolve_precision(fast_path.precision, device, allowed)
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        self.channels_last = _on(fast_path.channels_last, device)
        self.cudnn_benchmark = _on(fast_path.cudnn_benchmark, device)
        self.pin_memory = _on(fast_path.pin_memory, device) and device.type == "cuda"
        self.compile = bool(fast_path.compile)
        self.scaler = (torch.amp.GradScaler(device.type) if self.precision == "fp16" else None)
        self._stepped = False

    def describe(self) -> dict:
        """The resolved settings, for the log and the exported model's metadata."""
        return {"precision": self.precision, "channels_last": self.channels_last,
                "cudnn_benchmark": self.cudnn_benchmark, "compile": self.compile,
                "loader_workers": self.config.loader_workers, "pin_memory": self.pin_memory}

    def apply_backend_settings(self) -> None:
        """cuDNN autotuning (CUDA only): fastest convolution algorithms for fixed input sizes.

        It picks algorithms by timing them, so two runs on a GPU may round differently; the
        stages' splatting atomics already make GPU runs differ in the last bits (the CPU stays
        bit-identical: there is no cuDNN there).
        """
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = self.cudnn_benchmark
            if self.precision == "fp32":
                torch.backends.cuda.matmul.allow_tf32 = False
                torch.backends.cudnn.allow_tf32 = False

    # ------------------------------------------------------------ the step

    def autocast(self):
        """Autocast to the run's low precision (a no-op context in fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def full_precision(self):
        """A region that must run in fp32 inside `autocast` (its inputs are cast by the caller)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, enabled=False)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer,
             clip: tuple[Iterable[torch.nn.Parameter], float] | None = None) -> None:
        """optimizer.step(), after unscaling and clipping; under fp16 skipped when a gradient
        overflowed (the scaler then lowers the scale)."""
        if self.scaler is not None:
            if clip is not None:
                self.scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(clip[0], clip[1])
            self.scaler.step(optimizer)
            self._stepped = True
        else:
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(clip[0], clip[1])
            optimizer.step()

    def end_step(self) -> None:
        """After every optimizer of the step has stepped (the trainer calls it)."""
        if self.scaler is not None and self._stepped:
            self.scaler.update()
            self._stepped = False

    # ------------------------------------------------------------ modules

    def prepare(self, module: torch.nn.Module, convolutional: bool = True) -> torch.nn.Module:
        """channels-last memory for a convolutional module (in place: the optimizer keeps its
        parameters); returns the module."""
        if self.channels_last and convolutional:
            module.to(memory_format=torch.channels_last)
        return module

    def images(self, tensor: torch.Tensor) -> torch.Tensor:
        """A (B, C, H, W) batch in the memory format of the prepared modules."""
        if self.channels_last and tensor.dim() == 4:
            return tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def compiled(self, module):
        """torch.compile(module) when the switch is on; the module itself otherwise. The trainer
        keeps and checkpoints the original module (compiled ones prefix their state's keys)."""
        return torch.compile(module) if self.compile else module
