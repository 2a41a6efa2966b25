"""A batch of JSON-RPC calls goes out as several requests at once, answers in call order, and
a chunk that fails for good fails the batch with its own error."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from heisttrace.sources.rpc_client import RpcClient, RpcError


class SlowNode:
    """Answers `echo` with its parameter after `delay` s; counts requests in flight."""

    def __init__(self, delay: float) -> None:
        self.in_flight = self.most = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    outer.in_flight += 1
                    outer.most = max(outer.most, outer.in_flight)
                time.sleep(delay)
                out = []
                for call in body:
                    if call["params"][0] == "bad":
                        out.append({"jsonrpc": "2.0", "id": call["id"],
                                    "error": {"code": -32602, "message": "invalid argument"}})
                    else:
                        out.append({"jsonrpc": "2.0", "id": call["id"],
                                    "result": call["params"][0]})
                data = json.dumps(out).encode()
                with lock:
                    outer.in_flight -= 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def node():  # type: ignore[no-untyped-def]
    n = SlowNode(0.5)
    yield n
    n.server.shutdown()


def test_a_batch_is_sent_as_concurrent_requests_in_order(node: SlowNode) -> None:
    calls = [("echo", [f"v{i}"]) for i in range(16)]
    with RpcClient(node.url, batch_size=100, concurrency=4) as client:
        started = time.monotonic()
        assert client.batch(calls) == [f"v{i}" for i in range(16)]
        took = time.monotonic() - started
        # four requests of 0.5 s side by side (2 s one after the other); a busy machine may
        # start one of them late, so: overlapping, and well under the sequential time
        assert client.requests_sent == 4 and node.most >= 2
        assert took < 1.5
    node.most = 0
    with RpcClient(node.url, batch_size=3, concurrency=1) as client:
        assert client.batch(calls) == [f"v{i}" for i in range(16)]
        assert client.requests_sent == 6 and node.most == 1  # batch_size still bounds a request


def test_a_failed_chunk_fails_the_batch(node: SlowNode) -> None:
    calls = [("echo", ["a"]), ("echo", ["b"]), ("echo", ["bad"]), ("echo", ["c"])]
    with RpcClient(node.url, concurrency=4, retries=0) as client:
        with pytest.raises(RpcError, match="invalid argument"):
            client.batch(calls)
        got = client.batch(calls, errors="return")
        assert got[:2] == ["a", "b"] and isinstance(got[2], RpcError) and got[3] == "c"
