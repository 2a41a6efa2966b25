"""Blocks straight from a bitcoind-compatible JSON-RPC node, batched and resumable.

Per batch of heights: one JSON-RPC batch of `getblockhash`, one of `getblock <hash>
<verbosity>`, then one workspace transaction that writes the flows and moves the checkpoint
`bitcoin_rpc:<chain>` to the batch's last height. A crash loses at most the batch in flight,
and the next run without `start` continues after the checkpoint.

Verbosity 1 (for nodes whose getblock only lists txids, like Dogecoin Core) adds one
`getrawtransaction` per transaction. Verbosity 3 (Bitcoin Core 23+) carries each input's prevout, so inputs are valued without
the earlier blocks; older nodes answer it like verbosity 2. Credentials go in the URL
(`http://user:password@127.0.0.1:8332`), as for bitcoin-cli's rpcuser/rpcpassword.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

from heisttrace.errors import HeisttraceError, InputError
from heisttrace.ledger.workspace import Workspace
from heisttrace.sources.bitcoin import (
    BATCH_TXS,
    Importer,
    IngestReport,
    add_notes,
    check_chain,
)
from heisttrace.sources.bitcoin_json import Where, unwrap

BATCH_BLOCKS = 20


class NodeError(HeisttraceError):
    """The node could not be reached or answered something unusable."""


class BitcoinRpc:
    """A minimal JSON-RPC 1.0 client (what bitcoind speaks) with batch calls."""

    def __init__(self, url: str, timeout: float = 120.0, client: httpx.Client | None = None) -> None:
        self.url = url
        self.client = client or httpx.Client(timeout=timeout)
        self._id = 0

    def close(self) -> None:
        self.client.close()

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Results in call order; a node error names the method and its parameters."""
        if not calls:
            return []
        first = self._id
        body = [
            {"jsonrpc": "1.0", "id": first + k, "method": m, "params": p}
            for k, (m, p) in enumerate(calls)
        ]
        self._id += len(calls)
        try:
            resp = self.client.post(self.url, content=json.dumps(body),
                                    headers={"content-type": "application/json"})
        except httpx.HTTPError as exc:
            raise NodeError(f"{_safe(self.url)}: cannot reach the node: {exc}") from None
        try:
            answers = json.loads(resp.text, parse_float=Decimal)
        except json.JSONDecodeError:
            raise NodeError(
                f"{_safe(self.url)}: HTTP {resp.status_code}, not JSON: {resp.text[:200]!r}"
            ) from None
        if isinstance(answers, dict):  # some servers answer a failed batch with one error
            answers = [answers]
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        results = []
        for k, (method, params) in enumerate(calls):
            answer = by_id.get(first + k)
            if answer is None:
                raise NodeError(f"{_safe(self.url)}: no answer to {method} {params}")
            if answer.get("error") is not None:
                raise NodeError(
                    f"{_safe(self.url)}: {method} {params} failed: {answer['error']}"
                )
            results.append(answer.get("result"))
        return results

    def block_count(self) -> int:
        return int(self.batch([("getblockcount", [])])[0])

    def blocks(self, heights: list[int], verbosity: int) -> list[Any]:
        """Blocks with their transactions; verbosity 1 fetches each with getrawtransaction.

        Verbosity 1 is sent as `true`: Dogecoin Core's getblock takes a boolean.
        """
        hashes = self.batch([("getblockhash", [h]) for h in heights])
        blocks = self.batch([("getblock", [h, True if verbosity == 1 else verbosity])
                             for h in hashes])
        txids = [t for b in blocks if isinstance(b, dict)
                 for t in b.get("tx") or [] if isinstance(t, str)]
        txs = self.batch([("getrawtransaction", [t, 1]) for t in txids])
        return [*txs, *blocks]  # loose transactions first: they fill the verbosity-1 blocks


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(password=None)) if parsed.password else url


def checkpoint_name(chain: str) -> str:
    return f"bitcoin_rpc:{chain}"


def ingest_bitcoin_rpc(
    ws: Workspace,
    url: str,
    start: int | None = None,
    end: int | None = None,
    chain: str = "bitcoin",
    *,
    verbosity: int = 3,
    batch_blocks: int = BATCH_BLOCKS,
    progress: Callable[[int, int], None] | None = None,
    rpc: BitcoinRpc | None = None,
) -> IngestReport:
    """Import heights start..end (inclusive) from a node; resumes after the checkpoint.

    `end` defaults to the node's tip; `start` to one after the checkpoint. Each batch is
    atomic and idempotent, so re-running a range adds nothing.
    """
    check_chain(chain)
    if verbosity not in (1, 2, 3):
        raise InputError("verbosity must be 1, 2 or 3", field="verbosity")
    client = rpc or BitcoinRpc(url)
    try:
        if start is None:
            done = ws.checkpoint(checkpoint_name(chain))
            if done is None:
                raise InputError(
                    f"no checkpoint for {chain} yet: give the first height (--start)",
                    field="start",
                )
            start = int(done) + 1
        if end is None:
            end = client.block_count()
        report = IngestReport(chain=chain)
        heights = list(range(start, end + 1))
        for k in range(0, len(heights), batch_blocks):
            part = heights[k : k + batch_blocks]
            blocks = client.blocks(part, verbosity)
            with ws.transaction():
                importer = Importer(ws, chain, report, BATCH_TXS)
                for item in blocks:
                    height = item.get("height") if isinstance(item, dict) else None
                    where = Where(f"{_safe(url)} getblock", None, height)
                    for kind, obj in unwrap(item, where):
                        importer.add(kind, obj, where)
                importer.finish()
                ws.set_checkpoint(checkpoint_name(chain), str(part[-1]))
                ws.record_import(f"bitcoin_rpc:{chain}", f"{_safe(url)} {part[0]}-{part[-1]}",
                                 report.flows_added)
            if progress:
                progress(k + len(part), len(heights))
        add_notes(report)
        return report
    finally:
        if rpc is None:
            client.close()
