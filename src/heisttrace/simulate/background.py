"""Ordinary Ethereum traffic, generated vectorised one chunk of blocks at a time.

Users pay users, deposit to their exchange deposit address (which forwards the deposit
minus gas to the exchange's hot wallet a few blocks later), withdraw from hot wallets,
transfer tokens, and swap on the same DEX pairs the thief uses. Each kind of transaction
becomes columns of a `Part`; `assemble.py` merges parts into ethereum-etl rows.

Memory is bounded by the chunk size plus the address pools, whatever the scale; the only
state carried between chunks is the list of deposits still waiting to be forwarded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from heisttrace.simulate import columns as col
from heisttrace.simulate import events, ids
from heisttrace.simulate.actors import TOKENS, UNIV2_ROUTER, World

# kind -> (probability, flows per transaction as an importer counts them)
KINDS = {
    "pay": (0.30, 2),
    "deposit": (0.15, 4),  # the deposit and its forward
    "withdraw": (0.12, 2),
    "token": (0.25, 2),
    "buy": (0.09, 4),
    "sell": (0.09, 3),
}
FLOWS_PER_TX = sum(p * f for p, f in KINDS.values())
BASE_FEE = 10**9
TOKEN_SYMS = ["USDT", "stETH", "mETH", "cmETH"]
TOKEN_P = [0.5, 0.25, 0.125, 0.125]


@dataclass
class Part:
    """Columns of some transactions and their logs and traces (tx = row in `tx`)."""

    tx: pa.Table
    logs: pa.Table
    traces: pa.Table


TX_SCHEMA = pa.schema([
    ("block", pa.int64()), ("prio", pa.int8()), ("hash", pa.string()), ("nonce", pa.int64()),
    ("from_address", pa.string()), ("to_address", pa.string()), ("value", pa.string()),
    ("gas", pa.int64()), ("gas_price", pa.int64()), ("input", pa.string()), ("gas_used", pa.int64()),
])
LOG_SCHEMA = pa.schema([
    ("tx", pa.int64()), ("pos", pa.int32()), ("address", pa.string()), ("data", pa.string()),
    ("topics", pa.string()), ("tt", pa.bool_()), ("tt_token", pa.string()), ("tt_from", pa.string()),
    ("tt_to", pa.string()), ("tt_value", pa.string()),
])
TRACE_SCHEMA = pa.schema([
    ("tx", pa.int64()), ("pos", pa.int32()), ("from_address", pa.string()), ("to_address", pa.string()),
    ("value", pa.string()), ("input", pa.string()), ("trace_address", pa.string()),
    ("subtraces", pa.int64()), ("gas", pa.int64()), ("gas_used", pa.int64()),
])


def empty_part() -> Part:
    return Part(TX_SCHEMA.empty_table(), LOG_SCHEMA.empty_table(), TRACE_SCHEMA.empty_table())


def _gas_price(rng: np.random.Generator, n: int) -> np.ndarray:
    """Effective gas prices in wei, multiples of 10^6 wei so fees are whole gwei."""
    return (BASE_FEE + rng.integers(1_000, 4_000_000, n) * 1_000).astype(np.int64) // 10**6 * 10**6


def _eth_gwei(rng: np.random.Generator, n: int) -> np.ndarray:
    """ETH amounts in gwei, lognormal around 0.5 ETH, at least 0.01 ETH."""
    return np.maximum(rng.lognormal(np.log(5e8), 1.3, n), 1e7).astype(np.int64)


def _tx_table(block, frm, to, value, gas_used, rng, inp=None) -> pa.Table:
    n = len(block)
    return pa.table({
        "block": pa.array(block, pa.int64()),
        "prio": pa.array(np.ones(n, np.int8)),
        "hash": col.addr_text(ids.random_hex(rng, n, 32)),
        "nonce": pa.array(rng.integers(0, 5000, n), pa.int64()),
        "from_address": col.addr_text(frm),
        "to_address": col.addr_text(to),
        "value": value,
        "gas": pa.array(gas_used * 13 // 10, pa.int64()),
        "gas_price": pa.array(_gas_price(rng, n), pa.int64()),
        "input": inp if inp is not None else col.const("0x", n),
        "gas_used": pa.array(gas_used, pa.int64()),
    }, schema=TX_SCHEMA)


def _logs(tx, pos, address, data, topics, tt=None) -> pa.Table:
    n = len(tx)
    null = pa.nulls(n, pa.string())
    d = {"tx": pa.array(tx, pa.int64()), "pos": pa.array(np.full(n, pos, np.int32)),
         "address": address, "data": data, "topics": topics,
         "tt": pa.array(np.full(n, tt is not None)),
         "tt_token": null, "tt_from": null, "tt_to": null, "tt_value": null}
    if tt is not None:
        d["tt_token"], d["tt_from"], d["tt_to"], d["tt_value"] = tt
    return pa.table(d, schema=LOG_SCHEMA)


def _traces(tx, pos, frm, to, value, path, subtraces, gas) -> pa.Table:
    n = len(tx)
    return pa.table({
        "tx": pa.array(tx, pa.int64()), "pos": pa.array(np.full(n, pos, np.int32)),
        "from_address": frm, "to_address": to, "value": value, "input": col.const("0x", n),
        "trace_address": col.const(path, n), "subtraces": pa.array(np.full(n, subtraces, np.int64)),
        "gas": pa.array(np.full(n, gas, np.int64)), "gas_used": pa.array(np.full(n, gas // 2, np.int64)),
    }, schema=TRACE_SCHEMA)


def _transfer(tx, pos, token_addr_mat, frm, to, m, mul9) -> pa.Table:
    """Transfer logs plus their token_transfers fields."""
    topics = col.topics_text(events.TRANSFER, frm, to)
    data = col.data_text(col.word_matrix(m, mul9))
    token = col.addr_text(token_addr_mat)
    value = col.wei_text(m, mul9)
    return _logs(tx, pos, token, data, topics, (token, col.addr_text(frm), col.addr_text(to), value))


class Background:
    """Generates the background of one run chunk by chunk; deterministic per (seed, chunk)."""

    def __init__(self, world: World, seed: int) -> None:
        self.w = world
        self.seed = seed
        self.hot = world.hot_matrix
        self.tok_mat = np.stack([col.tile(TOKENS[s].address, 1)[0] for s in TOKEN_SYMS])
        self.pair_mat = np.stack([col.tile(world.pairs[s], 1)[0] for s in TOKEN_SYMS])
        self.tok_mul9 = np.array([TOKENS[s].decimals == 18 for s in TOKEN_SYMS])
        # deposits still to forward: block, deposit index, gwei received
        self.pending = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))

    def chunk(self, index: int, b0: int, b1: int, n_tx: int) -> tuple[list[Part], int]:
        """Parts for blocks [b0, b1) with about n_tx new transactions; returns (parts, flows)."""
        rng = np.random.default_rng([self.seed, 1, index])
        probs = np.array([p for p, _ in KINDS.values()])
        counts = {k: int(v) for k, v in zip(KINDS, rng.multinomial(n_tx, probs / probs.sum()))}
        parts: list[Part] = []
        flows = 0
        w = self.w
        nu, nd = len(w.users), len(w.deposits)

        def blocks(n: int) -> np.ndarray:
            return np.sort(rng.integers(b0, b1, n)).astype(np.int64)

        n = counts["pay"]
        if n:
            parts.append(Part(_tx_table(blocks(n), w.users[rng.integers(0, nu, n)],
                                        w.users[rng.integers(0, nu, n)],
                                        col.wei_text(_eth_gwei(rng, n)), np.full(n, 21_000), rng),
                              LOG_SCHEMA.empty_table(), TRACE_SCHEMA.empty_table()))
            flows += 2 * n
        n = counts["deposit"]
        if n:
            blk = blocks(n)
            d = rng.integers(0, nd, n)
            g = _eth_gwei(rng, n)
            owner = (d * 7919) % nu
            parts.append(Part(_tx_table(blk, w.users[owner], w.deposits[d], col.wei_text(g),
                                        np.full(n, 21_000), rng),
                              LOG_SCHEMA.empty_table(), TRACE_SCHEMA.empty_table()))
            flows += 2 * n
            pb, pd, pg = self.pending
            self.pending = (np.concatenate([pb, blk + rng.integers(2, 30, n)]),
                            np.concatenate([pd, d]), np.concatenate([pg, g]))
        # forwards due in this chunk
        pb, pd, pg = self.pending
        due = pb < b1
        if due.any():
            n = int(due.sum())
            blk, d, g = pb[due], pd[due], pg[due]
            self.pending = (pb[~due], pd[~due], pg[~due])
            t = _tx_table(blk, w.deposits[d], self.hot[w.deposit_exchange[d]],
                          col.wei_text(np.zeros(n, np.int64)), np.full(n, 21_000), rng)
            fee_gwei = 21_000 * t.column("gas_price").to_numpy() // 10**9
            t = t.set_column(t.schema.get_field_index("value"), "value", col.wei_text(g - fee_gwei))
            parts.append(Part(t, LOG_SCHEMA.empty_table(), TRACE_SCHEMA.empty_table()))
            flows += 2 * n
        n = counts["withdraw"]
        if n:
            parts.append(Part(_tx_table(blocks(n), self.hot[rng.integers(0, len(self.hot), n)],
                                        w.users[rng.integers(0, nu, n)],
                                        col.wei_text(_eth_gwei(rng, n)), np.full(n, 21_000), rng),
                              LOG_SCHEMA.empty_table(), TRACE_SCHEMA.empty_table()))
            flows += 2 * n
        n = counts["token"]
        if n:
            k = rng.choice(len(TOKEN_SYMS), n, p=TOKEN_P)
            frm, to = w.users[rng.integers(0, nu, n)], w.users[rng.integers(0, nu, n)]
            m = self._token_amount(rng, k)
            inp = ids.to_arrow(ids.prefixed(np.concatenate(
                [np.tile(np.frombuffer(events.SEL_TRANSFER.encode(), np.uint8), (n, 1)),
                 col.pad_addr(to), col.word_matrix(m, self.tok_mul9[k])], axis=1)))
            t = _tx_table(blocks(n), frm, self.tok_mat[k], col.const("0", n), np.full(n, 52_000), rng, inp)
            logs = _transfer(np.arange(n), 0, self.tok_mat[k], frm, to, m, self.tok_mul9[k])
            parts.append(Part(t, logs, TRACE_SCHEMA.empty_table()))
            flows += 2 * n
        n = counts["buy"]
        if n:
            parts.append(self._swap(rng, blocks(n), buy=True))
            flows += 4 * n
        n = counts["sell"]
        if n:
            parts.append(self._swap(rng, blocks(n), buy=False))
            flows += 3 * n
        return parts, flows

    def _token_amount(self, rng: np.random.Generator, k: np.ndarray) -> np.ndarray:
        """Token amounts: USDT in base units (~500 USDT), 18-decimal tokens in gwei units (~0.5)."""
        usdt = np.maximum(rng.lognormal(np.log(5e8), 1.5, len(k)), 1e6)
        staked = np.maximum(rng.lognormal(np.log(5e8), 1.3, len(k)), 1e6)
        return np.where(self.tok_mul9[k], staked, usdt).astype(np.int64)

    def _swap(self, rng: np.random.Generator, blk: np.ndarray, buy: bool) -> Part:
        """ETH -> token (buy) or token -> ETH (sell) through the router and a pair."""
        n = len(blk)
        w = self.w
        k = rng.choice(len(TOKEN_SYMS), n, p=[0.4, 0.3, 0.15, 0.15])
        user = w.users[rng.integers(0, len(w.users), n)]
        pair = self.pair_mat[k]
        router = col.tile(UNIV2_ROUTER, n)
        eth = _eth_gwei(rng, n)
        tok = self._token_amount(rng, k)
        mul9 = self.tok_mul9[k]
        idx = np.arange(n)
        zero_w = np.full((n, 64), ord("0"), np.uint8)
        eth_w = col.word_matrix(eth, np.ones(n, bool))
        tok_w = col.word_matrix(tok, mul9)
        sel = events.SEL_SWAP_EXACT_ETH_FOR_TOKENS if buy else events.SEL_SWAP_EXACT_TOKENS_FOR_ETH
        inp = ids.to_arrow(ids.prefixed(np.concatenate(
            [np.tile(np.frombuffer(sel.encode(), np.uint8), (n, 1)), tok_w, eth_w], axis=1)))
        value = col.wei_text(eth) if buy else col.const("0", n)
        t = _tx_table(blk, user, router, value, np.full(n, 120_000 if buy else 130_000), rng, inp)
        swap_topics = col.topics_text(events.UNIV2_SWAP, router, user)
        if buy:  # token0 = token out, token1 = WETH in
            transfer = _transfer(idx, 0, self.tok_mat[k], pair, user, tok, mul9)
            swap_data = col.data_text(zero_w, eth_w, tok_w, zero_w)
            traces = pa.concat_tables([
                _traces(idx, 0, col.addr_text(user), col.addr_text(router), value, "", 1, 110_000),
                _traces(idx, 1, col.addr_text(router), col.addr_text(pair), value, "0", 0, 90_000),
            ])
        else:
            transfer = _transfer(idx, 0, self.tok_mat[k], user, pair, tok, mul9)
            swap_data = col.data_text(tok_w, zero_w, zero_w, eth_w)
            traces = pa.concat_tables([
                _traces(idx, 0, col.addr_text(user), col.addr_text(router), col.const("0", n), "", 1, 120_000),
                _traces(idx, 1, col.addr_text(router), col.addr_text(pair), col.const("0", n), "0", 1, 100_000),
                _traces(idx, 2, col.addr_text(pair), col.addr_text(user), col.wei_text(eth), "0,0", 0, 2_300),
            ])
        swap = _logs(idx, 1, col.addr_text(pair), swap_data, swap_topics)
        return Part(t, pa.concat_tables([transfer, swap]), traces)
