"""Replaying ethereum-etl's recorded mainnet node answers, and the replay itself.

ethereum-etl records each JSON-RPC answer as `web3_response.<method>_<params>.json` (params
flattened with `_`, dict keys and values inlined, lowercased). `ReplayTransport` answers a
request from those files, so our client talks real mainnet JSON through its normal httpx path.
Other test modules import it from here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from heisttrace.sources.rpc_client import RpcClient, RpcError
from shared_data import ETL_FIXTURES


def recording_key(method: str, params: list[Any]) -> str:
    parts: list[str] = [method]
    for p in params:
        if isinstance(p, dict):
            for k, v in sorted(p.items()):
                parts += [str(k), str(v)]
        elif isinstance(p, bool):
            parts.append("true" if p else "false")
        else:
            parts.append(str(p))
    return "_".join(parts).lower()


class ReplayTransport(httpx.BaseTransport):
    """An httpx transport answering JSON-RPC requests from recorded response files.

    Methods the recording did not use are derived from what it has, where possible:
    `eth_blockNumber` (the highest recorded block) and `eth_getBlockReceipts` (the block's
    recorded per-transaction receipts); set `derive=False` to refuse them instead.
    """

    def __init__(self, *folders: Path, derive: bool = False) -> None:
        self.answers: dict[str, Any] = {}
        self.calls: list[str] = []
        self.derive = derive
        for folder in folders:
            for path in folder.glob("web3_response.*.json"):
                key = path.name.removeprefix("web3_response.").removesuffix(".json").lower()
                self.answers[key] = json.loads(path.read_text())

    def answer_body(self, content: bytes) -> bytes:
        body = json.loads(content)
        single = isinstance(body, dict)
        out = [self.answer(item) for item in ([body] if single else body)]
        return json.dumps(out[0] if single else out).encode()

    def answer(self, item: dict[str, Any]) -> dict[str, Any]:
        key = recording_key(item["method"], item.get("params", []))
        self.calls.append(key)
        recorded = self.answers.get(key)
        if recorded is None and self.derive:
            recorded = self._derived(item["method"], item.get("params", []))
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": item["id"]}
        if recorded is None:
            answer["error"] = {"code": -32601,
                               "message": f"the method {item['method']} does not exist/is not available"}
        elif "error" in recorded:
            answer["error"] = recorded["error"]
        else:
            answer["result"] = recorded.get("result")
        return answer

    def _derived(self, method: str, params: list[Any]) -> dict[str, Any] | None:
        blocks = [v["result"] for k, v in self.answers.items()
                  if k.startswith("eth_getblockbynumber_") and v.get("result")]
        if method == "eth_blockNumber" and blocks:
            return {"result": hex(max(int(b["number"], 16) for b in blocks))}
        if method == "eth_getBlockReceipts":
            block = self.answers.get(f"eth_getblockbynumber_{params[0]}_true".lower(), {}).get("result")
            if block is None:
                return None
            receipts = [self.answers.get(f"eth_gettransactionreceipt_{tx['hash']}".lower())
                        for tx in block["transactions"]]
            if any(r is None for r in receipts):
                return None
            return {"result": [r["result"] for r in receipts]}
        return None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=self.answer_body(request.content),
                              headers={"Content-Type": "application/json"})


class ReplayServer:
    """The replay behind a real HTTP server on 127.0.0.1, for end-to-end runs and the CLI."""

    def __init__(self, *folders: Path) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import threading

        self.replay = ReplayTransport(*folders, derive=True)
        replay = self.replay

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                payload = replay.answer_body(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def replay_client(*folders: Path, **kwargs: Any) -> RpcClient:
    return RpcClient("http://replay.invalid", transport=ReplayTransport(*folders), **kwargs)


def test_replay_answers_recorded_block_and_refuses_unknown() -> None:
    folder = ETL_FIXTURES / "test_export_blocks_job" / "blocks_with_transactions"
    with replay_client(folder, backoff=0) as client:
        block = client.call("eth_getBlockByNumber", [hex(0xB872), True])
        assert block["number"] == "0xb872"
        with pytest.raises(RpcError, match="eth_getBalance"):
            client.call("eth_getBalance", ["0x0", "latest"])


# -- token metadata from recorded eth_call answers --------------------------------------------
@pytest.mark.parametrize("case", ["token_with_alternative_return_type", "token_with_invalid_data"])
def test_token_metadata_matches_etl(case: str) -> None:
    import csv

    from heisttrace.sources.rpc import fetch_token_info

    folder = ETL_FIXTURES / "test_export_tokens_job" / case
    expected = next(csv.DictReader((folder / "expected_tokens.csv").open()))
    with replay_client(folder) as client:
        [info] = fetch_token_info(client, [expected["address"]])
    assert info.symbol == (expected["symbol"] or None)
    assert info.name == (expected["name"] or None)
    assert str(info.decimals) == expected["decimals"]


def test_token_metadata_of_a_contract_without_the_functions_is_empty() -> None:
    from heisttrace.sources.rpc import fetch_token_info

    folder = ETL_FIXTURES / "test_export_tokens_job" / "token_with_invalid_data"
    with replay_client(folder) as client:  # no recording for this address: the node refuses
        [info] = fetch_token_info(client, ["0x" + "ab" * 20])
    assert (info.symbol, info.name, info.decimals) == (None, None, None)


# -- a whole ingest from recorded mainnet answers ----------------------------------------------
def test_ingest_replayed_mainnet_block_without_block_receipts(workspace) -> None:
    """Block 483920 (0x76250): the recording has no eth_getBlockReceipts, so the importer
    falls back to per-transaction receipts; its tables equal etl's CSVs of the same block."""
    import csv

    from heisttrace.sources import rpc as rpc_mod

    blocks = ETL_FIXTURES / "test_export_blocks_job" / "block_with_logs"
    receipts = ETL_FIXTURES / "test_export_receipts_job" / "receipts_with_logs"
    transport = ReplayTransport(blocks, receipts)  # no derived eth_getBlockReceipts
    transport.answers["eth_blocknumber"] = {"result": hex(0x76250)}
    captured = []
    real_store = rpc_mod.store_batch

    def spy(ws, batch, chain="ethereum"):
        captured.append(batch)
        return real_store(ws, batch, chain)

    rpc_mod.store_batch = spy
    try:
        client = RpcClient("http://replay.invalid", transport=transport)
        report = rpc_mod.ingest_rpc(workspace, "http://replay.invalid", 0x76250, 0x76250,
                                    trace_method="none", client=client)
    finally:
        rpc_mod.store_batch = real_store
    assert report.receipts_method == "eth_getTransactionReceipt"
    assert report.blocks == 1 and report.transactions == 4
    [batch] = captured
    def rows(table, path):
        want = list(csv.DictReader(path.open()))
        common = [c for c in table.column_names if c in want[0]]
        got = [{c: "" if r[c] is None else r[c] for c in common} for r in table.to_pylist()]
        return got, [{c: r[c] for c in common} for r in want]
    got, want = rows(batch.transactions, blocks / "expected_transactions.csv")
    assert got == want
    got, want = rows(batch.receipts, receipts / "expected_receipts.csv")
    key = lambda r: r["transaction_hash"]
    for g, w in zip(sorted(got, key=key), sorted(want, key=key), strict=True):
        assert g == w
    got, want = rows(batch.logs, receipts / "expected_logs.csv")
    assert got == want
    assert batch.token_transfers.num_rows == len(want) == 2
    assert workspace.checkpoint("rpc:ethereum:http://replay.invalid") == str(0x76250)
    assert workspace.count_flows() == report.flows_added > 0


