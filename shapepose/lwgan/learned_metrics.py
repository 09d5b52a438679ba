"""Metrics that need pretrained networks (LPIPS, FID, face similarity), behind configured files.

Each network is a TorchScript file (config lwgan.weights: lpips, fid, face); without one the
metric is "n/a (no weights)". The formulas are the published ones, so a tiny random network
exercises the same plumbing as the real weights:
- LPIPS (Zhang et al. 2018), the lin=False variant: the network returns a list of feature maps;
  each is unit-normalized over channels and d = sum_l mean_hw |f_l(x) - f_l(y)|^2.
- FID (Heusel et al. 2017): features (N, D) of generated and real frames,
  |mu_g - mu_r|^2 + tr(S_g + S_r - 2 (S_g S_r)^(1/2)).
- face similarity: cosine similarity of the face network's embeddings of the head crops
  (`shapepose.lwgan.losses.head_crops`, boxes from the reference's condition map).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from shapepose.lwgan.losses import head_boxes, head_crops

NO_WEIGHTS = "n/a (no weights)"


def load_network(path: str | None):
    return None if not path else torch.jit.load(path, map_location="cpu").eval()


def lpips_distance(net, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) LPIPS without the learned linear heads, images in [-1, 1]."""
    d = x.new_zeros(len(x))
    for fx, fy in zip(net(x), net(y)):
        fx = fx / (fx.norm(dim=1, keepdim=True) + 1e-10)
        fy = fy / (fy.norm(dim=1, keepdim=True) + 1e-10)
        d = d + (fx - fy).square().sum(dim=1).mean(dim=(1, 2))
    return d


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between feature sets a (N, D) and b (M, D)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


def face_similarity(net, fake: torch.Tensor, real: torch.Tensor, conditions: torch.Tensor) -> float:
    """Mean cosine similarity of the face embeddings of the frames whose head is in view."""
    boxes = head_boxes(conditions)
    a, b = head_crops(fake, boxes), head_crops(real, boxes)
    if len(a) == 0:
        return float("nan")
    ea, eb = net(a).flatten(1), net(b).flatten(1)
    return float(torch.nn.functional.cosine_similarity(ea, eb, dim=1).mean())


def learned_metrics(weights: dict, fake: np.ndarray, real: np.ndarray,
                    conditions: torch.Tensor) -> dict[str, float | str]:
    """{lpips, fid, face_similarity} of uint8 (N, S, S, 3) predictions against references."""
    to = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    x, y = to(fake), to(real)
    out: dict[str, float | str] = {}
    with torch.no_grad():
        net = load_network(weights.get("lpips"))
        out["lpips"] = NO_WEIGHTS if net is None else float(lpips_distance(net, x, y).mean())
        net = load_network(weights.get("fid"))
        out["fid"] = NO_WEIGHTS if net is None else frechet_distance(
            net(x).flatten(1).numpy(), net(y).flatten(1).numpy())
        net = load_network(weights.get("face"))
        out["face_similarity"] = NO_WEIGHTS if net is None else face_similarity(net, x, y, conditions)
    return out
