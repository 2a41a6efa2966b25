"""THORChain calldata through the node importer: a real anvil node, `ingest_rpc`, then detect."""

from __future__ import annotations

from heisttrace.conversions import events
from heisttrace.conversions.run import detect_conversions
from heisttrace.sources.rpc import ingest_rpc
from test_anvil_chain import ETH, Node, anvil_node  # noqa: F401

ZERO = "0x" + "00" * 20
BTC_DEST = "bc1q6527vxxqjpq80la2l0sw7hay3lj6dz07zs6gzl"


def test_rpc_import_keeps_thorchain_calldata_and_detect_reads_it(anvil_node: Node, workspace):
    node = anvil_node
    a = [x.lower() for x in node.rpc("eth_accounts")]
    vault, router = a[1], a[3]  # any address can receive calldata; their roles come from it
    first = node.head() + 1
    memo_tx = node.send(**{"from": a[0], "to": vault, "value": 2 * ETH, "gas": 100_000,
                           "data": events.memo_input(f"=:BTC.BTC:{BTC_DEST}")})
    call = events.thorchain_deposit_call(vault, ZERO, ETH, f"SWAP:b:{BTC_DEST}", 2**40)
    call_tx = node.send(**{"from": a[2], "to": router, "value": ETH, "gas": 200_000,
                           "data": call})
    plain_tx = node.send(**{"from": a[4], "to": a[5], "value": 7})
    for h in (memo_tx, call_tx, plain_tx):
        assert node.receipt(h) is not None
    ingest_rpc(workspace, node.url, first, node.head())

    calls = dict(workspace.con.execute("SELECT tx_hash, input FROM evm_calls").fetchall())
    assert calls == {memo_tx: events.memo_input(f"=:BTC.BTC:{BTC_DEST}"), call_tx: call}
    report = detect_conversions(workspace)
    assert (report.bridges.inbounds, report.bridges.unmatched) == (2, 2)
    inb = {r[0]: r[1:] for r in workspace.con.execute(
        "SELECT tx_hash, depositor, amount, dest_address FROM bridge_inbounds").fetchall()}
    assert inb == {memo_tx: (a[0], str(2 * ETH), BTC_DEST), call_tx: (a[2], str(ETH), BTC_DEST)}
