"""A hand-made, realistic traced case written straight into the case tables.

The report and the web app read only `cases`, `case_sinks`, `case_edges`, `labels` and
`flows`; this module fills them the way the trace engine would, so the views can be tested
before (and independently of) the engine. Every unit is accounted for: the sinks are derived
from the same simulated movements as the edges, so `sum(origin_amount) == stolen`.

Case "demo": a 10,000 ETH theft split over 50 wallets; peel chains into exchange deposit
addresses, a mixer, a bridge to Bitcoin, a swap into a token that gets frozen, a lending
deposit, dormant wallets, dust. One deposit address's entity is an XSS probe.
Case "scale": a layered graph of about 50,000 taint-flow edges, for the aggregation checks.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from heisttrace.ledger.workspace import Workspace
from heisttrace.trace.store import CASE_DDL

XSS = "<img src=x onerror=alert(1)>"
T0 = 1_740_000_000  # theft time (Feb 2025)
ETH_USD = 2500.0
BTC_USD = 60000.0
USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
WEI = 10**18
SAT = 10**8


EXCHANGES = ["Binance", "OKX", "Kraken", "Bybit", "HTX", XSS]


def addr(tag: str, i: int = 0) -> str:
    """A deterministic, valid-looking EVM address per (tag, i)."""
    rnd = random.Random(f"{tag}/{i}")
    return "0x" + "".join(rnd.choice("0123456789abcdef") for _ in range(40))


def btc_addr(i: int) -> str:
    rnd = random.Random(f"btc/{i}")
    return "bc1q" + "".join(rnd.choice("023456789acdefghjklmnpqrstuvwxyz") for _ in range(38))


@dataclass
class _Sim:
    """Holdings in origin units (USD) and the movements between them."""

    case: str
    edges: list[dict] = field(default_factory=list)
    flows: list[dict] = field(default_factory=list)
    held: dict[tuple[str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    sink_of: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)
    times: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    block: int = 21_900_000
    n: int = 0

    def move(self, chain: str, src: str, dst: str, usd: float, t: int, *, asset: str = "ETH",
             kind: str = "native", dst_chain: str | None = None,
             dst_asset: str | None = None) -> None:
        self.n += 1
        price = BTC_USD if asset == "BTC" else (1.0 if asset == USDT else ETH_USD)
        unit = SAT if asset == "BTC" else (10**6 if asset == USDT else WEI)
        amount = int(round(usd / price * unit))
        self.edges.append(dict(
            case_name=self.case, chain=chain, block=self.block + self.n // 3, time=t,
            ordinal=self.n * 7, tx_hash="0x" + f"{self.n:064x}", src=src, dst=dst, asset=asset,
            dst_chain=dst_chain, dst_asset=dst_asset, kind=kind, amount=amount / unit, taint=1.0,
            origin_taint=usd,
        ))
        out_chain, out_asset = dst_chain or chain, dst_asset or asset
        price_in = BTC_USD if out_asset == "BTC" else (1.0 if out_asset == USDT else ETH_USD)
        unit_in = SAT if out_asset == "BTC" else (10**6 if out_asset == USDT else WEI)
        e = self.edges[-1]
        self.flows.append(dict(
            chain=chain, block=e["block"], time=t, ordinal=e["ordinal"], tx_hash=e["tx_hash"],
            src=src, dst=dst, asset=asset, amount_out=str(amount),
            amount_in=str(int(round(usd / price_in * unit_in))), kind=kind,
            dst_chain=dst_chain, dst_asset=dst_asset))
        self.held[(chain, src, asset)] -= usd
        key = (out_chain, dst, out_asset)
        self.held[key] += usd
        self.times.setdefault(key, [t, t])
        self.times[key][0] = min(self.times[key][0], t)
        self.times[key][1] = max(self.times[key][1], t)

    def sinks(self, seed_key: tuple[str, str, str], threshold: float) -> list[dict]:
        """Every holding that still holds taint becomes one sink row: stops by their role,
        the rest dormant (or below the threshold when it is dust)."""
        rows = []
        for (chain, address, asset), usd in sorted(self.held.items()):
            if (chain, address, asset) == seed_key or usd <= 1e-9:
                continue
            bucket, entity = self.sink_of.get((chain, address), (None, None))
            if bucket is None:
                bucket = "dormant" if usd >= threshold else "below_threshold"
            price = BTC_USD if asset == "BTC" else (1.0 if asset == USDT else ETH_USD)
            unit = SAT if asset == "BTC" else (10**6 if asset == USDT else WEI)
            first, last = self.times.get((chain, address, asset), [T0, T0])
            rows.append(dict(
                case_name=self.case, bucket=bucket, chain=chain, address=address, asset=asset,
                entity=entity, origin_amount=usd, amount=usd / price,
                first_time=first, last_time=last,
            ))
        return rows


def _insert(ws: Workspace, table: str, rows: list[dict] | pa.Table) -> None:
    data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows)
    if data.num_rows == 0:
        return
    ws.con.register("_fixture_rows", data)
    try:
        cols = ", ".join(data.column_names)
        ws.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _fixture_rows")
    finally:
        ws.con.unregister("_fixture_rows")


def _label(chain: str, address: str, entity: str, category: str, source: str,
           heuristic: bool = False) -> dict:
    return dict(chain=chain, address=address, entity=entity, category=category, source=source,
                confidence=80 if not heuristic else 60, actor=None, heuristic=heuristic,
                evidence="fixture")


def build_demo_case(ws: Workspace, case: str = "demo") -> dict:
    """The hand-made theft. Returns what the tests need to know about it (addresses, totals)."""
    rnd = random.Random(7)
    sim = _Sim(case)
    victim, thief = addr("victim"), addr("thief")
    deposits = {ex: [addr(f"dep/{ex}", i) for i in range(4)] for ex in EXCHANGES}
    hot = {ex: addr(f"hot/{ex}") for ex in EXCHANGES}
    mixer, bridge, pool, frozen = addr("tornado"), addr("bridge"), addr("aave"), addr("frozen")
    router = addr("uniswap")
    labels = [
        _label("ethereum", thief, "Bybit hacker", "perpetrator", "fixture-ofac"),
        _label("ethereum", mixer, "Tornado Cash", "mixing_service", "fixture-etherscan"),
        _label("ethereum", bridge, "THORChain", "defi_bridge", "fixture-etherscan"),
        _label("ethereum", router, "Uniswap", "defi_dex", "fixture-etherscan"),
        _label("ethereum", pool, "Aave", "defi_lending", "fixture-etherscan"),
        _label("ethereum", frozen, "Tether blacklist", "frozen", "fixture-tether"),
    ]
    for ex in EXCHANGES:
        labels.append(_label("ethereum", hot[ex], ex, "exchange", "fixture-tagpack"))
        for d in deposits[ex]:
            labels.append(_label("ethereum", d, ex, "deposit_wallet", "heuristic-deposit", True))
            sim.sink_of[("ethereum", d)] = ("cashed_out", ex)
    sim.sink_of[("ethereum", mixer)] = ("dark", "Tornado Cash")
    sim.sink_of[("ethereum", pool)] = ("parked", "Aave")
    sim.sink_of[("ethereum", frozen)] = ("frozen", "Tether blacklist")
    sim.sink_of[("ethereum", "fees")] = ("fees", None)
    btc_deposits = [btc_addr(900 + i) for i in range(3)]
    for d in btc_deposits:
        labels.append(_label("bitcoin", d, "Binance", "deposit_wallet", "heuristic-deposit", True))
        sim.sink_of[("bitcoin", d)] = ("cashed_out", "Binance")

    stolen = 10_000 * ETH_USD
    sim.held[("ethereum", victim, "ETH")] = stolen
    t = T0
    sim.move("ethereum", victim, thief, stolen, t)
    wallets = [addr("w", i) for i in range(50)]
    for w in wallets:
        t += 60
        sim.move("ethereum", thief, w, stolen / 50, t)
        sim.move("ethereum", w, "fees", 2.5, t)
    for i, w in enumerate(wallets):
        left = stolen / 50 - 2.5
        t = T0 + 3600 * (i + 1)
        if i < 24:  # peel chains: each hop peels to a deposit address, passes the rest on
            cur = w
            for hop in range(6):
                nxt = addr(f"peel/{i}", hop)
                ex = EXCHANGES[(i + hop) % len(EXCHANGES)]
                peel = round(left * rnd.uniform(0.08, 0.2) / 2.5) * 2.5
                t += rnd.randint(600, 86_400)
                sim.move("ethereum", cur, rnd.choice(deposits[ex]), peel, t)
                sim.move("ethereum", cur, nxt, left - peel, t + 1)
                left -= peel
                cur = nxt
            if i % 4 == 0:  # the end of some chains stays put: dormant
                continue
            t += 86_400
            ex = EXCHANGES[i % len(EXCHANGES)]
            sim.move("ethereum", cur, rnd.choice(deposits[ex]), left - 0.5, t)  # dust remains
        elif i < 34:  # the mixer
            sim.move("ethereum", w, mixer, left, t + 7200)
        elif i < 40:  # bridge to Bitcoin, then to deposit addresses or dormant there
            btc = btc_addr(i)
            sim.move("ethereum", w, bridge, left, t, kind="bridge",
                     dst_chain="bitcoin", dst_asset="BTC")
            # the bridge pays out on Bitcoin; the conversion edge ends at the bridge and the
            # payout is an edge on Bitcoin from the bridge's vault to the thief's address
            sim.move("bitcoin", bridge, btc, left * 0.9, t + 1800, asset="BTC", kind="utxo")
            if i % 2 == 0:
                sim.move("bitcoin", btc, rnd.choice(btc_deposits), left * 0.9, t + 90_000,
                         asset="BTC", kind="utxo")
            # 10% of the bridged value has no matched outbound: bridged, untraced
            sim.sink_of[("bitcoin", bridge)] = ("bridged_untraced", "THORChain")
        elif i < 44:  # swap into USDT, then a blacklisted address
            sim.move("ethereum", w, router, left, t, kind="swap", dst_asset=USDT)
            sim.move("ethereum", router, frozen, left, t + 600, asset=USDT, kind="token")
        elif i < 47:  # lending
            sim.move("ethereum", w, pool, left, t)
        # the last three wallets never move: dormant
    sinks = sim.sinks(("ethereum", victim, "ETH"), threshold=ETH_USD)
    cases = [dict(
        case_name=case, policy="haircut", seeds=[sim.edges[0]["tx_hash"]], until=None,
        min_taint=0.001, origin_unit="USD",
        stolen=stolen, created_at=None,
    )]
    with ws.transaction() as con:
        con.execute(CASE_DDL)
        _insert(ws, "cases", cases)
        ws.con.execute("UPDATE cases SET created_at = current_timestamp WHERE case_name = ?",
                       [case])
        _insert(ws, "case_edges", sim.edges)
        _insert(ws, "case_sinks", sinks)
        _insert(ws, "labels", labels)
        _insert(ws, "flow_rows", sim.flows)
    return dict(case=case, stolen=stolen, thief=thief, victim=victim, wallets=wallets,
                deposits=deposits, xss_deposits=deposits[XSS], sinks=sinks, edges=sim.edges,
                mixer=mixer)


def build_scale_case(ws: Workspace, case: str = "scale", target_edges: int = 50_000) -> dict:
    """A layered taint graph of about `target_edges` edges; every layer splits its value over
    the next, some addresses stop at exchange deposit addresses, the last layer is dormant."""
    rng = np.random.default_rng(11)
    stolen = 1_000_000.0
    layers = 25
    per_layer = target_edges // layers
    names = [f"0x{(h << 32 | i):040x}" for h in range(layers + 1) for i in range(per_layer)]
    deposit = [addr("scale-dep", i) for i in range(40)]
    value = np.zeros(per_layer)
    src_l, dst_l, amt_l, time_l = [], [], [], []
    # layer 0: the thief fans out
    thief = addr("scale-thief")
    first = np.arange(min(per_layer, 400))
    w = rng.dirichlet(np.ones(first.size))
    for j, share in zip(first, w, strict=True):
        src_l.append(thief), dst_l.append(names[j]), amt_l.append(stolen * share)
        time_l.append(T0)
    value[first] = stolen * w
    sinks: dict[tuple[str, str], float] = defaultdict(float)
    for h in range(layers):
        live = np.nonzero(value > 0)[0]
        nxt = np.zeros(per_layer)
        for j in live:
            v = value[j]
            src = names[h * per_layer + j]
            if h > 0 and rng.random() < 0.06:
                d = deposit[int(rng.integers(len(deposit)))]
                src_l.append(src), dst_l.append(d), amt_l.append(v)
                time_l.append(T0 + (h + 1) * 3600)
                sinks[("cashed_out", d)] += v
                continue
            k = int(rng.integers(1, 4)) if h < layers - 1 else 0
            if k == 0:
                sinks[("dormant", src)] += v
                continue
            kids = rng.integers(0, per_layer, size=k)
            for kid, share in zip(kids, rng.dirichlet(np.ones(k)), strict=True):
                src_l.append(src), dst_l.append(names[(h + 1) * per_layer + int(kid)])
                amt_l.append(v * share), time_l.append(T0 + (h + 1) * 3600)
                nxt[kid] += v * share
        value = nxt
        if len(src_l) >= target_edges:
            for j in np.nonzero(value > 0)[0]:
                sinks[("dormant", names[(h + 1) * per_layer + j])] += value[j]
            break
    n = len(src_l)
    edges = pa.table({
        "case_name": [case] * n, "chain": ["ethereum"] * n,
        "block": np.arange(n, dtype=np.int64) // 4 + 22_000_000,
        "time": np.array(time_l, dtype=np.int64), "ordinal": np.arange(n, dtype=np.int64),
        "tx_hash": [f"0x{i:064x}" for i in range(n)], "src": src_l, "dst": dst_l,
        "asset": ["ETH"] * n, "dst_chain": pa.nulls(n, pa.string()),
        "dst_asset": pa.nulls(n, pa.string()), "kind": ["native"] * n,
        "amount": np.array([a / ETH_USD for a in amt_l]),
        "taint": np.ones(n), "origin_taint": np.array(amt_l),
    })
    sink_rows = [dict(case_name=case, bucket=b, chain="ethereum", address=a, asset="ETH",
                      entity="Binance" if b == "cashed_out" else None, origin_amount=v,
                      amount=v / ETH_USD, first_time=T0,
                      last_time=T0 + 90_000) for (b, a), v in sorted(sinks.items())]
    labels = [_label("ethereum", d, "Binance", "deposit_wallet", "heuristic-deposit", True)
              for d in deposit]
    cases = [dict(case_name=case, policy="fifo", seeds=[f"{thief}@{T0}"], until=None,
                  min_taint=0.001,
                  origin_unit="USD", stolen=stolen, created_at=None)]
    with ws.transaction() as con:
        con.execute(CASE_DDL)
        _insert(ws, "cases", cases)
        _insert(ws, "case_edges", edges)
        _insert(ws, "case_sinks", sink_rows)
        _insert(ws, "labels", labels)
    return dict(case=case, stolen=stolen, edges=n, thief=thief, deposits=deposit)


def make_case_workspace(path, scale: bool = True) -> dict:
    """A closed workspace folder holding the demo case (and the scale case)."""
    from heisttrace.ledger import open_workspace

    with open_workspace(path) as ws:
        demo = build_demo_case(ws)
        big = build_scale_case(ws) if scale else None
    return {"path": path, "demo": demo, "scale": big}
