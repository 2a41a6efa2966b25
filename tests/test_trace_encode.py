"""The encoder keeps the sweep's tables narrow: the ledger's strings are read, never copied."""

from __future__ import annotations

import numpy as np
import pytest

from heisttrace.labels.roles import address_roles
from heisttrace.trace.encode import encode_ledger, sweep_order
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


def test_sweep_order_is_the_sort_by_time_chain_block_ordinal_tx_hash():
    """numpy's order equals Python's sorted() on the five keys, ties at every level included."""
    rng = np.random.default_rng(7)
    n = 5000
    time, chain, block, ordinal = (rng.integers(0, k, n) for k in (40, 3, 4, 5))
    tx = [f"0x{v:03x}" for v in rng.integers(0, 4096, n)]
    asked: list[int] = []

    def tx_rank(rows: np.ndarray) -> np.ndarray:
        asked.extend(rows.tolist())
        names = sorted({tx[r] for r in rows})
        return np.array([names.index(tx[r]) for r in rows])

    order = sweep_order(time, chain.astype(np.int32), block, ordinal, tx_rank)
    key = [(time[r], chain[r], block[r], ordinal[r], tx[r], r) for r in range(n)]
    want = [k[-1] for k in sorted(key)]
    got_keys = [key[r][:5] for r in order]
    assert got_keys == [key[r][:5] for r in want]
    assert sorted(order.tolist()) == list(range(n))
    # only flows tied on the four integers needed their tx hash
    four = {}
    for r in range(n):
        four.setdefault(key[r][:4], []).append(r)
    assert set(asked) == {r for rs in four.values() if len(rs) > 1 for r in rs}


def test_sweep_order_with_distinct_times_needs_no_more_than_time():
    time = np.array([5, 3, 9, 1], np.int64)
    zeros = np.zeros(4, np.int64)

    def never(rows: np.ndarray) -> np.ndarray:
        raise AssertionError("no tie to break")

    assert sweep_order(time, zeros.astype(np.int32), zeros, zeros, never).tolist() == [3, 1, 0, 2]


def test_holdings_found_by_hash_whatever_the_salt(workspace, monkeypatch):
    """Flows find their holdings through a salted 64-bit hash; another salt (as a collision
    would choose) encodes the same ledger, and the holdings' strings are what the flows say."""
    import random

    from heisttrace.trace import encode as E

    rnd = random.Random(3)
    people = [f"0x{i:040x}" for i in range(30)]
    add(workspace, [flow(100 + i, f"0x{i:064x}", *rnd.sample(people, 2), rnd.randrange(1, 99),
                         asset=rnd.choice(["ETH", "0x" + "ab" * 20]))
                    for i in range(300)])
    roles = address_roles(workspace)
    base = encode_ledger(workspace, roles)
    named = workspace.con.execute(
        "SELECT f.src, f.dst, f.asset, hs.address, hd.address, hs.asset "
        "FROM _trace_flows f JOIN _trace_holdings hs ON hs.h = f.s "
        "JOIN _trace_holdings hd ON hd.h = f.d").fetchall()
    assert len(named) == 300
    assert all(r[0] == r[3] and r[1] == r[4] and r[2] == r[5] for r in named)
    monkeypatch.setattr(E, "_distinct_hash_salt", lambda con: 5)
    other = encode_ledger(workspace, roles)
    for name in ("src", "dst", "amount_out", "amount_in", "time", "stop"):
        assert np.array_equal(getattr(base, name), getattr(other, name)), name


def test_distinct_hash_salt_refuses_repeated_holdings(workspace):
    from heisttrace.trace.encode import _distinct_hash_salt

    con = workspace.con
    con.execute("CREATE TEMP TABLE _trace_holdings AS SELECT * FROM (VALUES "
                "('ethereum', '0xa', 'ETH'), ('ethereum', '0xb', 'ETH')) t(chain, address, asset)")
    assert _distinct_hash_salt(con) == 0
    con.execute("INSERT INTO _trace_holdings VALUES ('ethereum', '0xa', 'ETH')")
    with pytest.raises(RuntimeError):
        _distinct_hash_salt(con)
