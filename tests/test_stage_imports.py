"""No stage package imports another stage, and no shared module imports a stage: what two stages
share lives in a neutral module (shapepose.images.rgba, shapepose.training, shapepose.sampling ...)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = {"cars", "lwgan", "neural_parts", "pose2mesh", "pose_transfer", "segmentation", "shape_pose", "style"}


def _stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "shapepose" and parts[1] in STAGES else None


def _cross_stage_imports(root: Path = ROOT):
    """(file, importing stage or None, imported module, name) of every import of a stage module
    from outside it, anywhere in a file (functions included)."""
    for path in sorted((root / "shapepose").rglob("*.py")):
        rel = path.relative_to(root)
        home = rel.parts[1] if len(rel.parts) > 2 and rel.parts[1] in STAGES else None
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                pairs = [(alias.name, "") for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                pairs = [(node.module, alias.name) for alias in node.names]
                if node.module == "shapepose":  # from shapepose import style
                    pairs = [(f"shapepose.{alias.name}", "") for alias in node.names]
            else:
                continue
            for module, name in pairs:
                stage = _stage_of(module)
                if stage is not None and stage != home:
                    yield rel.as_posix(), home, module, name


def test_no_stage_imports_another_stage():
    found = list(_cross_stage_imports())
    unexpected = [f"{file}: {module}.{name}" if name else f"{file}: {module}"
                  for file, home, module, name in found]
    assert not unexpected, "imports across stages:\n" + "\n".join(unexpected)


def test_the_scan_sees_imports_in_functions_and_from_shared_modules(tmp_path):
    files = {"shapepose/shape_pose/a.py": "def f():\n    from shapepose.style.data import read_rgba\n",
             "shapepose/shape_pose/b.py": "from shapepose.style.data import batch_indices\n"
                                         "from shapepose.shape_pose import a\nimport shapepose.images.rgba\n",
             "shapepose/io/c.py": "from shapepose import style\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert sorted(_cross_stage_imports(tmp_path)) == [
        ("shapepose/io/c.py", None, "shapepose.style", ""),
        ("shapepose/shape_pose/a.py", "shape_pose", "shapepose.style.data", "read_rgba"),
        ("shapepose/shape_pose/b.py", "shape_pose", "shapepose.style.data", "batch_indices")]
