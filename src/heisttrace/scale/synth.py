"""A bybit-like ledger drowned in background traffic, for the extraction tests and benchmark.

The point is a ledger where the exact answer depends on holdings' full histories: the
thief's intermediaries also receive clean money before and after the theft (so haircut shares
and FIFO queues are not trivial), deposit addresses (some labelled, some only forwarding to a
labelled exchange) mix stolen and clean deposits, one address leaks taint into the background
late in the timeline (so the neighbourhood spreads through unrelated traffic), a mixer and
dormant wallets end the rest, and an ERC-20 token is stolen alongside ETH. Everything is
generated with numpy and written as FLOW_SCHEMA Parquet partitioned by date.
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


@dataclass
class SynthLedger:
    flows: pa.Table
    seed_tx: str
    labels: list[tuple[str, str, str, str]] = field(default_factory=list)  # chain, addr, entity, cat
    deposit_addresses: list[str] = field(default_factory=list)


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
    bg_when = np.arange(n_bg_tx, dtype=np.float64)

    ev: list[tuple[float, int, int, int, bool]] = []  # (when, src, dst, amount, token)

    def at(frac: float) -> float:
        return frac * horizon + 0.5  # between background positions

    theft = at(0.10)
    # Clean money already sitting with the intermediaries and deposit addresses.
    for k, h in enumerate(layer1 + layer2 + deposits):
        ev.append((at(0.02 + 0.0005 * k), int(rng.integers(0, n_pop)), h, 3 * ETHER + k, False))
        ev.append((at(0.03 + 0.0005 * k), int(rng.integers(0, n_pop)), h, 5_000_000 + k, True))
    seed_when = theft
    # Theft tx built below with both assets; split and layering afterwards.
    for k, h in enumerate(layer1):
        ev.append((at(0.11 + 0.001 * k), thief, h, 30_000 * ETHER, False))
        ev.append((at(0.11 + 0.001 * k) + 0.01, thief, h, 80_000_000_000, True))
    for k, h in enumerate(layer2):
        src = layer1[k // 2]
        ev.append((at(0.15 + 0.001 * k), src, h, 14_000 * ETHER, False))
        ev.append((at(0.15 + 0.001 * k) + 0.01, src, h, 35_000_000_000, True))
        # More clean money arrives after the taint.
        ev.append((at(0.16 + 0.001 * k), int(rng.integers(0, n_pop)), h, 2 * ETHER, False))
    for k, h in enumerate(layer2):
        f = 0.2 + 0.01 * k
        route = k % 6
        if route in (0, 1):
            ev.append((at(f), h, deposits[k % len(deposits)], 9_000 * ETHER, False))
            ev.append((at(f) + 0.01, h, deposits[(k + 3) % len(deposits)], 20_000_000_000, True))
        elif route == 2:
            ev.append((at(f), h, mixer, 7_000 * ETHER, False))
        elif route == 3:
            ev.append((at(f), h, hot[k % 3], 10_000 * ETHER, False))
        elif route == 4:
            pass  # dormant
        else:
            # A late leak into an ordinary background address.
            ev.append((at(0.97), h, int(rng.integers(0, n_pop)), 50 * ETHER, False))
    # Deposit addresses sweep to their exchange later, with clean deposits in between.
    for k, d in enumerate(deposits):
        ev.append((at(0.5 + 0.01 * k), int(rng.integers(0, n_pop)), d, ETHER, False))
        ev.append((at(0.6 + 0.01 * k), d, hot[k % 3], 8_000 * ETHER, False))
        ev.append((at(0.6 + 0.01 * k) + 0.01, d, hot[k % 3], 15_000_000_000, True))
    # Exchanges pay out to the background (outflows of a stop holding: never followed).
    for k in range(20):
        ev.append((at(0.7 + 0.01 * k), hot[k % 3], int(rng.integers(0, n_pop)), ETHER, False))

    sp_when = np.array([e[0] for e in ev])
    when = np.concatenate([bg_when, sp_when, [seed_when]])
    src = np.concatenate([bg_src, [e[1] for e in ev], [victim]]).astype(np.int64)
    dst = np.concatenate([bg_dst, [e[2] for e in ev], [thief]]).astype(np.int64)
    amt_small = np.concatenate([bg_amt, np.zeros(len(ev) + 1, np.int64)])
    big = [None] * n_bg_tx + [e[3] for e in ev] + [401_000 * ETHER]
    tok = np.concatenate([bg_tok, [e[4] for e in ev], [False]])
    order = np.argsort(when, kind="stable")
    n_tx = len(order)
    seed_pos = int(np.nonzero(order == n_tx - 1)[0][0])

    pos = np.arange(n_tx, dtype=np.int64)
    block = pos // TXS_PER_BLOCK + 21_000_000
    txi = pos % TXS_PER_BLOCK
    tme = T0 + (pos // TXS_PER_BLOCK) * BLOCK_SECONDS
    hashes = pa.array([f"0x{i:064x}" for i in range(1, n_tx + 1)], pa.string())
    vocab = pa.array(names + [FEE_SINK], pa.string())
    fee_idx = len(names)

    s, d, t = src[order], dst[order], tok[order]
    amt = pc.cast(pa.array(amt_small[order]), pa.string())
    sp_positions = np.nonzero(order >= n_bg_tx)[0]
    amt_list = amt.to_numpy(zero_copy_only=False).astype(object)
    for p in sp_positions:
        amt_list[p] = str(big[int(order[p])])
    amt = pa.array(amt_list, pa.string())

    fee_amt = pc.cast(pa.array(21_000 * rng.integers(1, 50, n_tx) * 10**9), pa.string())
    tok_mask = pa.array(t)
    value = pa.table({
        "chain": pa.array(["ethereum"] * n_tx, pa.string()),
        "block": block, "time": tme,
        "ordinal": np.where(t, txi * TX_STRIDE + LOG_BASE, txi * TX_STRIDE + 1),
        "tx_hash": hashes, "src": vocab.take(pa.array(s)), "dst": vocab.take(pa.array(d)),
        "asset": pc.if_else(tok_mask, pa.scalar(TOKEN), pa.scalar("ETH")),
        "amount_out": amt, "amount_in": amt,
        "kind": pc.if_else(tok_mask, pa.scalar("token"), pa.scalar("native")),
        "dst_chain": pa.nulls(n_tx, pa.string()), "dst_asset": pa.nulls(n_tx, pa.string()),
    })
    fees = pa.table({
        "chain": value["chain"], "block": block, "time": tme, "ordinal": txi * TX_STRIDE,
        "tx_hash": hashes, "src": value["src"],
        "dst": vocab.take(pa.array(np.full(n_tx, fee_idx))),
        "asset": pa.array(["ETH"] * n_tx, pa.string()), "amount_out": fee_amt,
        "amount_in": fee_amt, "kind": pa.array(["fee"] * n_tx, pa.string()),
        "dst_chain": pa.nulls(n_tx, pa.string()), "dst_asset": pa.nulls(n_tx, pa.string()),
    })
    seed_hash = f"0x{seed_pos + 1:064x}"
    # The theft also takes tokens in the same transaction.
    extra = pa.table({
        "chain": ["ethereum"], "block": [int(block[seed_pos])], "time": [int(tme[seed_pos])],
        "ordinal": [int(txi[seed_pos]) * TX_STRIDE + LOG_BASE + 1], "tx_hash": [seed_hash],
        "src": [names[victim]], "dst": [names[thief]], "asset": [TOKEN],
        "amount_out": [str(900_000_000_000)], "amount_in": [str(900_000_000_000)],
        "kind": ["token"], "dst_chain": pa.nulls(1, pa.string()),
        "dst_asset": pa.nulls(1, pa.string()),
    }, schema=FLOW_SCHEMA)
    flows = pa.concat_tables([value.cast(FLOW_SCHEMA), fees.cast(FLOW_SCHEMA), extra])
    return SynthLedger(flows=flows, seed_tx=seed_hash, labels=labels,
                       deposit_addresses=[names[x] for x in deposits])


def write_dataset(flows: pa.Table, out: str | Path) -> None:
    """FLOW_SCHEMA Parquet partitioned by UTC date (`date=YYYY-MM-DD/`), as chain exports are."""
    date = pc.strftime(pc.cast(pc.multiply(flows["time"], 1_000_000),
                               pa.timestamp("us", "UTC")), format="%Y-%m-%d")
    ds.write_dataset(flows.append_column("date", date), str(out), format="parquet",
                     partitioning=ds.partitioning(pa.schema([("date", pa.string())]),
                                                  flavor="hive"),
                     existing_data_behavior="overwrite_or_ignore",
                     max_rows_per_group=1 << 20)
