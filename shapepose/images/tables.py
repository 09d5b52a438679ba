"""Tables and the plot of the image branch's preparation: filter counts, frame ratios, mask quality.

Each table is a pandas DataFrame written as CSV (for machines) and Markdown (for the report) by
`shapepose.tables.write_table`; numbers show 4 significant digits.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from shapepose.images.filters import NO_DETECTIONS, REASONS, STAGE_OF, UNREADABLE
from shapepose.images.instances import CAR, TRUCK, ImageInstances
from shapepose.io import atomic_file
from shapepose.tables import markdown, write_csv, write_markdown, write_table

# The thesis's numbers (seed 002 sections 3.1.1 and 3.3), shown beside ours.
THESIS_FUNNEL = {"photos": 16185, "after 3.1 filters": 17398, "after 3.2 filters": 14092}


def _reasons(decisions: pd.DataFrame) -> pd.Series:
    """The reasons column as lists (an empty cell is no reason)."""
    return decisions["reasons"].fillna("").astype(str).map(lambda s: [r for r in s.split(";") if r])


def filter_funnel(decisions: pd.DataFrame) -> pd.DataFrame:
    """Photos -> instances -> after the 3.1 filters -> after the 3.2 filters, with the thesis's."""
    reasons = _reasons(decisions)
    instance = decisions["index"].astype(int) >= 0
    stage1 = instance & reasons.map(lambda rs: not any(STAGE_OF.get(r) == "3.1" for r in rs))
    accepted = instance & reasons.map(lambda rs: not rs)
    steps = {
        "photos": decisions["image"].nunique(),
        "photos unreadable": int(reasons.map(lambda rs: UNREADABLE in rs).sum()),
        "photos without detections": int(reasons.map(lambda rs: NO_DETECTIONS in rs).sum()),
        "instances": int(instance.sum()),
        "after 3.1 filters": int(stage1.sum()),
        "after 3.2 filters": int(accepted.sum()),
    }
    return pd.DataFrame({"step": list(steps), "count": list(steps.values()),
                         "thesis": [THESIS_FUNNEL.get(k) for k in steps]}).astype({"thesis": "Int64"})


def filter_rejections(decisions: pd.DataFrame) -> pd.DataFrame:
    """Per filter: instances it rejects at all, alone, and in the thesis's two-stage order.

    "in stage" counts a 3.1 filter over every instance and a 3.2 filter over the instances that
    passed all of 3.1 (the thesis's 17,398 -> 14,092 step). Shares are of all instances.
    """
    reasons = _reasons(decisions)[decisions["index"].astype(int) >= 0]
    n = len(reasons)
    passed_3_1 = reasons.map(lambda rs: not any(STAGE_OF[r] == "3.1" for r in rs))
    rows = []
    for reason in REASONS:
        hit = reasons.map(lambda rs, r=reason: r in rs)
        alone = reasons.map(lambda rs, r=reason: rs == [r])
        in_stage = hit if STAGE_OF[reason] == "3.1" else hit & passed_3_1
        rows.append({"filter": reason, "stage": STAGE_OF[reason], "rejected": int(hit.sum()),
                     "rejected_alone": int(alone.sum()), "rejected_in_stage": int(in_stage.sum()),
                     "share": round(hit.sum() / n, 4) if n else math.nan})
    return pd.DataFrame(rows)


def ratio_summary(synthetic: np.ndarray, before: np.ndarray, after: np.ndarray,
                  padded: np.ndarray | None = None) -> pd.DataFrame:
    """Count, mean, std, median and 5/95 % quantiles of each ratio distribution (finite values).

    `padded` (optional) is the real cut-outs' ratio after padding and before resizing: the drawn
    target up to rounding; its gap to `after` is what resizing adds (partly covered edge pixels
    count as car under "alpha > 0").
    """
    rows = []
    named = [("synthetic train", synthetic), ("real before", before)]
    if padded is not None:
        named.append(("real padded, before resizing", padded))
    for name, values in named + [("real after", after)]:
        values = np.asarray(values, dtype=np.float64)
        finite = values[np.isfinite(values)]
        stats = {"distribution": name, "n": len(values), "n_infinite": int(len(values) - len(finite))}
        if len(finite):
            stats |= {"mean": finite.mean(), "std": finite.std(ddof=1) if len(finite) > 1 else math.nan,
                      "median": np.median(finite), "p05": np.quantile(finite, 0.05),
                      "p95": np.quantile(finite, 0.95)}
        rows.append(stats)
    return pd.DataFrame(rows, columns=["distribution", "n", "n_infinite", "mean", "std", "median",
                                       "p05", "p95"])


