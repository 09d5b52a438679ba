"""The thesis filters (seed 002 sections 3.1 and 3.2) on hand-built masks, cut-outs, bad input, tables."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from shapepose.errors import InputError
from shapepose.images.filters import (FilterThresholds, border_coverage, count_components, cutout,
                                      cutout_name, filter_segments, is_grayscale, judge_instance,
                                      strip_width)
from shapepose.images.instances import CAR, PERSON, TRUCK, ImageInstances, Instance, write_instances
from shapepose.images.tables import filter_funnel, filter_rejections, segmentation_quality

from helpers.configs import config_section

T = FilterThresholds.from_config(config_section("filters"))  # the thesis's thresholds


def box_mask(height, width, top, left, rows, cols):
    mask = np.zeros((height, width), bool)
    mask[top:top + rows, left:left + cols] = True
    return mask


def judge(mask, category=CAR, score=0.9, bbox=None, grayscale=False, thresholds=T):
    inst = Instance.from_mask(mask, category, score, bbox=bbox)
    return judge_instance("p.jpg", 0, inst, mask, grayscale, thresholds)


# A clean, whole car: a 200 x 160 block well inside a 400 x 300 photo.
GOOD = box_mask(300, 400, 70, 100, 160, 200)


def test_a_clean_instance_passes_every_filter():
    d = judge(GOOD)
    assert d.reasons == [] and d.accepted
    assert d.components == 1 and d.fill == 1.0 and d.sqrt_box_area == pytest.approx(math.sqrt(200 * 160))


@pytest.mark.parametrize("category, rejected", [(CAR, False), (TRUCK, False), (PERSON, True), (2, True)])
def test_class_filter(category, rejected):
    assert ("class" in judge(GOOD, category=category).reasons) == rejected


@pytest.mark.parametrize("score, rejected", [(0.7, False), (0.95, False), (0.6999, True), (0.0, True)])
def test_score_filter(score, rejected):
    assert ("score" in judge(GOOD, score=score).reasons) == rejected


@pytest.mark.parametrize("w, h, rejected", [(128, 128, False),   # sqrt(area) exactly 128 passes
                                             (256, 64, False),    # 16384 as well
                                             (127, 129, True),    # 16383 < 128^2
                                             (100, 300, False)])  # 30000
def test_box_size_filter_uses_the_predicted_box(w, h, rejected):
    bbox = (50.0, 20.0, float(w), float(h))
    mask = box_mask(400, 400, 20, 50, h, w)
    assert ("box_size" in judge(mask, bbox=bbox).reasons) == rejected


@pytest.mark.parametrize("pixels, rejected", [(8192, False), (8191, True), (16384, False)])
def test_fill_filter_is_mask_over_predicted_box(pixels, rejected):
    # a 128 x 128 predicted box (area 16384) holding `pixels` mask pixels filled row by row
    mask = np.zeros((300, 300), bool)
    inner = np.zeros(128 * 128, bool)
    inner[:pixels] = True
    mask[10:138, 10:138] = inner.reshape(128, 128)
    d = judge(mask, bbox=(10.0, 10.0, 128.0, 128.0))
    assert d.fill == pytest.approx(pixels / 16384)
    assert ("fill" in d.reasons) == rejected


def test_grayscale_photo_detection():
    rng = np.random.default_rng(0)
    gray = np.repeat(rng.integers(0, 256, (50, 60, 1), dtype=np.uint8), 3, axis=2)
    assert is_grayscale(gray, 0)
    nearly = gray.copy()
    nearly[..., 2] = np.clip(nearly[..., 2].astype(int) + 3, 0, 255)  # a spread of at most 3
    assert is_grayscale(nearly, 3) and not is_grayscale(nearly, 2)
    colour = gray.copy()
    colour[10, 10] = (200, 40, 40)  # one colourful pixel makes a colour photo
    assert not is_grayscale(colour, 8)
    assert "grayscale" in judge(GOOD, grayscale=True).reasons


def test_occlusion_counts_8_connected_components():
    two = box_mask(300, 400, 70, 100, 160, 90) | box_mask(300, 400, 70, 200, 160, 100)
    assert count_components(two) == 2
    assert "occluded" in judge(two).reasons
    # two blocks touching only at a corner are one 8-connected component
    diagonal = box_mask(300, 400, 50, 50, 100, 100) | box_mask(300, 400, 150, 150, 100, 100)
    assert diagonal[149, 149] and diagonal[150, 150] and not diagonal[149, 150]
    assert count_components(diagonal) == 1
    assert "occluded" not in judge(diagonal).reasons
    # a one-pixel speck counts by default (the thesis), and is ignored above a minimum size
    speck = GOOD.copy()
    speck[5, 5] = True
    assert count_components(speck) == 2 and "occluded" in judge(speck).reasons
    lenient = FilterThresholds.from_config(config_section("filters", min_component_pixels=2))
    assert "occluded" not in judge(speck, thresholds=lenient).reasons


@pytest.mark.parametrize("length, width", [(150, 3), (200, 4), (101, 3), (49, 1), (50, 1), (51, 2),
                                           (10, 1)])
def test_strip_width_is_the_ceiling_of_two_percent(length, width):
    assert strip_width(length, 0.02) == width


def _touching(side, covered, height=151, width=201):
    """A band along one photo border covering `covered` pixels of that border's strip.

    Strips: top/bottom ceil(0.02 * 151) = 4 rows, left/right ceil(0.02 * 201) = 5 columns. The band
    fills the outermost line of the strip first, then the next line from its start.
    """
    mask = np.zeros((height, width), bool)
    along = width if side in ("top", "bottom") else height
    depth = 4 if side in ("top", "bottom") else 5
    strip = np.zeros((depth, along), bool)
    strip.reshape(-1)[:covered] = True
    if side == "top":
        mask[:depth] = strip
    elif side == "bottom":
        mask[height - depth:] = strip[::-1]
    elif side == "left":
        mask[:, :depth] = strip.T
    else:
        mask[:, width - depth:] = strip.T[:, ::-1]
    return mask


@pytest.mark.parametrize("side", ["top", "bottom", "left", "right"])
def test_cropping_more_than_a_third_of_any_border_strip(side):
    pixels = 4 * 201 if side in ("top", "bottom") else 5 * 151  # 804 or 755 strip pixels
    third = pixels / 3  # 268 exactly; 251.67 for the side strips
    at_most = math.floor(third)
    below = judge(_touching(side, at_most))
    above = judge(_touching(side, at_most + 1))
    assert below.border[side] == pytest.approx(at_most / pixels)
    assert "cropped" not in below.reasons and below.components == 1
    assert above.border[side] == pytest.approx((at_most + 1) / pixels)
    assert "cropped" in above.reasons and above.components == 1
    others = [s for s in ("top", "bottom", "left", "right") if s != side]
    assert all(above.border[s] < 0.1 for s in others)


def test_cropping_exactly_a_third_passes():
    mask = np.zeros((150, 150), bool)  # strips of 3 lines: 450 pixels, a third is 150
    mask[0, :] = True  # the whole outermost top row: exactly 150 pixels
    assert border_coverage(mask, 0.02)["top"] == 1 / 3
    assert "cropped" not in judge(mask, bbox=(0, 0, 150, 150)).reasons
    mask[1, 0] = True
    assert "cropped" in judge(mask, bbox=(0, 0, 150, 150)).reasons


def test_cutout_crops_to_the_mask_and_colour_corrects_black():
    photo = np.full((20, 30, 3), 77, np.uint8)
    photo[5, 6] = 0  # black, on the mask: becomes (1, 1, 1)
    photo[4, 4] = 0  # black, off the mask: stays background
    mask = np.zeros((20, 30), bool)
    mask[5:9, 6:16] = True
    mask[4, 10] = True
    rgba = cutout(photo, mask)
    assert rgba.shape == (5, 10, 4)  # rows 4..8, columns 6..15
    assert (rgba[..., 3] == np.where(mask[4:9, 6:16], 255, 0)).all()
    assert tuple(rgba[1, 0, :3]) == (1, 1, 1)
    assert (rgba[..., :3][rgba[..., 3] == 0] == 0).all()
    assert (rgba[2:, 1:, :3] == 77).all()
    assert cutout_name("cars_train/00001.jpg", 2) == "cars_train__00001__002.png"


def _load(path):
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise InputError(path, f"cannot read image: {exc}") from None


def test_bad_input_gives_logged_rows_and_no_crash(tmp_path, caplog):
    root = tmp_path / "photos"
    (root / "cars_train").mkdir(parents=True)
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(photo).save(root / "cars_train/good.png")
    Image.fromarray(photo).save(root / "cars_train/none.png")
    (root / "cars_train/corrupt.jpg").write_bytes(b"not a jpeg at all")
    tiny = rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)
    Image.fromarray(tiny).save(root / "cars_train/tiny.png")
    empty = Instance.from_mask(np.zeros((300, 400), bool), CAR, 0.9, bbox=(10, 10, 200, 200))
    images = [
        ImageInstances("cars_train/good.png", 400, 300, [Instance.from_mask(GOOD, CAR, 0.9), empty]),
        ImageInstances("cars_train/none.png", 400, 300, []),
        ImageInstances("cars_train/corrupt.jpg", 400, 300,
                       [Instance.from_mask(GOOD, CAR, 0.9)]),  # unreadable now
        ImageInstances("cars_train/gone.jpg", 0, 0, [], error="cannot identify image file"),
        ImageInstances("cars_train/tiny.png", 100, 80,
                       [Instance.from_mask(box_mask(80, 100, 10, 10, 60, 80), CAR, 0.9)]),
    ]
    write_instances(tmp_path / "instances.json", images)
    with caplog.at_level("INFO"):
        filter_segments(tmp_path / "instances.json", root, tmp_path / "accepted",
                        tmp_path / "decisions.csv", T, load_photo=_load)
    table = pd.read_csv(tmp_path / "decisions.csv", keep_default_na=False)
    reasons = {(r.image.split("/")[-1], r.index): r.reasons for r in table.itertuples()}
    assert reasons == {("good.png", 0): "", ("good.png", 1): "fill;empty_mask",
                       ("none.png", -1): "no_detections", ("corrupt.jpg", -1): "unreadable",
                       ("gone.jpg", -1): "unreadable", ("tiny.png", 0): "box_size"}
    assert sorted(p.name for p in (tmp_path / "accepted").iterdir()) == ["cars_train__good__000.png"]
    saved = np.asarray(Image.open(tmp_path / "accepted/cars_train__good__000.png"))
    assert saved.shape == (160, 200, 4) and (saved[..., 3] == 255).all()
    crop = photo[70:230, 100:300]
    assert (saved[..., :3] == np.where((crop == 0).all(-1, keepdims=True), 1, crop)).all()
    text = caplog.text
    assert "corrupt.jpg" in text and "gone.jpg" in text and "no detections" in text
    assert "smaller than the size threshold" in text
    # the config's `filters` mapping, as the rule passes it, decides the same
    filter_segments(tmp_path / "instances.json", root, tmp_path / "accepted_cfg",
                    tmp_path / "decisions_cfg.csv", dataclasses.asdict(T), load_photo=_load)
    assert (tmp_path / "decisions_cfg.csv").read_bytes() == (tmp_path / "decisions.csv").read_bytes()


def test_a_mask_of_the_wrong_size_names_the_file(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(root / "a.png")
    bad = Instance.from_mask(np.ones((30, 40), bool), CAR, 0.9)
    write_instances(tmp_path / "instances.json", [ImageInstances("a.png", 400, 300, [bad])])
    with pytest.raises(InputError, match="instances.json.*mask 0"):
        filter_segments(tmp_path / "instances.json", root, tmp_path / "accepted",
                        tmp_path / "decisions.csv", T, load_photo=_load)
    assert not (tmp_path / "accepted").exists() and not (tmp_path / "decisions.csv").exists()


def _decisions(rows):
    return pd.DataFrame([{"image": im, "index": i, "reasons": r,
                          "accepted": i >= 0 and not r} for im, i, r in rows])


def test_reject_counts_on_hand_built_decisions():
    decisions = _decisions([
        ("a", 0, ""), ("a", 1, "class"), ("a", 2, "class;score"), ("b", 0, "occluded"),
        ("b", 1, "cropped;occluded"), ("b", 2, "fill;cropped"), ("c", -1, "no_detections"),
        ("d", -1, "unreadable"), ("e", 0, ""), ("e", 1, "grayscale"),
    ])
    funnel = dict(zip(*filter_funnel(decisions)[["step", "count"]].T.values))
    assert funnel == {"photos": 5, "photos unreadable": 1, "photos without detections": 1,
                      "instances": 8, "after 3.1 filters": 4, "after 3.2 filters": 2}
    table = filter_rejections(decisions).set_index("filter")
    assert table.loc["class", ["rejected", "rejected_alone", "rejected_in_stage"]].tolist() == [2, 1, 2]
    assert table.loc["score", ["rejected", "rejected_alone"]].tolist() == [1, 0]
    # fill;cropped fails 3.1, so its cropping does not count in the thesis's second stage
    assert table.loc["cropped", ["rejected", "rejected_alone", "rejected_in_stage"]].tolist() == [2, 0, 1]
    assert table.loc["occluded", ["rejected", "rejected_alone", "rejected_in_stage"]].tolist() == [2, 1, 2]
    assert table.loc["box_size", "rejected"] == 0
    assert table.loc["grayscale", "share"] == pytest.approx(1 / 8, abs=1e-4)


def _brute_force_match(pred, truth, iou_threshold=0.5):
    """Greedy by score over every pair's mask IoU, computed directly (the oracle)."""
    pairs, used = [], set()
    for p in sorted(range(len(pred)), key=lambda k: -pred[k].score):
        best, best_iou = None, iou_threshold
        for t in range(len(truth)):
            if t in used:
                continue
            a, b = pred[p].mask, truth[t].mask
            iou = (a & b).sum() / (a | b).sum()
            if iou >= best_iou:
                best, best_iou = t, iou
        if best is not None:
            used.add(best)
            pairs.append((p, best, float(best_iou)))
    return pairs


