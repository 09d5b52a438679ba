"""Workflow test configs: config.yaml with a test's settings on top, as Snakemake merges them."""

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


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
