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
            for k, v in p.items():
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
