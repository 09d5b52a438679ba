"""Mask R-CNN stage: RLE storage, shards and their gather, robustness of a shard, the backends'
output conventions, instance matching, and a short training run."""

import csv
import importlib.util
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from shapepose.errors import InputError
from shapepose.images.instances import (
    CAR, PERSON, TRUCK, ImageInstances, Instance, decode_mask, encode_mask, read_instances,
    write_instances)
from shapepose.images.scoring import match_instances, score_images
from shapepose.images.stanford import write_class_names, write_devkit_annotations
from shapepose.segmentation import (
    COCO_IDS, Segmenter, TorchvisionSegmenter, build_demo_model, coco_ids_of_contiguous,
    load_segmenter)
from shapepose.segmentation.shards import (
    gather_segments, parse_shard, segment, segment_shard, shard_of)

from helpers.configs import config_section

TINY_ARCH = {"name": "demo", "backbone": "resnet18", "fpn_channels": 16, "head_channels": 16,
             "group_norm": 4, "min_size": 64, "max_size": 96}


def tiny_training(**changes) -> dict:
    """config.yaml's segmentation.train at a test's size."""
    return config_section("segmentation.train", arch=TINY_ARCH, batch_size=2, lr=0.003,
                          weight_decay=0.0, jitter=0.1, holdout=0.2, **changes)


# ---- fixtures ------------------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # detection models: 10x slower on two


