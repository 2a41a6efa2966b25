"""The compiled sweep: one pass over the encoded flows in time order.

Per holding it keeps the balance B, the tainted amount T (holding units) and the origin taint O
(origin units). The three policies share the frame and differ in how an outflow of `a` picks
its taint:

- haircut: the outflow carries T*a/B and O*a/B (proportional; BlockSci's haircut);
- FIFO: a holding is a queue of tainted and clean segments, outflows take from the head
  (Clayton's case); the queue is only materialised once taint first reaches a holding, before
  that the balance is all clean and a plain number is enough;
- poison: origin units move as in haircut (so the accounting still balances) and, in holding
  units, every outflow of a poisoned holding is tainted in full, up to `max_hops` hops from
  the seeds (exposure, not attribution); a flow into a stopping holding does not poison it
  (the trace ends there, as under the other policies).

Rules shared by all: outflows larger than the known balance mean missing history, i.e. clean
money that was already there (the deficit is the oldest money, so FIFO takes it first); flows
into a stopping holding (exchange, mixer, fee sink, ...) add their taint to that holding's sink
and never leave it; seed flows become 100% tainted at their destination; address seeds taint
the whole balance at their time. Conversions (amount_in != amount_out) carry the same share of
their units as taint and the same origin amount.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

HAIRCUT, FIFO, POISON = "haircut", "fifo", "poison"
POLICIES: tuple[str, ...] = (HAIRCUT, FIFO, POISON)

# An outflow within this relative distance of the balance drains the holding: float sums of
# many inflows rarely equal the integer total exactly, and a drained holding should be empty
# rather than keep a 1e-16 crumb of taint.
SNAP = 1e-12


@dataclass
class SweepResult:
    """Per-holding state after the sweep and the tainted flows (the taint-flow graph)."""

    balance: np.ndarray  # float64 B per holding
    taint: np.ndarray  # float64 holding-unit taint left in the holding (not sinks)
    origin: np.ndarray  # float64 origin taint left in the holding
    sink_taint: np.ndarray  # float64 holding-unit taint collected by a stopping holding
    sink_origin: np.ndarray  # float64 origin taint collected by a stopping holding
    sink_code: np.ndarray  # int8 bucket code of a stopping holding that received taint
    first_time: np.ndarray  # int64 first time taint reached the holding (-1 never)
    last_time: np.ndarray  # int64 last time taint reached the holding
    edge_index: np.ndarray  # int64 sweep positions of flows that carried taint
    edge_taint: np.ndarray  # float64 taint carried, in source units
    edge_origin: np.ndarray  # float64 origin taint carried
    stolen: float  # origin units made tainted by the seeds
    poisoned: np.ndarray | None = None  # int8 per holding (poison policy only)
    hops: np.ndarray | None = None  # int32 hops from the seeds (poison policy only)
    # FIFO only: the queues of holdings still holding taint, lot by lot, oldest first:
    # (holding int32, amount float64, origin float64, tainted int8)
    lots: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None


@njit(cache=True)
def _grow_f(a: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(n, a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def _grow_i(a: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(n, a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def sweep_haircut(src, dst, aout, ain, time, stop, seed_idx, ev_pos, ev_h, ev_time, price,
                  n_holdings, poison, max_hops):
    """Haircut (and poison, which moves origin units the same way). See the module doc."""
    n = src.shape[0]
    H = n_holdings
    bal_ = np.zeros(H)  # B per holding
    tnt = np.zeros((H, 2))  # T, O per holding
    dirty = np.zeros(H, np.int8)  # 0: T and O are surely 0 (small, so it stays in cache)
    sink = np.zeros((H, 2))
    sink_code = np.zeros(H, np.int8)
    first = np.full(H, -1, np.int64)
    last = np.full(H, -1, np.int64)
    pois = np.zeros(H if poison else 1, np.int8)
    hop = np.zeros(H if poison else 1, np.int32)
    ecap = 1024
    e_idx = np.empty(ecap, np.int64)
    e_t = np.empty(ecap, np.float64)
    e_o = np.empty(ecap, np.float64)
    ne = 0
    stolen = 0.0
    ks = 0
    nseed = seed_idx.shape[0]
    ke = 0
    nev = ev_pos.shape[0]
    for i in range(n + 1):
        while ke < nev and ev_pos[ke] <= i:
            h = ev_h[ke]
            fresh = bal_[h] - tnt[h, 0]
            if fresh > 0.0:
                v = fresh * price[h]
                stolen += v
                if sink_code[h] != 0:
                    sink[h, 0] += fresh
                    sink[h, 1] += v
                else:
                    tnt[h, 0] = bal_[h]
                    tnt[h, 1] += v
                    dirty[h] = 1
                if first[h] < 0:
                    first[h] = ev_time[ke]
                last[h] = ev_time[ke]
            if poison:
                pois[h] = 1
                hop[h] = 0
            ke += 1
        if i == n:
            break
        s = src[i]
        d = dst[i]
        a = aout[i]
        b = ain[i]
        if (not poison and dirty[s] == 0
                and (ks == nseed or seed_idx[ks] > i)):
            # fast path, most flows: a clean source moves only balances
            if a > 0.0:
                bal = bal_[s]
                bal_[s] = bal - a if a < bal * (1.0 - SNAP) else 0.0
                bal_[d] += b
            elif b > 0.0:
                bal_[d] += b
            continue
        c = 0.0
        o = 0.0
        if a > 0.0:
            bal = bal_[s]
            if a >= bal * (1.0 - SNAP):
                c = tnt[s, 0]
                o = tnt[s, 1]
                bal_[s] = 0.0
                tnt[s, 0] = 0.0
                tnt[s, 1] = 0.0
                dirty[s] = 0
            else:
                t = tnt[s, 0]
                og = tnt[s, 1]
                if t != 0.0 or og != 0.0:
                    f = a / bal
                    c = t * f
                    o = og * f
                    tnt[s, 0] = t - c
                    tnt[s, 1] = og - o
                bal_[s] = bal - a
        elif b <= 0.0:
            continue  # zero-value flows carry nothing (address poisoning, spam)
        cin = c * (b / a) if a > 0.0 else 0.0
        is_seed = False
        while ks < nseed and seed_idx[ks] < i:
            ks += 1
        if ks < nseed and seed_idx[ks] == i:
            ks += 1
            is_seed = True
            fresh = b - cin
            if fresh > 0.0:
                v = fresh * price[d]
                stolen += v
                o += v
                cin = b
        bal_[d] += b
        poisoned = False
        nh = 0
        if poison:
            if is_seed:
                poisoned = True
                nh = 0
            elif pois[s] == 1 and hop[s] < max_hops:
                poisoned = True
                nh = hop[s] + 1
            if poisoned and stop[i] == 0 and (pois[d] == 0 or hop[d] > nh):
                pois[d] = 1
                hop[d] = nh
        if cin > 0.0 or o > 0.0 or poisoned:
            if ne == ecap:
                ecap *= 2
                e_idx = _grow_i(e_idx, ecap)
                e_t = _grow_f(e_t, ecap)
                e_o = _grow_f(e_o, ecap)
            e_idx[ne] = i
            if poisoned:
                e_t[ne] = a if a > 0.0 else b
            elif b > 0.0 and a > 0.0:
                e_t[ne] = cin * (a / b)
            else:
                e_t[ne] = cin
            e_o[ne] = o
            ne += 1
            code = stop[i]
            if code != 0:
                sink[d, 0] += b if poisoned else cin
                sink[d, 1] += o
                sink_code[d] = code
            else:
                tnt[d, 0] += cin
                tnt[d, 1] += o
                dirty[d] = 1
            if first[d] < 0:
                first[d] = time[i]
            last[d] = time[i]
    st = np.zeros((H, 4))
    st[:, 0] = bal_
    st[:, 1:3] = tnt
    return (st, sink, sink_code, first, last, e_idx[:ne].copy(), e_t[:ne].copy(),
            e_o[:ne].copy(), stolen, pois, hop)


@njit(cache=True, nogil=True)
def sweep_fifo(src, dst, aout, ain, time, stop, seed_idx, ev_pos, ev_h, ev_time, price,
               n_holdings):
    """FIFO over per-holding queues of segments kept as linked lists in flat arrays."""
    n = src.shape[0]
    H = n_holdings
    bal = np.zeros(H)
    head = np.full(H, -1, np.int32)
    tail = np.full(H, -1, np.int32)
    sink = np.zeros((H, 2))
    sink_code = np.zeros(H, np.int8)
    first = np.full(H, -1, np.int64)
    last = np.full(H, -1, np.int64)
    cap = 1024
    s_amt = np.empty(cap)
    s_org = np.empty(cap)
    s_tnt = np.empty(cap, np.int8)
    s_nxt = np.empty(cap, np.int32)
    free = -1
    used = 0
    pcap = 64
    p_amt = np.empty(pcap)
    p_org = np.empty(pcap)
    p_tnt = np.empty(pcap, np.int8)
    ecap = 1024
    e_idx = np.empty(ecap, np.int64)
    e_t = np.empty(ecap, np.float64)
    e_o = np.empty(ecap, np.float64)
    ne = 0
    stolen = 0.0
    ks = 0
    nseed = seed_idx.shape[0]
    ke = 0
    nev = ev_pos.shape[0]
    for i in range(n + 1):
        while ke < nev and ev_pos[ke] <= i:
            h = ev_h[ke]
            t_ev = ev_time[ke]
            ke += 1
            fresh = 0.0
            if sink_code[h] != 0:
                continue  # a stopping holding keeps nothing to follow
            if head[h] < 0:
                if bal[h] > 0.0:
                    if free >= 0:
                        g = free
                        free = s_nxt[g]
                    else:
                        if used == cap:
                            cap *= 2
                            s_amt = _grow_f(s_amt, cap)
                            s_org = _grow_f(s_org, cap)
                            s_tnt = _grow_i(s_tnt, cap)
                            s_nxt = _grow_i(s_nxt, cap)
                        g = used
                        used += 1
                    s_amt[g] = bal[h]
                    s_org[g] = bal[h] * price[h]
                    s_tnt[g] = 1
                    s_nxt[g] = -1
                    head[h] = g
                    tail[h] = g
                    fresh = bal[h]
            else:
                g = head[h]
                while g >= 0:
                    if s_tnt[g] == 0:
                        s_tnt[g] = 1
                        s_org[g] = s_amt[g] * price[h]
                        fresh += s_amt[g]
                    g = s_nxt[g]
            if fresh > 0.0:
                stolen += fresh * price[h]
                if first[h] < 0:
                    first[h] = t_ev
                last[h] = t_ev
        if i == n:
            break
        s = src[i]
        d = dst[i]
        a = aout[i]
        b = ain[i]
        if a <= 0.0 and b <= 0.0:
            continue
        if ((a <= 0.0 or head[s] < 0) and (head[d] < 0 or stop[i] != 0)
                and (ks == nseed or seed_idx[ks] > i)):
            # fast path, most flows: all clean from an all-clean source into a holding
            # without a queue (or a stopping one): only the balances change
            if a > 0.0:
                B = bal[s]
                bal[s] = B - a if a < B * (1.0 - SNAP) else 0.0
            bal[d] += b
            continue
        # -- take pieces out of the source, oldest first
        np_ = 0
        if a > 0.0:
            B = bal[s]
            if head[s] < 0:
                p_amt[0] = a
                p_org[0] = 0.0
                p_tnt[0] = 0
                np_ = 1
                bal[s] = B - a if a < B * (1.0 - SNAP) else 0.0
            else:
                drain = a >= B * (1.0 - SNAP)
                rem = a
                if drain and a > B:
                    p_amt[0] = a - B  # missing history: the oldest, clean money
                    p_org[0] = 0.0
                    p_tnt[0] = 0
                    np_ = 1
                    rem = B
                g = head[s]
                while g >= 0 and (drain or rem > 0.0):
                    h_amt = s_amt[g]
                    if np_ == pcap:
                        pcap *= 2
                        p_amt = _grow_f(p_amt, pcap)
                        p_org = _grow_f(p_org, pcap)
                        p_tnt = _grow_i(p_tnt, pcap)
                    if drain or rem >= h_amt * (1.0 - SNAP):
                        p_amt[np_] = h_amt
                        p_org[np_] = s_org[g]
                        p_tnt[np_] = s_tnt[g]
                        np_ += 1
                        rem -= h_amt
                        nx = s_nxt[g]
                        s_nxt[g] = free
                        free = g
                        g = nx
                    else:
                        frac = rem / h_amt
                        po = s_org[g] * frac
                        p_amt[np_] = rem
                        p_org[np_] = po
                        p_tnt[np_] = s_tnt[g]
                        np_ += 1
                        s_amt[g] = h_amt - rem
                        s_org[g] -= po
                        rem = 0.0
                head[s] = g
                if g < 0:
                    tail[s] = -1
                if not drain and rem > 0.0:
                    if np_ == pcap:
                        pcap *= 2
                        p_amt = _grow_f(p_amt, pcap)
                        p_org = _grow_f(p_org, pcap)
                        p_tnt = _grow_i(p_tnt, pcap)
                    p_amt[np_] = rem
                    p_org[np_] = 0.0
                    p_tnt[np_] = 0
                    np_ += 1
                bal[s] = 0.0 if drain else B - a
        else:
            p_amt[0] = b  # value from nowhere (a conversion without an input): clean
            p_org[0] = 0.0
            p_tnt[0] = 0
            np_ = 1
        r = b / a if a > 0.0 else 1.0
        while ks < nseed and seed_idx[ks] < i:
            ks += 1
        is_seed = ks < nseed and seed_idx[ks] == i
        if is_seed:
            ks += 1
        c = 0.0
        o = 0.0
        for k in range(np_):
            if p_tnt[k] == 0 and is_seed:
                v = p_amt[k] * r * price[d]
                stolen += v
                p_tnt[k] = 1
                p_org[k] = v
            if p_tnt[k] == 1:
                c += p_amt[k]
                o += p_org[k]
        B_before = bal[d]
        bal[d] = B_before + b
        if c > 0.0 or o > 0.0:
            if ne == ecap:
                ecap *= 2
                e_idx = _grow_i(e_idx, ecap)
                e_t = _grow_f(e_t, ecap)
                e_o = _grow_f(e_o, ecap)
            e_idx[ne] = i
            e_t[ne] = c
            e_o[ne] = o
            ne += 1
            if first[d] < 0:
                first[d] = time[i]
            last[d] = time[i]
        code = stop[i]
        if code != 0:
            if c > 0.0 or o > 0.0:
                sink[d, 0] += c * r
                sink[d, 1] += o
                sink_code[d] = code
            continue
        if head[d] < 0 and c <= 0.0 and o <= 0.0:
            continue  # all clean into an all-clean holding: the balance says it all
        if head[d] < 0 and B_before > 0.0:
            np_ += 1  # the clean money already there goes first: shift pieces right
            if np_ > pcap:
                pcap *= 2
                p_amt = _grow_f(p_amt, pcap)
                p_org = _grow_f(p_org, pcap)
                p_tnt = _grow_i(p_tnt, pcap)
            for k in range(np_ - 1, 0, -1):
                p_amt[k] = p_amt[k - 1] * r
                p_org[k] = p_org[k - 1]
                p_tnt[k] = p_tnt[k - 1]
            p_amt[0] = B_before
            p_org[0] = 0.0
            p_tnt[0] = 0
        else:
            for k in range(np_):
                p_amt[k] = p_amt[k] * r
        for k in range(np_):
            tl = tail[d]
            if p_tnt[k] == 0 and tl >= 0 and s_tnt[tl] == 0:
                s_amt[tl] += p_amt[k]
                continue
            if free >= 0:
                g = free
                free = s_nxt[g]
            else:
                if used == cap:
                    cap *= 2
                    s_amt = _grow_f(s_amt, cap)
                    s_org = _grow_f(s_org, cap)
                    s_tnt = _grow_i(s_tnt, cap)
                    s_nxt = _grow_i(s_nxt, cap)
                g = used
                used += 1
            s_amt[g] = p_amt[k]
            s_org[g] = p_org[k]
            s_tnt[g] = p_tnt[k]
            s_nxt[g] = -1
            if tl >= 0:
                s_nxt[tl] = g
            else:
                head[d] = g
            tail[d] = g
    st = np.zeros((H, 4))
    n_lots = 0
    for h in range(H):
        st[h, 0] = bal[h]
        g = head[h]
        k = 0
        while g >= 0:
            if s_tnt[g] == 1:
                st[h, 1] += s_amt[g]
                st[h, 2] += s_org[g]
            k += 1
            g = s_nxt[g]
        if st[h, 1] != 0.0 or st[h, 2] != 0.0:
            n_lots += k
    # the queues still holding taint, lot by lot, oldest first (the watch continues them)
    l_h = np.empty(n_lots, np.int32)
    l_amt = np.empty(n_lots)
    l_org = np.empty(n_lots)
    l_tnt = np.empty(n_lots, np.int8)
    k = 0
    for h in range(H):
        if st[h, 1] == 0.0 and st[h, 2] == 0.0:
            continue
        g = head[h]
        while g >= 0:
            l_h[k] = h
            l_amt[k] = s_amt[g]
            l_org[k] = s_org[g]
            l_tnt[k] = s_tnt[g]
            k += 1
            g = s_nxt[g]
    return (st, sink, sink_code, first, last, e_idx[:ne].copy(), e_t[:ne].copy(),
            e_o[:ne].copy(), stolen, (l_h, l_amt, l_org, l_tnt))


def run_sweep(enc, seeds, policy: str, price: np.ndarray, max_hops: int = 2**30) -> SweepResult:
    """Run the compiled sweep for `policy` over an `EncodedLedger` and `ResolvedSeeds`."""
    ev_time = np.ascontiguousarray(seeds.event_time, np.int64)
    args = (enc.src, enc.dst, enc.amount_out, enc.amount_in, enc.time, enc.stop,
            seeds.flow_index, seeds.event_pos, seeds.event_holding, ev_time,
            np.ascontiguousarray(price, np.float64), int(enc.n_holdings))
    if policy == FIFO:
        st, sink, code, first, last, ei, et, eo, stolen, lots = sweep_fifo(*args)
        pois = hops = None
    elif policy in (HAIRCUT, POISON):
        lots = None
        poison = policy == POISON
        st, sink, code, first, last, ei, et, eo, stolen, pois, hops = sweep_haircut(
            *args, poison, int(max_hops))
        if not poison:
            pois = hops = None
    else:
        raise ValueError(f"unknown policy {policy!r} (one of {', '.join(POLICIES)})")
    return SweepResult(
        balance=st[:, 0].copy(), taint=st[:, 1].copy(), origin=st[:, 2].copy(),
        sink_taint=sink[:, 0].copy(), sink_origin=sink[:, 1].copy(), sink_code=code,
        first_time=first, last_time=last, edge_index=ei, edge_taint=et, edge_origin=eo,
        stolen=float(stolen), poisoned=pois, hops=hops, lots=lots,
    )
