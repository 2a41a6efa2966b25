"""Turn the `ledger` view into the integer arrays the compiled sweep runs over.

Everything string-shaped (chains, addresses, assets, decimal-string amounts) is resolved here,
once, inside DuckDB: holdings (chain, address, asset) are dictionary-encoded to int32, amounts
become float64 whole units, label roles become a per-flow stop code. The flows come back as
narrow integer rows in no particular order and numpy sorts them by (time, chain, block,
ordinal, tx_hash): time settles almost all of them, and DuckDB ranks tx hashes only for flows
that tie on the four integers. The sweep then never touches a string.

The encoded flows stay in the narrow temp table `_trace_order` (column `i` = position in the
sweep, `rid` = the flow's number in the view `flows_rid`); the temp view `_trace_flows` joins
them back to their
identity for the few flows that end up in the seeds and the taint-flow graph. No wide copy of
the ledger's strings is ever materialised.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from heisttrace.errors import InputError
from heisttrace.ledger.schema import FEE_SINK, native_asset
from heisttrace.ledger.workspace import Workspace

# Bucket codes shared by the kernel, the accounting and the store. 0 = keep following.
BUCKETS: tuple[str, ...] = (
    "cashed_out", "dark", "bridged_untraced", "parked", "frozen", "fees", "dormant",
    "below_threshold",
)
FOLLOW = 0
CASHED_OUT, DARK, BRIDGED_UNTRACED, PARKED, FROZEN, FEES, DORMANT, BELOW_THRESHOLD = range(1, 9)

# Roles that stop the trace at the destination holding, and the bucket they fill.
STOP_ROLES: dict[str, int] = {
    "cash_out": CASHED_OUT, "dark": DARK, "parked": PARKED, "frozen": FROZEN,
}
CONVERSION_KINDS = ("swap", "bridge")

# UTXO chains count in 1e-8 coins; EVM natives and tokens without metadata in 1e-18.
UTXO_CHAINS = frozenset({"bitcoin", "litecoin", "dogecoin", "bitcoin_cash", "zcash"})
DEFAULT_TOKEN_DECIMALS = 18

# DuckDB's working memory while encoding; past it, the sort and hash tables spill to the
# workspace's temp folder, so a 50M-flow ledger does not need its whole width in RAM.
MEMORY_LIMIT = os.environ.get("HEISTTRACE_MEMORY_LIMIT", "2GB")


@contextmanager
def _duckdb_settings(con, **settings: str) -> Iterator[None]:
    """Set DuckDB options for one stage and put the old values back afterwards."""
    old = {k: con.execute(f"SELECT current_setting('{k}')").fetchone()[0]  # type: ignore[index]
           for k in settings}
    for k, v in settings.items():
        con.execute(f"SET {k} = '{v}'")
    try:
        yield
    finally:
        for k, v in old.items():
            con.execute(f"SET {k} = '{v}'")


def bucket_name(code: int) -> str:
    return BUCKETS[code - 1]


def default_decimals(chain: str, asset: str) -> int:
    """Decimals when `tokens` has no row: natives by chain family, EVM tokens 18."""
    if asset == native_asset(chain) and chain in UTXO_CHAINS:
        return 8
    return DEFAULT_TOKEN_DECIMALS


@dataclass
class EncodedLedger:
    """The sweep's input: one entry per flow, in sweep order, plus the holding count."""

    src: np.ndarray  # int32 holding id the flow leaves
    dst: np.ndarray  # int32 holding id the flow reaches
    amount_out: np.ndarray  # float64 whole units of the source asset
    amount_in: np.ndarray  # float64 whole units of the destination asset
    time: np.ndarray  # int64 unix seconds
    stop: np.ndarray  # int8 bucket code when the destination stops the trace, else 0
    n_holdings: int

    @property
    def n_flows(self) -> int:
        return int(self.src.shape[0])

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.src, self.dst, self.amount_out, self.amount_in,
                                      self.time, self.stop))


def decimals_table(ws: Workspace) -> pa.Table:
    """10**decimals for every (chain, asset) appearing in the ledger, as a join table."""
    assets = ws.con.execute(
        """
        SELECT DISTINCT chain, asset FROM ledger
        UNION SELECT DISTINCT coalesce(dst_chain, chain), coalesce(dst_asset, asset) FROM ledger
        """
    ).fetchall()
    known = dict(
        ((c, a), d) for c, a, d in ws.con.execute(
            "SELECT chain, address, decimals FROM tokens WHERE decimals IS NOT NULL"
        ).fetchall()
    )
    chains, names, scales = [], [], []
    for chain, asset in assets:
        dec = known.get((chain, asset))
        if dec is None:
            dec = default_decimals(chain, asset)
        chains.append(chain)
        names.append(asset)
        scales.append(float(10 ** int(dec)))
    return pa.table({"chain": pa.array(chains, pa.string()), "asset": pa.array(names, pa.string()),
                     "scale": pa.array(scales, pa.float64())})


