"""Every rule names a conda environment that exists, and every environment pins exact versions."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULE = re.compile(r"^\s*(?:rule|checkpoint)\s+(\w+)\s*:", re.M)


def _rule_blocks():
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = [(m.start(), m.group(1)) for m in RULE.finditer(text)]
        for (start, name), (end, _) in zip(starts, starts[1:] + [(len(text), None)]):
            yield smk, name, text[start:end]


def test_every_rule_names_an_existing_env():
    rules = {}
    for smk, name, block in _rule_blocks():
        match = re.search(r"^\s*conda:\s*\n\s*[\"']([^\"']+)[\"']", block, re.M)
        assert match, f"rule {name} in {smk.name} has no conda: directive"
        env = (smk.parent / match.group(1)).resolve()
        assert env.is_file(), f"rule {name}: conda env {env} does not exist"
        rules[name] = env
    # the text scan must see the same rules as Snakemake itself, apart from the target rules
    # (`all` and one per branch) in the Snakefile, which only name inputs and run nothing
    listed = subprocess.run([sys.executable, "-m", "snakemake", "--list-rules"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    targets = set(RULE.findall((ROOT / "Snakefile").read_text()))
    assert targets == {"all", "mesh_branch", "image_branch", "neural_parts"}
    assert set(listed) - targets == set(rules)


def _pinned(spec: str, sep: str) -> bool:
    name, _, version = spec.partition(sep)
    return bool(name.strip()) and bool(re.fullmatch(r"[0-9][0-9A-Za-z.+_-]*", version.strip())) \
        and not any(c in version for c in "<>*,!")


def test_every_env_pins_every_dependency():
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        spec = yaml.safe_load(env.read_text())
        assert spec.get("channels"), f"{env.name}: no channels"
        deps = spec["dependencies"]
        assert deps, f"{env.name}: no dependencies"
        for dep in deps:
            if isinstance(dep, dict):
                for pip_dep in dep["pip"]:
                    assert _pinned(pip_dep, "=="), f"{env.name}: pip dependency {pip_dep!r} is not pinned with =="
            else:
                assert "==" not in dep and _pinned(dep, "="), f"{env.name}: {dep!r} is not pinned with ="


def test_env_pins_agree_with_requirements():
    """The tested versions (requirements.txt) are the ones the rule environments install."""
    req = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned"
            req[name.lower()] = version
    for env in sorted((ROOT / "envs").glob("*.yaml")):
        for dep in yaml.safe_load(env.read_text())["dependencies"]:
            if isinstance(dep, dict):
                for pip_dep in dep["pip"]:
                    name, _, version = pip_dep.partition("==")
                    assert req.get(name.lower()) == version, f"{env.name}: {pip_dep} vs requirements.txt"


def test_pin_check_rejects_loose_specs():
    assert _pinned("numpy==2.4.6", "==")
    assert not _pinned("numpy>=2", "==") and not _pinned("numpy", "==")
    assert not _pinned("numpy==2.*", "==")
    assert _pinned("python=3.11.7", "=") and not _pinned("python", "=")
