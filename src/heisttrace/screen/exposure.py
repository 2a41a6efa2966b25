"""Exposure of one address to every traced case, answered from an in-memory index.

A compliance desk asks "is this deposit dirty?" thousands of times a second, so the case
tables are aggregated once per case (address -> taint received, share, first/last time,
heaviest incoming edge, taint still held) into numpy columns plus a dict from address to row.
A direct lookup is then a dict hit and a few array reads, without touching DuckDB. An address
with no direct exposure costs a bounded walk back over the ledger's sender graph, also in
memory (screen/senders.py; <= MAX_HOPS hops, <= FRONTIER addresses per hop), to the nearest
tainted holding it received from; an address the ledger never paid is answered at once.
Risk rules are in docs/screening.md; they live in `risk_level` only.
"""

from __future__ import annotations

import gc
import threading
import time as _time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.compute as pc

from heisttrace.ledger.workspace import Workspace
from heisttrace.screen.addresses import normalize
from heisttrace.screen.senders import KEY_SQL, Graph, updated_graph
from heisttrace.trace.encode import decimals_table  # the trace's whole-unit scaling

MAX_HOPS = 3  # indirect exposure further out than this is noise
FRONTIER = 500  # addresses followed back per hop, most-received first
MAX_PATH = 12  # hops shown in a top path
SEVERE_SHARE = 0.5
HIGH_SHARE = 0.1
RISKS = ("none", "low", "medium", "high", "severe")


def risk_level(kind: str, share: float | None, hops: int, below_threshold: bool) -> str:
    """The documented rules (docs/screening.md): the share of what the address received that
    is tainted decides for direct exposure, the distance for indirect exposure."""
    if kind == "direct":
        if below_threshold:
            return "low"
        s = share or 0.0
        if s >= SEVERE_SHARE:
            return "severe"
        if s >= HIGH_SHARE:
            return "high"
        return "medium"
    if kind == "indirect":
        return "medium" if hops == 1 else "low"
    return "none"


@dataclass
class Exposure:
    """One case's answer for one address. Amounts are in the case's origin units."""

    case: str
    chain: str
    address: str
    kind: str  # direct | indirect | none
    risk: str
    hops: int | None = None  # 0 direct, 1..MAX_HOPS indirect
    origin_unit: str | None = None
    taint_received: float = 0.0
    received: float | None = None  # everything the address received, priced like the taint
    share: float | None = None
    first_time: int | None = None
    last_time: int | None = None
    holds: float = 0.0  # taint the case says is still at (or ended at) this address
    bucket: str | None = None
    entity: str | None = None
    via: str | None = None  # indirect: the nearest tainted address it received from
    path: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies every path hop, a third of a request's cost
        return {"case": self.case, "chain": self.chain, "address": self.address,
                "kind": self.kind, "risk": self.risk, "hops": self.hops,
                "origin_unit": self.origin_unit, "taint_received": self.taint_received,
                "received": self.received, "share": self.share,
                "first_time": self.first_time, "last_time": self.last_time,
                "holds": self.holds, "bucket": self.bucket, "entity": self.entity,
                "via": self.via, "path": [dict(h) for h in self.path]}


