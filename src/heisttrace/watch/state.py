"""Per-case holding state for the live watch, advanced flow by flow with haircut semantics.

A trace ends with taint sitting in holdings (bucket `dormant`); the watch starts from there:
each holding's balance comes from the ledger, its taint from `case_sinks`. A new flow moves
`taint * amount_out / balance` of the source's taint (and origin value) to the destination,
exactly as the haircut sweep would; a destination with a cash_out/dark/frozen/parked role
stops it there (an alert for cash_out and dark). Every change a block makes is first written
to an undo log keyed by block, so a reorganisation restores the state exactly.
Amounts are base units (DOUBLE); origin value is in the case's origin units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heisttrace.ledger.schema import FEE_SINK
from heisttrace.ledger.workspace import Workspace
from heisttrace.trace.encode import default_decimals

DDL = """
CREATE TABLE IF NOT EXISTS watch_holdings (
    case_name VARCHAR NOT NULL, chain VARCHAR NOT NULL, address VARCHAR NOT NULL,
    asset VARCHAR NOT NULL, balance DOUBLE NOT NULL, taint DOUBLE NOT NULL,
    origin DOUBLE NOT NULL, PRIMARY KEY (case_name, chain, address, asset)
);
CREATE TABLE IF NOT EXISTS watch_undo (
    case_name VARCHAR NOT NULL, block BIGINT NOT NULL, chain VARCHAR NOT NULL,
    address VARCHAR NOT NULL, asset VARCHAR NOT NULL, existed BOOLEAN NOT NULL,
    balance DOUBLE, taint DOUBLE, origin DOUBLE
);
CREATE TABLE IF NOT EXISTS watch_cases (
    case_name VARCHAR PRIMARY KEY, chain VARCHAR NOT NULL, start_block BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS watch_blocks (
    chain VARCHAR NOT NULL, block BIGINT NOT NULL, hash VARCHAR NOT NULL,
    parent_hash VARCHAR, PRIMARY KEY (chain, block)
);
CREATE TABLE IF NOT EXISTS watch_alerts (
    case_name VARCHAR NOT NULL, chain VARCHAR NOT NULL, tx_hash VARCHAR NOT NULL,
    ordinal BIGINT NOT NULL, block BIGINT NOT NULL, time BIGINT, src VARCHAR, dst VARCHAR,
    asset VARCHAR, role VARCHAR, entity VARCHAR, category VARCHAR, amount VARCHAR,
    taint DOUBLE, taint_units DOUBLE, origin_taint DOUBLE, origin_unit VARCHAR,
    emitted BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (case_name, chain, tx_hash, ordinal)
);
CREATE TABLE IF NOT EXISTS watch_deliveries (
    case_name VARCHAR NOT NULL, chain VARCHAR NOT NULL, tx_hash VARCHAR NOT NULL,
    ordinal BIGINT NOT NULL, url VARCHAR NOT NULL, delivered_at TIMESTAMP,
    PRIMARY KEY (case_name, chain, tx_hash, ordinal, url)
);
"""
STOP_ROLES = ("cash_out", "dark", "frozen", "parked")
ALERT_ROLES = ("cash_out", "dark")
EPS = 1e-12


def ensure_tables(ws: Workspace) -> None:
    ws.con.execute(DDL)


Key = tuple[str, str, str]  # chain, address, asset


@dataclass
class Holding:
    balance: float
    taint: float
    origin: float


@dataclass
class CaseState:
    """One case's holdings in memory while a batch is applied; written back at the end."""

    case: str
    origin_unit: str
    min_taint: float
    holdings: dict[Key, Holding] = field(default_factory=dict)
    undo: dict[Key, Holding | None] = field(default_factory=dict)  # before this block
    dirty: set[Key] = field(default_factory=set)


def init_case(ws: Workspace, case: str, chain: str, start_block: int) -> None:
    """First watch of `case`: its dormant taint becomes holding state, balances from the
    ledger up to `start_block - 1`."""
    con = ws.con
    if con.execute("SELECT 1 FROM watch_cases WHERE case_name = ?", [case]).fetchone():
        return
    rows = con.execute(
        """
        SELECT chain, address, asset, sum(amount), sum(origin_amount) FROM case_sinks
        WHERE case_name = ? AND bucket IN ('dormant', 'below_threshold') AND amount > 0
        GROUP BY ALL
        """, [case]).fetchall()
    for c, address, asset, amount, origin in rows:
        scale = 10.0 ** _decimals(ws, c, asset)
        balance = _ledger_balance(ws, c, address, asset, start_block - 1, None)
        con.execute("INSERT INTO watch_holdings VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [case, c, address, asset, max(balance, amount * scale),
                     amount * scale, origin])
    con.execute("INSERT INTO watch_cases VALUES (?, ?, ?)", [case, chain, start_block])


