"""Token blacklist events become flows of the frozen balance into a labelled frozen sink."""

from __future__ import annotations

import pyarrow as pa

from heisttrace.labels.freezes import detect_freezes
from heisttrace.labels.roles import address_roles
from heisttrace.ledger import Workspace
from heisttrace.ledger.schema import FLOW_SCHEMA, LOG_BASE, TX_STRIDE

USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
THIEF = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20
ADDED = "42e160154868087d6bfdc0ca23d96a1c1cfa32f1b72ba9ba27b69b98a0d819dc"
REMOVED = "d7e9ec6e6ecd65492dce6bf513cd6867560d49544421d0783ddf06e76c24470c"
USDC_BL = "ffa4e6181777692565cf28528fc88fd1516ea86b56da075235fa575af6a4b855"


def word(address: str) -> str:
    return "0" * 24 + address[2:]


def flow(block: int, tx: str, src: str, dst: str, asset: str, amount: int, pos: int = 0) -> dict:
    return {
        "chain": "ethereum", "block": block, "time": 1000 + block, "ordinal": LOG_BASE + pos,
        "tx_hash": tx, "src": src, "dst": dst, "asset": asset, "amount_out": str(amount),
        "amount_in": str(amount), "kind": "token", "dst_chain": None, "dst_asset": None,
    }


def log(ws: Workspace, block: int, tx: str, token: str, topic0: str, account: str) -> None:
    topics = ["0x" + topic0] + (["0x" + word(account)] if topic0 == USDC_BL else [])
    data = "0x" + (word(account) if topic0 != USDC_BL else "")
    ws.con.execute(
        "INSERT INTO evm_logs VALUES ('ethereum', ?, ?, ?, 3, ?, ?, ?, ?)",
        [block, 1000 + block, tx, token, topic0, topics, data],
    )


def add(ws: Workspace, rows: list[dict]) -> None:
    ws.add_flows(pa.Table.from_pylist(rows, schema=FLOW_SCHEMA))


def test_freeze_moves_exact_balance_into_labelled_sink(workspace: Workspace) -> None:
    big = 10**30 + 7  # beyond int64: amounts stay exact
    add(workspace, [
        flow(1, "0x01", OTHER, THIEF, USDT, big),
        flow(2, "0x02", THIEF, OTHER, USDT, 7),
        flow(5, "0x05", OTHER, THIEF, USDT, 100),  # after the freeze: not moved
    ])
    log(workspace, 3, "0x03", USDT, ADDED, THIEF)
    report = detect_freezes(workspace)
    assert (report.freezes, report.flows_added, report.lifted) == (1, 1, 0)
    frozen = workspace.con.execute(
        "SELECT src, dst, asset, amount_out, block, ordinal FROM flows WHERE dst LIKE 'frozen:%'"
    ).fetchall()
    assert frozen == [(THIEF, "frozen:tether", USDT, str(big - 7), 3, (1 << 30) * TX_STRIDE + LOG_BASE + 3)]
    roles = {r["address"]: r["role"] for r in address_roles(workspace).to_pylist()}
    assert roles["frozen:tether"] == "frozen"


def test_freeze_is_idempotent_and_lifted_freezes_are_ignored(workspace: Workspace) -> None:
    add(workspace, [flow(1, "0x01", OTHER, THIEF, USDC, 50), flow(1, "0x0a", OTHER, OTHER, USDT, 9, 1),
                    flow(2, "0x0b", OTHER, THIEF, USDT, 9)])
    log(workspace, 2, "0x02", USDC, USDC_BL, THIEF)
    log(workspace, 3, "0x03", USDT, ADDED, THIEF)
    log(workspace, 4, "0x04", USDT, REMOVED, THIEF)
    first = detect_freezes(workspace)
    second = detect_freezes(workspace)
    assert (first.freezes, first.flows_added, first.lifted) == (1, 1, 1)
    assert (second.freezes, second.flows_added) == (1, 0)
    rows = workspace.con.execute(
        "SELECT dst, asset, amount_out FROM flows WHERE dst LIKE 'frozen:%'"
    ).fetchall()
    assert rows == [("frozen:circle", USDC, "50")]
    assert workspace.con.execute(
        "SELECT count(*) FROM labels WHERE category = 'frozen'"
    ).fetchone()[0] == 1
