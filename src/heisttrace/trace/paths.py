"""`top_paths`: the K largest taint paths from the seeds to an address.

A path is a time-respecting chain of taint-flow edges (each hop leaves the holding the
previous hop reached, later in ledger order); its width is the smallest origin taint along
it. Edges are visited in ledger order, which is a topological order of this DAG, so keeping
the K widest partial paths per holding gives the K widest paths exactly (the bottleneck
min(width, edge) is monotone in the width).
"""

from __future__ import annotations

import heapq
from typing import Any

from heisttrace.errors import InputError
from heisttrace.ledger.workspace import Workspace
from heisttrace.trace.summary import get_case

_COLS = ["chain", "block", "time", "ordinal", "tx_hash", "src", "dst", "asset", "dst_chain",
         "dst_asset", "kind", "amount", "taint", "origin_taint"]


def top_paths(ws: Workspace, case: str, to_address: str, k: int = 5) -> list[dict[str, Any]]:
    """Up to `k` paths, widest first: {"width": origin units, "hops": [edge dicts]}."""
    meta = get_case(ws, case)
    if k < 1:
        raise InputError("--top must be at least 1", field="top")
    target = to_address.strip().lower()
    edges = [dict(zip(_COLS, r)) for r in ws.con.execute(
        f"SELECT {', '.join(_COLS)} FROM case_edges WHERE case_name = ? "
        "ORDER BY time, chain, block, ordinal, tx_hash", [case]).fetchall()]
    if not any(e["dst"] == target for e in edges):
        raise InputError(f"no taint of case {case!r} reaches {target}", field="to")
    seed_txs = {s.lower() for s in meta["seeds"] if "@" not in s}
    seed_addrs = {}
    for s in meta["seeds"]:
        if "@" in s:
            addr, _, _ = s.rpartition("@")
            seed_addrs[addr.lower()] = True
    # per holding: up to k (width, edge index, rank) of paths arriving there, widest first
    best_at: dict[tuple[str, str, str], list[tuple[float, int, int]]] = {}
    # per edge: its k best (width, parent edge, parent rank)
    via: list[list[tuple[float, int, int]]] = []
    ends: list[tuple[float, int, int]] = []
    for i, e in enumerate(edges):
        w = float(e["origin_taint"] or 0.0)
        cands: list[tuple[float, int, int]] = []
        if e["tx_hash"] in seed_txs or e["src"] in seed_addrs:
            cands.append((w, -1, -1))
        for width, j, rank in best_at.get((e["chain"], e["src"], e["asset"]), []):
            cands.append((min(width, w), j, rank))
        mine = heapq.nlargest(k, cands, key=lambda c: c[0])
        via.append(mine)
        if not mine:
            continue
        key = (e["dst_chain"], e["dst"], e["dst_asset"])
        pool = best_at.get(key, []) + [(m[0], i, r) for r, m in enumerate(mine)]
        best_at[key] = heapq.nlargest(k, pool, key=lambda c: c[0])
        if e["dst"] == target:
            ends += [(m[0], i, r) for r, m in enumerate(mine)]
    out = []
    for width, i, rank in heapq.nlargest(k, ends, key=lambda c: c[0]):
        hops = []
        while i >= 0:
            hops.append(edges[i])
            _, i, rank = via[i][rank]
        out.append({"width": width, "hops": hops[::-1]})
    return out