def _decimals(ws: Workspace, chain: str, asset: str) -> int:
    row = ws.con.execute("SELECT decimals FROM tokens WHERE chain = ? AND address = ? AND "
                         "decimals IS NOT NULL", [chain, asset]).fetchone()
    return int(row[0]) if row else default_decimals(chain, asset)


def _ledger_balance(ws: Workspace, chain: str, address: str, asset: str, block: int,
                    before_ordinal: int | None) -> float:
    """In minus out of the holding in the ledger up to `block` (strictly before
    `before_ordinal` inside it when given)."""
    if before_ordinal is None:
        cond, args = "block <= $4", [block]
    else:
        cond, args = "(block < $4 OR (block = $4 AND ordinal < $5))", [block, before_ordinal]
    row = ws.con.execute(
        f"""
        SELECT coalesce(sum(CASE WHEN coalesce(dst_chain, chain) = $1 AND dst = $2
                                  AND coalesce(dst_asset, asset) = $3
                                 THEN CAST(amount_in AS DOUBLE) ELSE 0 END), 0)
             - coalesce(sum(CASE WHEN chain = $1 AND src = $2 AND asset = $3
                                 THEN CAST(amount_out AS DOUBLE) ELSE 0 END), 0)
        FROM ledger WHERE chain = $1 AND (src = $2 OR dst = $2) AND {cond}
        """, [chain, address, asset, *args]).fetchone()
    return float(row[0]) if row else 0.0  # type: ignore[index]


def load_case(ws: Workspace, case: str) -> CaseState:
    unit, min_taint = ws.con.execute(
        "SELECT origin_unit, min_taint FROM cases WHERE case_name = ?", [case]).fetchone()  # type: ignore[misc]
    st = CaseState(case, unit, float(min_taint or 0.0))
    for c, a, s, b, t, o in ws.con.execute(
            "SELECT chain, address, asset, balance, taint, origin FROM watch_holdings "
            "WHERE case_name = ?", [case]).fetchall():
        st.holdings[(c, a, s)] = Holding(b, t, o)
    return st


def _touch(ws: Workspace, st: CaseState, key: Key, block: int, ordinal: int) -> Holding:
    """The holding, loading an untracked one's balance from the ledger; records its undo."""
    h = st.holdings.get(key)
    if key not in st.undo:
        st.undo[key] = None if h is None else Holding(h.balance, h.taint, h.origin)
    if h is None:
        h = Holding(_ledger_balance(ws, *key, block, ordinal), 0.0, 0.0)
        st.holdings[key] = h
    st.dirty.add(key)
    return h


