"""The compiled sweep: one pass over the encoded flows in time order.

Per holding it keeps the balance B, the tainted amount T (holding units) and the origin taint O
(origin units). The three policies share the frame and differ in how an outflow of `a` picks
its taint:

- haircut: the outflow carries T*a/B and O*a/B (proportional; BlockSci's haircut);
- FIFO: a holding is a queue of tainted and clean segments, outflows take from the head
  (Clayton's case); the queue only exists while the holding holds taint: before taint first
  reaches it, and again once the last tainted segment has left, the balance is all clean and
  a plain number is enough;
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

Speed: almost every flow is clean (its source holds no taint; for FIFO, neither end has a
queue) and only moves two balances. A 1-byte flag per holding (a million holdings: 1 MB, it
stays in cache) says which holdings are not clean, and `_clean_run` moves balances in a tight
loop until the next flow that touches a flagged holding, the next seed flow or the next address
seed; only those flows take the full path. Small @njit helpers hold what the policies share;
Numba compiles them into their callers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

HAIRCUT, FIFO, POISON = "haircut", "fifo", "poison"
POLICIES: tuple[str, ...] = (HAIRCUT, FIFO, POISON)

# An outflow within this relative distance of the balance drains the holding: float sums of
# many inflows rarely equal the integer total exactly, and a drained holding should be empty
# rather than keep a 1e-16 crumb of taint.
SNAP = 1e-12

# Bits of the per-holding flag; a flow whose source has none set (FIFO: neither end) is clean.
DIRTY = 1  # haircut, poison: T or O may be non-zero; FIFO: the holding has a queue
POISONED = 2  # poison: the holding's outflows are exposed

# Rows a growable buffer starts with; they double when full.
EDGES_START = 1024
SEGMENTS_START = 1024
PIECES_START = 64


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


# ---------------------------------------------------------------------------------------------
# What both kernels share


@njit(cache=True)
def _grow(a: np.ndarray, n: int) -> np.ndarray:
    """`a` (1-D, or 2-D by rows) copied into a new array of n rows: buffers double when full."""
    out = np.empty((n,) + a.shape[1:], a.dtype)
    out[: a.shape[0]] = a
    return out


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Ask the CPU to start loading row `idx` of `arr` into cache; nothing else happens.

    A tainted flow reads and writes half a dozen per-holding rows scattered over tens of
    megabytes; asking for all of them up front lets the loads overlap instead of waiting on
    each other behind the branches between them (haircut: ~10-15% of the sweep at 10M flows).
    """
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        row = context.cast(builder, args[1], idxty, types.intp)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary,
                                       [row] + [zero] * (aryty.ndim - 1))
        byte_ptr = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [byte_ptr, i32(1), i32(3), i32(1)])  # for writing, keep, data
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def _holdings(n_holdings: int):
    """Zeroed per-holding arrays: balance, flag, sink (units, origin), sink code, first/last."""
    return (np.zeros(n_holdings), np.zeros(n_holdings, np.uint8), np.zeros((n_holdings, 2)),
            np.zeros(n_holdings, np.int8), np.full(n_holdings, -1, np.int64),
            np.full(n_holdings, -1, np.int64))


@njit(cache=True)
def _drains(a: float, balance: float) -> bool:
    """An outflow of `a` empties the holding (within SNAP, or beyond: missing history)."""
    return a >= balance * (1.0 - SNAP)


@njit(cache=True)
def _take_balance(bal: np.ndarray, s: int, a: float) -> float:
    """Take `a` (> 0) out of holding `s`'s balance; return the balance it had before."""
    before = bal[s]
    bal[s] = 0.0 if _drains(a, before) else before - a
    return before


