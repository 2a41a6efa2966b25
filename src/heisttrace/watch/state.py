"""Per-case holding state for the live watch, advanced flow by flow with the case's policy.

A trace hands on its sweep's end state (trace/state.py: `case_holdings`, `case_lots`); the
watch starts from there and moves each new flow exactly as the sweep would have:
- haircut: the outflow carries `taint * amount_out / balance` of the source's taint and
  origin value;
- poison: origin value moves as in haircut, and an outflow of a poisoned holding (within
  the case's hop limit) poisons its destination one hop further out;
- FIFO: the outflow takes the source's oldest lots first; a holding's lots are kept only
  while one of them is tainted (an all-clean queue behaves like a plain balance).
A destination with a cash_out/dark/frozen/parked role stops the taint there (an alert for
cash_out and dark), and so does a plain transfer (not a swap or bridge) into a conversion
service, as in the sweep. A holding the watch does not follow yet starts from its ledger balance,
all clean. Every change a block makes is first written to an undo log keyed by block, so a
reorganisation restores the state exactly. Amounts are base units (DOUBLE); origin value is
in the case's origin units.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from heisttrace.errors import HeisttraceError
from heisttrace.ledger.schema import FEE_SINK
from heisttrace.ledger.workspace import Workspace
from heisttrace.trace.encode import CONVERSION_KINDS, decimals_table, default_decimals
from heisttrace.trace.kernel import FIFO, POISON, SNAP

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
ALTER TABLE watch_holdings ADD COLUMN IF NOT EXISTS hops INTEGER;
ALTER TABLE watch_holdings ADD COLUMN IF NOT EXISTS lots VARCHAR;
ALTER TABLE watch_undo ADD COLUMN IF NOT EXISTS hops INTEGER;
ALTER TABLE watch_undo ADD COLUMN IF NOT EXISTS lots VARCHAR;
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
HOLDING_COLUMNS = "balance, taint, origin, hops, lots"


def ensure_tables(ws: Workspace) -> None:
    ws.con.execute(DDL)


Key = tuple[str, str, str]  # chain, address, asset
Lot = list[float]  # [amount, origin, tainted (0.0 or 1.0)]


@dataclass
class Holding:
    balance: float
    taint: float
    origin: float
    hops: int | None = None  # poison: hops from the seeds once poisoned
    lots: list[Lot] | None = None  # FIFO: oldest first, only while one of them is tainted

    def copy(self) -> Holding:
        lots = None if self.lots is None else [list(lot) for lot in self.lots]
        return Holding(self.balance, self.taint, self.origin, self.hops, lots)

    def row(self) -> list[Any]:
        return [self.balance, self.taint, self.origin, self.hops,
                None if self.lots is None else json.dumps(self.lots)]

    @staticmethod
    def of(balance: float, taint: float, origin: float, hops: int | None,
           lots: str | None) -> Holding:
        return Holding(balance, taint, origin, hops, None if lots is None else json.loads(lots))


@dataclass
class CaseState:
    """One case's holdings in memory while a batch is applied; written back at the end."""

    case: str
    origin_unit: str
    min_taint: float
    policy: str = "haircut"
    max_hops: int = 0  # poison only
    holdings: dict[Key, Holding] = field(default_factory=dict)
    undo: dict[Key, Holding | None] = field(default_factory=dict)  # before this block
    dirty: set[Key] = field(default_factory=set)


def init_case(ws: Workspace, case: str, chain: str, start_block: int) -> None:
    """First watch of `case`: the trace's end state becomes the holding state, in base units."""
    con = ws.con
    if con.execute("SELECT 1 FROM watch_cases WHERE case_name = ?", [case]).fetchone():
        return
    require_state(ws, case)
    # whole units (as the trace stores them) -> base units; the queue as JSON
    con.register("_watch_scale", decimals_table(ws))
    try:
        con.execute(
            f"""
            INSERT INTO watch_holdings (case_name, chain, address, asset, {HOLDING_COLUMNS})
            WITH lots AS (
                SELECT chain, address, asset,
                       to_json(list([amount * x.scale, origin, tainted::DOUBLE] ORDER BY seq))
                           ::VARCHAR AS lots
                FROM case_lots JOIN _watch_scale x USING (chain, asset)
                WHERE case_name = $1 GROUP BY ALL
            )
            SELECT $1, h.chain, h.address, h.asset, h.balance * x.scale, h.taint * x.scale,
                   h.origin, h.hops, l.lots
            FROM case_holdings h JOIN _watch_scale x USING (chain, asset)
            LEFT JOIN lots l USING (chain, address, asset)
            WHERE h.case_name = $1
            """, [case])
    finally:
        con.unregister("_watch_scale")
    con.execute("INSERT INTO watch_cases VALUES (?, ?, ?)", [case, chain, start_block])