def _run_checked(con, sql: str) -> None:
    """Amounts are decimal strings written by the importers; a bad one is named, not a crash."""
    try:
        con.execute(sql)
    except duckdb.ConversionException as exc:
        bad = con.execute(
            "SELECT chain, tx_hash, ordinal, amount_out, amount_in FROM _trace_kept "
            "WHERE TRY_CAST(amount_out AS DOUBLE) IS NULL OR TRY_CAST(amount_in AS DOUBLE) IS NULL "
            "LIMIT 1").fetchone()
        where = f" (flow {bad[0]}:{bad[1]}:{bad[2]}: {bad[3]!r} -> {bad[4]!r})" if bad else ""
        raise InputError(f"an amount in the ledger is not a number{where}: {exc}",
                         field="amount_out") from None


def encode_ledger(ws: Workspace, roles: pa.Table, until: int | None = None) -> EncodedLedger:
    """Encode the ledger (up to `until`, flows touching an `ignore` label dropped).

    `roles` is `labels.roles.address_roles(...)`: chain, address, role, entity, category.
    """
    with _duckdb_settings(ws.con, memory_limit=MEMORY_LIMIT, preserve_insertion_order="false"):
        return _encode(ws, roles, until)


def _encode(ws: Workspace, roles: pa.Table, until: int | None) -> EncodedLedger:
    con = ws.con
    # Copied into temp tables, not read as registered Arrow: DuckDB estimates an Arrow scan
    # at ~1 row, so it built its hash tables on the ledger's wide rows instead of on these
    # small tables (6.1M flows from flow_rows: out of memory at 2 GB).
    for name, table in (("_trace_roles", roles.select(["chain", "address", "role"])),
                        ("_trace_dec", decimals_table(ws))):
        con.register("_trace_arrow", table)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _trace_arrow")
        finally:
            con.unregister("_trace_arrow")
    try:
        has_ignore = bool(con.execute(
            "SELECT count(*) FROM _trace_roles WHERE role = 'ignore'").fetchone()[0])  # type: ignore[index]
        ignore_joins = ""
        if has_ignore:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _trace_ignore AS "
                "SELECT DISTINCT chain, address FROM _trace_roles WHERE role = 'ignore'"
            )
            for chain_col, addr_col in (("chain", "asset"), ("chain", "src"),
                                        ("dchain", "dst"), ("dchain", "dasset")):
                alias = f"ig_{addr_col}"
                ignore_joins += (
                    f" ANTI JOIN _trace_ignore {alias} ON {alias}.chain = f.{chain_col}"
                    f" AND {alias}.address = f.{addr_col}"
                )
        # The rows of the `ledger` view (flows minus superseded, same anti join) with their
        # `rid`, so the sweep's table stays narrow and points back to the strings.
        where = "" if until is None else f"WHERE l.time <= {int(until)}"
        kept = f"""
            SELECT f.* FROM (
                SELECT l.rid, l.chain, l.block, l.time, l.ordinal, l.tx_hash, l.src,
                       l.dst, l.asset, l.amount_out, l.amount_in, l.kind,
                       coalesce(l.dst_chain, l.chain) AS dchain,
                       coalesce(l.dst_asset, l.asset) AS dasset
                FROM flows_rid l
                ANTI JOIN superseded x
                  ON x.chain = l.chain AND x.tx_hash = l.tx_hash AND x.ordinal = l.ordinal
                {where}
            ) f {ignore_joins}
        """
        con.execute(f"CREATE OR REPLACE TEMP VIEW _trace_kept AS {kept}")
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _trace_holdings AS
            SELECT (row_number() OVER (ORDER BY chain, address, asset) - 1)::INTEGER AS h,
                   chain, address, asset
            FROM (SELECT chain, src AS address, asset FROM _trace_kept
                  UNION SELECT dchain, dst, dasset FROM _trace_kept)
            """
        )
        stop_case = " ".join(
            f"WHEN r.role = '{role}' THEN {code}" for role, code in STOP_ROLES.items()
        )
        # chains as small integers in their sort order, for the sort key
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _trace_chains AS
            SELECT chain, (row_number() OVER (ORDER BY chain) - 1)::INTEGER AS c
            FROM (SELECT DISTINCT chain FROM _trace_holdings)
            """
        )
        # One narrow row per flow, in no particular order: sorting here (a window over the
        # wide rows) cost more than everything else together; numpy sorts the integers below.
        # Flows find their holdings in two steps, by a 64-bit hash of (chain, address, asset)
        # that is distinct over the holdings: joining the wide rows to the holdings' strings
        # in one statement needed over 2 GB for 6.1M flows among 7.6M holdings (DuckDB built
        # its hash table on the flows) and failed; both steps are narrow.
        salt = _distinct_hash_salt(con)
        _run_checked(con, f"""
            CREATE OR REPLACE TEMP TABLE _trace_keyed AS
            SELECT k.rid, k.time, c.c AS chain, k.block, k.ordinal,
                   hash(k.chain, k.src, k.asset, {salt}) AS ks,
                   hash(k.dchain, k.dst, k.dasset, {salt}) AS kd,
                   CAST(k.amount_out AS DOUBLE) / so.scale AS a_out,
                   CAST(k.amount_in AS DOUBLE) / si.scale AS a_in,
                   (CASE WHEN k.dst = '{FEE_SINK}' THEN {FEES}
                         {stop_case}
                         WHEN r.role = 'conversion' AND k.kind NOT IN ('swap', 'bridge')
                              THEN {BRIDGED_UNTRACED}
                         ELSE {FOLLOW} END)::TINYINT AS stop
            FROM _trace_kept k
            JOIN _trace_chains c ON c.chain = k.chain
            JOIN _trace_dec so ON so.chain = k.chain AND so.asset = k.asset
            JOIN _trace_dec si ON si.chain = k.dchain AND si.asset = k.dasset
            LEFT JOIN _trace_roles r ON r.chain = k.dchain AND r.address = k.dst
            """)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _trace_rows AS
            WITH hk AS (SELECT h, hash(chain, address, asset, {salt}) AS k FROM _trace_holdings)
            SELECT r.rid, r.time, r.chain, r.block, r.ordinal, hs.h AS s, hd.h AS d, r.a_out,
                   r.a_in, r.stop
            FROM _trace_keyed r JOIN hk hs ON hs.k = r.ks JOIN hk hd ON hd.k = r.kd
            """)
        con.execute("DROP TABLE IF EXISTS _trace_keyed")
        con.execute("DROP VIEW IF EXISTS _trace_kept")
        rows = _fetch_rows(con)
        con.execute("DROP TABLE IF EXISTS _trace_rows")
        con.execute("DROP TABLE IF EXISTS _trace_chains")
        order = sweep_order(rows["time"], rows["chain"], rows["block"], rows["ordinal"],
                            lambda tied: _tx_hash_rank(con, rows["rid"][tied]))
        for name in ("chain", "block", "ordinal"):
            del rows[name]
        for name in list(rows):  # one column at a time: a single extra copy at any moment
            rows[name] = rows[name][order]
        del order
        n_flows = rows["rid"].shape[0]
        # the sweep's table: `i` = position in the sweep, `rid` = number in `flows_rid`, and
        # the encoded columns the seeds and the case store read back (the rest live in numpy)
        con.register("_trace_sorted", pa.table({
            "i": np.arange(n_flows, dtype=np.int64), "rid": rows["rid"], "time": rows["time"],
            "s": rows["s"], "d": rows["d"], "a_out": rows["a_out"]}))
        try:
            con.execute("CREATE OR REPLACE TEMP TABLE _trace_order AS SELECT * FROM _trace_sorted")
        finally:
            con.unregister("_trace_sorted")
        # The identity of each encoded flow, for seeds and the taint-flow graph (few rows).
        con.execute(
            """
            CREATE OR REPLACE TEMP VIEW _trace_flows AS
            SELECT o.i, f.chain, f.block, o.time, f.ordinal, f.tx_hash, f.src, f.dst, f.asset,
                   f.kind, coalesce(f.dst_chain, f.chain) AS dchain,
                   coalesce(f.dst_asset, f.asset) AS dasset, o.s, o.d, o.a_out
            FROM _trace_order o JOIN flows_rid f ON f.rid = o.rid
            """
        )
        enc = EncodedLedger(
            src=rows["s"], dst=rows["d"], amount_out=rows["a_out"], amount_in=rows["a_in"],
            time=rows["time"], stop=rows["stop"],
            n_holdings=int(con.execute("SELECT count(*) FROM _trace_holdings").fetchone()[0]),  # type: ignore[index]
        )
    finally:
        con.execute("DROP TABLE IF EXISTS _trace_roles")
        con.execute("DROP TABLE IF EXISTS _trace_dec")
    return enc


def _distinct_hash_salt(con) -> int:
    """The first salt whose hash(chain, address, asset, salt) differs for every holding
    (0 but for a collision, odds ~n^2 / 2^65: ~1e-6 at 7.6M holdings)."""
    for salt in range(8):
        if con.execute(
                "SELECT count(*) = count(DISTINCT hash(chain, address, asset, "
                f"{salt})) FROM _trace_holdings").fetchone()[0]:  # type: ignore[index]
            return salt
    raise RuntimeError("holdings are not distinct")  # UNION makes them so: a bug if seen


# The narrow per-flow columns and their numpy types.
ROW_TYPES: dict[str, type] = {
    "rid": np.int64, "time": np.int64, "chain": np.int32, "block": np.int64,
    "ordinal": np.int64, "s": np.int32, "d": np.int32, "a_out": np.float64,
    "a_in": np.float64, "stop": np.int8,
}


def _fetch_rows(con) -> dict[str, np.ndarray]:
    """`_trace_rows` into preallocated numpy columns, in batches (no second full copy)."""
    n = int(con.execute("SELECT count(*) FROM _trace_rows").fetchone()[0])  # type: ignore[index]
    out = {name: np.empty(n, dtype) for name, dtype in ROW_TYPES.items()}
    reader = con.execute(f"SELECT {', '.join(ROW_TYPES)} FROM _trace_rows").fetch_record_batch(
        1 << 20)
    at = 0
    for batch in reader:
        size = batch.num_rows
        for name, column in out.items():
            column[at:at + size] = batch.column(name).to_numpy()
        at += size
    assert at == n, "the flow count changed while reading"
    return out


def _tx_hash_rank(con, rids: np.ndarray) -> np.ndarray:
    """The rank of each flow's tx_hash among `rids` (of `flows_rid`), in DuckDB's string order."""
    con.register("_trace_tied", pa.table({"j": np.arange(rids.shape[0]), "rid": rids}))
    try:
        got = con.execute(
            """
            SELECT t.j, dense_rank() OVER (ORDER BY f.tx_hash) AS r
            FROM _trace_tied t JOIN flows_rid f ON f.rid = t.rid
            """
        ).fetchnumpy()
    finally:
        con.unregister("_trace_tied")
    rank = np.empty(rids.shape[0], np.int64)
    rank[got["j"]] = got["r"]
    return rank


def sweep_order(time: np.ndarray, chain: np.ndarray, block: np.ndarray, ordinal: np.ndarray,
                tx_rank: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The permutation that puts flows in sweep order: (time, chain, block, ordinal, tx_hash).

    Sorting by time alone settles most flows (the input comes roughly in time order, so the
    stable sort is quick); only runs of equal time are sorted on the other keys, and only
    flows equal in all four (one position shared by several transactions) need the tx_hash,
    whose order `tx_rank(indices)` gives as integers (it asks DuckDB for the strings).
    """
    order = np.argsort(time, kind="stable")
    at = _in_runs(time[order])
    if at.size == 0:
        return order
    rows = order[at]  # runs of equal time, each contiguous and in time order
    rows = rows[np.lexsort((ordinal[rows], block[rows], chain[rows], time[rows]))]
    tied = _in_runs(time[rows], chain[rows], block[rows], ordinal[rows])
    if tied.size:
        rank = np.zeros(rows.shape[0], np.int64)
        rank[tied] = tx_rank(rows[tied])
        rows = rows[np.lexsort((rank, ordinal[rows], block[rows], chain[rows], time[rows]))]
    order[at] = rows  # the same runs in the same places, now sorted inside
    return order


def _in_runs(*keys: np.ndarray) -> np.ndarray:
    """Positions of a sorted sequence that are equal to a neighbour on every key."""
    n = keys[0].shape[0]
    if n < 2:
        return np.zeros(0, np.int64)
    same = np.ones(n - 1, bool)
    for key in keys:
        same &= key[1:] == key[:-1]
    mark = np.zeros(n, bool)
    mark[1:] |= same
    mark[:-1] |= same
    return np.flatnonzero(mark)
