"""Swaps and bridges on workspaces built from flows, logs and memos with the real layouts."""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa
import pytest

from heisttrace.conversions import events
from heisttrace.conversions.run import detect_conversions
from heisttrace.conversions.store import BRIDGE_POSITION, SWAP_POSITION, ensure_tables
from heisttrace.ledger.schema import FLOW_SCHEMA, LOG_BASE, TX_STRIDE

ROUTER = "0xd37bbe5744d730a1d98d8dc97c42f0ca46ad7146"  # THORChain router 4.1
UNIV2_ROUTER = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"
ONEINCH = "0x111111125421ca6dc452d289314280a0f8842a65"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
STETH = "0xae7ab96520de3a18e5e111b5eaab095312d7fe84"
CMETH = "0xe6829d9a7ee3040e1276fa75293bde931859e8fa"
METH = "0xd5f7838f5c461feff7fe49ea5ebaf7728bb0adfa"
USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
ZERO = "0x" + "0" * 40
THIEF = "0x" + "7e" * 20
THIEF2 = "0x" + "2b" * 20
VAULT = "0x" + "ba" * 20
BSC_VAULT = "0x" + "bb" * 20
PAIR = "0x" + "a1" * 20
POOL_A = "0x" + "a2" * 20
POOL_B = "0x" + "a3" * 20
FEE_TAKER = "0x" + "fe" * 20
BTC_DEST = "bc1q6527vxxqjpq80la2l0sw7hay3lj6dz07zs6gzl"
BTC_VAULT = "bc1qvault0000000000000000000000000000000"
E18 = 10**18


def tx(n: int) -> str:
    return "0x" + f"{n:064x}"


def btc_tx(n: int) -> str:
    return f"{n:064x}"


class Builder:
    """Rows for one workspace: flows in the EVM / Bitcoin layouts, watched logs, memos."""

    def __init__(self) -> None:
        self.flows: list[dict] = []
        self.logs: list[dict] = []
        self.memos: list[tuple] = []

    def flow(self, chain, block, time, tx_index, pos, txh, src, dst, asset, amount, kind):
        self.flows.append(
            {"chain": chain, "block": block, "time": time, "ordinal": tx_index * TX_STRIDE + pos,
             "tx_hash": txh, "src": src, "dst": dst, "asset": asset, "amount_out": str(amount),
             "amount_in": str(amount), "kind": kind, "dst_chain": None, "dst_asset": None}
        )

    def log(self, chain, block, time, txh, log_index, address, topics_data):
        topics, data = topics_data
        self.logs.append(events.log_row(chain, block, time, txh, log_index, address, topics, data))

    def write(self, ws) -> None:
        with ws.transaction():
            ws.add_flows(pa.Table.from_pylist(self.flows, schema=FLOW_SCHEMA))
            for r in self.logs:
                ws.con.execute(
                    "INSERT INTO evm_logs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [r["chain"], r["block"], r["time"], r["tx_hash"], r["log_index"],
                     r["address"], r["topic0"], r["topics"], r["data"]],
                )
            for m in self.memos:
                ws.con.execute("INSERT INTO tx_memos VALUES (?, ?, ?, ?, ?)", list(m))


def eth_inbound(b: Builder, n: int, amount: int, memo: str, tx_index: int = 5) -> str:
    """Native ETH into the router 4.1: thief -> router value, router -> vault internal."""
    h = tx(n)
    b.flow("ethereum", 100 + n, 1000 + n, tx_index, 0, h, THIEF, "fees", "ETH", 21000 * 10**9, "fee")
    b.flow("ethereum", 100 + n, 1000 + n, tx_index, 1, h, THIEF, ROUTER, "ETH", amount, "native")
    b.flow("ethereum", 100 + n, 1000 + n, tx_index, 2, h, ROUTER, VAULT, "ETH", amount, "internal")
    b.log("ethereum", 100 + n, 1000 + n, h, 7, ROUTER, events.thorchain_deposit(VAULT, ZERO, amount, memo))
    return h


def btc_outbound(b: Builder, n: int, inbound: str, dest: str, paid: int, memo_prefix="OUT") -> str:
    """A vault payout per the Bitcoin model: vault -> tx node -> recipient + change + fee."""
    h = btc_tx(n)
    blk, t, i = 800_000 + n, 5000 + n, 3
    b.flow("bitcoin", blk, t, i, 0, h, BTC_VAULT, f"tx:{h}", "BTC", paid + 5_000_000, "utxo")
    b.flow("bitcoin", blk, t, i, 1, h, f"tx:{h}", dest, "BTC", paid, "utxo")
    b.flow("bitcoin", blk, t, i, 2, h, f"tx:{h}", BTC_VAULT, "BTC", 4_990_000, "utxo")
    b.flow("bitcoin", blk, t, i, 3, h, f"tx:{h}", "fees", "BTC", 10_000, "fee")
    b.memos.append(("bitcoin", blk, t, h, f"{memo_prefix}:{inbound.removeprefix('0x').upper()}"))
    return h


