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
from conftest import ETL_FIXTURES


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
    """An httpx transport answering JSON-RPC requests from recorded response files."""

    def __init__(self, *folders: Path) -> None:
        self.answers: dict[str, Any] = {}
        self.calls: list[str] = []
        for folder in folders:
            for path in folder.glob("web3_response.*.json"):
                key = path.name.removeprefix("web3_response.").removesuffix(".json").lower()
                self.answers[key] = json.loads(path.read_text())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        single = isinstance(body, dict)
        out = []
        for item in [body] if single else body:
            key = recording_key(item["method"], item.get("params", []))
            self.calls.append(key)
            recorded = self.answers.get(key)
            if recorded is None:
                answer = {"jsonrpc": "2.0", "id": item["id"],
                          "error": {"code": -32601, "message": f"the method {item['method']} does not exist/is not available"}}
            else:
                answer = {"jsonrpc": "2.0", "id": item["id"]}
                if "error" in recorded:
                    answer["error"] = recorded["error"]
                else:
                    answer["result"] = recorded.get("result")
            out.append(answer)
        return httpx.Response(200, json=out[0] if single else out)


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
    transport = ReplayTransport(blocks, receipts)
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