def plot_ratios(synthetic: np.ndarray, before: np.ndarray, after: np.ndarray, path: str | Path) -> None:
    """Two panels like figures 3.10 and 3.14: synthetic vs real before, synthetic vs real after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def finite(v):
        v = np.asarray(v, dtype=np.float64)
        return v[np.isfinite(v)]

    # a mask that fills its box has no background: an infinite ratio, counted in the legend
    n_infinite = {"before": len(before) - len(finite(before)), "after": len(after) - len(finite(after))}
    synthetic, before, after = finite(synthetic), finite(before), finite(after)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, real, key, title in ((axes[0], before, "before", "before normalization (fig. 3.10)"),
                                 (axes[1], after, "after", "after filtering and normalization (fig. 3.14)")):
        values = np.concatenate([synthetic, real]) if len(real) else synthetic
        top = np.quantile(values, 0.99) if len(values) else 1.0
        bins = np.linspace(0.0, max(top, 1e-3), 50)
        ax.hist(np.clip(synthetic, 0, top), bins=bins, density=True, alpha=0.6,
                label=f"synthetic train (n={len(synthetic)})")
        label = f"real cut-outs (n={len(real)})"
        if n_infinite[key]:
            label += f"; {n_infinite[key]} infinite not shown"
        if len(real):
            ax.hist(np.clip(real, 0, top), bins=bins, density=True, alpha=0.6, label=label)
        elif n_infinite[key]:
            ax.plot([], [], " ", label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("car-to-frame ratio  #(alpha>0) / #(alpha=0)")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


# The rows issue 15 sets targets for (and the summary over replicates checks).
MEAN_IOU = "mean mask IoU of matched pairs"
WHOLE_RECALL = "share of whole, unoccluded truth cars found (recall)"


def segmentation_quality(predicted: list[ImageInstances], truth: list[ImageInstances],
                         decisions: pd.DataFrame,
                         match: Callable | None = None, iou_threshold: float = 0.5) -> pd.DataFrame:
    """How good the segments and the filters are on photos whose masks are known (the demo).

    Predictions and truth are matched per photo (`shapepose.images.scoring.match_instances`,
    greedy by score at the IoU threshold). A "whole car" is a truth instance of class car/truck
    that is neither occluded nor cropped (its `attributes`). Reported: mean mask IoU of matched
    pairs, recall of truth cars, the share of accepted cut-outs that are whole cars, i.e. the
    precision of the whole filter chain, the recall of whole cars by the segmenter alone (found
    at the IoU threshold whatever the filters decided) and the share of whole cars that end up
    accepted.
    """
    if match is None:
        from shapepose.images.scoring import match_instances as match
    truth_of = {entry.image: entry for entry in truth}
    accepted = {(str(r.image), int(r.index)) for r in decisions.itertuples()
                if int(r.index) >= 0 and _is_true(r.accepted)}
    ious, n_truth_cars, n_truth_cars_found = [], 0, 0
    n_whole, n_whole_found, n_whole_accepted, n_accepted_whole, n_accepted_matched = 0, 0, 0, 0, 0
    for entry in predicted:
        gt = truth_of.get(entry.image)
        if gt is None or entry.error:
            continue
        pairs = match(entry.instances, gt.instances, iou_threshold=iou_threshold)
        truth_for_pred = {p: (t, iou) for p, t, iou in pairs}
        pred_for_truth = {t: p for p, t, _ in pairs}
        ious.extend(iou for _, _, iou in pairs)
        for t, inst in enumerate(gt.instances):
            if inst.category_id not in (CAR, TRUCK):
                continue
            n_truth_cars += 1
            n_truth_cars_found += t in pred_for_truth
            if _whole(inst):
                n_whole += 1
                n_whole_found += t in pred_for_truth
                n_whole_accepted += (entry.image, pred_for_truth.get(t, -1)) in accepted
        for p in range(len(entry.instances)):
            if (entry.image, p) not in accepted:
                continue
            if p in truth_for_pred:
                n_accepted_matched += 1
                n_accepted_whole += _whole(gt.instances[truth_for_pred[p][0]])
    n_accepted = sum(1 for image, _ in accepted if image in truth_of)
    rows = [
        ("matched pairs", len(ious)),
        (MEAN_IOU, float(np.mean(ious)) if ious else math.nan),
        ("truth cars/trucks", n_truth_cars),
        ("share of truth cars/trucks found (recall)", _share(n_truth_cars_found, n_truth_cars)),
        ("accepted cut-outs", n_accepted),
        ("share of accepted cut-outs matching a truth object", _share(n_accepted_matched, n_accepted)),
        ("share of accepted cut-outs that are whole, unoccluded cars", _share(n_accepted_whole, n_accepted)),
        ("whole, unoccluded truth cars", n_whole),
        (WHOLE_RECALL, _share(n_whole_found, n_whole)),
        ("share of whole, unoccluded truth cars accepted", _share(n_whole_accepted, n_whole)),
    ]
    return pd.DataFrame(rows, columns=["metric", "value"])


def _whole(instance) -> bool:
    a = instance.attributes or {}
    return (instance.category_id in (CAR, TRUCK) and not a.get("occluded", False)
            and not a.get("cropped", False))


def _is_true(value) -> bool:
    return value is True or str(value).lower() == "true"


def _share(k: int, n: int) -> float:
    return k / n if n else math.nan


def tabulate_segments(decisions_csv: str | Path, synthetic_csv: str | Path, ratios_csv: str | Path,
                      out: dict[str, str | Path], instances: str | Path | None = None,
                      truth: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Every table and the plot of the image branch's preparation.

    out: paths keyed funnel_csv, filters_csv, filters_md, ratio_csv, ratio_md, ratio_png,
    quality_csv and quality_md (the quality table needs `instances` and `truth`; without truth it
    holds one row saying there is none).
    """
    from shapepose.images.instances import read_instances

    decisions = pd.read_csv(decisions_csv, dtype={"image": str, "reasons": str})
    funnel, rejections = filter_funnel(decisions), filter_rejections(decisions)
    write_csv(funnel, out["funnel_csv"])
    write_csv(rejections, out["filters_csv"])
    write_markdown(out["filters_md"],
                   markdown(funnel, title="Segmentations through the filters (seed 002, 3.1.1 and 3.3)"),
                   markdown(rejections, title="Instances rejected by each filter"))
    synthetic = pd.read_csv(synthetic_csv)["ratio"].to_numpy()
    ratios = pd.read_csv(ratios_csv)
    summary = ratio_summary(synthetic, ratios["before"].to_numpy(), ratios["after"].to_numpy(),
                            ratios["padded"].to_numpy())
    write_table(summary, out["ratio_csv"], out["ratio_md"], title="Car-to-frame ratios (seed 002, 3.2.1)")
    plot_ratios(synthetic, ratios["before"].to_numpy(), ratios["after"].to_numpy(), out["ratio_png"])
    tables = {"funnel": funnel, "filters": rejections, "ratios": summary}
    if truth is not None:
        predicted, _ = read_instances(instances)
        known, _ = read_instances(truth)
        quality = segmentation_quality(predicted, known, decisions)
    else:
        # Real photos have no true masks; the table says so rather than being absent, so the
        # rule's outputs are the same for every dataset.
        quality = pd.DataFrame([("ground truth", "none: these photos have no true masks")],
                               columns=["metric", "value"])
    write_table(quality, out["quality_csv"], out["quality_md"],
                title="Segmentation and filters against the true masks (demo photos)")
    tables["quality"] = quality
    return tables
