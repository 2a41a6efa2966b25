"""Throughput of `ingest_bitcoin` on synthetic blocks (every tx: 2 inputs, 2 outputs).

Run by hand: `.venv/bin/python benchmarks/bench_bitcoin.py --txs 100000`.
Prints one line: `bitcoin txs=N seconds=S flows_per_s=R peak_rss_mb=M`.
Every input spends an output of an earlier transaction in the same import, so the timing
includes the prevout join; the generated JSON is written before the clock starts.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from heisttrace.ledger import open_workspace
from heisttrace.sources.bitcoin import ingest_bitcoin

TXS_PER_BLOCK = 2000
FEE = 1000


def _txid(i: int) -> str:
    return hashlib.sha256(i.to_bytes(8, "little")).hexdigest()


def _btc(sat: int) -> str:
    return f"{sat // 100_000_000}.{sat % 100_000_000:08d}"


def _vout(n: int, sat: int, k: int) -> str:
    addr = f"1Bench{k % 50_000:028d}"
    return (f'{{"value": {_btc(sat)}, "n": {n}, "scriptPubKey": {{"hex": "76a914{k % 50_000:040x}88ac", '
            f'"type": "pubkeyhash", "address": "{addr}"}}}}')


def write_blocks(folder: Path, txs: int) -> None:
    """Block 0 funds everything with one wide coinbase; then txs spend the oldest outputs."""
    seed = 2 * min(txs, TXS_PER_BLOCK) + 2
    unspent: deque[tuple[str, int, int]] = deque()
    cb = _txid(10**12)
    outs = ",".join(_vout(n, 10**8, n) for n in range(seed))
    unspent.extend((cb, n, 10**8) for n in range(seed))
    (folder / "block_000000.json").write_text(
        f'{{"height": 0, "time": 1600000000, "tx": [{{"txid": "{cb}", '
        f'"vin": [{{"coinbase": "00"}}], "vout": [{outs}]}}]}}'
    )
    done, height = 0, 1
    while done < txs:
        parts = []
        for _ in range(min(TXS_PER_BLOCK, txs - done)):
            (t1, n1, v1), (t2, n2, v2) = unspent.popleft(), unspent.popleft()
            me = _txid(done)
            half = (v1 + v2 - FEE) // 2
            rest = v1 + v2 - FEE - half
            vin = f'{{"txid": "{t1}", "vout": {n1}}}, {{"txid": "{t2}", "vout": {n2}}}'
            vout = f"{_vout(0, half, done)}, {_vout(1, rest, done + 7)}"
            parts.append(f'{{"txid": "{me}", "vin": [{vin}], "vout": [{vout}]}}')
            unspent.extend([(me, 0, half), (me, 1, rest)])
            done += 1
        (folder / f"block_{height:06d}.json").write_text(
            f'{{"result": {{"height": {height}, "time": {1600000000 + 600 * height}, '
            f'"tx": [{", ".join(parts)}]}}, "error": null, "id": {height}}}'
        )
        height += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--txs", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "blocks"
        folder.mkdir()
        write_blocks(folder, args.txs)
        with open_workspace(Path(tmp) / "ws") as ws:
            start = time.perf_counter()
            report = ingest_bitcoin(ws, [folder])
            seconds = time.perf_counter() - start
        if report.inputs_unknown or report.fees_unknown:
            sys.exit(f"benchmark data not fully resolved: {report}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"bitcoin txs={args.txs} seconds={seconds:.2f} "
        f"flows_per_s={report.flows_added / seconds:.0f} peak_rss_mb={peak:.0f}"
    )


if __name__ == "__main__":
    main()
