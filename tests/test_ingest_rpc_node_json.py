"""node_json against ethereum-etl: recorded mainnet answers in, etl's expected CSVs out."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from shared_data import ETL_FIXTURES
from heisttrace.sources import etl_columns as cols
from heisttrace.sources import node_json as nj
from test_ingest_rpc_replay import replay_client

RES = ETL_FIXTURES


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def as_csv(rows: list[nj.Row], columns: list[str]) -> list[dict[str, str]]:
    """Our rows as etl's CSV writer would print them (None -> empty field)."""
    return [{c: "" if r.get(c) is None else str(r[c]) for c in columns} for r in rows]


@pytest.mark.parametrize(
    "case,blocks",
    [("blocks_with_transactions", [0xB872, 0xB873]), ("block_with_logs", [0x76250]),
     ("block_without_transactions", [0])],
)
def test_blocks_and_transactions_match_etl(case: str, blocks: list[int]) -> None:
    folder = RES / "test_export_blocks_job" / case
    with replay_client(folder) as client:
        answers = client.batch([("eth_getBlockByNumber", [hex(b), True]) for b in blocks])
    blocks_out = [nj.block_row(b) for b in answers]
    txs_out = [t for b in answers for t in nj.transaction_rows(b)]
    expected_blocks = read_csv(folder / "expected_blocks.csv")
    expected_txs = read_csv(folder / "expected_transactions.csv")
    assert as_csv(blocks_out, cols.BLOCK_COLUMNS) == expected_blocks
    assert as_csv(txs_out, cols.TRANSACTION_COLUMNS) == expected_txs


def test_receipts_and_logs_match_etl() -> None:
    folder = RES / "test_export_receipts_job" / "receipts_with_logs"
    expected = read_csv(folder / "expected_receipts.csv")
    hashes = [r["transaction_hash"] for r in expected]
    with replay_client(folder) as client:
        answers = client.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
    receipts = [nj.receipt_row(r) for r in answers]
    assert as_csv(receipts, cols.RECEIPT_COLUMNS) == [
        {c: r[c] for c in cols.RECEIPT_COLUMNS} for r in expected
    ]
    logs = sorted((log for r in answers for log in nj.log_rows(r)), key=lambda r: int(r["log_index"]))
    expected_logs = read_csv(folder / "expected_logs.csv")
    assert as_csv(logs, cols.LOG_COLUMNS) == expected_logs
    # Those are all ERC-20 transfers: each log becomes one transfer with the data word as value.
    transfers = nj.token_transfer_rows(logs)
    assert len(transfers) == len(expected_logs)
    assert transfers[0]["value"] == str(int(expected_logs[0]["data"], 16))
    assert transfers[0]["from_address"] == "0x" + expected_logs[0]["topics"].split(",")[1][-40:]


def test_token_transfers_match_etl() -> None:
    folder = RES / "test_extract_token_transfers_job" / "logs"
    transfers = nj.token_transfer_rows(read_csv(folder / "logs.csv"))
    assert as_csv(transfers, cols.TOKEN_TRANSFER_COLUMNS) == read_csv(folder / "expected_token_transfers.csv")


def test_token_transfers_from_filter_logs_match_etl() -> None:
    folder = RES / "test_export_token_transfers_job" / "block_with_transfers"
    raw = json.loads((folder / "web3_response.eth_getFilterLogs_0x0.json").read_text())["result"]
    logs = nj.log_rows({"logs": raw})
    transfers = nj.token_transfer_rows(logs)
    assert as_csv(transfers, cols.TOKEN_TRANSFER_COLUMNS) == read_csv(folder / "expected_token_transfers.csv")


def test_erc721_and_malformed_transfers_are_skipped() -> None:
    t0 = "0x" + nj.TRANSFER_TOPIC
    a, b = "0x" + "00" * 12 + "11" * 20, "0x" + "00" * 12 + "22" * 20
    base = {"address": "0xtoken", "transaction_hash": "0xh", "log_index": "7", "block_number": "9"}
    erc20 = {**base, "topics": f"{t0},{a},{b}", "data": "0x" + "00" * 31 + "05"}
    erc721 = {**base, "topics": f"{t0},{a},{b},0x" + "00" * 31 + "05", "data": "0x"}
    unindexed = {**base, "topics": t0, "data": "0x" + a[2:] + b[2:] + "00" * 31 + "06"}
    short = {**base, "topics": f"{t0},{a},{b}", "data": "0x05"}
    other = {**base, "topics": "0x" + "ab" * 32 + f",{a},{b}", "data": erc20["data"]}
    out = nj.token_transfer_rows([erc20, erc721, unindexed, short, other])
    assert [(r["from_address"], r["to_address"], r["value"]) for r in out] == [
        ("0x" + "11" * 20, "0x" + "22" * 20, "5"), ("0x" + "11" * 20, "0x" + "22" * 20, "6")
    ]


