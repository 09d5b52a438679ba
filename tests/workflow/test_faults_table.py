"""The fault-injection table helper writes where it is told (a temporary folder), every case shown."""

import json

from helpers.faults_table import COLUMNS, render_table, write_table


def test_write_table_writes_cases_and_table_into_the_given_folder(tmp_path):
    cases = [{"case": "kill|driver", "injected": "SIGKILL\nmid-DAG", "expected": "resume",
              "observed": "resumed", "outcome": "survived"},
             {"case": "full disk", "outcome": "not run: no tmpfs"}]
    table = write_table(cases, tmp_path / "out")
    assert table == tmp_path / "out" / "faults.md"
    assert json.loads((tmp_path / "out" / "faults.json").read_text()) == cases
    lines = table.read_text().splitlines()
    assert lines[5] == "| " + " | ".join(COLUMNS) + " |"
    assert lines[7] == "| kill\\|driver | SIGKILL mid-DAG | resume | resumed | survived |"
    assert lines[8] == "| full disk |  |  |  | not run: no tmpfs |"
    assert table.read_text() == render_table(cases)
