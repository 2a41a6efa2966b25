"""Bridge link tables: user-supplied pairs of transactions become bridge flows."""

from __future__ import annotations

import pytest
from test_conversions_detect import (
    BTC_DEST, BTC_VAULT, E18, THIEF, Builder, assert_conserved, btc_tx, conversion_rows, snapshot, tx,
)

from heisttrace.conversions.links import import_links
from heisttrace.conversions.run import detect_conversions
from heisttrace.errors import InputError
from heisttrace.ledger.schema import LOG_BASE, TX_STRIDE

BRIDGE = "0x" + "b7" * 20


def linked_case(ws, two_recipients: bool = False) -> tuple[str, str]:
    b = Builder()
    src = tx(90)
    b.flow("ethereum", 600, 6000, 4, 0, src, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", 600, 6000, 4, 1, src, THIEF, BRIDGE, "ETH", 7 * E18, "native")
    dst = btc_tx(91)
    b.flow("bitcoin", 800_100, 6500, 2, 0, dst, BTC_VAULT, f"tx:{dst}", "BTC", 30_000_000, "utxo")
    b.flow("bitcoin", 800_100, 6500, 2, 1, dst, f"tx:{dst}", BTC_DEST, "BTC", 20_000_000, "utxo")
    b.flow("bitcoin", 800_100, 6500, 2, 2, dst, f"tx:{dst}", BTC_VAULT, "BTC", 9_000_000, "utxo")
    if two_recipients:
        b.flow("bitcoin", 800_100, 6500, 2, 3, dst, f"tx:{dst}", "bc1qsomeoneelse", "BTC", 990_000, "utxo")
    b.write(ws)
    return src, dst


def test_link_table_makes_bridge(workspace, tmp_path):
    src, dst = linked_case(workspace)
    csv = tmp_path / "links.csv"
    csv.write_text(f"src_chain,src_tx,dst_chain,dst_tx\nethereum,{src[2:].upper()},bitcoin,0x{dst}\n")
    result = import_links(workspace, csv)
    assert (result.links, result.applied, result.pending) == (1, 1, [])
    (bridge,) = conversion_rows(workspace, "bridge")
    assert (bridge["src"], bridge["asset"], bridge["amount_out"]) == (THIEF, "ETH", str(7 * E18))
    assert (bridge["dst"], bridge["dst_chain"], bridge["dst_asset"], bridge["amount_in"]) == (
        BTC_DEST, "bitcoin", "BTC", "20000000")
    assert bridge["tx_hash"] == src and bridge["ordinal"] // TX_STRIDE == 4
    assert_conserved(workspace)
    # the link is kept: detect re-applies it
    detect_conversions(workspace)
    assert len(conversion_rows(workspace, "bridge")) == 1


def test_ambiguous_recipient_needs_column(workspace, tmp_path):
    src, dst = linked_case(workspace, two_recipients=True)
    before = snapshot(workspace)
    csv = tmp_path / "links.csv"
    csv.write_text(f"src_chain,src_tx,dst_chain,dst_tx\nethereum,{src},bitcoin,{dst}\n")
    with pytest.raises(InputError, match=r"line 2.*dst_address"):
        import_links(workspace, csv)
    assert snapshot(workspace) == before
    csv.write_text(f"src_chain,src_tx,dst_chain,dst_tx,dst_address\nethereum,{src},bitcoin,{dst},{BTC_DEST}\n")
    assert import_links(workspace, csv).applied == 1


def test_link_to_missing_tx_is_pending(workspace, tmp_path):
    src, _ = linked_case(workspace)
    csv = tmp_path / "links.csv"
    csv.write_text(f"src_chain,src_tx,dst_chain,dst_tx\nethereum,{src},bitcoin,{btc_tx(12345)}\n")
    result = import_links(workspace, csv)
    assert result.applied == 0 and len(result.pending) == 1 and "not ingested" in result.pending[0]


@pytest.mark.parametrize(
    "text,match",
    [
        ("src_chain,src_tx,dst_chain\nethereum,0xab,bitcoin\n", r"line 1.*missing column.*dst_tx"),
        ("src_chain,src_tx,dst_chain,dst_tx\nethereum,0xzz,bitcoin,ab\n", r"line 2, field 'src_tx'"),
        ("src_chain,src_tx,dst_chain,dst_tx\nethereum,0xab,bitcoin,ab\n,0xab,bitcoin,ab\n",
         r"line 3, field 'src_chain'"),
    ],
)
def test_bad_link_tables(workspace, tmp_path, text, match):
    linked_case(workspace)
    before = snapshot(workspace)
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        import_links(workspace, csv)
    assert str(csv) in str(err.value)
    assert snapshot(workspace) == before


def test_missing_link_file(workspace, tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        import_links(workspace, tmp_path / "nope.csv")


def test_evm_to_evm_link_with_token_and_named_columns(workspace, tmp_path):
    """A token bridge on Ethereum paid out on Arbitrum; the sender moves two assets, so `asset` is named."""
    usdc, arb_usdc, recipient = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", "0x" + "af" * 20, "0x" + "4e" * 20
    b = Builder()
    src, dst = tx(200), tx(201)
    b.flow("ethereum", 700, 7000, 1, 0, src, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", 700, 7000, 1, 1, src, THIEF, BRIDGE, "ETH", 10**16, "native")  # bridge fee
    b.flow("ethereum", 700, 7000, 1, LOG_BASE + 2, src, THIEF, BRIDGE, usdc, 5_000 * 10**6, "token")
    relayer = "0x" + "3e" * 20
    b.flow("arbitrum", 9, 7100, 0, 0, dst, relayer, "fees", "ETH", 10**14, "fee")
    b.flow("arbitrum", 9, 7100, 0, LOG_BASE, dst, relayer, recipient, arb_usdc, 4_990 * 10**6, "token")
    b.write(workspace)
    csv = tmp_path / "links.csv"
    csv.write_text("src_chain,src_tx,dst_chain,dst_tx,asset\n"
                   f"ethereum,{src},arbitrum,{dst},\n")
    with pytest.raises(InputError, match=r"line 2.*add column asset"):
        import_links(workspace, csv)
    csv.write_text("src_chain,src_tx,dst_chain,dst_tx,asset\n"
                   f"ethereum,{src},arbitrum,{dst},{usdc.upper().replace('0X', '0x')}\n")
    assert import_links(workspace, csv).applied == 1
    (bridge,) = conversion_rows(workspace, "bridge")
    assert (bridge["src"], bridge["asset"], bridge["amount_out"]) == (THIEF, usdc, str(5_000 * 10**6))
    assert (bridge["dst"], bridge["dst_chain"], bridge["dst_asset"], bridge["amount_in"]) == (
        recipient, "arbitrum", arb_usdc, str(4_990 * 10**6))
    # the bridge fee in ETH stays a plain flow into the bridge contract
    assert workspace.con.execute(
        "SELECT count(*) FROM ledger WHERE tx_hash = ? AND asset = 'ETH' AND dst = ?", [src, BRIDGE]
    ).fetchone()[0] == 1
    assert_conserved(workspace)
