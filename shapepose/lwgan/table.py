"""The stabilizer study's tables and figures: seed 004's table 1 beside ours, the held-out
self-imitation metrics against both baselines, and the loss curves of every experiment.

Table 1 (`study`): per experiment, the final value of each generator loss (the mean of the
weighted term over the last `window` recorded steps of losses.csv) and its change against the
baseline's, in percent, pooled over replicates (mean ± std [95 % CI] of the replicates'
changes, each replicate against the baseline of the same replicate); each loss's oscillation
(the standard deviation over the same window) and the discriminator's mean outputs on real and
generated images (seed 004's d_real / d_fake plots). L_face is "n/a (no weights)" without a face
network. The seed's numbers stand beside ours where it gives them (table 1 for E1-E4, the text
of sections 3.2 and 3.4 for GP 10 and TTUR (1e-4, 4e-4)).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from shapepose.errors import InputError
from shapepose.io import atomic_file
from shapepose.replicates import SPREAD_NOTE, cell, summarize
from shapepose.tables import markdown, read_table, write_csv, write_markdown

LOSSES = {"face": "g_face", "tsf": "g_tsf", "rec": "g_rec"}
# seed 004: % change of L_face, L_tsf, L_rec against the baseline (None: not given)
SEED_TABLE = {
    "E1": (-12.80, -5.75, -16.54), "E2": (-2.03, -2.15, -8.66), "E3": (0.93, -1.25, 32.28),
    "E4": (-3.37, -2.49, 17.32), "gp10": (-13.0, -15.0, None), "ttur_g1_d4": (-3.0, -22.5, None),
}
METRICS = ("ssim", "psnr", "masked_l1")
BASELINES = {"untrained": "untrained (step 0)", "paste": "warped source pasted on the background"}


def final_losses(losses_csv: str | Path, window: int) -> dict[str, float]:
    """Mean and std over the last `window` rows of each loss column of losses.csv."""
    table = read_table(losses_csv, "lwgan losses.csv", required=["step", "g_rec", "g_tsf",
                                                                  "d_real", "d_fake"])
    tail = table.tail(window)
    out = {}
    for column in ("g_rec", "g_tsf", "g_face", "d_real", "d_fake"):
        if column in tail and tail[column].notna().any():
            out[column] = float(tail[column].mean())
            out[f"{column}_osc"] = float(tail[column].std(ddof=1)) if len(tail) > 1 else math.nan
        else:
            out[column] = out[f"{column}_osc"] = math.nan
    return out


def read_eval(path: str | Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read the lwgan evaluation ({exc})") from None
    for key in ("experiment", "replicate", *BASELINES, "trained"):
        if key not in data:
            raise InputError(path, "lwgan evaluation lacks this entry", key=key)
    return data


def pct(value: float, base: float) -> float:
    return 100.0 * (value - base) / base if base and np.isfinite(base) and np.isfinite(value) else math.nan


def study_table(losses: dict[tuple[str, int], str], window: int, baseline: str = "baseline"
                ) -> pd.DataFrame:
    """One row per experiment: the pooled % changes, oscillations, D outputs and the seed's."""
    finals = {key: final_losses(path, window) for key, path in losses.items()}
    experiments = list(dict.fromkeys(e for e, _ in losses))
    if baseline not in experiments:
        raise ValueError(f"the study needs the {baseline!r} experiment among {experiments}")
    rows = []
    for exp in experiments:
        reps = sorted(r for e, r in losses if e == exp)
        row = {"experiment": exp, "replicates": len(reps)}
        for short, column in LOSSES.items():
            changes = [pct(finals[(exp, r)][column], finals[(baseline, r)][column])
                       for r in reps if (baseline, r) in finals]
            stats = summarize(changes)
            row[f"delta_{short}"] = stats["mean"]
            row[f"delta_{short}_cell"] = ("n/a (no weights)" if short == "face" and stats["n"] == 0
                                          else cell(stats["mean"], stats["std"], stats["ci_low"],
                                                    stats["ci_high"], "{:+.2f}"))
            osc = summarize([finals[(exp, r)][f"{column}_osc"] for r in reps])
            row[f"osc_{short}"] = osc["mean"]
        for column in ("d_real", "d_fake"):
            row[column] = summarize([finals[(exp, r)][column] for r in reps])["mean"]
        seed = SEED_TABLE.get(exp)
        for i, short in enumerate(LOSSES):
            row[f"seed_delta_{short}"] = None if seed is None else seed[i]
        rows.append(row)
    return pd.DataFrame(rows)


