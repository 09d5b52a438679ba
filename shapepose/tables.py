"""The metric tables of both branches, collected into one Markdown page a reader opens first."""

from __future__ import annotations

from pathlib import Path

from shapepose.errors import InputError
from shapepose.io import atomic_file


def collect_tables(sections: dict[str, list[str | Path]], out: str | Path, *, title: str) -> None:
    """Write `out`: one `##` heading per section and, under it, each Markdown table file.

    Tables are copied verbatim except that their own headings move one level down.

    sections: heading -> Markdown files, in the order given. Images (.png) are linked by a path
    relative to `out`, so the page renders in any Markdown viewer that opens it in place.
    """
    out = Path(out)
    lines = [f"# {title}", ""]
    for heading, files in sections.items():
        lines += [f"## {heading}", ""]
        for path in map(Path, files):
            if path.suffix.lower() == ".png":
                rel = Path(_relative(path, out.parent))
                lines += [f"![{path.stem}]({rel.as_posix()})", ""]
                continue
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(path, f"cannot read table: {exc}") from None
            if not text.strip():
                raise InputError(path, "table file is empty")
            # a table's own headings sit below its section's
            lines += [("#" + line if line.startswith("#") else line)
                      for line in text.rstrip("\n").split("\n")] + [""]
    with atomic_file(out) as tmp:
        tmp.write_text("\n".join(lines))


def _relative(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())
