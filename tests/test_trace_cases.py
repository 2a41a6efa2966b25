"""Hand-built cases whose answers are known exactly."""

from __future__ import annotations

import pytest

from heisttrace.errors import InputError
from heisttrace.trace.paths import top_paths
from heisttrace.trace.run import run_trace
from heisttrace.trace.summary import case_summary
from trace_helpers import add, buckets, by_address, flow, label

USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"


def theft(ws, amount=100, to="0xa", time=10):
    add(ws, [flow(time, "0xtheft", "0xvictim", to, amount),
             flow(time, "0xtheft", "0xvictim", "fees", 0.01, ordinal=0, kind="fee")])


def test_peel_chain_to_an_exchange_deposit(workspace):
    theft(workspace)
    rows = []
    for k in range(5):
        rows.append(flow(20 + k, f"0xp{k}", f"0xa{k}" if k else "0xa", "0xdeposit", 10))
        rows.append(flow(20 + k, f"0xp{k}", f"0xa{k}" if k else "0xa", f"0xa{k + 1}", 90 - 10 * k,
                         ordinal=2))
    add(workspace, rows)
    label(workspace, "0xdeposit", "deposit_wallet", "Binance")
    res = run_trace(workspace, "peel", ["0xtheft"])
    assert res.stolen == pytest.approx(100)  # the victim's gas fee is not stolen money
    got = by_address(workspace, "peel")
    assert got["0xdeposit"][:2] == ("cashed_out", pytest.approx(50))
    assert got["0xa5"][:2] == ("dormant", pytest.approx(50))
    s = case_summary(workspace, "peel")
    assert s["cash_out_by_entity"][0]["entity"] == "Binance"
    assert s["cash_out_by_entity"][0]["share"] == pytest.approx(0.5)
    assert s["cash_out_by_address"][0]["address"] == "0xdeposit"
    assert s["top_dormant"][0]["address"] == "0xa5"
    best = top_paths(workspace, "peel", "0xdeposit", k=2)
    assert [h["dst"] for h in best[0]["hops"]] == ["0xa", "0xdeposit"]
    assert best[0]["width"] == pytest.approx(10)
    assert len(best[1]["hops"]) == 3


def test_split_into_50_wallets_and_re_merge(workspace):
    theft(workspace)
    add(workspace, [flow(20, "0xsplit", "0xa", f"0xw{k:02d}", 2, ordinal=k) for k in range(50)])
    res = run_trace(workspace, "split", ["0xtheft"])
    got = by_address(workspace, "split")
    assert sum(1 for a, v in got.items() if a.startswith("0xw") and v[0] == "dormant") == 50
    assert all(v[1] == pytest.approx(2) for a, v in got.items() if a.startswith("0xw"))
    assert res.breakdown["dormant"] == pytest.approx(100)
    add(workspace, [flow(30 + k, f"0xm{k}", f"0xw{k:02d}", "0xmerge", 2) for k in range(50)])
    run_trace(workspace, "split", ["0xtheft"])  # re-running replaces the case
    got = by_address(workspace, "split")
    assert got == {"0xmerge": ("dormant", pytest.approx(100), pytest.approx(100))}
    assert workspace.con.execute("SELECT count(*) FROM cases").fetchone()[0] == 1
    paths = top_paths(workspace, "split", "0xmerge", k=3)
    assert len(paths) == 3 and all(p["width"] == pytest.approx(2) for p in paths)
    assert [h["src"] for h in paths[0]["hops"]][:2] == ["0xvictim", "0xa"]


def test_mixer_is_dark_and_spam_is_never_followed(workspace):
    theft(workspace)
    add(workspace, [
        flow(20, "0xmix1", "0xa", "0xtornado", 40),
        flow(21, "0xspam1", "0xa", "0xpoison", 30),  # labelled spam: dropped
        flow(22, "0xspam2", "0xa", "0xb", 5, asset="0xfaketoken", kind="token"),
        flow(23, "0xzero", "0xa", "0xc", 0),  # zero value carries nothing
    ])
    label(workspace, "0xtornado", "mixing_service", "Tornado Cash")
    label(workspace, "0xpoison", "spam")
    label(workspace, "0xfaketoken", "spam")
    run_trace(workspace, "mix", ["0xtheft"])
    got = by_address(workspace, "mix")
    assert got["0xtornado"][:2] == ("dark", pytest.approx(40))
    assert got["0xa"][:2] == ("dormant", pytest.approx(60))
    assert "0xpoison" not in got and "0xb" not in got and "0xc" not in got
    edges = {r[0] for r in workspace.con.execute("SELECT dst FROM case_edges").fetchall()}
    assert edges == {"0xa", "0xtornado"}


def test_clean_funds_before_the_theft_haircut_and_fifo(workspace):
    add(workspace, [flow(5, "0xsalary", "0xemployer", "0xa", 50)])
    theft(workspace)
    add(workspace, [flow(20, "0xspend", "0xa", "0xx", 60)])
    run_trace(workspace, "hc", ["0xtheft"], policy="haircut")
    run_trace(workspace, "ff", ["0xtheft"], policy="fifo")
    hc, ff = by_address(workspace, "hc"), by_address(workspace, "ff")
    assert hc["0xx"][1] == pytest.approx(60 * 100 / 150)  # 40: the haircut dilution
    assert hc["0xa"][1] == pytest.approx(60)
    assert ff["0xx"][1] == pytest.approx(10)  # 50 clean went first, then 10 stolen
    assert ff["0xa"][1] == pytest.approx(90)


