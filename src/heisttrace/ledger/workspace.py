"""The workspace: a folder holding one DuckDB database; no server.

Every write goes through `Workspace.transaction()`, so an import either lands whole or not at
all, and flows are keyed by (chain, tx_hash, ordinal), so importing the same data twice adds
nothing. Later stages (labels, trace results, cases) keep their tables in the same database,
so one commit can cover a batch of flows and the checkpoint that records it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from heisttrace.ledger.schema import FLOW_COLUMNS, FLOW_SCHEMA

DEFAULT_WORKSPACE = "heisttrace-workspace"
DB_FILE = "heisttrace.duckdb"
# checkpoint counting deletions from `flows` (see Workspace.delete_flows)
FLOWS_GENERATION = "flows:generation"

_DDL = """
CREATE TABLE IF NOT EXISTS flows (
    chain VARCHAR NOT NULL, block BIGINT NOT NULL, time BIGINT NOT NULL, ordinal BIGINT NOT NULL,
    tx_hash VARCHAR NOT NULL, src VARCHAR NOT NULL, dst VARCHAR NOT NULL, asset VARCHAR NOT NULL,
    amount_out VARCHAR NOT NULL, amount_in VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    dst_chain VARCHAR, dst_asset VARCHAR
);
CREATE TABLE IF NOT EXISTS tokens (
    chain VARCHAR NOT NULL, address VARCHAR NOT NULL, symbol VARCHAR, name VARCHAR,
    decimals INTEGER, source VARCHAR, PRIMARY KEY (chain, address)
);
CREATE TABLE IF NOT EXISTS imports (
    imported_at TIMESTAMP DEFAULT current_timestamp, source VARCHAR, detail VARCHAR, rows BIGINT
);
CREATE TABLE IF NOT EXISTS checkpoints (name VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS labels (
    chain VARCHAR NOT NULL, address VARCHAR NOT NULL, entity VARCHAR, category VARCHAR,
    source VARCHAR NOT NULL, confidence INTEGER, actor VARCHAR,
    heuristic BOOLEAN DEFAULT false, evidence VARCHAR
);
-- Raw event logs the conversions stage needs (swaps, bridge deposits, blacklists): only
-- logs whose topic0 is in schema.WATCHED_TOPICS are kept, not every log of the chain.
CREATE TABLE IF NOT EXISTS evm_logs (
    chain VARCHAR NOT NULL, block BIGINT NOT NULL, time BIGINT NOT NULL, tx_hash VARCHAR NOT NULL,
    log_index BIGINT NOT NULL, address VARCHAR NOT NULL, topic0 VARCHAR NOT NULL,
    topics VARCHAR[], data VARCHAR
);
-- Transaction memos (Bitcoin OP_RETURN text, THORChain memos seen elsewhere) for bridge matching.
CREATE TABLE IF NOT EXISTS tx_memos (
    chain VARCHAR NOT NULL, block BIGINT NOT NULL, time BIGINT NOT NULL, tx_hash VARCHAR NOT NULL,
    memo VARCHAR NOT NULL
);
-- Raw flows that a conversion flow (swap, bridge) replaces; the engine reads `ledger`.
CREATE TABLE IF NOT EXISTS superseded (
    chain VARCHAR NOT NULL, tx_hash VARCHAR NOT NULL, ordinal BIGINT NOT NULL
);
CREATE OR REPLACE VIEW ledger AS
    SELECT f.* FROM flows f
    ANTI JOIN superseded s
      ON s.chain = f.chain AND s.tx_hash = f.tx_hash AND s.ordinal = f.ordinal;
"""


class WorkspaceError(Exception):
    """A workspace that cannot be opened or used; the message says why."""


class SerialConnection:
    """A DuckDB connection whose every call holds a lock that its cursors share.

    The web app gives each of its threads (requests, the screening index, the cache warmer,
    the watch) its own cursor, which DuckDB allows; yet the test suite once died of a
    segmentation fault inside DuckDB while two of those threads ran queries at the same time
    (one reading a result with fetchall, the other querying a registered Arrow table; duckdb
    1.4.1), and duckdb/duckdb-python#435 reports the same with separate connections on 1.5.2.
    A crash takes the whole screening service down, so the app serialises its DuckDB calls:
    each query still runs on all cores inside DuckDB; only calls from different threads wait
    for each other (a watch batch or an index build delays a page by at most its own time).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, lock: threading.RLock | None = None,
                 ) -> None:
        self._con = con
        self._lock = lock or threading.RLock()

    def cursor(self) -> SerialConnection:
        """A cursor for another thread, under the same lock."""
        with self._lock:
            return SerialConnection(self._con.cursor(), self._lock)

    def fetch_record_batch(self, rows_per_batch: int = 1_000_000) -> pa.RecordBatchReader:
        """The result in batches, each read under the lock (a reader handed out as it is
        would be read outside it)."""
        with self._lock:
            reader = self._con.fetch_record_batch(rows_per_batch)

        def batches() -> Iterator[pa.RecordBatch]:
            while True:
                with self._lock:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        return
                yield batch

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._con, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                out = attr(*args, **kwargs)
            return self if out is self._con else out

        return call


