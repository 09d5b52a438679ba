"""What a reader looks at for one style-transfer experiment: loss curves, a sample grid, a table.

The curves show every recorded loss term against the step, each as its raw line under a trailing
mean over `window` recorded steps, so the smoothed line ends at the table's "final" value. The
grid follows seed 002 figures 6.6 and 6.7: test samples x | G(x) | F(G(x)) and, when held-out real
cut-outs exist, y | F(y) | G(F(y)). The table gives, per loss term, the final value (mean over the
last `window` recorded steps) and its oscillation (population standard deviation, numpy's default,
over the same steps), then the run's length, the best checkpoint's validation metrics,
the alpha disagreement on the synthetic test split and the experiment's settings.
"""

from __future__ import annotations

import logging
import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw, ImageFont

from shapepose.errors import InputError
from shapepose.io import atomic_file
from shapepose.seeding import derive_rng
from shapepose.style.data import Domain, ImageRef, cutout_refs, synthetic_refs
from shapepose.style.losses import to_uint8
from shapepose.style.stylize import untrained_alpha
from shapepose.style.train import generate, load_generators
from shapepose.tables import markdown, read_table, write_csv, write_markdown
from shapepose.training import load_exported, pick_device

log = logging.getLogger(__name__)

# The loss columns of the trainer's history, in the order of L_Generators and then the critics.
GENERATOR_TERMS = ("gan_G", "gan_F", "cycle_A", "cycle_B", "idt_G", "idt_F", "alpha_G", "alpha_F",
                   "resdist_G", "resdist_F", "G_total")
CRITIC_TERMS = ("D_X", "D_Y", "gp_X", "gp_Y")
VALIDATION_COLUMNS = ("val_score", "val_fd_ratio", "val_alpha_disagreement")
LEARNING_RATE_COLUMNS = ("lr_G", "lr_D")
ALPHA_COLUMNS = ("split", "model", "view", "alpha_disagreement")

# Grid layout (pixels): a header row of column labels, a gap between the synthetic and the real
# block, and a caption strip of CAPTION_LINES lines under the images.
LABEL_HEIGHT = 20
BLOCK_GAP = 8
CAPTION_LINES = 3
CAPTION_LINE_HEIGHT = 14
CAPTION_HEIGHT = CAPTION_LINES * CAPTION_LINE_HEIGHT + 6
GREY = 128  # the background the stylized images are shown over
SYNTHETIC_LABELS = ("synthetic x", "G(x)", "F(G(x))")
REAL_LABELS = ("real y", "F(y)", "G(F(y))")
GRID_CAPTION = ("Mid-grey marks Alpha = 0: the input's alpha, and for generated images the "
                "pixels G or F left exactly black (8-bit 0), so a moved outline shows.")


# ----------------------------------------------------------------------------- reading inputs

def expected_loss_columns(settings: dict) -> list[str]:
    """The loss columns a run with these settings records (terms with weight 0 are not computed)."""
    columns = ["gan_G", "gan_F", "cycle_A", "cycle_B"]
    if settings["lambda_idt"] > 0:
        columns += ["idt_G", "idt_F"]
    for term in ("alpha_G", "alpha_F", "resdist_G", "resdist_F"):
        if settings[f"lambda_{term}"] > 0:
            columns.append(term)
    columns += ["G_total", "D_X", "D_Y"]
    if settings["gp_weight"] > 0:
        columns += ["gp_X", "gp_Y"]
    return columns


def read_losses(path: str | Path, required: list[str]) -> pd.DataFrame:
    """The trainer's history (one row per recorded step), sorted by step.

    A file that cannot be parsed, has no rows, or lacks `step` or any of `required` raises one
    InputError naming the file and every missing column.
    """
    history = read_table(path, "losses CSV (this experiment's settings record these columns)",
                         ["step", *required])
    if history.empty:
        raise InputError(path, "losses CSV has no rows")
    try:
        history = history.apply(pd.to_numeric)
    except (ValueError, TypeError) as exc:
        raise InputError(path, f"losses CSV has a non-numeric cell: {exc}") from None
    return history.sort_values("step", kind="stable").reset_index(drop=True)


def loss_terms(history: pd.DataFrame) -> list[str]:
    """The loss columns present, generator terms first, then the critics' (known order)."""
    return [c for c in (*GENERATOR_TERMS, *CRITIC_TERMS) if c in history.columns]


