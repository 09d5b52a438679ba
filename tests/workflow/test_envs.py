"""Every rule names a conda environment that exists, pinning exact versions of what its script imports."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
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
    assert targets == {"all", "mesh_branch", "image_branch", "neural_parts", "pose_transfer", "pose2mesh",
                       "lwgan"}
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


# ---- every env lists exactly what its rules import --------------------------------------------

# import name -> the distribution that provides it, where the two differ
DISTRIBUTION = {"PIL": "pillow", "skimage": "scikit-image", "igl": "libigl", "yaml": "pyyaml",
                "sklearn": "scikit-learn", "cv2": "opencv-python"}
# imported by shapepose but deliberately not installed by any env, each with why
OPTIONAL = {
    "detectron2": "the optional segmentation backend (segmentation.backend: detectron2); it builds "
                  "from source against torch, so users install it themselves (envs/segment.yaml)",
    "pymeshlab": "imported only inside the MeshLab hole filling that extract_meshes calls; other rules "
                 "reach shapepose.meshes for its frame naming alone",
}
# listed by an env but never imported by name, each with why; the value is a distribution whose
# presence makes it needed (None: always)
RUNTIME_ONLY = {
    "python": None,  # the interpreter
    "pip": None,  # installs the pip section
    "glcontext": "moderngl",  # moderngl loads it to create the headless EGL context
    "tabulate": "pandas",  # pandas.DataFrame.to_markdown imports it
}


def _script_and_env(block: str) -> tuple[str | None, str | None]:
    script = re.search(r"^\s*script:\s*\n\s*[\"']([^\"']+)[\"']", block, re.M)
    env = re.search(r"^\s*conda:\s*\n\s*[\"']([^\"']+)[\"']", block, re.M)
    return (script.group(1) if script else None), (env.group(1) if env else None)


def _runtime_nodes(tree: ast.AST, functions: bool):
    """ast.walk, leaving out the bodies of `if TYPE_CHECKING:` (they never run), and of functions
    unless `functions`."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
        elif functions or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))


def _imports(path: Path, functions: bool = True) -> set[str]:
    """Every module an import statement names in a file: anywhere (try blocks, `with` blocks,
    functions), or outside functions only (what importing the file runs)."""
    names = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), filename=str(path)), functions):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module)
            # `from package import module` names a module too
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _third_party_imports(script: Path) -> dict[str, set[str]]:
    """distribution -> the files reaching it, over every shapepose module the script reaches."""
    seen, todo, found = set(), [script], {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "shapepose":
                parts = name.split(".")
                # importing a.b.c runs a/__init__, a/b/__init__ and a/b/c
                for depth in range(1, len(parts) + 1):
                    module = _module_file(".".join(parts[:depth]))
                    if module is not None:
                        todo.append(module)
            elif top not in sys.stdlib_module_names and top != "__future__":
                where = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
                found.setdefault(DISTRIBUTION.get(top, top).lower(), set()).add(where)
    return found


def _listed(env: Path) -> set[str]:
    names = set()
    for dep in yaml.safe_load(env.read_text())["dependencies"]:
        for spec in (dep["pip"] if isinstance(dep, dict) else [dep]):
            names.add(re.split(r"[=<>!~ ]", spec, maxsplit=1)[0].lower())
    return names


def test_every_env_lists_what_its_rules_import_and_nothing_else():
    """Each env installs what the scripts of its rules import (through every shapepose module
    they reach, imports inside functions included) and, apart from RUNTIME_ONLY, nothing more."""
    imported_by_env: dict[Path, dict[str, set[str]]] = {}
    problems = []
    for smk, name, block in _rule_blocks():
        script, env = _script_and_env(block)
        assert script and env, f"rule {name} in {smk.name}: no script: or no conda:"
        env_path = (smk.parent / env).resolve()
        found = _third_party_imports((smk.parent / script).resolve())
        assert found, f"rule {name}: its script reaches no third-party import"
        listed = _listed(env_path)
        for dist in sorted(set(found) - listed - set(OPTIONAL)):
            problems.append(f"rule {name} imports {dist} (in {sorted(found[dist])}) but "
                            f"{env_path.name} does not list it")
        for dist in sorted((set(found) & set(OPTIONAL)) - listed):
            # an optional module left out of an env must be imported where it is used, not on load
            eager = [f for f in sorted(found[dist]) if any(
                DISTRIBUTION.get(m.split(".")[0], m.split(".")[0]).lower() == dist
                for m in _imports(ROOT / f, functions=False))]
            if eager:
                problems.append(f"rule {name}: {eager} import the optional {dist} on load")
        for dist, files in found.items():
            imported_by_env.setdefault(env_path, {}).setdefault(dist, set()).update(files)
    for env_path, found in imported_by_env.items():
        listed = _listed(env_path)
        needed = set(found) | {dep for dep, needs in RUNTIME_ONLY.items() if needs is None or needs in listed}
        problems += [f"{env_path.name} lists {dist}, which none of its rules imports"
                     for dist in sorted(listed - needed)]
    assert not problems, "\n".join(problems)
    assert set(imported_by_env) == set((ROOT / "envs").glob("*.yaml")), "an env file no rule uses"


def test_import_walk_follows_shapepose_modules_and_function_imports(tmp_path):
    """The walk reaches a third-party import inside a function of a module imported in a block."""
    script = tmp_path / "script.py"
    script.write_text("import sys\nwith open(sys.argv[0]):\n    from shapepose.meshes import frame_name\n")
    found = _third_party_imports(script)
    assert "pymeshlab" in found and "shapepose/meshes.py" in found["pymeshlab"]
    on_load = _imports(ROOT / "shapepose/meshes.py", functions=False)
    assert "pymeshlab" in _imports(ROOT / "shapepose/meshes.py") and "pymeshlab" not in on_load
    assert "numpy" in found and not {"sys", "pathlib", "shapepose"} & set(found)
    # shapepose.sampling.store names the volume module only under TYPE_CHECKING
    (tmp_path / "reader.py").write_text("from shapepose.sampling.store import read_volume_samples\n")
    assert set(_third_party_imports(tmp_path / "reader.py")) == {"h5py", "numpy"}
