"""Test helper: the fault-injection suite's outcomes (a JSON list of cases) as a Markdown table.

tests/workflow/test_faults.py records its cases as it runs and, at the end, writes faults.json
and faults.md with `write_table` into a temporary directory (pytest's basetemp, never the
checkout) and prints where. Render a kept faults.json by hand with
`python tests/helpers/faults_table.py faults.json faults.md`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = ("case", "injected", "expected", "observed", "outcome")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_table(cases: list[dict]) -> str:
    """One Markdown row per case, in the order run; every field of every case is shown."""
    lines = [
        "# Fault injection: what was tried and what survived",
        "",
        "Written by `tests/workflow/test_faults.py` (through `tests/helpers/faults_table.py`) from",
        "the cases it actually ran; a case that was skipped or failed says so in the last column.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for case in cases:
        lines.append("| " + " | ".join(_cell(case.get(key, "")) for key in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write_table(cases: list[dict], folder: str | Path) -> Path:
    """Write folder/faults.json (the cases) and folder/faults.md (their table); return the table."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "faults.json").write_text(json.dumps(cases, indent=2) + "\n")
    target = folder / "faults.md"
    target.write_text(render_table(cases))
    return target


def main(source: str, target: str) -> None:
    cases = json.loads(Path(source).read_text())
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(target).with_name(f".{Path(target).name}.partial")
    tmp.write_text(render_table(cases))
    tmp.replace(target)  # a reader never sees half a table


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python tests/helpers/faults_table.py faults.json faults.md")
    main(*sys.argv[1:3])
