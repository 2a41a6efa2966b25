"""`ingest etl`: a folder of ethereum-etl CSV exports into the workspace.

DuckDB reads each CSV once, every column as text (the mapping checks and converts values
itself, so a bad cell becomes an error naming file, line and field, not a silent NULL), and
the whole import is one transaction: it lands whole or not at all. Large exports stay within
memory because DuckDB spills its hash tables and temp tables to disk past `memory_limit`.

The happy path is one guarded pass: every row meets a check that aborts the statement on a
bad value, token_transfers.csv streams from the file straight into the flows insert (the
smaller tables the mapping reads several times are copied to temp tables once), and a
chain's first import skips the anti-join against existing flows. Only when a guard fires
does a second, precise pass run (after the rollback) to name file, line and field.
"""

from __future__ import annotations

import csv
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from heisttrace.errors import InputError
from heisttrace.sources import csv_check
from heisttrace.sources.evm import (
    ADDRESS,
    BAD_VALUE_MARK,
    COLUMNS,
    HASH,
    MISSING_MARK,
    TABLES,
    UINT,
    IngestReport,
    Recheck,
    explain_missing,
    restore_settings,
    prepare,
    store_prepared,
)
from heisttrace.sources.tokens import read_tokens_csv, store_tokens

# progress(step description, steps done, steps total)
Progress = Callable[[str, int, int], None]

TOKENS_FILE = "tokens.csv"
# DuckDB's working memory during an import; past it, temp tables and hash tables spill to the
# workspace's temp folder, so a 50M-row export does not need 50M rows of RAM.
MEMORY_LIMIT = os.environ.get("HEISTTRACE_MEMORY_LIMIT", "1GB")
FAST_DISABLED_COMPRESSION = "dictionary,dict_fsst"


def etl_files(folder: Path) -> dict[str, Path]:
    """The ethereum-etl tables present in a folder (`<table>.csv`)."""
    return {t: folder / f"{t}.csv" for t in TABLES if (folder / f"{t}.csv").is_file()}


def _csv_error(path: Path, exc: duckdb.Error) -> InputError:
    """DuckDB's CSV error as one line naming the file and line."""
    text = str(exc)
    line = None
    m = re.search(r"[Ll]ine:? (\d+)", text)
    if m:
        line = int(m.group(1))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    reason = next((ln for ln in lines if ln.startswith("Expected Number of Columns")), None)
    if reason is None:
        reason = re.sub(r"^[\w ]+ Error: ", "", lines[0]) if lines else text
    first = reason.replace("Expected Number of Columns", "expected columns")
    return InputError(f"cannot parse CSV: {first}", file=str(path), line=line)


def _header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    names = next(csv.reader([first]), [])
    if not names or not any(n.strip() for n in names):
        raise InputError("empty file or no header line", file=str(path), line=1)
    return [n.strip() for n in names]


