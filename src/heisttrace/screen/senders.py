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
from heisttrace.ledger.workspace import Workspace

FANOUT = 1000  # senders read per address per hop, heaviest first: a hub's long tail is noise

_SQL = """
SELECT chain, dst, src, sum(CAST(amount_in AS DOUBLE)) AS got,
       arg_max(tx_hash, time) AS tx, max(time) AS t
FROM ledger
WHERE coalesce(dst_chain, chain) = chain AND src <> $fees AND src <> dst
GROUP BY ALL
"""

# what the graph was built from: a changed count (ingest, watch, conversions) means rebuild
KEY_SQL = "SELECT (SELECT count(*) FROM flows), (SELECT count(*) FROM superseded)"


def _code(chain: str, address: str) -> int:
    return hash(f"{chain}\x00{address}")


class SenderGraph:
    """The ledger's reverse adjacency: for an address, the addresses that sent to it."""

    def __init__(self, ws: Workspace) -> None:
        tbl = ws.con.execute(_SQL, {"fees": FEE_SINK}).fetch_arrow_table()
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

    def __len__(self) -> int:
        return len(self.codes)

    def senders(self, chain: str, addresses: list[str],
                fanout: int = FANOUT) -> list[tuple[float, str, str, int]]:
        """(received, src, dst, row) for every sender of each address (at most `fanout`
        heaviest each), heaviest first over all of them."""
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