@njit(cache=True)
def _clean_run(src, dst, aout, ain, bal, flag, i: int, end: int, both_ends: bool) -> int:
    """Move the balances of flows i, i+1, ... (< end) while they are clean; return where it
    stopped: `end`, or the first flow whose source (or, `both_ends`, destination) is flagged.

    This is where the sweep spends its time, so it touches nothing but the two balances and
    the 1-byte flags. Zero-value flows carry nothing (address poisoning, spam).
    """
    while i < end:
        s = src[i]
        d = dst[i]
        if flag[s] != 0 or (both_ends and flag[d] != 0):
            return i
        a = aout[i]
        if a > 0.0:
            _take_balance(bal, s, a)
            bal[d] += ain[i]
        elif ain[i] > 0.0:
            bal[d] += ain[i]  # value from nowhere: a conversion without an input
        i += 1
    return i


@njit(cache=True)
def _position(positions: np.ndarray, k: int, end: int) -> int:
    """The k-th sweep position of a sorted list (seed flows, address seeds), `end` past it."""
    return positions[k] if k < positions.shape[0] else end


@njit(cache=True)
def _push_edge(e_idx, e_val, ne: int, i: int, taint: float, origin: float):
    """Record that flow `i` carried taint as edge number `ne`; return the (grown) buffers."""
    if ne == e_idx.shape[0]:
        e_idx = _grow(e_idx, 2 * ne)
        e_val = _grow(e_val, 2 * ne)
    e_idx[ne] = i
    e_val[ne, 0] = taint
    e_val[ne, 1] = origin
    return e_idx, e_val


@njit(cache=True)
def _reached(first, last, h: int, t: int) -> None:
    """Taint reached holding `h` at time `t`."""
    if first[h] < 0:
        first[h] = t
    last[h] = t


@njit(cache=True)
def _to_sink(sink, sink_code, h: int, units: float, origin: float, code: int) -> None:
    """A stopping holding collects taint; it never leaves again."""
    sink[h, 0] += units
    sink[h, 1] += origin
    sink_code[h] = code


# ---------------------------------------------------------------------------------------------
# Haircut (and poison)


@njit(cache=True)
def _seed_holding(h: int, bal, tnt, flag, sink, sink_code, price) -> float:
    """An address seed: taint all of `h`'s balance; return the fresh origin units."""
    fresh = bal[h] - tnt[h, 0]
    if fresh <= 0.0:
        return 0.0
    v = fresh * price[h]
    if sink_code[h] != 0:
        _to_sink(sink, sink_code, h, fresh, v, sink_code[h])
    else:
        tnt[h, 0] = bal[h]
        tnt[h, 1] += v
        flag[h] |= DIRTY
    return v


@njit(cache=True)
def _haircut_out(s: int, a: float, bal, tnt, flag):
    """Take an outflow of `a` (> 0) out of `s`: the (units, origin) taint it carries."""
    before = _take_balance(bal, s, a)
    t = tnt[s, 0]
    og = tnt[s, 1]
    if _drains(a, before):  # all of it, plus missing (clean) history
        tnt[s, 0] = 0.0
        tnt[s, 1] = 0.0
        flag[s] &= POISONED  # clean again: its flows take the fast path (unless poisoned)
        return t, og
    if t == 0.0 and og == 0.0:
        return 0.0, 0.0
    f = a / before
    c = t * f
    o = og * f
    tnt[s, 0] = t - c
    tnt[s, 1] = og - o
    return c, o


@njit(cache=True)
def _poison(s: int, d: int, is_seed: bool, stops: bool, flag, hop, max_hops: int) -> bool:
    """Whether the flow s -> d is exposed; marks `d` poisoned at its fewest hops unless the
    flow stops there."""
    if is_seed:
        nh = 0
    elif flag[s] & POISONED and hop[s] < max_hops:
        nh = hop[s] + 1
    else:
        return False
    if not stops and (flag[d] & POISONED == 0 or hop[d] > nh):
        flag[d] |= POISONED
        hop[d] = nh
    return True


