"""`make demo` end to end at a small scale: every stage runs and the traces match the truth.

This is the issue's acceptance check on the simulator's ground truth, for both policies.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


def test_demo_simulates_and_walks_the_pipeline(tmp_path: Path) -> None:
    ws = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "heisttrace.demo", "--workspace", str(ws),
                           "--scale", "10000"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    theft = json.loads((ws / "sim" / "theft.json").read_text())
    assert theft["tx_hash"] in done.stdout.replace("\n", "")
    for heading in ("simulate", "ingest Ethereum", "ingest Bitcoin", "known labels", "trace (haircut)",
                    "trace (fifo)", "evaluate (fifo)"):
        assert heading in done.stdout, heading
    lines = re.findall(r"^evaluate case=\S+ policy=(\w+) max_bucket_error=([\d.]+) "
                       r"deposit_recall=([\d.]+) deposit_precision=([\d.]+) spam_followed=(\d+)$",
                       done.stdout, flags=re.M)
    assert sorted(p for p, *_ in lines) == ["fifo", "haircut"]
    for policy, error, recall, precision, spam in lines:
        assert float(error) <= 0.01, (policy, error)
        assert float(recall) >= 0.95 and float(precision) >= 0.99, (policy, recall, precision)
        assert int(spam) == 0, policy
    report = (ws / "bybit-report.html").read_text()
    assert "<script src=" not in report and "cashed_out" in report.replace("cashed out", "cashed_out")
