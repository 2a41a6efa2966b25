"""Which label decides an address's role, and the CLI around labels."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from heisttrace.cli import app
from heisttrace.labels.importer import import_labels
from heisttrace.labels.roles import address_roles, load_role_map
from heisttrace.ledger import Workspace
from test_labels_ledger import ETH, Ledger, addr

A = "0x" + "a1" * 20
B = "0x" + "b2" * 20
C = "0x" + "c3" * 20


def _csv(tmp_path: Path, name: str, rows: list[str]) -> Path:
    f = tmp_path / name
    f.write_text("chain,address,entity,category,confidence\n" + "\n".join(rows) + "\n")
    return f


def test_strongest_label_wins_then_most_final_role(workspace: Workspace, tmp_path: Path) -> None:
    f = _csv(tmp_path, "l.csv", [
        f"ethereum,{A},Acme Exchange,exchange,50",
        f"ethereum,{A},Hacker,perpetrator,90",      # more confident: thief wins
        f"ethereum,{B},Mixer,mixing_service,60",
        f"ethereum,{B},OFAC,sanctioned,60",         # tie: dark is more final than thief
        f"ethereum,{C},Spam,spam,10",
        f"ethereum,{C},Something,gambling,90",      # no role: does not count
    ])
    import_labels(workspace, [f])
    roles = {r["address"]: (r["role"], r["entity"]) for r in address_roles(workspace).to_pylist()}
    assert roles[A] == ("thief", "Hacker")
    assert roles[B] == ("dark", "Mixer")
    assert roles[C] == ("ignore", "Spam")


def test_user_role_table_overrides(workspace: Workspace, tmp_path: Path) -> None:
    f = _csv(tmp_path, "l.csv", [f"ethereum,{A},Casino,gambling,50"])
    import_labels(workspace, [f])
    assert address_roles(workspace).num_rows == 0
    table = tmp_path / "roles.csv"
    table.write_text("category,role\ngambling,cash_out\n")
    roles = address_roles(workspace, load_role_map(table)).to_pylist()
    assert [(r["address"], r["role"]) for r in roles] == [(A, "cash_out")]


def test_cli_import_stats_detect(tmp_path: Path) -> None:
    runner = CliRunner()
    ws = str(tmp_path / "ws")
    exchange = addr("exchange-wallet")
    f = _csv(tmp_path, "l.csv", [f"ethereum,{exchange},Kraken,exchange,50"])
    res = runner.invoke(app, ["labels", "import", str(f), "-w", ws, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["by_category"] == {"exchange": 1}
    res = runner.invoke(app, ["labels", "stats", "-w", ws, "--json"])
    assert json.loads(res.output)["by_role"] == [{"role": "cash_out", "addresses": 1}]

    from heisttrace.ledger import open_workspace

    led = Ledger()
    d = addr("deposit")
    led.pay(10, addr("customer"), d, 2 * ETH)
    led.pay(20, d, exchange, 2 * ETH - 21_000, fee=21_000)
    with open_workspace(ws) as w:
        w.add_flows(led.table())
    res = runner.invoke(app, ["labels", "detect-deposits", "-w", ws, "--json"])
    assert res.exit_code == 0, res.output
    assert [r["address"] for r in json.loads(res.output)] == [d]
    res = runner.invoke(app, ["labels", "detect-deposits", "-w", ws, "--json", "--max-blocks", "5"])
    assert json.loads(res.output) == []
    res = runner.invoke(app, ["labels", "detect-spam", "-w", ws, "--json"])
    assert res.exit_code == 0 and json.loads(res.output) == []
    out = tmp_path / "all.csv"
    res = runner.invoke(app, ["labels", "export", str(out), "-w", ws])
    assert res.exit_code == 0 and out.read_text().count("\n") == 2  # header + the exchange


def test_cli_bad_file_is_one_error_line_and_exit_1(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.csv"
    bad.write_text("chain,address,entity,category\nethereum,0x12,a,exchange\n")
    proc = subprocess.run(
        [sys.executable, "-m", "heisttrace", "labels", "import", str(bad), "-w", str(tmp_path / "ws")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert "bad.csv" in proc.stderr and "line 2" in proc.stderr and "Traceback" not in proc.stderr
