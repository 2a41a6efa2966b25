"""Everything the report, the API and the web pages show, read from the case tables in one place.

The HTML report, the REST API and the pages all call these functions, so a number on a page,
in the API and in the mailed report is the same number. Inputs are the trace engine's tables
(`cases`, `case_sinks`, `case_edges`) plus `labels` and `flows`; nothing here writes.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from heisttrace.errors import HeisttraceError
from heisttrace.ledger.schema import NATIVE_ASSETS
from heisttrace.ledger.workspace import Workspace

BUCKETS: tuple[str, ...] = (
    "cashed_out", "dark", "bridged_untraced", "parked", "frozen", "fees", "dormant",
    "below_threshold",
)
BUCKET_TITLES: dict[str, str] = {
    "cashed_out": "cashed out", "dark": "went dark", "bridged_untraced": "bridged, untraced",
    "parked": "parked", "frozen": "frozen", "fees": "fees", "dormant": "dormant",
    "below_threshold": "below threshold",
}
CONVERSION_KINDS = ("swap", "bridge")
# Decimals of native coins; tokens come from the `tokens` table.
_NATIVE_DECIMALS = {"BTC": 8, "LTC": 8, "DOGE": 8, "BCH": 8}


class CaseNotFound(HeisttraceError):
    """The case name is not in the workspace's `cases` table."""


# -- small helpers ------------------------------------------------------------------------------
def _has_table(ws: Workspace, name: str) -> bool:
    row = ws.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])


