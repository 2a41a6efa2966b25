"""`heisttrace evaluate` against a hand-written case table (the trace engine's contract)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from heisttrace.ledger import open_workspace
from heisttrace.simulate.evaluate import evaluate, summary_line

CASE_DDL = """
CREATE TABLE IF NOT EXISTS cases (case_name VARCHAR, policy VARCHAR, seeds VARCHAR, until BIGINT,
  min_taint DOUBLE, origin_unit VARCHAR, stolen DOUBLE, created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS case_sinks (case_name VARCHAR, bucket VARCHAR, chain VARCHAR,
  address VARCHAR, asset VARCHAR, entity VARCHAR, origin_amount DOUBLE, amount VARCHAR,
  first_time BIGINT, last_time BIGINT);
CREATE TABLE IF NOT EXISTS case_edges (case_name VARCHAR, chain VARCHAR, block BIGINT, time BIGINT,
  ordinal BIGINT, tx_hash VARCHAR, src VARCHAR, dst VARCHAR, asset VARCHAR, dst_chain VARCHAR,
  dst_asset VARCHAR, kind VARCHAR, amount VARCHAR, taint DOUBLE, origin_taint DOUBLE);
"""

STOLEN = 1000.0


def _truth() -> dict:
    deps = [{"chain": "ethereum", "address": f"0x{i:040x}", "entity": "Binance", "stolen": True}
            for i in range(1, 5)]
    deps.append({"chain": "bitcoin", "address": "bc1qdeposit", "entity": "OKX", "stolen": True})
    return {
        "stolen": STOLEN,
        "buckets": {"cashed_out": 200.0, "dark": 500.0, "bridged_untraced": 0.0, "parked": 0.0,
                    "frozen": 30.0, "fees": 10.0, "dormant": 260.0, "below_threshold": 0.0},
        "cashed_out_by_entity": {"Binance": 150.0, "OKX": 50.0},
        "deposit_addresses": deps,
        "background_deposit_addresses": ["0x" + "b" * 40],
        "spam": {"addresses": ["0x" + "5" * 40, "0x" + "6" * 40], "tokens": ["0x" + "7" * 40]},
    }


def _case(ws, name: str, policy: str, sinks: dict[str, float], stolen: float = STOLEN) -> None:
    ws.con.execute(CASE_DDL)
    ws.con.execute("INSERT INTO cases VALUES (?, ?, '[]', NULL, 0, 'USD', ?, now())", [name, policy, stolen])
    for bucket, v in sinks.items():
        entity = "Binance" if bucket == "cashed_out" else None
        ws.con.execute("INSERT INTO case_sinks VALUES (?, ?, 'ethereum', 'x', 'ETH', ?, ?, '0', 0, 0)",
                       [name, bucket, entity, v])


def test_exact_case_scores_zero_error(workspace) -> None:
    truth = _truth()
    _case(workspace, "c", "haircut", truth["buckets"])
    r = evaluate(workspace, "c", truth)
    assert r["max_bucket_error"] == pytest.approx(0.0, abs=1e-12)
    assert r["spam_followed"] == 0
    assert r["deposit_recall"] == 0.0 and r["deposit_labels"] == 0


def test_errors_recall_precision_and_spam(workspace) -> None:
    truth = _truth()
    sinks = dict(truth["buckets"])
    sinks["dormant"] -= 50.0  # 5% of the stolen total traced as dark instead of dormant
    sinks["dark"] += 50.0
    _case(workspace, "c", "fifo", sinks)
    labels = [("0x" + f"{1:040x}"), ("0x" + f"{2:040x}"), "0x" + "b" * 40, "0x" + "c" * 40]
    for a in labels:
        workspace.con.execute(
            "INSERT INTO labels (chain, address, entity, category, source, heuristic) "
            "VALUES ('ethereum', ?, 'Binance', 'deposit_wallet', 'test', true)", [a])
    workspace.con.execute(
        "INSERT INTO case_edges VALUES ('c', 'ethereum', 1, 1, 1, '0x1', ?, ?, ?, NULL, NULL, 'token', '0', 0, 0)",
        ["0x" + "1" * 40, "0x" + "5" * 40, "0x" + "7" * 40])
    r = evaluate(workspace, "c", truth)
    assert r["max_bucket_error"] == pytest.approx(0.05)
    # 2 of the 4 stolen Ethereum deposits found (Bitcoin has no deposit labels: not counted);
    # 3 of the 4 labels are true deposit addresses (one a customer's, not the thief's).
    assert r["deposit_recall"] == pytest.approx(0.5)
    assert r["deposit_precision"] == pytest.approx(0.75)
    assert r["spam_followed"] == 2
    line = summary_line(r)
    assert line.startswith("evaluate case=c policy=fifo max_bucket_error=0.050000 ")
    assert line.endswith("deposit_recall=0.5000 deposit_precision=0.7500 spam_followed=2")


def test_shares_compare_across_origin_units(workspace) -> None:
    """A case traced without prices has another stolen total: shares still compare."""
    truth = _truth()
    _case(workspace, "c", "haircut", {k: v / 4 for k, v in truth["buckets"].items()}, stolen=STOLEN / 4)
    assert evaluate(workspace, "c", truth)["max_bucket_error"] == pytest.approx(0.0, abs=1e-12)


def test_cli_prints_table_and_last_line(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    truth = _truth()
    _case(ws, "bybit", "haircut", truth["buckets"])
    ws.close()
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    done = subprocess.run([sys.executable, "-m", "heisttrace", "evaluate", "bybit", "--truth",
                           str(tmp_path / "truth.json"), "-w", str(tmp_path / "ws")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "cashed_out" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == (
        "evaluate case=bybit policy=haircut max_bucket_error=0.000000 deposit_recall=0.0000 "
        "deposit_precision=0.0000 spam_followed=0")
    bad = subprocess.run([sys.executable, "-m", "heisttrace", "evaluate", "nope", "--truth",
                          str(tmp_path / "truth.json"), "-w", str(tmp_path / "ws")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "no case named 'nope'" in bad.stderr