@njit(cache=True, nogil=True)
def sweep_haircut(src, dst, aout, ain, time, stop, seed_idx, ev_pos, ev_h, ev_time, price,
                  n_holdings, poison, max_hops):
    """Haircut (and poison, which moves origin units the same way). See the module doc."""
    n = src.shape[0]
    bal, flag, sink, sink_code, first, last = _holdings(n_holdings)
    tnt = np.zeros((n_holdings, 2))  # T, O per holding
    hop = np.zeros(n_holdings if poison else 1, np.int32)
    e_idx = np.empty(EDGES_START, np.int64)
    e_val = np.empty((EDGES_START, 2))
    ne = 0
    stolen = 0.0
    ks = 0
    next_seed = _position(seed_idx, 0, n)
    ke = 0
    i = 0
    while True:
        while ke < ev_pos.shape[0] and ev_pos[ke] <= i:
            h = ev_h[ke]
            v = _seed_holding(h, bal, tnt, flag, sink, sink_code, price)
            if v > 0.0:
                stolen += v
                _reached(first, last, h, ev_time[ke])
            if poison:
                flag[h] |= POISONED
                hop[h] = 0
            ke += 1
        if i == n:
            break
        next_event = _position(ev_pos, ke, n)
        i = _clean_run(src, dst, aout, ain, bal, flag, i, min(next_seed, next_event), False)
        if i == next_event:
            continue  # an address seed applies first (or the sweep is done)
        is_seed = i == next_seed
        if is_seed:
            ks += 1
            next_seed = _position(seed_idx, ks, n)
        s = src[i]
        d = dst[i]
        _prefetch(tnt, s)
        _prefetch(bal, d)
        _prefetch(tnt, d)
        _prefetch(first, d)
        _prefetch(last, d)
        a = aout[i]
        b = ain[i]
        i += 1
        if a > 0.0:
            c, o = _haircut_out(s, a, bal, tnt, flag)
            cin = c * (b / a)
        elif b > 0.0:
            c = o = cin = 0.0
        else:
            continue  # zero-value flows carry nothing (address poisoning, spam)
        if is_seed and b - cin > 0.0:
            v = (b - cin) * price[d]
            stolen += v
            o += v
            cin = b
        bal[d] += b
        poisoned = poison and _poison(s, d, is_seed, stop[i - 1] != 0, flag, hop, max_hops)
        if not (cin > 0.0 or o > 0.0 or poisoned):
            continue
        if poisoned:
            carried = a if a > 0.0 else b
        elif b > 0.0 and a > 0.0:
            carried = cin * (a / b)
        else:
            carried = cin
        e_idx, e_val = _push_edge(e_idx, e_val, ne, i - 1, carried, o)
        ne += 1
        code = stop[i - 1]
        if code != 0:
            _to_sink(sink, sink_code, d, b if poisoned else cin, o, code)
        else:
            tnt[d, 0] += cin
            tnt[d, 1] += o
            flag[d] |= DIRTY
        _reached(first, last, d, time[i - 1])
    return (bal, tnt, sink, sink_code, first, last, e_idx[:ne].copy(), e_val[:ne].copy(),
            stolen, flag, hop)


# ---------------------------------------------------------------------------------------------
# FIFO: per-holding queues of segments, as linked lists in one pool
#
# A segment is a row of `seg_f` (amount, origin) and of `seg_i` (next row, tainted 0/1): 16 + 8
# bytes, so one segment is a fraction of a cache line. Row 0 of `seg_i` is the pool's header
# (head of the free list, free rows); free rows are chained through their `next`.


@njit(cache=True)
def _release(seg_i, g: int) -> None:
    """Give segment `g` back to the pool."""
    seg_i[g, 0] = seg_i[0, 0]
    seg_i[0, 0] = g
    seg_i[0, 1] += 1


@njit(cache=True)
def _release_rows(seg_i, lo: int, hi: int) -> None:
    """Put rows lo..hi-1 on the free list (newly allocated pool rows)."""
    for g in range(hi - 1, lo - 1, -1):
        _release(seg_i, g)


@njit(cache=True)
def _new_pool(rows: int):
    """An empty segment pool with `rows` - 1 free segments."""
    seg_f = np.zeros((rows, 2))
    seg_i = np.zeros((rows, 2), np.int32)
    seg_i[0, 0] = -1
    _release_rows(seg_i, 1, rows)
    return seg_f, seg_i


