"""A bybit-like ledger drowned in background traffic, for the extraction tests and benchmark.

The point is a ledger where the exact answer depends on holdings' full histories: the
thief's intermediaries also receive clean money before and after the theft (so haircut shares
and FIFO queues are not trivial), deposit addresses (some labelled, some only forwarding to a
labelled exchange) mix stolen and clean deposits, one address leaks taint into the background
late in the timeline (so the neighbourhood spreads through unrelated traffic), a mixer and
dormant wallets end the rest, and an ERC-20 token is stolen alongside ETH. Some stolen ETH goes
through a contract that forwards it internally (so ethereum-etl `traces` matter), and some
transactions fail (only their fee moves).

The ledger is generated once as transactions (`SynthLedger.txs`, one row each, plus the token
transfers) and rendered two ways that describe the same flows: FLOW_SCHEMA (`.flows`,
`write_dataset`) and ethereum-etl-schema tables (`write_etl`: transactions, token_transfers,
traces), so extraction from either input format can be checked against one full-ledger trace.
Everything is numpy/Arrow; Parquet is partitioned by date, as chain exports are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from heisttrace.ledger.schema import FEE_SINK, FLOW_SCHEMA, LOG_BASE, TX_STRIDE

T0 = 1_740_000_000  # Feb 2025
BLOCK_SECONDS = 12
TXS_PER_BLOCK = 100
ETHER = 10**18
TOKEN = "0x" + "da" * 20
GAS_USED = 21_000
FAILED_SHARE = 0.01  # of background transactions


@dataclass
class SynthLedger:
    """The generated transactions and token transfers; `flows` renders them as flows."""

    txs: pa.Table  # one row per transaction (see _tx_table)
    tokens: pa.Table  # one row per token transfer of a successful transaction
    seed_tx: str
    labels: list[tuple[str, str, str, str]] = field(default_factory=list)  # chain, addr, entity, cat
    deposit_addresses: list[str] = field(default_factory=list)
    _flows: pa.Table | None = None

    @property
    def flows(self) -> pa.Table:
        """FLOW_SCHEMA flows, built on first use (the ETL rendering does not need them)."""
        if self._flows is None:
            self._flows = ledger_flows(self.txs, self.tokens)
        return self._flows

    def drop_flows(self) -> None:
        """Free the rendered flows (the benchmark keeps only the Parquet)."""
        self._flows = None


def _addr(i: int, tag: int = 0) -> str:
    return "0x" + f"{tag:08x}{i:032x}"


def make_ledger(n_flows: int, seed: int = 7) -> SynthLedger:
    """About `n_flows` flows: background transfers (value + fee) plus the theft's tree."""
    rng = np.random.default_rng(seed)
    n_bg_tx = max(1000, n_flows // 2)
    n_pop = max(500, n_bg_tx // 10)
    horizon = n_bg_tx  # desired times are positions in [0, horizon)

    # Special addresses live after the background population in one vocabulary.
    names = [_addr(i) for i in range(n_pop)]

    def new(tag: int) -> int:
        names.append(_addr(len(names), tag))
        return len(names) - 1

    victim, thief = new(1), new(2)
    layer1 = [new(3) for _ in range(12)]
    layer2 = [new(4) for _ in range(24)]
    deposits = [new(5) for _ in range(10)]
    hot = [new(6) for _ in range(3)]
    mixer = new(7)
    labels = [("ethereum", names[h], f"exchange{k}", "exchange") for k, h in enumerate(hot)]
    labels.append(("ethereum", names[mixer], "mixer", "mixing_service"))
    labels += [("ethereum", names[d], "exchange0", "deposit_wallet") for d in deposits[:5]]

    # Background: uniform random transfers in the population, 10% of them in the token.
    bg_src = rng.integers(0, n_pop, n_bg_tx)
    bg_dst = rng.integers(0, n_pop, n_bg_tx)
    bg_amt = rng.integers(10**15, 5 * 10**18, n_bg_tx, dtype=np.int64)
    bg_tok = rng.random(n_bg_tx) < 0.1
    bg_ok = rng.random(n_bg_tx) >= FAILED_SHARE
    bg_when = np.arange(n_bg_tx, dtype=np.float64)

    # (when, src, dst, amount, token, router or -1, ok)
    ev: list[tuple[float, int, int, int, bool, int, bool]] = []

    def add(when: float, src: int, dst: int, amount: int, token: bool = False,
            router: int = -1, ok: bool = True) -> None:
        ev.append((when, src, dst, amount, token, router, ok))

    def at(frac: float) -> float:
        return frac * horizon + 0.5  # between background positions

    theft = at(0.10)
    # Clean money already sitting with the intermediaries and deposit addresses.
    for k, h in enumerate(layer1 + layer2 + deposits):
        add(at(0.02 + 0.0005 * k), int(rng.integers(0, n_pop)), h, 3 * ETHER + k)
        add(at(0.03 + 0.0005 * k), int(rng.integers(0, n_pop)), h, 5_000_000 + k, True)
    # Theft tx built below with both assets; split and layering afterwards.
    for k, h in enumerate(layer1):
        add(at(0.11 + 0.001 * k), thief, h, 30_000 * ETHER)
        add(at(0.11 + 0.001 * k) + 0.01, thief, h, 80_000_000_000, True)
    # A failed attempt: only its fee leaves the thief.
    add(at(0.112) + 0.02, thief, layer1[0], 1_000 * ETHER, ok=False)
    for k, h in enumerate(layer2):
        src = layer1[k // 2]
        add(at(0.15 + 0.001 * k), src, h, 14_000 * ETHER)
        add(at(0.15 + 0.001 * k) + 0.01, src, h, 35_000_000_000, True)
        # More clean money arrives after the taint.
        add(at(0.16 + 0.001 * k), int(rng.integers(0, n_pop)), h, 2 * ETHER)
    for k, h in enumerate(layer2):
        f = 0.2 + 0.01 * k
        route = k % 6
        if route in (0, 1):
            add(at(f), h, deposits[k % len(deposits)], 9_000 * ETHER)
            add(at(f) + 0.01, h, deposits[(k + 3) % len(deposits)], 20_000_000_000, True)
        elif route == 2:  # into the mixer through a forwarding contract (an internal transfer)
            add(at(f), h, mixer, 7_000 * ETHER, router=new(8))
        elif route == 3:
            add(at(f), h, hot[k % 3], 10_000 * ETHER, router=new(8))
        elif route == 4:
            pass  # dormant
        else:
            # A late leak into an ordinary background address.
            add(at(0.97), h, int(rng.integers(0, n_pop)), 50 * ETHER)
    # Deposit addresses sweep to their exchange later, with clean deposits in between.
    for k, d in enumerate(deposits):
        add(at(0.5 + 0.01 * k), int(rng.integers(0, n_pop)), d, ETHER)
        add(at(0.6 + 0.01 * k), d, hot[k % 3], 8_000 * ETHER)
        add(at(0.6 + 0.01 * k) + 0.01, d, hot[k % 3], 15_000_000_000, True)
    # Exchanges pay out to the background (outflows of a stop holding: never followed).
    for k in range(20):
        add(at(0.7 + 0.01 * k), hot[k % 3], int(rng.integers(0, n_pop)), ETHER)
    add(theft, victim, thief, 401_000 * ETHER)  # the seed, last event
    n_ev = len(ev)

    when = np.concatenate([bg_when, [e[0] for e in ev]])
    src = np.concatenate([bg_src, [e[1] for e in ev]]).astype(np.int64)
    dst = np.concatenate([bg_dst, [e[2] for e in ev]]).astype(np.int64)
    tok = np.concatenate([bg_tok, [e[4] for e in ev]]).astype(bool)
    router = np.concatenate([np.full(n_bg_tx, -1), [e[5] for e in ev]]).astype(np.int64)
    ok = np.concatenate([bg_ok, [e[6] for e in ev]]).astype(bool)
    order = np.argsort(when, kind="stable")
    n_tx = len(order)
    seed_pos = int(np.nonzero(order == n_tx - 1)[0][0])

    # Amounts as decimal strings (special ones exceed int64).
    amt = pc.cast(pa.array(np.concatenate([bg_amt, np.zeros(n_ev, np.int64)])[order]),
                  pa.string()).to_numpy(zero_copy_only=False).astype(object)
    for p in np.nonzero(order >= n_bg_tx)[0]:
        amt[p] = str(ev[int(order[p]) - n_bg_tx][3])

    pos = np.arange(n_tx, dtype=np.int64)
    vocab = pa.array(names + [TOKEN, ""], pa.string())
    token_idx, none_idx = len(names), len(names) + 1
    s, d, r, t = src[order], dst[order], router[order], tok[order]
    txs = pa.table({
        "block": pos // TXS_PER_BLOCK + 21_000_000,
        "txi": pos % TXS_PER_BLOCK,
        "time": T0 + (pos // TXS_PER_BLOCK) * BLOCK_SECONDS,
        "tx_hash": pa.array([f"0x{i:064x}" for i in range(1, n_tx + 1)], pa.string()),
        "src": vocab.take(pa.array(s)),
        "dst": vocab.take(pa.array(d)),  # the final recipient (of the token, for token txs)
        "router": pc.if_else(pa.array(r >= 0), vocab.take(pa.array(np.where(r >= 0, r,
                                                                             none_idx))),
                             pa.scalar(None, pa.string())),
        "token": pa.array(t),
        "amount": pa.array(amt, pa.string()),
        "gas_price": rng.integers(1, 50, n_tx) * 10**9,
        "ok": pa.array(ok[order]),
    })
    seed_hash = f"0x{seed_pos + 1:064x}"
    tok_rows = txs.filter(pc.and_(txs["token"], txs["ok"]))
    tokens = pa.table({
        "block": tok_rows["block"], "txi": tok_rows["txi"], "time": tok_rows["time"],
        "tx_hash": tok_rows["tx_hash"], "log_index": pa.array(np.zeros(tok_rows.num_rows,
                                                                       np.int64)),
        "src": tok_rows["src"], "dst": tok_rows["dst"], "amount": tok_rows["amount"],
    })
    # The theft also takes tokens in the same transaction.
    seed_row = txs.slice(seed_pos, 1)
    theft_tokens = pa.table({
        "block": seed_row["block"], "txi": seed_row["txi"], "time": seed_row["time"],
        "tx_hash": seed_row["tx_hash"], "log_index": pa.array([1], pa.int64()),
        "src": seed_row["src"], "dst": seed_row["dst"],
        "amount": pa.array([str(900_000_000_000)], pa.string()),
    })
    return SynthLedger(txs=txs, tokens=pa.concat_tables([tokens, theft_tokens]),
                       seed_tx=seed_hash, labels=labels,
                       deposit_addresses=[names[x] for x in deposits])


def _flows(n: int, block: pa.Array, time: pa.Array, ordinal: pa.Array, tx_hash: pa.Array,
           src: pa.Array, dst: pa.Array, asset: pa.Array | str, amount: pa.Array,
           kind: str) -> pa.Table:
    def fill(v: pa.Array | str) -> pa.Array:
        return pa.array([v] * n, pa.string()) if isinstance(v, str) else v

    return pa.table({
        "chain": fill("ethereum"), "block": block, "time": time, "ordinal": ordinal,
        "tx_hash": tx_hash, "src": src, "dst": fill(dst) if isinstance(dst, str) else dst,
        "asset": fill(asset), "amount_out": amount, "amount_in": amount, "kind": fill(kind),
        "dst_chain": pa.nulls(n, pa.string()), "dst_asset": pa.nulls(n, pa.string()),
    }).cast(FLOW_SCHEMA)


def ledger_flows(txs: pa.Table, tokens: pa.Table) -> pa.Table:
    """The flows of the generated transactions, by the rules of sources/evm.py."""
    stride = pc.multiply(txs["txi"], TX_STRIDE)
    fee = pc.cast(pc.multiply(txs["gas_price"], GAS_USED), pa.string())
    parts = [_flows(txs.num_rows, txs["block"], txs["time"], stride, txs["tx_hash"],
                    txs["src"], FEE_SINK, "ETH", fee, "fee")]
    native = txs.filter(pc.and_(pc.invert(txs["token"]), txs["ok"]))
    first = pc.coalesce(native["router"], native["dst"])
    parts.append(_flows(native.num_rows, native["block"], native["time"],
                        pc.add(pc.multiply(native["txi"], TX_STRIDE), 1), native["tx_hash"],
                        native["src"], first, "ETH", native["amount"], "native"))
    routed = native.filter(pc.is_valid(native["router"]))
    parts.append(_flows(routed.num_rows, routed["block"], routed["time"],
                        pc.add(pc.multiply(routed["txi"], TX_STRIDE), 2), routed["tx_hash"],
                        routed["router"], routed["dst"], "ETH", routed["amount"], "internal"))
    parts.append(_flows(tokens.num_rows, tokens["block"], tokens["time"],
                        pc.add(pc.multiply(tokens["txi"], TX_STRIDE),
                               pc.add(tokens["log_index"], LOG_BASE)),
                        tokens["tx_hash"], tokens["src"], tokens["dst"], TOKEN,
                        tokens["amount"], "token"))
    return pa.concat_tables(parts)


def _date(time: pa.Array) -> pa.Array:
    return pc.strftime(pc.cast(pc.multiply(time, 1_000_000), pa.timestamp("us", "UTC")),
                       format="%Y-%m-%d")


def _write(table: pa.Table, out: str | Path, time_col: str = "time") -> None:
    col = table[time_col]
    if pa.types.is_timestamp(col.type):
        date = pc.strftime(col, format="%Y-%m-%d")
    else:
        date = _date(col)
    ds.write_dataset(table.append_column("date", date), str(out), format="parquet",
                     partitioning=ds.partitioning(pa.schema([("date", pa.string())]),
                                                  flavor="hive"),
                     existing_data_behavior="overwrite_or_ignore",
                     max_rows_per_group=1 << 20)


def write_dataset(flows: pa.Table, out: str | Path) -> None:
    """FLOW_SCHEMA Parquet partitioned by UTC date (`date=YYYY-MM-DD/`), as chain exports are."""
    _write(flows, out)


def write_etl(ledger: SynthLedger, out: str | Path) -> None:
    """The same ledger as ethereum-etl tables (BigQuery-style layout) under `out`.

    `transactions` carries the receipt columns (gas used, status; no effective price, so the
    gas price is the fee price) and timestamps as TIMESTAMP; `token_transfers` has no
    transaction_index (the mapping takes it from the transaction); `traces` holds, for each
    transaction through a forwarding contract, the top call, the internal transfer, a
    delegatecall carrying value (not a transfer) and a reverted sub-call (voided), with
    `trace_address` as an integer list. Together they map to exactly `ledger.flows`.
    """
    out = Path(out)
    txs = ledger.txs
    ts = pc.cast(pc.multiply(txs["time"], 1_000_000), pa.timestamp("us", "UTC"))
    to = pc.if_else(txs["token"], pa.scalar(TOKEN), pc.coalesce(txs["router"], txs["dst"]))
    value = pc.if_else(txs["token"], pa.scalar("0"), txs["amount"])
    n = txs.num_rows
    _write(pa.table({
        "hash": txs["tx_hash"], "block_number": txs["block"],
        "transaction_index": txs["txi"], "from_address": txs["src"], "to_address": to,
        "value": value, "gas": pa.array(np.full(n, 60_000, np.int64)),
        "gas_price": txs["gas_price"],
        "receipt_gas_used": pa.array(np.full(n, GAS_USED, np.int64)),
        "receipt_status": pc.cast(txs["ok"], pa.int64()),
        "block_timestamp": ts,
    }), out / "transactions", "block_timestamp")
    tk = ledger.tokens
    _write(pa.table({
        "token_address": pa.array([TOKEN] * tk.num_rows, pa.string()),
        "from_address": tk["src"], "to_address": tk["dst"], "value": tk["amount"],
        "transaction_hash": tk["tx_hash"], "log_index": tk["log_index"],
        "block_number": tk["block"], "block_timestamp": tk["time"],
    }), out / "token_transfers", "block_timestamp")
    routed = txs.filter(pc.is_valid(txs["router"]))
    rows: dict[str, list[object]] = {k: [] for k in (
        "transaction_hash", "block_number", "transaction_index", "from_address", "to_address",
        "value", "trace_type", "call_type", "trace_address", "error", "status",
        "block_timestamp")}
    for r in routed.to_pylist():
        frames = [  # (from, to, value, call_type, trace_address, error)
            (r["src"], r["router"], r["amount"], "call", [], None),
            (r["router"], r["dst"], r["amount"], "call", [0], None),
            (r["router"], r["dst"], r["amount"], "delegatecall", [1], None),
            (r["router"], FEE_SINK_LIKE, "5", "call", [2], "Reverted"),
        ]
        for frm, dst, val, call, path, err in frames:
            for k, v in (("transaction_hash", r["tx_hash"]), ("block_number", r["block"]),
                         ("transaction_index", r["txi"]), ("from_address", frm),
                         ("to_address", dst), ("value", val), ("trace_type", "call"),
                         ("call_type", call), ("trace_address", path), ("error", err),
                         ("status", 0 if err else 1), ("block_timestamp", r["time"])):
                rows[k].append(v)
    _write(pa.table({**rows, "trace_address": pa.array(rows["trace_address"],
                                                       pa.list_(pa.int64()))}),
           out / "traces", "block_timestamp")


# The reverted sub-call's would-be recipient (never paid): an address nobody else uses.
FEE_SINK_LIKE = "0x" + "ee" * 20