def car_photo(rng, height=64, width=80):
    """A noisy background with one flat-coloured box ("car"); returns (image, mask)."""
    image = rng.integers(0, 90, (height, width, 3)).astype(np.uint8)
    y0, x0 = rng.integers(4, height // 3), rng.integers(4, width // 3)
    y1, x1 = y0 + rng.integers(height // 3, height // 2), x0 + rng.integers(width // 3, width // 2)
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = True
    image[mask] = rng.integers(170, 255, 3)
    return image, mask


def write_stanford(root: Path, photos: dict[str, np.ndarray | bytes]) -> Path:
    """A minimal Stanford Cars layout holding `photos` ({relpath: image or raw bytes})."""
    for folder in ("cars_train", "cars_test", "devkit"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    entries = {"train": [], "test": []}
    for relpath, content in photos.items():
        path = root / relpath
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            Image.fromarray(content).save(path)
        split = relpath.split("/")[0].removeprefix("cars_")
        entries[split].append({"bbox_x1": 1, "bbox_y1": 1, "bbox_x2": 2, "bbox_y2": 2,
                               "class": 1, "fname": Path(relpath).name})
    write_class_names(root / "devkit/cars_meta.mat", ["Demo"])
    write_devkit_annotations(root / "devkit/cars_train_annos.mat", entries["train"])
    write_devkit_annotations(root / "devkit/cars_test_annos.mat", entries["test"])
    return root


def tiny_segmenter(score_threshold=0.0, favour=None, seed=0):
    """An untrained tiny model; `favour` = a class index its classifier always picks."""
    torch.manual_seed(seed)
    model = build_demo_model(TINY_ARCH, score_threshold=score_threshold)
    if favour is not None:
        layer = model.roi_heads.box_predictor.cls_score
        with torch.no_grad():
            layer.weight.zero_()
            layer.bias.fill_(-10.0)
            layer.bias[favour] = 10.0
    return TorchvisionSegmenter(model, torch.device("cpu"))


class FixedSegmenter(Segmenter):
    """Returns the same instances for any photo, sized to it (a stand-in with known output)."""

    name = "fixed"

    def __init__(self, make):
        self.make = make

    def predict(self, image):
        return self.make(image.shape[:2])


# ---- RLE --------------------------------------------------------------------------------------

def test_rle_round_trip_random_empty_and_full(tmp_path):
    rng = np.random.default_rng(0)
    masks = [rng.random((37, 53)) < p for p in (0.1, 0.5, 0.9)]
    masks += [np.zeros((20, 30), bool), np.ones((20, 30), bool), np.zeros((1, 1), bool)]
    for mask in masks:
        back = decode_mask(encode_mask(mask))
        assert back.dtype == bool and back.shape == mask.shape
        assert np.array_equal(back, mask)
    # and through a file: the counts survive JSON
    images = [ImageInstances(f"cars_test/{k:05d}.jpg", m.shape[1], m.shape[0],
                             [Instance.from_mask(m, CAR, 0.5)]) for k, m in enumerate(masks)]
    write_instances(tmp_path / "i.json", images)
    read, _ = read_instances(tmp_path / "i.json")
    for mask, im in zip(masks, read):
        assert np.array_equal(im.instances[0].mask, mask)
        assert im.instances[0].mask.sum() == mask.sum()


# ---- shards -----------------------------------------------------------------------------------

def test_shards_partition_the_sorted_photos():
    names = [f"cars_train/{k:05d}.jpg" for k in (5, 1, 9, 3, 7, 2, 8)]
    for n in (1, 2, 3, 7, 9):
        shards = [shard_of(names, parse_shard(f"{k}-of-{n}")[0], n) for k in range(1, n + 1)]
        flat = [x for s in shards for x in s]
        assert sorted(flat) == sorted(names) and len(flat) == len(names)
    assert shard_of(names, 1, 3) == ["cars_train/00002.jpg", "cars_train/00007.jpg"]
    for bad in ("0-of-2", "3-of-2", "1of2", "a-of-b"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def _fake_shards(tmp_path, names, n, segmenter_meta=None):
    files = []
    for k in range(n):
        images = [ImageInstances(r, 10, 8, []) for r in shard_of(names, k, n)]
        path = tmp_path / f"{k + 1}-of-{n}.json"
        write_instances(path, images, {"shard": f"{k + 1}-of-{n}", "segmenter": segmenter_meta})
        files.append(path)
    return files


@pytest.fixture
def five_photos(tmp_path):
    rng = np.random.default_rng(1)
    names = [f"cars_{s}/{k:05d}.jpg" for s, k in
             [("train", 1), ("train", 2), ("train", 3), ("test", 1), ("test", 2)]]
    root = write_stanford(tmp_path / "photos", {r: car_photo(rng, 24, 32)[0] for r in names})
    return root, sorted(names)


def test_gather_keeps_every_photo_exactly_once(tmp_path, five_photos):
    root, names = five_photos
    files = _fake_shards(tmp_path, names, 3, {"backend": "fixed"})
    meta = gather_segments(shards=files, photos=root, out=tmp_path / "all.json")
    merged, stored = read_instances(tmp_path / "all.json")
    assert [im.image for im in merged] == names
    assert stored["shards"] == 3 and stored["n_photos"] == 5 == meta["n_photos"]


@pytest.mark.parametrize("damage", ["missing", "duplicated", "foreign", "wrong_shard"])
def test_gather_rejects_a_damaged_shard_naming_it(tmp_path, five_photos, damage):
    root, names = five_photos
    files = _fake_shards(tmp_path, names, 2)
    victim = files[1]
    images, meta = read_instances(victim)
    if damage == "missing":
        images = images[1:]
    elif damage == "duplicated":
        images = images + images[:1]
    elif damage == "foreign":
        images = images + [ImageInstances(names[0], 10, 8, [])]  # shard 1's photo
    else:
        meta["shard"] = "1-of-2"
    write_instances(victim, images, meta)
    with pytest.raises(InputError) as err:
        gather_segments(shards=files, photos=root, out=tmp_path / "all.json")
    assert str(victim) in str(err.value)
    assert not (tmp_path / "all.json").exists()


# ---- a shard survives bad photos ----------------------------------------------------------------

def test_shard_survives_bad_photos_and_logs_them(tmp_path, caplog):
    rng = np.random.default_rng(2)
    photos = {
        "cars_train/00001.jpg": car_photo(rng, 160, 200)[0],
        "cars_train/00002.jpg": b"this is not a jpeg",        # unreadable
        "cars_train/00003.jpg": car_photo(rng, 40, 60)[0],    # far below 128 px
        "cars_test/00001.jpg": car_photo(rng, 90, 70)[0],
    }
    root = write_stanford(tmp_path / "photos", photos)

    def empty_mask_for_small(size):  # an empty predicted mask on small photos, nothing on others
        if max(size) >= 100:
            return []
        return [Instance.from_mask(np.zeros(size, bool), CAR, 0.9, bbox=(1, 1, 5, 5))]

    caplog.set_level(logging.INFO, logger="shapepose")
    out = tmp_path / "1-of-1.json"
    segment_shard(root, out, shard="1-of-1", segmenter=FixedSegmenter(empty_mask_for_small))
    images, meta = read_instances(out)
    by_name = {im.image: im for im in images}
    assert sorted(by_name) == sorted(photos)
    bad = by_name["cars_train/00002.jpg"]
    assert bad.error and "unreadable" in bad.error and bad.instances == []
    tiny = by_name["cars_train/00003.jpg"]
    assert tiny.error is None and (tiny.width, tiny.height) == (60, 40)
    assert len(tiny.instances) == 1 and tiny.instances[0].mask.sum() == 0  # kept for the filter
    assert by_name["cars_train/00001.jpg"].instances == []
    assert meta["shard"] == "1-of-1" and meta["segmenter"]["backend"] == "fixed"
    assert "cars_train/00002.jpg" in caplog.text
    # one photo (the large one) has no detections; the two small ones carry an empty mask each
    assert "2 instances, 1 photos without detections, 1 with errors" in caplog.text


def test_untrained_model_with_high_threshold_gives_empty_lists(tmp_path):
    rng = np.random.default_rng(3)
    root = write_stanford(tmp_path / "photos", {"cars_test/00001.jpg": car_photo(rng)[0],
                                                "cars_test/00002.jpg": car_photo(rng)[0]})
    segmenter = tiny_segmenter(score_threshold=0.999)
    segment_shard(root, tmp_path / "s.json", shard="1-of-1", segmenter=segmenter)
    images, _ = read_instances(tmp_path / "s.json")
    assert [len(im.instances) for im in images] == [0, 0]
    assert all(im.error is None for im in images)


# ---- backends -----------------------------------------------------------------------------------

def test_torchvision_masks_at_photo_size_with_coco_ids():
    rng = np.random.default_rng(4)
    image, _ = car_photo(rng, 75, 110)
    # The classifier is forced to index 3; the label must come out as COCO id 3 (car), i.e. the
    # model's class index is the COCO id with no remapping.
    instances = tiny_segmenter(score_threshold=0.5, favour=CAR).predict(image)
    assert instances, "a detector forced to say 'car' everywhere found nothing"
    for inst in instances:
        assert inst.category_id == CAR
        assert inst.mask.shape == (75, 110)
        x, y, w, h = inst.bbox
        assert 0 <= x and 0 <= y and x + w <= 110 + 1e-3 and y + h <= 75 + 1e-3
    scores = [i.score for i in instances]
    assert scores == sorted(scores, reverse=True)


def test_missing_weights_file_is_input_error(tmp_path):
    for backend in ("torchvision", "detectron2"):
        with pytest.raises(InputError) as err:
            load_segmenter(backend, tmp_path / "absent.pth", arch="maskrcnn_resnet50_fpn")
        assert "absent.pth" in str(err.value)


def test_coco_state_dict_round_trip(tmp_path):
    """A torchvision COCO-architecture state dict from a path gives the same model back."""
    from shapepose.segmentation.model import build_coco_model

    torch.manual_seed(0)
    model = build_coco_model("maskrcnn_resnet50_fpn")
    torch.save(model.state_dict(), tmp_path / "coco.pth")
    loaded = load_segmenter("torchvision", tmp_path / "coco.pth", arch="maskrcnn_resnet50_fpn")
    for (k, a), b in zip(model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(InputError, match="do not fit"):
        load_segmenter("torchvision", tmp_path / "coco.pth", arch="maskrcnn_resnet50_fpn_v2")


def test_contiguous_to_coco_ids():
    # COCO 2017's 80 classes in contiguous order: person 0, car 2, truck 7, toothbrush 79.
    assert coco_ids_of_contiguous(np.array([0, 2, 7, 79])).tolist() == [PERSON, CAR, TRUCK, 90]
    assert len(set(COCO_IDS)) == 80 and max(COCO_IDS) == 90
    assert not {12, 26, 29, 30, 45, 66, 68, 69, 71, 83} & set(COCO_IDS)  # ids COCO never used
    with pytest.raises(ValueError):
        coco_ids_of_contiguous(np.array([80]))


@pytest.mark.skipif(importlib.util.find_spec("detectron2") is None,
                    reason="detectron2 is not installed (optional backend)")
def test_detectron2_adapter(tmp_path):
    """Runs where detectron2 is importable: a randomly initialised zoo model through the adapter."""
    from detectron2 import model_zoo
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from shapepose.segmentation import Detectron2Segmenter

    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg)
    with torch.no_grad():  # force contiguous class 2 (car) everywhere
        layer = model.roi_heads.box_predictor.cls_score
        layer.weight.zero_()
        layer.bias.fill_(-10.0)
        layer.bias[2] = 10.0
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("weights")
    segmenter = Detectron2Segmenter(tmp_path / "weights.pth", score_threshold=0.5)
    image, _ = car_photo(np.random.default_rng(5), 120, 160)
    instances = segmenter.predict(image)
    assert all(i.category_id == CAR and i.mask.shape == (120, 160) for i in instances)


# ---- matching ---------------------------------------------------------------------------------

def _box_mask(y0, y1, x0, x1, size=(10, 10)):
    mask = np.zeros(size, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_match_instances_hand_computed():
    truth = [Instance.from_mask(_box_mask(0, 4, 0, 4), CAR),        # 16 px
             Instance.from_mask(_box_mask(5, 10, 5, 10), CAR),      # 25 px
             Instance.from_mask(_box_mask(0, 2, 6, 10), PERSON)]    # 8 px
    pred = [
        Instance.from_mask(_box_mask(0, 4, 1, 5), CAR, 0.6),      # truth 0: 12 / 20 = 0.6
        Instance.from_mask(_box_mask(0, 4, 0, 4), CAR, 0.9),      # truth 0: 16 / 16 = 1.0
        Instance.from_mask(_box_mask(5, 10, 6, 10), CAR, 0.8),    # truth 1: 20 / 25 = 0.8
        Instance.from_mask(_box_mask(0, 2, 6, 10), CAR, 0.95),    # truth 2 exactly, wrong class
        Instance.from_mask(_box_mask(5, 7, 5, 10), CAR, 0.7),     # truth 1: 10 / 25 = 0.4 < 0.5
        Instance.from_mask(np.zeros((10, 10), bool), CAR, 0.99),  # empty: IoU 0
    ]
    matches = match_instances(pred, truth)
    # by score: empty (no match), wrong class (no match), 1.0 takes truth 0, 0.8 takes truth 1;
    # the 0.6 one finds truth 0 taken, the 0.4 one is below the threshold.
    assert [(p, t) for p, t, _ in matches] == [(1, 0), (2, 1)]
    assert [iou for _, _, iou in matches] == pytest.approx([1.0, 0.8])
    assert match_instances(pred, truth, same_category=False)[0][:2] == (3, 2)
    # lower threshold: the 0.4 overlap now matches, but truth 1 is already taken by the 0.8
    low = match_instances(pred, truth, iou_threshold=0.3)
    assert [(p, t) for p, t, _ in low] == [(1, 0), (2, 1)]


def test_score_images_hand_computed():
    truth = [ImageInstances("a", 10, 10, [Instance.from_mask(_box_mask(0, 4, 0, 4), CAR),
                                          Instance.from_mask(_box_mask(5, 10, 5, 10), CAR)])]
    pred = [ImageInstances("a", 10, 10, [
        Instance.from_mask(_box_mask(0, 4, 0, 4), CAR, 0.9),     # IoU 1.0
        Instance.from_mask(_box_mask(0, 2, 6, 10), CAR, 0.8),    # false detection
        Instance.from_mask(_box_mask(5, 10, 5, 10), CAR, 0.3)])]  # below min_score 0.5
    s = score_images(pred, truth)
    assert (s["n_truth"], s["n_pred"], s["n_matched"]) == (2, 2, 1)
    assert s["recall"] == 0.5 and s["precision"] == 0.5 and s["matched_iou"] == 1.0
    assert s["panoptic_quality"] == pytest.approx(1.0 / (1 + 0.5 * 2))


# ---- training -----------------------------------------------------------------------------------

def write_training_set(root: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    entries = []
    for k in range(n):
        image, mask = car_photo(rng)
        Image.fromarray(image).save(root / f"images/{k:03d}.png")
        entries.append(ImageInstances(f"images/{k:03d}.png", image.shape[1], image.shape[0],
                                      [Instance.from_mask(mask, CAR)]))
    write_instances(root / "instances.json", entries)
    return root


def test_short_training_lowers_the_loss_and_exports_a_usable_model(tmp_path):
    from shapepose.segmentation.train import train_segmenter

    train_set = write_training_set(tmp_path / "train_set", 10, seed=5)
    steps = 60
    train_segmenter(train_set=train_set, out=tmp_path / "model.pt",
                    losses_csv=tmp_path / "losses.csv", checkpoint_dir=tmp_path / "ckpt",
                    training=tiny_training(steps=steps, warmup_steps=5, checkpoint_every=30,
                                           validate_every=30),
                    seed=3, device="cpu")
    with open(tmp_path / "ckpt/history.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("loss")]
    losses = [float(r["loss"]) for r in rows]
    assert len(losses) >= 4
    assert np.mean(losses[-2:]) < 0.5 * np.mean(losses[:2]), losses

    segmenter = load_segmenter("torchvision", tmp_path / "model.pt", arch="demo",
                               score_threshold=0.0)
    image, _ = car_photo(np.random.default_rng(9), 64, 80)
    found = segmenter.predict(image)
    assert all(i.mask.shape == (64, 80) and 1 <= i.category_id <= 90 for i in found)

    # the rule's entry: the same weights loaded from the config's settings, one shard written
    root = write_stanford(tmp_path / "photos", {"cars_test/00001.jpg": car_photo(
        np.random.default_rng(10), 64, 80)[0]})
    meta = segment(photos=root, weights=tmp_path / "model.pt", out=tmp_path / "1-of-1.json",
                   shard="1-of-1", backend="torchvision", arch="demo", score_threshold=0.0,
                   nms_threshold=0.5, mask_threshold=0.5, device="cpu")
    images, written = read_instances(tmp_path / "1-of-1.json")
    assert [im.image for im in images] == ["cars_test/00001.jpg"] and images[0].error is None
    assert written["shard"] == meta["shard"] == "1-of-1"
    assert written["segmenter"]["backend"] == "torchvision"


def test_same_seed_gives_the_same_model_bytes(tmp_path):
    from shapepose.segmentation.train import train_segmenter

    train_set = write_training_set(tmp_path / "train_set", 6, seed=6)
    digests = []
    for run in ("a", "b"):
        train_segmenter(train_set=train_set, out=tmp_path / run / "model.pt",
                        losses_csv=tmp_path / run / "losses.csv",
                        checkpoint_dir=tmp_path / run / "ckpt",
                        training=tiny_training(steps=6, warmup_steps=2, checkpoint_every=3,
                                               validate_every=3),
                        seed=8, device="cpu")
        digests.append((tmp_path / run / "model.pt").read_bytes())
    assert digests[0] == digests[1]
