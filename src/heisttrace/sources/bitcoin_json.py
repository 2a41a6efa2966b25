"""Reading Bitcoin Core block JSON (`getblock` verbosity 1/2/3, `getrawtransaction`).

Only the reading lives here: files into documents, documents into blocks and loose
transactions, BTC decimals into exact satoshi, scripts into addresses and memos. The ledger
mapping (`sources/bitcoin.py`) works on the column buffers this module fills, so it can do
the prevout join in DuckDB instead of in Python.

Shapes accepted (Bitcoin Core `src/core_write.cpp`, see ../shared/REFERENCE.md section 3):
a raw JSON-RPC response `{"result": ..., "error": null, "id": ...}`, a bare block object, a
JSON list of either (a batch response), or JSON lines of any of these. A block carries `tx`
as full transaction objects (verbosity 2/3) or as txids (verbosity 1); for the latter the
transactions must be given as `getrawtransaction` objects in the same import.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from heisttrace.errors import InputError

# Every chain we read (bitcoin, bitcoin_cash, dogecoin, litecoin) has 8 decimals.
COIN_DECIMALS = 8
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")

# Human-readable parts of bech32 addresses: they are case-insensitive and conventionally
# lowercase, so we lowercase them; base58 addresses are case-sensitive and kept as they are.
_BECH32_HRPS = ("bc1", "tb1", "bcrt1", "ltc1", "tltc1", "rltc1")


@dataclass
class Where:
    """Where a value came from, so errors can name file, line, block and txid."""

    file: str
    line: int | None = None
    block: int | None = None
    txid: str | None = None

    def error(self, message: str, fld: str | None = None) -> InputError:
        if self.txid:
            message = f"transaction {self.txid}: {message}"
        return InputError(message, file=self.file, line=self.line, field=fld, block=self.block)


def to_base_units(value: Any, where: Where, fld: str = "value") -> int:
    """A coin amount as the node prints it (8 decimals) into exact base units (satoshi).

    JSON numbers are parsed as Decimal (never float), so 149620.0001 DOGE stays
    14962000010000 and not 14962000009999.
    """
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise where.error(f"amount {value!r} is not a number", fld)
    try:
        scaled = Decimal(value).scaleb(COIN_DECIMALS)
    except InvalidOperation:
        raise where.error(f"amount {value!r} is not a number", fld) from None
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        raise where.error(f"amount {value!r} has more than {COIN_DECIMALS} decimals", fld)
    if scaled < 0:
        raise where.error(f"amount {value!r} is negative", fld)
    return int(scaled)


def normalize_address(address: str) -> str:
    """Lowercase what is case-insensitive (bech32, cashaddr), keep base58 as it is."""
    low = address.lower()
    if low.startswith(_BECH32_HRPS) or ":" in low:
        return low
    return address


def script_address(spk: Any, where: Where, fld: str) -> str:
    """The address an output pays, or a deterministic stand-in when there is none.

    Newer nodes give `address`, older ones `addresses` (one entry for standard scripts).
    Bare multisig lists several keys and has no single owner, so like every other
    script without an address it gets `script:<first 20 bytes of scriptPubKey, hex>`.
    """
    if not isinstance(spk, dict):
        raise where.error("scriptPubKey is missing or not an object", fld)
    address = spk.get("address")
    if isinstance(address, str) and address:
        return normalize_address(address)
    addresses = spk.get("addresses")
    if isinstance(addresses, list) and len(addresses) == 1 and isinstance(addresses[0], str):
        return normalize_address(addresses[0])
    hexs = spk.get("hex")
    if not isinstance(hexs, str):
        raise where.error("output has neither an address nor a script hex", f"{fld}.hex")
    return "script:" + hexs[:40].lower()


def op_return_text(script_hex: str) -> str | None:
    """The data pushed after OP_RETURN, as UTF-8 text; None when absent or not text.

    THORChain outbound memos (`OUT:<inbound hash>`) and inbound swap memos are plain text
    pushes; Omni and other binary payloads are not text and are left out.
    """
    try:
        raw = bytes.fromhex(script_hex)
    except ValueError:
        return None
    if not raw or raw[0] != 0x6A:
        return None
    data, i = bytearray(), 1
    while i < len(raw):
        op = raw[i]
        i += 1
        if op == 0x00:
            continue
        if op <= 0x4B:
            size = op
        elif op in (0x4C, 0x4D, 0x4E):
            width = {0x4C: 1, 0x4D: 2, 0x4E: 4}[op]
            if i + width > len(raw):
                return None
            size = int.from_bytes(raw[i : i + width], "little")
            i += width
        else:
            return None  # an opcode, not data: not a memo
        if i + size > len(raw):
            return None
        data += raw[i : i + size]
        i += size
    if not data:
        return None
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


# -- files into documents ------------------------------------------------------------------


def list_files(paths: list[str | Path]) -> list[Path]:
    """Files named on the command line, directories expanded to their JSON files (sorted)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in JSON_SUFFIXES
            )
            if not found:
                raise InputError(f"no {'/'.join(JSON_SUFFIXES)} files in this folder", file=str(p))
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise InputError("no such file or directory", file=str(p))
    return files


