"""The encoder keeps the sweep's tables narrow: the ledger's strings are read, never copied."""

from __future__ import annotations

import numpy as np

from heisttrace.labels.roles import address_roles
from heisttrace.trace.encode import encode_ledger
from trace_helpers import add, flow


def test_encoded_tables_hold_no_copy_of_the_flow_strings(workspace):
    add(workspace, [flow(10, "0xtheft", "0xvictim", "0xa", 5),
                    flow(20, "0xt2", "0xa", "0xb", 2),
                    flow(20, "0xt1", "0xa", "0xc", 1)])
    enc = encode_ledger(workspace, address_roles(workspace))
    con = workspace.con
    wide = con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = 'temp' "
        "AND table_name LIKE '\\_trace%' ESCAPE '\\' AND data_type = 'VARCHAR' "
        "AND table_name NOT IN ('_trace_holdings', '_trace_flows')").fetchall()
    assert wide == []
    kinds = dict(con.execute(
        "SELECT view_name, 'VIEW' FROM duckdb_views() WHERE temporary "
        "UNION ALL SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE temporary").fetchall())
    assert kinds.get("_trace_flows") == "VIEW"
    # the view still names every encoded flow, in sweep order (ties broken by tx hash)
    rows = con.execute("SELECT i, tx_hash, s, d FROM _trace_flows ORDER BY i").fetchall()
    assert [r[1] for r in rows] == ["0xtheft", "0xt1", "0xt2"]
    assert [r[0] for r in rows] == [0, 1, 2]
    assert np.array_equal(enc.src, [r[2] for r in rows])
    assert np.array_equal(enc.dst, [r[3] for r in rows])
