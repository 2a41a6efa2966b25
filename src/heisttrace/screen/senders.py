"""Who paid whom, backwards: the ledger's same-chain flows aggregated per (dst, src) and kept
in memory, so the indirect-exposure walk of a screened address costs microseconds per hop
instead of a DuckDB scan of the ledger per hop.

Rows are sorted by a 64-bit hash of chain + dst, heaviest sender first within a dst, so the
senders of one address are one `searchsorted` and a slice. Only numpy and Arrow columns are
kept (no Python object per flow): a ledger of millions of flows stays a few hundred MB and adds
nothing for the garbage collector to scan. A hash collision cannot give a wrong answer: every
row's dst is compared with the address asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from heisttrace.ledger.schema import FEE_SINK
from heisttrace.ledger.workspace import FLOWS_GENERATION, Workspace

FANOUT = 1000  # senders read per address per hop, heaviest first: a hub's long tail is noise

# The `ledger` view spelled out, over `{source}`: `flows` for a build, `flow_rows` for a
# layer, whose rows appended after a build are the ones with a higher rowid (DuckDB pushes that
# filter down to whole row groups). A new segment bumps FLOWS_GENERATION: a rebuild.
_SQL = """
SELECT f.chain, f.dst, f.src, sum(CAST(f.amount_in AS DOUBLE)) AS got,
       arg_max(f.tx_hash, f.time) AS tx, max(f.time) AS t, hash(f.chain, f.dst, f.src) AS pair
FROM {source} f
ANTI JOIN superseded x ON x.chain = f.chain AND x.tx_hash = f.tx_hash AND x.ordinal = f.ordinal
WHERE coalesce(f.dst_chain, f.chain) = f.chain AND f.src <> $fees AND f.src <> f.dst
  {since}
GROUP BY ALL
"""

# What the graph was built from. Flows only appended since (same deletion count, same
# superseded rows) are added as a layer; anything else rebuilds.
KEY_SQL = ("SELECT (SELECT count(*) FROM flows), (SELECT count(*) FROM superseded), "
           "(SELECT coalesce(max(rowid), -1) FROM flow_rows), (SELECT value FROM checkpoints "
           f"WHERE name = '{FLOWS_GENERATION}')")
# a layer past this share of the built graph's rows is folded in by a rebuild
MAX_LAYER = 0.1


def _code(chain: str, address: str) -> int:
    return hash(f"{chain}\x00{address}")


class SenderGraph:
    """The ledger's reverse adjacency: for an address, the addresses that sent to it."""

    def __init__(self, ws: Workspace, since: int | None = None) -> None:
        """The pairs of the ledger's flows, or of those in `flow_rows` whose rowid is above
        `since`."""
        if since is None:
            sql, params = _SQL.format(source="flows", since=""), {"fees": FEE_SINK}
        else:
            sql = _SQL.format(source="flow_rows", since="AND f.rowid > $since")
            params = {"fees": FEE_SINK, "since": since}
        tbl = ws.con.execute(sql, params).fetch_arrow_table()
        n = tbl.num_rows
        chains, dsts = tbl.column("chain").to_pylist(), tbl.column("dst").to_pylist()
        codes = np.fromiter((_code(c, d) for c, d in zip(chains, dsts)), dtype=np.int64,
                            count=n)
        del chains, dsts
        got = np.nan_to_num(tbl.column("got").to_numpy(zero_copy_only=False).astype(float))
        order = np.lexsort((-got, codes))
        take = pa.array(order)
        self.codes = codes[order]
        self.got = got[order]
        self.dst = tbl.column("dst").take(take).combine_chunks()
        self.src = tbl.column("src").take(take).combine_chunks()
        self.tx = tbl.column("tx").take(take).combine_chunks()
        self.time = tbl.column("t").take(take).combine_chunks()
        # (chain, dst, src) -> row, by DuckDB's hash of the pair: a layer finds the base row
        # of each of its pairs without reading a hub's whole slice
        self.pair = tbl.column("pair").to_numpy(zero_copy_only=False).astype(np.uint64)[order]
        self._by_pair = np.argsort(self.pair, kind="stable")
        self._pairs_sorted = self.pair[self._by_pair]

    def __len__(self) -> int:
        return len(self.codes)

    def senders(self, chain: str, addresses: list[str],
                fanout: int | None = FANOUT) -> list[tuple[float, str, str, int]]:
        """(received, src, dst, row) for every sender of each address (at most `fanout`
        heaviest each, all with None), heaviest first over all of them."""
        if not addresses or not len(self.codes):
            return []
        q = np.fromiter((_code(chain, a) for a in addresses), dtype=np.int64,
                        count=len(addresses))
        lo = np.searchsorted(self.codes, q, "left")
        hi = np.searchsorted(self.codes, q, "right")
        rows: list[tuple[float, str, str, int]] = []
        for a, start, stop in zip(addresses, lo.tolist(), hi.tolist()):
            if stop <= start:
                continue
            if fanout is not None:
                stop = min(stop, start + fanout)
            dst = self.dst.slice(start, stop - start).to_pylist()
            src = self.src.slice(start, stop - start).to_pylist()
            got = self.got[start:stop].tolist()
            rows.extend((g, s, d, start + k)
                        for k, (g, s, d) in enumerate(zip(got, src, dst)) if d == a)
        rows.sort(key=lambda r: -r[0])
        return rows

    def edge(self, row: int) -> tuple[Any, Any]:
        """(tx_hash, time) of the latest flow of an aggregated row, for the path."""
        return self.tx[row].as_py(), self.time[row].as_py()

    def pair_row(self, pair: int, dst: str, src: str) -> int | None:
        """The row of the pair (its hash `pair`, as the SQL gave it), None when absent."""
        at = int(np.searchsorted(self._pairs_sorted, np.uint64(pair), "left"))
        while at < len(self._pairs_sorted) and int(self._pairs_sorted[at]) == pair:
            row = int(self._by_pair[at])
            if self.dst[row].as_py() == dst and self.src[row].as_py() == src:
                return row
            at += 1
        return None


