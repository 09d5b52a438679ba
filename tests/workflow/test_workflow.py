"""The Snakemake layer: the plan on the default config, lint, a tiny end-to-end run, and reruns."""

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from PIL import Image

from helpers.data import write_registrations
from helpers.jobstats import job_counts

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.workflow

TINY = {
    "seed": 11,
    "meshes": {
        "dataset": "tiny",
        "registrations": "demo",
        "subjects": ["50002", "50004"],
        "sequences": ["knees", "punching"],
        "frame_stride": 2,
        "drop_first": 1,
    },
    "demo_bodies": {"subjects": {"50002": "m", "50004": "f"}, "sequences": ["knees", "punching"],
                    "n_frames": 5, "fps": 60},
    "surface": {"n_points": 600},
    "volume": {"n_points": 800, "cell_size": 0.08},
    "render": {"size": 64},
}
SEQUENCES = [f"{s}_{q}" for s in TINY["meshes"]["subjects"] for q in TINY["meshes"]["sequences"]]
STAGES = ["extract_meshes", "sample_surface", "sample_volume", "render_meshes"]


def snakemake(workdir, *args, config=None, check=True):
    """Run Snakemake in `workdir`; with a test config and no target named, on the mesh branch.

    The other branches have their own workflow tests (test_workflow_images, _neural_parts).
    """
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), *args]
    if config is not None and all(arg.startswith("-") or arg.isdigit() for arg in args):
        cmd.append("mesh_branch")
    if config is not None:
        path = Path(workdir) / "test-config.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd += ["--configfile", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def planned_jobs(workdir, config=None):
    """{rule: count} and the wildcards of each planned job, from a dry run's output."""
    out = snakemake(workdir, "-n", config=config)
    text = out.stdout + out.stderr
    counts = job_counts(text)
    wildcards = re.findall(r"wildcards: sequence=(\S+)", text)
    return counts, set(wildcards), text


def test_default_plan(tmp_path):
    counts, wildcards, _ = planned_jobs(tmp_path)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    n = len(config["meshes"]["subjects"]) * len(config["meshes"]["sequences"])
    n_demo = len(config["demo_bodies"]["subjects"]) * len(config["demo_bodies"]["sequences"])
    n_parts = len(config["neural_parts"]["primitives"])
    n_styles = len(config["style_transfer"]["experiments"])
    n_p2m = len(config["pose2mesh"]["experiments"])
    shards = config["segmentation"]["shards"]
    n_pt = len(config["pose_transfer"]["variants"])
    n_lwgan = len(config["lwgan"]["run"] or config["lwgan"]["experiments"])
    assert counts == Counter({"make_demo_sequence": n_demo, "make_demo_bodies": 1,
                              "extract_meshes": n, "sample_surface": n, "sample_volume": n,
                              "render_meshes": n,
                              "make_demo_cars": 1, "train_segmenter": 1, "segment": shards,
                              "gather_segments": 1, "filter_segments": 1, "fit_frame_ratio": 1,
                              "normalize_segments": 1, "tabulate_segments": 1,
                              "summarize_segments": 1,
                              # trained and step-0 weights scored; the first replicate exported
                              "train_neural_parts": n_parts, "eval_neural_parts": 2 * n_parts,
                              "export_neural_parts": n_parts, "tabulate_neural_parts": 1,
                              "train_style_transfer": n_styles, "stylize": n_styles,
                              "report_style_transfer": n_styles, "tabulate_style_transfer": 1,
                              # shape and pose: original + each experiment trained; those and the
                              # untrained model scored on every test set and on the real cut-outs
                              "train_shape_pose": 1 + n_styles,
                              "eval_shape_pose": (2 + n_styles) * (1 + n_styles),
                              "eval_real_masks": 2 + n_styles, "tabulate_shape_pose": 1,
                              # pose transfer: each variant trained, scored on the seen and unseen lists
                              "make_demo_pose_pairs": 1, "train_pose_transfer": n_pt,
                              "eval_pose_transfer": 2 * n_pt, "tabulate_pose_transfer": 1,
                              "draw_pose_transfer_grid": 1,
                              # the Liquid Warping GAN study: each run experiment trained, scored
                              "make_demo_iper": 1, "train_lwgan": n_lwgan, "eval_lwgan": n_lwgan,
                              "tabulate_lwgan": 1,
                              # Pose2Mesh: both stages and the evaluation per experiment
                              "make_demo_h36m": 1, "train_posenet": n_p2m, "train_meshnet": n_p2m,
                              "eval_pose2mesh": n_p2m, "tabulate_pose2mesh": 1,
                              "tabulate_learning": 1, "collect_tables": 1, "all": 1})
    assert config["replicates"] == 1  # the counts above are per replicate
    assert len(wildcards) == n


