"""Pose2Mesh's demo data and reader (layout, bad input), and both training stages: they learn,
and a run stopped by SIGTERM resumes to the same bytes."""

import contextlib
import json
import os
import shutil
import signal

import numpy as np
import pandas as pd
import pytest
import torch

from shapepose.errors import InputError
from shapepose.pose2mesh import data as h36m
from shapepose.pose2mesh import train as p2m_train
from shapepose.pose2mesh.demo import make_demo_h36m
from shapepose.pose2mesh.evaluate import eval_pose2mesh
from shapepose.pose2mesh.joints import TEST_SUBJECTS
from shapepose.training import SIGTERM_EXIT_STATUS, load_exported

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEMO = {"seed": 3, "motions": ["punching", "knees"], "frames": 12, "fps": 6, "subactions": 2,
        "image_size": [1000, 1000],
        "cameras": {"azimuths": [45, 135, 225, 315], "jitter_deg": 5, "elevation": [5, 15],
                    "distance": [4.5, 5.5], "fov_y": 47.0},
        "regressor": {"candidates": 12}, "detections": {"std": 3.0, "swap_probability": 0.2},
        "test_subsample": 2}
SPLIT = {"val_subjects": [8], "subsample": {"train": 1, "val": 2, "test": 2}, "fitting_threshold": 25.0}
NOISE = {"std": 2.0, "probability": 0.5}
MODEL = {"posenet_hidden": 128, "posenet_blocks": 2, "dropout": 0.1, "meshnet_width": 16,
         "chebyshev_order": 3}
LOSSES = {"normal_weight": 0.1, "joint_weight": 1e-3, "edge_weight": 20, "edge_start": 3}
EXPERIMENT = {"optimizer": "adam", "lr": 1e-3, "rescaling": "corrected"}


def training(steps, batch_size=32, **changes):
    return {"steps": steps, "batch_size": batch_size, "lr_steps": [2], "lr_factor": 0.5,
            "checkpoint_every": 10, "validate_every": 10, "log_every": 5, "record_every": None,
            "keep_last": 1, "tensorboard": False, **changes}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("h36m") / "data"
    make_demo_h36m(out=root, **DEMO)
    return root


def copy_of(demo, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(demo, target)
    return target


# ---- the layout -----------------------------------------------------------------------------------

def test_demo_writes_the_human36m_layout(demo):
    names = sorted(p.name for p in (demo / "annotations").iterdir())
    assert names == sorted(f"Human36M_subject{s}_{k}.json" for s in (1, 5, 6, 7, 8, 9, 11)
                           for k in ("data", "camera", "joint_3d", "smpl_param"))
    data = json.loads((demo / "annotations/Human36M_subject9_data.json").read_text())
    img = data["images"][0]
    assert set(img) == {"id", "file_name", "width", "height", "subject", "action_name", "action_idx",
                        "subaction_idx", "cam_idx", "frame_idx"}
    assert img["file_name"] == "s_09_act_02_subact_01_ca_01/s_09_act_02_subact_01_ca_01_000001.jpg"
    assert len(data["images"]) == 2 * 2 * 4 * 12 == len(data["annotations"])
    assert len(data["annotations"][0]["bbox"]) == 4
    cameras = json.loads((demo / "annotations/Human36M_subject9_camera.json").read_text())
    assert sorted(cameras) == ["1", "2", "3", "4"] and set(cameras["1"]) == {"R", "t", "f", "c"}
    joints = json.loads((demo / "annotations/Human36M_subject9_joint_3d.json").read_text())
    assert np.shape(joints["3"]["2"]["11"]) == (17, 3)
    params = json.loads((demo / "annotations/Human36M_subject9_smpl_param.json").read_text())
    assert params["body_model"] == "shapepose_coarse"
    assert set(params["2"]["1"]["0"]) == {"pose", "shape", "trans"}
    regressor = np.load(demo / "J_regressor_h36m_correct.npy")
    assert regressor.shape == (17, 752) and (regressor >= 0).all()
    assert np.allclose(regressor.sum(1), 1, atol=1e-5) and ((regressor > 0).sum(1) <= 12).all()
    detections = json.loads((demo / "absnet_output_on_testset.json").read_text())
    assert len(detections) == 2 * 2 * 2 * 4 * 6  # S9, S11 x actions x subactions x cameras x frames / 2


def test_reader_gives_camera_frame_targets_and_realistic_detections(demo):
    regressor = h36m.read_regressor(demo, 752)
    test = h36m.read_split(demo, TEST_SUBJECTS, 2, regressor, 25.0,
                           detections=demo / h36m.DETECTIONS)
    assert len(test) == 192 and test.names == sorted(test.names, key=lambda n: n.split("/")[-1])
    assert test.mesh_valid.all()
    regressed = regressor @ (test.mesh * 1000)
    relative = test.joint_cam - test.joint_cam[:, :1]
    error = np.linalg.norm(regressed - relative, axis=-1).mean()
    assert 1.0 < error < 25.0  # regressed joints differ from the skeleton's, but not by much
    pixel_error = np.linalg.norm(test.inputs - test.joint_img, axis=-1)
    assert 1.0 < np.median(pixel_error) < 20.0
    assert (pixel_error.max(1) > 100).any()  # some frames have their arms or legs swapped
    assert np.allclose(h36m.normalize_2d(test.inputs).mean(1), 0, atol=1e-5)


# ---- bad input ----------------------------------------------------------------------------------

def _edit(path, change):
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))


