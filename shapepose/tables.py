"""The metric tables of both branches, collected into one Markdown page a reader opens first."""

from __future__ import annotations

from pathlib import Path

from shapepose.errors import InputError
from shapepose.io import atomic_file


def collect_tables(*, neural_parts: str | Path, segment_filters: str | Path,
                   frame_ratio: str | Path, frame_ratio_plot: str | Path,
                   segmentation_quality: str | Path, style_tables: list[str | Path],
                   style_curves: list[str | Path], style_grids: list[str | Path],
                   shape_pose: str | Path, shape_pose_real: str | Path,
                   shape_pose_plot: str | Path, index: str | Path, mesh_dataset: str,
                   cars_dataset: str, style_experiments: list[str]) -> None:
    """Write `index`: every metric table of both branches, in the order a reader follows them.

    style_tables, style_curves and style_grids hold one file per name in `style_experiments`, in
    that order. Each section heading names the dataset and the seed's chapter or table.
    """
    cars = f"Car photos {cars_dataset}"
    style = {
        f"{cars}: style transfer '{name}' (seed 002 chapter 4)": [table, curves, grid]
        for name, table, curves, grid in zip(style_experiments, style_tables, style_curves,
                                             style_grids, strict=True)
    }
    write_table_index(
        {
            f"Neural Parts on {mesh_dataset} (seed 003)": [neural_parts],
            f"{cars}: segmentation filters (seed 002, 3.1-3.3)": [segment_filters],
            f"{cars}: frame ratio (seed 002, 3.2.1)": [frame_ratio, frame_ratio_plot],
            f"{cars}: segmentation quality": [segmentation_quality],
            **style,
            f"{cars}: shape and pose (seed 002 table 6.2)": [shape_pose],
            f"{cars}: shape and pose on real cut-outs (seed 002 figures 6.5, 7.1)": [
                shape_pose_real, shape_pose_plot],
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
