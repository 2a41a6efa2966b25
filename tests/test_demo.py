"""`make demo` drives the CLI in-process; its simulate step works on its own."""

from __future__ import annotations

import json
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
