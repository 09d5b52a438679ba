"""Car-to-frame ratio normalization (seed 002 section 3.2.1): fit, square and ratio padding, split."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from shapepose.images.frame_ratio import (draw_ratio, fit_frame_ratio, fit_normal, frame_ratio,
                                          normalize_cutout, normalize_segments, pad_to_square,
                                          ratio_padding, split_train_test)
from shapepose.images.rgba import resize_rgba
from shapepose.seeding import derive_rng


def blob(h, w, seed=0):
    """An (h, w, 4) uint8 cut-out: random colour, an elliptical mask touching all four sides."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((yy - (h - 1) / 2) / (h / 2)) ** 2 + ((xx - (w - 1) / 2) / (w / 2)) ** 2 <= 1
    rgb = rng.integers(1, 256, (h, w, 3), dtype=np.uint8) * inside[..., None]
    return np.dstack([rgb, np.where(inside, 255, 0)]).astype(np.uint8)


def test_frame_ratio_counts_alpha_above_zero():
    alpha = np.zeros((3, 4), np.uint8)
    alpha[0, :2] = 255
    alpha[2, 3] = 1  # partly transparent still counts as car (definition 1)
    assert frame_ratio(alpha) == 3 / 9
    assert frame_ratio(np.full((2, 2), 9)) == math.inf


def test_fitted_normal_recovers_a_known_normal():
    samples = np.random.default_rng(5).normal(0.21, 0.03, 20000)
    mean, std = fit_normal(samples)
    # 5 standard errors: the mean's is 0.03 / sqrt(n); the std's about 0.03 / sqrt(2 n)
    assert abs(mean - 0.21) < 5 * 0.03 / math.sqrt(20000)
    assert abs(std - 0.03) < 5 * 0.03 / math.sqrt(2 * 20000)


@pytest.mark.parametrize("h, w", [(40, 70), (71, 40), (33, 33), (10, 11)])
def test_square_padding_keeps_the_mask_and_centres_it(h, w):
    rgba = blob(h, w)
    square, (top, bottom, left, right) = pad_to_square(rgba, np.random.default_rng(0))
    s = max(h, w)
    assert square.shape == (s, s, 4)
    assert np.count_nonzero(square[..., 3]) == np.count_nonzero(rgba[..., 3])
    assert top + bottom == s - h and left + right == s - w
    assert abs(top - bottom) <= 1 and abs(left - right) <= 1
    assert (square[top:top + h, left:left + w] == rgba).all()


def test_the_odd_pixel_goes_to_a_seeded_side():
    rgba = blob(40, 71)  # difference 31: 15 on one side, 16 on the other
    sides = []
    for k in range(60):
        _, pads = pad_to_square(rgba, derive_rng(3, "t", k))
        again = pad_to_square(rgba, derive_rng(3, "t", k))[1]
        assert pads == again  # same seed, same side
        sides.append(pads[0] > pads[1])
    # both sides occur, about half each (binomial(60, 1/2) is in 15..45 with overwhelming odds)
    assert 15 <= sum(sides) <= 45


