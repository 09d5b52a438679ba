"""Workflow test configs: config.yaml with a test's settings on top, as Snakemake merges them."""

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def merged_config(overrides: dict, replace: tuple[str, ...] = ()) -> dict:
    """config.yaml deep-merged with `overrides` (Snakemake's --configfile rule: mappings merge,
    anything else replaces); the dotted paths in `replace` take the override's value whole, e.g.
    "style_transfer.experiments" to drop config.yaml's experiments. Pass the result with
    --replace-workflow-config, so that config.yaml stays the one place of every default."""
    base = yaml.safe_load((ROOT / "config.yaml").read_text())

    def merge(into: dict, update: dict, path: str) -> None:
        for key, value in update.items():
            here = f"{path}.{key}" if path else key
            if isinstance(value, dict) and isinstance(into.get(key), dict) and here not in replace:
                merge(into[key], value, here)
            else:
                into[key] = copy.deepcopy(value)

    merge(base, overrides, "")
    return base


def config_section(path: str, config_file: str = "config.yaml", **changes) -> dict:
    """A copy of one section of config.yaml (dotted path, e.g. "style_transfer.defaults") with
    `changes` on top: what a test hands a stage instead of defaults of its own. config_file
    "workflow/configs/cars.yaml" reads that real config merged onto config.yaml."""
    if config_file == "config.yaml":
        node = yaml.safe_load((ROOT / "config.yaml").read_text())
    else:
        node = merged_config(yaml.safe_load((ROOT / config_file).read_text()))
    for key in path.split("."):
        node = node[key]
    return {**copy.deepcopy(node), **changes}