def balances(ws, view: str) -> dict[tuple[str, str, str], int]:
    """Net change per holding (chain, address, asset), exact integers, over a flows view."""
    out: dict[tuple[str, str, str], int] = defaultdict(int)
    for chain, src, dst, asset, a_out, a_in, dchain, dasset in ws.con.execute(
        f"SELECT chain, src, dst, asset, amount_out, amount_in, dst_chain, dst_asset FROM {view}"
    ).fetchall():
        out[(chain, src, asset)] -= int(a_out)
        out[(dchain or chain, dst, dasset or asset)] += int(a_in)
    return out


def conversion_rows(ws, kind: str) -> list[dict]:
    return ws.con.execute(
        f"SELECT * FROM flows WHERE kind = '{kind}' ORDER BY chain, tx_hash, ordinal"
    ).fetch_arrow_table().to_pylist()


def assert_conserved(ws, minted: frozenset = frozenset()) -> None:
    """Every party of a conversion keeps its exact own-unit net change after supersession.

    `minted`: holdings the raw flows cannot show (a WETH wrap mints without a Transfer log).
    """
    raw, ledger = balances(ws, "flows WHERE kind NOT IN ('swap', 'bridge')"), balances(ws, "ledger")
    for f in ws.con.execute(
        "SELECT * FROM flows WHERE kind IN ('swap', 'bridge')"
    ).fetch_arrow_table().to_pylist():
        for holding in ((f["chain"], f["src"], f["asset"]), (f["dst_chain"], f["dst"], f["dst_asset"])):
            if holding not in minted:
                assert raw[holding] == ledger[holding], holding


# -- THORChain ------------------------------------------------------------------------------


def test_eth_to_bitcoin_bridge_matched(workspace):
    b = Builder()
    amount = 10 * E18
    h = eth_inbound(b, 1, amount, f"=:b:{BTC_DEST}:0/1/0:t:0")
    out = btc_outbound(b, 9, h, BTC_DEST, 30_000_000)
    b.write(workspace)

    report = detect_conversions(workspace)
    assert (report.bridges.matched, report.bridges.unmatched) == (1, 0)
    (bridge,) = conversion_rows(workspace, "bridge")
    assert bridge["tx_hash"] == h and bridge["chain"] == "ethereum"
    assert (bridge["src"], bridge["asset"], bridge["amount_out"]) == (THIEF, "ETH", str(amount))
    assert (bridge["dst"], bridge["dst_chain"], bridge["dst_asset"], bridge["amount_in"]) == (
        BTC_DEST, "bitcoin", "BTC", "30000000")
    assert bridge["ordinal"] == 5 * TX_STRIDE + BRIDGE_POSITION
    assert (bridge["block"], bridge["time"]) == (101, 1001)

    sup = set(workspace.con.execute("SELECT chain, tx_hash, ordinal FROM superseded").fetchall())
    assert sup == {
        ("ethereum", h, 5 * TX_STRIDE + 1), ("ethereum", h, 5 * TX_STRIDE + 2),
        ("bitcoin", out, 3 * TX_STRIDE + 1),
    }
    ledger = workspace.con.execute(
        "SELECT src, dst, kind FROM ledger WHERE tx_hash IN (?, ?) ORDER BY chain, ordinal", [h, out]
    ).fetchall()
    assert (THIEF, BTC_DEST, "bridge") in ledger
    assert (THIEF, ROUTER, "native") not in ledger and (f"tx:{out}", BTC_DEST, "utxo") not in ledger
    assert (THIEF, "fees", "fee") in ledger and (f"tx:{out}", BTC_VAULT, "utxo") in ledger

    (inb,) = workspace.con.execute("SELECT * FROM bridge_inbounds").fetch_arrow_table().to_pylist()
    assert inb["matched_tx"] == out and inb["dest_chain"] == "bitcoin"
    assert inb["dest_address"] == BTC_DEST and inb["depositor"] == THIEF
    assert_conserved(workspace)


def test_uppercase_bech32_destination_finds_its_output(workspace):
    """Bech32 is case-insensitive; the payout's biggest output here is not the recipient's."""
    b = Builder()
    h = eth_inbound(b, 5, E18, f"=:BTC.BTC:{BTC_DEST.upper()}")
    out = btc_outbound(b, 6, h, BTC_DEST, 1_000_000)  # change output (4.99M) is larger
    b.flow("bitcoin", 800_006, 5006, 3, 9, out, f"tx:{out}", "bc1qbystander", "BTC", 9_000_000, "utxo")
    b.write(workspace)
    detect_conversions(workspace)
    (bridge,) = conversion_rows(workspace, "bridge")
    assert (bridge["dst"], bridge["amount_in"]) == (BTC_DEST, "1000000")


