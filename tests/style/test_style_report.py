"""The per-experiment style-transfer report: numbers against numpy, grid layout, bad input, formats."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from shapepose.errors import InputError
from shapepose.style.networks import build_discriminator, build_generator
from shapepose.style.report import (BLOCK_GAP, CAPTION_HEIGHT, GREY, LABEL_HEIGHT, choose_samples,
                                    final_losses, report_style_transfer)

SIZE = 32
CATEGORY = "02958343"
SETTINGS = {"lambda_A": 10.0, "lambda_B": 10.0, "lambda_idt": 0.1, "lambda_alpha_G": 2.0,
            "lambda_alpha_F": 0.0, "lambda_resdist_G": 0.0, "lambda_resdist_F": 0.0,
            "alpha_norm": "squared_l1", "alpha_surrogate": "linear", "alpha_temperature": 0.005,
            "alpha_margin": 2.5,
            "lr_g": 2e-4, "lr_d": 1e-4, "beta1": 0.5, "lr_final": None, "decay_start_epoch": 0.0,
            "decay_epochs": 15.0, "label_smoothing": 0.1, "gp_weight": 10.0, "spectral_norm": True}
# the loss columns a run with SETTINGS records (idt on, alpha_G on, gradient penalty on)
LOSS_COLUMNS = ["gan_G", "gan_F", "cycle_A", "cycle_B", "idt_G", "idt_F", "alpha_G", "G_total",
                "D_Y", "D_X", "gp_Y", "gp_X"]
N_RECORDED = 30


def _disk_image(colour: tuple[int, int, int], radius: float) -> np.ndarray:
    """(SIZE, SIZE, 4) uint8: an opaque disk of one colour on transparent black."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    inside = (yy - SIZE / 2 + 0.5) ** 2 + (xx - SIZE / 2 + 0.5) ** 2 <= radius ** 2
    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    rgba[inside] = (*colour, 255)
    return rgba


def _synthetic(root: Path) -> dict[str, tuple[int, int, int]]:
    """A DPC layout of 2 views per model: 3 train, 1 val, 2 test models; test colours by model."""
    splits = {"train": ["t0", "t1", "t2"], "val": ["v0"], "test": ["a", "b"]}
    colours = {"a": [(200, 40, 40), (40, 200, 40)], "b": [(40, 40, 200), (200, 200, 40)]}
    (root / "splits").mkdir(parents=True)
    for split, models in splits.items():
        (root / "splits" / f"{CATEGORY}_{split}.txt").write_text("\n".join(models) + "\n")
        for model in models:
            folder = root / "renders" / CATEGORY / model
            folder.mkdir(parents=True)
            for view in range(2):
                colour = colours[model][view] if model in colours else (90, 90, 90)
                Image.fromarray(_disk_image(colour, 9)).save(folder / f"render_{view}.png")
    return {f"{m}/{v}": colours[m][v] for m in colours for v in range(2)}


def _model(path: Path) -> None:
    """An export in train_style_transfer's format with tiny networks (width 2, one block)."""
    torch.manual_seed(0)
    architecture = {"ngf": 2, "ndf": 2, "n_blocks": 1, "image_size": SIZE}
    summary = {"n_x": 6, "n_y": 2, "n_val": 2, "steps_per_epoch": 3, "epochs": 20.0,
               "best_step": 40,
               "best_metrics": {"val_score": 1.5, "val_fd_ratio": 0.9, "val_alpha_disagreement": 0.02},
               "resumed_from": None, "phi": "random (seed 18)"}
    meta = {"step": 40, "which": "best", "seed": 18, "metrics": dict(summary["best_metrics"]),
            "extra": {"experiment": "e1", "settings": SETTINGS, "architecture": architecture,
                      "summary": summary}}
    torch.save({"G": build_generator(2, 1).state_dict(), "F": build_generator(2, 1).state_dict(),
                "D_X": build_discriminator(2, False).state_dict(),
                "D_Y": build_discriminator(2, False).state_dict(), "meta": meta}, path)


def _losses(path: Path, drop: str | None = None) -> pd.DataFrame:
    """A history as the trainer writes it: every 2nd step recorded, validation every 10th step."""
    rng = np.random.default_rng(7)
    steps = 2 * np.arange(1, N_RECORDED + 1)
    table = pd.DataFrame({"step": steps})
    for column in LOSS_COLUMNS:
        table[column] = rng.uniform(0.05, 3.0, N_RECORDED)
    table["lr_G"], table["lr_D"] = 2e-4, 1e-4
    for column in ("val_score", "val_fd_ratio", "val_alpha_disagreement"):
        table[column] = np.where(steps % 10 == 0, rng.uniform(0, 1, N_RECORDED), np.nan)
    if drop:
        table = table.drop(columns=[drop])
    table.to_csv(path, index=False)
    return table


