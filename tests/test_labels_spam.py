"""Spam and address-poisoning detection: one test per kind, and what must never be flagged."""

from __future__ import annotations

import json

import pyarrow as pa

from heisttrace.labels.confusables import fold
from heisttrace.labels.roles import address_roles
from heisttrace.labels.spam import detect_spam, spam_counts, token_verdict
from heisttrace.labels.store import replace_labels
from test_labels_ledger import ETH, Ledger, addr

USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
FAKE_ETH = addr("fake-eth-token")
FAKE_USDT = addr("fake-usdt-token")
HONEST = addr("honest-token")


def _tokens(ws, rows) -> None:  # type: ignore[no-untyped-def]
    for chain, address, symbol, name in rows:
        ws.con.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, 18, 'test')", [chain, address, symbol, name])


def _label(ws, address: str, entity: str, category: str) -> None:  # type: ignore[no-untyped-def]
    t = pa.table({"chain": ["ethereum"], "address": [address], "entity": [entity],
                  "category": [category], "source": ["test:" + address], "confidence": [50],
                  "actor": [None], "heuristic": [False], "evidence": [None]})
    with ws.transaction():
        replace_labels(ws, "test:" + address, t)


def test_fold_maps_lookalikes_to_latin() -> None:
    assert fold("ЕТН") == "ETH"  # Cyrillic Ie, Te, En
    assert fold("UЅDТ") == "USDT"
    assert fold("ＵＳＤＣ") == "USDC"  # full-width
    assert fold("ΕΤΗ") == "ETH"  # Greek


def test_token_verdicts() -> None:
    assert token_verdict("ethereum", FAKE_ETH, "ЕТН", "Ethereum")  # Cyrillic ETH
    assert token_verdict("ethereum", FAKE_USDT, "USDT", "Tether USD")  # right symbol, wrong contract
    assert token_verdict("ethereum", addr("x"), "ETH", "Ether")  # imitates the native coin
    assert token_verdict("ethereum", addr("y"), "USDС", "x")  # one Cyrillic letter
    assert token_verdict("ethereum", addr("z"), "TUSD", "Tеther USD")  # name with Cyrillic e
    assert token_verdict("ethereum", USDT, "USDT", "Tether USD") is None
    assert token_verdict("ethereum", WETH, "WETH", "Wrapped Ether") is None
    assert token_verdict("ethereum", HONEST, "HON", "Honest Token") is None
    # On BSC, a bridged ETH token is real: only the chain's own coin is imitated.
    assert token_verdict("bsc", addr("peg"), "ETH", "Binance-Peg Ethereum") is None


def _poisoning_ledger(ws):  # type: ignore[no-untyped-def]
    victim = addr("victim")
    friend = "0x1234" + "ab" * 16 + "5678"
    lookalike = "0x1234" + "cd" * 16 + "5678"
    exchange = "0x1234" + "ef" * 16 + "5678"  # looks alike too but is a labelled exchange
    bot = addr("zero-bot")
    _tokens(ws, [("ethereum", FAKE_ETH, "ЕТН", "Ethereum"), ("ethereum", USDT, "USDT", "Tether USD"),
                 ("ethereum", FAKE_USDT, "USDT", "Tether USD"), ("ethereum", HONEST, "HON", "Honest")])
    _label(ws, exchange, "Binance", "exchange")
    led = Ledger()
    led.pay(1, addr("thief"), victim, 10 * ETH)
    led.pay(2, victim, friend, 1 * ETH, fee=21_000)  # real counterparty
    led.pay(3, victim, friend, 5_000_000, asset=USDT)
    led.pay(4, lookalike, victim, 0, asset=USDT)  # zero-value poisoning from the look-alike
    led.pay(5, lookalike, victim, 10**18, asset=FAKE_ETH)  # fake token from the look-alike
    led.pay(6, exchange, victim, 0, asset=USDT)  # a labelled exchange is never spam
    led.pay(7, bot, addr("someone"), 0, asset=USDT)  # sends only zero-value transfers
    led.pay(8, victim, addr("shop"), 2_000_000, asset=HONEST)
    ws.add_flows(led.table())
    return dict(victim=victim, friend=friend, lookalike=lookalike, exchange=exchange, bot=bot)


