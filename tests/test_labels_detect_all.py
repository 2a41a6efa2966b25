"""The label heuristics run once per change of the ledger, and `trace` runs them first."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
from typer.testing import CliRunner

from heisttrace.cli import app
from heisttrace.labels.detect import detect_all
from heisttrace.ledger import open_workspace
from heisttrace.ledger.schema import FLOW_SCHEMA, TX_STRIDE

VICTIM, THIEF, DEPOSIT, HOT = ("0x" + c * 40 for c in "1234")
ETH = 10**18


def flow(block: int, tx: str, src: str, dst: str, wei: int, pos: int = 1, kind: str = "native") -> dict:
    return {"chain": "ethereum", "block": block, "time": 1_700_000_000 + 12 * block,
            "ordinal": pos, "tx_hash": tx, "src": src, "dst": dst, "asset": "ETH",
            "amount_out": str(wei), "amount_in": str(wei), "kind": kind,
            "dst_chain": None, "dst_asset": None}


def build(path: Path) -> None:
    with open_workspace(path) as ws:
        ws.add_flows(pa.Table.from_pylist([
            flow(10, "0x" + "a" * 64, VICTIM, THIEF, 100 * ETH),
            flow(11, "0x" + "b" * 64, THIEF, DEPOSIT, 40 * ETH),
            flow(13, "0x" + "c" * 64, DEPOSIT, "fees", 21_000 * 10**10, 0, "fee"),
            flow(13, "0x" + "c" * 64, DEPOSIT, HOT, 40 * ETH - 21_000 * 10**10, 1),
        ], schema=FLOW_SCHEMA))
        ws.con.execute("INSERT INTO labels (chain, address, entity, category, source, confidence)"
                       " VALUES ('ethereum', ?, 'Kraken', 'exchange', 'test', 100)", [HOT])


def test_detect_all_runs_once_per_change(tmp_path: Path) -> None:
    build(tmp_path / "ws")
    with open_workspace(tmp_path / "ws") as ws:
        first = detect_all(ws)
        assert first.ran and first.deposit_addresses == 1
        assert not detect_all(ws).ran
        ws.add_flows(pa.Table.from_pylist([flow(20, "0x" + "d" * 64, THIEF, VICTIM, ETH)],
                                          schema=FLOW_SCHEMA))
        assert detect_all(ws).ran
        assert detect_all(ws, force=True).ran


def test_trace_finds_the_deposit_address_without_a_separate_detect(tmp_path: Path) -> None:
    build(tmp_path / "ws")
    result = CliRunner().invoke(app, ["trace", "--case", "c", "--seed", "0x" + "a" * 64,
                                      "-w", str(tmp_path / "ws"), "--json"])
    assert result.exit_code == 0, result.output
    with open_workspace(tmp_path / "ws", read_only=True) as ws:
        sinks = ws.con.execute(
            "SELECT bucket, address, entity, origin_amount FROM case_sinks WHERE case_name = 'c' "
            "AND bucket = 'cashed_out'").fetchall()
    assert [(b, a, e) for b, a, e, _ in sinks] == [("cashed_out", DEPOSIT, "Kraken")]
    assert abs(sinks[0][3] - 40) < 1e-9
    assert json.loads(result.stdout)["case"] == "c"