def _alpha(path: Path) -> np.ndarray:
    """The stylize stage's alpha CSV; returns the test split's disagreements."""
    rows = [("train", "t0", 0, 0.9), ("val", "v0", 1, 0.8), ("test", "a", 0, 0.01),
            ("test", "a", 1, 0.07), ("test", "b", 0, 0.0), ("test", "b", 1, 0.03)]
    pd.DataFrame(rows, columns=["split", "model", "view", "alpha_disagreement"]).to_csv(path, index=False)
    return np.array([0.01, 0.07, 0.0, 0.03])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("style_report_inputs")
    colours = _synthetic(tmp_path / "synthetic")
    _model(tmp_path / "model.pt")
    history = _losses(tmp_path / "losses.csv")
    alpha = _alpha(tmp_path / "alpha.csv")
    real = tmp_path / "real_test"
    real.mkdir()
    for k, colour in enumerate([(250, 120, 0), (0, 120, 250)]):
        Image.fromarray(_disk_image(colour, 12)).save(real / f"cut_{k}.png")
    return {"root": tmp_path, "colours": colours, "history": history, "alpha": alpha, "real": real}


def _run(inputs, out: Path, *, real=None, losses=None, window=7, n_samples=3, experiment="e1"):
    paths = {"curves_png": out / "curves.png", "grid_png": out / "grid.png",
             "table_csv": out / "table.csv", "table_md": out / "table.md"}
    root = inputs["root"]
    result = report_style_transfer(
        model=str(root / "model.pt"), losses=str(losses or root / "losses.csv"),
        alpha=str(root / "alpha.csv"), synthetic=str(root / "synthetic"),
        real_test=str(real or inputs["real"]), experiment=experiment, window=window,
        n_samples=n_samples, seed=3, device="cpu", **{k: str(v) for k, v in paths.items()})
    return result, paths


WINDOW = 7


@pytest.fixture(scope="module")
def report(inputs, tmp_path_factory):
    """One report with real cut-outs, window 7 and 3 samples, shared by the tests that read it."""
    return _run(inputs, tmp_path_factory.mktemp("style_report"), window=WINDOW, n_samples=3,
                experiment="stabilized")


def test_final_value_and_oscillation_match_numpy(inputs, report):
    window = WINDOW
    result, paths = report
    table = pd.read_csv(paths["table_csv"])
    losses = table[table["section"] == "loss"].set_index("name")
    assert sorted(losses.index) == sorted(LOSS_COLUMNS)
    for column in LOSS_COLUMNS:
        last = inputs["history"][column].to_numpy()[-window:]  # the last 7 recorded rows
        assert result["final"][column] == pytest.approx(np.mean(last), rel=1e-12)
        assert result["oscillation"][column] == pytest.approx(np.std(last), rel=1e-12)
        # the tables round to 4 significant digits
        assert float(losses.loc[column, "value"]) == pytest.approx(np.mean(last), rel=6e-4)
        assert float(losses.loc[column, "oscillation"]) == pytest.approx(np.std(last), rel=6e-4)
        assert losses.loc[column, "n"] == window
    alpha = table[table["section"] == "alpha disagreement (test)"].set_index("name")["value"]
    assert float(alpha["mean"]) == pytest.approx(inputs["alpha"].mean(), rel=6e-4)
    assert float(alpha["max"]) == pytest.approx(0.07)
    assert int(alpha["images"]) == 4
    assert 0.0 <= float(alpha["untrained mean"]) <= 1.0  # G at its step-0 weights (the baseline)
    training = table[table["section"] == "training"].set_index("name")["value"]
    assert int(training["steps trained"]) == 2 * N_RECORDED
    assert float(training["epochs"]) == pytest.approx(2 * N_RECORDED / 3, rel=6e-4)
    assert "seconds per step" not in training  # wall-clock time stays out of outputs (same bytes)


def test_window_longer_than_the_history_takes_every_recorded_value():
    history = pd.DataFrame({"step": [1, 2, 3, 4], "D_X": [1.0, np.nan, 2.0, 6.0]})
    row = final_losses(history, ["D_X"], window=1000).iloc[0]
    assert row["n"] == 3  # the empty cell is not a recorded value
    assert row["final"] == pytest.approx(3.0)
    assert row["oscillation"] == pytest.approx(np.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 3))


def _cell(grid: np.ndarray, row: int, column: int, block: int = 0) -> np.ndarray:
    left = block * (3 * SIZE + BLOCK_GAP) + column * SIZE
    top = LABEL_HEIGHT + row * SIZE
    return grid[top:top + SIZE, left:left + SIZE]


