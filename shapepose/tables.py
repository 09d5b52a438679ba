"""Every table the workflow writes: CSV for machines, Markdown for readers, and the page of all.

`write_table` writes one DataFrame as both and `read_table` reads a CSV back with one clear error
per bad file; `markdown` renders one as a GitHub pipe table
(pandas' `to_markdown`, i.e. tabulate's "pipe" format) with each column's numbers formatted as
the table asks, so every report table reads alike. `collect_tables` gathers the Markdown of both
branches into the one page a reader opens first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from shapepose.errors import InputError
from shapepose.io import atomic_file

# How a cell is written: a str.format pattern ("{:.2f}"; one ending "d}" takes the value as an
# int, for integer columns pandas stored as float) or a function of the value.
CellFormat = str | Callable[[object], str]


def markdown(table: pd.DataFrame, *, title: str = "", level: int = 2, intro: str = "",
             headers: Mapping[str, str] | None = None,
             formats: Mapping[str, CellFormat] | None = None,
             float_format: CellFormat = "{:.4g}") -> str:
    """`table` as a GitHub pipe table ending in a newline, under an optional heading and intro.

    headers: column -> header text, in the order shown; None shows every column under its name.
    formats: column -> how its cells are written; other columns write floats with
    `float_format` and anything else with str(). Missing values (None, NaN, pd.NA) are empty
    cells; columns numeric in `table` are right-aligned. The text is `#`*level + title, a blank
    line, `intro`, a blank line, the table.
    """
    headers = dict(headers) if headers is not None else {c: str(c) for c in table.columns}
    formats = dict(formats or {})
    cells = pd.DataFrame({_escape(header): [_cell(value, formats.get(column), float_format)
                                            for value in table[column]]
                          for column, header in headers.items()}, dtype=object)
    # numbers are already text (disable_numparse keeps tabulate from re-formatting them); columns
    # that were numeric stay right-aligned
    align = ["right" if pd.api.types.is_numeric_dtype(table[column])
             and not pd.api.types.is_bool_dtype(table[column]) else "left" for column in headers]
    text = cells.to_markdown(index=False, tablefmt="pipe", disable_numparse=True, colalign=align) + "\n"
    if intro:
        text = intro.rstrip("\n") + "\n\n" + text
    if title:
        text = f"{'#' * level} {title}\n\n" + text
    return text


def read_table(path: str | Path, what: str, required: list[str] | tuple[str, ...] = ()
               ) -> pd.DataFrame:
    """A CSV a rule wrote, as a DataFrame; `what` names it in the one InputError a missing,
    unreadable or empty file, or one without every `required` column, raises."""
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(path, f"{what} does not exist") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(path, f"cannot read {what}: {exc}") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputError(path, f"{what} lacks column(s) {missing}; it has {list(table.columns)}",
                         key=missing[0])
    return table


def write_csv(table: pd.DataFrame, path: str | Path, *, float_format: str | None = None) -> None:
    """`table` as CSV without the index (pandas' `to_csv`; float_format as there, e.g. "%.6g")."""
    with atomic_file(path) as tmp:
        table.to_csv(tmp, index=False, float_format=float_format)


def write_markdown(path: str | Path, *blocks: str) -> None:
    """Markdown blocks (each from `markdown`) into one file, a blank line between them."""
    with atomic_file(path) as tmp:
        tmp.write_text("\n".join(blocks))


def write_table(table: pd.DataFrame, csv_path: str | Path, md_path: str | Path, *,
                csv_float_format: str | None = None, **markdown_options) -> None:
    """One table as CSV and as Markdown (`markdown`'s options), each written atomically.

    The Markdown is rendered before either file is written, so a table that cannot be
    formatted leaves no file behind.
    """
    text = markdown(table, **markdown_options)
    write_csv(table, csv_path, float_format=csv_float_format)
    write_markdown(md_path, text)


def markdown_rows(text: str) -> list[list[str]]:
    """The cells of every pipe-table row in `text` (header rows included, separator rows not)."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not (line.startswith("|") and line.endswith("|")):
            continue
        # a pipe after a backslash is part of the cell, not a border
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line[1:-1])]
        if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
            continue  # the row under the header
        rows.append(cells)
    return rows


def _cell(value, fmt: CellFormat | None, float_format: CellFormat) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if fmt is None:
        fmt = float_format if isinstance(value, float) else str
    if callable(fmt):
        text = fmt(value)
    else:
        text = fmt.format(int(value) if fmt.endswith("d}") else value)
    return _escape(text)


def _escape(text: str) -> str:
    """A pipe inside a cell would end it: GitHub Markdown's escape."""
    return str(text).replace("|", "\\|")


def collect_tables(*, learning: str | Path, learning_curves: list[str | Path],
                   neural_parts: str | Path, segment_filters: str | Path,
                   frame_ratio: str | Path, frame_ratio_plot: str | Path,
                   segmentation_quality: str | Path, style_summary: str | Path,
                   style_curves: list[str | Path], style_grids: list[str | Path],
                   shape_pose: str | Path, shape_pose_real: str | Path,
                   shape_pose_plot: str | Path, pose_transfer: list[str | Path],
                   pose2mesh: list[str | Path], lwgan: list[str | Path], index: str | Path, mesh_dataset: str,
                   cars_dataset: str, style_experiments: list[str], pose_transfer_dataset: str,
                   pose2mesh_dataset: str, lwgan_scale: str) -> None:
    """Write `index`: every metric table of both branches, in the order a reader follows them.

    First whether each trained stage learns (the learning table and its curves), then each
    stage's tables. style_curves and style_grids hold one file per name in `style_experiments`
    (the first replicate's), in that order. pose_transfer, pose2mesh and lwgan are each system's tables and
    figures, in the order shown. Each heading names the dataset and the seed's chapter.
    """
    cars = f"Car photos {cars_dataset}"
    style = {
        f"{cars}: style transfer '{name}', replicate 0 (seed 002 chapter 4)": [curves, grid]
        for name, curves, grid in zip(style_experiments, style_curves, style_grids, strict=True)
    }
    write_table_index(
        {
            "Does each trained stage learn? (issue 15 targets)": [learning, *learning_curves],
            f"Neural Parts on {mesh_dataset} (seed 003)": [neural_parts],
            f"Neural pose transfer on {pose_transfer_dataset} (seed 000)": list(pose_transfer),
            f"Pose2Mesh on {pose2mesh_dataset} (seed 001)": list(pose2mesh),
            f"{cars}: segmentation filters, replicate 0 (seed 002, 3.1-3.3)": [segment_filters],
            f"{cars}: frame ratio, replicate 0 (seed 002, 3.2.1)": [frame_ratio, frame_ratio_plot],
            f"{cars}: segmentation quality over replicates": [segmentation_quality],
            f"{cars}: style transfer over replicates (seed 002 chapter 4)": [style_summary],
            **style,
            f"{cars}: shape and pose (seed 002 table 6.2)": [shape_pose],
            f"{cars}: shape and pose on real cut-outs (seed 002 figures 6.5, 7.1)": [
                shape_pose_real, shape_pose_plot],
            f"Liquid Warping GAN on iPER, {lwgan_scale} (seed 004)": list(lwgan),
        },
        index,
        title="shapepose metric tables",
    )


def write_table_index(sections: dict[str, list[str | Path]], out: str | Path, *, title: str) -> None:
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