def read_alpha(path: str | Path) -> pd.DataFrame:
    """The stylize stage's per-image alpha disagreements; checked for columns and range [0, 1]."""
    table = read_table(path, "alpha CSV", ALPHA_COLUMNS)
    values = pd.to_numeric(table["alpha_disagreement"], errors="coerce")
    bad = ~values.between(0.0, 1.0)  # NaN (empty or not a number) counts as bad too
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(path, f"alpha_disagreement must be a share in [0, 1], got "
                               f"{table['alpha_disagreement'].iloc[row]!r}", key="alpha_disagreement",
                         frame=row)
    return table.assign(alpha_disagreement=values, split=table["split"].astype(str))


def alpha_summary(table: pd.DataFrame, path: str | Path, split: str = "test") -> dict:
    """{"n", "mean", "max"} of the alpha disagreement over one split's images."""
    values = table.loc[table["split"] == split, "alpha_disagreement"].to_numpy(dtype=np.float64)
    if len(values) == 0:
        raise InputError(path, f"alpha CSV has no rows of the {split!r} split")
    return {"n": len(values), "mean": float(values.mean()), "max": float(values.max())}


def run_meta(exported: dict, path: str | Path) -> dict:
    """meta["extra"] of an exported style-transfer model, checked for what the report reads."""
    extra = exported["meta"].get("extra") or {}
    missing = [k for k in ("settings", "architecture", "summary") if k not in extra]
    if missing:
        raise InputError(path, f"not a style-transfer export: meta.extra lacks {missing}")
    return extra


# ----------------------------------------------------------------------------- the numbers

def final_losses(history: pd.DataFrame, terms: list[str], window: int) -> pd.DataFrame:
    """Per term: mean and std (ddof 0) of its last `window` recorded values, and how many there were."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    rows = []
    for term in terms:
        values = history[term].dropna().to_numpy(dtype=np.float64)[-window:]
        rows.append({"term": term, "final": float(values.mean()) if len(values) else math.nan,
                     "oscillation": float(values.std()) if len(values) else math.nan,
                     "n": len(values)})
    return pd.DataFrame(rows, columns=["term", "final", "oscillation", "n"])


def run_facts(history: pd.DataFrame, extra: dict, exported_meta: dict) -> list[tuple[str, object]]:
    """(quantity, value) rows on how long and how well the run trained (no wall-clock time: the
    same config gives the same table; seconds per step are in the training log and timing.csv)."""
    summary = extra["summary"]
    steps = int(history["step"].max())
    per_epoch = summary.get("steps_per_epoch")
    facts: list[tuple[str, object]] = [
        ("steps trained", steps),
        ("steps per epoch", per_epoch),
        ("epochs", steps / per_epoch if per_epoch else None),
        ("synthetic training images", summary.get("n_x")),
        ("real training images", summary.get("n_y")),
        ("synthetic validation images", summary.get("n_val")),
        ("exported checkpoint", f"{exported_meta.get('which', '?')} (step {exported_meta.get('step', '?')})"),
        ("best step", summary.get("best_step")),
    ]
    for name, value in (summary.get("best_metrics") or {}).items():
        facts.append((f"best {name}", value))
    for column in LEARNING_RATE_COLUMNS:
        if column in history and history[column].notna().any():
            facts.append((f"final {column}", float(history[column].dropna().iloc[-1])))
    return facts


def significant(value, digits: int = 4) -> str:
    """A table cell: floats to `digits` significant digits, integers exact, None empty."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        if float(value).is_integer() and abs(value) < 10 ** digits:
            return str(int(value))
        return f"{value:.{digits}g}"
    return str(value)


def report_table(experiment: str, losses: pd.DataFrame, facts: list[tuple[str, object]],
                 alpha: dict, settings: dict, window: int) -> pd.DataFrame:
    """Long format: (section, name, value, oscillation, n), values already as 4-digit text."""
    rows = [{"section": "loss", "name": r.term, "value": significant(r.final),
             "oscillation": significant(r.oscillation), "n": r.n} for r in losses.itertuples()]
    rows += [{"section": "training", "name": k, "value": significant(v)} for k, v in facts]
    rows += [{"section": "alpha disagreement (test)", "name": "images", "value": str(alpha["n"])},
             {"section": "alpha disagreement (test)", "name": "mean", "value": significant(alpha["mean"])},
             {"section": "alpha disagreement (test)", "name": "max", "value": significant(alpha["max"])}]
    if "untrained_mean" in alpha:  # G at its step-0 weights on the same images: the baseline
        rows += [{"section": "alpha disagreement (test)", "name": "untrained mean",
                  "value": significant(alpha["untrained_mean"])}]
    rows += [{"section": "setting", "name": k, "value": "none" if v is None else significant(v)}
             for k, v in settings.items()]
    table = pd.DataFrame(rows, columns=["section", "name", "value", "oscillation", "n"])
    table.insert(0, "experiment", experiment)
    table["n"] = table["n"].astype("Int64")
    table["window"] = pd.array([window if s == "loss" else None for s in table["section"]], dtype="Int64")
    return table


