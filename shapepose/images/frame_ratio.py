"""Car-to-frame ratio normalization of the real cut-outs (seed 002 sections 3.2.1 and 3.3).

The ratio of an RGBA image is #(alpha > 0) / #(alpha == 0) (definition 1: "greater than 0" because
the synthetic renders have partly transparent pixels). A Normal is fitted to the ratios of the
synthetic TRAIN views; each real cut-out is then

1. padded with zeros to a square: the shorter dimension grows by the difference, half on each
   side, the odd pixel on a side drawn at random (figure 3.12);
2. padded by n pixels on all four sides so that a / ((s + 2n)^2 - a) = r for a ratio r drawn from
   the fitted Normal (figure 3.13): s + 2n = sqrt(a (1 + r) / r), n rounded to the nearest
   integer. r is redrawn while it is not positive. A cut-out whose square already has a ratio
   below r would need n < 0; it keeps n = 0 (it is not cropped, which would cut the car) and is
   marked `clamped` in ratios.csv;
3. resized to the synthetic size with a box (area) filter on premultiplied colour and on alpha,
   so edge pixels get fractional alpha like the antialiased renders, and colour is not darkened
   by the zero background; RGB is zeroed where the resized alpha is 0 and pure black foreground
   becomes (1, 1, 1) again (section 4.1.1.1). Because every partly covered edge pixel counts as
   car under "alpha > 0", the final ratio sits a little above the drawn target; ratios.csv keeps
   both (`padded`: exact up to rounding, `after`: as the style-transfer model sees it).

Randomness for a cut-out comes from `derive_rng(seed, "normalize", <cut-out name>)`, so adding a
photo leaves every other cut-out's bytes alone. The 80/20 split ranks cut-outs by a uniform drawn
from `derive_rng(seed, "split", <name>)` and puts the lowest round(0.8 n) in train: exactly 80/20,
and one added cut-out moves at most one other across the boundary.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from shapepose.errors import InputError
from shapepose.images.rgba import read_rgba, resize_rgba
from shapepose.io import atomic_dir, atomic_file
from shapepose.seeding import derive_rng
from shapepose.tables import write_csv

log = logging.getLogger(__name__)


def frame_ratio(alpha: np.ndarray) -> float:
    """alpha: (H, W) any dtype -> #(alpha > 0) / #(alpha == 0); inf when there is no background."""
    foreground = int(np.count_nonzero(alpha))
    background = alpha.size - foreground
    return foreground / background if background else math.inf


