"""`ingest_bitcoin_rpc` against a local JSON-RPC server replaying bitcoin-etl's recordings.

The recorded files are named `rpc_response_<method>_<params joined by _>.json` and hold the
node's `result` verbatim; the server answers JSON-RPC batches from them byte for byte, so
amounts reach the client as the node printed them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from heisttrace.cli import app
from heisttrace.errors import InputError
from heisttrace.ledger import Workspace, open_workspace
from heisttrace.sources.bitcoin import ingest_bitcoin
from heisttrace.sources.bitcoin_rpc import NodeError, checkpoint_name, ingest_bitcoin_rpc
from shared_data import BTC_FIXTURES

JOB = BTC_FIXTURES / "test_export_blocks_job"


class Replay(ThreadingHTTPServer):
    def __init__(self, folders: list[Path]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.files = {f.name: f for d in folders for f in d.glob("rpc_response_*.json")}
        self.calls: list[str] = []

    def answer(self, call: dict) -> str:
        method, params = call["method"], call.get("params") or []
        self.calls.append(method)
        names = [f"rpc_response_{method}{''.join(f'_{p}' for p in params[:n])}.json"
                 for n in range(len(params), -1, -1)]
        found = next((self.files[n] for n in names if n in self.files), None)
        if method == "getblockcount":
            result = str(max(int(n.split("_")[-1][:-5]) for n in self.files
                             if n.startswith("rpc_response_getblockhash_")))
        elif found is None:
            return json.dumps({"result": None, "id": call["id"],
                               "error": {"code": -8, "message": "Block height out of range"}})
        else:
            result = found.read_text()
        return f'{{"result": {result}, "error": null, "id": {json.dumps(call["id"])}}}'


class Handler(BaseHTTPRequestHandler):
    server: Replay

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        calls = body if isinstance(body, list) else [body]
        text = "[" + ",".join(self.server.answer(c) for c in calls) + "]"
        data = text.encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def _serve(folders: list[Path]) -> Iterator[tuple[str, Replay]]:
    server = Replay(folders)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://user:secret@127.0.0.1:{server.server_address[1]}/", server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def node() -> Iterator[tuple[str, Replay]]:
    names = ["block_0", "block_1", "block_without_transactions", "block_with_transactions"]
    yield from _serve([JOB / "bitcoin" / n for n in names])


def _ledger(ws: Workspace) -> list[tuple]:
    return ws.con.execute("SELECT * FROM flows ORDER BY ALL").fetchall()


def test_node_import_equals_file_import(node: tuple[str, Replay], tmp_path: Path) -> None:
    url, server = node
    with open_workspace(tmp_path / "rpc") as a, open_workspace(tmp_path / "files") as b:
        report = ingest_bitcoin_rpc(a, url, 50000, 50002, verbosity=2, batch_blocks=2)
        assert (report.blocks, report.txs) == (3, 5)
        assert server.calls.count("getblockhash") == 3 and server.calls.count("getblock") == 3
        files = [f for n in ("block_without_transactions", "block_with_transactions")
                 for f in (JOB / "bitcoin" / n).glob("rpc_response_getblock_*")]
        ingest_bitcoin(b, files)
        assert _ledger(a) == _ledger(b) and _ledger(a)
        assert a.checkpoint(checkpoint_name("bitcoin")) == "50002"


def test_resumes_after_the_checkpoint_and_stops_at_the_tip(
    node: tuple[str, Replay], workspace: Workspace
) -> None:
    url, server = node
    with pytest.raises(InputError) as err:
        ingest_bitcoin_rpc(workspace, url, verbosity=2)
    assert err.value.field == "start"
    first = ingest_bitcoin_rpc(workspace, url, 50000, 50001, verbosity=2)
    assert first.blocks == 2 and workspace.checkpoint(checkpoint_name("bitcoin")) == "50001"
    server.calls.clear()
    rest = ingest_bitcoin_rpc(workspace, url, verbosity=2)  # to the node's tip, 50002
    assert rest.blocks == 1 and rest.txs == 1
    assert server.calls == ["getblockcount", "getblockhash", "getblock", ]
    again = ingest_bitcoin_rpc(workspace, url, 50000, 50002, verbosity=2)
    assert again.flows_added == 0


def test_node_error_keeps_earlier_batches_only(node: tuple[str, Replay], workspace: Workspace) -> None:
    url, _ = node
    with pytest.raises(NodeError) as err:
        ingest_bitcoin_rpc(workspace, url, 0, 3, verbosity=2, batch_blocks=2)
    assert "getblockhash [2]" in str(err.value) and "secret" not in str(err.value)
    assert workspace.checkpoint(checkpoint_name("bitcoin")) == "1"
    assert {r["block"] for r in workspace.flows().to_pylist()} == {0, 1}


def test_verbosity_one_node_with_getrawtransaction(workspace: Workspace) -> None:
    """Dogecoin Core lists txids only: each transaction is fetched by getrawtransaction."""
    folder = JOB / "dogecoin" / "block_without_transactions"
    for url, server in _serve([folder]):
        report = ingest_bitcoin_rpc(workspace, url, 2, 2, chain="dogecoin", verbosity=1)
        assert "getrawtransaction" in server.calls
    assert report.txs == 1
    expected = json.loads((folder / "expected_transactions.json").read_text().splitlines()[0])
    rows = workspace.flows().to_pylist()
    assert [(r["dst"], int(r["amount_out"]), r["asset"]) for r in rows] == [
        (expected["outputs"][0]["addresses"][0], expected["outputs"][0]["value"], "DOGE")
    ]


def test_cli_bitcoin_rpc(node: tuple[str, Replay], tmp_path: Path) -> None:
    url, _ = node
    res = CliRunner().invoke(app, ["ingest", "bitcoin-rpc", url, "--start", "0", "--end", "1",
                                   "--verbosity", "2", "-w", str(tmp_path / "ws"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert (out["blocks"], out["flows_added"]) == (2, 2)