def report_markdown(table: pd.DataFrame, experiment: str, window: int) -> str:
    """The table as Markdown under a `## ` heading naming the experiment, one sub-table per section."""
    def rows(section: str) -> pd.DataFrame:
        return table[table["section"] == section]

    blocks = [markdown(rows("loss"), title=f"Style transfer, experiment {experiment}",
                       intro=f"Final = mean over the last {window} recorded steps; oscillation = "
                             "their standard deviation (population).",
                       headers={"name": "loss term", "value": "final", "oscillation": "oscillation (std)",
                                "n": "steps in window"})]
    for section, title in (("training", "Training"),
                           ("alpha disagreement (test)", "Alpha disagreement, synthetic test split"),
                           ("setting", "Settings (loss weights and stabilizers)")):
        blocks.append(markdown(rows(section), title=title, level=3,
                               headers={"name": "quantity", "value": "value"}))
    return "\n".join(blocks)


# ----------------------------------------------------------------------------- the curves

def plot_curves(history: pd.DataFrame, path: str | Path, experiment: str, window: int) -> None:
    """Generator terms (log scale) on top; critics and validation metrics below; 1200 px wide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 8.5), dpi=100)
    grid = fig.add_gridspec(2, 2, height_ratios=(1.15, 1.0))
    ax_g, ax_d, ax_v = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    generator = [c for c in GENERATOR_TERMS if c in history]
    critic = [c for c in CRITIC_TERMS if c in history]
    _plot_smoothed(ax_g, history, generator, window, plt.get_cmap("tab20"))
    if bool((history[generator].stack() > 0).all()):
        ax_g.set_yscale("log")  # G_total is tens of times the smallest terms
    ax_g.set_title("generator terms (weighted)", fontsize=11)
    _plot_smoothed(ax_d, history, critic, window, plt.get_cmap("tab10"))
    ax_d.set_title("discriminators (halved LSGAN" + ("; gradient penalties unweighted)"
                                                     if "gp_X" in critic else ")"), fontsize=11)
    _plot_validation(ax_v, history)
    first, last = history["step"].min(), history["step"].max()
    for ax in (ax_g, ax_d, ax_v):
        ax.set_xlabel("step")
        if last > first:  # validation starts later than the losses: keep the panels aligned
            ax.set_xlim(first, last)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Style transfer, experiment {experiment}: losses (thin: every recorded step; "
                 f"thick: trailing mean of {window})", fontsize=13)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _plot_smoothed(ax, history: pd.DataFrame, columns: list[str], window: int, cmap) -> None:
    for k, column in enumerate(columns):
        series = history[["step", column]].dropna()
        colour = cmap(k % cmap.N)
        ax.plot(series["step"], series[column], color=colour, alpha=0.3, linewidth=0.8)
        smooth = series[column].rolling(window, min_periods=1).mean()
        ax.plot(series["step"], smooth, color=colour, linewidth=1.8, label=column)
    if columns:
        ax.legend(fontsize=9, ncol=2 if len(columns) > 6 else 1, loc="best")


def _plot_validation(ax, history: pd.DataFrame) -> None:
    present = [c for c in VALIDATION_COLUMNS if c in history and history[c].notna().any()]
    if not present:
        ax.text(0.5, 0.5, "no validation recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("validation", fontsize=11)
        return
    handles = []
    for column, colour in (("val_score", "tab:blue"), ("val_fd_ratio", "tab:orange")):
        if column in present:
            rows = history[["step", column]].dropna()
            handles += ax.plot(rows["step"], rows[column], "o-", color=colour, label=column)
    ax.set_ylabel("val_score, val_fd_ratio")
    ax.set_title("validation (synthetic val split)", fontsize=11)
    if "val_alpha_disagreement" in present:
        # a share in [0, 1] beside scores that can reach 100: its own axis
        twin = ax.twinx()
        rows = history[["step", "val_alpha_disagreement"]].dropna()
        handles += twin.plot(rows["step"], rows["val_alpha_disagreement"], "s--", color="tab:green",
                             label="val_alpha_disagreement (right)")
        twin.set_ylabel("alpha disagreement")
        # from 0, so that a change of a thousandth does not look like a collapse
        twin.set_ylim(0.0, min(1.0, 1.2 * float(rows["val_alpha_disagreement"].max()) + 0.01))
        ax = twin  # the legend goes on the top axes, so no line is drawn over it
    ax.legend(handles=handles, fontsize=9, loc="best", framealpha=0.9)


# ----------------------------------------------------------------------------- the sample grid

def choose_samples(n_synthetic: int, n_real: int, n_samples: int, seed: int,
                   experiment: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of the synthetic and real test images shown (at most n_samples of each)."""
    rng = derive_rng(seed, "style_report", experiment)
    synthetic = np.sort(rng.choice(n_synthetic, size=min(n_samples, n_synthetic), replace=False))
    real = np.sort(rng.choice(n_real, size=min(n_samples, n_real), replace=False)) if n_real else \
        np.zeros(0, dtype=np.int64)
    return synthetic, real