def fit_normal(ratios: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of the ratios."""
    ratios = np.asarray(ratios, dtype=np.float64)
    if len(ratios) < 2 or not np.all(np.isfinite(ratios)):
        raise ValueError("need at least two finite ratios to fit a Normal")
    return float(ratios.mean()), float(ratios.std(ddof=1))


def synthetic_ratios(dataset, split: str = "train") -> tuple[pd.DataFrame, int]:
    """Ratio of every view of every model in one split of a DPC dataset, and the image size.

    dataset: a `shapepose.images.dpc.DPCDataset`. Returns a table (model, view, ratio) and the
    side of the (square) renders; views of another size raise `InputError`.
    """
    rows, size = [], None
    models = dataset.split(split)
    if not models:
        raise InputError(getattr(dataset, "root", "synthetic dataset"), f"split {split!r} is empty")
    for model in tqdm(models, desc=f"ratios {split}", unit="model", file=sys.stderr):
        for view in range(dataset.n_views):
            rgba = dataset.load_view(model, view)
            if size is None:
                size = rgba.shape[0]
            if rgba.shape[:2] != (size, size):
                raise InputError(dataset.image_path(model, view),
                                 f"render is {rgba.shape[1]}x{rgba.shape[0]}, expected {size}x{size}")
            rows.append({"model": model, "view": view, "ratio": frame_ratio(rgba[..., 3])})
    return pd.DataFrame(rows, columns=["model", "view", "ratio"]), int(size)


def fit_frame_ratio(dataset, summary: str | Path, table: str | Path, split: str = "train") -> dict:
    """Fit the Normal to one split's ratios; write the summary JSON and the per-view table CSV."""
    ratios, size = synthetic_ratios(dataset, split)
    mean, std = fit_normal(ratios["ratio"].to_numpy())
    fitted = {"mean": mean, "std": std, "n": len(ratios), "split": split, "size": size,
              "n_models": int(ratios["model"].nunique())}
    log.info("synthetic %s: %d views, ratio mean %.4f std %.4f, size %d", split, len(ratios),
             mean, std, size)
    write_csv(ratios, table)
    with atomic_file(summary) as tmp:
        tmp.write_text(json.dumps(fitted, indent=2) + "\n")
    return fitted


def pad_to_square(rgba: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """rgba: (h, w, C) -> (s, s, C) with s = max(h, w), zero padded; and (top, bottom, left, right).

    The odd pixel of an odd difference goes to the first or the second side with equal chance.
    """
    h, w = rgba.shape[:2]
    diff = abs(h - w)
    first = diff // 2 + (diff % 2) * int(rng.integers(2))
    second = diff - first
    pads = (first, second, 0, 0) if h < w else (0, 0, first, second)
    top, bottom, left, right = pads
    return np.pad(rgba, ((top, bottom), (left, right), (0, 0))), pads


def ratio_padding(foreground: int, side: int, ratio: float) -> int:
    """n such that foreground / ((side + 2n)^2 - foreground) is nearest `ratio`; may be negative."""
    target_side = math.sqrt(foreground * (1.0 + ratio) / ratio)
    return int(round((target_side - side) / 2.0))


def draw_ratio(mean: float, std: float, rng: np.random.Generator, max_draws: int = 1000) -> float:
    """A ratio from Normal(mean, std) truncated to positive values (redrawn while <= 0)."""
    for _ in range(max_draws):
        r = float(rng.normal(mean, std))
        if r > 0:
            return r
    raise ValueError(f"Normal({mean}, {std}) gives no positive ratio in {max_draws} draws")


def normalize_cutout(rgba: np.ndarray, mean: float, std: float, size: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One cut-out through square padding, ratio padding and resizing (see the module docstring).

    rgba: (h, w, 4) uint8. Returns the (size, size, 4) uint8 image and the row of ratios.csv.
    """
    square, _ = pad_to_square(rgba, rng)
    side = square.shape[0]
    foreground = int(np.count_nonzero(square[..., 3]))
    if foreground == 0:
        raise ValueError("the cut-out has no foreground pixel")
    target = draw_ratio(mean, std, rng)
    n = ratio_padding(foreground, side, target)
    clamped = n < 0
    n = max(n, 0)
    padded = np.pad(square, ((n, n), (n, n), (0, 0)))
    final = resize_rgba(padded, size)
    row = {"before": frame_ratio(rgba[..., 3]), "square": frame_ratio(square[..., 3]),
           "target": target, "padded": frame_ratio(padded[..., 3]),
           "after": frame_ratio(final[..., 3]), "pad": n, "clamped": clamped,
           "side": side + 2 * n}
    return final, row


def split_train_test(names: list[str], seed: int, train_fraction: float = 0.8) -> dict[str, str]:
    """name -> "train" | "test": exactly round(train_fraction n) in train, stable per name."""
    keys = sorted(names)
    draws = np.array([derive_rng(seed, "split", k).random() for k in keys])
    order = np.argsort(draws, kind="stable")
    n_train = int(round(train_fraction * len(keys)))
    split = {}
    for rank, i in enumerate(order):
        split[keys[i]] = "train" if rank < n_train else "test"
    return split


def normalize_segments(cutouts: str | Path, fitted: str | Path, train_dir: str | Path,
                       test_dir: str | Path, ratios_csv: str | Path, seed: int,
                       train_fraction: float = 0.8) -> pd.DataFrame:
    """Normalize every cut-out PNG of a directory; write train/test directories and ratios.csv."""
    fit = json.loads(Path(fitted).read_text())
    mean, std, size = float(fit["mean"]), float(fit["std"]), int(fit["size"])
    paths = sorted(Path(cutouts).glob("*.png"))
    split = split_train_test([p.name for p in paths], seed, train_fraction)
    rows = []
    with atomic_dir(train_dir) as train, atomic_dir(test_dir) as test:
        for path in tqdm(paths, desc="normalize", unit="cutout", file=sys.stderr):
            rgba = read_rgba(path, what="cut-out")
            try:
                image, row = normalize_cutout(rgba, mean, std, size,
                                              derive_rng(seed, "normalize", path.name))
            except ValueError as exc:
                raise InputError(path, str(exc)) from None
            out = train if split[path.name] == "train" else test
            Image.fromarray(image, "RGBA").save(out / path.name)
            rows.append({"cutout": path.name, "split": split[path.name], **row})
        table = pd.DataFrame(rows, columns=["cutout", "split", "before", "square", "target", "padded",
                                            "after", "pad", "clamped", "side"])
        write_csv(table, ratios_csv)
    if len(table):
        before = table["before"][np.isfinite(table["before"])]  # a box-filling mask has no background
        log.info("%d cut-outs (%d train); ratio before %.3f +- %.3f (%d infinite), after %.3f +- "
                 "%.3f; %d clamped", len(table), int((table["split"] == "train").sum()),
                 before.mean(), before.std(), len(table) - len(before), table["after"].mean(),
                 table["after"].std(), int(table["clamped"].sum()))
    else:
        log.warning("no cut-outs to normalize")
    return table