def _open_csv(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> None:
    """A view over one CSV file, every column text, the header read by us (no sniffing).

    Without sniffing, a short or long row (a truncated file) is an error with its line, not a
    guess; values are checked later by the mapping's column rules.
    """
    quoted = str(path).replace("'", "''")
    cols = ", ".join(
        "'" + c.replace("'", "''") + "': 'VARCHAR'" for c in _header(path)
    )
    try:
        con.execute(
            f"CREATE TEMP VIEW {name} AS SELECT * FROM read_csv('{quoted}', header = true, "
            f"auto_detect = false, columns = {{{cols}}}, delim = ',', quote = '\"', "
            "escape = '\"', strict_mode = true, null_padding = false)"
        )
    except duckdb.Error as exc:
        raise _csv_error(path, exc) from exc


def ingest_etl(
    ws,  # type: ignore[no-untyped-def]
    folder: str | Path,
    chain: str = "ethereum",
    progress: Progress | None = None,
) -> IngestReport:
    """Import every ethereum-etl CSV in `folder`; all or nothing, and idempotent."""
    started = time.perf_counter()
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder", file=str(folder))
    files = etl_files(folder)
    tokens_path = folder / TOKENS_FILE
    if not files and not tokens_path.is_file():
        raise InputError(
            "no ethereum-etl CSV here (expected some of: "
            + ", ".join(f"{t}.csv" for t in (*TABLES, "tokens")) + ")",
            file=str(folder),
        )
    report = IngestReport(source="etl", detail=str(folder))
    steps = len(files) + 3
    done = 0

    def step(what: str) -> None:
        nonlocal done
        if progress:
            progress(what, done, steps)
        done += 1

    token_rows = read_tokens_csv(tokens_path) if tokens_path.is_file() else []
    con = ws.con
    views: list[str] = []
    origins = {t: str(p) for t, p in files.items()}
    try:
        relations: dict[str, str] = {}
        for table, path in files.items():
            name = f"_etl_{table}"
            _open_csv(con, name, path)
            views.append(name)
            relations[table] = name
        try:
            with _import_settings(con), ws.transaction():
                prep = None
                try:
                    step("reading and checking CSVs")
                    try:
                        prep = prepare(con, relations, origins, fast=True,
                                       stream=_read_once(con, relations),
                                       proven=_proven(files))
                        step("mapping to flows")
                        res = store_prepared(con, prep, chain, segment_of=ws)
                    except duckdb.Error as exc:
                        raise _import_error(files, exc) from exc
                finally:
                    if prep is not None:
                        prep.drop()
                step("tokens")
                report.flows_seen, report.flows_added = res.flows_seen, res.flows_added
                report.logs_added = res.logs_added
                if token_rows:
                    report.tokens_added = store_tokens(ws, token_rows, chain=chain, source="etl")
                if res.txs_without_receipt:
                    report.warnings.append(
                        f"{res.txs_without_receipt} transactions have no receipt (no receipts.csv, "
                        "no receipt_* columns): their gas fees are missing and failed ones cannot be "
                        "told apart"
                    )
                ws.record_import("etl", str(folder), report.flows_added)
        except Recheck:
            # A fast guard (bad value, or a flow without time or index) aborted the transaction,
            # now rolled back: find the culprit again, outside it, with the precise checks that
            # name file, line and field.
            try:
                prep = prepare(con, relations, origins)
            except duckdb.Error as exc:
                raise _import_error(files, exc) from exc
            try:
                explain_missing(con, prep, chain)
            finally:
                prep.drop()
    finally:
        for name in views:
            con.execute(f"DROP VIEW IF EXISTS {name}")
    step("done")
    report.seconds = time.perf_counter() - started
    return report


_CHECK_CODES = {ADDRESS: csv_check.ADDRESS, HASH: csv_check.HASH, UINT: csv_check.UINT}


def _proven(files: dict[str, Path]) -> dict[str, frozenset[str]]:
    """The tables whose files a compiled pass proves clean (they need no per-cell guard),
    each with its hex columns that hold no upper-case letter (they need no lowercasing)."""
    proven = {}
    for table, path in files.items():
        rules = {col: (kind, required) for col, kind, required in COLUMNS[table]}
        names = [n.lower() for n in _header(path)]
        kinds, required = [], []
        for name in names:
            kind, req = rules.get(name, ("", False))
            kinds.append(_CHECK_CODES.get(kind, csv_check.ANY))
            required.append(req)
        upper = csv_check.prove(path, kinds, required)
        if upper is not None:
            mixed = {n for n, u in zip(names, upper, strict=True) if u}
            proven[table] = frozenset(n for n in names if n in rules and n not in mixed)
    return proven


def _read_once(con: duckdb.DuckDBPyConnection, relations: dict[str, str]) -> frozenset[str]:
    """Tables the mapping reads only once, so they are streamed from the CSV, never copied.

    token_transfers (most rows of a typical export) feeds only its own flows, unless it also
    carries block timestamps, which the block-time table reads as well.
    """
    rel = relations.get("token_transfers")
    if rel is None:
        return frozenset()
    cols = {d[0].lower() for d in con.execute(f"SELECT * FROM {rel} LIMIT 0").description}
    return frozenset() if "block_timestamp" in cols else frozenset({"token_transfers"})


@contextmanager
def _import_settings(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB settings for the import, restored afterwards (also after an aborted transaction).

    - memory_limit: past it, hash tables and temp tables spill to disk.
    - preserve_insertion_order off: flows are keyed, not ordered, and DuckDB then reads,
      maps and writes in parallel.
    - Dictionary compression off while writing: its analysis of every string segment cost
      more CPU than the rest of the write (tx hashes and amounts are unique anyway); FSST still
      compresses the strings (the flows table grows ~25%).
    """
    old = con.execute(
        "SELECT current_setting('memory_limit'), current_setting('preserve_insertion_order'), "
        "current_setting('disabled_compression_methods')"
    ).fetchone()
    assert old is not None
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET disabled_compression_methods = '{FAST_DISABLED_COMPRESSION}'")
    try:
        yield
    finally:
        restore_settings(con)  # what an aborted store_prepared could not reset itself
        con.execute(f"SET memory_limit = '{old[0]}'")
        con.execute(f"SET preserve_insertion_order = {'true' if old[1] else 'false'}")
        if old[2]:
            con.execute(f"SET disabled_compression_methods = '{old[2]}'")
        else:
            con.execute("RESET disabled_compression_methods")


def _import_error(files: dict[str, Path], exc: duckdb.Error) -> Exception:
    """What a DuckDB error during the import means: a fast guard, a bad file or bad values."""
    text = str(exc)
    if BAD_VALUE_MARK in text or MISSING_MARK in text:
        return Recheck()
    for path in files.values():
        if str(path) in text:
            return _csv_error(path, exc)
    # e.g. a gas fee beyond 128 bits
    return InputError(f"cannot map to flows: {text.splitlines()[0] if text else exc}")
