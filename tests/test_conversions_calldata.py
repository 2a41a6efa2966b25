"""THORChain inbounds and payouts read from calldata (`evm_calls`), where no router log says it.

Calldata is ABI-encoded here with the router 4.1 layout (REFERENCE.md section 2); the last test
goes through the ethereum-etl importer from CSV files.
"""

from __future__ import annotations

import csv
from pathlib import Path

from test_conversions_detect import (
    BTC_DEST, E18, ROUTER, THIEF, THIEF2, USDT, VAULT, ZERO, Builder, assert_conserved,
    btc_outbound, btc_tx, conversion_rows, tx,
)

from heisttrace.cli import app
from heisttrace.conversions import events
from heisttrace.conversions.run import detect_conversions
from heisttrace.conversions.store import BRIDGE_POSITION
from heisttrace.ledger.schema import LOG_BASE, TX_STRIDE
from heisttrace.ledger.workspace import open_workspace
from heisttrace.sources.evm import EVM_CALLS_DDL

MEMO = f"=:b:{BTC_DEST}:0/1/0"
ROUTER2 = "0x" + "d3" * 20  # a router no shipped label knows


def add_calls(ws, rows: list[tuple]) -> None:
    """(chain, block, time, tx_hash, to_address, input) rows, as the EVM importers store them."""
    with ws.transaction():
        ws.con.execute(EVM_CALLS_DDL)
        for r in rows:
            ws.con.execute("INSERT INTO evm_calls VALUES (?, ?, ?, ?, ?, ?)", list(r))


def eth_call_inbound(b: Builder, n: int, amount: int, to: str, internal: bool = True) -> str:
    """Native ETH sent to `to` (router or vault), without any log; router forwards to the vault."""
    h = tx(n)
    b.flow("ethereum", 100 + n, 1000 + n, 5, 0, h, THIEF, "fees", "ETH", 21000 * 10**9, "fee")
    b.flow("ethereum", 100 + n, 1000 + n, 5, 1, h, THIEF, to, "ETH", amount, "native")
    if internal:
        b.flow("ethereum", 100 + n, 1000 + n, 5, 2, h, ROUTER, VAULT, "ETH", amount, "internal")
    return h


def labels_of(ws, address: str) -> set[tuple[str, str]]:
    return set(ws.con.execute(
        "SELECT category, source FROM labels WHERE address = ?", [address]).fetchall())


def test_calldata_encoding_has_the_router_layout():
    data = events.thorchain_deposit_call(VAULT, ZERO, 5, "=:b:x", expiry=77)
    assert data.startswith("0x44bc937b")
    words = [data[10 + 64 * i: 10 + 64 * (i + 1)] for i in range(7)]
    assert words[0].endswith(VAULT[2:]) and int(words[2], 16) == 5
    assert int(words[3], 16) == 160 and int(words[4], 16) == 77 and int(words[5], 16) == 5
    assert bytes.fromhex(words[6])[:5] == b"=:b:x"
    assert events.thorchain_deposit_call(VAULT, ZERO, 5, "m").startswith("0x1fece7b4")


def test_router_deposit_with_expiry_without_log_is_matched(workspace):
    b = Builder()
    amount = 7 * E18
    h = eth_call_inbound(b, 1, amount, ROUTER)
    out = btc_outbound(b, 9, h, BTC_DEST, 20_000_000)
    b.write(workspace)
    add_calls(workspace, [("ethereum", 101, 1001, h, ROUTER,
                           events.thorchain_deposit_call(VAULT, ZERO, amount, MEMO, 10**10))])

    report = detect_conversions(workspace)
    assert (report.bridges.inbounds, report.bridges.matched) == (1, 1)
    (bridge,) = conversion_rows(workspace, "bridge")
    assert (bridge["src"], bridge["asset"], bridge["amount_out"]) == (THIEF, "ETH", str(amount))
    assert (bridge["dst"], bridge["dst_chain"], bridge["amount_in"]) == (
        BTC_DEST, "bitcoin", "20000000")
    assert bridge["ordinal"] == 5 * TX_STRIDE + BRIDGE_POSITION
    sup = set(workspace.con.execute("SELECT tx_hash, ordinal FROM superseded").fetchall())
    assert sup == {(h, 5 * TX_STRIDE + 1), (h, 5 * TX_STRIDE + 2), (out, 3 * TX_STRIDE + 1)}
    # without a Deposit log, the call is what tells router and vault apart from wallets
    assert ("defi_bridge", "heisttrace-conversions") in labels_of(workspace, VAULT)
    assert_conserved(workspace)