def test_detect_spam_each_kind(workspace) -> None:  # type: ignore[no-untyped-def]
    a = _poisoning_ledger(workspace)
    found = {r["address"]: r for r in detect_spam(workspace).to_pylist()}
    assert found[FAKE_ETH]["kind"] == "fake_token"
    assert found[FAKE_USDT]["kind"] == "fake_token"
    assert found[a["lookalike"]]["kind"] == "lookalike_address"
    ev = json.loads(found[a["lookalike"]]["evidence"])
    assert ev["imitates"] == a["friend"] and ev["victim"] == a["victim"]
    assert found[a["bot"]]["kind"] == "zero_value_sender"
    # Never flagged: real tokens, the real counterparty, the victim, the labelled exchange.
    for never in (USDT, HONEST, a["friend"], a["victim"], a["exchange"], addr("thief")):
        assert never not in found
    roles = {r["address"]: r["role"] for r in address_roles(workspace).to_pylist()}
    assert roles[FAKE_ETH] == "ignore" and roles[a["lookalike"]] == "ignore"
    assert roles[a["exchange"]] == "cash_out"


def test_detect_spam_is_idempotent_and_counted(workspace) -> None:  # type: ignore[no-untyped-def]
    _poisoning_ledger(workspace)
    first = detect_spam(workspace).num_rows
    assert detect_spam(workspace).num_rows == first
    n = workspace.con.execute("SELECT count(*) FROM labels WHERE source = 'heuristic:spam'").fetchone()[0]
    assert n == first
    counts = spam_counts(workspace)
    assert counts["spam_addresses"] == first and counts["spam_flows"] >= 3


def test_affix_length_is_an_option(workspace) -> None:  # type: ignore[no-untyped-def]
    from heisttrace.labels.spam import SpamParams

    a = _poisoning_ledger(workspace)
    found = {r["address"]: r["kind"] for r in detect_spam(workspace, SpamParams(affix=5)).to_pylist()}
    # With 5 digits the prefixes (1234a vs 1234c) differ: the look-alike is now only a
    # worthless sender, not an imitation of the friend.
    assert found.get(a["lookalike"]) != "lookalike_address"


def test_summary_reports_ignored_spam(workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    from heisttrace.labels.detect import detect_all
    from heisttrace.trace.run import run_trace
    from heisttrace.trace.summary import case_summary

    a = _poisoning_ledger(workspace)
    detect_all(workspace)  # what `heisttrace trace` runs first
    run_trace(workspace, "c", ["0x" + f"{1:064x}"])  # the theft tx
    ign = case_summary(workspace, "c")["ignored"]
    found = {r["address"]: r["kind"] for r in workspace.con.execute(
        "SELECT address, entity AS kind FROM labels WHERE category = 'spam'").fetch_arrow_table().to_pylist()}
    assert ign["spam_tokens"] == 2 == sum(k == "fake_token" for k in found.values())
    assert ign["spam_addresses"] == len(found)
    # flows 4, 5 (look-alike) and 7 (zero-value bot); the labelled exchange's zero transfer is not spam
    assert ign["spam_flows"] == 3
    edges = workspace.con.execute("SELECT src, dst, asset FROM case_edges").fetchall()
    assert not any(a["lookalike"] in e or FAKE_ETH in e for e in edges)
    path = workspace.path
    workspace.close()  # the CLI opens the workspace itself
    res = subprocess.run([sys.executable, "-m", "heisttrace", "summary", "c", "-w", str(path)],
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    assert "ignored as spam: 3 flows, 2 fake tokens" in res.stdout