def test_unmatched_inbound_is_reported_and_left_raw(workspace):
    b = Builder()
    h = eth_inbound(b, 2, 3 * E18, f"SWAP:BTC.BTC:{BTC_DEST}:5855757:t:10")
    other = eth_inbound(b, 3, E18, "=:BTC.BTC:bc1qother", tx_index=6)
    btc_outbound(b, 8, other, "bc1qother", 1_000_000)
    b.write(workspace)

    report = detect_conversions(workspace)
    assert (report.bridges.matched, report.bridges.unmatched) == (1, 1)
    rows = {
        r["tx_hash"]: r for r in
        workspace.con.execute("SELECT * FROM bridge_inbounds").fetch_arrow_table().to_pylist()
    }
    assert rows[h]["matched_tx"] is None
    assert (rows[h]["dest_chain"], rows[h]["dest_address"], rows[h]["amount"]) == (
        "bitcoin", BTC_DEST, str(3 * E18))
    assert rows[h]["memo"].startswith("SWAP:BTC.BTC")
    # the unmatched deposit keeps its raw flows into the router
    assert workspace.con.execute(
        "SELECT count(*) FROM ledger WHERE tx_hash = ? AND dst = ?", [h, ROUTER]).fetchone()[0] == 1
    assert workspace.con.execute(
        "SELECT count(*) FROM superseded WHERE tx_hash = ?", [h]).fetchone()[0] == 0


