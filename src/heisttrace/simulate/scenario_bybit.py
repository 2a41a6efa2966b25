"""The `bybit` scenario: the laundering of February 2025 as a plan of transactions.

Public record followed (Bybit and Elliptic/TRM write-ups, Feb-Mar 2025): one transaction
takes ETH, stETH, cmETH and mETH from the cold wallet; the thief consolidates, swaps the
staked tokens to ETH on a DEX, splits into ~48 wallets of ~10k ETH (at full scale), and peels
from there: most value through THORChain to Bitcoin within ~10 days, a large share through
eXch, some through a DEX aggregator (part of it into USDT that Tether freezes), some to
exchange deposit addresses; on Bitcoin, peel chains into mixers and exchanges, and the rest
sits. Address-poisoning spam lands in the thief's wallets throughout.

Amounts scale with `scale / FULL_SCALE`; counts of transactions scale too, within bounds.
The plan books every move in a `truth.Book`, which is where truth.json comes from.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from heisttrace.simulate import events, ids
from heisttrace.simulate import timeline as tl
from heisttrace.simulate.actors import (
    BTC_PRICE, CMETH, ETH_PRICE, EXCH, EXCHANGES, METH, ONEINCH_V6, STETH, THORCHAIN_ROUTER,
    TOKENS, UNIV2_ROUTER, USDT, ZERO, World,
)
from heisttrace.simulate.model import BtcIn, BtcOut, BtcTx, EthTx, Log, TokenTransfer, Trace
from heisttrace.simulate.btc_writer import op_return_script
from heisttrace.simulate.tagpack_writer import Tag
from heisttrace.simulate.truth import Book

FULL_SCALE = 100_000_000  # flows at which the amounts are the real ones
MIN_SCALE = 10_000
ETH = "ETH"
BTC = "BTC"
GWEI = 10**9
WEI = 10**18
STOLEN = {"ETH": 401_347, "stETH": 90_376, "cmETH": 15_000, "mETH": 8_000}
# Target shares of the stolen value per laundering route (the rest is gas).
SHARES = {"bridge": 0.72, "exch": 0.16, "dep": 0.05, "frozen": 0.03, "aggx": 0.01, "dormant": 0.03}
N_SPLIT = 48
HOPS = 4
MIXERS = ["CryptoMixer", "Wasabi coordinator"]
# Prices as integer ratios for exact swap arithmetic (USD * 1000).
_P = {"ETH": int(ETH_PRICE * 1000), "BTC": int(BTC_PRICE * 1000),
      **{k: int(v.price * 1000) for k, v in TOKENS.items()}}
THORCHAIN_FEE_PPM = 5_000  # outbound = input value * (1 - 0.5%)


def price_per_unit(asset: str) -> float:
    """USD per base unit (wei, token unit, satoshi)."""
    if asset == ETH:
        return ETH_PRICE / WEI
    if asset == BTC:
        return BTC_PRICE / 1e8
    t = TOKENS[asset]
    return t.price / 10**t.decimals


@dataclass
class Plan:
    """What the scenario produced, before the writers turn it into files."""

    seed: int
    scale: int
    eth_txs: list[EthTx] = field(default_factory=list)
    btc_txs: dict[int, list[BtcTx]] = field(default_factory=lambda: defaultdict(list))
    book: Book = field(default_factory=Book)
    tags: list[Tag] = field(default_factory=list)
    spam_addresses: set[str] = field(default_factory=set)
    spam_tokens: set[str] = field(default_factory=set)
    deposits: list[dict] = field(default_factory=list)
    thief_addresses: list[tuple[str, str]] = field(default_factory=list)
    theft_hash: str = ""
    theft_block: int = tl.THEFT_BLOCK


def clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


class BybitBuilder:
    """Builds the plan in causal order, booking each move as it adds the transaction."""

    def __init__(self, world: World, scale: int, seed: int) -> None:
        if scale < MIN_SCALE:
            raise ValueError(f"--scale must be at least {MIN_SCALE} flows")
        self.w = world
        self.seed = seed
        self.scale = scale
        self.f = scale / FULL_SCALE
        self.rng = np.random.default_rng([seed, 2])
        self.plan = Plan(seed=seed, scale=scale)
        self.book = self.plan.book
        self._n = 0
        self._nonce: dict[str, int] = defaultdict(int)
        self.n_bridge = clamp(scale // 800, N_SPLIT, 6000)
        self.n_exch = clamp(self.n_bridge // 4, 12, 1500)
        self.n_dep = clamp(scale // 4000, 100, 800)
        self.n_frozen = clamp(self.n_bridge // 60, 2, 60)
        self.n_aggx = clamp(self.n_bridge // 120, 2, 30)
        self.n_swaps = clamp(scale // 200_000, 3, 40)

    # -- primitives -------------------------------------------------------------------------
    def gas_price(self) -> int:
        return int(self.rng.integers(15, 60)) * GWEI // 10

    def tx(self, block: int, frm: str, to: str, value: int, gas: int, inp: str = "0x") -> EthTx:
        self._n += 1
        t = EthTx(hash=ids.tx_hash(self.seed, "eth", self._n), block=block, frm=frm, to=to,
                  value=value, gas_used=gas, gas_price=self.gas_price(), input=inp,
                  nonce=self._nonce[frm])
        self._nonce[frm] += 1
        self.plan.eth_txs.append(t)
        return t

    def pay(self, block: int, frm: str, to: str, value: int, gas: int = 21_000, inp: str = "0x") -> EthTx:
        """A thief transaction: value and gas leave the thief's booked ETH."""
        t = self.tx(block, frm, to, value, gas, inp)
        self.book.fee("ethereum", frm, ETH, t.fee)
        self.book.move("ethereum", frm, to, ETH, value)
        return t

    def token_send(self, block: int, frm: str, to: str, sym: str, value: int) -> EthTx:
        token = TOKENS[sym].address
        t = self.tx(block, frm, token, 0, 52_000,
                    events.call_input(events.SEL_TRANSFER, events.addr_word(to), events.word(value)))
        t.add_transfer(TokenTransfer(token, frm, to, value))
        self.book.fee("ethereum", frm, ETH, t.fee)
        self.book.move("ethereum", frm, to, sym, value)
        return t

    def fee_of(self, gas: int) -> int:
        """An upper bound of a transaction's fee (gas prices stay below 6 gwei)."""
        return gas * 6 * GWEI

    def thief(self, *parts: object) -> str:
        a = self.w.thief(*parts)
        self.plan.thief_addresses.append(("ethereum", a))
        return a

    # -- steps ------------------------------------------------------------------------------
    def theft(self) -> str:
        s = self.f
        amounts = {k: int(v * s * GWEI) * GWEI for k, v in STOLEN.items()}
        m = self.thief("theft")
        self.main = m
        t = self.tx(tl.THEFT_BLOCK, self.w.victim, m, amounts["ETH"], 180_000,
                    "0x6a761202" + "00" * 64)
        for sym, tok in (("stETH", STETH), ("cmETH", CMETH), ("mETH", METH)):
            t.add_transfer(TokenTransfer(tok, self.w.victim, m, amounts[sym]))
        for sym, amount in amounts.items():
            self.book.steal("ethereum", m, sym, amount, price_per_unit(sym))
        self.plan.theft_hash = t.hash
        self.plan.tags.append(Tag(m, "Bybit exploiter", "perpetrator", actor="lazarusgroup"))
        return m

    def consolidate_and_swap(self) -> str:
        m, b = self.main, tl.THEFT_BLOCK
        tw = self.thief("token wallet")
        c = self.thief("consolidation")
        gas_budget = (3 * self.n_swaps + 2) * self.fee_of(160_000)
        self.pay(b + 2, m, tw, gas_budget)
        for i, sym in enumerate(("stETH", "cmETH", "mETH")):
            self.token_send(b + 3 + i, m, tw, sym, self.book.holds("ethereum", m, sym))
        inter = [self.thief("intermediate", k) for k in range(3)]
        rest = self.book.holds("ethereum", m, ETH) - 3 * self.fee_of(21_000)
        for k, a in enumerate(inter):
            self.pay(b + 8 + k, m, a, rest // 3 if k < 2 else rest - 2 * (rest // 3))
        blk = b + 20
        for sym in ("stETH", "cmETH", "mETH"):
            total = self.book.holds("ethereum", tw, sym)
            parts = self.split_amount(total, self.n_swaps)
            for x in parts:
                self.dex_swap_to_eth(blk, tw, sym, x)
                blk += 7
        self.pay(blk + 5, tw, c, self.book.holds("ethereum", tw, ETH) - self.fee_of(21_000))
        for k, a in enumerate(inter):
            self.pay(blk + 10 + k, a, c, self.book.holds("ethereum", a, ETH) - self.fee_of(21_000))
        self.split_block = blk + 40
        return c

    def dex_swap_to_eth(self, block: int, who: str, sym: str, x: int) -> None:
        """Staked token -> ETH through the router and the token's pair, in one transaction."""
        pair = self.w.pairs[sym]
        y = x * _P[sym] // _P["ETH"]
        t = self.tx(block, who, UNIV2_ROUTER, 0, 150_000,
                    events.call_input(events.SEL_SWAP_EXACT_TOKENS_FOR_ETH, events.word(x), events.word(y)))
        t.add_transfer(TokenTransfer(TOKENS[sym].address, who, pair, x))
        topics, data = events.univ2_swap_log(UNIV2_ROUTER, who, x, 0, 0, y)
        t.add_log(Log(pair, topics, data))
        t.traces = [Trace(UNIV2_ROUTER, pair, 0, (0,)), Trace(pair, who, y, (0, 0))]
        self.book.fee("ethereum", who, ETH, t.fee)
        self.book.convert("ethereum", who, sym, x, "ethereum", who, ETH, y)

    def aggregator_to_usdt(self, block: int, who: str, x: int) -> int:
        """ETH -> USDT through the 1inch v6 router and the USDT pair; returns USDT units."""
        pair = self.w.pairs["USDT"]
        y = x * _P["ETH"] // _P["USDT"] // 10**12
        t = self.tx(block, who, ONEINCH_V6, x, 190_000,
                    events.call_input(events.SEL_1INCH_SWAP, events.word(x), events.word(y)))
        t.traces = [Trace(ONEINCH_V6, pair, x, (0,))]
        t.add_transfer(TokenTransfer(USDT, pair, who, y))
        topics, data = events.univ2_swap_log(ONEINCH_V6, who, 0, x, y, 0)
        t.add_log(Log(pair, topics, data))
        self.book.fee("ethereum", who, ETH, t.fee)
        self.book.convert("ethereum", who, ETH, x, "ethereum", who, "USDT", y)
        return y

    def split_amount(self, total: int, n: int, sigma: float = 0.35) -> list[int]:
        w = self.rng.lognormal(0.0, sigma, n)
        w = w / w.sum()
        parts = [int(total * float(x)) for x in w[:-1]]
        parts.append(total - sum(parts))
        return parts

    def split_and_peel(self, c: str) -> None:
        """C -> 48 wallets; each a peel chain of HOPS wallets doing its share of the jobs."""
        e_total = self.book.holds("ethereum", c, ETH) - N_SPLIT * self.fee_of(21_000)
        kinds = (["bridge"] * self.n_bridge + ["exch"] * self.n_exch + ["dep"] * self.n_dep
                 + ["frozen"] * self.n_frozen + ["aggx"] * self.n_aggx)
        counts = {"bridge": self.n_bridge, "exch": self.n_exch, "dep": self.n_dep,
                  "frozen": self.n_frozen, "aggx": self.n_aggx}
        # Every job's fraction of the split total; 0.6% of the total is kept for gas.
        fracs: list[float] = []
        for k in kinds:
            fracs.append(SHARES[k] * 0.994 / counts[k])
        jit = self.rng.lognormal(0.0, 0.3, len(kinds))
        fr = np.array(fracs) * jit
        for k in counts:  # renormalise each kind back to its share
            idx = np.array([i for i, x in enumerate(kinds) if x == k])
            fr[idx] *= SHARES[k] * 0.994 / fr[idx].sum()
        order = self.rng.permutation(len(kinds))
        chains: list[list[tuple[str, float]]] = [[] for _ in range(N_SPLIT)]
        for pos, j in enumerate(order):
            chains[pos % N_SPLIT].append((kinds[j], float(fr[j])))
        needs = np.array([sum(x for _, x in ch) for ch in chains]) + (SHARES["dormant"] + 0.006) / N_SPLIT
        needs = needs / needs.sum()
        fund = [int(e_total * float(n)) for n in needs]
        blk = self.split_block
        wallets = []
        for i in range(N_SPLIT):
            s = self.thief("split", i)
            wallets.append(s)
            self.pay(blk + i // 8, c, s, fund[i])
        self.hop_gap = (9 * 7_200 - (blk - tl.THEFT_BLOCK)) // HOPS
        for i, s in enumerate(wallets):
            self.peel_chain(i, s, chains[i], blk + 10 + (i * 37) % 600, e_total)

    def peel_chain(self, i: int, start: str, jobs: list[tuple[str, float]], blk: int, e_total: int) -> None:
        per_hop = [jobs[h::HOPS] for h in range(HOPS)]
        w = start
        for h in range(HOPS):
            b = blk + h * self.hop_gap
            self.spam(w, b + 1)
            for k, frac in per_hop[h]:
                b += 2 + int(self.rng.integers(0, 4))
                avail = self.book.holds("ethereum", w, ETH) - 40 * self.fee_of(200_000)
                amount = min(int(e_total * frac), avail)
                if amount <= 0:
                    continue
                getattr(self, f"job_{k}")(b, w, amount, (i, h, k, b))
            if h + 1 < HOPS:
                nxt = self.thief("peel", i, h + 1)
                self.pay(b + 3, w, nxt, self.book.holds("ethereum", w, ETH) - self.fee_of(21_000))
                w = nxt

    # -- jobs -------------------------------------------------------------------------------
    def job_bridge(self, b: int, w: str, x: int, key: tuple) -> None:
        btc_addr, btc_script = self.w.thief_btc("bridge out", *key)
        forms = ["=:BTC.BTC:{a}", "=:b:{a}", "SWAP:BTC.BTC:{a}:0/1/0"]
        memo = forms[int(self.rng.integers(0, 3))].format(a=btc_addr)
        vault = self.w.thorchain_vault
        inp = events.thorchain_deposit_input(vault, ZERO, x, memo, tl.eth_time(b) + 900)
        t = self.tx(b, w, THORCHAIN_ROUTER, x, 75_000, inp)
        topics, data = events.thorchain_deposit_log(vault, ZERO, x, memo)
        t.add_log(Log(THORCHAIN_ROUTER, topics, data))
        t.traces = [Trace(THORCHAIN_ROUTER, vault, x, (0,))]
        sats = x * _P["ETH"] * (10**6 - THORCHAIN_FEE_PPM) // (_P["BTC"] * 10**6 * 10**10)
        # THORChain pays out on Bitcoin 15-45 minutes later.
        h = tl.btc_height_at(tl.eth_time(b) + 900 + int(self.rng.integers(0, 1800)))
        vault_addr, vault_script = self.w.btc_vault
        vault_in = sats + int(self.rng.integers(10**7, 10**9))
        out_txid = ids.raw_hash(self.seed, "thor out", t.hash)
        fee = 3_000
        btx = BtcTx(out_txid, h,
                    [BtcIn(ids.raw_hash(self.seed, "vault utxo", t.hash), 1, vault_in, vault_addr,
                           vault_script, h - 50)],
                    [BtcOut(sats, btc_addr, btc_script),
                     BtcOut(0, None, op_return_script("OUT:" + t.hash[2:].upper()), "OUT:" + t.hash[2:].upper()),
                     BtcOut(vault_in - sats - fee, vault_addr, vault_script)])
        self.plan.btc_txs[h].append(btx)
        self.plan.thief_addresses.append(("bitcoin", btc_addr))
        # The bridge: the ETH's origin arrives with the BTC at the thief's address.
        self.book.fee("ethereum", w, ETH, t.fee)
        self.book.convert("ethereum", w, ETH, x, "bitcoin", btc_addr, BTC, sats)
        self.btc_peel(btc_addr, btc_script, out_txid, 0, sats, h, key)

    def job_exch(self, b: int, w: str, x: int, key: tuple) -> None:
        self.pay(b, w, EXCH, x)

    def job_dep(self, b: int, w: str, x: int, key: tuple) -> None:
        ex = EXCHANGES[int(self.rng.integers(0, len(EXCHANGES)))]
        d = ids.address(self.seed, "thief deposit", *key)
        self.book.sink("ethereum", d, "cashed_out", ex, "deposit_wallet")
        self.pay(b, w, d, x)
        fwd = self.tx(b + 2 + int(self.rng.integers(0, 20)), d, self.w.hot_wallets[ex], 0, 21_000)
        fwd.value = x - fwd.fee
        self.plan.deposits.append({"chain": "ethereum", "address": d, "entity": ex, "stolen": True})

    def job_frozen(self, b: int, w: str, x: int, key: tuple) -> None:
        f = self.thief("usdt", *key)
        self.pay(b, w, f, x + self.fee_of(190_000))
        self.aggregator_to_usdt(b + 3, f, x)
        # Whatever gas money is left stays as dormant ETH at f (a few gwei-units).
        black = self.tx(b + 10 + int(self.rng.integers(0, 40)), self.w.tether_owner, USDT, 0, 46_000,
                        events.call_input(events.SEL_ADD_BLACKLIST, events.addr_word(f)))
        topics, data = events.added_blacklist_log(f)
        black.add_log(Log(USDT, topics, data))
        self.book.freeze("ethereum", f, "USDT", "Tether")

    def job_aggx(self, b: int, w: str, x: int, key: tuple) -> None:
        g = self.thief("aggx", *key)
        self.pay(b, w, g, x + self.fee_of(190_000) + self.fee_of(52_000))
        y = self.aggregator_to_usdt(b + 3, g, x)
        self.token_send(b + 6, g, EXCH, "USDT", y)

    # -- Bitcoin side -----------------------------------------------------------------------
    def btc_peel(self, addr: str, script: str, txid: str, vout: int, value: int, h: int, key: tuple) -> None:
        """First peel: part to a mixer, part to an exchange deposit, change to a fresh
        thief address; half the changes peel once more into a mixer."""
        rounds = 2 if self.rng.random() < 0.5 else 1
        for r in range(rounds):
            h2 = min(h + 6 + int(self.rng.integers(0, 150)), tl.BTC_END_HEIGHT - 1)
            if h2 <= h:
                return
            fee = 2_500
            mixer_name = MIXERS[int(self.rng.integers(0, len(MIXERS)))]
            mix_addr, mix_script = ids.btc_address(self.seed, "mixer deposit", *key, r)
            self.book.sink("bitcoin", mix_addr, "dark", mixer_name, "mixing_service")
            self.plan.tags.append(Tag(mix_addr, mixer_name, "mixing_service", "BTC", "bitcoin"))
            chg_addr, chg_script = self.w.thief_btc("change", *key, r)
            mix = int(value * (0.25 if r == 0 else 0.2) * float(self.rng.uniform(0.8, 1.2)))
            outs = [BtcOut(mix, mix_addr, mix_script)]
            dep = None
            if r == 0:
                ex = EXCHANGES[int(self.rng.integers(0, len(EXCHANGES)))]
                dep_addr, dep_script = ids.btc_address(self.seed, "btc deposit", *key)
                self.book.sink("bitcoin", dep_addr, "cashed_out", ex, "deposit_wallet")
                amt = int(value * 0.15 * float(self.rng.uniform(0.8, 1.2)))
                outs.append(BtcOut(amt, dep_addr, dep_script))
                dep = (ex, dep_addr, dep_script, amt)
            change = value - sum(o.value for o in outs) - fee
            outs.append(BtcOut(change, chg_addr, chg_script))
            new_txid = ids.raw_hash(self.seed, "peel", *key, r)
            self.plan.btc_txs[h2].append(BtcTx(new_txid, h2, [BtcIn(txid, vout, value, addr, script, h)], outs))
            self.book.fee("bitcoin", addr, BTC, fee)
            for o in outs:
                self.book.move("bitcoin", addr, o.address, BTC, o.value)
            self.plan.thief_addresses.append(("bitcoin", chg_addr))
            if dep is not None:
                ex, dep_addr, dep_script, amt = dep
                h3 = min(h2 + 2 + int(self.rng.integers(0, 8)), tl.BTC_END_HEIGHT - 1)
                hot_addr, hot_script = self.w.btc_hot_wallets[ex]
                sweep = BtcTx(ids.raw_hash(self.seed, "sweep", *key), h3,
                              [BtcIn(new_txid, 1, amt, dep_addr, dep_script, h2)],
                              [BtcOut(amt - 1_500, hot_addr, hot_script)])
                if h3 > h2:
                    self.plan.btc_txs[h3].append(sweep)
                self.plan.deposits.append({"chain": "bitcoin", "address": dep_addr, "entity": ex, "stolen": True})
            addr, script, txid, vout, value, h = chg_addr, chg_script, new_txid, len(outs) - 1, change, h2

    # -- spam -------------------------------------------------------------------------------
    def spam(self, w: str, b: int) -> None:
        """Address poisoning: fake look-alike tokens in, zero-value USDT 'from' the wallet out."""
        look = ids.lookalike(self.seed, w, 0)
        spammer = ids.address(self.seed, "spammer", w)
        self.plan.spam_addresses.update({look, spammer})
        for k, tok in enumerate(self.w.spam_tokens[:2]):
            t = self.tx(b + k, spammer, tok.address, 0, 60_000)
            amount = int(self.rng.integers(1, 10**6)) * 10**21
            t.add_transfer(TokenTransfer(tok.address, look, w, amount))
            self.plan.spam_tokens.add(tok.address)
        t = self.tx(b + 2, spammer, USDT, 0, 55_000)
        t.add_transfer(TokenTransfer(USDT, w, look, 0))

    # -- labels -----------------------------------------------------------------------------
    def known_labels(self) -> None:
        w, tags = self.w, self.plan.tags
        for ex in EXCHANGES:
            # The TagPack `label` names the entity, as in GraphSense's own packs.
            tags.append(Tag(w.hot_wallets[ex], ex, "exchange"))
            tags.append(Tag(w.btc_hot_wallets[ex][0], ex, "exchange", "BTC", "bitcoin"))
        tags.append(Tag(THORCHAIN_ROUTER, "THORChain router", "defi_bridge"))
        tags.append(Tag(w.thorchain_vault, "THORChain vault", "defi_bridge"))
        tags.append(Tag(w.btc_vault[0], "THORChain vault", "defi_bridge", "BTC", "bitcoin"))
        tags.append(Tag(UNIV2_ROUTER, "Uniswap V2 router", "defi_dex"))
        for sym, pair in w.pairs.items():
            tags.append(Tag(pair, f"Uniswap V2 {sym}/WETH pair", "defi_dex"))
        tags.append(Tag(ONEINCH_V6, "1inch v6 aggregation router", "defi_dex"))
        tags.append(Tag(EXCH, "eXch", "no_kyc_exchange"))
        self.book.sink("ethereum", EXCH, "dark", "eXch", "no_kyc_exchange")


def build(world: World, scale: int, seed: int) -> Plan:
    """The whole laundering plan for one run, sorted by block (then creation order)."""
    b = BybitBuilder(world, scale, seed)
    b.known_labels()
    b.theft()
    c = b.consolidate_and_swap()
    b.split_and_peel(c)
    plan = b.plan
    plan.eth_txs.sort(key=lambda t: t.block)  # stable: creation order inside a block
    return plan