TRACE_CASES = ["block_with_create", "block_with_error", "block_with_subtraces",
               "block_with_suicide", "block_without_transactions"]


@pytest.mark.parametrize("case", TRACE_CASES)
def test_parity_traces_match_etl(case: str) -> None:
    folder = RES / "test_export_traces_job" / case
    path = next(folder.glob("web3_response.trace_block_*.json"))
    traces = json.loads(path.read_text())["result"]
    rows = nj.parity_trace_rows(traces)
    assert as_csv(rows, cols.TRACE_COLUMNS) == read_csv(folder / "expected_traces.csv")


# etl's geth path leaves these empty (old geth gave no txHash, and it computes no status or
# id there); we fill them, so they are checked against the parity export of the same block.
_FILLED = {"transaction_hash", "status", "trace_id"}


@pytest.mark.parametrize("case", TRACE_CASES)
def test_geth_traces_match_etl_and_parity(case: str) -> None:
    folder = RES / "test_extract_geth_traces_job" / case
    path = next(folder.glob("web3_response.debug_traceBlockByNumber_*.json"))
    block = int(path.name.split("_")[3], 16)
    frames = json.loads(path.read_text())["result"]
    parity = read_csv(RES / "test_export_traces_job" / case / "expected_traces.csv")
    parity_tx = [r for r in parity if r["trace_type"] != "reward"]
    hashes = list(dict.fromkeys(r["transaction_hash"] for r in parity_tx))
    rows = as_csv(nj.geth_trace_rows(block, frames, hashes), cols.TRACE_COLUMNS)
    expected = read_csv(folder / "expected_traces.csv")
    keep = [c for c in cols.TRACE_COLUMNS if c not in _FILLED]
    assert [{c: r[c] for c in keep} for r in rows] == [{c: r[c] for c in keep} for r in expected]
    assert [{c: r[c] for c in _FILLED} for r in rows] == [{c: r[c] for c in _FILLED} for r in parity_tx]


def test_geth_status_propagates_to_children_of_a_failed_frame() -> None:
    frames = [{"txHash": "0xAA", "result": {
        "type": "CALL", "from": "0x1", "to": "0x2", "value": "0x10", "calls": [
            {"type": "CALL", "from": "0x2", "to": "0x3", "value": "0x5", "error": "execution reverted",
             "calls": [{"type": "DELEGATECALL", "from": "0x3", "to": "0x4"},
                       {"type": "CALL", "from": "0x3", "to": "0x5", "value": "0x1"}]},
            {"type": "STATICCALL", "from": "0x2", "to": "0x6"},
        ]}}]
    rows = nj.geth_trace_rows(5, frames)
    assert [(r["trace_address"], r["status"], r["call_type"], r["value"]) for r in rows] == [
        ("", "1", "call", "16"), ("0", "0", "call", "5"), ("0,0", "0", "delegatecall", None),
        ("0,1", "0", "call", "1"), ("1", "1", "staticcall", None),
    ]
    assert {r["transaction_hash"] for r in rows} == {"0xaa"}
    assert rows[3]["trace_id"] == "call_0xaa_0_1"


def test_to_table_is_all_strings_in_etl_order() -> None:
    table = nj.to_table([{"value": "1", "hash": "0xa"}], cols.TRANSACTION_COLUMNS)
    assert table.column_names == cols.TRANSACTION_COLUMNS
    assert all(str(t) == "string" for t in table.schema.types)
    assert table.column("gas").to_pylist() == [None]


def test_geth_untraceable_transaction_is_an_error_not_a_row() -> None:
    with pytest.raises(ValueError, match="could not trace transaction 1: execution timeout"):
        nj.geth_trace_rows(7, [{"result": {"type": "CALL", "from": "0x1", "to": "0x2", "value": "0x0"}},
                               {"txHash": "0xbb", "error": "execution timeout"}])