def test_rpc_and_etl_csvs_of_the_same_block_give_the_same_flows(tmp_path: Path) -> None:
    """Mainnet block 483920 through a local HTTP server answering from the recorded node
    responses, against `ingest etl` on the CSVs ethereum-etl made from the same responses."""
    from heisttrace.ledger import open_workspace
    from heisttrace.sources.etl import ingest_etl
    from heisttrace.sources.rpc import ingest_rpc

    res = ETL_FIXTURES
    csvs = tmp_path / "etl"
    csvs.mkdir()
    for name, source in {
        "blocks.csv": res / "test_export_blocks_job/block_with_logs/expected_blocks.csv",
        "transactions.csv": res / "test_export_blocks_job/block_with_logs/expected_transactions.csv",
        "receipts.csv": res / "test_export_receipts_job/receipts_with_logs/expected_receipts.csv",
        "logs.csv": res / "test_export_receipts_job/receipts_with_logs/expected_logs.csv",
        "token_transfers.csv":
            res / "test_export_token_transfers_job/block_with_transfers/expected_token_transfers.csv",
    }.items():
        (csvs / name).symlink_to(source)
    server = ReplayServer(res / "test_export_blocks_job/block_with_logs",
                          res / "test_export_receipts_job/receipts_with_logs")
    try:
        with open_workspace(tmp_path / "rpc") as ws_rpc, open_workspace(tmp_path / "etl-ws") as ws_etl:
            report = ingest_rpc(ws_rpc, server.url, 0x76250, 0x76250, trace_method="none")
            ingest_etl(ws_etl, csvs)
            sql = "SELECT * FROM flows ORDER BY tx_hash, ordinal"
            rpc_flows = ws_rpc.con.execute(sql).fetchall()
            etl_flows = ws_etl.con.execute(sql).fetchall()
            logs_sql = "SELECT * FROM evm_logs ORDER BY tx_hash, log_index"
            assert ws_rpc.con.execute(logs_sql).fetchall() == ws_etl.con.execute(logs_sql).fetchall()
    finally:
        server.close()
    assert report.receipts_method == "eth_getBlockReceipts"  # derived by the server
    assert rpc_flows == etl_flows
    kinds = sorted({f[10] for f in rpc_flows})
    assert kinds == ["fee", "native", "token"] or kinds == ["fee", "token"]
    # Four transactions, each with a fee of gas_used * price, wei for wei as the CSV says.
    assert sum(1 for f in rpc_flows if f[10] == "fee") == 4


