"""The CLI of the file importers and `heisttrace flows`, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from heisttrace.cli import app
from heisttrace.errors import InputError
from heisttrace.sources.tokens import whole_units
from tests.test_ingest_etherscan_files import etherscan_answers
from tests.test_ingest_etl_files import etl_folder

runner = CliRunner()


def test_ingest_etl_twice_then_flows_in_whole_units(tmp_path: Path, monkeypatch) -> None:
    from heisttrace.cli import common

    monkeypatch.setattr(common.console, "width", 250)  # the console was sized at import
    folder, ws = etl_folder(tmp_path), tmp_path / "ws"
    first = runner.invoke(app, ["ingest", "etl", str(folder), "-w", str(ws), "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["flows_added"] == 8 and report["tokens_added"] == 1
    second = runner.invoke(app, ["ingest", "etl", str(folder), "-w", str(ws)])
    assert second.exit_code == 0
    assert "0 flows added, 8 skipped as duplicates" in second.output

    shown = runner.invoke(app, ["flows", "-w", str(ws), "--json", "--limit", "0"])
    rows = json.loads(shown.output)
    token = [r for r in rows if r["kind"] == "token"]
    # tokens.csv says 2 decimals: 100000 base units are 1000 whole tokens.
    assert [(r["amount_out"], r["amount"], r["symbol"]) for r in token] == [
        ("100000", "1000", "TKN"), ("200000", "2000", "TKN")]
    fee = [r for r in rows if r["kind"] == "fee"][0]
    assert fee["amount"] == whole_units(fee["amount_out"], 18)
    table = runner.invoke(app, ["flows", "-w", str(ws)])
    assert table.exit_code == 0 and "TKN" in table.output and "0.00254265" in table.output


def test_ingest_etherscan_cli(tmp_path: Path) -> None:
    files = [str(p) for p in etherscan_answers(tmp_path)]
    result = runner.invoke(app, ["ingest", "etherscan", *files, "-w", str(tmp_path / "ws"),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["flows_added"] == 8


def test_bad_input_raises_input_error_for_the_entry_point(tmp_path: Path) -> None:
    """main() turns InputError into one red line and exit 1 (see cli.main)."""
    folder = etl_folder(tmp_path)
    (folder / "blocks.csv").write_text("number,timestamp\n483920,-1\n")
    result = runner.invoke(app, ["ingest", "etl", str(folder), "-w", str(tmp_path / "ws")])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    assert "blocks.csv, line 2, field 'timestamp'" in str(result.exception)


def test_whole_units_is_exact() -> None:
    assert whole_units("1500000000000000000", 18) == "1.5"
    assert whole_units("1", 18) == "0.000000000000000001"
    assert whole_units("0", 6) == "0"
    assert whole_units(str(2**256 - 1), 18) == str(2**256 - 1)[:-18] + "." + str(2**256 - 1)[-18:]
    assert whole_units("123", None) == "123"


def test_bad_input_exits_1_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    folder = etl_folder(tmp_path)
    (folder / "token_transfers.csv").write_text(
        (folder / "token_transfers.csv").read_text().replace(",200000,", ",2e5,"))
    done = subprocess.run(
        [sys.executable, "-m", "heisttrace", "ingest", "etl", str(folder), "-w",
         str(tmp_path / "ws")], capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "500"})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "token_transfers.csv, line 3, field 'value'" in " ".join(done.stderr.split())