def test_segmentation_quality_counts_whole_cars_among_accepted():
    h, w = 100, 120
    car = box_mask(h, w, 10, 10, 40, 40)
    occluded = box_mask(h, w, 10, 60, 40, 40)
    person = box_mask(h, w, 60, 10, 30, 20)
    truth = [ImageInstances("x.png", w, h, [
        Instance.from_mask(car, CAR), Instance.from_mask(occluded, CAR, attributes={"occluded": True}),
        Instance.from_mask(person, PERSON)])]
    half = car.copy()
    half[10:30] = False  # IoU 0.5 with the car
    pred = [ImageInstances("x.png", w, h, [
        Instance.from_mask(half, CAR, 0.9), Instance.from_mask(occluded, CAR, 0.8),
        Instance.from_mask(box_mask(h, w, 70, 80, 10, 10), CAR, 0.7)])]  # matches nothing
    decisions = _decisions([("x.png", 0, ""), ("x.png", 1, ""), ("x.png", 2, "")])
    q = dict(zip(*segmentation_quality(pred, truth, decisions, match=_brute_force_match).T.values))
    assert q["matched pairs"] == 2
    assert q["mean mask IoU of matched pairs"] == pytest.approx((0.5 + 1.0) / 2)
    assert q["share of truth cars/trucks found (recall)"] == 1.0
    assert q["accepted cut-outs"] == 3
    assert q["share of accepted cut-outs that are whole, unoccluded cars"] == pytest.approx(1 / 3)
    assert q["share of whole, unoccluded truth cars accepted"] == 1.0
    assert q["share of whole, unoccluded truth cars found (recall)"] == 1.0


