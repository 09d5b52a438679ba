"""The demo iPER layout and its readers: what the original code reads, and one error per bad file."""

import torchvision  # noqa: F401  (before any EGL render)

import pickle
import shutil

import numpy as np
import pytest
from PIL import Image

from shapepose.errors import InputError
from shapepose.lwgan.data import (DEMO_BODY_MODEL, demo_body, frame_paths, make_demo_iper,
                                  open_video, posed_vertices, read_frame, read_split)
from shapepose.render.correspondence import project_weak

SETTINGS = dict(seed=5, actors=3, val_actors=[3], frames=4, image_size=32, fps=8.0,
                motions=["punching"], scale=1.0)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("iper") / "iPER"
    make_demo_iper(str(root), **SETTINGS)
    return root


def test_layout_as_the_original_reads_it(demo):
    assert read_split(demo, "train.txt") == ["001/1/1", "001/1/2", "002/1/1", "002/1/2"]
    assert read_split(demo, "val.txt") == ["003/1/1", "003/1/2"]
    video = open_video(demo, "002/1/2")
    assert [p.name for p in video.frames] == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]
    with open(demo / "smpls/002/1/2/pose_shape.pkl", "rb") as fh:
        fits = pickle.load(fh)
    assert fits["cams"].shape == (4, 3) and fits["body_model"] == DEMO_BODY_MODEL
    kps = pickle.load(open(demo / "smpls/002/1/2/kps.pkl", "rb"))["kps"]
    assert kps.shape[0] == 4 and kps.shape[2] == 2
    # the fits re-pose the rendered body: its projected vertices cover the frame's person
    vertices = posed_vertices(demo_body(video.fits), video.fits.pose)
    px = project_weak(vertices[0], video.fits.cams[0], 32)
    assert px.min() > -1 and px.max() < 32
    image = read_frame(video.frames[0], 32).astype(float)
    cols, rows = np.clip(np.rint(px), 0, 31).astype(int).T
    background = image[0, 0]
    on = np.abs(image[rows, cols] - background).sum(-1)
    assert np.median(on) > 20  # the body is where the fits put it


def test_same_config_same_bytes(demo, tmp_path):
    again = tmp_path / "again"
    make_demo_iper(str(again), **SETTINGS)
    for rel in ("images/001/1/2/3.jpg", "smpls/003/1/1/pose_shape.pkl", "train.txt"):
        assert (again / rel).read_bytes() == (demo / rel).read_bytes()


def test_numeric_frame_order(tmp_path):
    for k in (10, 2, 1):
        (tmp_path / f"{k}.jpg").write_bytes(b"")
    assert [p.name for p in frame_paths(tmp_path)] == ["1.jpg", "2.jpg", "10.jpg"]


def copy(demo, tmp_path):
    root = tmp_path / "iPER"
    shutil.copytree(demo, root)
    return root


def test_frame_count_differs_from_fits(demo, tmp_path):
    root = copy(demo, tmp_path)
    (root / "images/001/1/1/3.jpg").unlink()
    with pytest.raises(InputError, match=r"images/001/1/1: 3 frames but 4 fits"):
        open_video(root, "001/1/1")


def test_fits_missing_a_key(demo, tmp_path):
    root = copy(demo, tmp_path)
    path = root / "smpls/001/1/1/pose_shape.pkl"
    fits = pickle.load(open(path, "rb"))
    del fits["shape"]
    pickle.dump(fits, open(path, "wb"))
    with pytest.raises(InputError, match=r"pose_shape.pkl, key 'shape': missing key"):
        open_video(root, "001/1/1")


def test_non_square_frame(demo, tmp_path):
    path = tmp_path / "0.jpg"
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(path)
    with pytest.raises(InputError, match=r"0.jpg: frame is 40 x 32; .* needs square"):
        read_frame(path, 32)


def test_corrupt_fits(demo, tmp_path):
    root = copy(demo, tmp_path)
    (root / "smpls/001/1/1/pose_shape.pkl").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="cannot be read as a pickle"):
        open_video(root, "001/1/1")