_INDEX_SQL = """
WITH e AS (
    SELECT coalesce(dst_chain, chain) AS chain, dst AS address, src, chain AS src_chain,
           tx_hash, time, origin_taint, taint, amount, coalesce(dst_asset, asset) AS asset
    FROM case_edges WHERE case_name = $case AND origin_taint > 0
),
price AS (
    SELECT chain, asset, sum(origin_taint) / nullif(sum(taint), 0) AS p FROM e GROUP BY ALL
),
direct AS (
    SELECT e.chain, e.address, sum(e.origin_taint) AS t, min(e.time) AS f, max(e.time) AS l,
           arg_max(e.src, e.origin_taint) AS top_src,
           arg_max(e.src_chain, e.origin_taint) AS top_src_chain,
           arg_max(e.tx_hash, e.origin_taint) AS top_tx,
           arg_max(e.time, e.origin_taint) AS top_time,
           max(e.origin_taint) AS top_w,
           sum(e.amount * coalesce(p.p, 0)) AS edge_received
    FROM e LEFT JOIN price p USING (chain, asset) GROUP BY ALL
),
held AS (
    SELECT chain, address, sum(origin_amount) AS h, arg_max(bucket, origin_amount) AS bucket,
           any_value(entity) AS entity, min(first_time) AS f, max(last_time) AS l
    FROM case_sinks WHERE case_name = $case AND origin_amount > 0 GROUP BY ALL
),
recv AS (
    SELECT coalesce(g.dst_chain, g.chain) AS chain, g.dst AS address,
           sum(CAST(g.amount_in AS DOUBLE) / d.scale * p.p) AS r
    FROM ledger g
    JOIN direct x ON x.chain = coalesce(g.dst_chain, g.chain) AND x.address = g.dst
    JOIN _screen_scale d ON d.chain = coalesce(g.dst_chain, g.chain)
                        AND d.asset = coalesce(g.dst_asset, g.asset)
    JOIN price p ON p.chain = d.chain AND p.asset = d.asset
    GROUP BY ALL
)
SELECT coalesce(x.chain, h.chain) AS chain, coalesce(x.address, h.address) AS address,
       coalesce(x.t, 0) AS t, greatest(coalesce(x.edge_received, 0), coalesce(r.r, 0)) AS recv,
       coalesce(x.f, h.f) AS f, coalesce(x.l, h.l) AS l, x.top_src, x.top_src_chain, x.top_tx,
       x.top_time, coalesce(x.top_w, 0) AS top_w, coalesce(h.h, 0) AS held, h.bucket, h.entity
FROM direct x
FULL OUTER JOIN held h ON h.chain = x.chain AND h.address = x.address
LEFT JOIN recv r ON r.chain = x.chain AND r.address = x.address
"""


class _Col:
    """Element access to an Arrow array as Python values, one at a time."""

    __slots__ = ("arr",)

    def __init__(self, arr: Any) -> None:
        self.arr = arr

    def __getitem__(self, i: int) -> Any:
        return self.arr[i].as_py()


class CaseIndex:
    """One case's exposure table: columns as numpy arrays, `row` maps chain+address to a row."""

    def __init__(self, ws: Workspace, case: str, meta: tuple[Any, ...]) -> None:
        self.case = case
        self.created_at, self.origin_unit, self.min_taint, seeds = meta
        self.seeds = list(seeds or [])
        con = ws.con
        con.register("_screen_scale", decimals_table(ws))
        try:
            tbl = con.execute(_INDEX_SQL, {"case": case}).fetch_arrow_table()
        finally:
            con.unregister("_screen_scale")
        # Only the lookup dict is made of Python objects; the columns stay Arrow/numpy, so a
        # million-address case adds ~2M objects for the garbage collector, not ~15M.
        # The keys are joined by Arrow and the dict made by zip (a Python loop formatting a
        # million f-strings cost a second); the string columns stay chunked (combining them
        # copied every string for nothing: a row's value is found in its chunk).
        keys = pc.binary_join_element_wise(tbl.column("chain"), tbl.column("address"), "\x00")
        self.row = dict(zip(keys.to_pylist(), range(tbl.num_rows)))
        del keys
        col = {name: tbl.column(name) for name in tbl.column_names}
        self.chain, self.address = _Col(col["chain"]), _Col(col["address"])
        self.taint = col["t"].to_numpy(zero_copy_only=False)
        self.recv = col["recv"].to_numpy(zero_copy_only=False)
        self.first, self.last = _Col(col["f"]), _Col(col["l"])
        self.top_src, self.top_src_chain = _Col(col["top_src"]), _Col(col["top_src_chain"])
        self.top_tx, self.top_time = _Col(col["top_tx"]), _Col(col["top_time"])
        self.top_w = col["top_w"].to_numpy(zero_copy_only=False)
        self.held = col["held"].to_numpy(zero_copy_only=False)
        self.bucket, self.entity = _Col(col["bucket"]), _Col(col["entity"])

    def __len__(self) -> int:
        return len(self.row)

    def lookup(self, chain: str, address: str) -> int | None:
        return self.row.get(f"{chain}\x00{address}")

    def top_path(self, i: int) -> list[dict[str, Any]]:
        """The heaviest incoming taint edge, then that source's heaviest, back to the seeds
        (or MAX_PATH hops): a cheap stand-in for the widest path, exact when taint does not
        merge from several sources."""
        hops: list[dict[str, Any]] = []
        seen = {i}
        while i is not None and self.top_src[i] is not None and len(hops) < MAX_PATH:
            hops.append({"src": self.top_src[i], "dst": self.address[i],
                         "chain": self.chain[i], "tx_hash": self.top_tx[i],
                         "time": self.top_time[i], "origin_taint": float(self.top_w[i])})
            j = self.lookup(self.top_src_chain[i], self.top_src[i])
            if j is None or j in seen:
                break
            seen.add(j)
            i = j
        return hops[::-1]

    def direct(self, chain: str, address: str, i: int) -> Exposure:
        t = float(self.taint[i])
        held = float(self.held[i])
        got = max(float(self.recv[i]), t)
        share = (t / got) if got > 0 else (1.0 if held > 0 else None)
        below = max(t, held) <= (self.min_taint or 0.0)
        return Exposure(
            case=self.case, chain=chain, address=address, kind="direct",
            risk=risk_level("direct", share, 0, below), hops=0, origin_unit=self.origin_unit,
            taint_received=t, received=got if got > 0 else None, share=share,
            first_time=self.first[i], last_time=self.last[i], holds=held,
            bucket=self.bucket[i], entity=self.entity[i], path=self.top_path(i),
        )


