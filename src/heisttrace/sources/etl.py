"""`ingest etl`: a folder of ethereum-etl CSV exports into the workspace.

DuckDB reads each CSV once, every column as text (the mapping checks and converts values
itself, so a bad cell becomes an error naming file, line and field, not a silent NULL), and
the whole import is one transaction: it lands whole or not at all. Large exports stay within
memory because DuckDB spills its hash tables and temp tables to disk past `memory_limit`.
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
from heisttrace.sources.evm import (
    TABLES,
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


@contextmanager
def _memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    old = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]  # type: ignore[index]
    con.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    finally:
        con.execute(f"SET memory_limit = '{old}'")


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
    try:
        relations: dict[str, str] = {}
        for table, path in files.items():
            name = f"_etl_{table}"
            _open_csv(con, name, path)
            views.append(name)
            relations[table] = name
        try:
            with _memory_limit(con, MEMORY_LIMIT), ws.transaction():
                prep = None
                try:
                    step("reading and checking CSVs")
                    try:
                        prep = prepare(
                            con, relations, {t: str(p) for t, p in files.items()}, materialize=True
                        )
                    except duckdb.Error as exc:
                        raise _bad_file(files, exc) from exc
                    step("mapping to flows")
                    try:
                        res = store_prepared(con, prep, chain, one_pass=True)
                    except duckdb.Error as exc:  # e.g. a gas fee beyond 128 bits
                        raise InputError(f"cannot map to flows: {str(exc).splitlines()[0]}") from exc
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
            # The one-pass insert met a flow without time or index and DuckDB aborted the
            # transaction (now rolled back): find that flow again, outside it, to name it.
            restore_settings(con)
            prep = prepare(con, relations, {t: str(p) for t, p in files.items()})
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


def _bad_file(files: dict[str, Path], exc: duckdb.Error) -> InputError:
    """Which file a DuckDB read error came from (its message names the path)."""
    text = str(exc)
    for path in files.values():
        if str(path) in text:
            return _csv_error(path, exc)
    return InputError(f"cannot read CSV: {text.splitlines()[0] if text else exc}")
