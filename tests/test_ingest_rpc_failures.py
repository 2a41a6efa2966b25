"""A node that throttles, stalls, lacks methods, or dies mid-range, and a URL nobody serves.

A small HTTP server on 127.0.0.1 sits in front of the real anvil node and misbehaves on cue
(HTTP 429 / 503, a stall longer than the client's timeout, "method not found" for a hidden
method, or refusing every request after some block), proxying everything else unchanged.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from heisttrace.errors import HeisttraceError, InputError
from heisttrace.ledger import open_workspace
from heisttrace.sources.rpc import ingest_rpc
from heisttrace.sources.rpc_client import DEBUG_TRACE, RpcClient, RpcError
from test_anvil_chain import Chain, anvil_node, chain, free_port  # noqa: F401


class Proxy:
    """Forwards JSON-RPC to `upstream`; `script` lists failures to serve first, in order."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.script: list[str] = []
        self.hidden: set[str] = set()
        self.die_after_block: int | None = None
        self.reverse_batches = False
        self.served: list[str] = []
        self.http = httpx.Client(timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, payload = proxy.answer(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, body: bytes) -> tuple[int, bytes]:
        request = json.loads(body)
        items = request if isinstance(request, list) else [request]
        if self.script:
            action = self.script.pop(0)
            self.served.append(action)
            if action == "stall":
                time.sleep(1.0)
            elif action == "rpc-limit":  # a provider's JSON-RPC rate limit, inside HTTP 200
                out = [{"jsonrpc": "2.0", "id": i["id"],
                        "error": {"code": -32005, "message": "limit exceeded"}} for i in items]
                return 200, json.dumps(out if isinstance(request, list) else out[0]).encode()
            else:
                return int(action), b'{"error": "go away"}'
        if self.reverse_batches and isinstance(request, list):  # answers in any order
            answer = json.loads(self.http.post(self.upstream, json=request).content)
            return 200, json.dumps(answer[::-1]).encode()
        if self.die_after_block is not None:
            for item in items:
                params = item.get("params") or []
                if params and isinstance(params[0], str) and params[0].startswith("0x") \
                        and len(params[0]) < 20 and int(params[0], 16) > self.die_after_block:
                    return 502, b"bad gateway"
        if any(i["method"] in self.hidden for i in items):
            out = [{"jsonrpc": "2.0", "id": i["id"],
                    "error": {"code": -32601, "message": f"Method not found: {i['method']}"}}
                   if i["method"] in self.hidden else self.forward(i) for i in items]
            return 200, json.dumps(out if isinstance(request, list) else out[0]).encode()
        return 200, self.http.post(self.upstream, content=body,
                                   headers={"Content-Type": "application/json"}).content

    def forward(self, item: dict) -> dict:
        return self.http.post(self.upstream, json=item).json()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.http.close()


@pytest.fixture
def proxy(chain: Chain) -> Iterator[Proxy]:
    p = Proxy(chain.url)
    yield p
    p.close()


def flows_of(ws) -> list[tuple]:
    return ws.con.execute("SELECT * FROM flows ORDER BY block, ordinal").fetchall()


def snapshot(ws) -> dict[str, list[tuple]]:
    return {t: ws.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("flows", "tokens", "checkpoints", "evm_logs")}


def test_retries_on_429_5xx_and_timeouts_then_succeeds(chain: Chain, proxy: Proxy, workspace) -> None:
    proxy.script = ["429", "429", "503", "rpc-limit", "500", "stall"]
    proxy.reverse_batches = True
    sleeps: list[float] = []
    client = RpcClient(proxy.url, timeout=0.5, retries=6, backoff=0.01, max_backoff=0.2,
                       sleep=sleeps.append)
    report = ingest_rpc(workspace, proxy.url, chain.first_block, chain.last_block, client=client)
    client.close()
    assert proxy.served == ["429", "429", "503", "rpc-limit", "500", "stall"]
    assert sleeps == [0.01, 0.02, 0.04, 0.08, 0.16, 0.2]  # doubling, capped at max_backoff
    assert report.blocks == chain.last_block - chain.first_block + 1
    with open_workspace(workspace.path.parent / "direct") as direct:
        ingest_rpc(direct, chain.url, chain.first_block, chain.last_block)
        assert flows_of(direct) == flows_of(workspace)


def test_gives_up_after_the_retries_naming_url_and_method(proxy: Proxy) -> None:
    proxy.script = ["503"] * 3
    with RpcClient(proxy.url, retries=2, backoff=0) as client:
        with pytest.raises(RpcError, match=rf"{proxy.url}: eth_blockNumber failed: HTTP 503 \(gave up after 3"):
            client.call("eth_blockNumber")
        assert client.requests_sent == 3


def test_a_permanent_error_is_not_retried(chain: Chain) -> None:
    with RpcClient(chain.url, retries=5, backoff=0) as client:
        with pytest.raises(RpcError, match="eth_getBlockByNumber") as err:
            client.call("eth_getBlockByNumber", ["not-a-block", True])
        assert client.requests_sent == 1 and chain.url in str(err.value)


def test_detects_debug_trace_when_trace_block_is_missing(chain: Chain, proxy: Proxy, workspace) -> None:
    proxy.hidden = {"trace_block", "eth_getBlockReceipts"}  # like geth without eth_getBlockReceipts
    report = ingest_rpc(workspace, proxy.url, chain.first_block, chain.last_block)
    assert report.trace_method == DEBUG_TRACE
    assert report.receipts_method == "eth_getTransactionReceipt"
    with open_workspace(workspace.path.parent / "direct") as direct:
        ingest_rpc(direct, chain.url, chain.first_block, chain.last_block)
        assert flows_of(direct) == flows_of(workspace)


def test_no_tracing_api_is_a_clear_error(chain: Chain, proxy: Proxy, workspace) -> None:
    proxy.hidden = {"debug_traceBlockByNumber", "trace_block"}
    before = snapshot(workspace)
    with pytest.raises(HeisttraceError, match="serves neither block-tracing method.*--traces none"):
        ingest_rpc(workspace, proxy.url, chain.first_block, chain.last_block)
    assert snapshot(workspace) == before


def test_range_past_the_head_is_refused(chain: Chain, workspace) -> None:
    with pytest.raises(InputError, match=f"block {chain.last_block + 5}"):
        ingest_rpc(workspace, chain.url, chain.first_block, chain.last_block + 5)
    assert workspace.count_flows() == 0


def test_node_dying_mid_range_keeps_committed_windows_and_resumes(
    chain: Chain, proxy: Proxy, workspace
) -> None:
    first, last = chain.first_block, chain.last_block
    proxy.die_after_block = first + 4  # windows of 2: [f, f+1], [f+2, f+3] commit, then it dies
    client = RpcClient(proxy.url, retries=1, backoff=0)
    with pytest.raises(HeisttraceError, match=rf"blocks {first + 4}-{first + 5}.*Blocks up to {first + 3} are committed"):
        ingest_rpc(workspace, proxy.url, first, last, batch_blocks=2, client=client)
    name = f"rpc:ethereum:{proxy.url}"
    assert workspace.checkpoint(name) == str(first + 3)
    committed = flows_of(workspace)
    assert committed and max(f[1] for f in committed) <= first + 3

    proxy.die_after_block = None
    report = ingest_rpc(workspace, proxy.url, first, last, batch_blocks=2, client=client)
    client.close()
    assert report.first_fetched == first + 4 and report.skipped_blocks == 4
    assert workspace.checkpoint(name) == str(last)
    with open_workspace(workspace.path.parent / "clean") as clean:
        ingest_rpc(clean, chain.url, first, last)
        assert flows_of(workspace) == flows_of(clean)  # nothing lost, nothing twice
        assert snapshot(workspace)["tokens"] == snapshot(clean)["tokens"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "heisttrace", *args], capture_output=True,
                          text=True, timeout=120)