class ExposureIndex:
    """Every case's index and the ledger's sender graph, built on first use. A case is rebuilt
    when its `created_at` changes (a re-trace or a watch update); the sender graph takes
    appended flows as a layer and is rebuilt after anything else (senders.updated_graph).
    `refresh_every` bounds how often that is checked."""

    def __init__(self, refresh_every: float = 2.0) -> None:
        self.cases: dict[str, CaseIndex] = {}
        self.graph: Graph | None = None
        self.graph_key: tuple[Any, ...] | None = None  # the ledger state the graph shows
        self._base_key: tuple[Any, ...] | None = None  # the state its base was built at
        self.refresh_every = refresh_every
        self._built = False  # a whole refresh has completed: cases and graph are there
        self._checked = -1e18
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._built

    def due(self) -> bool:
        return _time.monotonic() - self._checked >= self.refresh_every

    def refresh(self, ws: Workspace, force: bool = False) -> None:
        """Brings the index up to date with the workspace. Readers never see a half-built
        state: new tables replace old ones by assignment, so a server can keep answering
        from the previous index while this runs in a thread."""
        if not force and not self.due():
            return
        with self._lock:
            key = tuple(ws.con.execute(KEY_SQL).fetchone() or ())
            graph, base_key = self.graph, self._base_key
            if key != self.graph_key or graph is None:
                graph, base_key = updated_graph(ws, graph, base_key, key)
            if not ws.con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                                  "table_name = 'case_edges'").fetchone()[0]:  # type: ignore[index]
                self.graph, self.graph_key, self._base_key = graph, key, base_key
                self.cases, self._checked, self._built = {}, _time.monotonic(), True
                return
            metas = {r[0]: r[1:] for r in ws.con.execute(
                "SELECT case_name, created_at, origin_unit, min_taint, seeds FROM cases "
                "ORDER BY case_name").fetchall()}
            cases = {}
            for name, meta in metas.items():
                old = self.cases.get(name)
                cases[name] = old if old is not None and old.created_at == meta[0] \
                    else CaseIndex(ws, name, meta)
            if any(cases[n] is not self.cases.get(n) for n in cases):
                # long-lived: keep the collector from re-scanning millions of keys on every
                # full cycle (no gc.collect() first: it would hold the GIL for a second)
                gc.freeze()
            # graph and cases change together: a new flow in the graph answered with the old
            # case tables would show a freshly tainted address as only near the taint
            self.graph, self.graph_key, self._base_key = graph, key, base_key
            self.cases = cases
            self._checked, self._built = _time.monotonic(), True

    def direct(self, chain: str, address: str) -> tuple[list[Exposure], list[CaseIndex]]:
        """The direct answers (no DuckDB) and the cases that still need an indirect walk."""
        found, missing = [], []
        for idx in self.cases.values():
            i = idx.lookup(chain, address)
            if i is None:
                missing.append(idx)
            else:
                found.append(idx.direct(chain, address, i))
        return found, missing

    def answer(self, chain: str, address: str) -> list[Exposure]:
        """Every case's exposure of an already normalized address, from memory only."""
        found, missing = self.direct(chain, address)
        walked = walk_back(self.graph, chain, address, missing) \
            if missing and self.graph is not None else {}
        return combine(chain, address, found, missing, walked)