def test_erc20_router_deposit_call_unmatched_is_listed(workspace):
    b = Builder()
    h, amount = tx(2), 5_000 * 10**6
    b.flow("ethereum", 102, 1002, 4, 0, h, THIEF, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", 102, 1002, 4, LOG_BASE + 3, h, THIEF, ROUTER2, USDT, amount, "token")
    b.write(workspace)
    add_calls(workspace, [("ethereum", 102, 1002, h, ROUTER2,
                           events.thorchain_deposit_call(VAULT, USDT, amount, MEMO))])

    report = detect_conversions(workspace)
    assert (report.bridges.inbounds, report.bridges.unmatched) == (1, 1)
    (inb,) = workspace.con.execute("SELECT * FROM bridge_inbounds").fetch_arrow_table().to_pylist()
    assert (inb["depositor"], inb["asset"], inb["amount"]) == (THIEF, USDT, str(amount))
    assert (inb["dest_chain"], inb["dest_address"], inb["matched_tx"]) == (
        "bitcoin", BTC_DEST, None)
    assert conversion_rows(workspace, "bridge") == []
    assert ("defi_bridge", "heisttrace-conversions") in labels_of(workspace, ROUTER2)


def test_vault_transfer_with_memo_as_input_is_matched(workspace):
    b = Builder()
    amount = 3 * E18
    h = eth_call_inbound(b, 3, amount, VAULT, internal=False)
    out = btc_outbound(b, 8, h, BTC_DEST, 9_000_000)
    b.write(workspace)
    add_calls(workspace, [("ethereum", 103, 1003, h, VAULT, events.memo_input(
        f"SWAP:BTC.BTC:{BTC_DEST}:5855757/3/0:t:10"))])

    report = detect_conversions(workspace)
    assert report.bridges.matched == 1
    (bridge,) = conversion_rows(workspace, "bridge")
    assert (bridge["src"], bridge["dst"], bridge["amount_out"], bridge["amount_in"]) == (
        THIEF, BTC_DEST, str(amount), "9000000")
    sup = set(workspace.con.execute("SELECT tx_hash, ordinal FROM superseded").fetchall())
    assert sup == {(h, 5 * TX_STRIDE + 1), (out, 3 * TX_STRIDE + 1)}
    assert ("defi_bridge", "heisttrace-conversions") in labels_of(workspace, VAULT)
    assert_conserved(workspace)


def test_log_and_call_of_one_deposit_count_once(workspace):
    b = Builder()
    amount = 2 * E18
    h = eth_call_inbound(b, 4, amount, ROUTER)
    b.log("ethereum", 104, 1004, h, 7, ROUTER, events.thorchain_deposit(VAULT, ZERO, amount, MEMO))
    btc_outbound(b, 7, h, BTC_DEST, 6_000_000)
    b.write(workspace)
    call = ("ethereum", 104, 1004, h, ROUTER,
            events.thorchain_deposit_call(VAULT, ZERO, amount, MEMO, 1))
    add_calls(workspace, [call])
    report = detect_conversions(workspace)
    assert (report.bridges.inbounds, report.bridges.matched) == (1, 1)
    assert len(conversion_rows(workspace, "bridge")) == 1


def test_reverted_call_and_non_swap_memo_are_no_inbounds(workspace):
    b = Builder()
    h = tx(5)  # reverted: only the fee moved
    b.flow("ethereum", 105, 1005, 1, 0, h, THIEF, "fees", "ETH", 10**15, "fee")
    h2 = eth_call_inbound(b, 6, E18, VAULT, internal=False)
    b.write(workspace)
    add_calls(workspace, [
        ("ethereum", 105, 1005, h, ROUTER, events.thorchain_deposit_call(VAULT, ZERO, E18, MEMO, 1)),
        ("ethereum", 106, 1006, h2, VAULT, events.memo_input("OUT:" + "ab" * 32)),
        ("ethereum", 106, 1006, tx(99), ROUTER, "0x44bc937b" + "00" * 10),  # truncated
    ])
    report = detect_conversions(workspace)
    assert report.bridges.inbounds == 0
    assert workspace.con.execute("SELECT count(*) FROM bridge_inbounds").fetchone()[0] == 0
    assert any("calldata" in s for s in report.bridges.skipped_logs)


def test_bitcoin_inbound_paid_out_by_plain_transfer_with_memo(workspace):
    b = Builder()
    sender, h, blk, t = "bc1qsender000000000000000000000000000000", btc_tx(100), 800_500, 7000
    b.flow("bitcoin", blk, t, 2, 0, h, sender, f"tx:{h}", "BTC", 100_000_000, "utxo")
    b.flow("bitcoin", blk, t, 2, 1, h, f"tx:{h}", "bc1qvault", "BTC", 90_000_000, "utxo")
    b.flow("bitcoin", blk, t, 2, 2, h, f"tx:{h}", sender, "BTC", 9_990_000, "utxo")
    b.flow("bitcoin", blk, t, 2, 3, h, f"tx:{h}", "fees", "BTC", 10_000, "fee")
    b.memos.append(("bitcoin", blk, t, h, f"=:ETH.ETH:{THIEF2}"))
    out = tx(101)
    b.flow("ethereum", 900, 7100, 3, 0, out, VAULT, "fees", "ETH", 10**15, "fee")
    b.flow("ethereum", 900, 7100, 3, 1, out, VAULT, THIEF2, "ETH", 20 * E18, "native")
    b.write(workspace)
    add_calls(workspace, [("ethereum", 900, 7100, out, THIEF2, events.memo_input(
        f"OUT:{h.upper()}"))])
    report = detect_conversions(workspace)
    assert report.bridges.matched == 1
    (bridge,) = conversion_rows(workspace, "bridge")
    assert (bridge["chain"], bridge["dst"], bridge["dst_chain"], bridge["amount_in"]) == (
        "bitcoin", THIEF2, "ethereum", str(20 * E18))
    # the payout's receiver is a wallet, not a vault
    assert labels_of(workspace, THIEF2) == set()
    assert_conserved(workspace)


# -- end to end through the ethereum-etl importer ------------------------------------------

TX_COLS = ["hash", "nonce", "block_hash", "block_number", "transaction_index", "from_address",
           "to_address", "value", "gas", "gas_price", "input", "block_timestamp",
           "receipt_gas_used", "receipt_effective_gas_price", "receipt_status"]


def write_etl(folder: Path, txs: list[dict], traces: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "transactions.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, TX_COLS)
        w.writeheader()
        w.writerows(txs)
    cols = ["block_number", "transaction_hash", "transaction_index", "from_address",
            "to_address", "value", "trace_type", "call_type", "trace_address", "error",
            "status", "block_timestamp"]
    with open(folder / "traces.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, cols)
        w.writeheader()
        w.writerows(traces)


def etl_tx(n: int, to: str, value: int, inp: str) -> dict:
    return {"hash": tx(n), "nonce": n, "block_hash": "0x" + "cd" * 32, "block_number": 500,
            "transaction_index": n, "from_address": THIEF, "to_address": to, "value": value,
            "gas": 100000, "gas_price": 10**9, "input": inp, "block_timestamp": 1_740_000_000,
            "receipt_gas_used": 50000, "receipt_effective_gas_price": 10**9, "receipt_status": 1}


def test_etl_csv_import_stores_thorchain_calldata_end_to_end(tmp_path):
    folder, ws_path = tmp_path / "etl", tmp_path / "ws"
    amount = 4 * E18
    router_input = events.thorchain_deposit_call(VAULT, ZERO, amount, MEMO, 1_740_000_900)
    txs = [
        etl_tx(1, ROUTER2, amount, router_input.upper().replace("0X", "0x")),  # case-insensitive
        etl_tx(2, VAULT, E18, events.memo_input(f"s:BTC.BTC:{BTC_DEST}")),
        etl_tx(3, THIEF2, E18, "0x"),
        etl_tx(4, USDT, 0, "0xa9059cbb" + "00" * 64),  # an ERC-20 transfer: not kept
    ]
    traces = [{"block_number": 500, "transaction_hash": tx(1), "transaction_index": 1,
               "from_address": ROUTER2, "to_address": VAULT, "value": amount,
               "trace_type": "call", "call_type": "call", "trace_address": "0", "error": "",
               "status": 1, "block_timestamp": 1_740_000_000}]
    write_etl(folder, txs, traces)
    for _ in range(2):  # a second import adds nothing
        app(["ingest", "etl", str(folder), "-w", str(ws_path)], standalone_mode=False)
    app(["conversions", "detect", "-w", str(ws_path)], standalone_mode=False)

    ws = open_workspace(ws_path, read_only=True)
    try:
        calls = ws.con.execute(
            "SELECT tx_hash, to_address, input, block, time FROM evm_calls ORDER BY tx_hash"
        ).fetchall()
        assert [(c[0], c[1]) for c in calls] == [(tx(1), ROUTER2), (tx(2), VAULT)]
        assert calls[0][2] == router_input and calls[0][3:] == (500, 1_740_000_000)
        inb = {r["tx_hash"]: r for r in ws.con.execute(
            "SELECT * FROM bridge_inbounds").fetch_arrow_table().to_pylist()}
        assert set(inb) == {tx(1), tx(2)}
        assert (inb[tx(1)]["depositor"], inb[tx(1)]["amount"]) == (THIEF, str(amount))
        assert (inb[tx(2)]["amount"], inb[tx(2)]["dest_address"]) == (str(E18), BTC_DEST)
        assert {r[0] for r in ws.con.execute(
            "SELECT address FROM labels WHERE category = 'defi_bridge' "
            "AND source = 'heisttrace-conversions'").fetchall()} == {ROUTER2, VAULT}
    finally:
        ws.close()


def test_etherscan_txlist_input_lands_in_evm_calls(tmp_path):
    import json

    answer = tmp_path / "txlist.json"
    inp = events.thorchain_deposit_call(VAULT, ZERO, E18, MEMO, 5)
    base = {"blockNumber": "600", "timeStamp": "1740000600", "nonce": "1", "blockHash": "0x" + "ef" * 32,
            "from": THIEF, "value": str(E18), "gas": "90000", "gasPrice": "1000000000",
            "isError": "0", "txreceipt_status": "1", "contractAddress": "",
            "cumulativeGasUsed": "1", "gasUsed": "60000", "confirmations": "9"}
    answer.write_text(json.dumps({"status": "1", "message": "OK", "result": [
        {**base, "hash": tx(1), "transactionIndex": "1", "to": ROUTER2, "input": inp},
        {**base, "hash": tx(2), "transactionIndex": "2", "to": THIEF2, "input": "0x"},
    ]}))
    ws_path = tmp_path / "ws"
    app(["ingest", "etherscan", str(answer), "-w", str(ws_path)], standalone_mode=False)
    with open_workspace(ws_path, create=False, read_only=True) as ws:
        assert ws.con.execute("SELECT tx_hash, to_address, input, time FROM evm_calls").fetchall() == [
            (tx(1), ROUTER2, inp, 1740000600)]