def test_erc20_inbound_paid_out_on_evm_by_transfer_out(workspace):
    b = Builder()
    h, amount = tx(20), 250_000 * 10**6
    b.flow("ethereum", 120, 1200, 2, 0, h, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", 120, 1200, 2, LOG_BASE + 4, h, THIEF, ROUTER, USDT, amount, "token")
    b.log("ethereum", 120, 1200, h, 5, ROUTER,
          events.thorchain_deposit(VAULT, USDT, amount, f"=:s:{THIEF2}:0"))
    # payout on BSC: vault calls the router with value, the router forwards to the recipient
    out, bsc_router = tx(21), "0x" + "cc" * 20
    b.flow("bsc", 9000, 1300, 1, 0, out, BSC_VAULT, "fees", "BNB", 10**14, "fee")
    b.flow("bsc", 9000, 1300, 1, 1, out, BSC_VAULT, bsc_router, "BNB", 400 * E18, "native")
    b.flow("bsc", 9000, 1300, 1, 2, out, bsc_router, THIEF2, "BNB", 400 * E18, "internal")
    b.log("bsc", 9000, 1300, out, 0, bsc_router, events.thorchain_transfer_out(
        BSC_VAULT, THIEF2, ZERO, 400 * E18, f"OUT:{h[2:].upper()}"))
    b.write(workspace)

    report = detect_conversions(workspace)
    assert report.bridges.matched == 1
    (bridge,) = conversion_rows(workspace, "bridge")
    assert (bridge["asset"], bridge["amount_out"], bridge["dst_chain"], bridge["dst_asset"]) == (
        USDT, str(amount), "bsc", "BNB")
    assert (bridge["dst"], bridge["amount_in"]) == (THIEF2, str(400 * E18))
    assert bridge["ordinal"] == 2 * TX_STRIDE + BRIDGE_POSITION
    sup = set(workspace.con.execute("SELECT tx_hash, ordinal FROM superseded").fetchall())
    assert sup == {(h, 2 * TX_STRIDE + LOG_BASE + 4), (out, TX_STRIDE + 1), (out, TX_STRIDE + 2)}
    assert_conserved(workspace)


def test_refund_memo_matches_when_there_is_no_out(workspace):
    b = Builder()
    h = eth_inbound(b, 30, 2 * E18, f"=:b:{BTC_DEST}/{THIEF}:999999999999")
    refund = tx(31)
    b.flow("ethereum", 140, 1400, 0, 1, refund, VAULT, ROUTER, "ETH", 2 * E18 - 10**15, "native")
    b.flow("ethereum", 140, 1400, 0, 2, refund, ROUTER, THIEF, "ETH", 2 * E18 - 10**15, "internal")
    b.log("ethereum", 140, 1400, refund, 0, ROUTER, events.thorchain_transfer_out(
        VAULT, THIEF, ZERO, 2 * E18 - 10**15, f"REFUND:{h[2:].upper()}"))
    b.write(workspace)
    detect_conversions(workspace)
    (bridge,) = conversion_rows(workspace, "bridge")
    assert (bridge["dst"], bridge["dst_chain"], bridge["amount_in"]) == (
        THIEF, "ethereum", str(2 * E18 - 10**15))
    assert_conserved(workspace)


def test_memo_over_250_bytes_is_no_inbound(workspace):
    b = Builder()
    eth_inbound(b, 40, E18, f"=:b:{BTC_DEST}:0:" + "t" * 250)
    b.write(workspace)
    report = detect_conversions(workspace)
    assert report.bridges.inbounds == 0
    assert workspace.con.execute("SELECT count(*) FROM bridge_inbounds").fetchone()[0] == 0


# -- swaps ----------------------------------------------------------------------------------


def univ2_steth_to_eth(b: Builder, n: int = 50) -> str:
    """stETH -> ETH through the Uniswap V2 router: pair swap, router unwraps WETH, pays ETH."""
    h, blk, t = tx(n), 200, 2000
    sold, got = 100 * E18 - 1, 99 * E18  # stETH transfers lose a wei to share rounding
    b.flow("ethereum", blk, t, 7, 0, h, THIEF, "fees", "ETH", 3 * 10**15, "fee")
    b.flow("ethereum", blk, t, 7, 1, h, THIEF, UNIV2_ROUTER, "ETH", 0, "native")
    b.flow("ethereum", blk, t, 7, 2, h, WETH, UNIV2_ROUTER, "ETH", got, "internal")
    b.flow("ethereum", blk, t, 7, 3, h, UNIV2_ROUTER, THIEF, "ETH", got, "internal")
    b.flow("ethereum", blk, t, 7, LOG_BASE + 0, h, THIEF, PAIR, STETH, sold, "token")
    b.flow("ethereum", blk, t, 7, LOG_BASE + 1, h, PAIR, UNIV2_ROUTER, WETH, got, "token")
    b.log("ethereum", blk, t, h, 2, PAIR, events.univ2_swap(UNIV2_ROUTER, UNIV2_ROUTER, sold, 0, 0, got))
    b.log("ethereum", blk, t, h, 3, WETH, events.weth_withdrawal(UNIV2_ROUTER, got))
    return h


def test_univ2_steth_to_eth_via_router(workspace):
    b = Builder()
    h = univ2_steth_to_eth(b)
    b.write(workspace)
    report = detect_conversions(workspace)
    assert report.swaps.swaps == 1
    (swap,) = conversion_rows(workspace, "swap")
    assert (swap["src"], swap["asset"], swap["amount_out"]) == (THIEF, STETH, str(100 * E18 - 1))
    assert (swap["dst"], swap["dst_asset"], swap["amount_in"]) == (THIEF, "ETH", str(99 * E18))
    assert swap["ordinal"] == 7 * TX_STRIDE + SWAP_POSITION and swap["tx_hash"] == h
    led = workspace.con.execute(
        "SELECT src, dst, asset, kind FROM ledger WHERE tx_hash = ? ORDER BY ordinal", [h]).fetchall()
    assert (THIEF, THIEF, STETH, "swap") in led
    assert not any(r[3] != "fee" and THIEF in (r[0], r[1]) and r[3] != "swap" for r in led)
    assert_conserved(workspace)


def test_aggregator_route_to_other_recipient(workspace):
    """cmETH -> mETH -> WETH -> ETH through 1inch and two pools, paid to another address."""
    b = Builder()
    h, blk, t, i = tx(60), 300, 3000, 1
    sold, mid, weth_out, to_thief2, fee = 50 * E18, 51 * E18, 52 * E18, 51_900 * 10**15, 10**17
    b.flow("ethereum", blk, t, i, 0, h, THIEF, "fees", "ETH", 5 * 10**15, "fee")
    b.flow("ethereum", blk, t, i, 2, h, WETH, ONEINCH, "ETH", weth_out, "internal")
    b.flow("ethereum", blk, t, i, 3, h, ONEINCH, THIEF2, "ETH", to_thief2, "internal")
    b.flow("ethereum", blk, t, i, 4, h, ONEINCH, FEE_TAKER, "ETH", fee, "internal")
    b.flow("ethereum", blk, t, i, LOG_BASE + 0, h, THIEF, ONEINCH, CMETH, sold, "token")
    b.flow("ethereum", blk, t, i, LOG_BASE + 1, h, ONEINCH, POOL_A, CMETH, sold, "token")
    b.flow("ethereum", blk, t, i, LOG_BASE + 2, h, POOL_A, POOL_B, METH, mid, "token")
    b.flow("ethereum", blk, t, i, LOG_BASE + 4, h, POOL_B, ONEINCH, WETH, weth_out, "token")
    b.log("ethereum", blk, t, h, 3, POOL_A, events.univ3_swap(ONEINCH, POOL_B, sold, -mid))
    b.log("ethereum", blk, t, h, 5, POOL_B, events.univ2_swap(ONEINCH, ONEINCH, mid, 0, 0, weth_out))
    b.log("ethereum", blk, t, h, 6, WETH, events.weth_withdrawal(ONEINCH, weth_out))
    b.write(workspace)
    detect_conversions(workspace)
    (swap,) = conversion_rows(workspace, "swap")
    assert (swap["src"], swap["asset"], swap["amount_out"]) == (THIEF, CMETH, str(sold))
    assert (swap["dst"], swap["dst_asset"], swap["amount_in"]) == (THIEF2, "ETH", str(to_thief2))
    # the aggregator's fee payout is no part of the swap and stays in the ledger
    assert workspace.con.execute(
        "SELECT count(*) FROM ledger WHERE dst = ?", [FEE_TAKER]).fetchone()[0] == 1
    assert_conserved(workspace)


def test_weth_wrap_and_curve_swap(workspace):
    b = Builder()
    wrap, blk = tx(70), 400
    b.flow("ethereum", blk, 4000, 0, 0, wrap, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", blk, 4000, 0, 1, wrap, THIEF, WETH, "ETH", 5 * E18, "native")
    b.log("ethereum", blk, 4000, wrap, 0, WETH, events.weth_deposit(THIEF, 5 * E18))
    # a look-alike Deposit event from a contract that received no ETH is ignored
    fake = tx(71)
    b.flow("ethereum", blk, 4000, 1, 0, fake, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", blk, 4000, 1, 1, fake, THIEF, POOL_A, "ETH", 0, "native")
    b.log("ethereum", blk, 4000, fake, 0, POOL_A, events.weth_deposit(THIEF, 5 * E18))
    curve, pool = tx(72), "0xbebc44782c7db0a1a60cb6fe97d0b483032ff1c7"
    b.flow("ethereum", blk, 4000, 2, 0, curve, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", blk, 4000, 2, LOG_BASE, curve, THIEF, pool, USDT, 1000 * 10**6, "token")
    b.flow("ethereum", blk, 4000, 2, LOG_BASE + 1, curve, pool, THIEF,
           "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", 999 * 10**6, "token")
    b.log("ethereum", blk, 4000, curve, 2, pool, events.curve_exchange(THIEF, 2, 1000 * 10**6, 1, 999 * 10**6))
    b.write(workspace)
    report = detect_conversions(workspace)
    swaps = {s["tx_hash"]: s for s in conversion_rows(workspace, "swap")}
    assert set(swaps) == {wrap, curve} and report.swaps.swaps == 2
    assert (swaps[wrap]["asset"], swaps[wrap]["dst_asset"], swaps[wrap]["amount_in"]) == (
        "ETH", WETH, str(5 * E18))
    assert swaps[curve]["amount_out"] == str(1000 * 10**6)
    led = balances(workspace, "ledger")
    assert led[("ethereum", THIEF, WETH)] == 5 * E18  # the wrap's mint, absent from raw flows
    assert led[("ethereum", WETH, "ETH")] == 0  # the fake Deposit emitter is no WETH: untouched
    assert_conserved(workspace, minted=frozenset({("ethereum", THIEF, WETH)}))


def test_two_assets_out_is_ambiguous(workspace):
    b = Builder()
    h = tx(80)
    b.flow("ethereum", 500, 5000, 0, 0, h, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", 500, 5000, 0, 1, h, THIEF, PAIR, "ETH", E18, "native")
    b.flow("ethereum", 500, 5000, 0, LOG_BASE, h, THIEF, PAIR, USDT, 10**6, "token")
    b.flow("ethereum", 500, 5000, 0, LOG_BASE + 1, h, PAIR, THIEF, STETH, E18, "token")
    b.log("ethereum", 500, 5000, h, 0, PAIR, events.univ2_swap(THIEF, THIEF, 1, 1, 0, 1))
    b.write(workspace)
    report = detect_conversions(workspace)
    assert report.swaps.ambiguous == [h] and conversion_rows(workspace, "swap") == []


# -- the whole run --------------------------------------------------------------------------


def full_case(ws) -> None:
    b = Builder()
    univ2_steth_to_eth(b)
    h = eth_inbound(b, 1, 99 * E18, f"=:b:{BTC_DEST}")
    btc_outbound(b, 9, h, BTC_DEST, 200_000_000)
    eth_inbound(b, 2, E18, "=:b:bc1qnever", tx_index=9)
    b.write(ws)


def snapshot(ws) -> tuple:
    ensure_tables(ws)
    flows = ws.con.execute("SELECT * FROM flows ORDER BY ALL").fetchall()
    sup = ws.con.execute("SELECT * FROM superseded ORDER BY ALL").fetchall()
    inb = ws.con.execute("SELECT * FROM bridge_inbounds ORDER BY ALL").fetchall()
    labels = ws.con.execute("SELECT chain, address, source FROM labels ORDER BY ALL").fetchall()
    links = ws.con.execute("SELECT * FROM bridge_links ORDER BY ALL").fetchall()
    return flows, sup, inb, labels, links


def test_detect_twice_is_the_same(workspace):
    full_case(workspace)
    first = detect_conversions(workspace)
    snap = snapshot(workspace)
    second = detect_conversions(workspace)
    assert snapshot(workspace) == snap
    assert first.summary() | {"labels_added": 0} == second.summary()
    assert first.labels_added > 0 and second.labels_added == 0
    assert first.summary()["swaps"] == 1 and first.summary()["bridges_matched"] == 1
    assert first.summary()["bridges_unmatched"] == 1


def test_accounting_through_swap_then_bridge(workspace):
    """The thief's stETH becomes ETH, the ETH becomes BTC: own units conserved on each side."""
    full_case(workspace)
    detect_conversions(workspace)
    raw = balances(workspace, "flows WHERE kind NOT IN ('swap', 'bridge')")
    led = balances(workspace, "ledger")
    assert led[("ethereum", THIEF, STETH)] == raw[("ethereum", THIEF, STETH)] == -(100 * E18 - 1)
    assert led[("ethereum", THIEF, "ETH")] == raw[("ethereum", THIEF, "ETH")]
    assert led[("bitcoin", BTC_DEST, "BTC")] == raw[("bitcoin", BTC_DEST, "BTC")] == 200_000_000
    # the money left through the DEX and the router in the raw view, not in the ledger view
    assert raw[("ethereum", VAULT, "ETH")] == 100 * E18 and led[("ethereum", VAULT, "ETH")] == E18
    assert_conserved(workspace)


def test_known_contracts_labelled_once(workspace):
    detect_conversions(workspace)
    detect_conversions(workspace)
    rows = workspace.con.execute(
        "SELECT category, count(*) FROM labels WHERE address = ? GROUP BY ALL", [ROUTER]).fetchall()
    assert rows == [("defi_bridge", 1)]


def test_failure_leaves_workspace_unchanged(workspace, monkeypatch):
    full_case(workspace)
    detect_conversions(workspace)
    snap = snapshot(workspace)
    from heisttrace.conversions import swaps

    def boom(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(swaps, "detect_swaps", boom)
    with pytest.raises(RuntimeError):
        detect_conversions(workspace)
    assert snapshot(workspace) == snap


def test_observed_pools_and_vaults_labelled_heuristically(workspace):
    full_case(workspace)
    detect_conversions(workspace)
    detect_conversions(workspace)
    rows = workspace.con.execute(
        """SELECT address, entity, category, heuristic, evidence FROM labels
           WHERE source = 'heisttrace-conversions' ORDER BY address"""
    ).fetchall()
    by_addr = {r[0]: r for r in rows}
    assert set(by_addr) == {PAIR, VAULT}  # the router is already a known contract
    assert by_addr[PAIR][1:4] == ("Uniswap V2-style pool", "defi_dex", True)
    assert by_addr[VAULT][1:4] == ("THORChain vault", "defi_bridge", True)
    assert "univ2_swap" in by_addr[PAIR][4]
    # WETH only emits Withdrawal here: no pool label for it
    assert WETH not in by_addr


def test_bitcoin_inbound_paid_out_on_ethereum(workspace):
    b = Builder()
    sender, h, blk, t = "bc1qsender000000000000000000000000000000", btc_tx(100), 800_500, 7000
    b.flow("bitcoin", blk, t, 2, 0, h, sender, f"tx:{h}", "BTC", 100_000_000, "utxo")
    b.flow("bitcoin", blk, t, 2, 1, h, f"tx:{h}", BTC_VAULT, "BTC", 90_000_000, "utxo")
    b.flow("bitcoin", blk, t, 2, 2, h, f"tx:{h}", sender, "BTC", 9_990_000, "utxo")
    b.flow("bitcoin", blk, t, 2, 3, h, f"tx:{h}", "fees", "BTC", 10_000, "fee")
    b.memos.append(("bitcoin", blk, t, h, f"=:e:{THIEF2.upper().replace('0X', '0x')}:0/1/0"))
    out = tx(101)
    b.flow("ethereum", 900, 7100, 3, 1, out, VAULT, ROUTER, "ETH", 20 * E18, "native")
    b.flow("ethereum", 900, 7100, 3, 2, out, ROUTER, THIEF2, "ETH", 20 * E18, "internal")
    b.log("ethereum", 900, 7100, out, 0, ROUTER, events.thorchain_transfer_out(
        VAULT, THIEF2, ZERO, 20 * E18, f"OUT:{h.upper()}"))
    b.write(workspace)
    report = detect_conversions(workspace)
    assert report.bridges.matched == 1
    (bridge,) = conversion_rows(workspace, "bridge")
    assert (bridge["chain"], bridge["src"], bridge["asset"], bridge["amount_out"]) == (
        "bitcoin", f"tx:{h}", "BTC", "90000000")
    assert (bridge["dst"], bridge["dst_chain"], bridge["dst_asset"], bridge["amount_in"]) == (
        THIEF2, "ethereum", "ETH", str(20 * E18))
    (inb,) = workspace.con.execute("SELECT * FROM bridge_inbounds").fetch_arrow_table().to_pylist()
    assert (inb["depositor"], inb["amount"], inb["dest_address"], inb["matched_tx"]) == (
        sender, "90000000", THIEF2, out)
    sup = set(workspace.con.execute("SELECT tx_hash, ordinal FROM superseded").fetchall())
    assert sup == {(h, 2 * TX_STRIDE + 1), (out, 3 * TX_STRIDE + 1), (out, 3 * TX_STRIDE + 2)}
    assert_conserved(workspace)


def test_spam_airdrop_in_swap_tx_and_logs_imported_twice(workspace):
    b = Builder()
    h = univ2_steth_to_eth(b)
    spam_token = "0x" + "5a" * 20
    b.flow("ethereum", 200, 2000, 7, LOG_BASE + 9, h, "0x" + "5b" * 20, THIEF, spam_token, 10**24, "token")
    b.logs += [dict(r) for r in b.logs]  # the same block ingested twice
    b.write(workspace)
    report = detect_conversions(workspace)
    assert report.swaps.ambiguous == [h]  # without the spam label, two assets come in
    workspace.con.execute(
        "INSERT INTO labels (chain, address, category, source) VALUES ('ethereum', ?, 'spam', 'test')",
        [spam_token])
    report = detect_conversions(workspace)
    assert report.swaps.swaps == 1 and report.swaps.ambiguous == []
    (swap,) = conversion_rows(workspace, "swap")
    assert (swap["amount_out"], swap["amount_in"]) == (str(100 * E18 - 1), str(99 * E18))
    # the airdrop is not superseded: the engine drops it by its spam role
    assert workspace.con.execute(
        "SELECT count(*) FROM ledger WHERE asset = ?", [spam_token]).fetchone()[0] == 1


def test_deposit_and_memo_imported_twice_count_once(workspace):
    b = Builder()
    h = eth_inbound(b, 1, E18, f"=:b:{BTC_DEST}")
    btc_outbound(b, 9, h, BTC_DEST, 1_000_000)
    b.logs += [dict(r) for r in b.logs]
    b.memos += list(b.memos)
    b.write(workspace)
    report = detect_conversions(workspace)
    assert (report.bridges.inbounds, report.bridges.matched, report.bridges.unmatched) == (1, 1, 0)
    assert len(conversion_rows(workspace, "bridge")) == 1


def test_staking_and_wrapping_by_mint_and_burn(workspace):
    """ETH -> stETH (Lido mints) and stETH -> wstETH (wrapper mints): no swap event, still swaps."""
    wsteth = "0x7f39c581f595b53c5cb19bd0b3f8da6c935e2ca0"
    b = Builder()
    stake, wrap = tx(110), tx(111)
    b.flow("ethereum", 700, 7000, 0, 0, stake, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", 700, 7000, 0, 1, stake, THIEF, STETH, "ETH", 10 * E18, "native")
    b.flow("ethereum", 700, 7000, 0, LOG_BASE, stake, ZERO, THIEF, STETH, 10 * E18 - 1, "token")
    b.flow("ethereum", 700, 7000, 1, 0, wrap, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", 700, 7000, 1, LOG_BASE, wrap, THIEF, wsteth, STETH, 10 * E18 - 1, "token")
    b.flow("ethereum", 700, 7000, 1, LOG_BASE + 1, wrap, ZERO, THIEF, wsteth, 8 * E18, "token")
    # an airdrop mint with nothing given in return is no swap
    drop = tx(112)
    b.flow("ethereum", 700, 7000, 2, 0, drop, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", 700, 7000, 2, LOG_BASE, drop, ZERO, THIEF, "0x" + "d0" * 20, E18, "token")
    b.write(workspace)
    report = detect_conversions(workspace)
    swaps = {s["tx_hash"]: s for s in conversion_rows(workspace, "swap")}
    assert set(swaps) == {stake, wrap} and report.swaps.no_swap == 1
    assert (swaps[stake]["asset"], swaps[stake]["dst_asset"]) == ("ETH", STETH)
    assert (swaps[wrap]["asset"], swaps[wrap]["amount_out"], swaps[wrap]["dst_asset"],
            swaps[wrap]["amount_in"]) == (STETH, str(10 * E18 - 1), wsteth, str(8 * E18))
    assert_conserved(workspace)


def test_third_party_payment_in_swap_tx_stays_plain(workspace):
    """The trader pays a referrer directly in the swap transaction: that is no part of the swap."""
    b = Builder()
    h, referrer = tx(120), "0x" + "9e" * 20
    b.flow("ethereum", 800, 8000, 0, 0, h, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", 800, 8000, 0, LOG_BASE, h, THIEF, referrer, USDT, 10 * 10**6, "token")
    b.flow("ethereum", 800, 8000, 0, LOG_BASE + 1, h, THIEF, PAIR, USDT, 990 * 10**6, "token")
    b.flow("ethereum", 800, 8000, 0, LOG_BASE + 2, h, PAIR, THIEF, STETH, E18 // 3, "token")
    b.log("ethereum", 800, 8000, h, 3, PAIR, events.univ2_swap(THIEF, THIEF, 990 * 10**6, 0, 0, E18 // 3))
    b.write(workspace)
    detect_conversions(workspace)
    (swap,) = conversion_rows(workspace, "swap")
    assert (swap["amount_out"], swap["amount_in"]) == (str(990 * 10**6), str(E18 // 3))
    assert workspace.con.execute(
        "SELECT count(*) FROM ledger WHERE dst = ? AND kind = 'token'", [referrer]).fetchone()[0] == 1
    assert balances(workspace, "ledger")[("ethereum", THIEF, USDT)] == -1000 * 10**6
    assert_conserved(workspace)


def test_swap_then_bridge_in_one_transaction(workspace):
    """A THORChain aggregator: stETH -> ETH on a pool and the ETH into the router, one transaction.

    The bridge leaves from the aggregator, the swap delivers to it, in that order inside the
    transaction, so the thief's stETH ends as BTC at the memo's address.
    """
    agg = "0x" + "a9" * 20
    b = Builder()
    h, blk, t, i = tx(130), 900, 9000, 4
    sold, eth = 30 * E18, 29 * E18
    b.flow("ethereum", blk, t, i, 0, h, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", blk, t, i, 2, h, PAIR, agg, "ETH", eth, "internal")
    b.flow("ethereum", blk, t, i, 3, h, agg, ROUTER, "ETH", eth, "internal")
    b.flow("ethereum", blk, t, i, 4, h, ROUTER, VAULT, "ETH", eth, "internal")
    b.flow("ethereum", blk, t, i, LOG_BASE + 0, h, THIEF, PAIR, STETH, sold, "token")
    b.log("ethereum", blk, t, h, 1, PAIR, events.univ2_swap(agg, agg, sold, 0, 0, eth))
    b.log("ethereum", blk, t, h, 2, ROUTER, events.thorchain_deposit(VAULT, ZERO, eth, f"=:b:{BTC_DEST}"))
    btc_outbound(b, 131, h, BTC_DEST, 50_000_000)
    b.write(workspace)
    report = detect_conversions(workspace)
    assert (report.swaps.swaps, report.bridges.matched) == (1, 1)
    (swap,) = conversion_rows(workspace, "swap")
    (bridge,) = conversion_rows(workspace, "bridge")
    assert (swap["src"], swap["asset"], swap["dst"], swap["dst_asset"]) == (THIEF, STETH, agg, "ETH")
    assert (bridge["src"], bridge["asset"], bridge["dst"]) == (agg, "ETH", BTC_DEST)
    assert swap["amount_in"] == bridge["amount_out"] == str(eth)
    assert swap["ordinal"] < bridge["ordinal"]
    led = balances(workspace, "ledger")
    assert led[("ethereum", agg, "ETH")] == 0 and led[("bitcoin", BTC_DEST, "BTC")] == 50_000_000


def test_two_deposits_in_one_transaction(workspace):
    """A batch: two router deposits in one transaction, paid out to two Bitcoin addresses."""
    b = Builder()
    h, other = tx(140), "bc1qsecond00000000000000000000000000000"
    b.flow("ethereum", 950, 9500, 2, 0, h, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", 950, 9500, 2, 2, h, THIEF, ROUTER, "ETH", 3 * E18, "internal")
    b.flow("ethereum", 950, 9500, 2, 3, h, ROUTER, VAULT, "ETH", 3 * E18, "internal")
    b.flow("ethereum", 950, 9500, 2, 4, h, THIEF, ROUTER, "ETH", 5 * E18, "internal")
    b.flow("ethereum", 950, 9500, 2, 5, h, ROUTER, VAULT, "ETH", 5 * E18, "internal")
    b.log("ethereum", 950, 9500, h, 0, ROUTER, events.thorchain_deposit(VAULT, ZERO, 3 * E18, f"=:b:{BTC_DEST}"))
    b.log("ethereum", 950, 9500, h, 1, ROUTER, events.thorchain_deposit(VAULT, ZERO, 5 * E18, f"=:b:{other}"))
    btc_outbound(b, 139, h, other, 10_000_000)  # the second deposit is paid first
    btc_outbound(b, 141, h, BTC_DEST, 6_000_000)
    b.write(workspace)
    report = detect_conversions(workspace)
    assert report.bridges.matched == 2
    got = {(r["dst"], r["amount_out"], r["amount_in"], r["ordinal"] % TX_STRIDE)
           for r in conversion_rows(workspace, "bridge")}
    assert got == {(BTC_DEST, str(3 * E18), "6000000", BRIDGE_POSITION),
                   (other, str(5 * E18), "10000000", BRIDGE_POSITION + 1)}
    assert workspace.con.execute(
        "SELECT count(*) FROM ledger WHERE tx_hash = ? AND kind = 'internal'", [h]).fetchone()[0] == 0
    assert_conserved(workspace)