def apply_block(ws: Workspace, st: CaseState, block: int, flows: list[dict[str, Any]],
                roles: dict[tuple[str, str], tuple[str, str | None, str | None]],
                ignored: set[tuple[str, str]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Advances the case over one block's flows (in ledger order). Returns (alerts, edges):
    flows that brought taint to a cash_out/dark address, and every flow that carried taint."""
    alerts, edges = [], []
    st.undo = {}
    for f in flows:
        chain, src, dst, asset = f["chain"], f["src"], f["dst"], f["asset"]
        dchain = f["dst_chain"] or chain
        dasset = f["dst_asset"] or asset
        if (chain, src) in ignored or (dchain, dst) in ignored or (chain, asset) in ignored:
            continue
        skey, dkey = (chain, src, asset), (dchain, dst, dasset)
        s = st.holdings.get(skey)
        d = st.holdings.get(dkey)
        if s is None and d is None:
            continue  # neither side is tracked: nothing tainted moves
        out_amt, in_amt = float(f["amount_out"]), float(f["amount_in"])
        moved = origin_moved = 0.0
        if s is not None:
            s = _touch(ws, st, skey, block, f["ordinal"])
            if s.taint > EPS and s.balance > EPS:
                frac = min(1.0, out_amt / s.balance)
                moved, origin_moved = s.taint * frac, s.origin * frac
                s.taint -= moved
                s.origin -= origin_moved
            s.balance -= out_amt
            if s.balance < 0:
                s.balance = 0.0
        role = roles.get((dchain, dst))
        moved_in = moved * (in_amt / out_amt) if out_amt > 0 else 0.0
        if origin_moved > EPS and origin_moved > st.min_taint * 1e-6:
            edges.append({**f, "taint": moved, "origin_taint": origin_moved})
        if dst == FEE_SINK or (role is not None and role[0] in STOP_ROLES):
            if role is not None and role[0] in ALERT_ROLES and origin_moved > EPS:
                alerts.append({**f, "dchain": dchain, "dasset": dasset, "taint": moved_in,
                               "origin_taint": origin_moved, "role": role[0],
                               "entity": role[1], "category": role[2]})
            continue
        if moved_in > EPS or d is not None:
            d = _touch(ws, st, dkey, block, f["ordinal"])
            d.balance += in_amt
            d.taint += moved_in
            d.origin += origin_moved
    return alerts, edges


def save(ws: Workspace, st: CaseState, block: int) -> None:
    """Writes the block's undo entries and the changed holdings (inside the caller's
    transaction)."""
    con = ws.con
    for (c, a, s), before in st.undo.items():
        con.execute("INSERT INTO watch_undo VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [st.case, block, c, a, s, before is not None,
                     None if before is None else before.balance,
                     None if before is None else before.taint,
                     None if before is None else before.origin])
    for key in st.dirty:
        h = st.holdings[key]
        con.execute("INSERT OR REPLACE INTO watch_holdings VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [st.case, *key, h.balance, h.taint, h.origin])
    st.dirty = set()
    st.undo = {}


def rollback(ws: Workspace, chain: str, after_block: int) -> None:
    """Undo every watched block above `after_block`: holdings, alerts not yet sent, case
    edges the watch added, the blocks' flows. Newest block first, so the oldest undo entry
    of a holding is the one that stays."""
    con = ws.con
    undo = con.execute(
        "SELECT case_name, block, chain, address, asset, existed, balance, taint, origin "
        "FROM watch_undo WHERE block > ? AND case_name IN (SELECT case_name FROM watch_cases "
        "WHERE chain = ?) ORDER BY block DESC", [after_block, chain]).fetchall()
    for case, _, c, a, s, existed, b, t, o in undo:
        if existed:
            con.execute("INSERT OR REPLACE INTO watch_holdings VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [case, c, a, s, b, t, o])
        else:
            con.execute("DELETE FROM watch_holdings WHERE case_name = ? AND chain = ? AND "
                        "address = ? AND asset = ?", [case, c, a, s])
    con.execute("DELETE FROM watch_undo WHERE block > ? AND case_name IN (SELECT case_name "
                "FROM watch_cases WHERE chain = ?)", [after_block, chain])
    con.execute("DELETE FROM watch_alerts WHERE chain = ? AND block > ? AND NOT emitted",
                [chain, after_block])
    con.execute("DELETE FROM case_edges WHERE chain = ? AND block > ? AND case_name IN "
                "(SELECT case_name FROM watch_cases WHERE chain = ?)",
                [chain, after_block, chain])
    for table in ("flows", "evm_logs", "superseded"):
        if table == "superseded":
            con.execute("DELETE FROM superseded WHERE chain = ? AND tx_hash NOT IN "
                        "(SELECT tx_hash FROM flows WHERE chain = ?)", [chain, chain])
        else:
            con.execute(f"DELETE FROM {table} WHERE chain = ? AND block > ?",
                        [chain, after_block])
    con.execute("DELETE FROM watch_blocks WHERE chain = ? AND block > ?", [chain, after_block])
