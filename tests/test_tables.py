"""The collected metric page keeps every table verbatim, in order, and links images relatively."""

import pytest

from shapepose.errors import InputError
from shapepose.tables import collect_tables


def test_collect_tables_keeps_each_table_in_order(tmp_path):
    a = tmp_path / "a" / "t1.md"
    b = tmp_path / "b" / "t2.md"
    png = tmp_path / "b" / "plot.png"
    for p in (a, b, png):
        p.parent.mkdir(parents=True, exist_ok=True)
    a.write_text("| x |\n|---|\n| 1 |\n")
    b.write_text("## Own heading\n\n| y |\n|---|\n| 2 |\n")
    png.write_bytes(b"\x89PNG")
    out = tmp_path / "tables" / "index.md"
    collect_tables({"Mesh": [a], "Images": [b, png]}, out, title="Metrics")
    text = out.read_text()
    assert text.startswith("# Metrics\n")
    assert text.index("## Mesh") < text.index("| x |") < text.index("## Images") < text.index("| y |")
    assert "![plot](../b/plot.png)" in text
    assert "\n### Own heading\n" in text


def test_collect_tables_names_an_empty_table(tmp_path):
    empty = tmp_path / "empty.md"
    empty.write_text("\n")
    out = tmp_path / "index.md"
    with pytest.raises(InputError, match="empty.md"):
        collect_tables({"S": [empty]}, out, title="T")
    assert not out.exists()