def test_whole_car_recall_counts_found_cars_whatever_the_filters_decided():
    # photo x: two whole cars (one found but rejected by a filter, one missed), one occluded car
    # found, one cropped truck missed; photo y: a whole truck found and accepted
    h, w = 100, 160
    found, missed = box_mask(h, w, 10, 10, 40, 40), box_mask(h, w, 10, 60, 40, 40)
    occluded, cropped = box_mask(h, w, 60, 10, 30, 30), box_mask(h, w, 60, 100, 30, 30)
    truck = box_mask(h, w, 20, 20, 50, 50)
    truth = [ImageInstances("x.png", w, h, [
                 Instance.from_mask(found, CAR), Instance.from_mask(missed, CAR),
                 Instance.from_mask(occluded, CAR, attributes={"occluded": True}),
                 Instance.from_mask(cropped, TRUCK, attributes={"cropped": True})]),
             ImageInstances("y.png", w, h, [Instance.from_mask(truck, TRUCK)])]
    shifted = box_mask(h, w, 10, 14, 40, 40)  # IoU 36/44 with `found`
    pred = [ImageInstances("x.png", w, h, [Instance.from_mask(shifted, CAR, 0.9),
                                           Instance.from_mask(occluded, CAR, 0.8)]),
            ImageInstances("y.png", w, h, [Instance.from_mask(truck, TRUCK, 0.95)])]
    decisions = _decisions([("x.png", 0, "score"), ("x.png", 1, "occluded"), ("y.png", 0, "")])
    q = dict(zip(*segmentation_quality(pred, truth, decisions, match=_brute_force_match).T.values))
    assert q["whole, unoccluded truth cars"] == 3  # found, missed, the truck
    assert q["share of whole, unoccluded truth cars found (recall)"] == pytest.approx(2 / 3)
    assert q["share of whole, unoccluded truth cars accepted"] == pytest.approx(1 / 3)
    assert q["share of truth cars/trucks found (recall)"] == pytest.approx(3 / 5)
    assert q["mean mask IoU of matched pairs"] == pytest.approx((36 / 44 + 1.0 + 1.0) / 3)


def test_ratio_summary_leaves_infinite_ratios_out_and_counts_them():
    from shapepose.images.tables import ratio_summary
    from shapepose.tables import markdown, markdown_rows

    table = ratio_summary([0.1, 0.3], [1.0, 3.0, math.inf], [0.2, 0.2]).set_index("distribution")
    assert table.loc["synthetic train", ["n", "mean"]].tolist() == [2, pytest.approx(0.2)]
    assert table.loc["synthetic train", "std"] == pytest.approx(math.sqrt(0.02))  # ddof 1
    assert table.loc["real before", ["n", "n_infinite", "mean", "median"]].tolist() == [3, 1, 2.0, 2.0]
    assert table.loc["real after", "std"] == 0.0
    md = markdown(table.reset_index(), title="t")
    assert md.splitlines()[0] == "## t" and len(md.splitlines()) == 7
    rows = markdown_rows(md)
    assert rows[0][:2] == ["distribution", "n"] and [r[:3] for r in rows[1:]] == [
        ["synthetic train", "2", "0"], ["real before", "3", "1"], ["real after", "2", "0"]]
