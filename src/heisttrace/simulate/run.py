"""One simulator run: plan the laundering, stream the background around it, write every file.

Outputs in OUT: ethereum/ (ethereum-etl CSVs), bitcoin/ (getblock JSON per block),
labels.yaml (TagPack), prices.csv, theft.json, truth.json.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from heisttrace.simulate import btc_writer, ids
from heisttrace.simulate import timeline as tl
from heisttrace.simulate.actors import BTC_PRICE, ETH_PRICE, TOKENS, World
from heisttrace.simulate.assemble import ChunkAssembler, plan_part
from heisttrace.simulate.background import FLOWS_PER_TX, Background
from heisttrace.simulate.etl_writer import EtlWriter
from heisttrace.simulate.model import BtcIn, BtcOut, BtcTx, EthTx
from heisttrace.simulate.scenario_bybit import MIN_SCALE, Plan, build
from heisttrace.simulate.tagpack_writer import write_tagpack
from heisttrace.simulate.truth import write_truth

SCENARIOS = ("bybit",)
CHUNK_FLOWS = 100_000
Progress = Callable[[int, int], None]  # (flows done, flows total)


def eth_flows(t: EthTx) -> int:
    """Flows an importer makes of a transaction: fee, value, internal value, token transfers."""
    return 1 + (t.value > 0) + sum(1 for c in t.traces if c.value > 0) + len(t.transfers)


def btc_flows(t: BtcTx) -> int:
    return len(t.vin) + sum(1 for o in t.vout if o.value > 0) + (0 if t.coinbase else 1)


def simulate(scenario: str, scale: int, seed: int, out: Path, progress: Progress | None = None) -> dict:
    """Write a whole scenario into `out` (replacing what a previous run left); returns a summary."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    if scale < MIN_SCALE:
        raise ValueError(f"--scale must be at least {MIN_SCALE} flows, got {scale}")
    started = time.perf_counter()
    for sub in ("ethereum", "bitcoin"):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    n_users = min(max(scale // 20, 1_000), 1_000_000)
    world = World(seed, n_users, n_users // 4)
    plan = build(world, scale, seed)

    plan_flows = sum(eth_flows(t) for t in plan.eth_txs)
    plan_flows += sum(btc_flows(t) for txs in plan.btc_txs.values() for t in txs)
    # Ordinary Bitcoin payments: about 2% of the flows (4 flows each), plus one coinbase a block.
    n_heights = tl.BTC_END_HEIGHT - tl.BTC_START_HEIGHT
    btc_bg_txs = min(max(scale // 200, 100), 200_000)
    btc_bg_flows = n_heights + 4 * btc_bg_txs
    bg_flows = max(scale - plan_flows - btc_bg_flows, 0)
    total = plan_flows + btc_bg_flows + bg_flows
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(min(done, total), total)

    # -- Ethereum ---------------------------------------------------------------------------
    writer = EtlWriter(out / "ethereum")
    _write_tokens(writer, world)
    asm = ChunkAssembler(writer, seed)
    bg = Background(world, seed)
    n_blocks = tl.END_BLOCK - tl.START_BLOCK
    n_bg_tx = bg_flows / FLOWS_PER_TX
    per_chunk = max(1, int(CHUNK_FLOWS / max(bg_flows / n_blocks, 1e-9)))
    txs = plan.eth_txs
    p = 0
    written = 0
    eth_flow_count = 0
    for index, b0 in enumerate(range(tl.START_BLOCK, tl.END_BLOCK, per_chunk)):
        b1 = min(b0 + per_chunk, tl.END_BLOCK)
        target = round(n_bg_tx * (b1 - tl.START_BLOCK) / n_blocks)
        n_tx, written = target - written, target
        parts, flows = bg.chunk(index, b0, b1, n_tx)
        q = p
        while q < len(txs) and txs[q].block < b1:
            q += 1
        mine = txs[p:q]
        p = q
        pf = sum(eth_flows(t) for t in mine)
        asm.write(index, b0, b1, [plan_part(mine), *parts])
        eth_flow_count += flows + pf
        tick(flows + pf)
    if p != len(txs):
        raise RuntimeError("plan has transactions after the last block")
    writer.close()

    # -- Bitcoin ----------------------------------------------------------------------------
    btc_dir = out / "bitcoin"
    btc_dir.mkdir(parents=True, exist_ok=True)
    btc_flow_count = _write_bitcoin(btc_dir, plan, seed, btc_bg_txs, tick)

    # -- labels, prices, theft, truth -------------------------------------------------------
    write_tagpack(out / "labels.yaml", plan.tags, "heisttrace simulation: bybit", "heisttrace-simulator")
    _write_prices(out / "prices.csv")
    theft = {
        "scenario": scenario,
        "case": scenario,
        "chain": "ethereum",
        "tx_hash": plan.theft_hash,
        "block": plan.theft_block,
        "time": tl.eth_time(plan.theft_block),
        "victim": world.victim,
        "thief": _thief(plan),
        "seeds": [plan.theft_hash],
        "prices": "prices.csv",
        "origin_unit": "USD",
        "command": f"heisttrace trace --case {scenario} --seed {plan.theft_hash} --prices prices.csv",
    }
    (out / "theft.json").write_text(json.dumps(theft, indent=1) + "\n")
    truth = _truth(plan, world, scenario, scale, seed, eth_flow_count, btc_flow_count)
    write_truth(out / "truth.json", truth)
    seconds = time.perf_counter() - started
    return {
        "scenario": scenario, "seed": seed, "scale": scale, "out": str(out),
        "flows": eth_flow_count + btc_flow_count, "ethereum_flows": eth_flow_count,
        "bitcoin_flows": btc_flow_count, "etl_rows": dict(writer.rows),
        "theft_tx": plan.theft_hash, "stolen_usd": truth["stolen"], "shares": truth["shares"],
        "seconds": round(seconds, 2),
    }


def _thief(plan: Plan) -> str:
    return next(t.address for t in plan.tags if t.category == "perpetrator")


def _write_tokens(writer: EtlWriter, world: World) -> None:
    toks = list(TOKENS.values()) + world.spam_tokens
    writer.write("tokens", pa.table({
        "address": [t.address for t in toks], "symbol": [t.symbol for t in toks],
        "name": [t.name for t in toks], "decimals": pa.array([t.decimals for t in toks], pa.int64()),
        "total_supply": [str(t.supply) for t in toks], "block_number": pa.nulls(len(toks), pa.int64()),
    }))


def _write_prices(path: Path) -> None:
    """chain,asset,price: USD per whole unit at theft time (tokens named by contract)."""
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["chain", "asset", "price"])
        w.writerow(["ethereum", "ETH", ETH_PRICE])
        for sym in ("stETH", "cmETH", "mETH", "USDT", "WETH"):
            w.writerow(["ethereum", TOKENS[sym].address, TOKENS[sym].price])
        w.writerow(["bitcoin", "BTC", BTC_PRICE])


def _write_bitcoin(btc_dir: Path, plan: Plan, seed: int, n_bg: int, tick: Callable[[int], None]) -> int:
    """Every Bitcoin block of the range: coinbase, ordinary payments, then the plan's txs."""
    rng = np.random.default_rng([seed, 4])
    pool = [ids.btc_address(seed, "btc user", i) for i in range(2_000)]
    miner = ids.btc_address(seed, "btc miner")
    prev = ids.raw_hash(seed, "btc parent")
    flows = 0
    n_heights = tl.BTC_END_HEIGHT - tl.BTC_START_HEIGHT
    for h in range(tl.BTC_START_HEIGHT, tl.BTC_END_HEIGHT):
        i = h - tl.BTC_START_HEIGHT
        per_block = (i + 1) * n_bg // n_heights - i * n_bg // n_heights
        bh = ids.raw_hash(seed, "btc block", h)
        txs = [BtcTx(ids.raw_hash(seed, "coinbase", h), h, [], [BtcOut(312_500_000, miner[0], miner[1])], coinbase=True)]
        k = rng.integers(0, len(pool), (per_block, 3))
        vals = rng.integers(50_000, 500_000_000, per_block)
        for j in range(per_block):
            a, b, c = (pool[int(x)] for x in k[j])
            v = int(vals[j])
            pay = v * 2 // 3
            txs.append(BtcTx(ids.raw_hash(seed, "btc bg", h, j), h,
                             [BtcIn(ids.raw_hash(seed, "btc bg prev", h, j), 0, v, a[0], a[1], h - 30)],
                             [BtcOut(pay, b[0], b[1]), BtcOut(v - pay - 1_200, c[0], c[1])]))
        txs.extend(plan.btc_txs.get(h, []))
        text = btc_writer.block_json(h, bh, prev, tl.btc_time(h), txs)
        btc_writer.write_block(btc_dir, h, text)
        prev = bh
        n = sum(btc_flows(t) for t in txs)
        flows += n
        tick(n)
    return flows


def _asset_id(chain: str, asset: str) -> str:
    """The ledger's asset name: native coin name, or the token's contract address."""
    if chain == "ethereum" and asset in TOKENS:
        return TOKENS[asset].address
    return asset


def _truth(plan: Plan, world: World, scenario: str, scale: int, seed: int, eth_n: int, btc_n: int) -> dict:
    r = plan.book.result()
    for s in r["sinks"]:
        s["asset"] = _asset_id(s["chain"], s["asset"])
    r["stolen_assets"] = {_asset_id("ethereum", k): v for k, v in r["stolen_assets"].items()}
    by_deposit: dict[str, float] = {}
    deposit_set = {(d["chain"], d["address"]) for d in plan.deposits}
    for s in r["sinks"]:
        if s["bucket"] == "cashed_out" and (s["chain"], s["address"]) in deposit_set:
            by_deposit[s["address"]] = by_deposit.get(s["address"], 0.0) + s["origin_amount"]
    background = ["0x" + bytes(row).decode() for row in world.deposits]
    return {
        "scenario": scenario,
        "seed": seed,
        "scale": scale,
        "origin_unit": "USD",
        "theft_tx": plan.theft_hash,
        "stolen": r["stolen"],
        "stolen_assets": r["stolen_assets"],
        "buckets": r["buckets"],
        "shares": r["shares"],
        "cashed_out_by_entity": r["cashed_out_by_entity"],
        "cashed_out_by_deposit": dict(sorted(by_deposit.items())),
        "deposit_addresses": plan.deposits,
        "background_deposit_addresses": background,
        "spam": {"addresses": sorted(plan.spam_addresses), "tokens": sorted(plan.spam_tokens)},
        "thief_addresses": [{"chain": c, "address": a} for c, a in plan.thief_addresses],
        "flows": {"ethereum": eth_n, "bitcoin": btc_n},
        "sinks": r["sinks"],
    }
