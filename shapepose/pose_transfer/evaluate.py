"""Scoring one trained variant on one test list: PMD of ours, of the step-0 weights, and of the
two answers that need no learning (the identity mesh unchanged; the pose mesh itself).

Every triple's pose mesh is fed in a fixed random vertex order (`train.pose_permutation`, from the
config seed, the same for every variant and replicate), the identity mesh in file order, so the
prediction is in the identity's order, which is the ground truth's. Written: the JSON (means,
per-triple rows, the training run's facts) and `predictions_<test>.npz` (predicted, step-0,
ground-truth, identity and pose vertices in the identity's order), from which every number can be
recomputed with `metrics.pmd`.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from shapepose.errors import InputError
from shapepose.io import atomic_file, write_npz
from shapepose.pose_transfer.meshes import MeshStore, read_triples
from shapepose.pose_transfer.metrics import mean_vertex_distance, pmd, vertex_rms_mm
from shapepose.pose_transfer.train import STAGE, load_model, predict, triple_arrays
from shapepose.replicates import replicate_seed
from shapepose.training import load_exported, pick_device

log = logging.getLogger(__name__)

# what each row of the JSON calls a prediction, in the order the table shows them
METHODS = ("trained", "untrained", "identity_mesh", "pose_mesh")


def check_replicate(model_path: str, meta: dict, seed: int, replicate: int) -> None:
    expected = replicate_seed(seed, STAGE, replicate)
    if meta.get("seed") != expected:
        raise InputError(model_path, f"trained with seed {meta.get('seed')}, but replicate "
                                     f"{replicate} of seed {seed} trains with {expected}", key="seed")


def eval_pose_transfer(*, model_path: str, meshes: str, test_list: str, out: str, predictions: str,
                       test: str, seed: int, replicate: int, max_tilt_deg: float | None,
                       device: str) -> dict:
    """Score the model of `model_path` on the triples of `test_list`; write `out` (JSON) and
    `predictions` (npz). `seed` is the config seed (the pose meshes' vertex orders)."""
    device = pick_device(device)
    exported = load_exported(model_path, map_location=device)
    meta = exported["meta"]
    check_replicate(model_path, meta, seed, replicate)
    try:
        extra = meta["extra"]
        trained = load_model(exported, device)
        untrained = load_model(exported, device, untrained=True)
    except KeyError as error:
        raise InputError(model_path, f"not a pose-transfer model file (no {error})") from None
    store = MeshStore(meshes, max_tilt_deg=max_tilt_deg, n_vertices=extra["n_vertices"])
    triples = read_triples(test_list, meshes)
    arrays = triple_arrays(store, triples, seed, test)
    answers = {
        "trained": predict(trained, arrays["identity"], arrays["pose"], device),
        "untrained": predict(untrained, arrays["identity"], arrays["pose"], device),
        "identity_mesh": arrays["identity"],
        "pose_mesh": arrays["pose_file_order"],
    }
    scores = {name: pmd(answer, arrays["ground_truth"]) for name, answer in answers.items()}
    rows = [{"identity": t.identity, "pose": t.pose, "ground_truth": t.ground_truth,
             **{f"pmd_{name}": float(scores[name][j]) for name in METHODS}}
            for j, t in enumerate(triples)]
    result = {
        "variant": extra["variant"], "test": test, "replicate": int(replicate),
        **{f"pmd_{name}": float(scores[name].mean()) for name in METHODS},
        **{f"rms_mm_{name}": vertex_rms_mm(float(scores[name].mean())) for name in METHODS},
        # seed 000's text's PMD: the mean vertex distance (not squared), millimetres
        **{f"mean_distance_mm_{name}": 1000 * float(mean_vertex_distance(answer, arrays["ground_truth"]).mean())
           for name, answer in answers.items()},
        "n_pairs": len(triples), "n_vertices": int(extra["n_vertices"]),
        "units": "PMD in m^2 (mean squared per-coordinate difference after bounding-box centring, "
                 "the authors' code); rms_mm = 1000 sqrt(3 PMD), per-vertex RMS distance in "
                 "millimetres; mean_distance_mm: mean vertex distance (seed 000's text's PMD)",
        "training": {"steps": extra["steps"], "step_exported": meta["step"], "seed": meta["seed"],
                     "val_pmd": meta["metrics"].get("val_pmd"), "batch_size": extra["batch_size"],
                     "lr": extra["lr"], "n_train_identities": extra["n_train_identities"],
                     "n_train_poses": extra["n_train_poses"], "architecture": extra["architecture"]},
        "eval_seed": int(seed),
        "pairs": rows,
    }
    log.info("%s replicate %d on %s poses (%d triples): PMD trained %.3g, untrained %.3g, identity "
             "mesh %.3g, pose mesh %.3g", result["variant"], replicate, test, len(triples),
             result["pmd_trained"], result["pmd_untrained"], result["pmd_identity_mesh"],
             result["pmd_pose_mesh"])
    write_npz(predictions, predicted=answers["trained"], untrained=answers["untrained"],
              ground_truth=arrays["ground_truth"], identity=arrays["identity"],
              pose=arrays["pose_file_order"], pose_order=arrays["pose_order"], faces=store.faces,
              names=np.array([[t.identity, t.pose, t.ground_truth] for t in triples]))
    with atomic_file(out) as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n")
    return result