def test_lint_is_clean():
    out = snakemake(ROOT, "--lint", check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Lints for" not in out.stdout + out.stderr


def test_bad_config_is_rejected_with_the_key(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(TINY))
    bad["volume"]["n_points"] = 0
    out = snakemake(tmp_path, "-n", config=bad, check=False)
    assert out.returncode != 0
    assert "n_points" in out.stdout + out.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    snakemake(workdir, "--cores", "2", config=TINY)
    return workdir


def test_tiny_run_produces_every_output(tiny_run):
    from shapepose.io import read_ply
    from shapepose.sampling.store import read_surface_samples, read_volume_samples

    for sequence in SEQUENCES:
        meshes = sorted((tiny_run / "results/meshes/tiny" / sequence).glob("frame_*.ply"))
        assert [m.name for m in meshes] == ["frame_000001.ply", "frame_000003.ply"]
        v, f = read_ply(meshes[0])
        assert v.shape[1] == 3 and f.shape[1] == 3
        surface = read_surface_samples(tiny_run / f"results/samples/tiny/surface/{sequence}.h5")
        assert surface["points"].shape == (2, 600, 3)
        assert np.allclose(np.linalg.norm(surface["normals"], axis=-1), 1, atol=1e-3)
        volume = read_volume_samples(tiny_run / f"results/samples/tiny/volume/{sequence}.h5")
        assert volume["points"].shape == (2, 800, 3)
        assert np.allclose(volume["weights"].sum(axis=1), 1, rtol=1e-5)
        assert 0 < volume["inside"].mean() < 1
        renders = sorted((tiny_run / "results/renders/tiny" / sequence).glob("frame_*.png"))
        assert [r.name for r in renders] == ["frame_000001.png", "frame_000003.png"]
        image = np.asarray(Image.open(renders[0]))
        assert image.shape == (64, 64, 4) and image[..., 3].max() == 255 and image[..., 3].min() == 0
        for stage in STAGES:
            assert (tiny_run / f"logs/{stage}/tiny/{sequence}.log").exists()
            assert (tiny_run / f"benchmarks/{stage}/tiny/{sequence}.tsv").exists()
    counts, _, text = planned_jobs(tiny_run, TINY)
    assert not counts, f"a finished run should plan nothing:\n{text}"


def test_changing_volume_count_plans_only_volume_jobs(tiny_run):
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["volume"]["n_points"] = 900
    counts, wildcards, text = planned_jobs(tiny_run, changed)
    assert counts == Counter({"sample_volume": len(SEQUENCES), "mesh_branch": 1}), text


def test_replacing_one_demo_sequence_reruns_only_it(tiny_run, tmp_path):
    work = tmp_path / "copy"
    shutil.copytree(tiny_run, work, symlinks=True)
    path = work / "results/demo_bodies/tiny/sequences/50004_knees/registrations.hdf5"
    with h5py.File(path, "r+") as fh:
        fh["50004_knees"][...] = fh["50004_knees"][...] * np.float32(1.01)
    counts, wildcards, text = planned_jobs(work, TINY)
    assert wildcards == {"50004_knees"}, text
    # the assembled DFAUST files are remade too: they hold every demo sequence
    assert counts == Counter({stage: 1 for stage in STAGES} | {"make_demo_bodies": 1, "mesh_branch": 1}), text


def test_changing_one_demo_subject_remakes_only_its_sequences(tiny_run, tmp_path):
    work = tmp_path / "copy"
    shutil.copytree(tiny_run, work, symlinks=True)
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["demo_bodies"]["subjects"]["50004"] = "m"
    counts, wildcards, text = planned_jobs(work, changed)
    assert wildcards == {"50004_knees", "50004_punching"}, text
    assert counts == Counter({stage: 2 for stage in STAGES + ["make_demo_sequence"]}
                             | {"make_demo_bodies": 1, "mesh_branch": 1}), text
    # and the plan holds once run: one invocation brings everything up to date
    snakemake(work, "--cores", "2", config=changed)
    assert not planned_jobs(work, changed)[0]


def test_replacing_one_downloaded_sequence_reruns_only_it(tiny_run, tmp_path):
    """Registrations given as paths (the real-data case): one sequence edited, one rerun."""
    raw = tmp_path / "dfaust"
    raw.mkdir()
    for sex in "mf":
        shutil.copy(tiny_run / f"results/demo_bodies/tiny/registrations_{sex}.hdf5", raw)
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["meshes"].update(dataset="downloaded", sequences=["knees"],
                            registrations={"m": str(raw / "registrations_m.hdf5"),
                                           "f": str(raw / "registrations_f.hdf5")})
    work = tmp_path / "work"
    work.mkdir()
    snakemake(work, "--cores", "2", config=config)
    assert not planned_jobs(work, config)[0]
    with h5py.File(raw / "registrations_m.hdf5", "r+") as fh:
        fh["50002_knees"][:, :, 0] += np.float32(0.001)
    counts, wildcards, text = planned_jobs(work, config)
    assert wildcards == {"50002_knees"}, text
    assert counts == Counter({stage: 1 for stage in STAGES} | {"mesh_branch": 1}), text


def test_bad_input_fails_the_job_with_one_clear_line(tmp_path):
    """NaN vertices in a downloaded file: the job stops, its log names file, key and frame."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=2)
    verts = np.repeat(sphere.vertices[:, :, None], 4, axis=2).astype(np.float32)
    verts[5, 0, 2] = np.nan
    for sex, subject in (("m", "50002"), ("f", "50004")):
        write_registrations(tmp_path / f"registrations_{sex}.hdf5", {f"{subject}_knees": verts},
                            sphere.faces.astype(np.int32))
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["meshes"].update(dataset="bad", sequences=["knees"], frame_stride=1, drop_first=0,
                            registrations={"m": str(tmp_path / "registrations_m.hdf5"),
                                           "f": str(tmp_path / "registrations_f.hdf5")})
    target = "results/meshes/bad/50002_knees"
    out = snakemake(tmp_path, "--cores", "1", target, config=config, check=False)
    assert out.returncode != 0
    log = (tmp_path / "logs/extract_meshes/bad/50002_knees.log").read_text()
    errors = [line for line in log.splitlines() if line.startswith("ERROR")]
    assert errors == [f"ERROR: file {tmp_path / 'registrations_m.hdf5'}, key '50002_knees', "
                      "frame 2: vertices contain NaN or inf"]
    assert "Traceback" not in log
    assert not (tmp_path / target).exists()
    assert not list((tmp_path / "results/meshes/bad").glob(".*partial"))


def test_real_data_config_plans_the_pairs_the_files_hold(tmp_path):
    """workflow/configs/dfaust.yaml against files in DFAUST's layout that lack some pairs."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=1)
    verts = np.repeat(sphere.vertices[:, :, None], 3, axis=2).astype(np.float32)
    held = {"m": ["50002_knees", "50002_hips", "50007_knees"], "f": ["50004_knees"]}
    for sex, keys in held.items():
        write_registrations(tmp_path / f"registrations_{sex}.hdf5", dict.fromkeys(keys, verts),
                            sphere.faces.astype(np.int32))
    config = yaml.safe_load((ROOT / "workflow/configs/dfaust.yaml").read_text())
    assert config["surface"]["n_points"] == config["volume"]["n_points"] == 100_000
    assert config["volume"]["cuboid"] == [1.0, 2.0, 1.0]
    config["meshes"]["subjects"] = ["50002", "50004", "50007"]
    config["meshes"]["registrations"] = {sex: str(tmp_path / f"registrations_{sex}.hdf5")
                                         for sex in "mf"}
    counts, wildcards, text = planned_jobs(tmp_path, config)
    assert wildcards == {"50002_knees", "50002_hips", "50007_knees", "50004_knees"}, text
    assert counts == Counter({stage: 4 for stage in STAGES} | {"mesh_branch": 1}), text
    assert "pairs are not in the data" in text


def test_schema_lists_exactly_the_demo_motions():
    from shapepose.bodies.motions import MOTIONS

    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    listed = schema["properties"]["demo_bodies"]["properties"]["sequences"]["items"]["enum"]
    assert sorted(listed) == sorted(MOTIONS)


def test_unknown_demo_motion_is_rejected_before_any_job(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(TINY))
    bad["demo_bodies"]["sequences"] = ["knees", "moonwalk"]
    out = snakemake(tmp_path, "-n", config=bad, check=False)
    assert out.returncode != 0 and "moonwalk" in out.stdout + out.stderr
    assert not (tmp_path / "results").exists()
