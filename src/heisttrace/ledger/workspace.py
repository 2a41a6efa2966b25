"""The workspace: a folder holding one DuckDB database and Parquet segments; no server.

Every write goes through `Workspace.transaction()`, so an import either lands whole or not at
all, and flows are keyed by (chain, tx_hash, ordinal), so importing the same data twice adds
nothing. Later stages (labels, trace results, cases) keep their tables in the same database,
so one commit can cover a batch of flows and the checkpoint that records it.

The ledger's flows live in two places, read together through the view `flows`:
- the table `flow_rows`, where batches are appended (nodes, JSON, small imports);
- Parquet segments (`segments/*.parquet`, listed in `flow_segments`), each a bulk import of a
  chain (its first, or the new flows of a large later one). DuckDB writes Parquet 2.5 to 3 times faster than its own table
  storage (measured: 3.75M token flows, 1.65-1.9 s against 4.6 s), which is most of a large
  import's time. A segment is registered in the same transaction as the rest of its import;
  a file no transaction registered is removed (at the end of the transaction, or at the next
  writable open after a crash).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from heisttrace.ledger.schema import FLOW_COLUMNS, FLOW_SCHEMA

DEFAULT_WORKSPACE = "heisttrace-workspace"
DB_FILE = "heisttrace.duckdb"
# checkpoint counting changes to `flows` other than appends to `flow_rows`: deletions and new
# segments (see Workspace.delete_flows, Workspace.register_segment)
FLOWS_GENERATION = "flows:generation"
SEGMENTS_DIR = "segments"
# `flows_rid` numbers a segment's rows from segment_id << RID_SHIFT (flow_rows: its rowid)
RID_SHIFT = 40

_DDL = """
CREATE TABLE IF NOT EXISTS flow_rows (
    chain VARCHAR NOT NULL, block BIGINT NOT NULL, time BIGINT NOT NULL, ordinal BIGINT NOT NULL,
    tx_hash VARCHAR NOT NULL, src VARCHAR NOT NULL, dst VARCHAR NOT NULL, asset VARCHAR NOT NULL,
    amount_out VARCHAR NOT NULL, amount_in VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    dst_chain VARCHAR, dst_asset VARCHAR
);
CREATE TABLE IF NOT EXISTS flow_segments (
    id BIGINT PRIMARY KEY, file VARCHAR NOT NULL, chain VARCHAR NOT NULL, rows BIGINT NOT NULL
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
"""

# after the views `flows` and `flows_rid` exist
_LEDGER_VIEW = """
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
                 write_lock: threading.RLock | None = None) -> None:
        self._con = con
        self._lock = lock or threading.RLock()
        # Held by `Workspace.transaction()` from BEGIN to COMMIT: write transactions of
        # different threads (a watch batch, a case traced from the API) take turns instead of
        # failing on DuckDB's write-write conflicts. Single calls stay under `_lock` only, so
        # pages are served while a batch is open.
        self.write_lock = write_lock or threading.RLock()

    def cursor(self) -> SerialConnection:
        """A cursor for another thread, under the same locks."""
        with self._lock:
            return SerialConnection(self._con.cursor(), self._lock, self.write_lock)

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
        self._in_transaction = False
        self._written: list[Path] = []  # segment files of the open transaction
        self._registered: set[Path] = set()
        self._retired: list[Path] = []  # files of rewritten segments, removed at commit

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: any exception inside rolls every write back, segment files too."""
        lock = getattr(self.con, "write_lock", None) or nullcontext()
        with lock:
            yield from self._transaction()

    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.con.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        committed = False
        try:
            yield self.con
            self.con.execute("COMMIT")
            committed = True
        except BaseException:
            if not committed:
                try:
                    self.con.execute("ROLLBACK")
                except duckdb.Error:
                    pass  # a failed COMMIT has already ended the transaction
            raise
        finally:
            self._in_transaction = False
            keep = self._registered if committed else set()
            for path in self._written:
                if path not in keep:
                    path.unlink(missing_ok=True)
            if committed:
                for path in self._retired:
                    path.unlink(missing_ok=True)
            self._written, self._registered, self._retired = [], set(), []

    @contextmanager
    def _ensure_transaction(self) -> Iterator[None]:
        if self._in_transaction:
            yield
        else:
            with self.transaction():
                yield

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
                INSERT INTO flow_rows
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
        """Delete the flows matching `where` (a condition on the columns of `flows`, which
        it may also name as `flows`), counted: every deletion bumps the checkpoint
        FLOWS_GENERATION, so in-memory views of the ledger (the screening sender graph) know
        that more than appends happened and rebuild instead of adding the new rows.

        A segment holding matching flows is rewritten without them (segments are immutable
        files; deletions are rare: a chain reorganisation, conversions computed again)."""
        params = params or []
        with self._ensure_transaction():
            self.con.execute(f"DELETE FROM flow_rows AS flows WHERE {where}", params)
            for seg_id, file, chain in self.con.execute(
                    "SELECT id, file, chain FROM flow_segments ORDER BY id").fetchall():
                source = f"read_parquet({sql_literal(self._segment_path(file))}) AS flows"
                hit = self.con.execute(
                    f"SELECT 1 FROM {source} WHERE {where} LIMIT 1", params).fetchone()
                if hit is None:
                    continue
                new = self.write_segment(
                    f"SELECT * FROM {source} WHERE ({where}) IS NOT TRUE", params)
                self.con.execute("DELETE FROM flow_segments WHERE id = ?", [seg_id])
                self._retired.append(self._segment_path(file))
                self._add_segment(new, chain)  # nothing left: the segment is gone
            self._refresh_views()
            self._bump_generation()

    def _bump_generation(self) -> None:
        self.con.execute(
            "INSERT INTO checkpoints VALUES (?, '1') ON CONFLICT (name) DO UPDATE SET "
            "value = CAST(CAST(checkpoints.value AS BIGINT) + 1 AS VARCHAR)", [FLOWS_GENERATION])

    # -- segments --------------------------------------------------------------------------
    def write_segment(self, select_sql: str, params: list[object] | None = None) -> Path:
        """Write the rows of `select_sql` (the flow columns, in order) to a new Parquet file.

        Inside a transaction only: the file is removed when the transaction ends, unless
        `register_segment` made it part of the ledger before the commit."""
        if not self._in_transaction:
            raise RuntimeError("write_segment needs an open transaction")
        folder = self.path / SEGMENTS_DIR
        path = folder / f"{uuid.uuid4().hex}.parquet"
        cols = ", ".join(FLOW_COLUMNS)
        try:
            folder.mkdir(exist_ok=True)
            self._written.append(path)
            self.con.execute(
                f"COPY (SELECT {cols} FROM ({select_sql})) TO {sql_literal(path)} "
                "(FORMAT parquet, COMPRESSION snappy)", params or [])
        except OSError as exc:
            raise WorkspaceError(f"cannot write the ledger segment {path}: {exc}") from exc
        except duckdb.IOException as exc:  # the disk is full, the folder read-only, ...
            if str(folder) not in str(exc):
                raise  # an input file that could not be read: the caller names it
            raise WorkspaceError(f"cannot write the ledger segment {path}: "
                                 f"{str(exc).splitlines()[0]}") from exc
        return path

    def register_segment(self, path: Path, chain: str) -> int:
        """Make a file of `write_segment` part of the ledger; returns its number of flows.

        An empty file is not registered (it goes when the transaction ends)."""
        rows = self._add_segment(path, chain)
        if rows:
            self._refresh_views()
            self._bump_generation()
        return rows

    def _add_segment(self, path: Path, chain: str) -> int:
        if path not in self._written:
            raise ValueError(f"{path} was not written in this transaction")
        row = self.con.execute(
            "SELECT coalesce(max(id), 0) + 1, (SELECT count(*) FROM "
            f"read_parquet({sql_literal(path)})) FROM flow_segments").fetchone()
        assert row is not None
        seg_id, rows = int(row[0]), int(row[1])
        if rows:
            self.con.execute("INSERT INTO flow_segments VALUES (?, ?, ?, ?)",
                             [seg_id, self._segment_name(path), chain, rows])
            self._registered.add(path)
        return rows

    def _segment_path(self, name: str) -> Path:
        return self.path.resolve() / name

    def _segment_name(self, path: Path) -> str:
        return f"{SEGMENTS_DIR}/{path.name}"

    def _refresh_views(self, temp: bool = False) -> None:
        """`flows` (every flow) and `flows_rid` (the same with `rid`, a number unique among
        the flows of this ledger state, for stages that point back at rows)."""
        cols = ", ".join(FLOW_COLUMNS)
        plain, numbered = [f"SELECT {cols} FROM flow_rows"], [
            f"SELECT rowid AS rid, {cols} FROM flow_rows"]
        for seg_id, file in self.con.execute(
                "SELECT id, file FROM flow_segments ORDER BY id").fetchall():
            path = sql_literal(self._segment_path(file))
            plain.append(f"SELECT {cols} FROM read_parquet({path})")
            numbered.append(f"SELECT {int(seg_id) << RID_SHIFT} + file_row_number AS rid, "
                            f"{cols} FROM read_parquet({path}, file_row_number = true)")
        kind = "TEMP VIEW" if temp else "VIEW"
        self.con.execute(f"CREATE OR REPLACE {kind} flows AS {' UNION ALL '.join(plain)}")
        self.con.execute(
            f"CREATE OR REPLACE {kind} flows_rid AS {' UNION ALL '.join(numbered)}")

    def _remove_orphans(self) -> None:
        """Segment files no commit registered (a crash between writing and committing)."""
        folder = self.path / SEGMENTS_DIR
        if not folder.is_dir():
            return
        known = {str(r[0]) for r in self.con.execute("SELECT file FROM flow_segments").fetchall()}
        for path in folder.glob("*.parquet"):
            if self._segment_name(path) not in known:
                path.unlink(missing_ok=True)

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
    ws = Workspace(folder, con)
    if read_only:
        _read_only_views(ws)
    else:
        _migrate(con)
        con.execute(_DDL)
        ws._refresh_views()
        con.execute(_LEDGER_VIEW)
        ws._remove_orphans()
    return ws


def has_table(con: duckdb.DuckDBPyConnection, name: str, kind: str = "BASE TABLE") -> bool:
    """Whether the workspace's database has this table (of `main`, not temporary)."""
    return con.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_name = ? AND table_type = ?", [name, kind]).fetchone() is not None


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Workspaces from before segments kept every flow in the table `flows`."""
    if has_table(con, "flows"):
        con.execute("DROP VIEW IF EXISTS ledger")
        con.execute("ALTER TABLE flows RENAME TO flow_rows")


def _read_only_views(ws: Workspace) -> None:
    """The stored views name segment files by absolute path; a workspace folder that was
    moved or copied since its last writable open gets this connection's own views."""
    con = ws.con
    if has_table(con, "flows"):  # not yet migrated: one table, nothing to find
        con.execute("CREATE TEMP VIEW flows_rid AS SELECT rowid AS rid, * FROM flows")
        return
    if not has_table(con, "flow_segments"):
        return  # an empty database file
    row = con.execute("SELECT file FROM flow_segments LIMIT 1").fetchone()
    if row is not None and str(ws._segment_path(str(row[0]))) not in str(con.execute(
            "SELECT sql FROM duckdb_views() WHERE view_name = 'flows' AND NOT temporary"
    ).fetchone()):
        ws._refresh_views(temp=True)


def sql_literal(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"
