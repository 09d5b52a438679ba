"""Phi of seed 002 section 4.1.2: a ResNet-18 without its last two layers (average pool and fc).

The thesis used torchvision's ImageNet weights. Nothing is downloaded here: `weights` is the path
of a torchvision `resnet18` state dict (e.g. resnet18-f37072fd.pth, the ImageNet weights, fetched
once by hand), or None for a randomly initialised ResNet-18 drawn from a fixed seed. Random
convolutional features still respond to colour, edges and layout, so the distance still penalizes
moved parts, but it is not the thesis's ImageNet perceptual distance; the default config says so.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torchvision
from torch import nn

from shapepose.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDOM_WEIGHTS_SEED = 18  # the random ResNet-18 is the same in every run and every experiment


def _load_state_dict(path: Path) -> dict:
    if not path.is_file():
        raise InputError(path, "ResNet-18 weights file does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a damaged or foreign file
        raise InputError(path, f"cannot read ResNet-18 weights ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(path, "not a state dict")
    return state


class ResNetFeatures(nn.Module):
    """Frozen feature extractor: RGB in [-1, 1] (B, 3, H, W) -> (B, 512, H/32, W/32).

    Inputs are mapped to [0, 1] and normalized with ImageNet's mean and std, as torchvision's
    weights expect. Batch norm always uses its stored statistics (the module stays in eval mode).
    """

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        if weights is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_WEIGHTS_SEED)
                resnet = torchvision.models.resnet18(weights=None)
            self.source = f"random (seed {RANDOM_WEIGHTS_SEED})"
        else:
            path = Path(weights)
            with torch.random.fork_rng(devices=[]):  # its init is overwritten: draw nothing
                resnet = torchvision.models.resnet18(weights=None)
            state = _load_state_dict(path)
            missing, unexpected = resnet.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.startswith("fc.")]
            unexpected = [k for k in unexpected if not k.startswith("fc.")]
            if missing or unexpected:
                raise InputError(path, f"not a torchvision resnet18 state dict: missing "
                                       f"{missing[:3]}, unexpected {unexpected[:3]}")
            self.source = str(path)
        self.body = nn.Sequential(*list(resnet.children())[:-2])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> ResNetFeatures:
        return super().train(False)  # frozen: stored batch-norm statistics, always

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(((x + 1.0) / 2.0 - self.mean) / self.std)


def weights_stamp(weights: str | Path | None) -> str:
    """What identifies Phi in a training fingerprint: "random:<seed>" or the file's sha256."""
    if weights is None:
        return f"random:{RANDOM_WEIGHTS_SEED}"
    path = Path(weights)
    if not path.is_file():
        raise InputError(path, "ResNet-18 weights file does not exist")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"
