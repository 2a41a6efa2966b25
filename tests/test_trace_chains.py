"""A case that crosses a bridge reports where its money sits per chain."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from heisttrace.cli import app
from heisttrace.ledger.workspace import open_workspace
from heisttrace.trace.run import run_trace
from heisttrace.trace.summary import case_summary
from trace_helpers import add, flow, label

BTC_DEST, BTC_DEPOSIT = "bc1qdest", "bc1qexchange"


def two_chain_case(ws) -> None:
    """100 ETH stolen: 60 bridged to Bitcoin (2 BTC, half of it to an exchange), 30 into a
    bridge nobody matched, 10 left on Ethereum."""
    bridge = flow(20, "0xbridge", "0xa", BTC_DEST, 60, kind="bridge", dst_chain="bitcoin",
                  dst_asset="BTC")
    bridge["amount_in"] = str(2 * 10**8)
    add(ws, [
        flow(10, "0xtheft", "0xvictim", "0xa", 100),
        bridge,
        flow(30, "0xunmatched", "0xa", "0xrouter", 30),
        flow(40, "btc1", BTC_DEST, BTC_DEPOSIT, 1, chain="bitcoin", asset="BTC", kind="utxo",
             decimals=8),
    ])
    label(ws, "0xrouter", "defi_bridge", "THORChain")
    label(ws, BTC_DEPOSIT, "deposit_wallet", "Kraken", chain="bitcoin")


def test_case_summary_breaks_buckets_down_per_chain(workspace):
    two_chain_case(workspace)
    run_trace(workspace, "x", ["0xtheft"])
    s = case_summary(workspace, "x")
    chains = {c["chain"]: c for c in s["breakdown_by_chain"]}
    assert [c["chain"] for c in s["breakdown_by_chain"]] == ["bitcoin", "ethereum"]  # largest first
    eth, btc = chains["ethereum"], chains["bitcoin"]
    assert eth["origin_amount"] == pytest.approx(40) and eth["share"] == pytest.approx(0.4)
    assert eth["buckets"]["bridged_untraced"] == pytest.approx(30)
    assert eth["buckets"]["dormant"] == pytest.approx(10)
    assert btc["buckets"]["cashed_out"] == pytest.approx(30)
    assert btc["buckets"]["dormant"] == pytest.approx(30)
    assert btc["buckets"]["bridged_untraced"] == 0
    # per chain adds up to the per-bucket totals
    for row in s["breakdown"]:
        assert sum(c["buckets"][row["bucket"]] for c in chains.values()) == pytest.approx(
            row["origin_amount"])


def test_summary_cli_prints_and_emits_the_chain_breakdown(tmp_path):
    path = tmp_path / "ws"
    with open_workspace(path) as ws:
        two_chain_case(ws)
    runner = CliRunner()
    out = runner.invoke(app, ["trace", "--case", "x", "--seed", "0xtheft", "-w", str(path)])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["summary", "x", "-w", str(path), "--json"])
    assert out.exit_code == 0, out.output
    by_chain = {c["chain"]: c for c in json.loads(out.output)["breakdown_by_chain"]}
    assert by_chain["bitcoin"]["share"] == pytest.approx(0.6)
    out = runner.invoke(app, ["summary", "x", "-w", str(path)], env={"COLUMNS": "120"})
    assert out.exit_code == 0, out.output
    table = out.output[out.output.index("by chain"):]
    assert "bitcoin" in table and "ethereum" in table
    assert "60 (60.00%)" in table and "40 (40.00%)" in table
