"""The Pose2Mesh table, training curves, sample figure and checkpoint disk use.

Rows (all in mm, on the test subjects S9 and S11 from detected 2D poses):

- ours, per experiment: the trained model (MPJPE / PA-MPJPE of the joints regressed from its mesh,
  MPVPE), PoseNet alone (lifted pose), stage 2 at step 0 ("untrained") and the mean training pose
  and mesh ("mean"), each pooled over the replicates (mean ± std [95 % interval]);
- quoted: seed 001's two runs (RMSprop, Adam) and the comparison table it shows, and the release
  README's Human3.6M row, whose input is the ground-truth 2D pose (not detections).

The demo's numbers are for a procedural body at demo scale and are not comparable with the quoted
ones; the table says so in its intro.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from shapepose.errors import InputError
from shapepose.io.atomic import atomic_file
from shapepose.replicates import SPREAD_NOTE, aggregate, stat_cell
from shapepose.tables import markdown, write_csv, write_markdown

METRICS = ("mpjpe", "pa_mpjpe", "mpvpe")
ROWS = (("trained", "Pose2Mesh (mesh -> regressed joints)"), ("posenet", "PoseNet alone (lifted pose)"),
        ("untrained", "stage 2 at step 0 (untrained MeshNet)"), ("mean", "mean training pose and mesh"))
# seed 001's results slide: its two runs, then the methods it compares with (MPJPE, PA-MPJPE)
SEED_RUNS = {"rmsprop": (64.9, 46.3), "adam": (60.2, 47.2)}
SEED_COMPARISON = (("Lassner et al.", None, 93.9), ("HMR", 88.0, 56.8), ("NBF", None, 59.9),
                   ("Pavlakos et al.", None, 75.9), ("Kanazawa et al.", None, 56.9),
                   ("GraphCMR", None, 50.1), ("Arnab et al.", 77.8, 54.3), ("SPIN", None, 41.1))
RELEASE_GT_INPUT = (51.28, 35.61)  # hongsukchoi/Pose2Mesh_RELEASE README: ground-truth 2D input
COLUMNS = ["source", "experiment", "row", "replicates",
           *[f"{m}_{s}" for m in METRICS for s in ("n", "mean", "std", "ci_low", "ci_high")], "note"]


def read_evaluation(path) -> dict:
    try:
        evaluation = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read Pose2Mesh evaluation: {exc}") from None
    for key in ("experiment", "replicate", "trained", "posenet", "untrained", "mean", "n_test"):
        if key not in evaluation:
            raise InputError(path, "Pose2Mesh evaluation lacks a key", key=key)
    for key in METRICS:
        if key not in evaluation["trained"]:
            raise InputError(path, "Pose2Mesh evaluation lacks a metric", key=f"trained.{key}")
    return evaluation


def replicate_table(evaluations: list[dict]) -> pd.DataFrame:
    rows = []
    for ev in evaluations:
        for row, _ in ROWS:
            values = ev[row]
            rows.append({"experiment": ev["experiment"], "row": row, "replicate": ev["replicate"],
                         **{m: values.get(m, math.nan) for m in METRICS}, "n_test": ev["n_test"]})
    return pd.DataFrame(rows)


def summary_table(replicates: pd.DataFrame) -> pd.DataFrame:
    ours = aggregate(replicates, ["experiment", "row"], METRICS)
    ours.insert(0, "source", "ours (demo bodies)")
    ours["note"] = ours["row"].map(dict(ROWS))
    quoted = []
    for name, (a, b) in SEED_RUNS.items():
        quoted.append({"source": "seed 001 (Human3.6M)", "experiment": name, "row": "trained",
                       "mpjpe_mean": a, "pa_mpjpe_mean": b, "note": f"Pose2Mesh trained with {name}"})
    for method, a, b in SEED_COMPARISON:
        quoted.append({"source": "seed 001's comparison (quoted)", "experiment": method,
                       "row": "published", "mpjpe_mean": a, "pa_mpjpe_mean": b, "note": ""})
    quoted.append({"source": "Pose2Mesh release README", "experiment": "released", "row": "trained",
                   "mpjpe_mean": RELEASE_GT_INPUT[0], "pa_mpjpe_mean": RELEASE_GT_INPUT[1],
                   "note": "ground-truth 2D input (not detections)"})
    table = pd.concat([ours, pd.DataFrame(quoted)], ignore_index=True)
    return table.reindex(columns=COLUMNS)


def markdown_table(table: pd.DataFrame, n_test: int) -> str:
    shown = table.copy()
    for m in METRICS:
        shown[m] = [stat_cell(r, m, "{:.1f}") if isinstance(r[f"{m}_mean"], float)
                    and not math.isnan(r[f"{m}_mean"]) else "" for _, r in shown.iterrows()]
    intro = (f"Millimetres, test subjects S9 and S11 ({n_test} samples per replicate), 2D input from "
             "the detection file. MPJPE: 14 evaluation joints after subtracting the pelvis; PA-MPJPE: "
             "after a per-sample similarity Procrustes alignment; MPVPE: every vertex. Ours are demo "
             f"bodies at demo scale, not comparable with the quoted Human3.6M rows. {SPREAD_NOTE}.")
    return markdown(shown, title="Pose2Mesh (seed 001)", intro=intro,
                    headers={"source": "source", "experiment": "experiment", "row": "row",
                             "replicates": "replicates", "mpjpe": "MPJPE", "pa_mpjpe": "PA-MPJPE",
                             "mpvpe": "MPVPE", "note": "what"},
                    formats={"replicates": lambda v: "" if v is None or (isinstance(v, float)
                                                                          and math.isnan(v))
                             else str(int(v))})


def _validation_curve(path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read the loss history: {exc}") from None
    if "val_mpjpe" not in frame or "step" not in frame:
        raise InputError(path, "loss history lacks a column", key="val_mpjpe")
    return frame.dropna(subset=["val_mpjpe"])[["step", "val_mpjpe"]]


def plot_curves(runs: list[dict], out: str) -> None:
    """Validation MPJPE against epochs, PoseNet (lifted) and the whole model (regressed), per run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for run in runs:
        for ax, key in zip(axes, ("posenet_losses", "meshnet_losses")):
            curve = _validation_curve(run[key])
            batch = run[f"{key.split('_')[0]}_batch_size"]
            ax.plot(curve["step"] * batch / run["n_train"], curve["val_mpjpe"], marker="o",
                    label=f"{run['experiment']} r{run['replicate']}")
    for ax, title in zip(axes, ("PoseNet: lifted pose", "Pose2Mesh: joints from the mesh")):
        ax.set(title=title, xlabel="epoch", ylabel="validation MPJPE (mm)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_file(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _draw_mesh(ax, vertices: np.ndarray, faces: np.ndarray, color) -> None:
    """Camera-frame vertices (V, 3) as shaded triangles, farthest first (x right, y down)."""
    from matplotlib.collections import PolyCollection

    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    shade = np.clip(-normal[:, 2], 0.15, 1.0)  # facing the camera (-z) is bright
    order = np.argsort(-tri[:, :, 2].mean(1))
    colors = np.asarray(color)[None, :] * shade[order, None]
    ax.add_collection(PolyCollection(tri[order, :, :2], facecolors=colors, edgecolors="none"))
    ax.set_xlim(vertices[:, 0].min() - 50, vertices[:, 0].max() + 50)
    ax.set_ylim(vertices[:, 1].max() + 50, vertices[:, 1].min() - 50)
    ax.set_aspect("equal")
    ax.axis("off")


def plot_samples(predictions: dict[str, str], out: str, n_frames: int) -> None:
    """Rows: test frames; columns: the 2D input, each experiment's predicted mesh, the true mesh."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from shapepose.pose2mesh.joints import SKELETON

    loaded = {}
    for name, path in predictions.items():
        try:
            with np.load(path) as npz:
                loaded[name] = {k: npz[k] for k in ("inputs_2d", "pred_vertices", "true_vertices",
                                                     "faces", "names")}
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(path, f"cannot read predictions: {exc}") from None
    first = next(iter(loaded.values()))
    picks = np.linspace(0, len(first["names"]) - 1, n_frames).round().astype(int)
    cols = 2 + len(loaded)
    fig, axes = plt.subplots(n_frames, cols, figsize=(2.4 * cols, 3.2 * n_frames), squeeze=False)
    for r, i in enumerate(picks):
        joints = first["inputs_2d"][i]
        ax = axes[r, 0]
        for a, b in SKELETON:
            ax.plot(joints[[a, b], 0], joints[[a, b], 1], color="tab:blue")
        ax.scatter(joints[:, 0], joints[:, 1], s=8, color="tab:red")
        ax.invert_yaxis()
        ax.set_aspect("equal")
        ax.set_title(str(first["names"][i]).split("/")[-1][:-4], fontsize=6)
        ax.axis("off")
        for c, (name, pred) in enumerate(loaded.items(), start=1):
            _draw_mesh(axes[r, c], pred["pred_vertices"][i], pred["faces"], (0.9, 0.6, 0.3))
            axes[r, c].set_title(f"predicted ({name})", fontsize=8)
        _draw_mesh(axes[r, -1], first["true_vertices"][i], first["faces"], (0.5, 0.7, 0.9))
        axes[r, -1].set_title("true", fontsize=8)
        axes[r, 0].text(0.0, -0.05, "2D input", transform=axes[r, 0].transAxes, fontsize=8)
    fig.tight_layout()
    with atomic_file(out) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def disk_use(runs: list[dict]) -> pd.DataFrame:
    """Bytes of the checkpoint files each run keeps (best.pt and the latest step)."""
    rows = []
    for run in runs:
        for stage in ("posenet", "meshnet"):
            folder = Path(run[f"{stage}_checkpoints"])
            if not folder.is_dir():
                raise InputError(folder, "checkpoint directory does not exist")
            files = sorted(p for p in folder.glob("*.pt"))
            rows.append({"experiment": run["experiment"], "replicate": run["replicate"],
                         "stage": stage, "files": " ".join(p.name for p in files),
                         "bytes": sum(p.stat().st_size for p in files)})
    return pd.DataFrame(rows)


def tabulate_pose2mesh(*, evaluation_files: list[str], posenet_losses: list[str],
                       meshnet_losses: list[str], predictions: list[str],
                       posenet_checkpoints: list[str], meshnet_checkpoints: list[str],
                       posenet_batch_size: int, meshnet_batch_size: int, csv_out: str,
                       md_out: str, replicates_csv: str, curves: str, figure: str, disk_csv: str,
                       figure_frames: int) -> pd.DataFrame:
    """Write every output named in the module docstring. The lists hold one entry per
    experiment and replicate, in the same order."""
    evaluations = [read_evaluation(p) for p in evaluation_files]
    lists = (posenet_losses, meshnet_losses, predictions, posenet_checkpoints, meshnet_checkpoints)
    if any(len(x) != len(evaluations) for x in lists):
        raise ValueError("one losses file, predictions file and checkpoint folder per evaluation")
    runs = [{"experiment": ev["experiment"], "replicate": ev["replicate"],
             "n_train": ev["training"]["n_train"], "posenet_losses": pl, "meshnet_losses": ml,
             "predictions": pr, "posenet_checkpoints": pc, "meshnet_checkpoints": mc,
             "posenet_batch_size": posenet_batch_size, "meshnet_batch_size": meshnet_batch_size}
            for ev, pl, ml, pr, pc, mc in zip(evaluations, *lists)]
    replicates = replicate_table(evaluations)
    table = summary_table(replicates)
    disk = disk_use(runs)
    text = markdown_table(table, int(evaluations[0]["n_test"]))
    text += "\n" + markdown(disk, title="Checkpoint disk use (best and latest only)", level=3,
                            intro="Bytes on this machine of each run's kept checkpoints.")
    write_csv(replicates, replicates_csv)
    write_csv(disk, disk_csv)
    write_csv(table, csv_out)
    write_markdown(md_out, text)
    plot_curves(runs, curves)
    first = {}
    for run in runs:
        first.setdefault(run["experiment"], run["predictions"])
    plot_samples(first, figure, figure_frames)
    return table
