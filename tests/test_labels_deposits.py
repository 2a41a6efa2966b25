"""Deposit-address detection (Victor 2020) on hand-built ledgers with true deposits and near-misses."""

from __future__ import annotations

import json

import pyarrow as pa

from heisttrace.labels.deposits import DepositParams, detect_deposits
from heisttrace.labels.roles import address_roles
from heisttrace.labels.store import replace_labels
from test_labels_ledger import ETH, Ledger, addr

BINANCE_HOT = addr("binance-hot")
BINANCE_COLD = addr("binance-cold")
KRAKEN = addr("kraken-hot")
UNISWAP = addr("uniswap-router")
USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
GAS = 21_000 * 10**9


def _seed_labels(ws) -> None:  # type: ignore[no-untyped-def]
    rows = [
        ("ethereum", BINANCE_HOT, "Binance", "exchange", 50, "binance"),
        ("ethereum", BINANCE_COLD, "binance reserve wallets ETH", "exchange", 50, "binance"),
        ("ethereum", KRAKEN, "Kraken", "exchange", 50, "kraken"),
        ("ethereum", UNISWAP, "Uniswap", "defi_dex", 50, None),
        ("ethereum", addr("service"), "Some Service", "gambling", 50, None),
    ]
    t = pa.table({
        "chain": [r[0] for r in rows], "address": [r[1] for r in rows],
        "entity": [r[2] for r in rows], "category": [r[3] for r in rows],
        "source": ["test:seed"] * len(rows), "confidence": [r[4] for r in rows],
        "actor": [r[5] for r in rows], "heuristic": [False] * len(rows),
        "evidence": [None] * len(rows),
    })
    with ws.transaction():
        replace_labels(ws, "test:seed", t)


def _scenario(ws):  # type: ignore[no-untyped-def]
    _seed_labels(ws)
    led = Ledger()
    # True deposit 1: two customers' payments, swept to Binance minus gas.
    d1 = addr("deposit-1")
    led.pay(100, addr("alice"), d1, 3 * ETH)
    led.pay(105, addr("alice2"), d1, 2 * ETH)
    led.pay(140, d1, BINANCE_HOT, 5 * ETH - GAS, fee=GAS)
    # True deposit 2: token deposit swept (gas paid by the exchange, D holds no ETH).
    d2 = addr("deposit-2")
    led.pay(200, addr("bob"), d2, 1_000_000, asset=USDT)
    led.pay(900, d2, BINANCE_COLD, 1_000_000, asset=USDT)
    # Near-miss: a normal user who pays an exchange once but keeps most of its money.
    user = addr("user")
    led.pay(300, addr("employer"), user, 10 * ETH)
    led.pay(310, user, KRAKEN, 3 * ETH - GAS, fee=GAS)
    # Near-miss: forwards to two different exchanges.
    two = addr("two-exchanges")
    led.pay(400, addr("carol"), two, 2 * ETH)
    led.pay(410, two, BINANCE_HOT, 1 * ETH - GAS, fee=GAS)
    led.pay(411, two, KRAKEN, 1 * ETH - GAS, fee=GAS)
    # Near-miss: a labelled service that sweeps to an exchange.
    svc = addr("service")
    led.pay(500, addr("dave"), svc, 4 * ETH)
    led.pay(501, svc, KRAKEN, 4 * ETH - GAS, fee=GAS)
    # Near-miss: slow forwarder (gap larger than t_max).
    slow = addr("slow")
    led.pay(1_000, addr("erin"), slow, 1 * ETH)
    led.pay(1_000 + 20_000, slow, KRAKEN, 1 * ETH - GAS, fee=GAS)
    # Near-miss: keeps a share (0.5 ETH) above a_max.
    keeper = addr("keeper")
    led.pay(600, addr("frank"), keeper, 1 * ETH)
    led.pay(610, keeper, KRAKEN, ETH // 2, fee=GAS)
    # Near-miss: forwards all, but to a DEX, not an exchange.
    dexer = addr("dexer")
    led.pay(700, addr("gina"), dexer, 1 * ETH)
    led.pay(701, dexer, UNISWAP, 1 * ETH - GAS, fee=GAS)
    # Near-miss: second deposit arrives and is never swept.
    late = addr("late")
    led.pay(800, addr("hank"), late, 1 * ETH)
    led.pay(810, late, BINANCE_HOT, 1 * ETH - GAS, fee=GAS)
    led.pay(820, addr("hank"), late, 1 * ETH)
    ws.add_flows(led.table())
    return {"d1": d1, "d2": d2, "user": user, "two": two, "svc": svc, "slow": slow,
            "keeper": keeper, "dexer": dexer, "late": late}


def test_true_deposits_found_and_near_misses_not(workspace) -> None:  # type: ignore[no-untyped-def]
    a = _scenario(workspace)
    found = detect_deposits(workspace).to_pylist()
    by_addr = {r["address"]: r for r in found}
    assert set(by_addr) == {a["d1"], a["d2"]}
    assert by_addr[a["d1"]]["entity"] == "binance"
    ev = json.loads(by_addr[a["d1"]]["evidence"])
    assert ev["senders"] == 2 and ev["gas_paid"] == str(GAS)
    eth = ev["assets"][0]
    assert eth["received"] == str(5 * ETH) and eth["max_block_gap"] == 40
    assert eth["first_sweep_tx"] == eth["last_sweep_tx"] and eth["sweeps"] == 1
    row = workspace.con.execute(
        "SELECT category, heuristic, confidence FROM labels WHERE address = ?", [a["d1"]]
    ).fetchone()
    assert row == ("deposit_wallet", True, 10)
    roles = {r["address"]: r["role"] for r in address_roles(workspace).to_pylist()}
    assert roles[a["d1"]] == "cash_out"


def test_thresholds_are_options(workspace) -> None:  # type: ignore[no-untyped-def]
    a = _scenario(workspace)
    found = {r["address"] for r in detect_deposits(workspace, DepositParams(max_blocks=30_000)).to_pylist()}
    assert a["slow"] in found
    found = {r["address"] for r in detect_deposits(workspace, DepositParams(max_fee_eth=0.6)).to_pylist()}
    assert a["keeper"] in found and a["slow"] not in found


def test_detection_is_idempotent_and_clusters_senders(workspace) -> None:  # type: ignore[no-untyped-def]
    a = _scenario(workspace)
    detect_deposits(workspace)
    detect_deposits(workspace)
    n = workspace.con.execute("SELECT count(*) FROM labels WHERE source = 'heuristic:deposits'").fetchone()[0]
    assert n == 2
    senders = {r[0] for r in workspace.con.execute(
        "SELECT sender FROM deposit_clusters WHERE deposit_address = ?", [a["d1"]]).fetchall()}
    assert senders == {addr("alice"), addr("alice2")}
