"""The `heisttrace conversions` commands, run through the real CLI app."""

from __future__ import annotations

import json

from test_conversions_detect import BTC_DEST, full_case
from typer.testing import CliRunner

from heisttrace.cli import app
from heisttrace.ledger import open_workspace

runner = CliRunner()


def test_detect_and_inbounds(tmp_path):
    path = tmp_path / "ws"
    with open_workspace(path) as ws:
        full_case(ws)
    res = runner.invoke(app, ["conversions", "detect", "-w", str(path), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)["summary"]
    assert (summary["swaps"], summary["bridges_matched"], summary["bridges_unmatched"]) == (1, 1, 1)

    res = runner.invoke(app, ["conversions", "detect", "-w", str(path)])
    assert res.exit_code == 0 and "bridges matched: 1" in res.output

    res = runner.invoke(app, ["conversions", "inbounds", "-w", str(path), "--json"])
    rows = json.loads(res.output)
    assert len(rows) == 2 and {r["dest_address"] for r in rows} == {BTC_DEST, "bc1qnever"}
    res = runner.invoke(app, ["conversions", "inbounds", "--unmatched", "-w", str(path), "--json"])
    assert [r["dest_address"] for r in json.loads(res.output)] == ["bc1qnever"]


def test_links_import_bad_file_is_one_line_error(tmp_path):
    path = tmp_path / "ws"
    open_workspace(path).close()
    bad = tmp_path / "links.csv"
    bad.write_text("src_chain,src_tx\n")
    res = runner.invoke(app, ["conversions", "links", "import", str(bad), "-w", str(path)])
    assert res.exit_code != 0
    assert isinstance(res.exception, Exception) and "missing column" in str(res.exception)


def test_help_lists_commands():
    res = runner.invoke(app, ["conversions", "--help"])
    assert res.exit_code == 0 and "detect" in res.output and "inbounds" in res.output


def test_inbounds_table_lists_destinations(tmp_path, monkeypatch):
    from heisttrace.cli import common

    monkeypatch.setattr(common.console, "width", 250)
    path = tmp_path / "ws"
    with open_workspace(path) as ws:
        full_case(ws)
    runner.invoke(app, ["conversions", "detect", "-w", str(path)])
    res = runner.invoke(app, ["conversions", "inbounds", "-w", str(path)])
    assert res.exit_code == 0 and "bc1qnever" in res.output and "🅱" not in res.output
