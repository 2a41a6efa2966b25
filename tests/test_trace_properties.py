"""Property tests: the compiled sweep against the plain reference, and the laws of each policy."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heisttrace.ledger import open_workspace
from heisttrace.trace.run import run_trace
from trace_helpers import add, flow, label
from trace_reference import reference_trace

SETTINGS = settings(max_examples=8, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ADDRS = ["0xa", "0xb", "0xc", "0xd", "0xe", "0xvictim", "0xex", "0xmix", "0xdex", "0xspam",
         "fees"]


def close(x: float, y: float, scale: float) -> bool:
    return abs(x - y) <= 1e-9 * max(abs(x), abs(y)) + 1e-12 * scale


@st.composite
def ledgers(draw):
    """Random small ledgers with a theft transaction, labels, swaps, zero values and ties."""
    n = draw(st.integers(8, 40))
    rows = []
    for k in range(n):
        src = draw(st.sampled_from(ADDRS[:7] + ["0xdex"]))
        dst = draw(st.sampled_from(ADDRS))
        amount = draw(st.integers(0, 2000)) * 10**15
        kind = draw(st.sampled_from(["native", "native", "native", "token", "swap"]))
        asset = "ETH" if kind != "token" else "0xtok"
        r = dict(chain="ethereum", block=draw(st.integers(1, 12)), time=0, ordinal=k,
                 tx_hash=f"0x{k:04x}", src=src, dst=dst, asset=asset, amount_out=str(amount),
                 amount_in=str(amount), kind=kind, dst_chain=None, dst_asset=None)
        if kind == "swap":
            r["dst_asset"] = "0xtok" if asset == "ETH" else "ETH"
            r["amount_in"] = str(draw(st.integers(0, 5000)) * 10**15)
        r["time"] = r["block"] * 10
        rows.append(r)
    theft_block = draw(st.integers(1, 6))
    for j in range(draw(st.integers(1, 3))):
        dst = draw(st.sampled_from(["0xa", "0xb", "0xc", "0xex"]))
        rows.append(flow(theft_block * 10, "0xtheft", "0xvictim", dst,
                         draw(st.integers(1, 500)), ordinal=1000 + j, block=theft_block))
    return rows


_POOL: list = []


class _Shared:
    """One DuckDB workspace per slot reused across examples (opening one costs ~0.1 s)."""

    def __init__(self, ws):
        self.ws = ws

    def __getattr__(self, name):
        return getattr(self.ws, name)

    def close(self):
        _POOL.append(self.ws)


def _workspace(rows, order_seed=None):
    if _POOL:
        ws = _POOL.pop()
        for table in ("flow_rows", "labels", "cases", "case_sinks", "case_edges"):
            ws.con.execute(f"DELETE FROM {table}")
    else:
        ws = open_workspace(Path(tempfile.mkdtemp()) / "ws")
    ws = _Shared(ws)
    rows = list(rows)
    if order_seed is not None:
        random.Random(order_seed).shuffle(rows)
    add(ws, rows)
    label(ws, "0xex", "exchange", "Binance")
    label(ws, "0xmix", "mixing_service", "Tornado")
    label(ws, "0xdex", "defi_dex", "Uniswap")
    label(ws, "0xspam", "spam")
    return ws


def _engine_state(ws, case):
    """holding -> origin, holding -> amount, edges -> (taint, origin) from the case tables."""
    origin, amount = {}, {}
    for b, c, a, s, o, m in ws.con.execute(
            "SELECT bucket, chain, address, asset, origin_amount, amount FROM case_sinks "
            "WHERE case_name = ?", [case]).fetchall():
        origin[(b, (c, a, s))] = origin.get((b, (c, a, s)), 0.0) + o
        amount[(b, (c, a, s))] = amount.get((b, (c, a, s)), 0.0) + m
    edges = {(c, t, o): (tt, oo) for c, t, o, tt, oo in ws.con.execute(
        "SELECT chain, tx_hash, ordinal, taint, origin_taint FROM case_edges WHERE case_name = ?",
        [case]).fetchall()}
    return origin, amount, edges


def _ref_state(ref, policy):
    origin, amount = {}, {}
    for h, (bucket, units, o) in ref.sinks.items():
        if o != 0 or units != 0:
            origin[(bucket, h)] = o
            amount[(bucket, h)] = units
    held = set(ref.origin) | set(ref.taint)
    if policy == "poison":
        held |= {h for h in ref.poisoned if ref.balance.get(h, 0.0) > 0 and h not in ref.sinks}
    for h in held:
        o = ref.origin.get(h, 0.0)
        t = ref.taint.get(h, 0.0)
        if policy == "poison" and h in ref.poisoned and h not in ref.sinks:
            t = ref.balance.get(h, 0.0)
        if o != 0 or t != 0:
            origin[("held", h)] = o
            amount[("held", h)] = t
    return origin, amount


@settings(SETTINGS, max_examples=15)
@given(rows=ledgers())
def test_kernel_equals_reference(rows):
    ws = _workspace(rows)
    try:
        for policy in ("haircut", "fifo", "poison"):
            _compare(ws, policy)
    finally:
        ws.close()


def _compare(ws, policy, seeds=("0xtheft",)):
    if True:
        res = run_trace(ws, "p", list(seeds), policy=policy, min_taint=0.0, max_hops=3)
        ref = reference_trace(ws, list(seeds), policy=policy, max_hops=3)
        assert close(res.stolen, ref.stolen, 1.0)
        scale = max(ref.stolen, 1.0)
        eng_o, eng_a, eng_e = _engine_state(ws, "p")
        ref_o, ref_a = _ref_state(ref, policy)
        # fold dormant/below_threshold into one "held" bucket: the split is the threshold's
        eng_o2, eng_a2 = {}, {}
        for (b, h), v in eng_o.items():
            key = ("held" if b in ("dormant", "below_threshold") else b, h)
            eng_o2[key] = eng_o2.get(key, 0.0) + v
            eng_a2[key] = eng_a2.get(key, 0.0) + eng_a[(b, h)]
        for key in set(eng_o2) | set(ref_o):
            assert close(eng_o2.get(key, 0.0), ref_o.get(key, 0.0), scale), key
            assert close(eng_a2.get(key, 0.0), ref_a.get(key, 0.0), scale), key
        ref_edges = {k: v for k, v in ref.edges.items() if v[1] > 0 or policy == "poison"}
        assert set(eng_e) == set(ref_edges)
        for k, (t, o) in ref_edges.items():
            assert close(eng_e[k][0], t, scale) and close(eng_e[k][1], o, scale), k
        # the invariant: every stolen unit in exactly one bucket
        total = sum(eng_o.values())
        assert close(total, res.stolen, scale)
        assert close(sum(res.breakdown.values()), res.stolen, scale)


@st.composite
def drain_cycles(draw):
    """Few holdings, many flows, often moving a holding's exact balance: taint arrives,
    drains to nothing (or leaves clean money behind), and arrives again through later thefts
    or an address seed. The kernel's per-holding flags and FIFO queues must follow."""
    addrs = ["0xa", "0xb", "0xc"]
    held = {a: 0 for a in addrs}
    rows, seeds = [], []
    n = draw(st.integers(6, 30))
    thefts = set(draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4)))
    for k in range(n):
        t = 10 * (k + 1)
        if k in thefts:
            dst = draw(st.sampled_from(addrs))
            amount = draw(st.integers(1, 100))
            rows.append(flow(t, f"0xtheft{k}", "0xvictim", dst, amount, ordinal=k))
            seeds.append(f"0xtheft{k}")
            held[dst] += amount
            continue
        src = draw(st.sampled_from(addrs))
        how = draw(st.sampled_from(["all", "all", "some", "clean in", "seed"]))
        if how == "seed":
            if not any(src in (r["src"], r["dst"]) for r in rows):
                continue  # an address seed needs an address the ledger knows
            seeds.append(f"{src}@{t}")
            rows.append(flow(t, f"0xc{k}", "0xfriend", "0xd", 1, ordinal=k))  # time moves on
            continue
        if how == "clean in":
            amount = draw(st.integers(1, 100))
            rows.append(flow(t, f"0xc{k}", "0xfriend", src, amount, ordinal=k))
            held[src] += amount
            continue
        dst = draw(st.sampled_from(addrs + ["0xex", "0xd"]))
        amount = held[src] if how == "all" and held[src] else draw(st.integers(1, 100))
        rows.append(flow(t, f"0xt{k}", src, dst, amount, ordinal=k))
        held[src] = max(held[src] - amount, 0)
        if dst in held:
            held[dst] += amount
    return rows, seeds


