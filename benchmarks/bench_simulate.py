"""Simulator throughput: `python benchmarks/bench_simulate.py --scale N [--out DIR]`.

Runs the bybit scenario in a child process (so its peak memory is the simulator's alone) and
prints: simulate flows=N seconds=S flows_per_s=R peak_rss_mb=M bytes=B
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys
from pathlib import Path
from heisttrace.simulate.run import simulate
s = simulate("bybit", int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
print(s["flows"])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="keep the output here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "sim"
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, str(args.scale), str(args.seed), str(out)],
                              check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        flows = int(done.stdout.strip().splitlines()[-1])
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"simulate flows={flows} seconds={seconds:.2f} flows_per_s={flows / seconds:.0f} "
          f"peak_rss_mb={peak_mb:.0f} bytes={size}")


if __name__ == "__main__":
    main()
