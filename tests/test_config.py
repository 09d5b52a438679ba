"""config.yaml is the one place a default lives; the schema holds types, bounds and patterns."""

from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
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
