"""The one mapping from ethereum-etl-shaped records to flows, shared by every EVM importer.

ethereum-etl CSVs, Etherscan JSON and a JSON-RPC node all end up as the same tables
(ethereum-etl's column names, see ../shared/data/fixtures/ethereum-etl/docs/schema.md), so a
transaction gets the same flows, with the same identity (chain, tx_hash, ordinal), whatever
source it came from. The work is one DuckDB query over the tables, so it runs at columnar speed
and amounts above 2**64 (wei, token base units) stay exact.

Rules (see schema.py for the ordinal layout):
- position 0: the gas fee, gas_used * effective gas price (gas_price when the receipt has no
  effective price), from the sender to FEE_SINK; failed transactions pay it too. Without a
  receipt (gas_used unknown) no fee flow is made: the report counts such transactions.
- position 1: the transaction's value, only if it succeeded and value > 0. A contract creation
  pays the new contract (receipt contract_address, else the top-level create trace).
- positions 2..: internal value transfers from traces: value > 0, not the top-level frame (that
  is the transaction value), not failed (status 0, or it or an ancestor has an error), of type
  call (call_type `call` only), create/create2 or suicide. DELEGATECALL and STATICCALL carry no
  value; CALLCODE runs the target's code in the caller's own account, so its value goes from the
  caller to itself (geth reports the code address as `to`, which would invent a transfer).
  Numbered in trace order (trace_address compared as integer paths). Reward and genesis traces
  are skipped: newly minted coins have no sender to follow.
- LOG_BASE + log_index: ERC-20 transfers, asset = token address; zero-value transfers are kept
  (they carry nothing but spam detection needs them).
- Transaction status: receipt status, else (pre-Byzantium receipts have none) the top-level
  trace's error, else success.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from heisttrace.errors import InputError
from heisttrace.ledger.workspace import Workspace, sql_literal
from heisttrace.ledger.schema import (
    FEE_SINK,
    FLOW_COLUMNS,
    FLOW_SCHEMA,
    LOG_BASE,
    TX_STRIDE,
    WATCHED_TOPICS,
    native_asset,
)

TABLES = ("blocks", "transactions", "receipts", "token_transfers", "traces", "logs")


@dataclass
class EvmBatch:
    """ethereum-etl-shaped tables of one import batch; any of them may be missing."""

    blocks: pa.Table | None = None
    transactions: pa.Table | None = None
    receipts: pa.Table | None = None
    token_transfers: pa.Table | None = None
    traces: pa.Table | None = None
    logs: pa.Table | None = None
    # Where each table came from (file name, URL), used in error messages only.
    origin: dict[str, str] = field(default_factory=dict)


# -- column rules ---------------------------------------------------------------------------
# Value kinds checked before mapping; a bad value is an InputError naming table/row/field.
ADDRESS, HASH, UINT = "address", "hash", "uint"
# Transaction input: not checked, and only the inputs `evm_calls` keeps are carried at all
# (calldata is most of an export's bytes); every other input reads as NULL.
CALLDATA = "calldata"
# RE2 regexes; measured faster here than ltrim over a character set or from_hex.
_CHECKS = {
    ADDRESS: "regexp_full_match({c}, '^0x[0-9a-f]{{40}}$')",
    HASH: "regexp_full_match({c}, '^0x[0-9a-f]{{64}}$')",
    UINT: "regexp_full_match({c}, '^[0-9]+$')",
}
_EXPECT = {
    ADDRESS: "a 0x-prefixed 20-byte hex address",
    HASH: "a 0x-prefixed 32-byte hex hash",
    UINT: "a non-negative decimal integer",
}

# table -> [(column, kind, required)]: required columns must exist and be non-empty.
COLUMNS: dict[str, list[tuple[str, str, bool]]] = {
    "blocks": [("number", UINT, True), ("timestamp", UINT, True)],
    "transactions": [
        ("hash", HASH, True),
        ("block_number", UINT, True),
        ("transaction_index", UINT, True),
        ("from_address", ADDRESS, True),
        ("to_address", ADDRESS, False),
        ("value", UINT, True),
        ("input", CALLDATA, False),
        ("gas_price", UINT, False),
        ("block_timestamp", UINT, False),
        ("receipt_gas_used", UINT, False),
        ("receipt_effective_gas_price", UINT, False),
        ("receipt_status", UINT, False),
        ("receipt_contract_address", ADDRESS, False),
    ],
    "receipts": [
        ("transaction_hash", HASH, True),
        ("transaction_index", UINT, False),
        ("block_number", UINT, False),
        ("gas_used", UINT, False),
        ("effective_gas_price", UINT, False),
        ("status", UINT, False),
        ("contract_address", ADDRESS, False),
    ],
    "token_transfers": [
        ("token_address", ADDRESS, True),
        ("from_address", ADDRESS, True),
        ("to_address", ADDRESS, True),
        ("value", UINT, True),
        ("transaction_hash", HASH, True),
        ("log_index", UINT, True),
        ("block_number", UINT, True),
        ("transaction_index", UINT, False),
        ("block_timestamp", UINT, False),
    ],
    "traces": [
        ("block_number", UINT, True),
        ("transaction_hash", HASH, False),
        ("transaction_index", UINT, False),
        ("from_address", ADDRESS, False),
        ("to_address", ADDRESS, False),
        ("value", UINT, False),
        ("trace_type", "", True),
        ("call_type", "", False),
        ("trace_address", "", False),
        ("error", "", False),
        ("status", UINT, False),
        ("block_timestamp", UINT, False),
    ],
    "logs": [
        ("log_index", UINT, True),
        ("transaction_hash", HASH, True),
        ("transaction_index", UINT, False),
        ("block_number", UINT, True),
        ("address", ADDRESS, True),
        ("data", "", False),
        ("topics", "", True),
        ("block_timestamp", UINT, False),
    ],
}

_counter = itertools.count()


@dataclass
class Prepared:
    """Normalised (all-VARCHAR, lowercase) views of a batch inside one DuckDB connection."""

    con: duckdb.DuckDBPyConnection
    views: dict[str, str]
    present: dict[str, set[str]]
    cleanup: list[str]

    def drop(self) -> None:
        for stmt in reversed(self.cleanup):
            try:
                self.con.execute(stmt)
            except duckdb.Error:
                pass


def _columns_of(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [d[0] for d in con.execute(f"SELECT * FROM {relation} LIMIT 0").description]


def prepare(
    con: duckdb.DuckDBPyConnection,
    relations: dict[str, str],
    origin: dict[str, str] | None = None,
    materialize: bool = False,
    fast: bool = False,
    stream: frozenset[str] = frozenset(),
    proven: Mapping[str, frozenset[str]] | None = None,
) -> Prepared:
    """Check columns and values of each relation and expose normalised views `_ht<n>_<table>`.

    `relations` maps table name (TABLES) to a relation name already known to `con` (a
    registered Arrow table or a view over read_csv). With `materialize`, the normalised rows
    are copied once into temp tables, so a CSV is parsed once and not at every later query.

    With `fast`, values are not counted and located up front: every row passes a guard that
    aborts the statement reading it with `BAD_VALUE_MARK` (the caller then rolls back and calls
    `prepare` again without `fast`, whose check names file, line and field). The guard accepts
    exactly what the precise check accepts, but costs no separate pass. Tables named in
    `stream` stay views (read once, by the statement that maps them, never copied); the others
    are copied into temp tables because the mapping reads them more than once. Tables named in
    `proven` were already found clean (`csv_check.prove`) and get no guard; the columns named
    with them hold no upper-case hex and are not lowercased (measured: lowercasing the hex
    columns of a 5M-row export cost ~1.4 s of a ~9.5 s import).
    """
    proven = proven or {}
    origin = origin or {}
    tag = f"_ht{next(_counter)}"
    prep = Prepared(con, {}, {}, [])
    try:
        for table, rel in relations.items():
            rules = COLUMNS[table]
            have = {c.lower(): c for c in _columns_of(con, rel)}
            where = origin.get(table, table)
            for col, _kind, required in rules:
                if required and col not in have:
                    raise InputError(
                        f"missing column '{col}' (has: {', '.join(sorted(have)) or 'none'})",
                        file=where,
                        field=col,
                    )
            select = []
            present = set()
            for col, kind, _required in rules:
                if col in have:
                    present.add(col)
                    expr = f"nullif(CAST(\"{have[col]}\" AS VARCHAR), '')"
                    if kind in (ADDRESS, HASH) and col not in proven.get(table, ()):
                        expr = f"lower({expr})"
                    elif kind == CALLDATA:
                        expr = f"CASE WHEN {_wanted_call(f'lower({expr})')} THEN lower({expr}) END"
                    select.append(f"{expr} AS {col}")
                else:
                    select.append(f"CAST(NULL AS VARCHAR) AS {col}")
            view = f"{tag}_{table}"
            body = f"SELECT {', '.join(select)} FROM {rel}"
            checks = _checks(rules, present)
            if fast:
                ok = " AND ".join(_fast_ok(col, kind, required) for col, kind, required, _c
                                  in checks) or "true"
                guarded = body if table in proven or ok == "true" else (
                    f"SELECT * FROM ({body}) WHERE CASE WHEN {ok} THEN true "
                    f"ELSE error('{BAD_VALUE_MARK}') END")
                if table in stream:
                    con.execute(f"CREATE TEMP VIEW {view} AS {guarded}")
                    prep.cleanup.append(f"DROP VIEW IF EXISTS {view}")
                else:
                    con.execute(f"CREATE TEMP TABLE {view} AS {guarded}")
                    prep.cleanup.append(f"DROP TABLE IF EXISTS {view}")
                prep.views[table] = view
                prep.present[table] = present
                continue
            if materialize:
                # The check runs in the same pass that copies the rows (one scan, not two);
                # `_bad` marks rows for the error path, which re-checks them column by column.
                bad = " OR ".join(f"NOT {c}" for *_, c in checks) or "false"
                con.execute(
                    f"CREATE TEMP TABLE {view} AS SELECT *, ({bad}) AS _bad FROM ({body})"
                )
                prep.cleanup.append(f"DROP TABLE IF EXISTS {view}")
            else:
                con.execute(f"CREATE TEMP VIEW {view} AS {body}")
                prep.cleanup.append(f"DROP VIEW IF EXISTS {view}")
            prep.views[table] = view
            prep.present[table] = present
            _validate(con, view, checks, where, flagged=materialize)
    except BaseException:
        prep.drop()
        raise
    return prep


def _checks(
    rules: list[tuple[str, str, bool]], present: set[str]
) -> list[tuple[str, str, bool, str]]:
    """(column, kind, required, SQL condition true when the value is fine) per checked column."""
    checks = []
    for col, kind, required in rules:
        if col not in present:
            continue
        if kind == CALLDATA:
            continue
        if kind:
            ok = _CHECKS[kind].format(c=col)
            cond = f"({col} IS NULL OR {ok})" if not required else f"coalesce({ok}, false)"
        elif required:
            cond = f"{col} IS NOT NULL"
        else:
            continue
        checks.append((col, kind, required, cond))
    return checks


# Marks the error() a fast guard raises; the caller rolls back and re-checks precisely.
BAD_VALUE_MARK = "heisttrace: value failed the fast check"


def _fast_ok(col: str, kind: str, required: bool) -> str:
    """True when a value is fine: exactly the verdict of `_checks`, for the one-pass guard.

    (Measured alternatives were slower: a UBIGINT round trip for integers, GLOB, translate,
    one regex over the concatenated row, a numba kernel as an Arrow UDF.)
    """
    if not kind:
        return f"{col} IS NOT NULL"
    ok = _FAST_CHECKS.get(kind, _CHECKS[kind]).format(c=col)
    return f"({col} IS NULL OR {ok})" if not required else f"coalesce({ok}, false)"


# Hex values, already lowercased by the view: byte length, prefix, and unhex of the rest, which
# accepts only ASCII hex digits (any other byte, multi-byte characters included, fails it).
# With lowercase input this is the verdict of the regex; measured ~30% cheaper.
_FAST_CHECKS = {
    ADDRESS: "(strlen({c}) = 42 AND starts_with({c}, '0x') AND "
             "TRY(unhex(substr({c}, 3))) IS NOT NULL)",
    HASH: "(strlen({c}) = 66 AND starts_with({c}, '0x') AND "
          "TRY(unhex(substr({c}, 3))) IS NOT NULL)",
}


def _validate(
    con: duckdb.DuckDBPyConnection,
    view: str,
    checks: list[tuple[str, str, bool, str]],
    where: str,
    flagged: bool = False,
) -> None:
    """One pass counting bad values; only on failure a second pass finds the first bad row.

    With `flagged`, the view already carries the `_bad` flag computed while it was copied.
    """
    if not checks:
        return
    bad_any = "_bad" if flagged else " OR ".join(f"NOT {c}" for *_, c in checks)
    row = con.execute(f"SELECT count(*) FROM {view} WHERE {bad_any}").fetchone()
    if not row or row[0] == 0:
        return
    # Error path: the row number in source order (+1 for a CSV header line).
    cols = ", ".join(f"{c}" for c, *_ in checks)
    conds = ", ".join(f"{cond} AS ok_{c}" for c, _k, _r, cond in checks)
    found = con.execute(
        f"SELECT * FROM (SELECT row_number() OVER () AS _n, {cols}, {conds} FROM {view}) "
        f"WHERE {' OR '.join(f'NOT ok_{c}' for c, *_ in checks)} ORDER BY _n LIMIT 1"
    ).fetchone()
    assert found is not None
    n = found[0]
    values = dict(zip([c for c, *_ in checks], found[1 : 1 + len(checks)], strict=True))
    oks = found[1 + len(checks) :]
    for (col, kind, _required, _cond), ok in zip(checks, oks, strict=True):
        if not ok:
            value = values[col]
            what = "missing value" if value is None else f"bad value {value!r}"
            expect = f", expected {_EXPECT[kind]}" if kind else ""
            line = n + 1 if where.endswith(".csv") else n
            raise InputError(f"{what}{expect}", file=where, line=line, field=col)


# -- the mapping ----------------------------------------------------------------------------
def _positive(expr: str) -> str:
    return f"(ltrim({expr}, '0') <> '')"


def _norm(expr: str) -> str:
    """A decimal string without leading zeros ('0' for zero)."""
    return f"coalesce(nullif(ltrim({expr}, '0'), ''), '0')"


def flows_sql(prep: Prepared, chain: str) -> str:
    """The SELECT producing FLOW_SCHEMA rows (plus helper columns `_miss_time`, `_miss_txi`)."""
    v, p = prep.views, prep.present
    asset = native_asset(chain).replace("'", "''")
    chain_q = chain.replace("'", "''")
    ctes: list[str] = []
    parts: list[str] = []

    # Block times from blocks and from anything else that carries a block timestamp.
    time_sources = []
    if "blocks" in v:
        time_sources.append(f"SELECT number AS b, timestamp AS t FROM {v['blocks']}")
    for table in ("transactions", "token_transfers", "traces", "logs"):
        if table in v and "block_timestamp" in p[table]:
            time_sources.append(
                f"SELECT block_number AS b, block_timestamp AS t FROM {v[table]} "
                "WHERE block_timestamp IS NOT NULL"
            )
    if time_sources:
        ctes.append(
            "bt AS (SELECT CAST(b AS BIGINT) AS block, max(CAST(t AS BIGINT)) AS time FROM ("
            + " UNION ALL ".join(time_sources)
            + ") GROUP BY 1)"
        )
    else:
        ctes.append("bt AS (SELECT CAST(NULL AS BIGINT) AS block, CAST(NULL AS BIGINT) AS time "
                    "WHERE false)")

    # Transaction index and hash of each transaction, from every table that has both.
    idx_sources = []
    if "transactions" in v:
        idx_sources.append(
            f"SELECT hash AS h, block_number AS b, transaction_index AS i FROM {v['transactions']}"
        )
    for table in ("receipts", "logs", "traces"):
        if table in v and {"transaction_index", "transaction_hash"} <= p[table]:
            idx_sources.append(
                "SELECT transaction_hash AS h, block_number AS b, transaction_index AS i "
                f"FROM {v[table]} "
                "WHERE transaction_hash IS NOT NULL AND transaction_index IS NOT NULL"
            )
    if idx_sources:
        ctes.append(
            "txi AS (SELECT h AS tx_hash, any_value(CAST(b AS BIGINT)) AS block, "
            "any_value(CAST(i AS BIGINT)) AS txi FROM ("
            + " UNION ALL ".join(idx_sources)
            + ") WHERE i IS NOT NULL GROUP BY h)"
        )
    else:
        ctes.append("txi AS (SELECT CAST(NULL AS VARCHAR) AS tx_hash, CAST(NULL AS BIGINT) AS block,"
                    " CAST(NULL AS BIGINT) AS txi WHERE false)")

    # Traces, with the tx hash filled in from the index where geth-style traces lack it.
    if "traces" in v:
        ctes.append(
            "tr AS (SELECT coalesce(t.transaction_hash, x.tx_hash) AS tx_hash, "
            "CAST(t.block_number AS BIGINT) AS block, "
            "coalesce(CAST(t.transaction_index AS BIGINT), y.txi) AS txi, t.from_address, "
            "t.to_address, t.value, t.trace_type, t.call_type, coalesce(t.trace_address, '') AS "
            "trace_address, t.error, t.status, CAST(t.block_timestamp AS BIGINT) AS time "
            f"FROM {v['traces']} t "
            "LEFT JOIN txi x ON x.block = CAST(t.block_number AS BIGINT) "
            "AND x.txi = CAST(t.transaction_index AS BIGINT) "
            "LEFT JOIN txi y ON y.tx_hash = t.transaction_hash "
            "WHERE t.trace_type IN ('call', 'create', 'create2', 'suicide'))"
        )
        # Frames that failed: status 0 or an error; their whole subtree moved nothing.
        ctes.append(
            "trerr AS (SELECT DISTINCT tx_hash, trace_address FROM tr "
            "WHERE error IS NOT NULL OR status = '0')"
        )
        ctes.append(
            "trtop AS (SELECT tx_hash, bool_and(error IS NULL AND coalesce(status, '1') <> '0') AS "
            "ok, any_value(CASE WHEN trace_type LIKE 'create%' THEN to_address END) AS created "
            "FROM tr WHERE trace_address = '' GROUP BY tx_hash)"
        )

    if "transactions" in v:
        rc = "receipts" in v
        rcols = p.get("receipts", set())
        tcols = p["transactions"]

        def pick(tx_col: str, rc_col: str) -> str:
            opts = []
            if tx_col in tcols:
                opts.append(f"t.{tx_col}")
            if rc and rc_col in rcols:
                opts.append(f"r.{rc_col}")
            return f"coalesce({', '.join(opts)})" if opts else "CAST(NULL AS VARCHAR)"

        status = pick("receipt_status", "status")
        top_ok = "tt.ok" if "traces" in v else "CAST(NULL AS BOOLEAN)"
        created = pick("receipt_contract_address", "contract_address")
        if "traces" in v:
            created = f"coalesce({created}, tt.created)"
        ctes.append(
            "tx AS (SELECT t.hash AS tx_hash, CAST(t.block_number AS BIGINT) AS block, "
            "CAST(t.transaction_index AS BIGINT) AS txi, t.from_address AS src, "
            f"coalesce(t.to_address, {created}) AS dst, t.to_address IS NULL AS creates, "
            f"t.value, {pick('receipt_gas_used', 'gas_used')} AS gas_used, "
            f"coalesce({pick('receipt_effective_gas_price', 'effective_gas_price')}, t.gas_price)"
            " AS price, "
            f"CASE WHEN {status} IS NOT NULL THEN {status} <> '0' "
            f"ELSE coalesce({top_ok}, true) END AS ok, "
            "coalesce(CAST(t.block_timestamp AS BIGINT), bt.time) AS time "
            f"FROM {v['transactions']} t LEFT JOIN bt ON bt.block = CAST(t.block_number AS BIGINT)"
            + (f" LEFT JOIN {v['receipts']} r ON r.transaction_hash = t.hash" if rc else "")
            + (" LEFT JOIN trtop tt ON tt.tx_hash = t.hash" if "traces" in v else "")
            + ")"
        )
        parts.append(
            f"SELECT block, time, txi * {TX_STRIDE} AS ordinal, tx_hash, src, '{FEE_SINK}' AS dst,"
            f" '{asset}' AS asset, CAST(CAST(gas_used AS HUGEINT) * CAST(price AS HUGEINT) AS "
            "VARCHAR) AS amount, 'fee' AS kind, txi, time IS NULL AS _miss_time FROM tx "
            "WHERE gas_used IS NOT NULL AND price IS NOT NULL AND "
            f"{_positive('gas_used')} AND {_positive('price')}"
        )
        parts.append(
            f"SELECT block, time, txi * {TX_STRIDE} + 1, tx_hash, src, dst, '{asset}', "
            f"{_norm('value')}, 'native', txi, time IS NULL FROM tx "
            f"WHERE ok AND {_positive('value')}"
        )
        failed_tx = "tx"
    else:
        failed_tx = None

    if "traces" in v:
        # Internal transfers: successful, value-carrying, non-top-level frames.
        tx_ok = (
            "AND NOT EXISTS (SELECT 1 FROM tx WHERE tx.tx_hash = i.tx_hash AND NOT tx.ok)"
            if failed_tx
            else ""
        )
        ctes.append(
            "itr AS (SELECT i.*, row_number() OVER (PARTITION BY i.tx_hash ORDER BY "
            "CAST(string_split(i.trace_address, ',') AS BIGINT[])) + 1 AS pos FROM tr i "
            "WHERE i.trace_address <> '' AND i.value IS NOT NULL AND "
            f"{_positive('i.value')} AND i.from_address IS NOT NULL AND i.to_address IS NOT NULL "
            "AND (i.trace_type <> 'call' OR i.call_type = 'call') "
            "AND NOT EXISTS (SELECT 1 FROM trerr e WHERE e.tx_hash = i.tx_hash AND "
            "(e.trace_address = '' OR e.trace_address = i.trace_address OR "
            "starts_with(i.trace_address, e.trace_address || ','))) "
            f"{tx_ok})"
        )
        parts.append(
            f"SELECT i.block, coalesce(i.time, bt.time), i.txi * {TX_STRIDE} + i.pos, i.tx_hash, "
            f"i.from_address, i.to_address, '{asset}', {_norm('i.value')}, 'internal', i.txi, "
            "coalesce(i.time, bt.time) IS NULL FROM itr i LEFT JOIN bt ON bt.block = i.block"
        )

    if "token_transfers" in v:
        tt_time = "coalesce(CAST(t.block_timestamp AS BIGINT), bt.time)"
        parts.append(
            f"SELECT CAST(t.block_number AS BIGINT), {tt_time}, "
            f"coalesce(CAST(t.transaction_index AS BIGINT), x.txi) * {TX_STRIDE} + {LOG_BASE} + "
            "CAST(t.log_index AS BIGINT), t.transaction_hash, t.from_address, t.to_address, "
            f"t.token_address, {_norm('t.value')}, 'token', "
            f"coalesce(CAST(t.transaction_index AS BIGINT), x.txi), {tt_time} IS NULL "
            f"FROM {v['token_transfers']} t LEFT JOIN bt ON bt.block = CAST(t.block_number AS "
            "BIGINT) LEFT JOIN txi x ON x.tx_hash = t.transaction_hash"
        )

    if not parts:
        return (
            "SELECT CAST(NULL AS VARCHAR) AS chain, CAST(NULL AS BIGINT) AS block, CAST(NULL AS "
            "BIGINT) AS time, CAST(NULL AS BIGINT) AS ordinal, CAST(NULL AS VARCHAR) AS tx_hash, "
            "CAST(NULL AS VARCHAR) AS src, CAST(NULL AS VARCHAR) AS dst, CAST(NULL AS VARCHAR) AS "
            "asset, CAST(NULL AS VARCHAR) AS amount_out, CAST(NULL AS VARCHAR) AS amount_in, "
            "CAST(NULL AS VARCHAR) AS kind, CAST(NULL AS VARCHAR) AS dst_chain, CAST(NULL AS "
            "VARCHAR) AS dst_asset, false AS _miss_time, false AS _miss_txi WHERE false"
        )
    union = " UNION ALL ".join(parts)
    return (
        "WITH " + ", ".join(ctes) + ", "
        f"u (block, time, ordinal, tx_hash, src, dst, asset, amount, kind, txi, _miss_time) AS "
        f"({union}) "
        f"SELECT '{chain_q}' AS chain, block, coalesce(time, 0) AS time, coalesce(ordinal, 0) AS "
        "ordinal, tx_hash, src, dst, asset, amount AS amount_out, amount AS amount_in, kind, "
        "CAST(NULL AS VARCHAR) AS dst_chain, CAST(NULL AS VARCHAR) AS dst_asset, _miss_time, "
        "txi IS NULL AS _miss_txi FROM u"
    )


def _check_missing(con: duckdb.DuckDBPyConnection, relation: str, prep: Prepared) -> None:
    """Flows whose time or transaction index no input table provides: a clear error."""
    row = con.execute(
        f"SELECT kind, tx_hash, block, _miss_time FROM {relation} "
        "WHERE _miss_time OR _miss_txi LIMIT 1"
    ).fetchone()
    if row is None:
        return
    kind, tx_hash, block, miss_time = row
    if kind == "internal" and not miss_time:
        raise InputError(
            f"trace of transaction {tx_hash} has no transaction_hash/transaction_index that "
            "matches a transaction; add transactions.csv (or receipts.csv)",
            block=block,
            field="transaction_index",
        )
    if miss_time:
        raise InputError(
            f"no timestamp for block {block} ({kind} flow of {tx_hash}): add blocks.csv "
            "(number, timestamp) or transactions.csv with block_timestamp",
            block=block,
            field="block_timestamp",
        )
    raise InputError(
        f"no transaction index for {tx_hash} ({kind} flow): token_transfers.csv has none; add "
        "transactions.csv, receipts.csv or logs.csv covering it",
        block=block,
        field="transaction_index",
    )


def logs_sql(prep: Prepared, chain: str) -> str | None:
    """Rows for `evm_logs`: logs whose topic0 is one of WATCHED_TOPICS."""
    if "logs" not in prep.views:
        return None
    v = prep.views
    watched = ", ".join(f"'{t}'" for t in WATCHED_TOPICS)
    time_sources = []
    if "blocks" in v:
        time_sources.append(f"SELECT number AS b, timestamp AS t FROM {v['blocks']}")
    if "transactions" in v:
        time_sources.append(
            f"SELECT block_number, block_timestamp FROM {v['transactions']} "
            "WHERE block_timestamp IS NOT NULL"
        )
    time_sources.append(
        f"SELECT block_number, block_timestamp FROM {v['logs']} WHERE block_timestamp IS NOT NULL"
    )
    chain_q = chain.replace("'", "''")
    return (
        "WITH bt AS (SELECT CAST(b AS BIGINT) AS block, max(CAST(t AS BIGINT)) AS time FROM ("
        + " UNION ALL ".join(time_sources)
        + ") GROUP BY 1), "
        "l AS (SELECT *, list_transform(string_split(lower(replace(replace(replace(topics, '[', "
        "''), ']', ''), '''', '')), ','), x -> trim(x)) AS tl FROM "
        f"{v['logs']}) "
        f"SELECT '{chain_q}' AS chain, CAST(l.block_number AS BIGINT) AS block, bt.time AS time, "
        "l.transaction_hash AS tx_hash, CAST(l.log_index AS BIGINT) AS log_index, l.address, "
        "regexp_replace(tl[1], '^0x', '') AS topic0, tl AS topics, l.data FROM l "
        "LEFT JOIN bt ON bt.block = CAST(l.block_number AS BIGINT) "
        f"WHERE regexp_replace(tl[1], '^0x', '') IN ({watched})"
    )


# -- calldata worth keeping ----------------------------------------------------------------
# Calldata is big, so only the few inputs conversions need are kept, in `evm_calls`: THORChain
# router deposits (REFERENCE.md section 2: depositWithExpiry 0x44bc937b, deposit 0x1fece7b4),
# needed where the router's `Deposit` log is missing, and plain transfers whose input is a
# THORChain memo as UTF-8 text (vault deposits, and `OUT:`/`REFUND:` payouts).
THORCHAIN_SELECTORS = ("0x44bc937b", "0x1fece7b4")
MEMO_PREFIXES = ("SWAP:", "swap:", "Swap:", "=:", "s:", "S:", "=<:", "=>:", "OUT:", "out:",
                 "REFUND:", "refund:")
CALL_PREFIXES = THORCHAIN_SELECTORS + tuple("0x" + m.encode().hex() for m in MEMO_PREFIXES)
EVM_CALLS_DDL = """CREATE TABLE IF NOT EXISTS evm_calls (
    chain VARCHAR, block BIGINT, time BIGINT, tx_hash VARCHAR, to_address VARCHAR,
    input VARCHAR)"""


def _wanted_call(expr: str) -> str:
    return "(" + " OR ".join(f"starts_with({expr}, '{p}')" for p in CALL_PREFIXES) + ")"


def calls_sql(prep: Prepared, chain: str) -> str | None:
    """Rows for `evm_calls`: transactions whose input starts with one of CALL_PREFIXES (the
    prepared view already blanked every other input)."""
    if "transactions" not in prep.views or "input" not in prep.present["transactions"]:
        return None
    v = prep.views
    time_sources = [
        f"SELECT block_number AS b, block_timestamp AS t FROM {v['transactions']} "
        "WHERE block_timestamp IS NOT NULL"
    ]
    if "blocks" in v:
        time_sources.append(f"SELECT number, timestamp FROM {v['blocks']}")
    chain_q = chain.replace("'", "''")
    return (
        "WITH bt AS (SELECT CAST(b AS BIGINT) AS block, max(CAST(t AS BIGINT)) AS time FROM ("
        + " UNION ALL ".join(time_sources)
        + ") GROUP BY 1) "
        f"SELECT '{chain_q}' AS chain, CAST(t.block_number AS BIGINT) AS block, bt.time AS time, "
        "t.hash AS tx_hash, t.to_address, t.input "
        f"FROM {v['transactions']} t LEFT JOIN bt ON bt.block = CAST(t.block_number AS BIGINT) "
        "WHERE t.input IS NOT NULL"
    )


# -- public API ---------------------------------------------------------------------------
def _register(con: duckdb.DuckDBPyConnection, batch: EvmBatch) -> tuple[dict[str, str], list[str]]:
    tag = f"_hta{next(_counter)}"
    names: dict[str, str] = {}
    for table in TABLES:
        data = getattr(batch, table)
        if data is None:
            continue
        name = f"{tag}_{table}"
        con.register(name, data)
        names[table] = name
    return names, list(names.values())


def evm_flows(batch: EvmBatch, chain: str = "ethereum") -> pa.Table:
    """The flows (FLOW_SCHEMA, exact decimal-string amounts) of a batch, in ledger order."""
    con = duckdb.connect()
    try:
        names, _ = _register(con, batch)
        prep = prepare(con, names, batch.origin)
        con.execute(f"CREATE TEMP TABLE _out AS {flows_sql(prep, chain)}")
        _check_missing(con, "_out", prep)
        table = con.execute(
            f"SELECT {', '.join(FLOW_COLUMNS)} FROM _out ORDER BY block, ordinal"
        ).fetch_arrow_table()
        return table.cast(FLOW_SCHEMA)
    finally:
        con.close()


def evm_watched_logs(batch: EvmBatch, chain: str = "ethereum") -> pa.Table:
    """Rows for table `evm_logs`: only logs whose topic0 is in WATCHED_TOPICS."""
    con = duckdb.connect()
    try:
        names, _ = _register(con, batch)
        prep = prepare(con, {k: n for k, n in names.items() if k in ("logs", "blocks",
                                                                     "transactions")},
                       batch.origin)
        sql = logs_sql(prep, chain)
        if sql is None:
            return pa.table(
                {
                    "chain": pa.array([], pa.string()),
                    "block": pa.array([], pa.int64()),
                    "time": pa.array([], pa.int64()),
                    "tx_hash": pa.array([], pa.string()),
                    "log_index": pa.array([], pa.int64()),
                    "address": pa.array([], pa.string()),
                    "topic0": pa.array([], pa.string()),
                    "topics": pa.array([], pa.list_(pa.string())),
                    "data": pa.array([], pa.string()),
                }
            )
        return con.execute(sql + " ORDER BY block, log_index").fetch_arrow_table()
    finally:
        con.close()


@dataclass
class StoreResult:
    flows_seen: int = 0
    flows_added: int = 0
    logs_added: int = 0
    txs_without_receipt: int = 0


class Recheck(Exception):
    """The one-pass insert hit a flow without time or transaction index.

    DuckDB aborts the transaction on the error, so the caller rolls back and calls
    `explain_missing` outside it to name the flow exactly as the checked path does.
    """


MISSING_MARK = "heisttrace: flow without time or transaction index"


def store_prepared(
    con: duckdb.DuckDBPyConnection, prep: Prepared, chain: str,
    segment_of: Workspace | None = None,
) -> StoreResult:
    """Insert the flows, watched logs and THORChain calldata (`evm_calls`) of prepared views;
    call inside a transaction.

    With `segment_of` (the workspace of `con`), a first import of `chain` (no flows of it yet)
    maps and writes its flows in one statement, as a new Parquet segment of the ledger, without
    the anti-join against existing flows; it raises `Recheck` when some flow lacks its time or
    index (the caller then rolls back and calls `explain_missing`). A later import of at least
    SEGMENT_MIN_FLOWS flows writes its new flows as a segment as well.
    """
    res = StoreResult()
    # Flows are keyed, not ordered: DuckDB may read, map and write in parallel.
    with _settings(con, preserve_insertion_order="false"):
        if segment_of is None or not _store_flows_first(segment_of, prep, chain, res):
            _store_flows(con, prep, chain, res, segment_of)
    return _store_logs_and_counts(con, prep, chain, res)


def explain_missing(con: duckdb.DuckDBPyConnection, prep: Prepared, chain: str) -> None:
    """Raise the InputError naming a flow without time or transaction index (after Recheck)."""
    tmp = f"_htmiss{next(_counter)}"
    con.execute(f"CREATE TEMP VIEW {tmp} AS {flows_sql(prep, chain)}")
    try:
        _check_missing(con, tmp, prep)
    finally:
        con.execute(f"DROP VIEW IF EXISTS {tmp}")
    raise InputError("some flow has no time or transaction index")


def _chain_has_flows(con: duckdb.DuckDBPyConnection, chain: str) -> bool:
    return con.execute("SELECT 1 FROM flows WHERE chain = ? LIMIT 1", [chain]).fetchone() is not None


def _store_flows_first(ws: Workspace, prep: Prepared, chain: str, res: StoreResult) -> bool:
    """First import of a chain: map and write a segment in one pass; False when it does not
    apply.

    Nothing of the chain is stored yet, so no anti-join is needed (the idempotency key
    includes the chain). Repeats inside the input are found afterwards on a 64-bit hash of
    the key: no repeat means every key differs; a repeat (or a hash collision) drops the
    segment and returns False so the caller takes the checked path with DISTINCT ON.
    """
    con = ws.con
    if _chain_has_flows(con, chain):
        return False
    # DuckDB 1.4.1 now and then failed inside a hash aggregate of this statement ("INTERNAL
    # Error: Attempting to combine TupleDataCollection with mismatching types", or a segfault
    # in TupleDataCollection::Combine): 2 of 20 imports of the demo's export on this 2-core
    # machine. DuckDB 1.4.5 (pinned since) passed 0 of 30 + 30 of the same loop.
    try:
        path = ws.write_segment(
            f"SELECT * FROM ({flows_sql(prep, chain)}) "
            f"WHERE CASE WHEN _miss_time OR _miss_txi THEN error('{MISSING_MARK}') "
            "ELSE true END"
        )
    except duckdb.Error as exc:
        if MISSING_MARK in str(exc):
            raise Recheck() from exc
        raise
    if _has_repeated_key(con, f"read_parquet({sql_literal(path)})"):
        return False  # the unregistered file goes when the transaction ends
    res.flows_seen = res.flows_added = ws.register_segment(path, chain)
    return True


# RAM); above it DuckDB counts them, within its memory limit, spilling to disk.
NUMPY_KEY_CHECK_MAX = 16_000_000


def _has_repeated_key(con: duckdb.DuckDBPyConnection, relation: str,
                      numpy_max: int | None = None) -> bool:
    """Whether two flows of `relation` share a 64-bit hash of (tx_hash, ordinal).

    Sorting the hashes in numpy and comparing neighbours measured about twice as fast as
    DuckDB's count(DISTINCT ...) hash aggregate (6M flows: ~1 s CPU against ~2.3 s), but holds
    8 bytes a flow in RAM, so only up to NUMPY_KEY_CHECK_MAX flows. A hash collision between
    different keys only sends the caller down the checked path, which is exact.
    """
    limit = NUMPY_KEY_CHECK_MAX if numpy_max is None else numpy_max
    n = int(con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0])  # type: ignore[index]
    if n > limit:
        distinct = con.execute(
            f"SELECT count(DISTINCT hash(tx_hash, ordinal)) FROM {relation}"
        ).fetchone()[0]  # type: ignore[index]
        return int(distinct) != n
    h = con.execute(f"SELECT hash(tx_hash, ordinal) AS h FROM {relation}").fetchnumpy()["h"]
    h = np.asarray(h)
    if len(h) < 2:
        return False
    h.sort()
    return bool((h[1:] == h[:-1]).any())


@contextmanager
def _settings(con: duckdb.DuckDBPyConnection, **values: str) -> Iterator[None]:
    """DuckDB settings for one step, restored afterwards.

    A failed statement (a fast guard, `Recheck`) leaves the transaction aborted, which takes
    no statement: the reset then waits in `_pending_resets` until the caller has rolled back
    (`restore_settings`).
    """
    old = {name: con.execute(f"SELECT current_setting('{name}')").fetchone()[0]  # type: ignore[index]
           for name in values}
    for name, value in values.items():
        con.execute(f"SET {name} = {value}")
    resets = [f"SET {name} = {_sql_value(value)}" for name, value in old.items()]
    try:
        yield
    except BaseException:
        for reset in resets:
            try:
                con.execute(reset)
            except duckdb.Error:  # aborted transaction; the original error matters more
                _pending_resets.append((con, reset))
        raise
    for reset in resets:
        con.execute(reset)


def _sql_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "'" + str(value).replace("'", "''") + "'"


_pending_resets: list[tuple[duckdb.DuckDBPyConnection, str]] = []


def restore_settings(con: duckdb.DuckDBPyConnection) -> None:
    """Settings a `Recheck` left changed; call after the rollback."""
    for other, stmt in [r for r in _pending_resets if r[0] is con]:
        con.execute(stmt)
    _pending_resets[:] = [r for r in _pending_resets if r[0] is not con]


# A later import of a chain with at least this many flows is stored as a segment of its new
# flows too (a file per small batch would leave thousands of tiny files behind a node that is
# followed block by block; those go to `flow_rows`).
SEGMENT_MIN_FLOWS = 100_000


def _store_flows(con: duckdb.DuckDBPyConnection, prep: Prepared, chain: str,
                 res: StoreResult, segment_of: Workspace | None = None) -> None:
    tmp = f"_htout{next(_counter)}"
    con.execute(f"CREATE TEMP TABLE {tmp} AS {flows_sql(prep, chain)}")
    try:
        _check_missing(con, tmp, prep)
        res.flows_seen = int(con.execute(f"SELECT count(*) FROM {tmp}").fetchone()[0])  # type: ignore[index]
        before = int(con.execute("SELECT count(*) FROM flows").fetchone()[0])  # type: ignore[index]
        # Repeats inside the input are rare: check for them on the key alone (cheap) and only
        # then pay for DISTINCT ON over whole rows.
        repeats = con.execute(
            f"SELECT count(*) - count(DISTINCT (tx_hash, ordinal)) FROM {tmp}"
        ).fetchone()[0]  # type: ignore[index]
        cols = ", ".join("n." + c for c in FLOW_COLUMNS)
        distinct = "DISTINCT ON (n.chain, n.tx_hash, n.ordinal) " if repeats else ""
        new = (f"SELECT {distinct}{cols} FROM {tmp} n "
               "ANTI JOIN flows f ON f.chain = n.chain AND f.tx_hash = n.tx_hash AND "
               "f.ordinal = n.ordinal")
        if segment_of is not None and res.flows_seen >= SEGMENT_MIN_FLOWS:
            # nothing new (the same export again) registers nothing; the file goes
            segment_of.register_segment(segment_of.write_segment(new), chain)
        else:
            con.execute(f"INSERT INTO flow_rows {new}")
        after = int(con.execute("SELECT count(*) FROM flows").fetchone()[0])  # type: ignore[index]
        res.flows_added = after - before
    finally:
        con.execute(f"DROP TABLE IF EXISTS {tmp}")


def _store_logs_and_counts(con: duckdb.DuckDBPyConnection, prep: Prepared, chain: str,
                           res: StoreResult) -> StoreResult:
    sql = logs_sql(prep, chain)
    if sql is not None:
        before = int(con.execute("SELECT count(*) FROM evm_logs").fetchone()[0])  # type: ignore[index]
        con.execute(
            f"INSERT INTO evm_logs SELECT DISTINCT ON (n.chain, n.tx_hash, n.log_index) n.* "
            f"FROM ({sql}) n ANTI JOIN evm_logs e ON e.chain = n.chain AND "
            "e.tx_hash = n.tx_hash AND e.log_index = n.log_index"
        )
        after = int(con.execute("SELECT count(*) FROM evm_logs").fetchone()[0])  # type: ignore[index]
        res.logs_added = after - before
    sql = calls_sql(prep, chain)
    if sql is not None:
        con.execute(EVM_CALLS_DDL)
        con.execute(
            f"INSERT INTO evm_calls SELECT DISTINCT ON (n.chain, n.tx_hash) n.* FROM ({sql}) n "
            "ANTI JOIN evm_calls e ON e.chain = n.chain AND e.tx_hash = n.tx_hash"
        )
    if "transactions" in prep.views:
        tcols = prep.present["transactions"]
        if "receipt_gas_used" not in tcols and "receipts" not in prep.views:
            res.txs_without_receipt = int(
                con.execute(f"SELECT count(*) FROM {prep.views['transactions']}").fetchone()[0]  # type: ignore[index]
            )
    return res


def store_batch(ws, batch: EvmBatch, chain: str = "ethereum") -> int:  # type: ignore[no-untyped-def]
    """Add a batch's flows and watched logs inside the caller's transaction; returns new flows.

    Idempotent: flows already present (chain, tx_hash, ordinal) and logs already present
    (chain, tx_hash, log_index) are skipped.
    """
    con = ws.con
    names, registered = _register(con, batch)
    try:
        prep = prepare(con, names, batch.origin)
        try:
            return store_prepared(con, prep, chain).flows_added
        finally:
            prep.drop()
    finally:
        for name in registered:
            con.unregister(name)


@dataclass
class IngestReport:
    """What one import did; the CLI prints it, `--json` prints `as_dict()`."""

    source: str
    detail: str
    flows_seen: int = 0
    flows_added: int = 0
    logs_added: int = 0
    tokens_added: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Flows of the input already in the workspace (or repeated inside the input)."""
        return self.flows_seen - self.flows_added

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "detail": self.detail,
            "flows_seen": self.flows_seen,
            "flows_added": self.flows_added,
            "duplicates": self.duplicates,
            "logs_added": self.logs_added,
            "tokens_added": self.tokens_added,
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
        }