@settings(SETTINGS, max_examples=15)
@given(case=drain_cycles())
def test_kernel_equals_reference_through_drain_cycles(case):
    rows, seeds = case
    ws = _workspace(rows)
    try:
        for policy in ("haircut", "fifo", "poison"):
            _compare(ws, policy, seeds)
    finally:
        ws.close()


@SETTINGS
@given(rows=ledgers(), order=st.integers(0, 10**6), policy=st.sampled_from(["haircut", "fifo"]))
def test_stored_order_changes_nothing(rows, order, policy):
    a, b = _workspace(rows), _workspace(rows, order_seed=order)
    try:
        run_trace(a, "p", ["0xtheft"], policy=policy, min_taint=0.0)
        run_trace(b, "p", ["0xtheft"], policy=policy, min_taint=0.0)
        assert _engine_state(a, "p") == _engine_state(b, "p")
    finally:
        a.close()
        b.close()


@SETTINGS
@given(rows=ledgers(), policy=st.sampled_from(["haircut", "fifo", "poison"]))
def test_nothing_flows_backwards_in_time(rows, policy):
    ws = _workspace(rows)
    try:
        run_trace(ws, "p", ["0xtheft"], policy=policy, min_taint=0.0, max_hops=50)
        theft = ws.con.execute("SELECT min(time) FROM ledger WHERE tx_hash = '0xtheft'").fetchone()[0]
        edges = ws.con.execute(
            "SELECT time, chain, block, ordinal, tx_hash, src, asset, dst_chain, dst, dst_asset "
            "FROM case_edges WHERE case_name = 'p'").fetchall()
        assert all(e[0] >= theft for e in edges)
        arrivals: dict = {}
        for e in edges:
            key = (e[7], e[8], e[9])
            arrivals[key] = min(arrivals.get(key, e[:5]), e[:5])
        for e in edges:
            if e[4] == "0xtheft":
                continue  # the seed flows themselves
            # taint leaving a holding must have arrived there strictly earlier
            assert ("ethereum", e[5], e[6]) in arrivals, e
            assert arrivals[("ethereum", e[5], e[6])] < e[:5], e
    finally:
        ws.close()