def over_grey(images: torch.Tensor, alpha: np.ndarray) -> np.ndarray:
    """(3, S, S) in [-1, 1] shown through alpha (S, S) uint8 over mid-grey -> (S, S, 3) uint8."""
    rgb = to_uint8(images).numpy().astype(np.float32)
    a = alpha.astype(np.float32)[..., None] / 255.0
    return np.rint(rgb * a + GREY * (1.0 - a)).astype(np.uint8)


def cycle_rows(domain: Domain, indices: np.ndarray, forward: torch.nn.Module,
               backward: torch.nn.Module, device: torch.device) -> list[list[np.ndarray]]:
    """Per chosen image: [input, forward(input), backward(forward(input))] over grey, (S, S, 3).

    The input is shown through its alpha; generated images through their own Alpha, so pixels a
    generator failed to leave exactly black (Alpha disagreement) are not hidden.
    """
    if len(indices) == 0:
        return []
    inputs = domain.tensor(indices)
    stylized = generate(forward, inputs, device)
    cycled = generate(backward, stylized, device)
    rows = []
    for k, index in enumerate(indices):
        alpha = domain.rgba(int(index))[..., 3]
        # a generated image through its own Alpha (seed 002 4.1.1): nothing where it is 8-bit black
        own = [np.where((to_uint8(t[k]).numpy() > 0).any(axis=-1), 255, 0).astype(np.uint8)
               for t in (stylized, cycled)]
        rows.append([over_grey(inputs[k], alpha), over_grey(stylized[k], own[0]),
                     over_grey(cycled[k], own[1])])
    return rows


def grid_size(rows: int, blocks: int, image_size: int) -> tuple[int, int]:
    """(width, height) in pixels of a grid of `rows` rows and `blocks` blocks of three columns."""
    width = 3 * blocks * image_size + (blocks - 1) * BLOCK_GAP
    return width, LABEL_HEIGHT + rows * image_size + CAPTION_HEIGHT


def compose_grid(blocks: list[tuple[tuple[str, ...], list[list[np.ndarray]]]], image_size: int,
                 caption: str) -> Image.Image:
    """Blocks of (column labels, rows of images) side by side, labels above, caption below.

    A block with fewer rows than the tallest leaves its lower cells white.
    """
    n_rows = max(len(rows) for _, rows in blocks)
    width, height = grid_size(n_rows, len(blocks), image_size)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=13)
    x0 = 0
    for labels, rows in blocks:
        for c, label in enumerate(labels):
            left = x0 + c * image_size
            text_width = draw.textlength(label, font=font)
            draw.text((left + (image_size - text_width) / 2, 3), label, fill="black", font=font)
        for r, images in enumerate(rows):
            for c, image in enumerate(images):
                canvas.paste(Image.fromarray(image), (x0 + c * image_size, LABEL_HEIGHT + r * image_size))
        x0 += 3 * image_size + BLOCK_GAP
    top = LABEL_HEIGHT + n_rows * image_size + 3
    for k, line in enumerate(_wrap(caption, width, draw, font)):
        draw.text((3, top + k * CAPTION_LINE_HEIGHT), line, fill="black", font=font)
    return canvas


