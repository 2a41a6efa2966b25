"""The trace commands end to end: real workspace, real CLI, errors as one line and exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from heisttrace.cli import app
from heisttrace.ledger import open_workspace
from trace_helpers import add, flow, label

runner = CliRunner()


def _ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    with open_workspace(path) as ws:
        add(ws, [flow(10, "0xtheft", "0xvictim", "0xa", 100),
                 flow(20, "0xp1", "0xa", "0xdeposit", 25),
                 flow(30, "0xp2", "0xa", "0xb", 75),
                 flow(40, "0xp3", "0xb", "0xdeposit", 75)])
        label(ws, "0xdeposit", "deposit_wallet", "Kraken")
    return path


def test_trace_summary_path_cases(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    out = runner.invoke(app, ["trace", "--case", "t1", "--seed", "0xtheft", "-w", str(ws)])
    assert out.exit_code == 0, out.output
    assert "cashed_out" in out.output and "100.00%" in out.output
    out = runner.invoke(app, ["trace", "--case", "t2", "--seed", "0xtheft", "--policy", "fifo",
                              "-w", str(ws), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["stolen"] == 100 and data["policy"] == "fifo"
    out = runner.invoke(app, ["summary", "t1", "-w", str(ws), "--json"])
    s = json.loads(out.output)
    assert s["cash_out_by_entity"][0]["entity"] == "Kraken"
    assert s["cash_out_by_entity"][0]["origin_amount"] == 100
    assert {r["bucket"]: r["share"] for r in s["breakdown"]}["cashed_out"] == 1.0
    out = runner.invoke(app, ["summary", "t1", "-w", str(ws)])
    assert out.exit_code == 0 and "Kraken" in out.output
    out = runner.invoke(app, ["path", "t1", "--to", "0xdeposit", "--top", "2", "-w", str(ws),
                              "--json"])
    paths = json.loads(out.output)
    assert [p["width"] for p in paths] == [75, 25]
    assert [h["dst"] for h in paths[0]["hops"]] == ["0xa", "0xb", "0xdeposit"]
    assert [h["time"] for h in paths[0]["hops"]] == [10, 30, 40]
    out = runner.invoke(app, ["path", "t1", "--to", "0xdeposit", "-w", str(ws)])
    assert out.exit_code == 0 and "0xp3" in out.output
    out = runner.invoke(app, ["cases", "-w", str(ws), "--json"])
    assert [c["case_name"] for c in json.loads(out.output)] == ["t1", "t2"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heisttrace", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "400"})


def test_errors_are_one_line_and_leave_the_workspace_alone(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    assert _cli("trace", "--case", "ok", "--seed", "0xtheft", "-w", str(ws)).returncode == 0
    bad = _cli("trace", "--case", "ok", "--seed", "0xdead", "-w", str(ws))
    assert bad.returncode == 1 and "0xdead is not in the ledger" in bad.stderr
    assert "Traceback" not in bad.stderr
    prices = tmp_path / "prices.csv"
    prices.write_text("chain,asset,price\nethereum,ETH,abc\n")
    bad = _cli("trace", "--case", "ok", "--seed", "0xtheft", "--prices", str(prices),
               "--policy", "fifo", "-w", str(ws))
    assert bad.returncode == 1
    assert "prices.csv, line 2, field 'price'" in bad.stderr and "not a number" in bad.stderr
    bad = _cli("summary", "nope", "-w", str(ws))
    assert bad.returncode == 1 and "no case named 'nope'" in bad.stderr
    with open_workspace(ws) as w:
        assert w.con.execute("SELECT policy, stolen FROM cases").fetchall() == [("haircut", 100.0)]
