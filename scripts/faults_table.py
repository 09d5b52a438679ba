"""Render the fault-injection suite's outcomes (a JSON list of cases) as results/tables/faults.md.

tests/test_faults.py writes results/tables/faults.json as it runs and calls this script at the
end; run it by hand as `python scripts/faults_table.py [faults.json] [faults.md]`.
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
        "Written by `tests/test_faults.py` (through `scripts/faults_table.py`) from the cases it",
        "actually ran; a case that was skipped or failed says so in the last column.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for case in cases:
        lines.append("| " + " | ".join(_cell(case.get(key, "")) for key in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def main(source: str = "results/tables/faults.json", target: str = "results/tables/faults.md") -> None:
    cases = json.loads(Path(source).read_text())
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(target).with_name(f".{Path(target).name}.partial")
    tmp.write_text(render_table(cases))
    tmp.replace(target)  # a reader never sees half a table


if __name__ == "__main__":
    main(*sys.argv[1:3])