def _wrap(text: str, width: int, draw: ImageDraw.ImageDraw, font) -> list[str]:
    """`text` in at most CAPTION_LINES lines that fit `width` px; an overflow ends in '...'."""
    per_char = max(draw.textlength("abcdefghijklmnopqrstuvwxyz", font=font) / 26, 1.0)
    lines = textwrap.wrap(text, width=max(int((width - 6) / per_char), 8))
    if len(lines) > CAPTION_LINES:
        lines = lines[:CAPTION_LINES]
        lines[-1] = lines[-1][: max(len(lines[-1]) - 3, 0)] + "..."
    return lines


def sample_grid(G: torch.nn.Module, F: torch.nn.Module, synthetic: list[ImageRef],
                real: list[ImageRef], image_size: int, n_samples: int, seed: int,
                experiment: str, device: torch.device) -> tuple[Image.Image, list[str], list[str]]:
    """The figure 6.6/6.7 grid and the names of the synthetic and real images in it."""
    chosen_x, chosen_y = choose_samples(len(synthetic), len(real), n_samples, seed, experiment)
    X = Domain(synthetic, image_size, "synthetic test")
    blocks = [(SYNTHETIC_LABELS, cycle_rows(X, chosen_x, G, F, device))]
    if len(chosen_y):
        Y = Domain(real, image_size, "real test")
        blocks.append((REAL_LABELS, cycle_rows(Y, chosen_y, F, G, device)))
    grid = compose_grid(blocks, image_size, GRID_CAPTION)
    return grid, [synthetic[i].name for i in chosen_x], [real[i].name for i in chosen_y]


# ----------------------------------------------------------------------------- the rule's work

def report_style_transfer(*, model: str, losses: str, alpha: str, synthetic: str, real_test: str,
                          curves_png: str, grid_png: str, table_csv: str, table_md: str,
                          experiment: str, window: int, n_samples: int, seed: int,
                          device: str) -> dict:
    """Write one experiment's curves, sample grid and table; return its headline numbers."""
    if window < 1 or n_samples < 1:
        raise ValueError(f"window and n_samples must be >= 1, got {window} and {n_samples}")
    exported = load_exported(model)
    extra = run_meta(exported, model)
    settings = dict(extra["settings"])
    history = read_losses(losses, expected_loss_columns(settings))
    alpha_test = alpha_summary(read_alpha(alpha), alpha)
    synthetic_test = synthetic_refs(synthetic, "test")
    if not synthetic_test:
        raise InputError(synthetic, "the synthetic test split lists no models")
    real = cutout_refs(real_test)

    terms = loss_terms(history)
    final = final_losses(history, terms, window)
    facts = run_facts(history, extra, exported["meta"])

    # every image is read before the first output is written, so bad input leaves none behind
    device = pick_device(device)
    untrained = untrained_alpha(exported, synthetic_test, int(extra["architecture"]["image_size"]), device)
    alpha_test = {**alpha_test, "untrained_mean": untrained["mean"]}
    log.info("alpha disagreement on the test split: trained G %.4f, G at its step-0 weights %.4f",
             alpha_test["mean"], untrained["mean"])
    table = report_table(experiment, final, facts, alpha_test, settings, window)
    G, F = load_generators(exported, device)
    image_size = int(extra["architecture"]["image_size"])
    grid, shown_x, shown_y = sample_grid(G, F, synthetic_test, real, image_size, n_samples, seed,
                                         experiment, device)
    write_csv(table, table_csv)
    write_markdown(table_md, report_markdown(table, experiment, window))
    plot_curves(history, curves_png, experiment, window)
    with atomic_file(grid_png) as tmp:
        grid.save(tmp, format="PNG")
    log.info("experiment %s: grid of %d synthetic and %d real test images (%s)", experiment,
             len(shown_x), len(shown_y), ", ".join(shown_x + shown_y))

    facts_by_name = dict(facts)
    return {
        "experiment": experiment,
        "steps": facts_by_name["steps trained"],
        "epochs": facts_by_name["epochs"],
        "best_step": extra["summary"].get("best_step"),
        "best_metrics": dict(extra["summary"].get("best_metrics") or {}),
        "window": window,
        "final": dict(zip(final["term"], final["final"])),
        "oscillation": dict(zip(final["term"], final["oscillation"])),
        "alpha_test": alpha_test,
        "grid_synthetic": shown_x,
        "grid_real": shown_y,
    }
