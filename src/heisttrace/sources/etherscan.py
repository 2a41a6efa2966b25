"""`ingest etherscan`: Etherscan-style account API JSON (`txlist`, `tokentx`, `txlistinternal`).

Each file is one API answer, as the envelope `{"status", "message", "result": [...]}` or the
bare list. The kind of each file is told by its fields (../shared/REFERENCE.md section 4). The
rows are renamed to ethereum-etl columns and go through the same mapping as every other EVM
source (sources/evm.py), so a transaction seen here and in an etl export gets the same flows.

Where Etherscan lacks what the ordinal needs:
- `tokentx` has no log index. A transfer then gets log index ETHERSCAN_LOG_BASE + k, k being
  its position among the transfers of its transaction in the answer (Etherscan lists them in
  log order). That range is far above any real log index, so these flows never collide with
  real ones; importing the same token transfers from both Etherscan and an etl export or a
  node therefore counts them twice (do not mix the two for one transaction).
- `txlistinternal` has no transaction index and, for look-ups by hash, no trace id: the
  index comes from `txlist`/`tokentx` rows of the same transaction (import them together),
  and trace order from `traceId` ("0_1" -> trace_address "0,1") or, when empty, the order of
  the answer. Etherscan lists only value transfers that succeeded (isError 0 is kept).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from heisttrace.errors import InputError
from heisttrace.sources.evm import EvmBatch, IngestReport, prepare, store_prepared, _register
from heisttrace.sources.tokens import store_tokens

ETHERSCAN_LOG_BASE = 1 << 18

KINDS = ("txlist", "tokentx", "txlistinternal")


def load_result(path: Path) -> list[dict[str, Any]]:
    """The result rows of one Etherscan answer; error envelopes become an InputError."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc.msg}", file=str(path), line=exc.lineno) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=str(path)) from exc
    if isinstance(data, dict):
        if "result" not in data:
            raise InputError("not an Etherscan answer (no 'result')", file=str(path),
                             field="result")
        result = data["result"]
        if str(data.get("status", "1")) == "0" and not (
            isinstance(result, list) and not result
        ):
            raise InputError(
                f"Etherscan error answer: {data.get('message', '')}: {result}",
                file=str(path), field="status",
            )
        data = result
    if not isinstance(data, list):
        raise InputError(f"expected a list of rows, got {type(data).__name__}: {data!r:.80}",
                         file=str(path), field="result")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise InputError(f"result item {i} is not an object", file=str(path))
    return data


def detect_kind(rows: list[dict[str, Any]], path: Path) -> str | None:
    """txlist, tokentx or txlistinternal, from the first row's fields (None when empty)."""
    if not rows:
        return None
    keys = set(rows[0])
    if {"tokenSymbol", "tokenDecimal"} & keys and "contractAddress" in keys:
        if "tokenID" in keys and "tokenDecimal" not in keys:
            raise InputError("NFT transfers (tokennfttx) are not supported", file=str(path))
        return "tokentx"
    if "traceId" in keys or ("type" in keys and "nonce" not in keys and "hash" in keys):
        return "txlistinternal"
    if {"hash", "nonce", "transactionIndex", "value"} <= keys:
        return "txlist"
    raise InputError(
        f"cannot tell which Etherscan answer this is (fields: {', '.join(sorted(keys))})",
        file=str(path),
    )


