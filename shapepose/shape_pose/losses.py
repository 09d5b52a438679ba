"""The losses of seed 002 section 5.2 and the schedules of section 5.3 (DPC), in two readings.

Reprojection. A model's cloud, predicted from one of its views, is projected from each of the K
candidate poses predicted from another view and compared with that view's mask; each projection
counts its smallest squared error (summed over pixels), and only the winning candidate receives a
gradient. Which clouds meet which poses (`pairing`):

- "all_pairs", the seed's text: every pair of views j1 < j2, the cloud of j1 from the poses of
  j2 (6 pairs for 4 views). The first view's poses are never scored, nor the last view's cloud.
- "first_view", DPC's code (model_pc.py): the cloud of each model's first view (the views are a
  random draw, so any view can be first) from the poses of every one of its views, itself
  included, so every view's pose gets a gradient; each of the W K projections draws its own
  point dropout, as DPC's pc_point_dropout does on its replicated clouds.

The error is averaged over projections and multiplied by `reprojection_scale`: 1 in the seed's
text, 0.5 in DPC's code (tf.nn.l2_loss halves the sum of squares).

Student. The student pose of each scored view is pulled towards that view's winning candidate,
held constant (DPC's stop_gradient): 1 - Re(q_S q_R^-1 / |q_S q_R^-1|) in the seed (`re`; for unit
quaternions the real part is their dot product), or DPC's code's 1 - Re(.)^2 (`re_squared`), which
counts -q_R as the same pose, as it is: the seed's form punishes a sign flip of the teacher as a
full turn.

Schedules, linear in the training step: the share of points kept (DPC's `pc_point_dropout` is a
keep probability rising from 0.07 to 1; the thesis reads it as a 7 % dropout rate) and the
Gaussian's sigma in grid cells (DPC: from `pc_relative_sigma` to `pc_relative_sigma_end`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shapepose.geometry.quaternions import conjugate, multiply, normalize
from shapepose.shape_pose.projection import Projector

STUDENT_LOSSES = ("re", "re_squared")
PAIRINGS = ("all_pairs", "first_view")


@dataclass(frozen=True)
class LossSettings:
    """Config shape_pose.losses plus the projection's sigma schedule (`settings_from_config`)."""

    student_weight: float
    student_loss: str
    pairing: str
    reprojection_scale: float
    point_keep: tuple[float, float]
    sigma: tuple[float, float]

    def __post_init__(self):
        if self.student_loss not in STUDENT_LOSSES:
            raise ValueError(f"student_loss must be one of {STUDENT_LOSSES}, got {self.student_loss!r}")
        if self.pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {PAIRINGS}, got {self.pairing!r}")
        if not self.reprojection_scale > 0:
            raise ValueError(f"reprojection_scale must be > 0, got {self.reprojection_scale}")
        if not 0 < self.point_keep[0] <= 1 or not 0 < self.point_keep[1] <= 1:
            raise ValueError(f"point_keep must lie in (0, 1], got {self.point_keep}")


def linear_schedule(start: float, end: float, step: int, steps: int) -> float:
    """start at step 0, end at the last step, linear in between."""
    t = min(max(step / max(steps - 1, 1), 0.0), 1.0)
    return float(start + (end - start) * t)


