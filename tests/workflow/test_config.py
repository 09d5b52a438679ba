"""config.yaml is the one place a default lives; the schema holds types, bounds and patterns."""

from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())


def resolve(node: dict) -> dict:
    """Follow a local $ref (and an allOf of them) to the definition it names."""
    if "$ref" in node:
        return resolve(SCHEMA["$defs"][node["$ref"].split("/")[-1]])
    if "allOf" in node:
        merged: dict = {}
        for part in node["allOf"]:
            part = resolve(part)
            merged.setdefault("properties", {}).update(part.get("properties", {}))
            merged.setdefault("required", []).extend(part.get("required", []))
        return merged
    return node


def test_schema_holds_no_default():
    def defaults(node, path):
        if isinstance(node, dict):
            if "default" in node:
                yield path
            for key, value in node.items():
                yield from defaults(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from defaults(value, f"{path}[{i}]")

    assert list(defaults(SCHEMA, "")) == []


def test_config_yaml_sets_every_option_the_schema_names():
    missing = []

    def walk(node, config, path):
        for key, sub in resolve(node).get("properties", {}).items():
            if key not in config:
                missing.append(f"{path}{key}")
            elif isinstance(config[key], dict):
                walk(sub, config[key], f"{path}{key}.")

    walk(SCHEMA, CONFIG, "")
    assert missing == []


def test_config_yaml_is_valid_and_experiments_list_only_their_changes():
    jsonschema.validate(CONFIG, SCHEMA)
    defaults = CONFIG["style_transfer"]["defaults"]
    assert set(defaults) == set(resolve(SCHEMA["$defs"]["style_experiment"])["properties"])
    for name, experiment in CONFIG["style_transfer"]["experiments"].items():
        assert set(experiment) < set(defaults), name


# ---- shapepose.config: sections as dataclasses, and the cross-checks ------------------------

import dataclasses  # noqa: E402

import pytest  # noqa: E402

from shapepose.config import ConfigError, check_config, section  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Inner:
    size: int
    sides: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner


def test_section_builds_nested_dataclasses_and_tuples():
    got = section(Outer, {"name": "a", "inner": {"size": 3, "sides": [1, [2, 3]]}}, where="x")
    assert got == Outer("a", Inner(3, (1, (2, 3))))


def test_section_names_unknown_and_missing_keys():
    with pytest.raises(ConfigError, match=r"config: x.inner: unknown key\(s\) \['colour'\]"):
        section(Outer, {"name": "a", "inner": {"size": 3, "sides": [], "colour": 1}}, where="x")
    with pytest.raises(ConfigError, match=r"config: x: missing key\(s\) \['inner'\]"):
        section(Outer, {"name": "a"}, where="x")


def test_every_config_dataclass_reads_config_yaml_and_has_no_defaults_of_its_own():
    from shapepose.cars.photos import PhotoOptions
    from shapepose.images.filters import FilterThresholds
    from shapepose.neural_parts.losses import LossConfig
    from shapepose.shape_pose.losses import LossSettings
    from shapepose.shape_pose.model import Architecture as ShapePoseArchitecture
    from shapepose.style.losses import LossWeights
    from shapepose.style.train import Architecture as StyleArchitecture
    from shapepose.style.train import Experiment
    from shapepose.training import TrainConfig
    from shapepose.training.fast import FastPath

    photos = {k: v for k, v in CONFIG["demo_cars"]["photos"].items()
              if k not in ("train", "test", "segmenter_train", "jpeg_quality")}
    built = [section(PhotoOptions, photos), section(FilterThresholds, CONFIG["filters"]),
             section(LossSettings, {**CONFIG["shape_pose"]["losses"],
                                    "sigma": CONFIG["shape_pose"]["projection"]["sigma"]}),
             section(ShapePoseArchitecture, CONFIG["shape_pose"]["model"]),
             section(StyleArchitecture, CONFIG["style_transfer"]["model"]),
             section(Experiment, CONFIG["style_transfer"]["defaults"]),
             section(LossConfig, CONFIG["neural_parts"]["losses"]),
             section(FastPath, CONFIG["fast_path"])]
    for stage in ("neural_parts", "style_transfer", "shape_pose"):
        built.append(TrainConfig.from_section(CONFIG[stage]["training"]))
    built.append(TrainConfig.from_section(CONFIG["segmentation"]["train"]))
    assert built[-1].max_steps == CONFIG["segmentation"]["train"]["steps"]
    for cls in (PhotoOptions, FilterThresholds, LossSettings, ShapePoseArchitecture,
                StyleArchitecture, Experiment, LossWeights, LossConfig, FastPath):
        defaulted = [f.name for f in dataclasses.fields(cls)
                     if f.default is not dataclasses.MISSING
                     or f.default_factory is not dataclasses.MISSING]
        assert defaulted == [], cls
    mirrored = [f for f in dataclasses.fields(TrainConfig) if f.name not in ("best_metric",
                                                                          "best_mode")]
    assert all(f.default is dataclasses.MISSING for f in mirrored)


def test_train_config_takes_its_loop_keys_and_can_switch_validation_off():
    training = dict(CONFIG["shape_pose"]["training"], validate_every=7)
    on = TrainConfig_from(training, best_metric="m")
    off = TrainConfig_from(training, best_metric="m", validate=False)
    assert (on.validate_every, on.best_metric) == (7, "m")
    assert (off.validate_every, off.best_metric) == (0, None)
    with pytest.raises(ValueError, match="keep_last"):
        TrainConfig_from({k: v for k, v in training.items() if k != "keep_last"})


def TrainConfig_from(*args, **kwargs):
    from shapepose.training import TrainConfig

    return TrainConfig.from_section(*args, **kwargs)


def test_check_config_passes_config_yaml_and_names_each_cross_check():
    import copy

    check_config(CONFIG)
    cases = [
        (("meshes", "subjects"), ["50002", "99999"], r"meshes.subjects: \['99999'\]"),
        (("meshes", "sequences"), ["knees", "dance"], r"meshes.sequences: \['dance'\]"),
        (("style_transfer", "experiments"), {"untrained": {}}, "may not be named 'untrained'"),
        (("style_transfer", "experiments"), {"original": {}}, "may not be named 'original'"),
        (("cars", "segmenter_train"), None, "segmentation.weights: is 'train' but"),
    ]
    for (part, key), value, message in cases:
        config = copy.deepcopy(CONFIG)
        config[part][key] = value
        with pytest.raises(ConfigError, match=message):
            check_config(config)
    downloaded = copy.deepcopy(CONFIG)
    downloaded["meshes"]["registrations"] = {"m": "m.hdf5", "f": "f.hdf5"}
    downloaded["meshes"]["subjects"] = ["99999"]  # checked against the files, in the workflow
    check_config(downloaded)
