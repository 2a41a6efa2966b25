"""The case tables: what evaluate, report and web read after a trace.

`cases` one row per case; `case_sinks` one row per (bucket, chain, address, asset) with the
taint it holds; `case_edges` the taint-flow graph; `case_state`, `case_holdings` and
`case_lots` the sweep's end state the live watch continues from (trace/state.py). A case is
written in one transaction and replaces an earlier run of the same name, so readers never see
half a case.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from heisttrace.ledger.workspace import Workspace
from heisttrace.trace.accounting import SinkRows
from heisttrace.trace.encode import BUCKETS

CASE_DDL = """
CREATE TABLE IF NOT EXISTS cases (
    case_name VARCHAR PRIMARY KEY, policy VARCHAR NOT NULL, seeds VARCHAR[] NOT NULL,
    until BIGINT, min_taint DOUBLE, origin_unit VARCHAR, stolen DOUBLE,
    created_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS case_sinks (
    case_name VARCHAR NOT NULL, bucket VARCHAR NOT NULL, chain VARCHAR NOT NULL,
    address VARCHAR NOT NULL, asset VARCHAR NOT NULL, entity VARCHAR,
    origin_amount DOUBLE NOT NULL, amount DOUBLE, first_time BIGINT, last_time BIGINT
);
CREATE TABLE IF NOT EXISTS case_edges (
    case_name VARCHAR NOT NULL, chain VARCHAR NOT NULL, block BIGINT, time BIGINT,
    ordinal BIGINT, tx_hash VARCHAR, src VARCHAR, dst VARCHAR, asset VARCHAR,
    dst_chain VARCHAR, dst_asset VARCHAR, kind VARCHAR, amount DOUBLE, taint DOUBLE,
    origin_taint DOUBLE
);
CREATE TABLE IF NOT EXISTS case_state (
    case_name VARCHAR PRIMARY KEY, max_hops INTEGER
);
CREATE TABLE IF NOT EXISTS case_holdings (
    case_name VARCHAR NOT NULL, chain VARCHAR NOT NULL, address VARCHAR NOT NULL,
    asset VARCHAR NOT NULL, balance DOUBLE NOT NULL, taint DOUBLE NOT NULL,
    origin DOUBLE NOT NULL, hops INTEGER
);
CREATE TABLE IF NOT EXISTS case_lots (
    case_name VARCHAR NOT NULL, chain VARCHAR NOT NULL, address VARCHAR NOT NULL,
    asset VARCHAR NOT NULL, seq INTEGER NOT NULL, amount DOUBLE NOT NULL,
    origin DOUBLE NOT NULL, tainted BOOLEAN NOT NULL
);
"""
CASE_TABLES = ("case_lots", "case_holdings", "case_state", "case_edges", "case_sinks", "cases")


def ensure_case_tables(ws: Workspace) -> None:
    ws.con.execute(CASE_DDL)


def delete_case(con, case: str) -> None:
    for table in CASE_TABLES:
        con.execute(f"DELETE FROM {table} WHERE case_name = ?", [case])


def write_case(
    ws: Workspace,
    *,
    case: str,
    policy: str,
    seeds: list[str],
    until: int | None,
    min_taint: float,
    origin_unit: str,
    stolen: float,
    rows: SinkRows,
    roles: pa.Table,
    edge_index: np.ndarray,
    edge_taint: np.ndarray,
    edge_origin: np.ndarray,
    state: pa.Table,
    lots: pa.Table | None = None,
    max_hops: int | None = None,
) -> None:
    """Replace `case` with this run. Needs the encoder's temp tables (_trace_flows, _holdings)."""
    ensure_case_tables(ws)
    con = ws.con
    sinks = pa.table({
        "h": pa.array(rows.holding, pa.int64()),
        "bucket": pa.array([BUCKETS[int(c) - 1] for c in rows.bucket], pa.string()),
        "origin_amount": pa.array(rows.origin, pa.float64()),
        "amount": pa.array(rows.amount, pa.float64()),
        "first_time": pa.array(rows.first_time, pa.int64()),
        "last_time": pa.array(rows.last_time, pa.int64()),
    })
    edges = pa.table({
        "i": pa.array(edge_index, pa.int64()),
        "taint": pa.array(edge_taint, pa.float64()),
        "origin_taint": pa.array(edge_origin, pa.float64()),
    })
    con.register("_case_sinks_new", sinks)
    con.register("_case_edges_new", edges)
    con.register("_case_roles", roles.select(["chain", "address", "entity"]))
    con.register("_case_state_new", state)
    if lots is not None:
        con.register("_case_lots_new", lots)
    try:
        with ws.transaction():
            delete_case(con, case)
            con.execute(
                "INSERT INTO cases VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [case, policy, list(seeds), until, float(min_taint), origin_unit,
                 float(stolen), datetime.now(timezone.utc).replace(tzinfo=None)],
            )
            con.execute(
                """
                INSERT INTO case_sinks
                SELECT ?, n.bucket, h.chain, h.address, h.asset, r.entity, n.origin_amount,
                       n.amount, nullif(n.first_time, -1), nullif(n.last_time, -1)
                FROM _case_sinks_new n
                JOIN _trace_holdings h ON h.h = n.h
                LEFT JOIN _case_roles r ON r.chain = h.chain AND r.address = h.address
                ORDER BY n.bucket, n.origin_amount DESC
                """,
                [case],
            )
            con.execute(
                """
                INSERT INTO case_edges
                SELECT ?, f.chain, f.block, f.time, f.ordinal, f.tx_hash, f.src, f.dst, f.asset,
                       f.dchain, f.dasset, f.kind, f.a_out, e.taint, e.origin_taint
                FROM _case_edges_new e JOIN _trace_flows f ON f.i = e.i
                ORDER BY f.i
                """,
                [case],
            )
            _write_state(con, case, state, lots, max_hops)
    finally:
        for view in ("_case_sinks_new", "_case_edges_new", "_case_roles", "_case_state_new",
                     "_case_lots_new"):
            con.unregister(view)


def _write_state(con, case: str, state: pa.Table, lots: pa.Table | None,
                 max_hops: int | None) -> None:
    """The watch's starting point (trace/state.py); its `case_state` row marks it present."""
    con.execute("INSERT INTO case_state VALUES (?, ?)", [case, max_hops])
    con.execute(
        """
        INSERT INTO case_holdings
        SELECT ?, h.chain, h.address, h.asset, n.balance, n.taint, n.origin, n.hops
        FROM _case_state_new n JOIN _trace_holdings h ON h.h = n.h
        """, [case])
    if lots is not None:
        con.execute(
            """
            INSERT INTO case_lots
            SELECT ?, h.chain, h.address, h.asset, n.seq, n.amount, n.origin, n.tainted
            FROM _case_lots_new n JOIN _trace_holdings h ON h.h = n.h
            """, [case])
