"""The car datasets: both readers on hand-written fixtures, the procedural meshes, and the demo."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import skimage.measure
from PIL import Image

from shapepose.cars.demo import make_demo_cars
from shapepose.cars.meshes import CAR, TRUCK, CarShape, car_parts, merge_parts
from shapepose.cars.synthetic import blender_extrinsic, blender_location
from shapepose.errors import InputError
from shapepose.images.dpc import project_points, read_dpc
from shapepose.images.instances import read_instances
from shapepose.images.rgba import read_photo
from shapepose.images.stanford import read_stanford_cars

from helpers.data import CAR_SHAPES

SYNTHETIC = dict(models=4, views=5, image_size=64, diagonal=1.0, elevation=[-20, 40], lights=[1, 4],
                 gt_points=2000, split=dict(train=0.5, val=0.25, test=0.25), truck_fraction=0.25)
PHOTOS = dict(train=8, test=8, segmenter_train=3, jpeg_quality=90, long_side=[160, 240],
              aspect=[1.2, 1.8], elevation=[0, 25], fov_y=[30, 55], car_scale=[0.45, 0.9],
              small_size=[30, 60], lights=[1, 3], p_small=0.2, p_cropped=0.4, p_occluded=0.4,
              p_grayscale=0.4, p_person=0.4, p_truck=0.2, p_second_car=0.3)


# ---- Stanford Cars reader ------------------------------------------------------------------

def _struct_array(rows, with_class=True):
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"] + (["class"] if with_class else []) + ["fname"]
    arr = np.zeros((1, len(rows)), dtype=[(f, object) for f in fields])
    for k, row in enumerate(rows):
        for f in fields:
            # Like the real devkit: numbers as 1 x 1 matrices, the file name as a char array.
            arr[0, k][f] = np.array([[row[f]]], dtype=np.uint16) if f != "fname" else row[f]
    return arr


def _stanford_fixture(root: Path, labelled_test: bool):
    rng = np.random.default_rng(0)
    (root / "cars_train").mkdir(parents=True)
    (root / "cars_test").mkdir()
    (root / "devkit").mkdir()
    colour = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(colour).save(root / "cars_train/00001.jpg", quality=95)
    Image.fromarray(colour[:20, :25]).save(root / "cars_train/00002.jpg", quality=95)
    gray = rng.integers(0, 256, (24, 32), dtype=np.uint8)
    Image.fromarray(gray, mode="L").save(root / "cars_test/00001.jpg", quality=95)
    train = [dict(bbox_x1=3, bbox_y1=4, bbox_x2=30, bbox_y2=25, **{"class": 7}, fname="00001.jpg"),
             dict(bbox_x1=1, bbox_y1=2, bbox_x2=20, bbox_y2=18, **{"class": 2}, fname="00002.jpg")]
    test = [dict(bbox_x1=5, bbox_y1=6, bbox_x2=22, bbox_y2=20, **{"class": 9}, fname="00001.jpg")]
    scipy.io.savemat(root / "devkit/cars_train_annos.mat", {"annotations": _struct_array(train)})
    scipy.io.savemat(root / "devkit/cars_test_annos.mat", {"annotations": _struct_array(test, False)})
    if labelled_test:  # a single record: loadmat squeezes it to a 0-d struct
        scipy.io.savemat(root / "devkit/cars_test_annos_withlabels.mat",
                         {"annotations": _struct_array(test)})
    return colour, gray


@pytest.mark.parametrize("labelled_test", [True, False])
def test_stanford_reader_reads_back_the_fixture(tmp_path, labelled_test):
    colour, gray = _stanford_fixture(tmp_path, labelled_test)
    photos = read_stanford_cars(tmp_path)
    assert [p.relpath for p in photos] == ["cars_test/00001.jpg", "cars_train/00001.jpg",
                                           "cars_train/00002.jpg"]
    by = {p.relpath: p for p in photos}
    assert by["cars_train/00001.jpg"].bbox == (3, 4, 30, 25)
    assert by["cars_train/00001.jpg"].class_id == 7 and by["cars_train/00002.jpg"].class_id == 2
    assert by["cars_train/00002.jpg"].split == "train" and by["cars_test/00001.jpg"].split == "test"
    assert by["cars_test/00001.jpg"].bbox == (5, 6, 22, 20)
    assert by["cars_test/00001.jpg"].class_id == (9 if labelled_test else None)
    assert by["cars_test/00001.jpg"].path == tmp_path.resolve() / "cars_test/00001.jpg"

    rgb = read_photo(by["cars_test/00001.jpg"].path)
    assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
    assert np.abs(rgb[..., 0].astype(int) - gray).mean() < 12  # JPEG, quality 95, of noise
    assert read_photo(by["cars_train/00002.jpg"].path).shape == (20, 25, 3)


def test_stanford_reader_names_the_bad_file(tmp_path):
    _stanford_fixture(tmp_path, False)
    (tmp_path / "cars_train/00002.jpg").unlink()  # annotated but missing
    with pytest.raises(InputError, match="cars_train_annos.mat"):
        read_stanford_cars(tmp_path)
    (tmp_path / "devkit/cars_train_annos.mat").write_bytes(b"not a mat file")
    with pytest.raises(InputError, match="cars_train_annos.mat"):
        read_stanford_cars(tmp_path)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(InputError, match="broken.jpg"):
        read_photo(bad)


# ---- DPC reader -------------------------------------------------------------------------------

def test_dpc_reader_reads_back_the_fixture(tmp_path):
    rng = np.random.default_rng(1)
    models = ["b0", "a1", "c2"]
    written = {}
    for m in models:
        folder = tmp_path / "renders/02958343" / m
        folder.mkdir(parents=True)
        for k in range(5):
            rgba = rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)
            Image.fromarray(rgba, mode="RGBA").save(folder / f"render_{k}.png")
            pos = blender_location(rng.uniform(0, 360), rng.uniform(-20, 40), rng.uniform(1, 3))
            extrinsic, pos = blender_extrinsic(pos), pos.reshape(1, 3)
            scipy.io.savemat(folder / f"camera_{k}.mat", {"extrinsic": extrinsic, "pos": pos})
            written[m, k] = (rgba, extrinsic, pos)
        points = rng.normal(size=(50, 3))
        (tmp_path / "gt/downsampled/02958343").mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(tmp_path / f"gt/downsampled/02958343/{m}.mat", {"points": points})
        written[m] = points
    (tmp_path / "splits").mkdir()
    for name, ids in [("train", ["b0", "a1"]), ("val", []), ("test", ["c2"])]:
        (tmp_path / f"splits/02958343_{name}.txt").write_text("".join(i + "\n" for i in ids))

    data = read_dpc(tmp_path)
    assert data.models == ["a1", "b0", "c2"] and data.n_views == 5
    assert data.split("train") == ["b0", "a1"] and data.split("val") == [] and data.split("test") == ["c2"]
    for m in models:
        for k in range(5):
            rgba, extrinsic, pos = written[m, k]
            assert np.array_equal(data.load_view(m, k), rgba)
            cam = data.load_camera(m, k)
            assert np.array_equal(cam["extrinsic"], extrinsic) and np.array_equal(cam["position"], pos[0])
        assert np.array_equal(data.load_points(m), written[m].astype(np.float32))

    (tmp_path / "splits/02958343_test.txt").write_text("c2\nzz\n")
    with pytest.raises(InputError, match="02958343_test.txt"):
        read_dpc(tmp_path)


# ---- meshes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", [CAR, TRUCK])
def test_car_parts_are_closed_with_the_asked_proportions(kind):
    shape = CarShape(kind, 4.4, 1.8, 1.5 if kind == CAR else 2.6, 0.2, 0.32, 1.9 if kind == CAR else 1.5,
                     -0.1 if kind == CAR else 0.31, (0.5, 0.2, 0.1))
    parts = car_parts(shape)
    for part in parts:
        # Closed and consistently wound: every directed edge once, its reverse exactly once.
        edges = np.concatenate([part.faces[:, [0, 1]], part.faces[:, [1, 2]], part.faces[:, [2, 0]]])
        directed = {tuple(e) for e in edges}
        assert len(directed) == len(edges)
        assert all((b, a) in directed for a, b in directed)
        # Outward winding: positive signed volume (divergence theorem).
        tri = part.vertices[part.faces]
        assert np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() > 0
    vertices, _, _ = merge_parts(parts)
    np.testing.assert_allclose(vertices.min(axis=0), [-2.2, 0.0, -0.9], atol=1e-9)
    np.testing.assert_allclose(vertices.max(axis=0), [2.2, shape.height, 0.9], atol=1e-9)


# ---- the demo ---------------------------------------------------------------------------------

def _make(root: Path, seed: int = 5) -> Path:
    make_demo_cars(str(root / "synthetic"), str(root / "photos"), str(root / "truth.json"),
                   str(root / "segmenter"), seed=seed, synthetic_options=SYNTHETIC,
                   photo_options=PHOTOS, shape=CAR_SHAPES)
    return root


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("demo"))


def test_synthetic_cameras_match_the_renders(demo):
    data = read_dpc(demo / "synthetic")
    assert len(data.models) == 4 and data.n_views == 5
    assert sorted(data.split("train") + data.split("val") + data.split("test")) == data.models
    for m in data.models:
        points = data.load_points(m)
        for k in range(5):
            alpha = data.load_view(m, k)[..., 3]
            cam = data.load_camera(m, k)
            pos = cam["position"]
            # DPC: the camera sits 2 units from the object centre, elevation asin(z / |pos|) (z up).
            assert np.linalg.norm(pos) == pytest.approx(2.0)
            assert -20 - 1e-6 <= np.degrees(np.arcsin(pos[2] / 2.0)) <= 40 + 1e-6
            # The extrinsic maps the camera centre to the origin of camera coordinates.
            np.testing.assert_allclose(cam["extrinsic"][:3, :3] @ pos + cam["extrinsic"][:3, 3], 0, atol=1e-9)
            uv = np.rint(project_points(points, cam["extrinsic"], 64)).astype(int)
            inside = (uv >= 0).all(axis=1) & (uv < 64).all(axis=1)
            hit = np.zeros(len(uv), bool)
            hit[inside] = alpha[uv[inside, 1], uv[inside, 0]] > 0
            assert hit.mean() >= 0.95


def test_demo_photos_masks_and_attributes(demo):
    photos = read_stanford_cars(demo / "photos")
    assert len(photos) == 16
    images, _ = read_instances(demo / "truth.json")
    assert {im.image for im in images} == {p.relpath for p in photos}
    seen = {"occluded": 0, "cropped": 0, "grayscale": 0}
    for im, photo in zip(sorted(images, key=lambda i: i.image), photos):
        pixels = read_photo(photo.path)
        assert pixels.shape == (im.height, im.width, 3)
        masks = [i.mask for i in im.instances]
        assert np.max(np.sum(masks, axis=0)) <= 1  # visible masks never overlap
        main = next(i for i in im.instances if i.attributes["main"])
        x, y, w, h = main.bbox
        assert photo.bbox == (x + 1, y + 1, x + w, y + h)  # devkit: 1-based, inclusive
        mask = main.mask
        parts = skimage.measure.label(mask, connectivity=2).max()
        border = mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
        assert main.attributes["occluded"] == (parts > 1)
        assert main.attributes["cropped"] == bool(border)
        if main.attributes["grayscale"]:
            assert np.abs(pixels[..., 0].astype(int) - pixels[..., 2]).max() <= 2
        for key in seen:
            seen[key] += main.attributes[key]
    assert all(n > 0 for n in seen.values()), seen
    segmenter, _ = read_instances(demo / "segmenter/instances.json")
    assert len(segmenter) == 3 and all((demo / "segmenter" / im.image).is_file() for im in segmenter)


def test_demo_is_byte_identical_for_one_seed(demo, tmp_path):
    again = _make(tmp_path)

    def digests(root):
        return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    assert digests(again) == digests(demo)
