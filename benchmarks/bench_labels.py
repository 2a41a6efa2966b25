"""Label benchmarks, run by hand.

    python benchmarks/bench_labels.py                 # import all GraphSense TagPacks
    python benchmarks/bench_labels.py --flows 2000000 # deposit + spam detection on a synthetic ledger

Prints `labels tags=N seconds=S tags_per_s=R peak_rss_mb=M` and
`label_heuristics flows=N deposit_s=S spam_s=S deposits=D`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa

from heisttrace.labels.deposits import detect_deposits
from heisttrace.labels.importer import import_labels
from heisttrace.labels.spam import detect_spam
from heisttrace.ledger import open_workspace

PACKS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "labels" / "graphsense-tagpacks"


def bench_import(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp, open_workspace(Path(tmp) / "ws") as ws:
        t = time.perf_counter()
        result = import_labels(ws, [path])
        s = time.perf_counter() - t
        rss = psutil.Process().memory_info().rss / 2**20
        print(f"labels tags={result.labels} seconds={s:.2f} tags_per_s={result.labels / s:.0f} peak_rss_mb={rss:.0f}")


def _hex(ids: np.ndarray, salt: int) -> list[str]:
    return [f"0x{salt:08x}{i:032x}" for i in ids.tolist()]


def bench_heuristics(n_flows: int) -> None:
    """Half the transactions are customer deposits swept to one of 50 exchange wallets."""
    rng = np.random.default_rng(7)
    n_dep = n_flows // 4
    n_ex = 50
    deposits = rng.integers(0, n_dep, n_dep)
    block = np.sort(rng.integers(0, 5_000_000, n_dep))
    amount = rng.integers(10**15, 10**18, n_dep)
    ex = rng.integers(0, n_ex, n_dep)
    d_addr = _hex(np.arange(n_dep), 1)
    rows_src = _hex(deposits + 10**9, 2) + d_addr
    rows_dst = d_addr + [f"0x{3:08x}{int(e):032x}" for e in ex]
    blocks = np.concatenate([block, block + rng.integers(1, 500, n_dep)])
    amounts = np.concatenate([amount, amount]).astype(str)
    n = 2 * n_dep
    table = pa.table({
        "chain": ["ethereum"] * n, "block": blocks, "time": blocks * 12, "ordinal": np.arange(n) % 1000 + 1,
        "tx_hash": [f"0x{i:064x}" for i in range(n)], "src": rows_src, "dst": rows_dst,
        "asset": ["ETH"] * n, "amount_out": amounts, "amount_in": amounts, "kind": ["native"] * n,
        "dst_chain": pa.nulls(n, pa.string()), "dst_asset": pa.nulls(n, pa.string()),
    })
    labels = pa.table({
        "chain": ["ethereum"] * n_ex, "address": [f"0x{3:08x}{e:032x}" for e in range(n_ex)],
        "entity": [f"Exchange {e % 10}" for e in range(n_ex)], "category": ["exchange"] * n_ex,
        "source": ["bench"] * n_ex, "confidence": [50] * n_ex, "actor": [None] * n_ex,
        "heuristic": [False] * n_ex, "evidence": [None] * n_ex,
    })
    with tempfile.TemporaryDirectory() as tmp, open_workspace(Path(tmp) / "ws") as ws:
        ws.add_flows(table)
        ws.con.register("_l", labels)
        ws.con.execute("INSERT INTO labels SELECT * FROM _l")
        t = time.perf_counter()
        found = detect_deposits(ws).num_rows
        dep_s = time.perf_counter() - t
        t = time.perf_counter()
        detect_spam(ws)
        spam_s = time.perf_counter() - t
        print(f"label_heuristics flows={n} deposit_s={dep_s:.2f} spam_s={spam_s:.2f} deposits={found}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", type=Path, default=PACKS)
    ap.add_argument("--flows", type=int, default=0, help="also time the heuristics on this many flows")
    args = ap.parse_args()
    bench_import(args.path)
    if args.flows:
        bench_heuristics(args.flows)


if __name__ == "__main__":
    main()