def test_joint_file_frame_count_disagreeing_with_the_data_file(demo, tmp_path):
    root = copy_of(demo, tmp_path)
    path = root / "annotations/Human36M_subject9_joint_3d.json"
    _edit(path, lambda c: c["3"]["1"].pop("11"))
    with pytest.raises(InputError, match="11 frames of joints.*12.*check lengths") as info:
        h36m.read_split(root, [9], 2, h36m.read_regressor(root, 752), 25.0)
    assert info.value.path == str(path) and info.value.key == "3/1"


def test_missing_camera(demo, tmp_path):
    root = copy_of(demo, tmp_path)
    path = root / "annotations/Human36M_subject11_camera.json"
    _edit(path, lambda c: c.pop("3"))
    with pytest.raises(InputError, match="camera 3") as info:
        h36m.read_split(root, [11], 2, h36m.read_regressor(root, 752), 25.0)
    assert info.value.path == str(path) and info.value.key == "3"


def test_non_finite_joints(demo, tmp_path):
    root = copy_of(demo, tmp_path)
    path = root / "annotations/Human36M_subject5_joint_3d.json"
    text = path.read_text()
    content = json.loads(text)
    content["2"]["2"]["4"][6][1] = "NaN"
    path.write_text(json.dumps(content).replace('"NaN"', "NaN"))
    with pytest.raises(InputError, match="finite") as info:
        h36m.read_split(root, [5], 2, h36m.read_regressor(root, 752), 25.0)
    assert info.value.path == str(path) and info.value.key == "2/2/4"


def test_regressor_of_the_wrong_shape(demo, tmp_path):
    root = copy_of(demo, tmp_path)
    np.save(root / h36m.REGRESSOR, np.ones((14, 752), dtype=np.float32))
    with pytest.raises(InputError, match=r"shape \(14, 752\), expected \(17, 752\)") as info:
        h36m.read_regressor(root, 752)
    assert info.value.path == str(root / h36m.REGRESSOR)


def test_detection_count_disagreeing_with_the_test_frames(demo, tmp_path):
    root = copy_of(demo, tmp_path)
    path = root / h36m.DETECTIONS
    _edit(path, lambda c: c.pop(sorted(c)[0]))
    with pytest.raises(InputError, match="191 detections for 192 test images") as info:
        h36m.read_split(root, TEST_SUBJECTS, 2, h36m.read_regressor(root, 752), 25.0,
                        detections=path)
    assert info.value.path == str(path)


def test_parameters_of_another_body_model(demo, tmp_path):
    root = copy_of(demo, tmp_path)
    path = root / "annotations/Human36M_subject1_smpl_param.json"
    _edit(path, lambda c: c.update(body_model="star"))
    with pytest.raises(InputError, match="'star'") as info:
        h36m.read_split(root, [1], 2, h36m.read_regressor(root, 752), 25.0)
    assert info.value.key == "body_model" and info.value.path == str(path)
    _edit(path, lambda c: c.pop("body_model"))  # the real files: SMPL fits, no key
    with pytest.raises(InputError, match="set pose2mesh.smpl_model"):
        h36m.read_split(root, [1], 2, h36m.read_regressor(root, 752), 25.0)


