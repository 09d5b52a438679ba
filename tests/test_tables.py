"""The one table writer (CSV + Markdown, atomically) and the collected page of every table."""

import math

import numpy as np
import pandas as pd
import pytest

from shapepose.errors import InputError
from shapepose.tables import collect_tables, markdown, markdown_rows, write_table, write_table_index


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"name": ["a", "b|c", "d"], "value": [0.123456, math.nan, 1234567.0],
                         "n": pd.array([1, None, 3], dtype="Int64"), "ok": [True, False, True]})


def test_write_table_csv_round_trips_through_pandas(tmp_path):
    table = _frame()
    write_table(table, tmp_path / "t.csv", tmp_path / "t.md", csv_float_format="%.6g")
    back = pd.read_csv(tmp_path / "t.csv", dtype={"n": "Int64"})
    assert list(back.columns) == list(table.columns)
    assert back["name"].tolist() == table["name"].tolist() and back["ok"].tolist() == table["ok"].tolist()
    np.testing.assert_allclose(back["value"], [0.123456, math.nan, 1234570.0])  # 6 significant digits
    assert back["n"].isna().tolist() == [False, True, False]
    # the CSV bytes are pandas' own to_csv, unchanged
    assert (tmp_path / "t.csv").read_text() == table.to_csv(index=False, float_format="%.6g")


def test_markdown_parses_back_to_the_formatted_cells(tmp_path):
    write_table(_frame(), tmp_path / "t.csv", tmp_path / "t.md", title="T", intro="Why.",
                formats={"n": "{:d}"})
    text = (tmp_path / "t.md").read_text()
    assert text.startswith("## T\n\nWhy.\n\n| ") and text.endswith("|\n")
    assert markdown_rows(text) == [["name", "value", "n", "ok"],
                                   ["a", "0.1235", "1", "True"],
                                   ["b|c", "", "", "False"],  # missing values are empty cells
                                   ["d", "1.235e+06", "3", "True"]]
    assert "b\\|c" in text  # a pipe in a cell is escaped, not a column border


def test_markdown_headers_choose_and_order_columns_and_formats_apply_per_column():
    table = pd.DataFrame({"x": [0.5, 0.05], "label": ["p", "q"], "k": [2.0, 7500.0]})
    text = markdown(table, headers={"label": "what", "x": "x (m)", "k": "views"}, level=3, title="S",
                    formats={"k": "{:d}"}, float_format=lambda v: f"{v:.3f}")
    assert text.splitlines()[0] == "### S"
    assert markdown_rows(text) == [["what", "x (m)", "views"], ["p", "0.500", "2"], ["q", "0.050", "7500"]]
    # numeric columns right-aligned (---:), text left (:---)
    separator = text.splitlines()[3].strip("|").split("|")
    assert [(c.startswith(":"), c.endswith(":")) for c in separator] == [(True, False), (False, True),
                                                                        (False, True)]


def test_an_empty_table_keeps_its_header():
    assert markdown_rows(markdown(_frame().iloc[:0])) == [["name", "value", "n", "ok"]]


def test_a_table_that_cannot_be_formatted_writes_no_file(tmp_path):
    bad = pd.DataFrame({"n": ["seven"]})
    with pytest.raises(ValueError):
        write_table(bad, tmp_path / "t.csv", tmp_path / "t.md", formats={"n": "{:d}"})
    assert not list(tmp_path.iterdir())  # neither file, nor a partial one


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

    def collect(style_curves, index):
        collect_tables(
            learning=table("learning.md"), learning_curves=[png],
            neural_parts=table("np.md"), segment_filters=table("filters.md"),
            frame_ratio=table("ratio.md"), frame_ratio_plot=png,
            segmentation_quality=table("quality.md"), style_summary=table("style.md"),
            style_curves=style_curves, style_grids=[png, png],
            shape_pose=table("sp.md"), shape_pose_real=table("sp_real.md"), shape_pose_plot=png,
            pose_transfer=[table("pt.md"), png], pose2mesh=[table("p2m.md"), png, png], lwgan=[table("lw_study.md"), table("lw.md"), png],
            index=index, mesh_dataset="meshes_x", cars_dataset="cars_y", style_experiments=experiments,
            pose_transfer_dataset="npt_x", pose2mesh_dataset="h36m_x", lwgan_scale="demo scale")

    collect([png, png], out)
    text = out.read_text()
    headings = [line for line in text.split("\n") if line.startswith("## ")]
    assert headings == [
        "## Does each trained stage learn? (issue 15 targets)",
        "## Neural Parts on meshes_x (seed 003)",
        "## Neural pose transfer on npt_x (seed 000)",
        "## Pose2Mesh on h36m_x (seed 001)",
        "## Car photos cars_y: segmentation filters, replicate 0 (seed 002, 3.1-3.3)",
        "## Car photos cars_y: frame ratio, replicate 0 (seed 002, 3.2.1)",
        "## Car photos cars_y: segmentation quality over replicates",
        "## Car photos cars_y: style transfer over replicates (seed 002 chapter 4)",
        "## Car photos cars_y: style transfer 'baseline', replicate 0 (seed 002 chapter 4)",
        "## Car photos cars_y: style transfer 'no_alpha', replicate 0 (seed 002 chapter 4)",
        "## Car photos cars_y: shape and pose (seed 002 table 6.2)",
        "## Car photos cars_y: shape and pose on real cut-outs (seed 002 figures 6.5, 7.1)",
        "## Liquid Warping GAN on iPER, demo scale (seed 004)",
    ]
    assert text.index("| learning |") < text.index("| np |") < text.index("| pt |") < text.index("| p2m |") < text.index("| style |") \
        < text.index("| sp |") < text.index("| lw_study |") < text.index("| lw |")
    with pytest.raises(ValueError):  # one curve per experiment, or the headings would lie
        collect([png], tmp_path / "x.md")


def test_read_table_names_the_file_and_each_problem(tmp_path):
    from shapepose.tables import read_table

    good = tmp_path / "good.csv"
    good.write_text("step,loss\n1,0.5\n2,0.25\n")
    assert read_table(good, "losses CSV", ["step"])["loss"].tolist() == [0.5, 0.25]
    cases = {"missing.csv": (None, "losses CSV does not exist"),
             "empty.csv": ("", "cannot read losses CSV"),
             "narrow.csv": ("step\n1\n", r"losses CSV lacks column\(s\) \['loss'\]; it has \['step'\]")}
    for name, (text, message) in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(InputError, match=message) as caught:
            read_table(path, "losses CSV", ["step", "loss"])
        assert str(path) in str(caught.value)