def _s(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    return str(value)


def _txlist_rows(rows: list[dict[str, Any]]) -> list[dict[str, str | None]]:
    out = []
    for r in rows:
        status = _s(r, "txreceipt_status") or None
        if status is None and _s(r, "isError") in ("0", "1"):
            status = "0" if r["isError"] == "1" else "1"
        out.append({
            "hash": _s(r, "hash"), "block_number": _s(r, "blockNumber"),
            "transaction_index": _s(r, "transactionIndex"), "from_address": _s(r, "from"),
            "to_address": _s(r, "to") or None, "value": _s(r, "value"),
            "gas_price": _s(r, "gasPrice"), "block_timestamp": _s(r, "timeStamp"),
            "receipt_gas_used": _s(r, "gasUsed"), "receipt_status": status,
            "receipt_contract_address": _s(r, "contractAddress") or None,
            "input": _s(r, "input") or None,  # kept only if THORChain calldata (evm_calls)
        })
    return out


def _tokentx_rows(rows: list[dict[str, Any]]) -> list[dict[str, str | None]]:
    seen: dict[str | None, int] = defaultdict(int)
    out = []
    for r in rows:
        h = (_s(r, "hash") or "").lower()
        log_index = _s(r, "logIndex")
        if not log_index:
            log_index = str(ETHERSCAN_LOG_BASE + seen[h])
            seen[h] += 1
        out.append({
            "token_address": _s(r, "contractAddress"), "from_address": _s(r, "from"),
            "to_address": _s(r, "to"), "value": _s(r, "value"), "transaction_hash": _s(r, "hash"),
            "log_index": log_index, "block_number": _s(r, "blockNumber"),
            "transaction_index": _s(r, "transactionIndex"), "block_timestamp": _s(r, "timeStamp"),
        })
    return out


def _internal_rows(rows: list[dict[str, Any]]) -> list[dict[str, str | None]]:
    order: dict[str | None, int] = defaultdict(int)
    out = []
    for r in rows:
        h = (_s(r, "hash") or "").lower()
        trace_id = (_s(r, "traceId") or "").strip()
        if trace_id:
            trace_address = trace_id.replace("_", ",")
        else:
            trace_address = str(order[h])
            order[h] += 1
        kind = (_s(r, "type") or "call").lower()
        call_kinds = ("call", "callcode", "delegatecall", "staticcall")
        out.append({
            "block_number": _s(r, "blockNumber"), "transaction_hash": _s(r, "hash"),
            "from_address": _s(r, "from"),
            "to_address": _s(r, "to") or _s(r, "contractAddress") or None,
            "value": _s(r, "value"), "trace_type": "call" if kind in call_kinds else kind,
            "call_type": kind if kind in call_kinds else None, "trace_address": trace_address,
            "error": "error" if _s(r, "isError") == "1" else None,
            "status": "0" if _s(r, "isError") == "1" else "1",
            "block_timestamp": _s(r, "timeStamp"),
        })
    return out


_MAPPERS = {"txlist": _txlist_rows, "tokentx": _tokentx_rows, "txlistinternal": _internal_rows}
_TABLE = {"txlist": "transactions", "tokentx": "token_transfers", "txlistinternal": "traces"}


def ingest_etherscan(
    ws,  # type: ignore[no-untyped-def]
    files: Iterable[str | Path],
    chain: str = "ethereum",
    progress=None,  # type: ignore[no-untyped-def]
) -> IngestReport:
    """Import Etherscan answers in one transaction; idempotent like every importer."""
    started = time.perf_counter()
    files = [Path(f) for f in files]
    if not files:
        raise InputError("no files given")
    report = IngestReport(source="etherscan", detail=", ".join(str(f) for f in files))
    # Rows per table, with the file and item each came from (for error messages).
    rows: dict[str, list[dict[str, str | None]]] = defaultdict(list)
    where: dict[str, list[tuple[Path, int]]] = defaultdict(list)
    tokens: dict[str, dict[str, Any]] = {}
    for n, path in enumerate(files):
        if progress:
            progress(f"reading {path.name}", n, len(files) + 1)
        result = load_result(path)
        kind = detect_kind(result, path)
        if kind is None:
            continue
        table = _TABLE[kind]
        rows[table].extend(_MAPPERS[kind](result))
        where[table].extend((path, i) for i in range(len(result)))
        if kind == "tokentx":
            for r in result:
                address = str(r.get("contractAddress") or "").lower()
                tokens[address] = {"address": address, "symbol": r.get("tokenSymbol"),
                                   "name": r.get("tokenName"), "decimals": r.get("tokenDecimal")}
    # Transaction indexes for internal transfers, from any row of the same transaction.
    if rows.get("traces"):
        index = {(r.get("hash") or "").lower(): r["transaction_index"]
                 for r in rows.get("transactions", [])}
        index.update({(r.get("transaction_hash") or "").lower(): r["transaction_index"]
                      for r in rows.get("token_transfers", []) if r.get("transaction_index")})
        for r in rows["traces"]:
            r["transaction_index"] = index.get((r.get("transaction_hash") or "").lower())
    batch = EvmBatch(**{t: pa.Table.from_pylist(v) for t, v in rows.items() if v})
    con = ws.con
    names, registered = _register(con, batch)
    try:
        with ws.transaction():
            try:
                prep = prepare(con, names)
            except InputError as exc:
                raise _locate(exc, where, names) from exc
            try:
                try:
                    res = store_prepared(con, prep, chain)
                except duckdb.Error as exc:  # e.g. a gas fee beyond 128 bits
                    raise InputError(f"cannot map to flows: {str(exc).splitlines()[0]}") from exc
            finally:
                prep.drop()
            report.flows_seen, report.flows_added = res.flows_seen, res.flows_added
            if tokens:
                report.tokens_added = store_tokens(ws, tokens.values(), chain=chain,
                                                   source="etherscan")
            ws.record_import("etherscan", report.detail, report.flows_added)
    finally:
        for name in registered:
            con.unregister(name)
    if progress:
        progress("done", len(files) + 1, len(files) + 1)
    report.seconds = time.perf_counter() - started
    return report


_FIELD_BACK = {
    "hash": "hash", "transaction_hash": "hash", "block_number": "blockNumber",
    "transaction_index": "transactionIndex", "from_address": "from", "to_address": "to",
    "value": "value", "gas_price": "gasPrice", "block_timestamp": "timeStamp",
    "receipt_gas_used": "gasUsed", "receipt_status": "txreceipt_status",
    "receipt_contract_address": "contractAddress", "token_address": "contractAddress",
    "log_index": "logIndex", "trace_address": "traceId", "trace_type": "type",
    "input": "input",
}


def _locate(exc: InputError, where: dict[str, list[tuple[Path, int]]],
            names: dict[str, str]) -> InputError:
    """Turn 'table, row n' from the mapping into 'file, result item i, Etherscan field'."""
    table = exc.file
    if table in where and exc.line is not None and 1 <= exc.line <= len(where[table]):
        path, item = where[table][exc.line - 1]
        field = _FIELD_BACK.get(exc.field or "", exc.field)
        message = str(exc).split(": ", 1)[-1]
        return InputError(f"{message} (result item {item})", file=str(path), field=field)
    return exc
