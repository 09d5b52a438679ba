"""Replicates: the seed of each one, and the spread of a metric over them.

Every trained model of the workflow exists `replicates` times (config), replicate r trained from
`replicate_seed(config seed, stage, r)`. A metric table reports, per row, the mean over the
replicates, their sample standard deviation (ddof 1) and a two-sided 95 % Student-t interval of
the mean, mean +- t(0.975, n - 1) * std / sqrt(n). With one replicate there is no spread: std and
the interval are NaN (empty cells), and the tables say so.

Two rows a reader compares (a stylized variant against `original`, P4 against P2) are compared
through the interval of their difference: paired by replicate where the two share everything but
the compared choice (the same replicate's data and test images), Welch's otherwise. They are
"separated" when that interval excludes zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from shapepose.seeding import derive_seed

LEVEL = 0.95
STATS = ("n", "mean", "std", "ci_low", "ci_high")


def replicate_seed(seed: int, stage: str, replicate: int) -> int:
    """The training seed of one replicate of one stage: derive_seed(seed, stage, "replicate", r)."""
    if not isinstance(replicate, (int, np.integer)) or isinstance(replicate, bool) or replicate < 0:
        raise ValueError(f"a replicate is a non-negative integer, got {replicate!r}")
    return derive_seed(seed, stage, "replicate", int(replicate))


def _t_quantile(df: float) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + LEVEL / 2, df))


def summarize(values: Iterable[float]) -> dict:
    """n, mean, std (ddof 1) and the 95 % t interval of the mean of the finite values.

    NaN values (a metric a replicate could not compute) are left out and n counts the rest.
    """
    x = np.asarray([float(v) for v in values], dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    std = float(x.std(ddof=1))
    half = _t_quantile(n - 1) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def difference(a: Sequence[float], b: Sequence[float], paired: bool) -> dict:
    """mean(a) - mean(b) with its 95 % interval, and whether the interval excludes zero.

    paired: a[i] and b[i] come from the same replicate (pairs with a NaN are dropped) and the
    interval is the t interval of the differences; otherwise Welch's interval (unequal variances,
    Welch-Satterthwaite degrees of freedom). `separated` is None when there is no interval.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if paired:
        if a.shape != b.shape:
            raise ValueError(f"paired replicates need as many values on each side: {len(a)} vs {len(b)}")
        stats = summarize(a - b)
        kind = "paired"
    else:
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        kind = "Welch"
        if len(a) == 0 or len(b) == 0:
            stats = {"n": 0, "mean": math.nan, "ci_low": math.nan, "ci_high": math.nan}
        else:
            mean = float(a.mean() - b.mean())
            stats = {"n": min(len(a), len(b)), "mean": mean, "ci_low": math.nan, "ci_high": math.nan}
            if len(a) > 1 and len(b) > 1:
                va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
                se = math.sqrt(va + vb)
                if se > 0:
                    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
                    half = _t_quantile(df) * se
                else:
                    half = 0.0
                stats.update(ci_low=mean - half, ci_high=mean + half)
    low, high = stats["ci_low"], stats["ci_high"]
    separated = None if math.isnan(low) else bool(low > 0 or high < 0)
    return {"n": stats["n"], "difference": stats["mean"], "ci_low": low, "ci_high": high,
            "separated": separated, "test": kind}


def verdict(separated: bool | None) -> str:
    """The words a table prints for a comparison."""
    if separated is None:
        return "no interval (one replicate)"
    return "separated" if separated else "not separated"


def aggregate(frame: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str],
              replicate: str = "replicate") -> pd.DataFrame:
    """Per group of `keys` (first-seen order): for each metric its n, mean, std, ci_low, ci_high.

    Columns: keys, replicates (the count of rows), then `<metric>_<stat>` for each metric.
    """
    rows = []
    for key, group in frame.groupby(list(keys), sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        row["replicates"] = int(group[replicate].nunique()) if replicate in group else len(group)
        for metric in metrics:
            stats = summarize(group[metric])
            row.update({f"{metric}_{s}": stats[s] for s in STATS})
        rows.append(row)
    columns = [*keys, "replicates", *[f"{m}_{s}" for m in metrics for s in STATS]]
    return pd.DataFrame(rows, columns=columns)


def cell(mean: float, std: float, low: float, high: float, fmt: str = "{:.3f}") -> str:
    """A Markdown cell: "mean ± std [low, high]", or the mean alone without a spread."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    text = fmt.format(mean)
    if std is not None and not math.isnan(std):
        text += f" ± {fmt.format(std)} [{fmt.format(low)}, {fmt.format(high)}]"
    return text


def stat_cell(row, metric: str, fmt: str = "{:.3f}") -> str:
    """cell() of one metric of an aggregate() row (a dict or a pandas row)."""
    return cell(row[f"{metric}_mean"], row[f"{metric}_std"], row[f"{metric}_ci_low"],
                row[f"{metric}_ci_high"], fmt)


SPREAD_NOTE = ("mean ± sample standard deviation [95 % Student-t interval of the mean] over the "
               "replicates; the mean alone where there is one replicate")