def walk_back(graph: Graph, chain: str, address: str,
              cases: list[CaseIndex]) -> dict[str, Exposure]:
    """Breadth-first over the ledger's sender graph, against the flow direction: the first hop
    at which a case's tainted address appears is that case's indirect exposure."""
    out: dict[str, Exposure] = {}
    frontier = [address]
    parent: dict[str, tuple[str, int]] = {}  # address -> (child, sender-graph row)
    seen = {address}
    for hop in range(1, MAX_HOPS + 1):
        nxt: list[str] = []
        for _, src, dst, row in graph.senders(chain, frontier):
            if src in seen:
                continue
            seen.add(src)
            parent[src] = (dst, row)
            nxt.append(src)
        for idx in cases:
            if idx.case in out:
                continue
            hits = [s for s in nxt if idx.lookup(chain, s) is not None]
            if not hits:
                continue
            best = max(hits, key=lambda s: float(idx.taint[idx.lookup(chain, s)]))  # type: ignore[index]
            j = idx.lookup(chain, best)
            path = idx.top_path(j)  # type: ignore[arg-type]
            node = best
            while node != address:
                child, row = parent[node]
                tx, t = graph.edge(row)
                path.append({"src": node, "dst": child, "chain": chain, "tx_hash": tx,
                             "time": t, "origin_taint": 0.0})
                node = child
            out[idx.case] = Exposure(
                case=idx.case, chain=chain, address=address, kind="indirect",
                risk=risk_level("indirect", None, hop, False), hops=hop,
                origin_unit=idx.origin_unit, via=best, path=path,
            )
        if len(out) == len(cases):
            break
        frontier = nxt[:FRONTIER]
        if not frontier:
            break
    return out


def screen(ws: Workspace, chain: str, address: str,
           index: ExposureIndex | None = None) -> list[Exposure]:
    """The address's exposure to every case in the workspace, one entry per case (kind
    `none` where there is none). Raises InputError for a malformed chain or address."""
    chain, address = normalize(chain, address)
    index = index if index is not None else _default_index(ws)
    index.refresh(ws)
    return index.answer(chain, address)


def combine(chain: str, address: str, found: list[Exposure], missing: list[CaseIndex],
            walked: dict[str, Exposure]) -> list[Exposure]:
    """Direct answers plus the walk's, `none` for the rest, worst risk first."""
    for idx in missing:
        found.append(walked.get(idx.case) or Exposure(
            case=idx.case, chain=chain, address=address, kind="none", risk="none",
            origin_unit=idx.origin_unit))
    found.sort(key=lambda e: (-RISKS.index(e.risk), -e.taint_received, e.case))
    return found


def screen_many(ws: Workspace, items: list[tuple[str, str]],
                index: ExposureIndex | None = None) -> list[dict[str, Any]]:
    """Batch form: one summary per (chain, address); a malformed one gets an `error` entry
    instead of failing the whole batch."""
    from heisttrace.errors import InputError

    out = []
    for chain, address in items:
        try:
            exps = screen(ws, chain, address, index)
        except InputError as exc:
            out.append({"chain": chain, "address": address, "error": str(exc)})
            continue
        out.append(summarize(exps, chain, address))
    return out


def summarize(exps: list[Exposure], chain: str, address: str) -> dict[str, Any]:
    """The answer for one address: the worst risk over cases plus each case's exposure."""
    risk = max((e.risk for e in exps), key=RISKS.index, default="none")
    return {"chain": exps[0].chain if exps else chain,
            "address": exps[0].address if exps else address,
            "risk": risk, "exposures": [e.as_dict() for e in exps]}


_INDEXES: weakref.WeakKeyDictionary[Workspace, ExposureIndex] = weakref.WeakKeyDictionary()


def _default_index(ws: Workspace) -> ExposureIndex:
    """One index per open workspace object (weakly held: a closed, dropped workspace frees
    it, and a new one at the same id() never inherits a stale index)."""
    if ws not in _INDEXES:
        _INDEXES[ws] = ExposureIndex()
    return _INDEXES[ws]