def test_missing_history_is_clean_money_already_there(workspace):
    theft(workspace)
    add(workspace, [flow(20, "0xout", "0xa", "0xb", 150)])
    run_trace(workspace, "m", ["0xtheft"])
    got = by_address(workspace, "m")
    assert got == {"0xb": ("dormant", pytest.approx(100), pytest.approx(100))}


def test_swap_carries_origin_units_with_prices(workspace):
    workspace.con.execute(f"INSERT INTO tokens VALUES ('ethereum', '{USDT}', 'USDT', 'Tether', 6, 't')")
    theft(workspace)
    add(workspace, [
        flow(20, "0xswap", "0xa", "0xa", 100, kind="swap", dst_asset=USDT, amount_in=250000 * 10**-12),
        flow(30, "0xusdt", "0xa", "0xb", 125000, asset=USDT, kind="token", decimals=6),
    ])
    res = run_trace(workspace, "swap", ["0xtheft"], prices={("ethereum", "ETH"): 2000.0})
    assert res.origin_unit == "USD" and res.stolen == pytest.approx(200000)
    got = {(a, s): v for (b, c, a, s), v in
           __import__("trace_helpers").sinks(workspace, "swap").items()}
    assert got[("0xb", USDT)] == (pytest.approx(100000), pytest.approx(125000))
    assert got[("0xa", USDT)] == (pytest.approx(100000), pytest.approx(125000))
    swap = workspace.con.execute(
        "SELECT dst_asset, origin_taint FROM case_edges WHERE kind = 'swap'").fetchone()
    assert swap == (USDT, pytest.approx(200000))


def test_bridge_without_match_frozen_fees_and_threshold(workspace):
    theft(workspace)
    add(workspace, [
        flow(20, "0xbr", "0xa", "0xrouter", 30),
        flow(21, "0xfr", "0xa", "0xfrozen", 20),
        flow(22, "0xgas", "0xa", "fees", 1, ordinal=0, kind="fee"),
        flow(23, "0xdust", "0xa", "0xdust", 0.0001),
    ])
    label(workspace, "0xrouter", "defi_bridge", "THORChain")
    label(workspace, "0xfrozen", "frozen", "Tether freeze")
    res = run_trace(workspace, "b", ["0xtheft"], min_taint=0.001)
    assert res.breakdown["bridged_untraced"] == pytest.approx(30)
    assert res.breakdown["frozen"] == pytest.approx(20)
    assert res.breakdown["fees"] == pytest.approx(1)
    assert res.breakdown["below_threshold"] == pytest.approx(0.0001)
    assert res.breakdown["dormant"] == pytest.approx(100 - 30 - 20 - 1 - 0.0001)
    assert sum(res.breakdown.values()) == pytest.approx(res.stolen, rel=1e-12)
    assert buckets(workspace, "b")["bridged_untraced"] == pytest.approx(30)


def test_address_seed_taints_the_balance_at_that_time(workspace):
    add(workspace, [flow(10, "0x1", "0xfeed", "0xh", 70), flow(20, "0x2", "0xfeed", "0xh", 30),
                    flow(30, "0x3", "0xh", "0xz", 50)])
    res = run_trace(workspace, "addr", ["0xh@15"])
    assert res.stolen == pytest.approx(70)
    got = by_address(workspace, "addr")
    assert got["0xz"][1] == pytest.approx(50 * 70 / 100)
    res = run_trace(workspace, "addr", ["0xh@1970-01-01T00:00:25"], policy="fifo")
    assert res.stolen == pytest.approx(100)


def test_unknown_seed_is_a_clear_error_and_writes_nothing(workspace):
    theft(workspace)
    run_trace(workspace, "keep", ["0xtheft"])
    with pytest.raises(InputError, match="0xnothere is not in the ledger"):
        run_trace(workspace, "keep", ["0xnothere"])
    with pytest.raises(InputError, match="no price for seed asset"):
        run_trace(workspace, "keep", ["0xtheft"], prices={"BTC": 1.0})
    assert by_address(workspace, "keep")["0xa"][1] == pytest.approx(100)
    tables = {r[0] for r in workspace.con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    assert not any(t.startswith("_trace") for t in tables)


def test_bad_amount_in_the_ledger_is_named(workspace):
    theft(workspace)
    add(workspace, [dict(flow(20, "0xbad", "0xa", "0xb", 1), amount_out="12abc")])
    with pytest.raises(InputError, match="0xbad"):
        run_trace(workspace, "bad", ["0xtheft"])
    assert workspace.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'cases'"
    ).fetchone()[0] == 0


def test_poison_stops_at_an_exchange_deposit_like_the_other_policies(workspace):
    """Poisoned funds into a labelled deposit address end there: the deposit's sweep to the
    hot wallet and the hot wallet's payouts to customers are not exposure of the theft."""
    theft(workspace)
    add(workspace, [flow(20, "0xd1", "0xa", "0xdeposit", 60),
                    flow(21, "0xd2", "0xdeposit", "0xhot", 60),
                    flow(22, "0xd3", "0xhot", "0xcustomer", 5),
                    flow(23, "0xd4", "0xa", "0xb", 40)])
    label(workspace, "0xdeposit", "deposit_wallet", "Binance")
    run_trace(workspace, "p", ["0xtheft"], policy="poison")
    got = by_address(workspace, "p")
    assert got["0xdeposit"][:2] == ("cashed_out", pytest.approx(60))
    assert got["0xb"][:2] == ("dormant", pytest.approx(40))
    assert "0xhot" not in got and "0xcustomer" not in got
    reached = {r[0] for r in workspace.con.execute(
        "SELECT dst FROM case_edges WHERE case_name = 'p'").fetchall()}
    assert reached == {"0xa", "0xdeposit", "0xb"}
