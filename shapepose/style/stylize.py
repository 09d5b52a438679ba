"""Stylize a synthetic dataset with a trained G: every render of the train, val and test splits.

The output is a copy of the DPC layout (renders/, gt/downsampled/, splits/), so the downstream
trainer reads a stylized set with the same reader as the original:

    renders/<category>/<model>/render_k.png   RGB from G (8 bits), alpha copied from the input
    renders/<category>/<model>/camera_k.mat   copied byte for byte
    gt/downsampled/<category>/<model>.mat     copied byte for byte
    splits/<category>_{train,val,test}.txt    copied byte for byte

G sees what it saw in training (section 4.1.1.1's colour correction, RGB in [-1, 1]); renders not
at the training size are resized for G and the result resized back. The alpha table records, for
every image, the share of pixels whose Alpha (any RGB channel above 0) differs between the input
and the stylized RGB: how far G moved the outline the annotations describe.
"""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from shapepose.images.dpc import SPLITS, read_dpc
from shapepose.images.rgba import mask_disagreement, read_rgba, resize_rgba
from shapepose.io.atomic import atomic_dir, atomic_file
from shapepose.style.data import prepare_rgba, rgba_to_signed
from shapepose.style.losses import to_uint8
from shapepose.style.train import load_generators, untrained_generator
from shapepose.training import load_exported, pick_device

log = logging.getLogger(__name__)

ALPHA_COLUMNS = ["split", "model", "view", "alpha_disagreement"]


def stylize_rgba(G: torch.nn.Module, images: list[np.ndarray], size: int,
                 device: torch.device) -> list[np.ndarray]:
    """Square uint8 RGBA renders -> the same with G's RGB and the input's alpha, at input size."""
    batch = torch.stack([rgba_to_signed(prepare_rgba(im, size)) for im in images]).to(device)
    with torch.no_grad():
        rgb = to_uint8(G(batch)).cpu().numpy()
    out = []
    for src, styled in zip(images, rgb):
        if styled.shape[0] != src.shape[0]:
            opaque = np.dstack([styled, np.full(styled.shape[:2], 255, np.uint8)])
            styled = resize_rgba(opaque, src.shape[0])[..., :3]
        out.append(np.dstack([styled, src[..., 3]]))
    return out


def alpha_disagreement_uint8(source: np.ndarray, stylized: np.ndarray) -> float:
    """Share of pixels where "alpha > 0" of the input and "any RGB > 0" of the output differ."""
    return float(mask_disagreement(source[..., 3] > 0, (stylized[..., :3] > 0).any(axis=-1)))


def _write_png(path: Path, rgba: np.ndarray) -> None:
    Image.fromarray(rgba, mode="RGBA").save(path, optimize=False)


def untrained_alpha(exported: dict, refs: list, size: int, device: torch.device,
                    batch_size: int = 16) -> dict:
    """{"n", "mean", "max"} of the alpha disagreement of G at its step-0 weights on `refs` (the
    same measure as the stylized set's alpha.csv): the baseline the trained G is compared with."""
    G = untrained_generator(exported, device)
    values = []
    for start in range(0, len(refs), batch_size):
        sources = [read_rgba(ref.path) for ref in refs[start:start + batch_size]]
        values += [alpha_disagreement_uint8(src, styled)
                   for src, styled in zip(sources, stylize_rgba(G, sources, size, device))]
    return {"n": len(values), "mean": float(np.mean(values)), "max": float(np.max(values))}


def stylize(*, model: str, synthetic: str, out: str, alpha_csv: str, device: str = "auto",
            batch_size: int = 16) -> dict:
    """Write the stylized copy of `synthetic` to `out` and the per-image table to `alpha_csv`."""
    device = pick_device(device)
    exported = load_exported(model)
    G, _ = load_generators(exported, device)
    size = int(exported["meta"]["extra"]["architecture"]["image_size"])
    dataset = read_dpc(synthetic)
    rows: list[dict] = []
    jobs = [(split, m, v) for split in SPLITS for m in dataset.split(split)
            for v in range(dataset.n_views)]
    log.info("stylizing %d renders of %s with %s (experiment %s, step %d) on %s", len(jobs),
             synthetic, model, exported["meta"]["extra"]["experiment"], exported["meta"]["step"],
             device)
    with atomic_dir(out) as tmp:
        tmp = Path(tmp)
        render_dir = tmp / "renders" / dataset.category
        for split in SPLITS:
            src = dataset.root / "splits" / f"{dataset.category}_{split}.txt"
            (tmp / "splits").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / "splits" / src.name)
        gt_out = tmp / "gt" / "downsampled" / dataset.category
        gt_out.mkdir(parents=True, exist_ok=True)
        for m in sorted({m for _, m, _ in jobs}):
            (render_dir / m).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dataset.gt_dir / f"{m}.mat", gt_out / f"{m}.mat")
            for v in range(dataset.n_views):
                camera = f"camera_{v}.mat"
                shutil.copyfile(dataset.render_dir / m / camera, render_dir / m / camera)
        for start in tqdm(range(0, len(jobs), batch_size), desc="stylize", unit="batch",
                          mininterval=2.0):
            chunk = jobs[start:start + batch_size]
            sources = [read_rgba(dataset.image_path(m, v)) for _, m, v in chunk]
            for (split, m, v), src, styled in zip(chunk, sources,
                                                  stylize_rgba(G, sources, size, device)):
                _write_png(render_dir / m / f"render_{v}.png", styled)
                rows.append({"split": split, "model": m, "view": v,
                             "alpha_disagreement": alpha_disagreement_uint8(src, styled)})
        with atomic_file(alpha_csv) as table, open(table, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=ALPHA_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    summary = {split: float(np.mean([r["alpha_disagreement"] for r in rows if r["split"] == split]))
               for split in SPLITS if any(r["split"] == split for r in rows)}
    log.info("mean alpha disagreement per split: %s",
             ", ".join(f"{k} {v:.4f}" for k, v in summary.items()))
    return summary
