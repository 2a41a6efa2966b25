"""THORChain memo parsing: every documented form, with the real memos from THORChain's docs."""

from __future__ import annotations

import pytest

from heisttrace.conversions.thorchain_memo import Asset, parse_asset, parse_memo

BTC_DEST = "bc1q6527vxxqjpq80la2l0sw7hay3lj6dz07zs6gzl"
ETH_REFUND = "0x7a093cebfa77403672d68e1c22d0681400a36682"

SWAP_CASES = [
    # (memo, asset, destination, refund, limit, interval, quantity, affiliates, fees)
    (  # memos.md: '=' alias, refund address after '/'
        f"=:BTC.BTC:{BTC_DEST}/{ETH_REFUND}",
        Asset("BTC", "BTC"), BTC_DEST, ETH_REFUND, None, None, None, (), (),
    ),
    (  # memos.md: streaming swap limit/interval/quantity, affiliate and fee
        "SWAP:ETH.ETH:0xe6a30f4f3bad978910e2cbb4d97581f5b5a0ade0:10000000/3/0:t:10",
        Asset("ETH", "ETH"), "0xe6a30f4f3bad978910e2cbb4d97581f5b5a0ade0", None,
        10000000, 3, 0, ("t",), (10,),
    ),
    (  # memos.md: short code r = THOR.RUNE
        "=:r:thor1el4ufmhll3yw7zxzszvfakrk66j7fx0tvcslym:19779138111",
        Asset("THOR", "RUNE"), "thor1el4ufmhll3yw7zxzszvfakrk66j7fx0tvcslym", None,
        19779138111, None, None, (), (),
    ),
    (  # thornode issue 1445
        "=:BTC.BTC:bc1q3a2le4lazts64u8mqte5vuxvug25z5w6rhs95g:5855757:t:10",
        Asset("BTC", "BTC"), "bc1q3a2le4lazts64u8mqte5vuxvug25z5w6rhs95g", None,
        5855757, None, None, ("t",), (10,),
    ),
    (  # 's' alias, short code b, scientific limit
        f"s:b:{BTC_DEST}:1e6",
        Asset("BTC", "BTC"), BTC_DEST, None, 1000000, None, None, (), (),
    ),
    (  # upper-case alias, ERC-20 with contract, empty limit kept as '::'
        "S:ETH.USDT-0XDAC17F958D2EE523A2206206994597C13D831EC7:0xabc::t/ss:5/10",
        Asset("ETH", "USDT", "0xdac17f958d2ee523a2206206994597c13d831ec7"), "0xabc", None,
        None, None, None, ("t", "ss"), (5, 10),
    ),
    (  # synth
        "=:BTC/BTC:thor1abc", Asset("BTC", "BTC", kind="synth"), "thor1abc", None,
        None, None, None, (), (),
    ),
    (  # trade asset
        "=:ETH~ETH:thor1abc", Asset("ETH", "ETH", kind="trade"), "thor1abc", None,
        None, None, None, (), (),
    ),
    (  # secured asset with contract
        "=:ETH-USDC-0XA0B86991C6218B36C1D19D4A2E9EB0CE3606EB48:thor1abc",
        Asset("ETH", "USDC", "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", kind="secured"),
        "thor1abc", None, None, None, None, (), (),
    ),
    (  # every short code once: e, g, s(BNB), d, l, f, x, tr, a, c, rune
        "=:e:0xabc", Asset("ETH", "ETH"), "0xabc", None, None, None, None, (), (),
    ),
    ("=:g:cosmos1x", Asset("GAIA", "ATOM"), "cosmos1x", None, None, None, None, (), ()),
    ("=:s:0xabc", Asset("BSC", "BNB"), "0xabc", None, None, None, None, (), ()),
    ("=:d:DAddr", Asset("DOGE", "DOGE"), "DAddr", None, None, None, None, (), ()),
    ("=:l:ltc1q", Asset("LTC", "LTC"), "ltc1q", None, None, None, None, (), ()),
    ("=:f:0xabc", Asset("BASE", "ETH"), "0xabc", None, None, None, None, (), ()),
    ("=:x:rXRP", Asset("XRP", "XRP"), "rXRP", None, None, None, None, (), ()),
    ("=:tr:TAddr", Asset("TRON", "TRX"), "TAddr", None, None, None, None, (), ()),
    ("=:a:0xabc", Asset("AVAX", "AVAX"), "0xabc", None, None, None, None, (), ()),
    ("=:c:qpaddr", Asset("BCH", "BCH"), "qpaddr", None, None, None, None, (), ()),
    ("=:RUNE:thor1x", Asset("THOR", "RUNE"), "thor1x", None, None, None, None, (), ()),
    (  # no destination at all (sends back to the sender on THORChain): still a swap
        "=:BTC.BTC", Asset("BTC", "BTC"), None, None, None, None, None, (), (),
    ),
]