# ---- training -----------------------------------------------------------------------------------

def _posenet(demo, folder, steps=60, **kwargs):
    return p2m_train.train_posenet(
        data=str(demo), out=folder / "posenet.pt", losses_csv=folder / "posenet.csv",
        checkpoint_dir=folder / "ck_posenet", experiment={"optimizer": "adam", "lr": 3e-3},
        seed=11, device="cpu", split=SPLIT, noise=NOISE, model=MODEL,
        training=kwargs.pop("training", training(steps)), **kwargs)


def _meshnet(demo, folder, steps=60, experiment=EXPERIMENT, **kwargs):
    return p2m_train.train_meshnet(
        data=str(demo), posenet=folder / "posenet.pt", out=folder / "model.pt",
        losses_csv=folder / "losses.csv", checkpoint_dir=folder / "ck_meshnet",
        experiment=experiment, seed=11, device="cpu", split=SPLIT, noise=NOISE, model=MODEL,
        graph={"levels": 5}, losses=LOSSES, training=kwargs.pop("training", training(steps, 16)),
        **kwargs)


@contextlib.contextmanager
def single_thread():
    """One torch thread for a module fixture (the one_torch_thread fixture comes after them)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("trained")
    with single_thread():
        _posenet(demo, folder, steps=150)
        _meshnet(demo, folder, steps=100)
        summary = eval_pose2mesh(data=str(demo), posenet=folder / "posenet.pt",
                                 model=folder / "model.pt", out=folder / "eval.json",
                                 predictions=folder / "predictions.npz", experiment="adam",
                                 replicate=0, split=SPLIT, device="cpu")
    return folder, summary


def test_short_training_beats_the_mean_pose_and_pa_mpjpe_is_below_mpjpe(trained):
    folder, summary = trained
    assert summary["trained"]["mpjpe"] < 0.8 * summary["mean"]["mpjpe"], summary
    assert summary["posenet"]["mpjpe"] < 0.8 * summary["mean"]["pose_mpjpe"], summary
    assert summary["trained"]["mpjpe"] < summary["untrained"]["mpjpe"], summary
    assert summary["trained"]["pa_mpjpe"] < summary["trained"]["mpjpe"], summary
    assert summary["trained"]["mpvpe"] < summary["mean"]["mpvpe"], summary
    losses = pd.read_csv(folder / "losses.csv")
    assert "val_mpjpe" in losses and losses["val_mpjpe"].notna().sum() == 10
    assert "val_mpjpe" in pd.read_csv(folder / "posenet.csv")


def test_predictions_recompute_the_summary(trained):
    from shapepose.pose2mesh.metrics import mpjpe, pa_mpjpe

    folder, summary = trained
    with np.load(folder / "predictions.npz") as npz:
        regressed = npz["regressor"] @ npz["pred_vertices"]
        assert np.allclose(regressed, npz["pred_joints"], atol=1e-3)
        assert np.isclose(mpjpe(npz["pred_joints"], npz["true_joints"]).mean(),
                          summary["trained"]["mpjpe"], rtol=1e-5)
        assert np.isclose(pa_mpjpe(npz["pred_joints"], npz["true_joints"]).mean(),
                          summary["trained"]["pa_mpjpe"], rtol=1e-5)
        assert np.isclose(npz["trained_mpjpe"].mean(), summary["trained"]["mpjpe"])
        assert npz["true_vertices"].shape == npz["pred_vertices"].shape == (192, 752, 3)
        assert len(npz["names"]) == 192


def test_evaluation_gives_the_same_bytes_twice(trained, demo, tmp_path):
    folder, _ = trained
    eval_pose2mesh(data=str(demo), posenet=folder / "posenet.pt", model=folder / "model.pt",
                   out=tmp_path / "eval.json", predictions=tmp_path / "predictions.npz",
                   experiment="adam", replicate=0, split=SPLIT, device="cpu")
    for name in ("eval.json", "predictions.npz"):
        assert (tmp_path / name).read_bytes() == (folder / name).read_bytes(), name


def test_untrained_model_is_stage_two_at_step_zero(trained, demo):
    folder, _ = trained
    faces = h36m.mesh_faces()
    first = p2m_train.load_pose2mesh(folder / "model.pt", faces, "cpu", untrained=True,
                                     posenet_path=folder / "posenet.pt")
    again = p2m_train.load_pose2mesh(folder / "model.pt", faces, "cpu", untrained=True,
                                     posenet_path=folder / "posenet.pt")
    posenet = load_exported(folder / "posenet.pt")["posenet"]
    for key, value in first.posenet.state_dict().items():
        assert torch.equal(value, posenet[key])
    for (key, a), b in zip(first.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), key


class _Terminate:
    """Sends SIGTERM to this process on the `at`-th call of batch_inputs (training batches and
    validation both call it); the trainer finishes the step, checkpoints and exits with 143."""

    def __init__(self, at):
        self.at, self.calls = at, 0
        self.original = p2m_train.batch_inputs

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return self.original(*args, **kwargs)


@pytest.mark.parametrize("stage", ["posenet", "meshnet"])
def test_resume_after_sigterm_is_bit_identical(stage, demo, tmp_path, monkeypatch):
    runs = {}
    for name in ("straight", "stopped"):
        folder = tmp_path / name
        folder.mkdir()
        if stage == "meshnet":
            _posenet(demo, folder, steps=20)
        train_stage = _posenet if stage == "posenet" else _meshnet
        if name == "stopped":
            with monkeypatch.context() as m:
                m.setattr(p2m_train, "batch_inputs", _Terminate(at=13))
                with pytest.raises(SystemExit) as info:
                    train_stage(demo, folder, steps=30)
            assert info.value.code == SIGTERM_EXIT_STATUS
            assert not (folder / ("posenet.pt" if stage == "posenet" else "model.pt")).exists() \
                or stage == "meshnet"
            kept = sorted(p.name for p in (folder / f"ck_{stage}").glob("step_*.pt"))
            assert len(kept) == 1 and 10 < int(kept[0][5:13]) < 30, kept  # stopped mid-run
        train_stage(demo, folder, steps=30)
        runs[name] = folder
    out = "posenet.pt" if stage == "posenet" else "model.pt"
    a, b = (load_exported(runs[n] / out) for n in ("straight", "stopped"))
    assert a["meta"]["step"] == b["meta"]["step"]
    for key in a:
        if key != "meta":
            for k in a[key]:
                assert torch.equal(a[key][k], b[key][k]), (key, k)
    losses = "posenet.csv" if stage == "posenet" else "losses.csv"
    assert (runs["straight"] / losses).read_bytes() == (runs["stopped"] / losses).read_bytes()


def test_reader_poses_smpl_fits_in_the_camera_frame(demo, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_pose2mesh_geometry import _toy_smpl

    root = copy_of(demo, tmp_path)
    toy = _toy_smpl(tmp_path)
    path = root / "annotations/Human36M_subject9_smpl_param.json"
    trans = [0.1, -0.2, 0.3]

    def to_smpl(content):
        content.pop("body_model")
        for action in content.values():
            for sub in action.values():
                for frame in sub:
                    sub[frame] = {"pose": [0.0] * 9, "shape": [0.0] * 4, "trans": trans}

    _edit(path, to_smpl)
    regressor = np.full((17, 12), 1 / 12)
    samples = h36m.read_split(root, [9], 2, regressor, 1e9, smpl_model=tmp_path / "smpl.npz")
    cameras = json.loads((root / "annotations/Human36M_subject9_camera.json").read_text())
    cam = cameras[str(int(samples.names[0].split("_ca_")[1][:2]))]
    world = (toy["v_template"] + trans) * 1000.0
    expected = (world @ np.array(cam["R"]).T + np.array(cam["t"]) - samples.joint_cam[0, 0]) / 1000
    assert np.allclose(samples.mesh[0], expected, atol=1e-5)
    assert h36m.mesh_faces(tmp_path / "smpl.npz").tolist() == toy["f"].tolist()
