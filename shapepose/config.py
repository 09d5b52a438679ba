"""Config sections as typed values, and the cross-checks no JSON schema can express.

Defaults live in config.yaml alone; the schema holds types, bounds and patterns. A dataclass that
mirrors a config section has no defaults of its own, so a key missing from the config is an
error here rather than a silent fallback:

    arch = section(Architecture, config["shape_pose"]["model"], where="shape_pose.model")

`check_config(config)` runs once when the workflow is parsed (common.smk) and holds every check
that relates two parts of the config.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

# a variant name the shape-and-pose tables reserve for the model before training
UNTRAINED = "untrained"


class ConfigError(ValueError):
    """A config value that cannot be used; the message starts with `config:` and names the key."""

    def __init__(self, where: str, problem: str):
        self.where = where
        super().__init__(f"config: {where}: {problem}")


def _frozen(value: Any) -> Any:
    """Lists (and lists inside mappings) become tuples, so a section's value is hashable."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def section(cls: type[T], mapping: Mapping, *, where: str = "config") -> T:
    """`cls(**mapping)` for a dataclass `cls`: every field from the mapping, nothing else.

    An unknown key or a missing one is a `ConfigError` naming it (and `where`, the section's path
    in the config); a field whose type is itself a dataclass is built from its sub-mapping the
    same way; lists become tuples.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"section() needs a dataclass, got {cls!r}")
    if not isinstance(mapping, Mapping):
        raise ConfigError(where, f"expected a mapping, got {type(mapping).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ConfigError(where, f"unknown key(s) {unknown}; known: {sorted(fields)}")
    required = [name for name, f in fields.items() if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in mapping]
    if missing:
        raise ConfigError(where, f"missing key(s) {missing}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in mapping.items():
        kind = hints.get(name)
        if dataclasses.is_dataclass(kind) and isinstance(value, Mapping):
            values[name] = section(kind, value, where=f"{where}.{name}")
        else:
            values[name] = _frozen(value)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(where, str(exc)) from None


def check_config(config: Mapping) -> None:
    """Every check between parts of the config; raises one `ConfigError` for the first failure.

    - demo bodies: meshes.subjects and meshes.sequences are among demo_bodies' (when demo);
    - style_transfer.experiments may not be named "original" or "untrained" (the shape-and-pose
      variants "original" and "untrained" are the renders' own);
    - style_transfer.run names only configured experiments;
    - segmentation.weights "train" needs a segmenter training set (cars.segmenter_train).

    Checks that need the data (which subjects a downloaded registrations file holds) stay in the
    workflow, where the files are read.
    """
    meshes = config["meshes"]
    if meshes["registrations"] == "demo":
        demo = config["demo_bodies"]
        missing = [s for s in meshes["subjects"] if s not in demo["subjects"]]
        if missing:
            raise ConfigError("meshes.subjects", f"{missing} are not among demo_bodies.subjects "
                                                 f"{sorted(demo['subjects'])}")
        unknown = [q for q in meshes["sequences"] if q not in demo["sequences"]]
        if unknown:
            raise ConfigError("meshes.sequences", f"{unknown} are not among "
                                                  "demo_bodies.sequences")
    reserved = sorted({"original", UNTRAINED} & set(config["style_transfer"]["experiments"]))
    if reserved:
        raise ConfigError("style_transfer.experiments", f"may not be named {', '.join(map(repr, reserved))}: the "
                          "shape-and-pose tables use 'original' for the renders and "
                          f"'{UNTRAINED}' for the model before training")
    run = config["style_transfer"]["run"]
    if run is not None:
        unknown = [e for e in run if e not in config["style_transfer"]["experiments"]]
        if unknown:
            raise ConfigError("style_transfer.run", f"{unknown} are not among style_transfer.experiments "
                              f"{sorted(config['style_transfer']['experiments'])}")
    if config["segmentation"]["weights"] == "train" and config["cars"]["segmenter_train"] is None:
        raise ConfigError("segmentation.weights", "is 'train' but cars.segmenter_train is null; "
                          "give segmentation.weights a checkpoint path (e.g. COCO weights) or a "
                          "training set")