@njit(cache=True)
def _reserve(seg_f, seg_i, k: int):
    """The pool with at least `k` free segments (grown if needed), so that appends never
    reallocate half-way through a flow; returns the (possibly new) arrays."""
    if seg_i[0, 1] >= k:
        return seg_f, seg_i
    rows = seg_f.shape[0]
    grown = max(2 * rows, rows + k)
    seg_f = _grow(seg_f, grown)
    seg_i = _grow(seg_i, grown)
    _release_rows(seg_i, rows, grown)
    return seg_f, seg_i


@njit(cache=True)
def _append(h: int, amount: float, origin: float, tainted: int, head, tail, ntaint,
            seg_f, seg_i) -> None:
    """Queue a piece at `h`'s tail (the pool must have a free segment). Clean money next to
    clean money merges: the order inside it changes nothing."""
    tl = tail[h]
    if tainted == 0 and tl >= 0 and seg_i[tl, 1] == 0:
        seg_f[tl, 0] += amount
        return
    g = seg_i[0, 0]
    seg_i[0, 0] = seg_i[g, 0]
    seg_i[0, 1] -= 1
    seg_f[g, 0] = amount
    seg_f[g, 1] = origin
    seg_i[g, 0] = -1
    seg_i[g, 1] = tainted
    if tl >= 0:
        seg_i[tl, 0] = g
    else:
        head[h] = g
    tail[h] = g
    ntaint[h] += tainted


@njit(cache=True)
def _drop_queue(h: int, head, tail, flag, seg_i) -> None:
    """Forget `h`'s queue once no tainted segment is left: the balance alone says the same,
    and the holding's flows take the fast path again."""
    g = head[h]
    while g >= 0:
        nx = seg_i[g, 0]
        _release(seg_i, g)
        g = nx
    head[h] = -1
    tail[h] = -1
    flag[h] = 0


@njit(cache=True)
def _push_piece(p_f, p_t, k: int, amount: float, origin: float, tainted: int):
    """Set piece `k` of the flow being moved; return the (grown) piece buffers."""
    if k == p_t.shape[0]:
        p_f = _grow(p_f, 2 * k)
        p_t = _grow(p_t, 2 * k)
    p_f[k, 0] = amount
    p_f[k, 1] = origin
    p_t[k] = tainted
    return p_f, p_t


@njit(cache=True)
def _take_queue(s: int, a: float, before: float, head, tail, ntaint, seg_f, seg_i, p_f, p_t):
    """Cut an outflow of `a` from the head of `s`'s queue (balance `before`) into pieces,
    oldest first; a deficit (missing history) is clean money older than the queue, and
    whatever the queue lacks is clean money after it. Returns (p_f, p_t, pieces)."""
    drain = _drains(a, before)
    rem = a
    k = 0
    if drain and a > before:
        p_f, p_t = _push_piece(p_f, p_t, k, a - before, 0.0, 0)
        k += 1
        rem = before
    g = head[s]
    while g >= 0 and (drain or rem > 0.0):
        amount = seg_f[g, 0]
        tainted = seg_i[g, 1]
        if drain or rem >= amount * (1.0 - SNAP):
            p_f, p_t = _push_piece(p_f, p_t, k, amount, seg_f[g, 1], tainted)
            rem -= amount
            ntaint[s] -= tainted
            nx = seg_i[g, 0]
            _release(seg_i, g)
            g = nx
        else:
            part = seg_f[g, 1] * (rem / amount)
            p_f, p_t = _push_piece(p_f, p_t, k, rem, part, tainted)
            seg_f[g, 0] = amount - rem
            seg_f[g, 1] -= part
            rem = 0.0
        k += 1
    head[s] = g
    if g < 0:
        tail[s] = -1
    if not drain and rem > 0.0:
        p_f, p_t = _push_piece(p_f, p_t, k, rem, 0.0, 0)
        k += 1
    return p_f, p_t, k


