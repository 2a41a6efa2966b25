"""What a case hands on to the live watch: the sweep's end state, holding by holding.

The watch continues the sweep block by block instead of re-tracing from the theft, so it
needs what the sweep knew when it stopped, not only the bucket totals: the balance the sweep
saw and the taint and origin left in every holding it still follows; under poison, the hop
count of every poisoned holding (a poisoned holding taints what it sends even once its own
taint is gone); under FIFO, the queue of lots, oldest first, of every holding that still
holds taint (which part of a later outflow is tainted depends on the order, not the sum).
Amounts are whole units of the holding's asset, as in `case_sinks`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from heisttrace.trace.kernel import SweepResult


def end_state(res: SweepResult) -> pa.Table:
    """h, balance, taint, origin, hops: one row per holding the watch has to follow."""
    # Stopping is decided per flow (a DEX stops plain transfers but follows swaps), so a
    # holding with a sink can still hold taint to follow.
    keep = (res.taint != 0) | (res.origin != 0)
    if res.poisoned is not None:
        keep |= res.poisoned == 1
    h = np.flatnonzero(keep)
    hops = None
    if res.poisoned is not None and res.hops is not None:
        hops = pa.array(res.hops[h].astype(np.int32), mask=res.poisoned[h] != 1)
    return pa.table({
        "h": pa.array(h, pa.int64()),
        "balance": pa.array(res.balance[h], pa.float64()),
        "taint": pa.array(res.taint[h], pa.float64()),
        "origin": pa.array(res.origin[h], pa.float64()),
        "hops": hops if hops is not None else pa.nulls(h.size, pa.int32()),
    })


def end_lots(res: SweepResult) -> pa.Table | None:
    """h, seq, amount, origin, tainted: the FIFO queues of holdings that still hold taint."""
    if res.lots is None:
        return None
    h, amount, origin, tainted = res.lots
    # the kernel gives the queues holding after holding, each oldest first: a lot's place in
    # its queue is its distance from the queue's first row
    seq = np.arange(h.size) - np.searchsorted(h, h)
    return pa.table({
        "h": pa.array(h.astype(np.int64)),
        "seq": pa.array(seq.astype(np.int32)),
        "amount": pa.array(amount, pa.float64()),
        "origin": pa.array(origin, pa.float64()),
        "tainted": pa.array(tainted.astype(bool)),
    })