def _over_grey(colour: tuple[int, int, int], radius: float) -> np.ndarray:
    """What an opaque disk image looks like shown through its own alpha over mid-grey."""
    rgba = _disk_image(colour, radius)
    return np.where(rgba[..., 3:] == 255, rgba[..., :3], GREY).astype(np.uint8)


def test_grid_layout_and_contents(inputs, report):
    result, paths = report
    grid = np.asarray(Image.open(paths["grid_png"]).convert("RGB"))
    # 3 rows (3 of the 4 synthetic test views; both real cut-outs), two blocks of three columns
    assert grid.shape[:2] == (LABEL_HEIGHT + 3 * SIZE + CAPTION_HEIGHT, 6 * SIZE + BLOCK_GAP)
    shown = result["grid_synthetic"]
    assert len(shown) == 3 and len(set(shown)) == 3 and set(shown) <= set(inputs["colours"])
    corner = (1, 1)
    for row, name in enumerate(shown):
        # outside the input's silhouette the input shows the mid-grey background
        assert tuple(_cell(grid, row, 0)[corner]) == (GREY,) * 3
        # the input column is the test render itself, over grey
        np.testing.assert_array_equal(_cell(grid, row, 0), _over_grey(inputs["colours"][name], 9))
    assert result["grid_real"] == ["cut_0.png", "cut_1.png"]
    np.testing.assert_array_equal(_cell(grid, 0, 0, block=1), _over_grey((250, 120, 0), 12))
    np.testing.assert_array_equal(_cell(grid, 1, 0, block=1), _over_grey((0, 120, 250), 12))
    # the real block has only two rows: its third row is left blank
    assert (_cell(grid, 2, 1, block=1) == 255).all()


def test_grid_without_real_cutouts_has_one_block_and_is_reproducible(inputs, tmp_path):
    empty = tmp_path / "no_real"
    empty.mkdir()
    result, paths = _run(inputs, tmp_path / "a", real=empty, n_samples=10)
    grid = Image.open(paths["grid_png"])
    assert grid.size == (3 * SIZE, LABEL_HEIGHT + 4 * SIZE + CAPTION_HEIGHT)  # all 4 test views
    assert result["grid_real"] == []
    _, again = _run(inputs, tmp_path / "b", real=empty, n_samples=10)
    assert Path(again["grid_png"]).read_bytes() == Path(paths["grid_png"]).read_bytes()


def test_sample_choice_follows_seed_and_experiment():
    synthetic, real = choose_samples(1000, 50, 8, seed=3, experiment="e1")
    assert len(set(synthetic)) == 8 and len(set(real)) == 8
    assert synthetic.max() < 1000 and real.max() < 50 and (np.diff(synthetic) > 0).all()
    again = choose_samples(1000, 50, 8, seed=3, experiment="e1")
    np.testing.assert_array_equal(again[0], synthetic)
    np.testing.assert_array_equal(again[1], real)
    # 8 of 1000 drawn again alike by chance: probability about 1e-19
    assert not np.array_equal(choose_samples(1000, 50, 8, seed=4, experiment="e1")[0], synthetic)
    assert not np.array_equal(choose_samples(1000, 50, 8, seed=3, experiment="e2")[0], synthetic)


def test_missing_loss_column_names_the_file_and_writes_nothing(inputs, tmp_path):
    bad = tmp_path / "bad_losses.csv"
    _losses(bad, drop="gp_X")  # the settings turn the gradient penalty on
    out = tmp_path / "out"
    with pytest.raises(InputError, match="gp_X") as caught:
        _run(inputs, out, losses=bad)
    assert str(bad) in str(caught.value)
    assert not out.exists() or not any(out.iterdir())


def test_outputs_are_valid_png_csv_and_markdown(report):
    _, paths = report
    for key in ("curves_png", "grid_png"):
        assert Path(paths[key]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(paths[key]) as image:
            image.verify()
    with Image.open(paths["curves_png"]) as curves:
        assert curves.size[0] == 1200
    with open(paths["table_csv"], newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:4] == ["experiment", "section", "name", "value"]
    assert all(len(r) == len(rows[0]) for r in rows) and all(r[0] == "stabilized" for r in rows[1:])
    settings = {r[2]: r[3] for r in rows if r[1] == "setting"}
    assert settings["gp_weight"] == "10" and settings["spectral_norm"] == "True"
    markdown = Path(paths["table_md"]).read_text()
    assert markdown.startswith("## ") and "stabilized" in markdown.splitlines()[0]
    assert not list(Path(paths["grid_png"]).parent.glob(".*.partial"))