def read_documents(path: Path) -> Iterator[tuple[int | None, Any]]:
    """(line, JSON value) for a JSON file (line None) or each line of a JSON-lines file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", file=str(path)) from None
    try:
        yield None, json.loads(text, parse_float=Decimal)
        return
    except json.JSONDecodeError as whole:
        lines = text.splitlines()
        first = next((n for n, s in enumerate(lines) if s.strip()), None)
        if first is None:
            raise InputError("empty file", file=str(path)) from None
        try:
            json.loads(lines[first], parse_float=Decimal)
        except json.JSONDecodeError:
            raise InputError(f"invalid JSON: {whole.msg}", file=str(path), line=whole.lineno) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON line: {exc.msg}", file=str(path), line=number) from None


def unwrap(doc: Any, where: Where) -> Iterator[tuple[str, dict[str, Any]]]:
    """("block" | "tx" | "etl_tx" | "other", object) for each block or transaction in a document.

    JSON-RPC envelopes and batch lists are opened; scalars (a `getblockhash` or
    `getblockcount` answer lying in the same folder) carry no ledger data and come out as
    "other" so the caller can count them.
    """
    if isinstance(doc, list):
        for item in doc:
            yield from unwrap(item, where)
        return
    if not isinstance(doc, dict):
        yield "other", {}
        return
    if "result" in doc and ("error" in doc or "id" in doc or "jsonrpc" in doc):
        if doc.get("error") is not None:
            raise where.error(f"the node answered with an error: {doc['error']}", "error")
        yield from unwrap(doc["result"], where)
        return
    if "tx" in doc:
        yield "block", doc
    elif "vin" in doc and "vout" in doc:
        yield "tx", doc
    elif "inputs" in doc and "outputs" in doc and "block_number" in doc:
        yield "etl_tx", doc  # a bitcoin-etl / BigQuery crypto_bitcoin transaction record
    elif "transaction_count" in doc and "number" in doc:
        yield "other", doc  # a bitcoin-etl block record: no transactions in it
    else:
        raise where.error("neither a block (no 'tx') nor a transaction (no 'vin'/'vout')", "tx")


# -- blocks into column buffers -----------------------------------------------------------


@dataclass
class Columns:
    """Column buffers of one import: outputs, inputs, transactions, memos.

    Kept as plain lists and turned into Arrow tables once, so the per-transaction Python
    work is appends only and every join happens in DuckDB.
    """

    # outputs (every output, also zero-value ones: spends need their address)
    o_txid: list[str] = field(default_factory=list)
    o_n: list[int] = field(default_factory=list)
    o_address: list[str] = field(default_factory=list)
    o_value: list[int] = field(default_factory=list)
    o_block: list[int] = field(default_factory=list)
    o_time: list[int] = field(default_factory=list)
    o_tx_index: list[int] = field(default_factory=list)
    # inputs spending an earlier output (coinbase inputs are not listed)
    i_txid: list[str] = field(default_factory=list)
    i_index: list[int] = field(default_factory=list)
    i_block: list[int] = field(default_factory=list)
    i_time: list[int] = field(default_factory=list)
    i_tx_index: list[int] = field(default_factory=list)
    i_prev_txid: list[str] = field(default_factory=list)
    i_prev_n: list[int] = field(default_factory=list)
    i_address: list[str | None] = field(default_factory=list)  # from a verbosity-3 prevout
    i_value: list[int | None] = field(default_factory=list)
    # transactions
    t_txid: list[str] = field(default_factory=list)
    t_block: list[int] = field(default_factory=list)
    t_time: list[int] = field(default_factory=list)
    t_tx_index: list[int] = field(default_factory=list)
    t_coinbase: list[bool] = field(default_factory=list)
    t_inputs: list[int] = field(default_factory=list)
    t_fee: list[int | None] = field(default_factory=list)  # the node's `fee`, when given
    t_file: list[str] = field(default_factory=list)
    # OP_RETURN text
    m_txid: list[str] = field(default_factory=list)
    m_block: list[int] = field(default_factory=list)
    m_time: list[int] = field(default_factory=list)
    m_memo: list[str] = field(default_factory=list)
    blocks: set[int] = field(default_factory=set)


def _int_field(obj: dict[str, Any], key: str, where: Where, fld: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        if key not in obj:
            raise where.error(f"missing '{key}'", fld)
        raise where.error(f"'{key}' is not an integer: {value!r}", fld)
    return value


def _txid(obj: dict[str, Any], key: str, where: Where, fld: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or len(value) != 64:
        if key not in obj:
            raise where.error(f"missing '{key}'", fld)
        raise where.error(f"'{key}' is not a 64-digit hex hash: {value!r}", fld)
    try:
        bytes.fromhex(value)
    except ValueError:
        raise where.error(f"'{key}' is not a 64-digit hex hash: {value!r}", fld) from None
    return value.lower()


def add_block(
    cols: Columns, block: dict[str, Any], where: Where, loose: dict[str, dict[str, Any]]
) -> int:
    """Append one block's transactions to the buffers; returns how many transactions.

    `loose` maps txid -> transaction object for blocks given at verbosity 1 (txids only).
    """
    height = _int_field(block, "height", where, "height")
    where.block = height
    time = _int_field(block, "time", where, "time")
    txs = block.get("tx")
    if not isinstance(txs, list):
        raise where.error("'tx' is not a list", "tx")
    cols.blocks.add(height)
    for tx_index, tx in enumerate(txs):
        if isinstance(tx, str):
            found = loose.get(tx.lower())
            if found is None:
                raise where.error(
                    f"block lists only txids (verbosity 1) and transaction {tx} was not "
                    "given; export with getblock verbosity 2 or add its getrawtransaction "
                    "answer",
                    f"tx[{tx_index}]",
                )
            tx = found
        if not isinstance(tx, dict):
            raise where.error("transaction is not an object", f"tx[{tx_index}]")
        add_transaction(cols, tx, tx_index, height, time, where)
    where.txid = None
    return len(txs)


def add_transaction(
    cols: Columns, tx: dict[str, Any], tx_index: int, height: int, time: int, where: Where
) -> None:
    where.txid = None
    prefix = f"tx[{tx_index}]"
    txid = _txid(tx, "txid", where, f"{prefix}.txid")
    where.txid = txid
    vin, vout = tx.get("vin"), tx.get("vout")
    if not isinstance(vin, list):
        raise where.error("missing or bad 'vin'", f"{prefix}.vin")
    if not isinstance(vout, list):
        raise where.error("missing or bad 'vout'", f"{prefix}.vout")
    coinbase = False
    spent = 0
    for k, inp in enumerate(vin):
        fld = f"{prefix}.vin[{k}]"
        if not isinstance(inp, dict):
            raise where.error("input is not an object", fld)
        if "coinbase" in inp:
            coinbase = True
            continue
        cols.i_txid.append(txid)
        cols.i_index.append(k)
        cols.i_block.append(height)
        cols.i_time.append(time)
        cols.i_tx_index.append(tx_index)
        cols.i_prev_txid.append(_txid(inp, "txid", where, f"{fld}.txid"))
        cols.i_prev_n.append(_int_field(inp, "vout", where, f"{fld}.vout"))
        prevout = inp.get("prevout")
        if isinstance(prevout, dict):
            cols.i_value.append(to_base_units(prevout.get("value"), where, f"{fld}.prevout.value"))
            cols.i_address.append(
                script_address(prevout.get("scriptPubKey"), where, f"{fld}.prevout.scriptPubKey")
            )
        else:
            cols.i_value.append(None)
            cols.i_address.append(None)
        spent += 1
    for k, out in enumerate(vout):
        fld = f"{prefix}.vout[{k}]"
        if not isinstance(out, dict):
            raise where.error("output is not an object", fld)
        n = _int_field(out, "n", where, f"{fld}.n") if "n" in out else k
        if "value" not in out:
            raise where.error("missing 'value'", f"{fld}.value")
        value = to_base_units(out["value"], where, f"{fld}.value")
        spk = out.get("scriptPubKey")
        address = script_address(spk, where, f"{fld}.scriptPubKey")
        if isinstance(spk, dict) and spk.get("type") == "nulldata":
            memo = op_return_text(str(spk.get("hex", "")))
            if memo is not None:
                cols.m_txid.append(txid)
                cols.m_block.append(height)
                cols.m_time.append(time)
                cols.m_memo.append(memo)
        cols.o_txid.append(txid)
        cols.o_n.append(n)
        cols.o_address.append(address)
        cols.o_value.append(value)
        cols.o_block.append(height)
        cols.o_time.append(time)
        cols.o_tx_index.append(tx_index)
    fee = tx.get("fee")
    cols.t_txid.append(txid)
    cols.t_block.append(height)
    cols.t_time.append(time)
    cols.t_tx_index.append(tx_index)
    cols.t_coinbase.append(coinbase)
    cols.t_inputs.append(spent)
    cols.t_fee.append(
        None if fee is None or coinbase else to_base_units(fee, where, f"{prefix}.fee")
    )
    cols.t_file.append(where.file)


# -- bitcoin-etl exports -----------------------------------------------------------------
# Record shape of bitcoin-etl `export_blocks_and_transactions` (and of the BigQuery
# `crypto_bitcoin.transactions` table it feeds): hash, block_number, block_timestamp, index,
# is_coinbase, inputs[index, spent_transaction_hash, spent_output_index, addresses, value],
# outputs[index, addresses, value, type, script_hex]; values already in satoshi. Its `fee`
# is input_value - output_value even when input values are null, so it is not used.


def _sat(value: Any, where: Where, fld: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise where.error(f"amount {value!r} is not an integer", fld)
    try:
        exact = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise where.error(f"amount {value!r} is not an integer", fld) from None
    if not exact.is_finite() or exact != exact.to_integral_value() or exact < 0:
        raise where.error(f"amount {value!r} is not a whole, non-negative satoshi amount", fld)
    return int(exact)


def _etl_address(item: dict[str, Any], where: Where, fld: str) -> str:
    addresses = item.get("addresses")
    if (isinstance(addresses, list) and len(addresses) == 1 and isinstance(addresses[0], str)
            and item.get("type") not in ("nonstandard", "nulldata")):
        return normalize_address(addresses[0])
    script = item.get("script_hex")
    if not isinstance(script, str):
        raise where.error("neither one address nor a script_hex", f"{fld}.script_hex")
    return "script:" + script[:40].lower()


def add_etl_transaction(
    cols: Columns, rec: dict[str, Any], where: Where, next_index: dict[int, int]
) -> None:
    """Append one bitcoin-etl transaction record; `next_index` numbers records lacking `index`."""
    where.txid = None
    txid = _txid(rec, "hash", where, "hash")
    where.txid = txid
    height = _int_field(rec, "block_number", where, "block_number")
    where.block = height
    time = _int_field(rec, "block_timestamp", where, "block_timestamp")
    tx_index = rec.get("index")
    if tx_index is None:
        tx_index = next_index.get(height, 0)
    elif isinstance(tx_index, bool) or not isinstance(tx_index, int):
        raise where.error(f"'index' is not an integer: {tx_index!r}", "index")
    next_index[height] = max(next_index.get(height, 0), tx_index + 1)
    inputs, outputs = rec.get("inputs"), rec.get("outputs")
    if not isinstance(inputs, list):
        raise where.error("missing or bad 'inputs'", "inputs")
    if not isinstance(outputs, list):
        raise where.error("missing or bad 'outputs'", "outputs")
    coinbase = bool(rec.get("is_coinbase"))
    spent = 0
    if not coinbase:
        for k, inp in enumerate(inputs):
            fld = f"inputs[{k}]"
            if not isinstance(inp, dict):
                raise where.error("input is not an object", fld)
            value = _sat(inp.get("value"), where, f"{fld}.value")
            cols.i_txid.append(txid)
            cols.i_index.append(inp.get("index", k) if isinstance(inp.get("index"), int) else k)
            cols.i_block.append(height)
            cols.i_time.append(time)
            cols.i_tx_index.append(tx_index)
            cols.i_prev_txid.append(_txid(inp, "spent_transaction_hash", where, f"{fld}.spent_transaction_hash"))
            cols.i_prev_n.append(_int_field(inp, "spent_output_index", where, f"{fld}.spent_output_index"))
            cols.i_value.append(value)
            cols.i_address.append(None if value is None else _etl_address(inp, where, fld))
            spent += 1
    for k, out in enumerate(outputs):
        fld = f"outputs[{k}]"
        if not isinstance(out, dict):
            raise where.error("output is not an object", fld)
        value = _sat(out.get("value"), where, f"{fld}.value")
        if value is None:
            raise where.error("missing 'value'", f"{fld}.value")
        if out.get("type") == "nulldata":
            memo = op_return_text(str(out.get("script_hex", "")))
            if memo is not None:
                cols.m_txid.append(txid)
                cols.m_block.append(height)
                cols.m_time.append(time)
                cols.m_memo.append(memo)
        cols.o_txid.append(txid)
        cols.o_n.append(out["index"] if isinstance(out.get("index"), int) else k)
        cols.o_address.append(_etl_address(out, where, fld))
        cols.o_value.append(value)
        cols.o_block.append(height)
        cols.o_time.append(time)
        cols.o_tx_index.append(tx_index)
    cols.blocks.add(height)
    cols.t_txid.append(txid)
    cols.t_block.append(height)
    cols.t_time.append(time)
    cols.t_tx_index.append(tx_index)
    cols.t_coinbase.append(coinbase)
    cols.t_inputs.append(spent)
    cols.t_fee.append(None)
    cols.t_file.append(where.file)