@njit(cache=True)
def _seed_queue(h: int, bal, flag, head, tail, ntaint, seg_f, seg_i, price) -> float:
    """An address seed: taint every clean segment of `h` (or its whole balance, when it has
    no queue); the pool must have a free segment. Returns the fresh holding units."""
    if flag[h] == 0:
        if bal[h] <= 0.0:
            return 0.0
        _append(h, bal[h], bal[h] * price[h], 1, head, tail, ntaint, seg_f, seg_i)
        flag[h] = DIRTY
        return bal[h]
    fresh = 0.0
    g = head[h]
    while g >= 0:
        if seg_i[g, 1] == 0:
            seg_i[g, 1] = 1
            seg_f[g, 1] = seg_f[g, 0] * price[h]
            ntaint[h] += 1
            fresh += seg_f[g, 0]
        g = seg_i[g, 0]
    return fresh


@njit(cache=True)
def _queues_out(flag, head, seg_f, seg_i):
    """The queues at the end, in one walk: (T, O) per holding from their tainted segments,
    and every segment, queue by queue and oldest first, as (holding, (amount, origin),
    tainted) rows for the live watch to continue from."""
    n = 0
    for h in range(flag.shape[0]):
        g = head[h] if flag[h] != 0 else -1
        while g >= 0:
            n += 1
            g = seg_i[g, 0]
    tnt = np.zeros((flag.shape[0], 2))
    l_h = np.empty(n, np.int32)
    l_f = np.empty((n, 2))
    l_t = np.empty(n, np.int8)
    k = 0
    for h in range(flag.shape[0]):
        g = head[h] if flag[h] != 0 else -1
        while g >= 0:
            if seg_i[g, 1] == 1:
                tnt[h, 0] += seg_f[g, 0]
                tnt[h, 1] += seg_f[g, 1]
            l_h[k] = h
            l_f[k, 0] = seg_f[g, 0]
            l_f[k, 1] = seg_f[g, 1]
            l_t[k] = seg_i[g, 1]
            k += 1
            g = seg_i[g, 0]
    return tnt, l_h, l_f, l_t