def metrics_table(evals: list[dict]) -> pd.DataFrame:
    """Per subset of pairs (all, then each action) and experiment the trained model's pooled
    SSIM / PSNR / masked L1, then both baselines, one value per replicate."""
    rows = []
    experiments = list(dict.fromkeys(e["experiment"] for e in evals))
    subsets = ["all", *evals[0].get("by_action", {})]

    def entry(e, subset):
        return e if subset == "all" else e["by_action"][subset]

    def pooled(label, entries, key, subset):
        learned = [e.get("learned", {}).get(key, {}) for e in entries]
        entries = [entry(e, subset) for e in entries]
        row = {"pairs": subset, "model": label, "replicates": len(entries)}
        for metric in METRICS:
            stats = summarize([e[key][metric] for e in entries])
            row.update({metric: stats["mean"], f"{metric}_cell": cell(
                stats["mean"], stats["std"], stats["ci_low"], stats["ci_high"],
                "{:.2f}" if metric == "psnr" else "{:.4f}")})
        for metric in ("lpips", "fid", "face_similarity"):
            values = [m.get(metric) for m in learned]
            numbers = [v for v in values if isinstance(v, (int, float))]
            # learned metrics are over all pairs; per-action rows leave them empty
            row[metric] = ("" if subset != "all" else f"{np.mean(numbers):.4f}" if numbers
                           else (values[0] if values and values[0] else ""))
        return row

    for subset in subsets:
        for exp in experiments:
            rows.append(pooled(exp, [e for e in evals if e["experiment"] == exp], "trained", subset))
        # one value per replicate: every experiment of a replicate starts from the same seed,
        # so its step-0 network and the paste baseline are the same in each of them
        first = [e for e in evals if e["experiment"] == experiments[0]]
        for key, label in BASELINES.items():
            rows.append(pooled(label, first, key, subset))
    return pd.DataFrame(rows)


def plot_curves(losses: dict[tuple[str, int], str], out: str | Path, columns=("g_rec", "g_tsf",
                "g_adv", "d_real", "d_fake")) -> None:
    """One panel per loss, every experiment's replicate 0 overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3), squeeze=False)
    for (exp, rep), path in losses.items():
        if rep != min(r for e, r in losses if e == exp):
            continue
        table = pd.read_csv(path)
        for ax, column in zip(axes[0], columns):
            if column in table:
                ax.plot(table["step"], table[column], label=exp, lw=1)
    for ax, column in zip(axes[0], columns):
        ax.set_title(column)
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_file(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def tabulate_lwgan(*, metrics: list[str], losses: list[str], experiments: list[str],
                   replicates: list[int], study_csv: str, study_md: str, metrics_csv: str,
                   metrics_md: str, curves: str, window: int, scale: str) -> None:
    """The rule's work. `losses` are ordered as `experiments` x `replicates`."""
    keys = [(e, r) for e in experiments for r in replicates]
    if len(keys) != len(losses):
        raise ValueError(f"{len(losses)} loss files for {len(keys)} experiment x replicate pairs")
    loss_files = dict(zip(keys, losses))
    evals = [read_eval(p) for p in metrics]
    study = study_table(loss_files, window)
    metric_rows = metrics_table(evals)
    write_csv(study.drop(columns=[c for c in study if c.endswith("_cell")]), study_csv)
    write_csv(metric_rows.drop(columns=[c for c in metric_rows if c.endswith("_cell")]), metrics_csv)
    seed_fmt = lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.2f}"
    first = evals[0]
    study_text = markdown(
        study, title="Liquid Warping GAN: seed 004's table 1 beside ours", intro=(
            f"% change of the final weighted loss against the baseline (mean of the last {window} "
            f"recorded steps; ours at {scale}; {SPREAD_NOTE}). Oscillation: std over that window. "
            f"d_real / d_fake: the discriminator's mean output (labels real 1, fake -1). "
            f"L_tsf is {'VGG-19 perceptual' if first['perceptual'] != 'L1' else 'L1 on pixels (no VGG weights)'}; "
            f"L_face {first['face']}. Seed columns: table 1 (E1-E4), sections 3.2 and 3.4 (GP 10, TTUR (1e-4, 4e-4))."),
        headers={"experiment": "experiment", "replicates": "replicates",
                 "delta_face_cell": "ΔL_face % (ours)", "seed_delta_face": "ΔL_face % (seed)",
                 "delta_tsf_cell": "ΔL_tsf % (ours)", "seed_delta_tsf": "ΔL_tsf % (seed)",
                 "delta_rec_cell": "ΔL_rec % (ours)", "seed_delta_rec": "ΔL_rec % (seed)",
                 "osc_tsf": "osc L_tsf", "osc_rec": "osc L_rec", "d_real": "D real", "d_fake": "D fake"},
        formats={"seed_delta_face": seed_fmt, "seed_delta_tsf": seed_fmt, "seed_delta_rec": seed_fmt,
                 "osc_tsf": "{:.4f}", "osc_rec": "{:.4f}", "d_real": "{:+.3f}", "d_fake": "{:+.3f}"})
    metric_text = markdown(
        metric_rows, title="Liquid Warping GAN: held-out self-imitation", intro=(
            f"Every held-out video reconstructed from its first frame ({first['n_pairs']} pairs, "
            f"videos {', '.join(first['videos'])}; ours at {scale}). SSIM and PSNR over the whole "
            f"8-bit frame (scikit-image, data range {first['data_range']}), masked L1 over the "
            f"reference body in [0, 1] units; {SPREAD_NOTE}. The baselines: the architecture at its "
            "step-0 weights, and the source warped by the flow and pasted on its background. Rows per "
            "action: the turn (most of the reference unseen in the first frame) and the free "
            "motion (nearly all of it seen, where the exact demo flow makes pasting hard to beat)."),
        headers={"pairs": "pairs", "model": "model", "replicates": "replicates", "ssim_cell": "SSIM ↑",
                 "psnr_cell": "PSNR dB ↑", "masked_l1_cell": "masked L1 ↓", "lpips": "LPIPS ↓",
                 "fid": "FID ↓", "face_similarity": "face similarity ↑"})
    write_markdown(study_md, study_text)
    write_markdown(metrics_md, metric_text)
    plot_curves(loss_files, curves)
