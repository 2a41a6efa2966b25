"""Node JSON -> ethereum-etl-shaped rows, so a node and a CSV export feed one mapping.

`sources/evm.py` turns etl tables into flows; this module only reshapes what a JSON-RPC node
answers into the rows ethereum-etl would have written for the same blocks (column names,
decimal strings, lowercase hex, comma-joined topics and trace addresses). Column layouts follow
ethereum-etl's `docs/schema.md` and its mappers (blockchain-etl/ethereum-etl, MIT): the
recorded fixtures in ../shared/data/fixtures/ethereum-etl check us against its output.

Every value is a string or None (None where etl writes an empty field).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from heisttrace.ledger.schema import TRANSFER_TOPIC
from heisttrace.sources.etl_columns import RECEIPT_ENRICHED_COLUMNS

Row = dict[str, str | None]

_TRANSFER = "0x" + TRANSFER_TOPIC


# -- scalar helpers --------------------------------------------------------------------------
def hex_to_dec(value: Any) -> str | None:
    """Node quantities are hex strings ("0x1a"); etl writes them as decimal."""
    if value is None:
        return None
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if text.startswith(("0x", "0X")):
        return str(int(text, 16)) if len(text) > 2 else "0"
    return str(int(text))


def lower(value: Any) -> str | None:
    return None if value is None else str(value).lower()


def to_table(rows: Sequence[Row], columns: Sequence[str]) -> pa.Table:
    """Rows as an all-string Arrow table with exactly etl's columns, in etl's order."""
    return pa.table(
        {c: pa.array([r.get(c) for r in rows], type=pa.string()) for c in columns}
    )


# -- blocks and transactions -----------------------------------------------------------------
def _withdrawals(block: dict[str, Any]) -> str | None:
    """etl writes withdrawals as comma-joined JSON objects with decimal numbers."""
    items = block.get("withdrawals")
    if items is None:
        return None
    return ",".join(
        json.dumps(
            {
                "index": int(hex_to_dec(w.get("index")) or 0),
                "validator_index": int(hex_to_dec(w.get("validatorIndex")) or 0),
                "address": lower(w.get("address")),
                "amount": int(hex_to_dec(w.get("amount")) or 0),
            },
            separators=(",", ":"),
        )
        for w in items
    )


def block_row(block: dict[str, Any]) -> Row:
    """One `eth_getBlockByNumber` answer (full or hash-only transactions) -> blocks.csv row."""
    return {
        "number": hex_to_dec(block.get("number")),
        "hash": lower(block.get("hash")),
        "parent_hash": lower(block.get("parentHash")),
        "nonce": lower(block.get("nonce")),
        "sha3_uncles": lower(block.get("sha3Uncles")),
        "logs_bloom": lower(block.get("logsBloom")),
        "transactions_root": lower(block.get("transactionsRoot")),
        "state_root": lower(block.get("stateRoot")),
        "receipts_root": lower(block.get("receiptsRoot")),
        "miner": lower(block.get("miner")),
        "difficulty": hex_to_dec(block.get("difficulty")),
        "total_difficulty": hex_to_dec(block.get("totalDifficulty")),
        "size": hex_to_dec(block.get("size")),
        "extra_data": lower(block.get("extraData")),
        "gas_limit": hex_to_dec(block.get("gasLimit")),
        "gas_used": hex_to_dec(block.get("gasUsed")),
        "timestamp": hex_to_dec(block.get("timestamp")),
        "transaction_count": str(len(block.get("transactions") or [])),
        "base_fee_per_gas": hex_to_dec(block.get("baseFeePerGas")),
        "withdrawals_root": lower(block.get("withdrawalsRoot")),
        "withdrawals": _withdrawals(block),
    }


def transaction_rows(block: dict[str, Any]) -> list[Row]:
    """The full transaction objects of one block -> transactions.csv rows."""
    timestamp = hex_to_dec(block.get("timestamp"))
    rows = []
    for tx in block.get("transactions") or []:
        if not isinstance(tx, dict):
            raise ValueError("block has transaction hashes only; ask with full transactions")
        rows.append(
            {
                "hash": lower(tx.get("hash")),
                "nonce": hex_to_dec(tx.get("nonce")),
                "block_hash": lower(tx.get("blockHash")),
                "block_number": hex_to_dec(tx.get("blockNumber")),
                "transaction_index": hex_to_dec(tx.get("transactionIndex")),
                "from_address": lower(tx.get("from")),
                "to_address": lower(tx.get("to")),
                "value": hex_to_dec(tx.get("value")),
                "gas": hex_to_dec(tx.get("gas")),
                "gas_price": hex_to_dec(tx.get("gasPrice")),
                "input": lower(tx.get("input")),
                "block_timestamp": timestamp,
                "max_fee_per_gas": hex_to_dec(tx.get("maxFeePerGas")),
                "max_priority_fee_per_gas": hex_to_dec(tx.get("maxPriorityFeePerGas")),
                "transaction_type": hex_to_dec(tx.get("type")),
            }
        )
    return rows


def receipt_row(receipt: dict[str, Any]) -> Row:
    """One receipt (`eth_getBlockReceipts` item or `eth_getTransactionReceipt`) -> receipts.csv row."""
    return {
        "transaction_hash": lower(receipt.get("transactionHash")),
        "transaction_index": hex_to_dec(receipt.get("transactionIndex")),
        "block_hash": lower(receipt.get("blockHash")),
        "block_number": hex_to_dec(receipt.get("blockNumber")),
        "cumulative_gas_used": hex_to_dec(receipt.get("cumulativeGasUsed")),
        "gas_used": hex_to_dec(receipt.get("gasUsed")),
        "contract_address": lower(receipt.get("contractAddress")),
        "root": lower(receipt.get("root")),
        "status": hex_to_dec(receipt.get("status")),
        "effective_gas_price": hex_to_dec(receipt.get("effectiveGasPrice")),
    }


def enrich_transactions(transactions: Iterable[Row], receipts: Iterable[Row]) -> list[Row]:
    """Adds etl's `receipt_*` columns, joining on the transaction hash as etl does."""
    by_hash = {r["transaction_hash"]: r for r in receipts}
    out = []
    for tx in transactions:
        receipt = by_hash.get(tx["hash"], {})
        enriched = dict(tx)
        for column in RECEIPT_ENRICHED_COLUMNS:
            enriched[column] = receipt.get(column.removeprefix("receipt_"))
        out.append(enriched)
    return out


