"""A plain, slow, obviously-correct reference of the trace semantics (dicts and lists).

It reads the same `ledger` view and labels but shares no code with the engine's encoder or
kernel: the property tests compare the two on random ledgers. Semantics (see DESIGN.md and
heisttrace.trace.kernel): flows in (time, chain, block, ordinal, tx_hash) order; an outflow
larger than the balance is clean money that was already there; stopping holdings collect
taint; seed flows are 100% tainted at their destination.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from heisttrace.labels.roles import address_roles

SNAP = 1e-12
STOP = {"cash_out": "cashed_out", "dark": "dark", "parked": "parked", "frozen": "frozen"}
UTXO = {"bitcoin", "litecoin", "dogecoin", "bitcoin_cash", "zcash"}
NATIVE = {"ethereum": "ETH", "bitcoin": "BTC"}


@dataclass
class RefResult:
    stolen: float = 0.0
    balance: dict = field(default_factory=dict)
    taint: dict = field(default_factory=dict)  # holding -> units left in ordinary holdings
    origin: dict = field(default_factory=dict)  # holding -> origin units left
    sinks: dict = field(default_factory=dict)  # holding -> [bucket, units, origin]
    edges: dict = field(default_factory=dict)  # (chain, tx_hash, ordinal) -> (taint, origin)
    poisoned: set = field(default_factory=set)
    sweep_seconds: float = 0.0  # the sweep alone, for the benchmark's ref_ratio


def _decimals(ws, chain, asset):
    row = ws.con.execute("SELECT decimals FROM tokens WHERE chain = ? AND address = ?",
                         [chain, asset]).fetchone()
    if row and row[0] is not None:
        return int(row[0])
    if chain in UTXO and asset == NATIVE.get(chain, chain.upper()):
        return 8
    return 18


def reference_trace(ws, seeds, policy="haircut", until=None, prices=None, max_hops=10):
    role = _roles(ws)
    cols = ["chain", "block", "time", "ordinal", "tx_hash", "src", "dst", "asset",
            "amount_out", "amount_in", "kind", "dst_chain", "dst_asset"]
    flows = [dict(zip(cols, r)) for r in ws.con.execute(
        f"SELECT {', '.join(cols)} FROM ledger").fetchall()]
    flows = [f for f in flows if until is None or f["time"] <= until]
    kept = []
    for f in flows:
        f["dchain"] = f["dst_chain"] or f["chain"]
        f["dasset"] = f["dst_asset"] or f["asset"]
        if "ignore" in (role.get((f["chain"], f["asset"])), role.get((f["chain"], f["src"])),
                        role.get((f["dchain"], f["dst"])), role.get((f["dchain"], f["dasset"]))):
            continue
        kept.append(f)
    kept.sort(key=lambda f: (f["time"], f["chain"], f["block"], f["ordinal"], f["tx_hash"]))
    dec = {}
    for f in kept:
        for c, a in ((f["chain"], f["asset"]), (f["dchain"], f["dasset"])):
            if (c, a) not in dec:
                dec[(c, a)] = _decimals(ws, c, a)
        f["a"] = int(f["amount_out"]) / 10 ** dec[(f["chain"], f["asset"])]
        f["b"] = int(f["amount_in"]) / 10 ** dec[(f["dchain"], f["dasset"])]
        f["s"] = (f["chain"], f["src"], f["asset"])
        f["d"] = (f["dchain"], f["dst"], f["dasset"])
        r = role.get((f["dchain"], f["dst"]))
        if f["dst"] == "fees":
            f["stop"] = "fees"
        elif r in STOP:
            f["stop"] = STOP[r]
        elif r == "conversion" and f["kind"] not in ("swap", "bridge"):
            f["stop"] = "bridged_untraced"
        else:
            f["stop"] = None

    seed_flows = set()
    addr_seeds = []  # (time, address)
    for seed in seeds:
        if "@" in seed:
            addr, t = seed.rsplit("@", 1)
            addr_seeds.append((int(t), addr.lower()))
        else:
            tx = [f for f in kept if f["tx_hash"] == seed.lower()]
            receivers = {f["dst"] for f in tx}
            for f in tx:
                if f["src"] not in receivers and f["dst"] != "fees" and f["kind"] != "fee":
                    seed_flows.add(id(f))
    addr_seeds.sort()

    def price(h):
        if prices is None:
            return 1.0
        return prices.get((h[0], h[2]), prices.get(h[2]))

    res = RefResult()
    started = time.perf_counter()
    if policy == "fifo":
        _fifo(kept, seed_flows, addr_seeds, price, res)
    else:
        _haircut(kept, seed_flows, addr_seeds, price, res, policy == "poison", max_hops)
    res.sweep_seconds = time.perf_counter() - started
    return res


def _roles(ws):
    out = {}
    for row in address_roles(ws).to_pylist():
        out[(row["chain"], row["address"])] = row["role"]
    return out


def _holdings_at(addr, res_balance, all_holdings):
    return sorted(h for h in all_holdings if h[1] == addr)


def _haircut(flows, seed_flows, addr_seeds, price, res, poison, max_hops):
    B, T, O = res.balance, res.taint, res.origin
    hop = {}
    holdings = {f["s"] for f in flows} | {f["d"] for f in flows}
    pending = list(addr_seeds)

    def apply_seeds(before_time):
        while pending and (before_time is None or pending[0][0] < before_time):
            t, addr = pending.pop(0)
            for h in _holdings_at(addr, B, holdings):
                fresh = B.get(h, 0.0) - T.get(h, 0.0)
                if fresh > 0:
                    v = fresh * price(h)
                    res.stolen += v
                    if h in res.sinks:
                        res.sinks[h][1] += fresh
                        res.sinks[h][2] += v
                    else:
                        T[h] = B.get(h, 0.0)
                        O[h] = O.get(h, 0.0) + v
                if poison:
                    res.poisoned.add(h)
                    hop[h] = 0

    for f in flows:
        apply_seeds(f["time"])
        s, d, a, b = f["s"], f["d"], f["a"], f["b"]
        c = o = 0.0
        if a > 0:
            bal = B.get(s, 0.0)
            if a >= bal * (1 - SNAP):  # all of it, plus missing (clean) history
                c, o = T.get(s, 0.0), O.get(s, 0.0)
                B[s], T[s], O[s] = 0.0, 0.0, 0.0
            else:
                t, og = T.get(s, 0.0), O.get(s, 0.0)
                if t != 0 or og != 0:
                    c, o = t * (a / bal), og * (a / bal)
                    T[s], O[s] = t - c, og - o
                B[s] = bal - a
        elif b <= 0:
            continue
        cin = c * (b / a) if a > 0 else 0.0
        seed = id(f) in seed_flows
        if seed and b - cin > 0:
            v = (b - cin) * price(d)
            res.stolen += v
            o += v
            cin = b
        B[d] = B.get(d, 0.0) + b
        poisoned = False
        if poison:
            if seed:
                poisoned, nh = True, 0
            elif s in res.poisoned and hop[s] < max_hops:
                poisoned, nh = True, hop[s] + 1
            if poisoned and not f["stop"] and (d not in res.poisoned or hop[d] > nh):
                res.poisoned.add(d)
                hop[d] = nh
        if cin > 0 or o > 0 or poisoned:
            key = (f["chain"], f["tx_hash"], f["ordinal"])
            if poisoned:
                et = a if a > 0 else b
            elif a > 0 and b > 0:
                et = cin * (a / b)
            else:
                et = cin
            res.edges[key] = (et, o)
            if f["stop"]:
                sk = res.sinks.setdefault(d, [f["stop"], 0.0, 0.0])
                sk[1] += b if poisoned else cin
                sk[2] += o
            else:
                T[d] = T.get(d, 0.0) + cin
                O[d] = O.get(d, 0.0) + o
    apply_seeds(None)


def _fifo(flows, seed_flows, addr_seeds, price, res):
    """Queues are lists of [amount, origin, tainted]; a holding without a queue is all clean."""
    B = res.balance
    Q: dict = {}
    holdings = {f["s"] for f in flows} | {f["d"] for f in flows}
    pending = list(addr_seeds)

    def apply_seeds(before_time):
        while pending and (before_time is None or pending[0][0] < before_time):
            t, addr = pending.pop(0)
            for h in _holdings_at(addr, B, holdings):
                if h in res.sinks:
                    continue
                fresh = 0.0
                if not Q.get(h):
                    if B.get(h, 0.0) > 0:
                        Q[h] = [[B[h], B[h] * price(h), True]]
                        fresh = B[h]
                else:
                    for seg in Q[h]:
                        if not seg[2]:
                            seg[1], seg[2] = seg[0] * price(h), True
                            fresh += seg[0]
                res.stolen += fresh * price(h)

    for f in flows:
        apply_seeds(f["time"])
        s, d, a, b = f["s"], f["d"], f["a"], f["b"]
        if a <= 0 and b <= 0:
            continue
        pieces = []
        if a > 0:
            bal = B.get(s, 0.0)
            q = Q.get(s) or []
            if not q:
                pieces = [[a, 0.0, False]]
                B[s] = bal - a if a < bal * (1 - SNAP) else 0.0
            else:
                drain = a >= bal * (1 - SNAP)
                rem = a
                if drain and a > bal:
                    pieces.append([a - bal, 0.0, False])
                    rem = bal
                while q and (drain or rem > 0):
                    seg = q[0]
                    if drain or rem >= seg[0] * (1 - SNAP):
                        pieces.append(list(seg))
                        rem -= seg[0]
                        q.pop(0)
                    else:
                        po = seg[1] * (rem / seg[0])
                        pieces.append([rem, po, seg[2]])
                        seg[0] -= rem
                        seg[1] -= po
                        rem = 0.0
                if not drain and rem > 0:
                    pieces.append([rem, 0.0, False])
                B[s] = 0.0 if drain else bal - a
        else:
            pieces = [[b, 0.0, False]]
        r = b / a if a > 0 else 1.0
        seed = id(f) in seed_flows
        c = o = 0.0
        for p in pieces:
            if seed and not p[2]:
                p[1], p[2] = p[0] * r * price(d), True
                res.stolen += p[1]
            if p[2]:
                c += p[0]
                o += p[1]
        before = B.get(d, 0.0)
        B[d] = before + b
        if c > 0 or o > 0:
            res.edges[(f["chain"], f["tx_hash"], f["ordinal"])] = (c, o)
        if f["stop"]:
            if c > 0 or o > 0:
                sk = res.sinks.setdefault(d, [f["stop"], 0.0, 0.0])
                sk[1] += c * r
                sk[2] += o
            continue
        q = Q.get(d) or []
        if not q and c <= 0 and o <= 0:
            continue
        if not q and before > 0:
            q.append([before, 0.0, False])
        for p in pieces:
            amt = p[0] * r
            if not p[2] and q and not q[-1][2]:
                q[-1][0] += amt
            else:
                q.append([amt, p[1], p[2]])
        Q[d] = q
    apply_seeds(None)
    for h, q in Q.items():
        res.taint[h] = sum(seg[0] for seg in q if seg[2])
        res.origin[h] = sum(seg[1] for seg in q if seg[2])
