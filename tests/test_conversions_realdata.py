"""Swap netting on two real mainnet blocks (ethereum-etl fixtures 17173049-17173050).

The blocks are dense with Uniswap V2/V3 swaps and WETH wraps (mostly MEV bots). The flows are
built here from the recorded transactions and token transfers in the EVM ordinal layout (fee,
top-level value, token transfers; the fixture has no traces, so no internal ETH), the watched
logs from the recorded logs. Nothing here knows the answer: the test checks laws that must hold
for every swap found.
"""

from __future__ import annotations

import json

import pyarrow as pa
from shared_data import ETL_FIXTURES
from test_conversions_detect import assert_conserved, snapshot

from heisttrace.conversions.run import detect_conversions
from heisttrace.ledger.schema import FLOW_SCHEMA, LOG_BASE, TX_STRIDE, WATCHED_TOPICS

BLOCKS = ETL_FIXTURES / "test_stream" / "blocks_17173049_17173050"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (BLOCKS / name).read_text().splitlines() if line.strip()]


def real_workspace(ws) -> dict[str, int]:
    txs = {t["hash"]: t for t in _rows("expected_transactions.json")}
    flows = []

    def add(t, pos, src, dst, asset, amount, kind):
        flows.append({
            "chain": "ethereum", "block": t["block_number"], "time": t["block_timestamp"],
            "ordinal": t["transaction_index"] * TX_STRIDE + pos, "tx_hash": t["hash"],
            "src": src, "dst": dst, "asset": asset, "amount_out": str(amount),
            "amount_in": str(amount), "kind": kind, "dst_chain": None, "dst_asset": None})

    for t in txs.values():
        add(t, 0, t["from_address"], "fees", "ETH",
            t["receipt_gas_used"] * t["receipt_effective_gas_price"], "fee")
        if t["value"] and t["receipt_status"] == 1 and t["to_address"]:
            add(t, 1, t["from_address"], t["to_address"], "ETH", t["value"], "native")
    for tt in _rows("expected_token_transfers.json"):
        add(txs[tt["transaction_hash"]], LOG_BASE + tt["log_index"], tt["from_address"],
            tt["to_address"], tt["token_address"], tt["value"], "token")
    logs = [
        {"chain": "ethereum", "block": lg["block_number"], "time": lg["block_timestamp"],
         "tx_hash": lg["transaction_hash"], "log_index": lg["log_index"], "address": lg["address"],
         "topic0": lg["topics"][0][2:], "topics": lg["topics"], "data": lg["data"]}
        for lg in _rows("expected_logs.json")
        if lg["topics"] and lg["topics"][0][2:] in WATCHED_TOPICS
    ]
    with ws.transaction():
        ws.add_flows(pa.Table.from_pylist(flows, schema=FLOW_SCHEMA))
        ws.con.register("_logs", pa.Table.from_pylist(logs))
        ws.con.execute("INSERT INTO evm_logs SELECT chain, block, time, tx_hash, log_index, "
                       "address, topic0, topics, data FROM _logs")
    zero = "0x" + "0" * 40
    mint_burn = {
        tt["transaction_hash"] for tt in _rows("expected_token_transfers.json")
        if zero in (tt["from_address"], tt["to_address"])
    }
    return {"candidates": len({lg["tx_hash"] for lg in logs} | mint_burn)}


def test_real_blocks_swaps_obey_the_laws(workspace):
    facts = real_workspace(workspace)
    report = detect_conversions(workspace)
    swaps = workspace.con.execute(
        "SELECT * FROM flows WHERE kind = 'swap'").fetch_arrow_table().to_pylist()
    assert report.swaps.candidates == facts["candidates"] > 20
    assert len(swaps) == report.swaps.swaps > 0
    assert len({s["tx_hash"] for s in swaps}) == len(swaps)  # at most one swap per transaction
    emitters = {
        (tx, a) for tx, a in workspace.con.execute("SELECT tx_hash, address FROM evm_logs").fetchall()
    }
    for s in swaps:
        assert s["asset"] != s["dst_asset"] and int(s["amount_out"]) > 0 and int(s["amount_in"]) > 0
        assert (s["tx_hash"], s["src"]) not in emitters and (s["tx_hash"], s["dst"]) not in emitters
        assert s["ordinal"] % TX_STRIDE < LOG_BASE
    # WETH minted by a wrap has no Transfer log, so only the wrap's own side can differ
    minted = frozenset(("ethereum", s["dst"], WETH) for s in swaps if s["dst_asset"] == WETH)
    assert_conserved(workspace, minted=minted)
    snap = snapshot(workspace)
    detect_conversions(workspace)
    assert snapshot(workspace) == snap