def test_dead_url_exits_1_with_one_line_and_leaves_the_workspace(chain: Chain, tmp_path: Path) -> None:
    ws_dir = tmp_path / "ws"
    with open_workspace(ws_dir) as ws:
        ingest_rpc(ws, chain.url, chain.first_block, chain.first_block + 1)
        before = snapshot(ws)
    dead = f"http://127.0.0.1:{free_port()}"
    result = _cli("ingest", "rpc", dead, "--from-block", "1", "--to-block", "3",
                  "--retries", "1", "-w", str(ws_dir))
    assert result.returncode == 1
    assert "error:" in result.stderr and dead in result.stderr and "eth_blockNumber" in result.stderr
    assert "Traceback" not in result.stderr
    with open_workspace(ws_dir) as ws:
        assert snapshot(ws) == before


def test_cli_node_dying_mid_range_exits_1_naming_the_blocks(chain: Chain, proxy: Proxy, tmp_path: Path) -> None:
    proxy.die_after_block = chain.first_block + 2
    ws_dir = tmp_path / "ws"
    result = _cli("ingest", "rpc", proxy.url, "--from-block", str(chain.first_block),
                  "--to-block", str(chain.last_block), "--batch-size", "1", "--retries", "0",
                  "-w", str(ws_dir))
    assert result.returncode == 1, result.stdout
    assert f"blocks {chain.first_block + 3}-{chain.first_block + 3}" in result.stderr
    with open_workspace(ws_dir) as ws:
        assert ws.checkpoint(f"rpc:ethereum:{proxy.url}") == str(chain.first_block + 2)