@njit(cache=True, nogil=True)
def sweep_fifo(src, dst, aout, ain, time, stop, seed_idx, ev_pos, ev_h, ev_time, price,
               n_holdings):
    """FIFO over per-holding queues; a holding is flagged exactly while it has a queue, and a
    queue exists exactly while it holds a tainted segment."""
    n = src.shape[0]
    bal, flag, sink, sink_code, first, last = _holdings(n_holdings)
    head = np.full(n_holdings, -1, np.int32)
    tail = np.full(n_holdings, -1, np.int32)
    ntaint = np.zeros(n_holdings, np.int32)  # tainted segments in the queue
    seg_f, seg_i = _new_pool(SEGMENTS_START)
    p_f = np.empty((PIECES_START, 2))
    p_t = np.empty(PIECES_START, np.int32)
    e_idx = np.empty(EDGES_START, np.int64)
    e_val = np.empty((EDGES_START, 2))
    ne = 0
    stolen = 0.0
    ks = 0
    next_seed = _position(seed_idx, 0, n)
    ke = 0
    i = 0
    while True:
        while ke < ev_pos.shape[0] and ev_pos[ke] <= i:
            h = ev_h[ke]
            if sink_code[h] == 0:  # a stopping holding keeps nothing to follow
                seg_f, seg_i = _reserve(seg_f, seg_i, 1)
                fresh = _seed_queue(h, bal, flag, head, tail, ntaint, seg_f, seg_i, price)
                if fresh > 0.0:
                    stolen += fresh * price[h]
                    _reached(first, last, h, ev_time[ke])
            ke += 1
        if i == n:
            break
        next_event = _position(ev_pos, ke, n)
        i = _clean_run(src, dst, aout, ain, bal, flag, i, min(next_seed, next_event), True)
        if i == next_event:
            continue  # an address seed applies first (or the sweep is done)
        is_seed = i == next_seed
        if is_seed:
            ks += 1
            next_seed = _position(seed_idx, ks, n)
        s = src[i]
        d = dst[i]
        a = aout[i]
        b = ain[i]
        i += 1
        if a <= 0.0 and b <= 0.0:
            continue  # zero-value flows carry nothing
        # -- the pieces of the outflow, oldest first
        if a <= 0.0:
            p_f, p_t = _push_piece(p_f, p_t, 0, b, 0.0, 0)  # value from nowhere: clean
            k = 1
        else:
            before = _take_balance(bal, s, a)
            if flag[s] == 0:
                p_f, p_t = _push_piece(p_f, p_t, 0, a, 0.0, 0)
                k = 1
            else:
                p_f, p_t, k = _take_queue(s, a, before, head, tail, ntaint, seg_f, seg_i,
                                          p_f, p_t)
                if ntaint[s] == 0:
                    _drop_queue(s, head, tail, flag, seg_i)
        r = b / a if a > 0.0 else 1.0
        c = 0.0
        o = 0.0
        for j in range(k):
            if is_seed and p_t[j] == 0:
                p_t[j] = 1
                p_f[j, 1] = p_f[j, 0] * r * price[d]
                stolen += p_f[j, 1]
            if p_t[j] == 1:
                c += p_f[j, 0]
                o += p_f[j, 1]
        before_d = bal[d]
        bal[d] = before_d + b
        tainted = c > 0.0 or o > 0.0
        if tainted:
            e_idx, e_val = _push_edge(e_idx, e_val, ne, i - 1, c, o)
            ne += 1
            _reached(first, last, d, time[i - 1])
        code = stop[i - 1]
        if code != 0:
            if tainted:
                _to_sink(sink, sink_code, d, c * r, o, code)
            continue
        if flag[d] == 0:
            if not tainted:
                continue  # all clean into an all-clean holding: the balance says it all
            seg_f, seg_i = _reserve(seg_f, seg_i, k + 1)
            flag[d] = DIRTY
            if before_d > 0.0:  # the clean money already there is older than these pieces
                _append(d, before_d, 0.0, 0, head, tail, ntaint, seg_f, seg_i)
        else:
            seg_f, seg_i = _reserve(seg_f, seg_i, k)
        for j in range(k):
            _append(d, p_f[j, 0] * r, p_f[j, 1], p_t[j], head, tail, ntaint, seg_f, seg_i)
    tnt, l_h, l_f, l_t = _queues_out(flag, head, seg_f, seg_i)
    return (bal, tnt, sink, sink_code, first, last, e_idx[:ne].copy(), e_val[:ne].copy(),
            stolen, flag, np.zeros(1, np.int32), l_h, l_f, l_t)


def run_sweep(enc, seeds, policy: str, price: np.ndarray, max_hops: int = 2**30) -> SweepResult:
    """Run the compiled sweep for `policy` over an `EncodedLedger` and `ResolvedSeeds`."""
    ev_time = np.ascontiguousarray(seeds.event_time, np.int64)
    args = (enc.src, enc.dst, enc.amount_out, enc.amount_in, enc.time, enc.stop,
            seeds.flow_index, seeds.event_pos, seeds.event_holding, ev_time,
            np.ascontiguousarray(price, np.float64), int(enc.n_holdings))
    lots = None
    if policy == FIFO:
        *out, l_h, l_f, l_t = sweep_fifo(*args)
        lots = (l_h, l_f[:, 0].copy(), l_f[:, 1].copy(), l_t)
    elif policy in (HAIRCUT, POISON):
        out = sweep_haircut(*args, policy == POISON, int(max_hops))
    else:
        raise ValueError(f"unknown policy {policy!r} (one of {', '.join(POLICIES)})")
    bal, tnt, sink, code, first, last, e_idx, e_val, stolen, flag, hops = out
    poison = policy == POISON
    return SweepResult(
        balance=bal, taint=tnt[:, 0].copy(), origin=tnt[:, 1].copy(),
        sink_taint=sink[:, 0].copy(), sink_origin=sink[:, 1].copy(), sink_code=code,
        first_time=first, last_time=last, edge_index=e_idx, edge_taint=e_val[:, 0].copy(),
        edge_origin=e_val[:, 1].copy(), stolen=float(stolen),
        poisoned=((flag & POISONED) != 0).astype(np.int8) if poison else None,
        hops=hops if poison else None, lots=lots,
    )