class Workspace:
    """A folder with the DuckDB database of one investigation (or many cases)."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        self.con = con

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: any exception inside rolls every write back."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # -- flows -----------------------------------------------------------------------------
    def add_flows(self, table: pa.Table) -> int:
        """Append flows not already present (same chain, tx_hash, ordinal); returns how many.

        Call inside `transaction()` to tie the flows to other writes of the same batch.
        """
        if table.num_rows == 0:
            return 0
        table = table.select(FLOW_COLUMNS).cast(FLOW_SCHEMA)
        self.con.register("_new_flows", table)
        try:
            before = self.count_flows()
            self.con.execute(
                """
                INSERT INTO flows
                SELECT DISTINCT ON (n.chain, n.tx_hash, n.ordinal) n.*
                FROM _new_flows n
                ANTI JOIN flows f
                  ON f.chain = n.chain AND f.tx_hash = n.tx_hash AND f.ordinal = n.ordinal
                """
            )
            return self.count_flows() - before
        finally:
            self.con.unregister("_new_flows")

    def delete_flows(self, where: str, params: list[object] | None = None) -> None:
        """`DELETE FROM flows WHERE <where>`, counted: every deletion bumps the checkpoint
        FLOWS_GENERATION, so in-memory views of the ledger (the screening sender graph) know
        that more than appends happened and rebuild instead of adding the new rows."""
        self.con.execute(f"DELETE FROM flows WHERE {where}", params or [])
        self.con.execute(
            "INSERT INTO checkpoints VALUES (?, '1') ON CONFLICT (name) DO UPDATE SET "
            "value = CAST(CAST(checkpoints.value AS BIGINT) + 1 AS VARCHAR)", [FLOWS_GENERATION])

    def count_flows(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM flows").fetchone()[0])  # type: ignore[index]

    def flows(
        self, address: str | None = None, tx: str | None = None, limit: int | None = None
    ) -> pa.Table:
        """Flows touching an address and/or of one transaction, in ledger order."""
        where, params = [], []
        if address:
            where.append("(src = ? OR dst = ?)")
            address = normalize_address(address)
            params += [address, address]
        if tx:
            where.append("tx_hash = ?")
            params.append(tx.lower())
        sql = "SELECT * FROM flows"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time, chain, block, ordinal"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self.con.execute(sql, params).fetch_arrow_table()

    # -- small state -----------------------------------------------------------------------
    def checkpoint(self, name: str) -> str | None:
        row = self.con.execute("SELECT value FROM checkpoints WHERE name = ?", [name]).fetchone()
        return None if row is None else str(row[0])

    def set_checkpoint(self, name: str, value: str) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO checkpoints VALUES (?, ?)", [name, value]
        )

    def record_import(self, source: str, detail: str, rows: int) -> None:
        self.con.execute(
            "INSERT INTO imports (source, detail, rows) VALUES (?, ?, ?)", [source, detail, rows]
        )


def normalize_address(address: str) -> str:
    """EVM hex and bech32 addresses are case-insensitive; base58 (Bitcoin 1…/3…) is not."""
    a = address.strip()
    low = a.lower()
    if low.startswith(("0x", "bc1", "tb1", "ltc1", "bitcoincash:")):
        return low
    return a


def workspace_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The workspace folder: the argument, else $HEISTTRACE_WORKSPACE, else the default."""
    return Path(path or os.environ.get("HEISTTRACE_WORKSPACE") or DEFAULT_WORKSPACE)


def open_workspace(
    path: str | os.PathLike[str] | None = None, *, create: bool = True, read_only: bool = False
) -> Workspace:
    """Open (and by default create) a workspace folder."""
    folder = workspace_path(path)
    db = folder / DB_FILE
    if not db.exists():
        if not create or read_only:
            raise WorkspaceError(f"no workspace at {folder} (expected {db})")
        folder.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(db), read_only=read_only)
    except duckdb.Error as exc:
        raise WorkspaceError(f"cannot open workspace {folder}: {exc}") from exc
    # Long commands show their own (Rich) progress; DuckDB's bar would write over it, and into
    # --json output, and drawing it cost ~6% of a large import.
    con.execute("SET enable_progress_bar = false")
    if not read_only:
        con.execute(_DDL)
    return Workspace(folder, con)
