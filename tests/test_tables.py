"""The collected metric page keeps every table verbatim, in order, and links images relatively."""

import pytest

from shapepose.errors import InputError
from shapepose.tables import collect_tables, write_table_index


def test_write_table_index_keeps_each_table_in_order(tmp_path):
    a = tmp_path / "a" / "t1.md"
    b = tmp_path / "b" / "t2.md"
    png = tmp_path / "b" / "plot.png"
    for p in (a, b, png):
        p.parent.mkdir(parents=True, exist_ok=True)
    a.write_text("| x |\n|---|\n| 1 |\n")
    b.write_text("## Own heading\n\n| y |\n|---|\n| 2 |\n")
    png.write_bytes(b"\x89PNG")
    out = tmp_path / "tables" / "index.md"
    write_table_index({"Mesh": [a], "Images": [b, png]}, out, title="Metrics")
    text = out.read_text()
    assert text.startswith("# Metrics\n")
    assert text.index("## Mesh") < text.index("| x |") < text.index("## Images") < text.index("| y |")
    assert "![plot](../b/plot.png)" in text
    assert "\n### Own heading\n" in text


def test_write_table_index_names_an_empty_table(tmp_path):
    empty = tmp_path / "empty.md"
    empty.write_text("\n")
    out = tmp_path / "index.md"
    with pytest.raises(InputError, match="empty.md"):
        write_table_index({"S": [empty]}, out, title="T")
    assert not out.exists()


def test_collect_tables_orders_both_branches_and_names_each_experiment(tmp_path):
    def table(name, text=None):
        path = tmp_path / name
        path.write_text(text or f"| {path.stem} |\n|---|\n| 1 |\n")
        return path

    png = tmp_path / "plot.png"
    png.write_bytes(b"\x89PNG")
    experiments = ["baseline", "no_alpha"]
    out = tmp_path / "index.md"
    collect_tables(
        neural_parts=table("np.md"), segment_filters=table("filters.md"),
        frame_ratio=table("ratio.md"), frame_ratio_plot=png,
        segmentation_quality=table("quality.md"),
        style_tables=[table(f"style_{e}.md") for e in experiments],
        style_curves=[png, png], style_grids=[png, png],
        shape_pose=table("sp.md"), shape_pose_real=table("sp_real.md"), shape_pose_plot=png,
        index=out, mesh_dataset="meshes_x", cars_dataset="cars_y", style_experiments=experiments)
    text = out.read_text()
    headings = [line for line in text.split("\n") if line.startswith("## ")]
    assert headings == [
        "## Neural Parts on meshes_x (seed 003)",
        "## Car photos cars_y: segmentation filters (seed 002, 3.1-3.3)",
        "## Car photos cars_y: frame ratio (seed 002, 3.2.1)",
        "## Car photos cars_y: segmentation quality",
        "## Car photos cars_y: style transfer 'baseline' (seed 002 chapter 4)",
        "## Car photos cars_y: style transfer 'no_alpha' (seed 002 chapter 4)",
        "## Car photos cars_y: shape and pose (seed 002 table 6.2)",
        "## Car photos cars_y: shape and pose on real cut-outs (seed 002 figures 6.5, 7.1)",
    ]
    assert text.index("| style_baseline |") < text.index("| style_no_alpha |") < text.index("| sp |")
    with pytest.raises(ValueError):  # one table per experiment, or the headings would lie
        collect_tables(
            neural_parts=table("np.md"), segment_filters=table("filters.md"),
            frame_ratio=table("ratio.md"), frame_ratio_plot=png,
            segmentation_quality=table("quality.md"), style_tables=[table("style_baseline.md")],
            style_curves=[png, png], style_grids=[png, png], shape_pose=table("sp.md"),
            shape_pose_real=table("sp_real.md"), shape_pose_plot=png, index=tmp_path / "x.md",
            mesh_dataset="m", cars_dataset="c", style_experiments=experiments)