def require_state(ws: Workspace, case: str) -> None:
    """Raises the error that asks to re-trace a case stored without the sweep's end state."""
    if not has_state(ws, case):
        raise HeisttraceError(
            f"case {case!r} was traced by an older heisttrace that did not keep the state the "
            f"watch continues from; re-run `heisttrace trace --case {case} ...` first")


def has_state(ws: Workspace, case: str) -> bool:
    """Whether `trace` stored the sweep's end state for `case` (older versions did not)."""
    tables = {r[0] for r in ws.con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    return "case_state" in tables and ws.con.execute(
        "SELECT 1 FROM case_state WHERE case_name = ?", [case]).fetchone() is not None


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
    return max(float(row[0]), 0.0) if row else 0.0  # type: ignore[index]


class LedgerBalances:
    """Ledger balances of the holdings a batch of blocks may start to follow, from one query.

    A holding the watch starts to follow needs its balance just before the flow that first
    reaches it. Asking the ledger once per new holding scanned every flow each time (no index
    fits `src = a OR dst = a`): a block spreading taint to a hundred wallets cost a hundred
    scans. Here every holding the batch's flows pay is asked for at once, up to the batch's
    first block, and the batch's own flows (`flows`: the ledger rows of `chain` in the batch,
    in ledger order) are added in memory. The result equals `_ledger_balance`, up to the order
    in which doubles are summed.
    """

    def __init__(self, ws: Workspace, chain: str, first_block: int,
                 flows: list[dict[str, Any]]) -> None:
        self.ws, self.chain, self.first = ws, chain, first_block
        self.flows = flows
        # the holdings the batch pays: only these can start to be followed in it
        self.keys = {(chain, f["dst"], f["dst_asset"] or f["asset"]) for f in flows
                     if (f["dst_chain"] or f["chain"]) == chain}
        self._base: dict[Key, tuple[float, float]] | None = None
        self._events: dict[Key, list[tuple[int, int, float, float]]] = {}

    def _load(self) -> dict[Key, tuple[float, float]]:
        chain, keys = self.chain, self.keys
        for f in self.flows:  # (block, ordinal, in, out), in ledger order
            if f["chain"] != chain:
                continue
            ev = (int(f["block"]), int(f["ordinal"]))
            if (f["dst_chain"] or chain) == chain:
                k = (chain, f["dst"], f["dst_asset"] or f["asset"])
                if k in keys:
                    self._events.setdefault(k, []).append((*ev, float(f["amount_in"]), 0.0))
            k = (chain, f["src"], f["asset"])
            if k in keys:
                self._events.setdefault(k, []).append((*ev, 0.0, float(f["amount_out"])))
        base: dict[Key, tuple[float, float]] = {}
        if keys:
            con = self.ws.con
            con.register("_watch_keys", pa.table({
                "address": [k[1] for k in keys], "asset": [k[2] for k in keys]}))
            try:
                rows = con.execute(
                    """
                    SELECT k.address, k.asset, sum(CAST(g.amount_in AS DOUBLE)), 0.0
                    FROM ledger g JOIN _watch_keys k
                      ON g.dst = k.address AND coalesce(g.dst_asset, g.asset) = k.asset
                    WHERE g.chain = $1 AND coalesce(g.dst_chain, g.chain) = $1
                      AND g.block < $2
                    GROUP BY ALL
                    UNION ALL
                    SELECT k.address, k.asset, 0.0, sum(CAST(g.amount_out AS DOUBLE))
                    FROM ledger g JOIN _watch_keys k ON g.src = k.address AND g.asset = k.asset
                    WHERE g.chain = $1 AND g.block < $2
                    GROUP BY ALL
                    """, [chain, self.first]).fetchall()
            finally:
                con.unregister("_watch_keys")
            for address, asset, got, gave in rows:
                old = base.get((chain, address, asset), (0.0, 0.0))
                base[(chain, address, asset)] = (old[0] + got, old[1] + gave)
        return base

    def balance(self, key: Key, block: int, ordinal: int) -> float:
        """In minus out of `key` before (block, ordinal), as `_ledger_balance` computes it."""
        if key not in self.keys or block < self.first:
            return _ledger_balance(self.ws, *key, block, ordinal)
        if self._base is None:
            self._base = self._load()
        got, gave = self._base.get(key, (0.0, 0.0))
        for b, o, i, out in self._events.get(key, ()):
            if (b, o) >= (block, ordinal):
                break
            got += i
            gave += out
        return max(got - gave, 0.0)


def load_case(ws: Workspace, case: str) -> CaseState:
    """A watched case (init_case made sure its state is stored) with its holdings."""
    policy, unit, min_taint, max_hops = ws.con.execute(
        "SELECT policy, origin_unit, min_taint, max_hops FROM cases JOIN case_state "
        "USING (case_name) WHERE case_name = ?", [case]).fetchone()  # type: ignore[misc]
    st = CaseState(case, unit, float(min_taint or 0.0), policy, int(max_hops or 0))
    for c, a, s, *values in ws.con.execute(
            f"SELECT chain, address, asset, {HOLDING_COLUMNS} FROM watch_holdings "
            "WHERE case_name = ?", [case]).fetchall():
        st.holdings[(c, a, s)] = Holding.of(*values)
    return st


def _touch(ws: Workspace, st: CaseState, key: Key, block: int, ordinal: int,
           balances: LedgerBalances | None) -> Holding:
    """The holding, loading an untracked one's balance from the ledger; records its undo."""
    h = st.holdings.get(key)
    if key not in st.undo:
        st.undo[key] = None if h is None else h.copy()
    if h is None:
        h = Holding(balances.balance(key, block, ordinal) if balances is not None
                    else _ledger_balance(ws, *key, block, ordinal), 0.0, 0.0)
        st.holdings[key] = h
    st.dirty.add(key)
    return h


def _take_haircut(s: Holding, a: float) -> tuple[float, float]:
    """Takes `a` out of `s`; returns the (taint, origin) it carries."""
    bal = s.balance
    if a >= bal * (1.0 - SNAP):
        moved, origin = s.taint, s.origin
        s.balance = s.taint = s.origin = 0.0
        return moved, origin
    f = a / bal
    moved, origin = s.taint * f, s.origin * f
    s.taint -= moved
    s.origin -= origin
    s.balance = bal - a
    return moved, origin


def _take_fifo(s: Holding, a: float) -> list[Lot]:
    """Takes `a` out of `s`, oldest lots first; an outflow beyond the known balance takes
    the missing history (clean, older than anything recorded) first."""
    bal = s.balance
    drain = a >= bal * (1.0 - SNAP)
    s.balance = 0.0 if drain else bal - a
    if s.lots is None:
        return [[a, 0.0, 0.0]]
    pieces: list[Lot] = []
    rem = a
    if drain and a > bal:
        pieces.append([a - bal, 0.0, 0.0])
        rem = bal
    lots, k = s.lots, 0
    while k < len(lots) and (drain or rem > 0.0):
        amount, origin, tainted = lots[k]
        if drain or rem >= amount * (1.0 - SNAP):
            pieces.append([amount, origin, tainted])
            rem -= amount
            k += 1
        else:
            part = origin * rem / amount
            pieces.append([rem, part, tainted])
            lots[k] = [amount - rem, origin - part, tainted]
            rem = 0.0
    del lots[:k]
    if not drain and rem > 0.0:
        pieces.append([rem, 0.0, 0.0])
    _settle(s)
    return pieces


def _put_fifo(d: Holding, pieces: list[Lot], r: float, before: float) -> None:
    """Appends the pieces (scaled to the destination's units) after what `d` held."""
    if d.lots is None:
        if not any(p[2] for p in pieces):
            return  # all clean into an all-clean holding: the balance says it all
        d.lots = [[before, 0.0, 0.0]] if before > 0.0 else []
    for amount, origin, tainted in pieces:
        if not tainted and d.lots and not d.lots[-1][2]:
            d.lots[-1][0] += amount * r
        else:
            d.lots.append([amount * r, origin, tainted])
    _settle(d)


def _settle(h: Holding) -> None:
    """Taint and origin are the sums of the tainted lots; a queue with none is dropped."""
    tainted = [lot for lot in h.lots or () if lot[2]]
    h.taint = sum(lot[0] for lot in tainted)
    h.origin = sum(lot[1] for lot in tainted)
    if not tainted:
        h.lots = None


def apply_block(ws: Workspace, st: CaseState, block: int, flows: list[dict[str, Any]],
                roles: dict[tuple[str, str], tuple[str, str | None, str | None]],
                ignored: set[tuple[str, str]], balances: LedgerBalances | None = None,
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Advances the case over one block's flows (in ledger order). Returns (alerts, edges):
    flows that brought taint to a cash_out/dark address, and every flow that carried taint.
    `balances` answers the ledger balance of newly followed holdings for the whole batch
    (else each is asked of the ledger on its own)."""
    alerts, edges = [], []
    st.undo = {}
    fifo, poison = st.policy == FIFO, st.policy == POISON
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
            continue  # neither side is followed: nothing tainted moves
        out_amt, in_amt = float(f["amount_out"]), float(f["amount_in"])
        if out_amt <= 0.0 and in_amt <= 0.0:
            continue  # zero-value flows carry nothing (address poisoning, spam)
        r = in_amt / out_amt if out_amt > 0.0 else 1.0
        moved = origin_moved = 0.0
        pieces: list[Lot] = [[out_amt if out_amt > 0.0 else in_amt, 0.0, 0.0]]
        hops: int | None = None
        if s is not None and out_amt > 0.0:
            s = _touch(ws, st, skey, block, f["ordinal"], balances)
            if fifo:
                pieces = _take_fifo(s, out_amt)
                moved = sum(p[0] for p in pieces if p[2])
                origin_moved = sum(p[1] for p in pieces if p[2])
            else:
                moved, origin_moved = _take_haircut(s, out_amt)
            if poison and s.hops is not None and s.hops < st.max_hops:
                hops = s.hops + 1
        moved_in = moved * r if out_amt > 0.0 else 0.0
        poisoned = hops is not None
        if poisoned or (origin_moved > EPS and origin_moved > st.min_taint * 1e-6):
            edges.append({**f, "taint": out_amt if poisoned else moved,
                          "origin_taint": origin_moved})
        role = roles.get((dchain, dst))
        if dst == FEE_SINK or (role is not None and (
                role[0] in STOP_ROLES
                or (role[0] == "conversion" and f["kind"] not in CONVERSION_KINDS))):
            if role is not None and role[0] in ALERT_ROLES and (origin_moved > EPS or poisoned):
                alerts.append({**f, "dchain": dchain, "dasset": dasset,
                               "taint": in_amt if poisoned else moved_in,
                               "origin_taint": origin_moved, "role": role[0],
                               "entity": role[1], "category": role[2]})
            continue
        if moved_in > EPS or origin_moved > EPS or poisoned or d is not None:
            d = _touch(ws, st, dkey, block, f["ordinal"], balances)
            before = d.balance
            d.balance = before + in_amt
            if fifo:
                _put_fifo(d, pieces, r, before)
            else:
                d.taint += moved_in
                d.origin += origin_moved
            if hops is not None and (d.hops is None or d.hops > hops):
                d.hops = hops
    return alerts, edges


def save(ws: Workspace, st: CaseState, block: int) -> None:
    """Writes the block's undo entries and the changed holdings (inside the caller's
    transaction)."""
    con = ws.con
    if not st.undo and not st.dirty:
        return
    con.executemany(
        "INSERT INTO watch_undo (case_name, block, chain, address, asset, existed, "
        f"{HOLDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[st.case, block, *key, before is not None,
          *(before.row() if before is not None else [None] * 5)]
         for key, before in st.undo.items()])
    con.executemany(
        f"INSERT OR REPLACE INTO watch_holdings (case_name, chain, address, asset, "
        f"{HOLDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[st.case, *key, *st.holdings[key].row()] for key in st.dirty])
    st.dirty = set()
    st.undo = {}


def rollback(ws: Workspace, chain: str, after_block: int) -> None:
    """Undo every watched block above `after_block`: holdings, alerts not yet sent, case
    edges the watch added, the blocks' flows. Newest block first, so the oldest undo entry
    of a holding is the one that stays."""
    con = ws.con
    undo = con.execute(
        f"SELECT case_name, block, chain, address, asset, existed, {HOLDING_COLUMNS} "
        "FROM watch_undo WHERE block > ? AND case_name IN (SELECT case_name FROM watch_cases "
        "WHERE chain = ?) ORDER BY block DESC", [after_block, chain]).fetchall()
    for case, _, c, a, s, existed, *values in undo:
        if existed:
            con.execute(
                f"INSERT OR REPLACE INTO watch_holdings (case_name, chain, address, asset, "
                f"{HOLDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [case, c, a, s, *values])
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
        elif table == "flows":
            ws.delete_flows("chain = ? AND block > ?", [chain, after_block])
        else:
            con.execute(f"DELETE FROM {table} WHERE chain = ? AND block > ?",
                        [chain, after_block])
    con.execute("DELETE FROM watch_blocks WHERE chain = ? AND block > ?", [chain, after_block])