@pytest.mark.parametrize("seed", range(8))
def test_ratio_padding_hits_the_target_within_one_pixel_row(seed):
    rng = np.random.default_rng(seed)
    s = int(rng.integers(60, 400))
    a = int(rng.integers(s * s // 4, s * s * 3 // 4))  # a car that fills a quarter to 3/4
    r = float(rng.uniform(0.05, 0.4))  # below a/(s^2 - a) >= 1/3, so n >= 0
    n = ratio_padding(a, s, r)
    side = s + 2 * n
    # the exact side solving a / (L^2 - a) = r; rounding n moves L by at most 1 pixel
    exact = math.sqrt(a * (1 + r) / r)
    assert abs(side - exact) <= 1.0
    achieved = a / (side ** 2 - a)
    bound = max(abs(a / ((exact + 1) ** 2 - a) - r), abs(a / ((exact - 1) ** 2 - a) - r))
    assert abs(achieved - r) <= bound
    # and no other n does better than one step away (brute force)
    best = min(range(0, 2 * n + 10), key=lambda m: abs(a / ((s + 2 * m) ** 2 - a) - r))
    assert abs(best - n) <= 1


def test_a_cutout_already_below_the_target_is_not_cropped():
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[40:50, 40:50] = 255  # ratio 100 / 9900, far below a target of 0.2
    assert ratio_padding(100, 100, 0.2) < 0
    out, row = normalize_cutout(rgba, 0.2, 0.01, 50, np.random.default_rng(0))
    assert row["clamped"] and row["pad"] == 0 and out.shape == (50, 50, 4)


def test_draws_are_positive():
    rng = np.random.default_rng(0)
    assert all(draw_ratio(0.01, 0.05, rng) > 0 for _ in range(500))


def test_resize_keeps_colour_and_zeroes_the_background():
    rgba = np.zeros((90, 90, 4), np.uint8)
    rgba[20:61, 25:70] = (200, 120, 40, 255)  # edges fall inside output pixels
    rgba[30, 30] = (0, 0, 0, 255)  # a black car pixel
    out = resize_rgba(rgba, 30)
    alpha = out[..., 3]
    fg = alpha > 0
    # premultiplied averaging: partly covered edge pixels keep the car's colour, not a dark fringe
    edge = fg & (alpha < 255)
    assert edge.any()
    assert (np.abs(out[edge][:, :3].astype(int) - (200, 120, 40)) <= 1).all()
    assert (out[~fg][:, :3] == 0).all()
    # total coverage is preserved by the area filter: sum of alpha / 255 = car pixels / 9
    assert alpha.sum() / 255 == pytest.approx(41 * 45 / 9, abs=0.5 * 30)
    black = np.zeros((9, 9, 4), np.uint8)
    black[..., 3] = 255
    assert (resize_rgba(black, 3)[..., :3] == 1).all()  # colour correction after resizing


@pytest.mark.parametrize("seed", range(4))
def test_normalized_cutout_ratio_before_resizing_is_the_drawn_target(seed):
    rgba = blob(150 + 13 * seed, 260 - 7 * seed, seed)
    out, row = normalize_cutout(rgba, 0.22, 0.02, 64, derive_rng(seed, "n"))
    a = np.count_nonzero(rgba[..., 3])
    exact = math.sqrt(a * (1 + row["target"]) / row["target"])
    bound = max(abs(a / ((exact + 1) ** 2 - a) - row["target"]),
                abs(a / ((exact - 1) ** 2 - a) - row["target"]))
    assert abs(row["padded"] - row["target"]) <= bound
    assert out.shape == (64, 64, 4) and not row["clamped"]
    assert row["square"] == pytest.approx(a / (max(rgba.shape[:2]) ** 2 - a))


def test_split_is_80_20_deterministic_and_stable():
    names = [f"c{k:03d}.png" for k in range(50)]
    split = split_train_test(names, seed=9)
    assert sum(v == "train" for v in split.values()) == 40
    assert split == split_train_test(list(reversed(names)), seed=9)
    assert split != split_train_test(names, seed=10)
    grown = split_train_test(names + ["new.png"], seed=9)
    assert sum(grown[n] != split[n] for n in names) <= 1


class FakeDPC:
    """The reader's interface over in-memory renders with known alphas."""

    n_views = 2

    def __init__(self, alphas):
        self.alphas = alphas  # {model: [alpha per view]}

    def split(self, name):
        return sorted(self.alphas) if name == "train" else []

    def image_path(self, model, view):
        return f"/fake/{model}/render_{view}.png"

    def load_view(self, model, view):
        alpha = self.alphas[model][view]
        return np.dstack([np.zeros(alpha.shape + (3,), np.uint8), alpha])


def test_fit_frame_ratio_on_known_renders(tmp_path):
    def alpha(k):
        a = np.zeros((8, 8), np.uint8)
        a.reshape(-1)[:k] = 128
        return a

    data = FakeDPC({"m1": [alpha(8), alpha(16)], "m2": [alpha(24), alpha(32)]})
    fit = fit_frame_ratio(data, tmp_path / "fit.json", tmp_path / "ratios.csv")
    ratios = [8 / 56, 16 / 48, 24 / 40, 32 / 32]
    assert fit["n"] == 4 and fit["size"] == 8 and fit["split"] == "train"
    assert fit["mean"] == pytest.approx(np.mean(ratios))
    assert fit["std"] == pytest.approx(np.std(ratios, ddof=1))
    assert json.loads((tmp_path / "fit.json").read_text()) == fit
    assert pd.read_csv(tmp_path / "ratios.csv")["ratio"].tolist() == pytest.approx(ratios)
    data.alphas["m2"][1] = np.zeros((9, 9), np.uint8)
    with pytest.raises(ValueError, match="render_1.png"):
        fit_frame_ratio(data, tmp_path / "fit2.json", tmp_path / "ratios2.csv")


def test_normalize_segments_writes_the_split_and_is_byte_identical(tmp_path):
    cutouts = tmp_path / "accepted"
    cutouts.mkdir()
    for k in range(10):
        Image.fromarray(blob(100 + 5 * k, 180 - 3 * k, k), "RGBA").save(cutouts / f"p{k}__000.png")
    (tmp_path / "fit.json").write_text(json.dumps({"mean": 0.2, "std": 0.03, "size": 32}))

    def run(tag):
        out = tmp_path / tag
        table = normalize_segments(cutouts, tmp_path / "fit.json", out / "train", out / "test",
                                   out / "ratios.csv", seed=4)
        return out, table

    first, table = run("a")
    second, _ = run("b")
    names = sorted(p.name for p in (first / "train").iterdir())
    assert len(names) == 8 and len(list((first / "test").iterdir())) == 2
    for split in ("train", "test"):
        for path in (first / split).iterdir():
            assert path.read_bytes() == (second / split / path.name).read_bytes()
            assert np.asarray(Image.open(path)).shape == (32, 32, 4)
    assert (first / "ratios.csv").read_bytes() == (second / "ratios.csv").read_bytes()
    assert len(table) == 10 and not table["clamped"].any()
    assert table["after"].mean() == pytest.approx(0.2, abs=0.06)