def _rows(ws: Workspace, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = ws.con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def iso(ts: Any) -> str | None:
    """Unix seconds (or a timestamp) as an ISO-8601 UTC string, for tables and CSV."""
    if ts is None:
        return None
    if isinstance(ts, datetime):
        return ts.replace(tzinfo=ts.tzinfo or UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def decimals_of(ws: Workspace, chain: str, asset: str) -> int | None:
    """How many decimals `asset` has: native coins by name, tokens from the `tokens` table."""
    if asset in _NATIVE_DECIMALS:
        return _NATIVE_DECIMALS[asset]
    if asset in set(NATIVE_ASSETS.values()) or not asset.startswith("0x"):
        return 18
    row = ws.con.execute(
        "SELECT decimals FROM tokens WHERE chain = ? AND address = ?", [chain, asset]
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def asset_symbol(ws: Workspace, chain: str, asset: str) -> str:
    if not asset.startswith("0x"):
        return asset
    row = ws.con.execute(
        "SELECT symbol FROM tokens WHERE chain = ? AND address = ?", [chain, asset]
    ).fetchone()
    return str(row[0]) if row and row[0] else asset


def human_units(amount: Any, decimals: int | None) -> str:
    """An amount in whole units: floats are whole units already (trace/store.py keeps holding
    units); integer text is exact base units, divided without float rounding."""
    if amount is None:
        return ""
    if isinstance(amount, float):  # the engine stores floats in whole (holding) units
        return _whole_text(amount)
    text = str(amount).split(".")[0]
    if decimals is None or not text.lstrip("-").isdigit():
        return text
    neg, digits = text.startswith("-"), text.lstrip("-").rjust(decimals + 1, "0")
    whole, frac = digits[: len(digits) - decimals] if decimals else digits, (
        digits[len(digits) - decimals:] if decimals else "")
    frac = frac.rstrip("0")
    return ("-" if neg else "") + whole + ("." + frac if frac else "")


def _whole_text(v: float) -> str:
    return f"{v:.8f}".rstrip("0").rstrip(".") or "0"


def _units_text(v: Any) -> str:
    """An edge's amount as text: whole units when the store kept a float (the engine does),
    else the stored text as it is."""
    if v is None:
        return ""
    return _whole_text(v) if isinstance(v, float) else str(v)


def round2(x: float | None) -> float:
    """Origin amounts are shown with two decimals everywhere; the API returns the same."""
    return round(float(x or 0.0), 2)


# -- cases ----------------------------------------------------------------------------------------
def list_cases(ws: Workspace) -> list[dict[str, Any]]:
    if not _has_table(ws, "cases"):
        return []
    return [_case_row(r) for r in _rows(ws, "SELECT * FROM cases ORDER BY case_name")]


def _case_row(row: dict[str, Any]) -> dict[str, Any]:
    seeds = row.get("seeds")
    if isinstance(seeds, str):
        try:
            seeds = json.loads(seeds)
        except ValueError:
            pass
    created = row.get("created_at")
    return {
        "case": row["case_name"], "policy": row.get("policy"), "seeds": seeds,
        "until": row.get("until") if not isinstance(row.get("until"), datetime)
        else iso(row.get("until")),
        "min_taint": row.get("min_taint"), "origin_unit": row.get("origin_unit") or "units",
        "stolen": round2(row.get("stolen")),
        "created_at": iso(created) if isinstance(created, datetime) else created,
    }


def get_case(ws: Workspace, case: str) -> dict[str, Any]:
    if _has_table(ws, "cases"):
        rows = _rows(ws, "SELECT * FROM cases WHERE case_name = ?", [case])
        if rows:
            return _case_row(rows[0])
    raise CaseNotFound(f"no case named {case!r} in this workspace")


# -- the headline -------------------------------------------------------------------------------
def breakdown(ws: Workspace, case: str) -> dict[str, Any]:
    """Per bucket: origin amount and share of the stolen total (the "77% cashed out" view)."""
    info = get_case(ws, case)
    sums = dict(ws.con.execute(
        "SELECT bucket, sum(CAST(origin_amount AS DOUBLE)) FROM case_sinks "
        "WHERE case_name = ? GROUP BY bucket", [case]).fetchall())
    stolen = float(info["stolen"]) or sum(sums.values()) or 1.0
    buckets = [
        {"bucket": b, "title": BUCKET_TITLES[b], "amount": round2(sums.get(b, 0.0)),
         "share": round(100.0 * float(sums.get(b, 0.0)) / stolen, 2)}
        for b in BUCKETS
    ]
    for extra in sorted(set(sums) - set(BUCKETS)):  # engine added a bucket: still show it
        buckets.append({"bucket": extra, "title": extra, "amount": round2(sums[extra]),
                        "share": round(100.0 * float(sums[extra]) / stolen, 2)})
    accounted = sum(float(v) for v in sums.values())
    return {"case": case, "origin_unit": info["origin_unit"], "stolen": info["stolen"],
            "accounted": round2(accounted), "buckets": buckets}


# -- sink lists -------------------------------------------------------------------------------
SINK_COLUMNS = ("bucket", "chain", "address", "entity", "asset", "symbol", "amount",
                "origin_amount", "share", "first_time", "last_time")


def sinks(ws: Workspace, case: str, bucket: str | None = None) -> list[dict[str, Any]]:
    """One row per (bucket, chain, address, asset), biggest first, amounts in whole units."""
    info = get_case(ws, case)
    stolen = float(info["stolen"]) or 1.0
    sql = "SELECT * FROM case_sinks WHERE case_name = ?"
    params: list[Any] = [case]
    if bucket:
        sql += " AND bucket = ?"
        params.append(bucket)
    sql += " ORDER BY CAST(origin_amount AS DOUBLE) DESC, chain, address, asset"
    out = []
    for r in _rows(ws, sql, params):
        out.append({
            "bucket": r["bucket"], "chain": r["chain"], "address": r["address"],
            "entity": r.get("entity"), "asset": r["asset"],
            "symbol": asset_symbol(ws, r["chain"], r["asset"]),
            "amount": human_units(r.get("amount"), decimals_of(ws, r["chain"], r["asset"])),
            "origin_amount": round2(r.get("origin_amount")),
            "share": round(100.0 * float(r.get("origin_amount") or 0) / stolen, 4),
            "first_time": iso(r.get("first_time")), "last_time": iso(r.get("last_time")),
        })
    return out


FREEZE_COLUMNS = (*SINK_COLUMNS, "category", "hops", "top_path")


def freeze_list(ws: Workspace, case: str) -> list[dict[str, Any]]:
    """The exchange deposit addresses that received stolen funds, with one top path each."""
    graph = case_graph(ws, case)
    cats = _label_categories(ws)
    out = []
    for row in sinks(ws, case, "cashed_out"):
        path = graph.top_path(row["address"])
        out.append({**row, "category": cats.get((row["chain"], row["address"])),
                    "hops": len(path), "top_path": " > ".join(
                        [path[0].src, *(e.dst for e in path)]) if path else ""})
    return out


DORMANT_COLUMNS = (*SINK_COLUMNS, "hops", "top_path")


def dormant_list(ws: Workspace, case: str) -> list[dict[str, Any]]:
    """Addresses still holding tainted funds (the watch list), with one top path each."""
    graph = case_graph(ws, case)
    out = []
    for row in sinks(ws, case, "dormant"):
        path = graph.top_path(row["address"])
        out.append({**row, "hops": len(path), "top_path": " > ".join(
            [path[0].src, *(e.dst for e in path)]) if path else ""})
    return out


def _label_categories(ws: Workspace) -> dict[tuple[str, str], str]:
    return {(c, a): cat for c, a, cat in ws.con.execute(
        "SELECT chain, address, arg_max(category, coalesce(confidence, 0)) FROM labels "
        "GROUP BY chain, address").fetchall()}


def address_entities(ws: Workspace) -> dict[str, str]:
    """address -> the entity of its most confident label (any chain)."""
    return {a: e for a, e in ws.con.execute(
        "SELECT address, arg_max(entity, coalesce(confidence, 0)) FROM labels "
        "WHERE entity IS NOT NULL GROUP BY address").fetchall()}


# -- the taint-flow graph ---------------------------------------------------------------------
@dataclass
class Edge:
    chain: str
    time: int
    tx_hash: str
    src: str
    dst: str
    asset: str
    dst_chain: str | None
    dst_asset: str | None
    kind: str
    amount: str
    origin_taint: float

    def as_dict(self) -> dict[str, Any]:
        return {"chain": self.chain, "time": iso(self.time), "tx_hash": self.tx_hash,
                "src": self.src, "dst": self.dst, "asset": self.asset,
                "dst_chain": self.dst_chain, "dst_asset": self.dst_asset, "kind": self.kind,
                "amount": self.amount, "origin_taint": round2(self.origin_taint)}


class CaseGraph:
    """The case's taint-flow edges in memory, with hops from the theft and a reverse index.

    Loaded once per case and cached: 50,000 edges take well under a second to load and make
    every later page (paths, graph expansion) a dictionary look-up.
    """

    def __init__(self, edges: list[Edge], entities: dict[str, str]) -> None:
        self.edges = edges
        self.entities = entities
        self.into: dict[str, list[int]] = defaultdict(list)
        self.out: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(edges):
            self.into[e.dst].append(i)
            self.out[e.src].append(i)
        dsts = set(self.into)
        roots = sorted({e.src for e in edges if e.src not in dsts})
        if not roots and edges:
            roots = [min(edges, key=lambda e: e.time).src]
        self.roots = roots
        self.hop: dict[str, int] = {r: 0 for r in roots}
        self.via: dict[str, str | None] = {r: None for r in roots}
        queue = deque(roots)
        while queue:  # BFS: the fewest hops from the theft, and the conversion on that route
            node = queue.popleft()
            for i in self.out.get(node, ()):
                e = edges[i]
                if e.dst not in self.hop:
                    self.hop[e.dst] = self.hop[node] + 1
                    self.via[e.dst] = e.kind if e.kind in CONVERSION_KINDS else self.via[node]
                    queue.append(e.dst)

    def group_of(self, address: str) -> str:
        """The aggregate node an address belongs to: its hop and its entity."""
        return f"{self.hop.get(address, -1)}|{self.entities.get(address, '')}"

    def top_path(self, address: str, first: int | None = None) -> list[Edge]:
        """The route that carried the most taint into `address`, walked back greedily in time
        order (each earlier edge no later than the next one); `first` forces the last edge."""
        path: list[Edge] = []
        seen = {address}
        node, t = address, None
        while True:
            cands = [i for i in self.into.get(node, ()) if t is None or self.edges[i].time <= t]
            if first is not None and not path:
                cands = [first]
            if not cands:
                break
            best = max(cands, key=lambda i: self.edges[i].origin_taint)
            e = self.edges[best]
            path.append(e)
            if e.src in seen or len(path) > 200:
                break
            seen.add(e.src)
            node, t = e.src, e.time
        path.reverse()
        return path

    def paths(self, address: str, limit: int = 3) -> list[list[Edge]]:
        firsts = sorted(self.into.get(address, ()), key=lambda i: -self.edges[i].origin_taint)
        return [self.top_path(address, first=i) for i in firsts[: max(1, limit)]]


_CACHE: dict[tuple[str, str], tuple[Any, CaseGraph]] = {}
_CACHE_LOCK = threading.Lock()


def case_graph(ws: Workspace, case: str) -> CaseGraph:
    info = get_case(ws, case)
    stamp = (info["created_at"], ws.con.execute(
        "SELECT count(*), sum(CAST(origin_taint AS DOUBLE)) FROM case_edges WHERE case_name = ?",
        [case]).fetchone())
    key = (str(ws.path.resolve()), case)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit and hit[0] == stamp:
            return hit[1]
    rows = ws.con.execute(
        "SELECT chain, time, tx_hash, src, dst, asset, dst_chain, dst_asset, kind, "
        "amount, CAST(origin_taint AS DOUBLE) AS origin_taint "
        "FROM case_edges WHERE case_name = ? ORDER BY time, chain, block, ordinal", [case]
    ).fetchall()
    edges = [Edge(*vals[:9], _units_text(vals[9]), vals[10]) for vals in rows]
    graph = CaseGraph(edges, address_entities(ws))
    with _CACHE_LOCK:
        _CACHE[key] = (stamp, graph)
    return graph


def paths(ws: Workspace, case: str, address: str, limit: int = 3) -> dict[str, Any]:
    """Routes from the theft to `address` (the best one first), as lists of edges."""
    graph = case_graph(ws, case)
    address = address.strip()
    if address not in graph.into and address.lower() in graph.into:
        address = address.lower()
    found = [p for p in graph.paths(address, limit) if p]
    return {"case": case, "address": address, "hop": graph.hop.get(address),
            "paths": [{"hops": len(p), "bottleneck": round2(min(e.origin_taint for e in p)),
                       "addresses": [p[0].src, *(e.dst for e in p)],
                       "groups": [graph.group_of(a) for a in [p[0].src, *(e.dst for e in p)]],
                       "edges": [e.as_dict() for e in p]} for p in found]}


def graph_view(ws: Workspace, case: str, expand: set[str] | None = None,
               per_group: int = 60, pin: set[str] | None = None) -> dict[str, Any]:
    """The explorer's graph: addresses aggregated by (hop, entity); expanded groups show
    their biggest member addresses (the rest stay as one "more" node). Pinned addresses (a
    highlighted path) are always shown on their own, next to the rest of their group. Edges are
    summed between whatever nodes their ends map to, with count, amount and first/last time."""
    graph = case_graph(ws, case)
    pin = {a for a in (pin or set()) if a in graph.hop or a in graph.into}
    expand = set(expand or set())
    inflow: dict[str, float] = defaultdict(float)
    for e in graph.edges:
        inflow[e.dst] += e.origin_taint
    members: dict[str, list[str]] = defaultdict(list)
    for address in set(graph.hop) | set(inflow):
        members[graph.group_of(address)].append(address)
    shown: dict[str, str] = {}
    nodes: dict[str, dict[str, Any]] = {}
    for gid, addrs in members.items():
        hop_s, entity = gid.split("|", 1)
        hop = int(hop_s)
        if gid in expand:
            addrs.sort(key=lambda a: (a not in pin, -inflow.get(a, 0.0)))
            for a in addrs[:max(per_group, sum(1 for a in addrs if a in pin))]:
                shown[a] = "a:" + a
                nodes["a:" + a] = {"id": "a:" + a, "kind": "address", "address": a,
                                   "label": entity or a[:10] + "…", "entity": entity or None,
                                   "hop": hop, "group": gid, "inflow": round2(inflow.get(a))}
            rest = addrs[max(per_group, sum(1 for a in addrs if a in pin)):]
            if rest:
                nid = "m:" + gid
                for a in rest:
                    shown[a] = nid
                nodes[nid] = {"id": nid, "kind": "more", "label": f"{len(rest)} more",
                              "entity": entity or None, "hop": hop, "group": gid,
                              "inflow": round2(sum(inflow.get(a, 0.0) for a in rest))}
        else:
            for a in addrs:
                if a in pin:
                    shown[a] = "a:" + a
                    nodes["a:" + a] = {"id": "a:" + a, "kind": "address", "address": a,
                                       "label": entity or a[:10] + "…", "hop": hop,
                                       "entity": entity or None, "group": gid,
                                       "inflow": round2(inflow.get(a))}
            addrs = [a for a in addrs if a not in pin]
            if not addrs:
                continue
            nid = "g:" + gid
            for a in addrs:
                shown[a] = nid
            name = entity or ("theft" if hop == 0 else "unlabelled")
            nodes[nid] = {"id": nid, "kind": "group", "group": gid, "entity": entity or None,
                          "label": f"{name} · hop {hop} · {len(addrs)}" if len(addrs) > 1
                          else f"{name} · hop {hop}",
                          "hop": hop, "size": len(addrs),
                          "inflow": round2(sum(inflow.get(a, 0.0) for a in addrs)),
                          "address": addrs[0] if len(addrs) == 1 else None}
    agg: dict[tuple[str, str], dict[str, Any]] = {}
    for e in graph.edges:
        s, d = shown[e.src], shown[e.dst]
        cur = agg.get((s, d))
        if cur is None:
            agg[(s, d)] = {"id": f"{s}->{d}", "source": s, "target": d, "count": 1,
                           "amount": e.origin_taint, "first": e.time, "last": e.time,
                           "kinds": {e.kind}, "assets": {e.asset}}
        else:
            cur["count"] += 1
            cur["amount"] += e.origin_taint
            cur["first"], cur["last"] = min(cur["first"], e.time), max(cur["last"], e.time)
            cur["kinds"].add(e.kind)
            cur["assets"].add(e.asset)
    edges = []
    for v in agg.values():
        edges.append({**v, "amount": round2(v["amount"]), "first": iso(v["first"]),
                      "last": iso(v["last"]), "kinds": sorted(v["kinds"]),
                      "assets": sorted(v["assets"])})
    return {"case": case, "expanded": sorted(expand), "total_edges": len(graph.edges),
            "nodes": sorted(nodes.values(), key=lambda n: (n["hop"], -n["inflow"])),
            "edges": sorted(edges, key=lambda x: -x["amount"])}


# -- Sankey and timeline --------------------------------------------------------------------------
def _hop_band(hop: int | None) -> str:
    if hop is None:
        return "not in graph"
    if hop <= 2:
        return "1–2 hops"
    if hop <= 5:
        return "3–5 hops"
    if hop <= 10:
        return "6–10 hops"
    return "11+ hops"


def sankey(ws: Workspace, case: str, entities_per_bucket: int = 6) -> dict[str, Any]:
    """Theft -> route (hops from the theft, via a bridge or swap) -> bucket -> entity.

    Every sink row flows along exactly one route, so each column sums to the stolen total.
    """
    graph = case_graph(ws, case)
    info = get_case(ws, case)
    rows = _rows(ws, "SELECT bucket, address, entity, CAST(origin_amount AS DOUBLE) AS v "
                     "FROM case_sinks WHERE case_name = ?", [case])
    links: dict[tuple[str, str], float] = defaultdict(float)
    by_entity: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        hop = graph.hop.get(r["address"])
        via = graph.via.get(r["address"])
        route = _hop_band(hop) + (f" via {via}" if via else "")
        bucket = "b:" + r["bucket"]
        links[("theft", "r:" + route)] += r["v"]
        links[("r:" + route, bucket)] += r["v"]
        if r["entity"]:
            by_entity[r["bucket"]][r["entity"]] += r["v"]
    for bucket, ents in by_entity.items():
        ranked = sorted(ents.items(), key=lambda kv: -kv[1])
        for name, v in ranked[:entities_per_bucket]:
            links[("b:" + bucket, f"e:{bucket}:{name}")] += v
        other = sum(v for _, v in ranked[entities_per_bucket:])
        if other:
            links[("b:" + bucket, f"e:{bucket}:other")] += other
    names: dict[str, tuple[str, int]] = {"theft": (f"theft ({info['origin_unit']})", 0)}
    for s, d in links:
        for n in (s, d):
            if n in names:
                continue
            if n.startswith("r:"):
                names[n] = (n[2:], 1)
            elif n.startswith("b:"):
                names[n] = (BUCKET_TITLES.get(n[2:], n[2:]), 2)
            else:
                names[n] = (n.split(":", 2)[2], 3)
    size = {n: sum(v for (s, d), v in links.items() if d == n or (n == "theft" and s == n))
            for n in names}
    buckets_ranked = sorted((n for n in names if names[n][1] == 2), key=lambda n: -size[n])
    rank = {n: i for i, n in enumerate(buckets_ranked)}

    def place(n: str) -> tuple[int, int, float]:
        # entities sit next to their bucket, so the last column's links do not cross
        group = rank.get("b:" + n.split(":", 2)[1], 0) if n.startswith("e:") else 0
        return names[n][1], group, -size[n]

    order = sorted(names, key=place)
    return {"case": case, "origin_unit": info["origin_unit"],
            "nodes": [{"id": n, "name": names[n][0], "column": names[n][1]} for n in order],
            "links": [{"source": s, "target": d, "value": round2(v)}
                      for (s, d), v in links.items() if v > 0]}


def timeline(ws: Workspace, case: str, top: int = 6) -> dict[str, Any]:
    """Cumulative cash-out per entity over time, from the edges into cashed-out addresses.

    A cashed-out address without edges (its history came from elsewhere) counts at its last
    time with its whole amount, so each entity ends at its total in the freeze list.
    """
    graph = case_graph(ws, case)
    rows = _rows(ws, "SELECT address, coalesce(entity, '?') AS entity, "
                     "CAST(origin_amount AS DOUBLE) AS v, last_time FROM case_sinks "
                     "WHERE case_name = ? AND bucket = 'cashed_out'", [case])
    events: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in rows:
        ins = [graph.edges[i] for i in graph.into.get(r["address"], ())]
        got = sum(e.origin_taint for e in ins)
        if ins and got > 0:  # spread the sink's amount over its tainted inflows
            for e in ins:
                events[r["entity"]].append((e.time, r["v"] * e.origin_taint / got))
        elif r["last_time"] is not None:
            events[r["entity"]].append((int(r["last_time"]), r["v"]))
    totals = sorted(((sum(v for _, v in ev), ent) for ent, ev in events.items()), reverse=True)
    keep = [ent for _, ent in totals[:top]]
    series = []
    for name in [*keep, "other"]:
        if name == "other":
            evs = [x for ent, ev in events.items() if ent not in keep for x in ev]
        else:
            evs = events[name]
        if not evs:
            continue
        evs.sort()
        cum, points = 0.0, []
        for t, v in evs:
            cum += v
            if points and points[-1][0] == t:
                points[-1][1] = round2(cum)
            else:
                points.append([t, round2(cum)])
        series.append({"entity": name, "total": round2(cum), "points": points})
    return {"case": case, "series": series}


# -- method and addresses -------------------------------------------------------------------------
def method(ws: Workspace, case: str) -> dict[str, Any]:
    """How the numbers were made: policy, seeds, data range, label sources."""
    info = get_case(ws, case)
    ranges = _rows(ws, "SELECT chain, count(*) AS flows, min(block) AS first_block, "
                       "max(block) AS last_block, min(time) AS first_time, max(time) AS "
                       "last_time FROM flows GROUP BY chain ORDER BY chain")
    for r in ranges:
        r["first_time"], r["last_time"] = iso(r["first_time"]), iso(r["last_time"])
    sources = _rows(ws, "SELECT source, count(*) AS labels, bool_or(coalesce(heuristic, false))"
                        " AS heuristic FROM labels GROUP BY source ORDER BY source")
    edges = ws.con.execute("SELECT count(*) FROM case_edges WHERE case_name = ?",
                           [case]).fetchone()
    return {**info, "data": ranges, "label_sources": sources,
            "edges": int(edges[0]) if edges else 0}


def address_info(ws: Workspace, address: str, limit: int = 200) -> dict[str, Any]:
    """Labels, flows and the address's taint in every case."""
    address = address.strip()
    variants = list({address, address.lower()})
    labels = _rows(ws, "SELECT chain, address, entity, category, source, confidence, heuristic,"
                       " evidence FROM labels WHERE address IN (SELECT unnest(?)) ORDER BY "
                       "coalesce(confidence, 0) DESC", [variants])
    flows = _rows(ws, f"SELECT * FROM flows WHERE src IN (SELECT unnest(?)) OR dst IN "
                      f"(SELECT unnest(?)) ORDER BY time, chain, block, ordinal "
                      f"LIMIT {int(limit)}", [variants, variants])
    for f in flows:
        f["time"] = iso(f["time"])
    cases = []
    if _has_table(ws, "case_sinks"):
        for c in list_cases(ws):
            name = c["case"]
            t_in, t_out, n = ws.con.execute(
                "SELECT coalesce(sum(CASE WHEN dst IN (SELECT unnest($2)) THEN "
                "CAST(origin_taint AS DOUBLE) END), 0), coalesce(sum(CASE WHEN src IN "
                "(SELECT unnest($2)) THEN CAST(origin_taint AS DOUBLE) END), 0), count(*) "
                "FROM case_edges WHERE case_name = $1 AND (src IN (SELECT unnest($2)) OR dst IN"
                " (SELECT unnest($2)))", [name, variants]).fetchone()
            held = _rows(ws, "SELECT bucket, asset, CAST(origin_amount AS DOUBLE) AS "
                             "origin_amount FROM case_sinks WHERE case_name = ? AND address IN "
                             "(SELECT unnest(?))", [name, variants])
            if n or held:
                cases.append({"case": name, "origin_unit": c["origin_unit"],
                              "tainted_in": round2(t_in), "tainted_out": round2(t_out),
                              "edges": int(n), "sinks": [{**h, "origin_amount": round2(
                                  h["origin_amount"])} for h in held]})
    return {"address": address, "labels": labels, "flows": flows, "cases": cases}


def search_labels(ws: Workspace, q: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    sql = ("SELECT chain, address, entity, category, source, confidence, heuristic FROM labels")
    params: list[Any] = []
    if q:
        sql += " WHERE address = ? OR entity ILIKE ? OR category ILIKE ?"
        params = [q.lower(), f"%{q}%", f"%{q}%"]
    sql += f" ORDER BY entity, address LIMIT {int(limit)}"
    return _rows(ws, sql, params)