def view_pairs(n_views: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(first, second) index tensors of the n (n - 1) / 2 pairs j1 < j2."""
    first, second = torch.triu_indices(n_views, n_views, offset=1, device=device)
    return first, second


def projections(n_views: int, pairing: str, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(cloud view, pose view) index tensors of the projections one model contributes."""
    if pairing == "all_pairs":
        return view_pairs(n_views, device)
    if pairing == "first_view":
        return torch.zeros(n_views, dtype=torch.long, device=device), torch.arange(n_views, device=device)
    raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")


def dropout_clouds(n_views: int, candidates: int, pairing: str) -> int:
    """Clouds of one model that draw their own point dropout in `pair_losses`: every projection
    (P K) with "first_view", every cloud of a pair (P) with "all_pairs"."""
    P = len(projections(n_views, pairing)[0])
    return P * candidates if pairing == "first_view" else P


def point_subsets(rows: int, n_points: int, keep: float,
                  generator: torch.Generator | None) -> torch.Tensor | None:
    """(rows, M) indices (CPU) of a random subset of M = round(keep N) of n_points points for
    each of `rows` clouds; None when keep >= 1 (every point, nothing drawn)."""
    if keep >= 1.0:
        return None
    M = max(1, round(keep * n_points))
    return torch.rand(rows, n_points, generator=generator).argsort(dim=1)[:, :M]


def gather_points(points: torch.Tensor, subsets: torch.Tensor | None) -> torch.Tensor:
    """(R, N, 3) clouds -> (R, M, 3): each cloud's points of its row of `subsets` (R, M)."""
    if subsets is None:
        return points
    R, M = subsets.shape
    if R != points.shape[0]:
        raise ValueError(f"{R} point subsets for {points.shape[0]} clouds")
    return torch.gather(points, 1, subsets.to(points.device)[..., None].expand(R, M, 3))


def drop_points(points: torch.Tensor, keep: float, generator: torch.Generator | None) -> torch.Tensor:
    """(R, N, 3) -> (R, M, 3): a random subset of M = round(keep N) points of every cloud."""
    R, N, _ = points.shape
    return gather_points(points, point_subsets(R, N, keep, generator))


def draw_point_subsets(models: int, n_views: int, candidates: int, n_points: int, pairing: str,
                       keep: float, generator: torch.Generator | None) -> torch.Tensor | None:
    """The point dropout `pair_losses` draws for a batch of `models` models, drawn ahead:
    (models, dropout_clouds(...), M) indices (CPU), or None when keep >= 1.

    The same draws from `generator` as `pair_losses(..., keep, generator)` makes, model-major, so
    a training process that holds models [part] of a step's global batch takes rows [part] of the
    global batch's draw and sees what one process would (and the host can draw them ahead).
    """
    rows = dropout_clouds(n_views, candidates, pairing)
    subsets = point_subsets(models * rows, n_points, keep, generator)
    return None if subsets is None else subsets.view(models, rows, -1)


def student_loss(student: torch.Tensor, teacher: torch.Tensor, kind: str = "re") -> torch.Tensor:
    """(P, 4), (P, 4) -> (P,) 1 - Re(normalize(q_S q_R^-1)) (or its square's complement)."""
    real = normalize(multiply(student, conjugate(teacher)))[..., 0]
    return 1.0 - (real * real if kind == "re_squared" else real)


def pair_losses(out: dict, masks: torch.Tensor, projector: Projector, settings: LossSettings,
                sigma: float, keep: float, generator: torch.Generator | None = None,
                subsets: torch.Tensor | None = None) -> dict:
    """The losses of one batch of B models x W views.

    out: the network's outputs over the B W images, reshaped so that points (B, W, N, 3),
    candidates (B, W, K, 4), student (B, W, 4), scale (B, W) or None; masks (B, W, G, G).
    The point dropout keeps `keep` of the points, drawn from `generator`, or, when `subsets` is
    given, the subsets `draw_point_subsets` drew ahead for these B models (keep and generator
    are then not used).
    Returns {"reprojection", "student", "total"} (scalars) and "winner" (B, P) indices, P the
    projections per model (`projections`).
    """
    points, candidates, student, scale = out["points"], out["candidates"], out["student"], out["scale"]
    B, W, N, _ = points.shape
    K = candidates.shape[2]
    source, target = projections(W, settings.pairing, points.device)
    P = len(source)
    if settings.pairing == "all_pairs" and P == 0:
        raise ValueError("the reprojection loss needs at least two views per model")
    if subsets is None:
        subsets = draw_point_subsets(B, W, K, N, settings.pairing, keep, generator)
    if subsets is not None:
        subsets = subsets.reshape(-1, subsets.shape[-1])
    clouds = points[:, source].reshape(B * P, N, 3)
    if settings.pairing == "first_view":  # DPC: every projection draws its own dropout
        clouds = clouds[:, None].expand(-1, K, -1, -1).reshape(B * P * K, N, 3)
        clouds = gather_points(clouds, subsets)
    else:
        clouds = gather_points(clouds, subsets)
        clouds = clouds[:, None].expand(-1, K, -1, -1).reshape(B * P * K, -1, 3)
    poses = candidates[:, target].reshape(B * P * K, 4)
    scales = None
    if scale is not None:
        scales = scale[:, source].reshape(B * P, 1).expand(-1, K).reshape(-1)
    silhouettes = projector.render(clouds, poses, sigma, scales)["silhouette"]
    mask = masks[:, target].reshape(B * P, 1, *masks.shape[-2:])
    errors = ((silhouettes.view(B * P, K, *masks.shape[-2:]) - mask) ** 2).sum(dim=(-2, -1))
    best, winner = errors.min(dim=1)
    reprojection = settings.reprojection_scale * best.mean()
    teacher = candidates[:, target].reshape(B * P, K, 4)
    teacher = teacher[torch.arange(B * P, device=teacher.device), winner].detach()
    students = student[:, target].reshape(B * P, 4)
    s_loss = student_loss(students, teacher, settings.student_loss).mean()
    total = reprojection + settings.student_weight * s_loss
    return {"reprojection": reprojection, "student": s_loss, "total": total,
            "winner": winner.view(B, P)}


def student_reprojection(out: dict, masks: torch.Tensor, projector: Projector, sigma: float) -> torch.Tensor:
    """(B,) mean over pairs of the squared error of the cloud of j1 seen from the STUDENT pose of j2.

    What the network does at test time (one cloud, one pose); the validation metric.
    """
    points, student, scale = out["points"], out["student"], out["scale"]
    B, W, N, _ = points.shape
    first, second = view_pairs(W, points.device)
    P = len(first)
    clouds = points[:, first].reshape(B * P, N, 3)
    scales = scale[:, first].reshape(-1) if scale is not None else None
    sil = projector.render(clouds, student[:, second].reshape(B * P, 4), sigma, scales)["silhouette"]
    target = masks[:, second].reshape(B * P, *masks.shape[-2:])
    return ((sil - target) ** 2).sum(dim=(-2, -1)).view(B, P).mean(dim=1)
