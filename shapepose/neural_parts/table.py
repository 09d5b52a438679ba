"""The Neural Parts table in the layout of seed 003's results: one column per number of primitives.

Rows: IoU and Chamfer-L1, each for our run (labelled with its scale), the seed's reproduction and
the original paper's numbers as the seed quotes them. Cells without a number stay empty.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from shapepose.tables import write_table

# Seed 003 "Experimental result": first its own reproduction, then "the result of original paper".
SEED_REPRODUCTION = {
    "iou": {2: 0.640, 5: 0.654, 8: 0.645, 10: 0.643},
    "chamfer_l1": {2: 0.109, 5: 0.092, 8: 0.089, 10: 0.089},
}
PAPER = {
    "iou": {2: 0.675, 5: 0.673, 8: 0.676, 10: 0.678},
    "chamfer_l1": {2: 0.101, 5: 0.097, 8: 0.090, 10: 0.095},
}
METRICS = (("iou", "IoU"), ("chamfer_l1", "Chamfer-L1"))


def our_scale(evaluations: list[dict], dataset: str) -> str:
    """How big our run was, e.g. "dfaust_demo: 80 train frames, 300 steps; 22 test frames"."""
    first = evaluations[0]
    return (f"{dataset}: {first['training']['n_train_frames']} train frames, "
            f"{first['training']['steps']} steps; {first['n_test_frames']} test frames")


def neural_parts_table(evaluations: list[dict], dataset: str) -> pd.DataFrame:
    """Rows (metric, source, note) x columns = numbers of primitives (ours and the seed's)."""
    ours = {e["n_primitives"]: e for e in evaluations}
    counts = sorted(set(ours) | set(PAPER["iou"]))
    n_points = {e["n_points"] for e in evaluations}
    rows = []
    for key, name in METRICS:
        note = our_scale(evaluations, dataset)
        if key == "chamfer_l1":
            note += (f"; metres, {'/'.join(map(str, sorted(n_points)))} predicted vs as many "
                     "ground-truth surface points")
        rows.append({"metric": name, "source": "ours", "note": note,
                     **{n: ours[n][key] if n in ours else math.nan for n in counts}})
        rows.append({"metric": name, "source": "seed 003 reproduction", "note": "quoted",
                     **{n: SEED_REPRODUCTION[key].get(n, math.nan) for n in counts}})
        rows.append({"metric": name, "source": "Neural Parts paper", "note": "quoted by seed 003",
                     **{n: PAPER[key].get(n, math.nan) for n in counts}})
    return pd.DataFrame(rows, columns=["metric", "source", "note", *counts])


def number(value: float) -> str:
    """A Markdown cell: 3 decimals, 4 below 0.1 (Chamfer-L1 in metres is small)."""
    return f"{value:.4f}" if abs(value) < 0.1 else f"{value:.3f}"


def markdown_headers(table: pd.DataFrame) -> dict:
    """Column -> Markdown header: metric, source, "<n> primitives" per count, then the note."""
    counts = table.columns[3:]
    return {"metric": "metric", "source": "source",
            **{c: f"{c} primitives" if isinstance(c, int) else str(c) for c in counts}, "note": "note"}


def tabulate_neural_parts(evaluation_files: list[str], csv_out: str, md_out: str, dataset: str) -> pd.DataFrame:
    """Read every eval.json and write the table as CSV and Markdown."""
    evaluations = [json.loads(open(path).read()) for path in evaluation_files]
    table = neural_parts_table(evaluations, dataset)
    write_table(table, csv_out, md_out, csv_float_format="%.6g", headers=markdown_headers(table),
                float_format=number,
                intro=f"Neural Parts on {dataset} (seed 003): IoU and Chamfer-L1 per number of primitives")
    return table