@pytest.mark.parametrize(
    "memo,asset,dest,refund,limit,interval,quantity,affiliates,fees", SWAP_CASES
)
def test_swap_memos(memo, asset, dest, refund, limit, interval, quantity, affiliates, fees):
    m = parse_memo(memo)
    assert m is not None and m.is_swap
    assert m.asset == asset
    assert (m.destination, m.refund_address) == (dest, refund)
    assert (m.limit, m.interval, m.quantity) == (limit, interval, quantity)
    assert (m.affiliates, m.fees_bps) == (affiliates, fees)
    assert m.raw == memo
    assert not m.limit_swap


@pytest.mark.parametrize("prefix", ["=<", "=>"])
def test_limit_swap_forms(prefix):
    m = parse_memo(f"{prefix}:ETH.ETH:0xabc:1e8")
    assert m is not None and m.is_swap and m.limit_swap and m.limit == 100_000_000


def test_asset_ledger_chain_and_text():
    a = parse_asset("b")
    assert a is not None and a.ledger_chain == "bitcoin" and a.is_native and str(a) == "BTC.BTC"
    usdt = parse_asset("ETH.USDT-0xdAC17F958D2ee523a2206206994597C13D831ec7")
    assert usdt is not None and usdt.ledger_chain == "ethereum" and not usdt.is_native
    assert str(usdt) == "ETH.USDT-0XDAC17F958D2EE523A2206206994597C13D831EC7"
    assert parse_asset("BTC/BTC").is_native is False  # a synth never lands on Bitcoin
    assert [parse_asset(x).ledger_chain for x in ("BTC/BTC", "ETH~ETH", "BTC-BTC", "r")] == [
        "thorchain"] * 4
    assert parse_asset("") is None and parse_asset("nodot") is None and parse_asset(".BTC") is None


@pytest.mark.parametrize(
    "memo,action,inbound",
    [
        ("OUT:9D2F4C1A7E0B3D5F6A8C9E1B2D4F6A8C0E2B4D6F8A1C3E5B7D9F0A2C4E6B8D0F", "out",
         "9d2f4c1a7e0b3d5f6a8c9e1b2d4f6a8c0e2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f"),
        ("out:0xABCDEF", "out", "abcdef"),
        ("REFUND:ABCDEF0123", "refund", "abcdef0123"),
        ("refund:0x00ff", "refund", "00ff"),
    ],
)
def test_outbound_memos(memo, action, inbound):
    m = parse_memo(memo)
    assert m is not None and m.action == action and m.inbound_hash == inbound and not m.is_swap


@pytest.mark.parametrize(
    "memo",
    [
        None, "", "   ", "hello world", "OUT:", "OUT:not-hex", "ADD:BTC.BTC:thor1x",
        "WITHDRAW:BTC.BTC:10000", "=", "=:", "=:nodot:addr", "SWAP::addr",
        "MIGRATE:123", "RAGNAROK:1",
    ],
)
def test_not_swap_or_outbound(memo):
    assert parse_memo(memo) is None


def test_memo_length_limit_is_bytes():
    base = f"=:BTC.BTC:{BTC_DEST}:0:"
    ok = base + "t" * (250 - len(base))
    assert len(ok.encode()) == 250 and parse_memo(ok) is not None
    assert parse_memo(ok + "t") is None
    # multi-byte characters count as bytes, not characters
    wide = base + "é" * ((251 - len(base)) // 2 + 1)
    assert len(wide) <= 250 < len(wide.encode()) and parse_memo(wide) is None
    assert parse_memo(ok.encode()) is not None and parse_memo((ok + "t").encode()) is None


def test_bad_limit_fields_do_not_crash():
    m = parse_memo("=:b:addr:abc/x/y:t:notanumber")
    assert m is not None and m.limit is None and m.interval is None and m.fees_bps == ()