class LayeredSenderGraph:
    """A built graph plus the flows appended since, as a second graph merged per query, so
    a watch batch costs a query over its own flows, not a rebuild over the whole ledger.

    A pair (dst, src) in both layers is one sender: amounts add up and its edge is the later
    of the two. The merged answer is the rebuilt graph's (up to ties in amount), also for a
    hub with more than FANOUT senders, without reading the hub's whole base slice.
    """

    def __init__(self, base: SenderGraph, layer: SenderGraph) -> None:
        self.base, self.layer = base, layer

    def __len__(self) -> int:
        return len(self.base) + len(self.layer)

    def senders(self, chain: str, addresses: list[str],
                fanout: int | None = FANOUT) -> list[tuple[float, str, str, int]]:
        new = self.layer.senders(chain, addresses, None)
        if not new:
            return self.base.senders(chain, addresses, fanout)
        paid = {d for _, _, d, _ in new}
        rows = self.base.senders(chain, [a for a in addresses if a not in paid], fanout)
        # the base's heaviest of each paid address, then each layer pair added to its base
        # row wherever that row is: a base row outside the heaviest gains nothing, so it
        # cannot enter the merged heaviest
        merged: dict[tuple[str, str], tuple[float, str, str, int]] = {
            (d, s): (g, s, d, r) for g, s, d, r in self.base.senders(chain, sorted(paid),
                                                                     fanout)}
        for g, s, d, r in new:
            old = merged.get((d, s))
            if old is None:
                b = self.base.pair_row(int(self.layer.pair[r]), d, s)
                old = None if b is None else (float(self.base.got[b]), s, d, b)
            if old is None:
                merged[(d, s)] = (g, s, d, -1 - r)
            else:
                later = -1 - r if self.layer.edge(r)[1] >= self.base.edge(old[3])[1] else old[3]
                merged[(d, s)] = (old[0] + g, s, d, later)
        by_dst: dict[str, list[tuple[float, str, str, int]]] = {}
        for row in merged.values():
            by_dst.setdefault(row[2], []).append(row)
        for group in by_dst.values():
            group.sort(key=lambda r: -r[0])
            rows.extend(group if fanout is None else group[:fanout])
        rows.sort(key=lambda r: -r[0])
        return rows

    def edge(self, row: int) -> tuple[Any, Any]:
        """Rows of the layer are numbered -1, -2, ... (`senders` hands them out so)."""
        return self.base.edge(row) if row >= 0 else self.layer.edge(-1 - row)


Graph = SenderGraph | LayeredSenderGraph


def updated_graph(ws: Workspace, graph: Graph | None, built_key: tuple[Any, ...] | None,
                  key: tuple[Any, ...]) -> tuple[Graph, tuple[Any, ...]]:
    """The graph for the ledger state `key` (KEY_SQL's row), and the key its base was built
    at: the same graph when nothing changed, a layer over the base when flows were only
    appended since the base was built, a rebuild otherwise."""
    if graph is not None and built_key is not None:
        base = graph.base if isinstance(graph, LayeredSenderGraph) else graph
        (n0, sup0, top0, gen0), (n1, sup1, top1, gen1) = built_key, key
        if key == built_key:
            return base, built_key
        appended = n1 - n0
        if sup1 == sup0 and gen1 == gen0 and appended > 0 and top1 > top0:
            got = ws.con.execute("SELECT count(*) FROM flow_rows WHERE rowid > ?",
                                 [top0]).fetchone()
            if got is not None and got[0] == appended:
                layer = SenderGraph(ws, since=top0)
                if len(layer) <= MAX_LAYER * max(len(base), 1):
                    return LayeredSenderGraph(base, layer), built_key
    return SenderGraph(ws), key
