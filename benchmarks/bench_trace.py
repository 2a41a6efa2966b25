"""Benchmark the trace engine on a synthetic ledger written straight into a workspace.

    python benchmarks/bench_trace.py --flows 10000000 --policy haircut

N flows over N/10 addresses, one flow per second, a theft that pays 100 addresses at the
start (so the taint spreads through the whole graph), 100 exchange addresses that stop it.
Prints one line:
    trace policy=P flows=N seconds=S flows_per_s=R build_seconds=B peak_rss_mb=M
          bytes_per_flow=X ... ref_ratio=Y
`seconds` is the compiled sweep alone, the median of `--repeat` sweeps (default 5) of the
same encoded ledger (wall clock; `seconds_min`/`seconds_max` give the spread, which on this
shared machine is +-25%; `cpu_seconds`/`cpu_flows_per_s` the median on the sweep thread's CPU
clock, which a machine shared with other work does not distort),
`build_seconds` the encoding and sorting before it, `bytes_per_flow` the sweep's peak memory
above the encoded ledger arrays, `peak_bytes_per_flow` the whole process's peak RSS (encoding
included) per flow, and `ref_ratio` the sweep's speed-up over the plain reference
(tests/trace_reference.py) on 200,000 flows. `--workspace DIR` keeps the synthetic ledger
there and reuses it on the next run (building 10M flows takes minutes).

Measured 2026-12-02 (second session), flows found their holdings by a 64-bit hash in two
narrow steps (trace/encode.py) instead of one join on the strings: build_seconds 10.67 s
(haircut run) and 12.76 s (FIFO run), against 21-25 s before; sweeps unchanged (haircut 0.324
s = 30.9M flows/s, FIFO 0.412 s = 24.3M flows/s, one run each). The bench_ingest export (6.1M
flows among 7.6M holdings), which failed to encode within the 2 GB DuckDB limit before, now
encodes in 16-19 s (peak RSS 2.4-2.7 GB), from a segment or from the table `flow_rows` (the
latter also needed the roles and decimals copied into temp tables: DuckDB estimated their
Arrow scans at ~1 row and built its hash tables on the flows).

Measured 2026-12-02 after the merge, median of 5, nothing else running (load 1.3-1.5), two
rounds: haircut 0.465 s = 21.5M flows/s (spread 0.350-0.535 s) and 0.322 s = 31.0M flows/s
(0.300-0.342 s); FIFO 0.351 s = 28.5M flows/s (0.304-0.460 s) and 0.346 s = 28.9M flows/s
(0.258-0.382 s); poison 0.552 s = 18.1M flows/s (no target); build_seconds 21-25,
bytes_per_flow 9.4-15.0, ref_ratio 70-126.

Measured 2026-12-02 (issue 3, branch fifo-fast) on the shared 2-core machine (another session's
work came and went: load 0.1-1.3 during these runs, 2.5-6 while tuning), --flows 10000000,
same ledger, one run each as printed (the sweep's CPU time varies by +-25% run to run here):
haircut CPU 0.41-0.53 s = 18.8-24.5M flows/s over 4 runs (one of them 0.70 s wall = 14.3M/s:
the core was taken away; main: 0.49-0.50 s, 19.9-20.3M/s): not a safe margin; FIFO 0.20-0.21 s
= 47-50M flows/s (main: 1.83 s, 5.5M/s); build_seconds 19-27 s (main: 28-36 s); bytes_per_flow
9-12 (main: 11-13). Warm repeated sweeps on the same arrays (min of 5-7, loaded machine):
haircut 0.35 s (main 0.39-0.50 s), FIFO 0.23 s (main 1.33 s); with no seeds (every flow clean)
both sweeps take 0.17 s, the floor of the balance updates. Haircut's remaining cost is its
656k tainted flows (6.6% of the ledger), each reading and writing ~6 per-holding rows spread
over tens of megabytes.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from heisttrace.labels.roles import address_roles  # noqa: E402
from heisttrace.ledger import open_workspace  # noqa: E402
from heisttrace.trace.encode import encode_ledger  # noqa: E402
from heisttrace.trace.kernel import run_sweep  # noqa: E402
from heisttrace.trace.seeds import parse_seeds, resolve_seeds  # noqa: E402

N_THEFT = 100
N_EXCHANGES = 100


def build(path: Path, n: int) -> None:
    """Random ledger in SQL: deterministic hashes of the row number pick src, dst, amount."""
    holders = max(n // 10, 1000)
    with open_workspace(path) as ws:
        ws.con.execute(
            f"""
            INSERT INTO flow_rows
            SELECT 'ethereum', 1 + i // 100, 1000 + i, (i % 100) * 1048576 + 1,
                   '0x' || i::VARCHAR,
                   '0x' || (hash(i * 2) % {holders})::VARCHAR,
                   '0x' || (hash(i * 2 + 1) % {holders})::VARCHAR,
                   'ETH', a, a, 'native', NULL, NULL
            FROM (SELECT i, ((hash(i * 7) % 1000000 + 1)::VARCHAR || '000000000000000') AS a
                  FROM range({n - N_THEFT}) t(i))
            """
        )
        ws.con.execute(
            f"""
            INSERT INTO flow_rows
            SELECT 'ethereum', 0, 999, i, '0xtheft', '0xvictim',
                   '0x' || (hash(i * 13) % {holders})::VARCHAR, 'ETH',
                   '5000000000000000000000', '5000000000000000000000', 'native', NULL, NULL
            FROM range({N_THEFT}) t(i)
            """
        )
        ws.con.execute(
            f"""INSERT INTO labels (chain, address, entity, category, source)
                SELECT 'ethereum', '0x' || (i * 997 % {holders})::VARCHAR, 'Exchange ' || i,
                       'exchange', 'bench' FROM range({N_EXCHANGES}) t(i)"""
        )


def encode(path: Path):
    ws = open_workspace(path)
    started = time.perf_counter()
    enc = encode_ledger(ws, address_roles(ws))
    build_s = time.perf_counter() - started
    seeds = resolve_seeds(ws, parse_seeds(["0xtheft"]))
    return ws, enc, seeds, build_s


def sweep(enc, seeds, policy: str) -> tuple[float, float, float, object]:
    """Wall and CPU seconds and peak RSS growth (bytes, sampled from a side thread)."""
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    price = np.ones(enc.n_holdings)
    started = time.perf_counter()
    cpu_started = time.thread_time()
    res = run_sweep(enc, seeds, policy, price, 10)
    seconds = time.perf_counter() - started
    cpu_seconds = time.thread_time() - cpu_started
    done.set()
    t.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return seconds, cpu_seconds, peak[0] - base, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flows", type=int, default=1_000_000)
    ap.add_argument("--policy", default="haircut", choices=["haircut", "fifo", "poison"])
    ap.add_argument("--ref-flows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5,
                    help="sweeps of the big ledger; the median is reported")
    ap.add_argument("--workspace", type=Path, default=None,
                    help="keep the big synthetic ledger here and reuse it if it exists")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-trace-"))

    # ref_ratio on a small ledger of the same shape (also warms up the compiled kernels)
    small = tmp / "small"
    build(small, args.ref_flows)
    ws, enc, seeds, _ = encode(small)
    sweep(enc, seeds, args.policy)
    kernel_s, _, _, _ = sweep(enc, seeds, args.policy)
    from trace_reference import reference_trace
    ref = reference_trace(ws, ["0xtheft"], policy=args.policy)
    ws.close()
    ref_ratio = ref.sweep_seconds / max(kernel_s, 1e-9)

    big = args.workspace or tmp / "big"
    if not big.exists():
        build(big, args.flows)
    ws, enc, seeds, build_s = encode(big)
    runs = [sweep(enc, seeds, args.policy) for _ in range(max(args.repeat, 1))]
    ws.close()
    walls = sorted(r[0] for r in runs)
    seconds = float(np.median(walls))
    cpu_s = float(np.median([r[1] for r in runs]))
    grown = max(r[2] for r in runs)
    res = runs[0][3]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"trace policy={args.policy} flows={enc.n_flows} seconds={seconds:.3f} "
          f"flows_per_s={enc.n_flows / seconds:.0f} build_seconds={build_s:.2f} "
          f"peak_rss_mb={peak_mb:.0f} bytes_per_flow={grown / enc.n_flows:.1f} "
          f"peak_bytes_per_flow={peak_mb * 2**20 / enc.n_flows:.0f} "
          f"cpu_seconds={cpu_s:.3f} cpu_flows_per_s={enc.n_flows / cpu_s:.0f} "
          f"ledger_bytes_per_flow={enc.nbytes() / enc.n_flows:.0f} "
          f"edges={res.edge_index.size} seconds_min={walls[0]:.3f} "
          f"seconds_max={walls[-1]:.3f} ref_ratio={ref_ratio:.0f}")


if __name__ == "__main__":
    main()