@SETTINGS
@given(rows=ledgers())
def test_poison_taints_a_superset_of_haircut(rows):
    ws = _workspace(rows)
    try:
        run_trace(ws, "h", ["0xtheft"], policy="haircut", min_taint=0.0)
        run_trace(ws, "p", ["0xtheft"], policy="poison", min_taint=0.0, max_hops=1000)
        def reached(case, amount_col):
            return {r[:3] for r in ws.con.execute(
                f"SELECT chain, address, asset, {amount_col} FROM case_sinks WHERE case_name = ?",
                [case]).fetchall() if r[3] > 0}
        assert reached("h", "amount") <= reached("p", "amount")
        he = {r for r in ws.con.execute(
            "SELECT tx_hash, ordinal FROM case_edges WHERE case_name = 'h'").fetchall()}
        pe = {r for r in ws.con.execute(
            "SELECT tx_hash, ordinal FROM case_edges WHERE case_name = 'p'").fetchall()}
        assert he <= pe
    finally:
        ws.close()


@SETTINGS
@given(clean=st.integers(0, 1000), stolen=st.integers(1, 1000),
       outs=st.lists(st.integers(1, 300), min_size=1, max_size=6))
def test_haircut_splits_in_proportion(clean, stolen, outs):
    """A holding with clean C and stolen S: each outflow carries out·S/(C+S) of taint."""
    rows = []
    if clean:
        rows.append(flow(10, "0xc0", "0xfriend", "0xa", clean))
    rows.append(flow(20, "0xtheft", "0xvictim", "0xa", stolen))
    left = clean + stolen
    sent = []
    for k, o in enumerate(outs):
        o = min(o, left)
        if o <= 0:
            break
        rows.append(flow(30 + k, f"0xo{k}", "0xa", f"0xout{k}", o))
        sent.append(o)
        left -= o
    ws = _workspace(rows)
    try:
        run_trace(ws, "p", ["0xtheft"], min_taint=0.0)
        got = dict(ws.con.execute(
            "SELECT dst, taint FROM case_edges WHERE case_name = 'p' AND src = '0xa'").fetchall())
        share = stolen / (clean + stolen)
        for k, o in enumerate(sent):
            assert got[f"0xout{k}"] == pytest.approx(o * share, rel=1e-9)
    finally:
        ws.close()


@SETTINGS
@given(ins=st.lists(st.tuples(st.booleans(), st.integers(1, 100)), min_size=1, max_size=6),
       outs=st.lists(st.integers(1, 150), min_size=1, max_size=6))
def test_fifo_takes_the_oldest_first(ins, outs):
    """Outflow k carries exactly the tainted part of its interval of the arrival sequence."""
    rows, intervals, pos = [], [], 0
    for k, (tainted, amount) in enumerate(ins):
        tx = f"0xt{k}" if tainted else f"0xc{k}"
        rows.append(flow(10 + k, tx, f"0xsrc{k}", "0xa", amount))
        intervals.append((pos, pos + amount, tainted))
        pos += amount
    seeds = [f"0xt{k}" for k, (t, _) in enumerate(ins) if t]
    if not seeds:
        return
    cursor, expected = 0, {}
    for k, o in enumerate(outs):
        o = min(o, pos - cursor)
        if o <= 0:
            break
        rows.append(flow(100 + k, f"0xo{k}", "0xa", f"0xout{k}", o))
        expected[f"0xout{k}"] = sum(max(0, min(hi, cursor + o) - max(lo, cursor))
                                    for lo, hi, t in intervals if t)
        cursor += o
    ws = _workspace(rows)
    try:
        run_trace(ws, "p", seeds, policy="fifo", min_taint=0.0)
        got = dict(ws.con.execute(
            "SELECT dst, taint FROM case_edges WHERE case_name = 'p' AND src = '0xa'").fetchall())
        for dst, want in expected.items():
            assert got.get(dst, 0.0) == pytest.approx(want, rel=1e-9, abs=1e-9)
    finally:
        ws.close()