# -- logs and token transfers ----------------------------------------------------------------
def log_rows(receipt: dict[str, Any]) -> list[Row]:
    """The logs of one receipt -> logs.csv rows (topics comma-joined, as etl writes them)."""
    return [
        {
            "log_index": hex_to_dec(log.get("logIndex")),
            "transaction_hash": lower(log.get("transactionHash")),
            "transaction_index": hex_to_dec(log.get("transactionIndex")),
            "block_hash": lower(log.get("blockHash")),
            "block_number": hex_to_dec(log.get("blockNumber")),
            "address": lower(log.get("address")),
            "data": lower(log.get("data")),
            "topics": ",".join(lower(t) or "" for t in log.get("topics") or []),
        }
        for log in receipt.get("logs") or []
    ]


def _words(data: str | None) -> list[str]:
    """The 32-byte words of a log's data field (hex, without 0x)."""
    text = (data or "0x").removeprefix("0x")
    if len(text) % 64:
        return []
    return [text[i : i + 64] for i in range(0, len(text), 64)]


def token_transfer_row(log: Row) -> Row | None:
    """An ERC-20 `Transfer(from, to, value)` log -> token_transfers.csv row, else None.

    Like etl, indexed topics and data words together must be exactly the four fields
    (topic0, from, to, value), which also accepts early tokens that left from/to unindexed.
    Unlike etl, ERC-721 transfers (tokenId as a fourth topic, no data) are skipped: their
    "value" is a token id, not an amount, and would corrupt balances.
    """
    topics = [t for t in (log.get("topics") or "").split(",") if t]
    if not topics or topics[0] != _TRANSFER or len(topics) >= 4:
        return None
    words = [t.removeprefix("0x") for t in topics[1:]] + _words(log.get("data"))
    if len(words) != 3 or any(len(w) != 64 for w in words):
        return None
    return {
        "token_address": log.get("address"),
        "from_address": "0x" + words[0][-40:],
        "to_address": "0x" + words[1][-40:],
        "value": str(int(words[2], 16)),
        "transaction_hash": log.get("transaction_hash"),
        "log_index": log.get("log_index"),
        "block_number": log.get("block_number"),
    }


def token_transfer_rows(logs: Iterable[Row]) -> list[Row]:
    return [t for t in map(token_transfer_row, logs) if t is not None]


# -- traces ----------------------------------------------------------------------------------
_GETH_TRACE_TYPES = {
    "CALL": ("call", "call"),
    "CALLCODE": ("call", "callcode"),
    "DELEGATECALL": ("call", "delegatecall"),
    "STATICCALL": ("call", "staticcall"),
    "CREATE": ("create", None),
    "CREATE2": ("create2", None),
    "SELFDESTRUCT": ("suicide", None),
}


def _trace_id(row: Row) -> str:
    """etl's trace id: type, transaction (or block for rewards) and path."""
    path = (row["trace_address"] or "").replace(",", "_")
    if row["trace_type"] in ("reward", "genesis"):
        return f"{row['trace_type']}_{row['block_number']}_{row.pop('_reward_index', 0)}"
    return f"{row['trace_type']}_{row['transaction_hash']}_{path}"


