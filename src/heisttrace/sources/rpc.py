"""Import a block range from an Ethereum JSON-RPC node into the workspace.

The node's answers are reshaped into ethereum-etl tables (`node_json`) and handed to the same
mapping the CSV importer uses (`evm.store_batch`), so a transaction gets identical flows
whichever way it arrived. Blocks go in windows; each window's flows, token metadata and the
checkpoint commit in one transaction, so an interrupted run loses at most the window in
flight and the next run resumes right after the last committed one.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from heisttrace.errors import HeisttraceError, InputError
from heisttrace.ledger.workspace import Workspace
from heisttrace.sources import etl_columns as cols
from heisttrace.sources import node_json as nj
from heisttrace.sources.evm import EvmBatch, store_batch
from heisttrace.sources.tokens import store_tokens
from heisttrace.sources.rpc_client import (
    DEBUG_TRACE,
    PARITY_TRACE,
    RpcClient,
    RpcError,
    is_method_missing,
)

DEFAULT_BATCH_BLOCKS = 20
NO_TRACES = "none"
TRACE_CHOICES = ("auto", DEBUG_TRACE, PARITY_TRACE, NO_TRACES)

# ERC-20 metadata selectors (first 4 bytes of keccak256 of the signature).
DECIMALS_SELECTOR = "0x313ce567"  # decimals()
SYMBOL_SELECTOR = "0x95d89b41"  # symbol()
NAME_SELECTOR = "0x06fdde03"  # name()

Progress = Callable[[int, int], None]


@dataclass
class IngestReport:
    """What one `ingest_rpc` run did; the CLI prints it, tests check it."""

    url: str
    chain: str
    from_block: int
    to_block: int
    first_fetched: int | None = None
    blocks: int = 0
    transactions: int = 0
    flows_added: int = 0
    tokens_added: int = 0
    skipped_blocks: int = 0
    trace_method: str | None = None
    receipts_method: str | None = None
    seconds: float = 0.0
    checkpoint: int | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def checkpoint_name(chain: str, url: str) -> str:
    return f"rpc:{chain}:{url}"


def ingest_rpc(
    ws: Workspace,
    url: str,
    from_block: int,
    to_block: int,
    chain: str = "ethereum",
    batch_blocks: int = DEFAULT_BATCH_BLOCKS,
    progress: Progress | None = None,
    *,
    restart: bool = False,
    trace_method: str = "auto",
    request_size: int = 100,
    client: RpcClient | None = None,
    retries: int = 5,
    backoff: float = 0.5,
    timeout: float = 120.0,
    concurrency: int = 4,
) -> IngestReport:
    """Ingest blocks `from_block`..`to_block` (inclusive) from the node at `url`.

    Blocks up to the stored checkpoint for this (chain, url) are skipped unless `restart`.
    `trace_method` forces a tracing API (or "none" for nodes without one: no internal
    transfers then); "auto" asks the node which it serves.
    """
    if from_block < 0 or to_block < from_block:
        raise HeisttraceError(f"bad block range {from_block}..{to_block}")
    if batch_blocks < 1:
        raise HeisttraceError(f"batch size must be at least 1 block, got {batch_blocks}")
    if trace_method not in TRACE_CHOICES:
        raise HeisttraceError(f"unknown trace method {trace_method!r}; one of {TRACE_CHOICES}")
    started = time.monotonic()
    report = IngestReport(url=url, chain=chain, from_block=from_block, to_block=to_block)
    name = checkpoint_name(chain, url)
    start = from_block
    done = ws.checkpoint(name)
    if done is not None and not restart and int(done) >= from_block:
        start = int(done) + 1
        report.skipped_blocks = min(to_block, int(done)) - from_block + 1
        report.notes.append(f"blocks up to {done} were already ingested (use --restart to redo)")
    elif done is not None and not restart and from_block > int(done) + 1:
        report.notes.append(
            f"blocks {int(done) + 1}-{from_block - 1} were never ingested from this node; the "
            "checkpoint moves past them, so ingest them with an explicit range (--restart)"
        )
    if start > to_block:
        report.checkpoint = int(done) if done is not None else None
        report.seconds = time.monotonic() - started
        return report
    own_client = client is None
    rpc = client or RpcClient(
        url, batch_size=request_size, retries=retries, backoff=backoff, timeout=timeout,
        concurrency=concurrency,
    )
    ahead: _Ahead | None = None
    try:
        head = int(rpc.call("eth_blockNumber"), 16)
        if to_block > head:
            raise InputError(
                f"the node's chain ends at block {head}; cannot ingest up to {to_block}",
                file=url, block=to_block,
            )
        fetcher = BlockFetcher(rpc, trace_method)
        report.first_fetched = start
        total = to_block - start + 1
        windows = [(w, min(to_block, w + batch_blocks - 1))
                   for w in range(start, to_block + 1, batch_blocks)]
        ahead = _Ahead(fetcher.window, windows)
        for (window_start, window_end), fetched, failed in ahead:
            try:
                if failed is not None:
                    raise failed
                batch, n_txs = fetched
                tokens = fetch_new_tokens(ws, rpc, chain, batch)
            except RpcError as exc:
                done_to = report.checkpoint if report.checkpoint is not None else done
                raise HeisttraceError(
                    f"{exc}; while fetching blocks {window_start}-{window_end}. "
                    + (f"Blocks up to {done_to} are committed; run again to resume."
                       if done_to is not None else "Nothing was committed.")
                ) from exc
            with ws.transaction():
                added = store_batch(ws, batch, chain)
                new_tokens = store_token_infos(ws, chain, tokens)
                # A --restart over an earlier range must not pull the checkpoint back.
                ws.set_checkpoint(name, str(max(window_end, int(done) if done else -1)))
                ws.record_import("rpc", f"{url} {chain} blocks {window_start}-{window_end}", added)
            report.blocks += window_end - window_start + 1
            report.transactions += n_txs
            report.flows_added += added
            report.tokens_added += new_tokens
            report.checkpoint = max(window_end, int(done) if done else -1)
            if progress:
                progress(report.blocks, total)
        report.trace_method = fetcher.trace_method
        report.receipts_method = fetcher.receipts_method
    finally:
        if ahead is not None:
            ahead.close()
        if own_client:
            rpc.close()
    report.seconds = time.monotonic() - started
    return report


class _Ahead:
    """Fetches the next window while the current one is stored and committed: the node (and
    the network) work while DuckDB does (anvil, 200 blocks of 20 transfers: fetching 1.1 s and
    storing 0.9 s had run one after the other). A daemon thread, at most one window ahead, so
    an interrupted import does not wait for it; windows come back in order, each with what
    its fetch raised, if anything."""

    def __init__(self, fetch: Callable[[int, int], tuple[EvmBatch, int]],
                 windows: list[tuple[int, int]]) -> None:
        self._n = len(windows)
        self._queue: queue.Queue[tuple[tuple[int, int], Any, BaseException | None]] = \
            queue.Queue(maxsize=1)
        self._stop = threading.Event()
        threading.Thread(target=self._run, args=(fetch, windows), daemon=True,
                         name="rpc-ahead").start()

    def _run(self, fetch: Callable[[int, int], tuple[EvmBatch, int]],
             windows: list[tuple[int, int]]) -> None:
        for window in windows:
            if self._stop.is_set():
                return
            try:
                item = (window, fetch(*window), None)
            except BaseException as exc:  # handed to the importing thread, raised there
                item = (window, None, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if item[2] is not None:
                return

    def __iter__(self) -> Iterator[tuple[tuple[int, int], Any, BaseException | None]]:
        for _ in range(self._n):
            item = self._queue.get()
            yield item
            if item[2] is not None:
                return

    def close(self) -> None:
        self._stop.set()


class BlockFetcher:
    """Fetches one window of blocks and reshapes it; remembers what the node supports."""

    def __init__(self, rpc: RpcClient, trace_method: str) -> None:
        self.rpc = rpc
        self.trace_method: str | None = None if trace_method == "auto" else trace_method
        self.receipts_method: str | None = None

    def window(self, first: int, last: int) -> tuple[EvmBatch, int]:
        """The etl tables of blocks `first`..`last`; malformed node JSON is an InputError."""
        try:
            return self._window(first, last)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(
                f"malformed node answer ({type(exc).__name__}: {exc})",
                file=self.rpc.url, block=first if first == last else None,
                field=None if first == last else f"blocks {first}-{last}",
            ) from exc

    def _window(self, first: int, last: int) -> tuple[EvmBatch, int]:
        numbers = list(range(first, last + 1))
        raw_blocks = self.rpc.batch([("eth_getBlockByNumber", [hex(n), True]) for n in numbers])
        for n, block in zip(numbers, raw_blocks, strict=True):
            if not isinstance(block, dict):
                raise InputError("the node returned no block", file=self.rpc.url, block=n)
        blocks = [nj.block_row(b) for b in raw_blocks]
        txs = [t for b in raw_blocks for t in nj.transaction_rows(b)]
        raw_receipts = self._receipts(numbers, raw_blocks)
        receipts = [nj.receipt_row(r) for r in raw_receipts]
        logs = [log for r in raw_receipts for log in nj.log_rows(r)]
        traces = self._traces(numbers, raw_blocks)
        batch = EvmBatch(
            blocks=nj.to_table(blocks, cols.BLOCK_COLUMNS),
            transactions=nj.to_table(
                nj.enrich_transactions(txs, receipts),
                cols.TRANSACTION_COLUMNS + cols.RECEIPT_ENRICHED_COLUMNS,
            ),
            receipts=nj.to_table(receipts, cols.RECEIPT_COLUMNS),
            logs=nj.to_table(logs, cols.LOG_COLUMNS),
            token_transfers=nj.to_table(nj.token_transfer_rows(logs), cols.TOKEN_TRANSFER_COLUMNS),
            traces=None if traces is None else nj.to_table(traces, cols.TRACE_COLUMNS),
        )
        where = f"{self.rpc.url} blocks {first}-{last}"
        batch.origin = {name: f"{where} ({name})" for name in
                        ("blocks", "transactions", "receipts", "logs", "token_transfers", "traces")}
        return batch, len(txs)

    def _receipts(self, numbers: list[int], blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`eth_getBlockReceipts` when the node has it, else one receipt per transaction."""
        if self.receipts_method in (None, "eth_getBlockReceipts"):
            try:
                answers = self.rpc.batch([("eth_getBlockReceipts", [hex(n)]) for n in numbers])
            except RpcError as exc:
                if not is_method_missing(exc):
                    raise
                self.receipts_method = "eth_getTransactionReceipt"
            else:
                complete = all(
                    isinstance(a, list) and len(a) == len(b.get("transactions") or [])
                    for a, b in zip(answers, blocks, strict=True)
                )
                if complete:
                    self.receipts_method = "eth_getBlockReceipts"
                    return [r for a in answers for r in a]
        hashes = [
            (int(b["number"], 16), tx["hash"]) for b in blocks for tx in b.get("transactions") or []
        ]
        answers = self.rpc.batch([("eth_getTransactionReceipt", [h]) for _, h in hashes])
        for (n, h), receipt in zip(hashes, answers, strict=True):
            if not isinstance(receipt, dict):
                raise InputError(f"the node has no receipt for {h}", file=self.rpc.url, block=n)
        self.receipts_method = self.receipts_method or "eth_getTransactionReceipt"
        return answers

    def _traces(self, numbers: list[int], blocks: list[dict[str, Any]]) -> list[nj.Row] | None:
        if self.trace_method == NO_TRACES:
            return None
        # Only blocks with transactions can hold internal transfers; skipping the others
        # saves requests and avoids tracing the genesis block, which geth refuses.
        busy = [(n, b) for n, b in zip(numbers, blocks, strict=True) if b.get("transactions")]
        if not busy:
            return []
        numbers, blocks = [n for n, _ in busy], [b for _, b in busy]
        if self.trace_method is None:
            self.trace_method = self.rpc.trace_method(numbers[0])
        if self.trace_method == DEBUG_TRACE:
            answers = self.rpc.batch(
                [(DEBUG_TRACE, [hex(n), {"tracer": "callTracer"}]) for n in numbers]
            )
            rows: list[nj.Row] = []
            for n, block, frames in zip(numbers, blocks, answers, strict=True):
                hashes = [tx["hash"] for tx in block.get("transactions") or []]
                if not isinstance(frames, list) or len(frames) != len(hashes):
                    raise InputError(
                        f"{DEBUG_TRACE} answered {type(frames).__name__} for "
                        f"{len(hashes)} transactions", file=self.rpc.url, block=n,
                    )
                rows += nj.geth_trace_rows(n, frames, hashes)
            return rows
        answers = self.rpc.batch([(PARITY_TRACE, [hex(n)]) for n in numbers])
        rows = []
        for n, traces in zip(numbers, answers, strict=True):
            if not isinstance(traces, list):
                raise InputError(f"{PARITY_TRACE} returned no traces", file=self.rpc.url, block=n)
            # Block rewards are protocol issuance, not a transfer between holdings; geth's
            # tracer has no such rows, so dropping them keeps both paths identical.
            rows += [r for r in nj.parity_trace_rows(traces) if r["trace_type"] not in ("reward", "genesis")]
        return rows


