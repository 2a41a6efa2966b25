"""Time `detect_conversions` on a synthetic workspace: filler transfers, swaps and bridges.

Usage: python benchmarks/bench_conversions.py [--flows 1000000] [--swaps 20000] [--bridges 5000]
Prints: conversions flows=N swaps=S bridges=B seconds=T
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from heisttrace.conversions import events
from heisttrace.conversions.run import detect_conversions
from heisttrace.ledger import open_workspace
from heisttrace.ledger.schema import FLOW_SCHEMA, LOG_BASE, TX_STRIDE

ROUTER = "0xd37bbe5744d730a1d98d8dc97c42f0ca46ad7146"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
STETH = "0xae7ab96520de3a18e5e111b5eaab095312d7fe84"
ZERO = "0x" + "0" * 40
VAULT = "0x" + "ba" * 20


def addr(prefix: str, n: int) -> str:
    return "0x" + prefix + f"{n:038x}"


def flow(chain, block, t, ordinal, txh, src, dst, asset, amount, kind) -> dict:
    return {"chain": chain, "block": block, "time": t, "ordinal": ordinal, "tx_hash": txh,
            "src": src, "dst": dst, "asset": asset, "amount_out": str(amount),
            "amount_in": str(amount), "kind": kind, "dst_chain": None, "dst_asset": None}


def filler(n: int, rng: np.random.Generator) -> pa.Table:
    """Plain ETH transfers between 100k addresses, one per transaction."""
    idx = np.arange(n)
    amounts = [str(int(v)) for v in rng.integers(1, 10**18, n)]
    return pa.table({
        "chain": pa.array(["ethereum"] * n),
        "block": pa.array((idx // 200 + 1_000_000).astype(np.int64)),
        "time": pa.array((idx // 200 * 12 + 1_700_000_000).astype(np.int64)),
        "ordinal": pa.array(((idx % 200) * TX_STRIDE + 1).astype(np.int64)),
        "tx_hash": pa.array([f"0x{i:064x}" for i in idx]),
        "src": pa.array([addr("aa", int(s)) for s in rng.integers(0, 100_000, n)]),
        "dst": pa.array([addr("ab", int(d)) for d in rng.integers(0, 100_000, n)]),
        "asset": pa.array(["ETH"] * n),
        "amount_out": pa.array(amounts),
        "amount_in": pa.array(amounts),
        "kind": pa.array(["native"] * n),
        "dst_chain": pa.nulls(n, pa.string()),
        "dst_asset": pa.nulls(n, pa.string()),
    }, schema=FLOW_SCHEMA)


def conversions(swaps: int, bridges: int) -> tuple[list[dict], list[dict], list[tuple]]:
    flows, logs, memos = [], [], []
    for i in range(swaps):
        h, trader, pair, blk, t = f"0x{10**9 + i:064x}", addr("cc", i), addr("cd", i % 500), 2_000_000 + i, 1_800_000_000 + i
        sold, got = 10**18 + i, 9 * 10**17 + i
        base = 3 * TX_STRIDE
        flows += [
            flow("ethereum", blk, t, base, h, trader, "fees", "ETH", 10**15, "fee"),
            flow("ethereum", blk, t, base + LOG_BASE, h, trader, pair, STETH, sold, "token"),
            flow("ethereum", blk, t, base + LOG_BASE + 1, h, pair, trader, WETH, got, "token"),
        ]
        logs.append(events.log_row("ethereum", blk, t, h, 2, pair, *events.univ2_swap(trader, trader, sold, 0, 0, got)))
    for i in range(bridges):
        h, thief, blk, t = f"0x{2 * 10**9 + i:064x}", addr("dd", i), 3_000_000 + i, 1_900_000_000 + i
        amount, base = 10**18 + i, 5 * TX_STRIDE
        flows += [
            flow("ethereum", blk, t, base, h, thief, "fees", "ETH", 10**15, "fee"),
            flow("ethereum", blk, t, base + 1, h, thief, ROUTER, "ETH", amount, "native"),
            flow("ethereum", blk, t, base + 2, h, ROUTER, VAULT, "ETH", amount, "internal"),
        ]
        dest = f"bc1qdest{i:032x}"
        logs.append(events.log_row("ethereum", blk, t, h, 0, ROUTER,
                                   *events.thorchain_deposit(VAULT, ZERO, amount, f"=:b:{dest}")))
        out = f"{3 * 10**9 + i:064x}"
        bblk, bt = 900_000 + i, 1_900_000_100 + i
        flows += [
            flow("bitcoin", bblk, bt, TX_STRIDE, out, "bc1qvault", f"tx:{out}", "BTC", 10**8, "utxo"),
            flow("bitcoin", bblk, bt, TX_STRIDE + 1, out, f"tx:{out}", dest, "BTC", 9 * 10**7, "utxo"),
            flow("bitcoin", bblk, bt, TX_STRIDE + 2, out, f"tx:{out}", "bc1qvault", "BTC", 10**7, "utxo"),
        ]
        memos.append(("bitcoin", bblk, bt, out, f"OUT:{h[2:].upper()}"))
    return flows, logs, memos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--flows", type=int, default=1_000_000, help="filler flows")
    ap.add_argument("--swaps", type=int, default=20_000)
    ap.add_argument("--bridges", type=int, default=5_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = open_workspace(Path(tmp) / "ws")
        flows, logs, memos = conversions(args.swaps, args.bridges)
        with ws.transaction():
            ws.add_flows(filler(args.flows, np.random.default_rng(1)))
            ws.add_flows(pa.Table.from_pylist(flows, schema=FLOW_SCHEMA))
            ws.con.register("_l", pa.Table.from_pylist(logs))
            ws.con.execute("INSERT INTO evm_logs SELECT chain, block, time, tx_hash, log_index, "
                           "address, topic0, topics, data FROM _l")
            ws.con.register("_m", pa.table(list(zip(*memos)), names=["chain", "block", "time", "tx_hash", "memo"]))
            ws.con.execute("INSERT INTO tx_memos SELECT * FROM _m")
        total = ws.count_flows()
        start = time.perf_counter()
        report = detect_conversions(ws)
        seconds = time.perf_counter() - start
        ws.close()
    s = report.summary()
    print(f"conversions flows={total} swaps={s['swaps']} bridges={s['bridges_matched']} seconds={seconds:.2f}")


if __name__ == "__main__":
    main()
