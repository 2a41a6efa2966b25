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


def test_ctrl_c_is_one_line_exit_130_and_changes_nothing(tmp_path: Path) -> None:
    """SIGINT while `ingest rpc` waits on a node that never answers: no traceback, exit 130
    (Click's own handling of KeyboardInterrupt), the workspace as it was."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from heisttrace.ledger import open_workspace

    ws_path = tmp_path / "ws"
    with open_workspace(ws_path) as ws:
        before = ws.count_flows()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections, never answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    exe = Path(sys.executable).parent / "heisttrace"
    proc = subprocess.Popen([str(exe), "ingest", "rpc", url, "--from-block", "1", "--to-block",
                             "5", "-w", str(ws_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        conn = None
        deadline = time.monotonic() + 60
        silent.settimeout(1)
        while conn is None and time.monotonic() < deadline:
            try:
                conn, _ = silent.accept()  # the importer is now waiting for an answer
            except TimeoutError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert conn is not None
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:  # as a user would: press Ctrl-C once more
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        silent.close()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    with open_workspace(ws_path) as ws:
        assert ws.count_flows() == before


def test_an_interrupted_query_is_reported_as_an_interruption(monkeypatch, capsys) -> None:
    """Ctrl-C during a DuckDB query surfaces as RuntimeError("Query interrupted"): one line
    and exit 130, like an interrupt elsewhere; any other RuntimeError is a bug and stays
    loud."""
    import pytest

    import heisttrace.cli as cli

    def interrupted() -> None:
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(cli, "app", interrupted)
    with pytest.raises(SystemExit) as end:
        cli.main()
    assert end.value.code == 130
    assert "interrupted" in capsys.readouterr().err

    def other() -> None:
        raise RuntimeError("something else")

    monkeypatch.setattr(cli, "app", other)
    with pytest.raises(RuntimeError, match="something else"):
        cli.main()
