"""`ingest parquet`: a flows Parquet dataset (FLOW_SCHEMA) into the workspace.

This is how a Spark-extracted neighbourhood (scale/extract.py) comes home for the exact local
trace; any other tool writing FLOW_SCHEMA Parquet can use it too. DuckDB reads the dataset
(every `*.parquet` below the folder, hive partitions like `date=…/` allowed), the values are
checked, and the insert is one transaction that skips flows already present, so importing
twice adds nothing and a bad file leaves the workspace as it was.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from heisttrace.errors import InputError
from heisttrace.ledger.schema import FLOW_COLUMNS, KINDS
from heisttrace.sources.evm import IngestReport

_TYPES = {
    "block": "BIGINT", "time": "BIGINT", "ordinal": "BIGINT",
}
_REQUIRED = [c for c in FLOW_COLUMNS if c not in ("dst_chain", "dst_asset")]


def parquet_files(path: Path) -> list[Path]:
    """The Parquet files of a dataset folder (or the one file given)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("no such file or folder", file=str(path))
    files = sorted(p for p in path.rglob("*.parquet") if p.is_file()
                   and not any(part.startswith(("_", ".")) for part in p.relative_to(path).parts))
    if not files:
        raise InputError("no .parquet file in this folder", file=str(path))
    return files


def ingest_parquet(ws, path: str | Path) -> IngestReport:  # type: ignore[no-untyped-def]
    """Import a FLOW_SCHEMA Parquet dataset; all or nothing, and idempotent."""
    started = time.perf_counter()
    path = Path(path)
    files = parquet_files(path)
    report = IngestReport(source="parquet", detail=str(path))
    con = ws.con
    listing = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
    view = "_ht_parquet_in"
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM "
                    f"read_parquet({listing}, hive_partitioning = false, union_by_name = true)")
    except duckdb.Error as exc:
        raise InputError(f"cannot read Parquet: {str(exc).splitlines()[0]}",
                         file=str(path)) from exc
    try:
        have = [d[0] for d in con.execute(f"SELECT * FROM {view} LIMIT 0").description]
        missing = [c for c in _REQUIRED if c not in have]
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)} (not a flows dataset)",
                             file=str(path), field=missing[0])
        cols = []
        for c in FLOW_COLUMNS:
            if c in have:
                cols.append(f"CAST({c} AS {_TYPES.get(c, 'VARCHAR')}) AS {c}")
            else:
                cols.append(f"CAST(NULL AS VARCHAR) AS {c}")
        body = f"SELECT filename, {', '.join(cols)} FROM read_parquet({listing}, " \
               "hive_partitioning = false, union_by_name = true, filename = true)"
        kinds = ", ".join(f"'{k}'" for k in KINDS)
        checks = [
            ("amount_out", "NOT regexp_full_match(amount_out, '[0-9]+')"),
            ("amount_in", "NOT regexp_full_match(amount_in, '[0-9]+')"),
            ("kind", f"kind NOT IN ({kinds})"),
        ] + [(c, f"{c} IS NULL") for c in _REQUIRED]
        with ws.transaction():
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE _ht_parquet_rows AS {body}")
            except duckdb.Error as exc:
                raise InputError(f"cannot read Parquet: {str(exc).splitlines()[0]}",
                                 file=str(path)) from exc
            for field, cond in checks:
                bad = con.execute(f"SELECT filename, {field} FROM _ht_parquet_rows "
                                  f"WHERE {cond} LIMIT 1").fetchone()
                if bad is not None:
                    raise InputError(f"bad value {bad[1]!r}", file=str(bad[0]), field=field)
            report.flows_seen = int(con.execute(
                "SELECT count(*) FROM _ht_parquet_rows").fetchone()[0])  # type: ignore[index]
            before = ws.count_flows()
            con.execute(
                f"INSERT INTO flow_rows SELECT DISTINCT ON (n.chain, n.tx_hash, n.ordinal) "
                f"{', '.join('n.' + c for c in FLOW_COLUMNS)} FROM _ht_parquet_rows n "
                "ANTI JOIN flows f ON f.chain = n.chain AND f.tx_hash = n.tx_hash "
                "AND f.ordinal = n.ordinal"
            )
            report.flows_added = ws.count_flows() - before
            con.execute("DROP TABLE IF EXISTS _ht_parquet_rows")
            ws.record_import("parquet", str(path), report.flows_added)
    finally:
        con.execute(f"DROP VIEW IF EXISTS {view}")
    report.seconds = time.perf_counter() - started
    return report
