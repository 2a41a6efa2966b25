"""`ingest_etherscan`: Etherscan answers built from the real block 483920 agree with the etl path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heisttrace.errors import InputError
from heisttrace.ledger import Workspace
from heisttrace.ledger.schema import LOG_BASE, TX_STRIDE
from heisttrace.sources.etherscan import ETHERSCAN_LOG_BASE, ingest_etherscan
from heisttrace.sources.evm import evm_flows
from tests.test_evm_mapping import (
    BLOCK_483920,
    RECEIPTS_483920,
    TRANSFERS_483920,
    block_483920,
    rows,
)
from tests.test_ingest_etl_files import snapshot


def etherscan_answers(tmp_path: Path) -> tuple[Path, Path]:
    """txlist and tokentx answers carrying the same facts as ethereum-etl's CSVs of the block."""
    block = rows(BLOCK_483920 / "expected_blocks.csv")[0]
    receipts = {r["transaction_hash"]: r for r in rows(RECEIPTS_483920 / "expected_receipts.csv")}
    txs = rows(BLOCK_483920 / "expected_transactions.csv")
    txlist = [
        {"blockNumber": t["block_number"], "timeStamp": block["timestamp"], "hash": t["hash"],
         "nonce": t["nonce"], "blockHash": t["block_hash"],
         "transactionIndex": t["transaction_index"], "from": t["from_address"],
         "to": t["to_address"], "value": t["value"], "gas": t["gas"],
         "gasPrice": receipts[t["hash"]]["effective_gas_price"], "isError": "0",
         "txreceipt_status": "", "input": t["input"], "contractAddress": "",
         "cumulativeGasUsed": receipts[t["hash"]]["cumulative_gas_used"],
         "gasUsed": receipts[t["hash"]]["gas_used"], "confirmations": "1000"}
        for t in txs
    ]
    index = {t["hash"]: t["transaction_index"] for t in txs}
    tokentx = [
        {"blockNumber": t["block_number"], "timeStamp": block["timestamp"],
         "hash": t["transaction_hash"], "nonce": "1", "from": t["from_address"],
         "contractAddress": t["token_address"], "to": t["to_address"], "value": t["value"],
         "tokenName": "Some Token", "tokenSymbol": "SOME", "tokenDecimal": "6",
         "transactionIndex": index[t["transaction_hash"]], "gas": "1", "gasPrice": "1",
         "gasUsed": "1", "cumulativeGasUsed": "1", "input": "deprecated", "confirmations": "9"}
        for t in rows(TRANSFERS_483920 / "expected_token_transfers.csv")
    ]
    a, b = tmp_path / "txlist.json", tmp_path / "tokentx.json"
    a.write_text(json.dumps({"status": "1", "message": "OK", "result": txlist}))
    b.write_text(json.dumps(tokentx))  # bare list
    return a, b


def test_same_flows_as_etl_except_token_log_index(workspace: Workspace, tmp_path: Path) -> None:
    report = ingest_etherscan(workspace, etherscan_answers(tmp_path))
    got = sorted(workspace.flows().to_pylist(), key=lambda f: f["ordinal"])
    expected = evm_flows(block_483920()).to_pylist()
    assert report.flows_added == len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        if e["kind"] == "token":
            # Etherscan has no log index: position among the tx's transfers, in its own range.
            tx_index = e["ordinal"] // TX_STRIDE
            assert g["ordinal"] == tx_index * TX_STRIDE + LOG_BASE + ETHERSCAN_LOG_BASE
            g = {**g, "ordinal": e["ordinal"]}
        assert g == e
    assert workspace.con.execute("SELECT symbol, decimals, source FROM tokens").fetchall() == [
        ("SOME", 6, "etherscan")
    ]
    again = ingest_etherscan(workspace, etherscan_answers(tmp_path))
    assert again.flows_added == 0 and again.duplicates == report.flows_seen


def test_internal_transactions_take_index_from_txlist(workspace: Workspace, tmp_path: Path) -> None:
    a, b, c = ("0x" + ch * 40 for ch in "abc")
    h = "0x" + "12" * 32
    txlist = [{"blockNumber": "10", "timeStamp": "1500000000", "hash": h, "nonce": "0",
               "transactionIndex": "4", "from": a, "to": b, "value": "100", "gasPrice": "3",
               "isError": "0", "txreceipt_status": "1", "contractAddress": "", "gasUsed": "50"}]
    internal = [
        {"blockNumber": "10", "timeStamp": "1500000000", "hash": h, "from": b, "to": c,
         "value": "60", "contractAddress": "", "input": "", "type": "call", "gas": "1",
         "gasUsed": "1", "traceId": "0", "isError": "0", "errCode": ""},
        {"blockNumber": "10", "timeStamp": "1500000000", "hash": h, "from": b, "to": a,
         "value": "5", "contractAddress": "", "input": "", "type": "call", "gas": "1",
         "gasUsed": "1", "traceId": "0_1", "isError": "1", "errCode": "revert"},
    ]
    (tmp_path / "t.json").write_text(json.dumps({"status": "1", "message": "OK", "result": txlist}))
    (tmp_path / "i.json").write_text(json.dumps({"status": "1", "message": "OK",
                                                 "result": internal}))
    ingest_etherscan(workspace, [tmp_path / "i.json", tmp_path / "t.json"])
    got = [(f["kind"], f["src"], f["dst"], f["amount_out"], f["ordinal"])
           for f in workspace.flows().to_pylist()]
    assert got == [("fee", a, "fees", "150", 4 * TX_STRIDE), ("native", a, b, "100", 4 * TX_STRIDE + 1),
                   ("internal", b, c, "60", 4 * TX_STRIDE + 2)]


def test_error_envelope_malformed_json_and_bad_value(workspace: Workspace, tmp_path: Path) -> None:
    good, _ = etherscan_answers(tmp_path)
    ingest_etherscan(workspace, [good])
    before = snapshot(workspace)

    err_file = tmp_path / "err.json"
    err_file.write_text(json.dumps({"status": "0", "message": "NOTOK",
                                    "result": "Max rate limit reached"}))
    with pytest.raises(InputError, match="NOTOK: Max rate limit reached"):
        ingest_etherscan(workspace, [err_file])

    broken = tmp_path / "broken.json"
    broken.write_text('{"status": "1",\n "result": [\n')
    with pytest.raises(InputError) as err:
        ingest_etherscan(workspace, [broken])
    assert err.value.file == str(broken) and err.value.line is not None

    data = json.loads(good.read_text())
    data["result"][2]["value"] = "-1"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(InputError, match="result item 2") as err:
        ingest_etherscan(workspace, [bad])
    assert (err.value.file, err.value.field) == (str(bad), "value")
    assert snapshot(workspace) == before


def test_empty_answer_is_fine(workspace: Workspace, tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"status": "0", "message": "No transactions found", "result": []}))
    assert ingest_etherscan(workspace, [empty]).flows_added == 0