def geth_trace_rows(
    block_number: int, frames: Sequence[dict[str, Any]], tx_hashes: Sequence[str] | None = None
) -> list[Row]:
    """`debug_traceBlockByNumber` with `callTracer` -> traces.csv rows (depth-first order).

    `frames` is the node's list, one `{result: CallFrame}` (newer geth adds `txHash`) per
    transaction in block order. The transaction hash comes from `txHash` or, for nodes that
    omit it, from `tx_hashes` (the block's transactions in order). `status` is 0 when the
    frame or any frame above it failed, because a revert undoes every value move below it.
    """
    rows: list[Row] = []
    for index, item in enumerate(frames):
        if isinstance(item, dict) and "result" not in item and "error" in item:
            # geth reports a transaction it could not trace (tracer timeout) in place of it.
            raise ValueError(f"the node could not trace transaction {index}: {item['error']}")
        frame = item.get("result", item) if isinstance(item, dict) else None
        if not isinstance(frame, dict):
            raise ValueError(f"transaction {index} has no call frame")
        tx_hash = lower(item.get("txHash")) or (
            lower(tx_hashes[index]) if tx_hashes and index < len(tx_hashes) else None
        )
        _walk_geth(block_number, index, tx_hash, frame, [], True, rows)
    return rows


def _walk_geth(
    block_number: int, tx_index: int, tx_hash: str | None, frame: dict[str, Any],
    path: list[int], parent_ok: bool, rows: list[Row],
) -> None:
    kind = str(frame.get("type", "CALL")).upper()
    trace_type, call_type = _GETH_TRACE_TYPES.get(kind, (kind.lower(), None))
    error = frame.get("error")
    ok = parent_ok and not error
    children = frame.get("calls") or []
    row: Row = {
        "block_number": str(block_number),
        "transaction_hash": tx_hash,
        "transaction_index": str(tx_index),
        "from_address": lower(frame.get("from")),
        "to_address": lower(frame.get("to")),
        "value": hex_to_dec(frame.get("value")),
        "input": lower(frame.get("input")),
        "output": lower(frame.get("output")),
        "trace_type": trace_type,
        "call_type": call_type,
        "reward_type": None,
        "gas": hex_to_dec(frame.get("gas")),
        "gas_used": hex_to_dec(frame.get("gasUsed")),
        "subtraces": str(len(children)),
        "trace_address": ",".join(map(str, path)),
        "error": error,
        "status": "1" if ok else "0",
    }
    row["trace_id"] = _trace_id(row)
    rows.append(row)
    for i, child in enumerate(children):
        _walk_geth(block_number, tx_index, tx_hash, child, [*path, i], ok, rows)


def parity_trace_rows(traces: Sequence[dict[str, Any]]) -> list[Row]:
    """`trace_block` (OpenEthereum / Erigon / Nethermind / anvil) -> traces.csv rows."""
    rows: list[Row] = []
    failed_paths: dict[str | None, list[tuple[int, ...]]] = {}
    reward_counter: dict[str, int] = {}
    for trace in traces:
        action = trace.get("action") or {}
        result = trace.get("result") or {}
        kind = trace.get("type")
        path = tuple(trace.get("traceAddress") or [])
        tx_hash = lower(trace.get("transactionHash"))
        error = trace.get("error")
        row: Row = {
            "block_number": hex_to_dec(trace.get("blockNumber")),
            "transaction_hash": tx_hash,
            "transaction_index": hex_to_dec(trace.get("transactionPosition")),
            "from_address": None, "to_address": None, "value": None, "input": None,
            "output": None, "trace_type": kind, "call_type": None, "reward_type": None,
            "gas": None, "gas_used": None,
            "subtraces": hex_to_dec(trace.get("subtraces", 0)),
            "trace_address": ",".join(map(str, path)),
            "error": error,
        }
        if kind == "call":
            row.update(
                from_address=lower(action.get("from")), to_address=lower(action.get("to")),
                value=hex_to_dec(action.get("value")), input=lower(action.get("input")),
                output=lower(result.get("output")), call_type=lower(action.get("callType")),
                gas=hex_to_dec(action.get("gas")), gas_used=hex_to_dec(result.get("gasUsed")),
            )
        elif kind == "create":
            row.update(
                from_address=lower(action.get("from")), to_address=lower(result.get("address")),
                value=hex_to_dec(action.get("value")), input=lower(action.get("init")),
                output=lower(result.get("code")), gas=hex_to_dec(action.get("gas")),
                gas_used=hex_to_dec(result.get("gasUsed")),
            )
        elif kind == "suicide":
            row.update(
                from_address=lower(action.get("address")),
                to_address=lower(action.get("refundAddress")),
                value=hex_to_dec(action.get("balance")),
            )
        elif kind == "reward":
            row.update(
                to_address=lower(action.get("author")), value=hex_to_dec(action.get("value")),
                reward_type=action.get("rewardType"),
            )
            block = row["block_number"] or ""
            row["_reward_index"] = str(reward_counter.get(block, 0))
            reward_counter[block] = reward_counter.get(block, 0) + 1
        # A frame fails if it errored or sits below one that did (parity lists parents first).
        failed = failed_paths.setdefault(tx_hash, [])
        ok = not error and not any(path[: len(p)] == p for p in failed)
        if error:
            failed.append(path)
        row["status"] = "1" if ok else "0"
        row["trace_id"] = _trace_id(row)
        rows.append(row)
    return rows
