"""`heisttrace status`: what a workspace holds, as a table and as JSON, read-only."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from heisttrace.cli import app
from heisttrace.ledger import open_workspace
from heisttrace.sources.etl import ingest_etl
from tests.test_ingest_etl_files import etl_folder

runner = CliRunner()


def test_status_counts_and_ranges_match_the_ledger(tmp_path: Path) -> None:
    ws_path = tmp_path / "ws"
    with open_workspace(ws_path) as ws:
        added = ingest_etl(ws, etl_folder(tmp_path)).flows_added
        ws.con.execute("INSERT INTO flow_rows VALUES ('bitcoin', 7, 1700000000, 3, 'ab', 'x', "
                       "'y', 'BTC', '5', '5', 'utxo', NULL, NULL)")
        expected = ws.con.execute(
            "SELECT min(block), max(block), count(DISTINCT tx_hash) FROM flows "
            "WHERE chain = 'ethereum'").fetchone()
    got = runner.invoke(app, ["status", "-w", str(ws_path), "--json"])
    assert got.exit_code == 0, got.output
    info = json.loads(got.output)
    assert info["flows"] == added + 1
    eth, btc = (next(c for c in info["chains"] if c["chain"] == n)
                for n in ("ethereum", "bitcoin"))
    assert (eth["first_block"], eth["last_block"], eth["transactions"]) == tuple(expected)
    assert eth["flows"] == added == sum(eth["kinds"].values())
    assert btc == {"chain": "bitcoin", "flows": 1, "transactions": 1, "first_block": 7,
                   "last_block": 7, "first_time_utc": "2023-11-14 22:13:20",
                   "last_time_utc": "2023-11-14 22:13:20", "kinds": {"utxo": 1}}
    st = info["storage"]
    assert (st["segments"], st["segment_flows"], st["flow_rows"]) == (1, added, 1)
    assert st["segment_bytes"] > 0 and st["database_bytes"] > 0
    assert info["recent_imports"][0]["source"] == "etl"
    assert info["recent_imports"][0]["rows"] == added
    table = runner.invoke(app, ["status", "-w", str(ws_path)])
    assert table.exit_code == 0 and "ethereum" in table.output and "bitcoin" in table.output


def test_status_of_a_missing_workspace_is_an_error(tmp_path: Path) -> None:
    got = runner.invoke(app, ["status", "-w", str(tmp_path / "nothing")])
    assert got.exit_code != 0
    assert not (tmp_path / "nothing").exists()