# -- token metadata --------------------------------------------------------------------------
@dataclass
class TokenInfo:
    address: str
    symbol: str | None
    name: str | None
    decimals: int | None


def decode_uint(result: Any) -> int | None:
    """A uint256 return value, or None for an empty / malformed answer."""
    text = (result or "0x").removeprefix("0x")
    if len(text) < 64:
        return None
    try:
        return int(text[:64], 16)
    except ValueError:
        return None


def decode_text(result: Any) -> str | None:
    """An ABI `string` return, or a `bytes32` one (MKR, SAI and other early tokens)."""
    text = (result or "0x").removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    value: bytes | None = None
    if len(raw) == 32:
        value = raw.rstrip(b"\0")
    elif len(raw) >= 64:
        offset = int.from_bytes(raw[:32], "big")
        if offset + 32 <= len(raw):
            length = int.from_bytes(raw[offset : offset + 32], "big")
            if offset + 32 + length <= len(raw):
                value = raw[offset + 32 : offset + 32 + length]
    if value is None:
        return None
    decoded = value.decode("utf-8", errors="replace").replace("\0", "").strip()
    return decoded or None


def fetch_token_info(rpc: RpcClient, addresses: list[str]) -> list[TokenInfo]:
    """`decimals()`, `symbol()` and `name()` of each token; a call that reverts gives None."""
    calls = [
        ("eth_call", [{"to": a, "data": sel}, "latest"])
        for a in addresses
        for sel in (DECIMALS_SELECTOR, SYMBOL_SELECTOR, NAME_SELECTOR)
    ]
    answers = rpc.batch(calls, errors="return")
    out = []
    for i, address in enumerate(addresses):
        dec, sym, name = (None if isinstance(a, RpcError) else a for a in answers[3 * i : 3 * i + 3])
        decimals = decode_uint(dec)
        out.append(
            TokenInfo(
                address=address,
                symbol=decode_text(sym),
                name=decode_text(name),
                decimals=decimals if decimals is not None and decimals <= 255 else None,
            )
        )
    return out


def fetch_new_tokens(ws: Workspace, rpc: RpcClient, chain: str, batch: EvmBatch) -> list[TokenInfo]:
    """Ask the node about token contracts of this batch the workspace has no metadata for."""
    if batch.token_transfers is None or batch.token_transfers.num_rows == 0:
        return []
    seen = sorted(set(batch.token_transfers.column("token_address").to_pylist()) - {None})
    # Tokens known with both symbol and decimals are not asked again; a CSV import that
    # left them empty gets them filled from the node.
    known = {
        row[0]
        for row in ws.con.execute(
            "SELECT address FROM tokens WHERE chain = ? AND address IN (SELECT unnest(?)) "
            "AND symbol IS NOT NULL AND decimals IS NOT NULL",
            [chain, seen],
        ).fetchall()
    }
    todo = [a for a in seen if a not in known]
    return fetch_token_info(rpc, todo) if todo else []


def store_token_infos(ws: Workspace, chain: str, tokens: list[TokenInfo]) -> int:
    """Upsert through the shared token store, which never blanks a known value."""
    rows = [{"address": t.address, "symbol": t.symbol, "name": t.name, "decimals": t.decimals}
            for t in tokens]
    return store_tokens(ws, rows, chain=chain, source="rpc")