@pytest.mark.parametrize("field,value,expect", [
    ("value", "0xnothex", r"block 47218.*malformed node answer"),
    ("from", "0x1234", r"blocks 47218-47218 \(transactions\).*from_address"),
])
def test_malformed_node_json_is_a_clear_error_and_changes_nothing(workspace, field, value, expect) -> None:
    from heisttrace.errors import InputError
    from heisttrace.sources.rpc import ingest_rpc

    folder = ETL_FIXTURES / "test_export_blocks_job" / "blocks_with_transactions"
    transport = ReplayTransport(folder, derive=True)
    block = transport.answers["eth_getblockbynumber_0xb872_true"]["result"]
    block["transactions"][1][field] = value
    # No receipts or traces were recorded for these blocks: serve empty-but-valid ones.
    transport.answers["eth_getblockreceipts_0xb872"] = {"result": [
        {"transactionHash": tx["hash"], "transactionIndex": tx["transactionIndex"],
         "blockNumber": "0xb872", "gasUsed": "0x5208", "effectiveGasPrice": tx["gasPrice"],
         "status": "0x1", "logs": []} for tx in block["transactions"]]}
    transport.answers["trace_block_0xb872"] = {"result": []}
    client = RpcClient("http://replay.invalid", transport=transport)
    with pytest.raises(InputError, match=expect) as err:
        ingest_rpc(workspace, "http://replay.invalid", 0xB872, 0xB872, trace_method="trace_block",
                   client=client)
    assert "http://replay.invalid" in str(err.value)
    assert workspace.count_flows() == 0
    assert workspace.checkpoint("rpc:ethereum:http://replay.invalid") is None


def _json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _as_etl_text(value: Any) -> str | None:
    if value is None or value == []:  # etl's CSV writes both as an empty field
        return None
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def test_streamed_blocks_match_etls_enriched_stream_output(workspace) -> None:
    """Blocks 1755634-1755635 (etl's stream test): transactions enriched with their receipts,
    logs and token transfers equal etl's stream output, column by column."""
    from heisttrace.sources import rpc as rpc_mod

    folder = ETL_FIXTURES / "test_stream" / "blocks_1755634_1755635"
    captured = []
    real_store = rpc_mod.store_batch
    rpc_mod.store_batch = lambda ws, batch, chain="ethereum": captured.append(batch) or real_store(ws, batch, chain)
    try:
        client = RpcClient("http://replay.invalid", transport=ReplayTransport(folder, derive=True))
        report = rpc_mod.ingest_rpc(workspace, "http://replay.invalid", 1755634, 1755635,
                                    trace_method="none", client=client)
    finally:
        rpc_mod.store_batch = real_store
    [batch] = captured
    assert report.blocks == 2 and report.transactions == 2
    for table, name in [(batch.transactions, "expected_transactions.json"),
                        (batch.logs, "expected_logs.json"),
                        (batch.token_transfers, "expected_token_transfers.json"),
                        (batch.blocks, "expected_blocks.json")]:
        expected = _json_lines(folder / name)
        got = table.to_pylist()
        assert len(got) == len(expected) > 0, name
        columns = [c for c in table.column_names if c in expected[0]]
        assert len(columns) >= 7, name
        for g, e in zip(got, expected, strict=True):
            assert {c: g[c] for c in columns} == {c: _as_etl_text(e[c]) for c in columns}, name
    assert "receipt_status" in batch.transactions.column_names


def test_blocks_without_transactions_are_not_traced(workspace) -> None:
    """Genesis (block 0) and an empty block: no trace request at all, not even the probe."""
    from heisttrace.sources.rpc import ingest_rpc

    folder = ETL_FIXTURES / "test_export_blocks_job" / "block_without_transactions"
    transport = ReplayTransport(folder, derive=True)
    client = RpcClient("http://replay.invalid", transport=transport)
    report = ingest_rpc(workspace, "http://replay.invalid", 0, 0, client=client)
    assert report.blocks == 1 and report.transactions == 0 and report.flows_added == 0
    assert report.trace_method is None
    assert not [c for c in transport.calls if "trace" in c]
    assert workspace.checkpoint("rpc:ethereum:http://replay.invalid") == "0"
