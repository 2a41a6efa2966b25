"""The EVM mapping on ethereum-etl's own recorded CSVs and on small hand-made cases."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from heisttrace.errors import InputError
from heisttrace.ledger import Workspace
from heisttrace.ledger.schema import FEE_SINK, LOG_BASE, TX_STRIDE
from heisttrace.sources.evm import EvmBatch, evm_flows, evm_watched_logs, store_batch
from tests.conftest import ETL_FIXTURES

BLOCK_483920 = ETL_FIXTURES / "test_export_blocks_job" / "block_with_logs"
RECEIPTS_483920 = ETL_FIXTURES / "test_export_receipts_job" / "receipts_with_logs"
TRANSFERS_483920 = ETL_FIXTURES / "test_export_token_transfers_job" / "block_with_transfers"


def read(path: Path) -> pa.Table:
    """A CSV as all-string columns, as ethereum-etl wrote it (empty cells stay empty)."""
    with open(path) as fh:
        header = next(csv.reader(fh))
    return pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header}),
    )


def rows(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def block_483920() -> EvmBatch:
    return EvmBatch(
        blocks=read(BLOCK_483920 / "expected_blocks.csv"),
        transactions=read(BLOCK_483920 / "expected_transactions.csv"),
        receipts=read(RECEIPTS_483920 / "expected_receipts.csv"),
        token_transfers=read(TRANSFERS_483920 / "expected_token_transfers.csv"),
        logs=read(RECEIPTS_483920 / "expected_logs.csv"),
    )


def test_recorded_block_fees_values_and_token_transfers() -> None:
    flows = evm_flows(block_483920()).to_pylist()
    txs = {t["hash"]: t for t in rows(BLOCK_483920 / "expected_transactions.csv")}
    receipts = {r["transaction_hash"]: r for r in rows(RECEIPTS_483920 / "expected_receipts.csv")}
    transfers = rows(TRANSFERS_483920 / "expected_token_transfers.csv")
    block_time = int(rows(BLOCK_483920 / "expected_blocks.csv")[0]["timestamp"])

    fees = {f["tx_hash"]: f for f in flows if f["kind"] == "fee"}
    assert set(fees) == set(txs)
    for h, f in fees.items():
        r, t = receipts[h], txs[h]
        assert int(f["amount_out"]) == int(r["gas_used"]) * int(r["effective_gas_price"])
        assert f["src"] == t["from_address"] and f["dst"] == FEE_SINK
        assert f["ordinal"] == int(t["transaction_index"]) * TX_STRIDE
    natives = {f["tx_hash"]: f for f in flows if f["kind"] == "native"}
    assert set(natives) == {h for h, t in txs.items() if int(t["value"]) > 0}
    for h, f in natives.items():
        assert f["amount_out"] == f["amount_in"] == txs[h]["value"]
        assert f["dst"] == txs[h]["to_address"]
        assert f["ordinal"] == int(txs[h]["transaction_index"]) * TX_STRIDE + 1
    tokens = [f for f in flows if f["kind"] == "token"]
    assert [(f["tx_hash"], f["asset"], f["src"], f["dst"], f["amount_out"]) for f in tokens] == [
        (t["transaction_hash"], t["token_address"], t["from_address"], t["to_address"], t["value"])
        for t in transfers
    ]
    for f, t in zip(tokens, transfers, strict=True):
        tx_index = int(txs[t["transaction_hash"]]["transaction_index"])
        assert f["ordinal"] == tx_index * TX_STRIDE + LOG_BASE + int(t["log_index"])
    assert {f["time"] for f in flows} == {block_time}
    # Ledger order: (block, ordinal) increasing.
    assert [f["ordinal"] for f in flows] == sorted(f["ordinal"] for f in flows)


def test_token_transfer_index_from_logs_csv() -> None:
    """test_extract_token_transfers_job: logs.csv gives the transaction index."""
    folder = ETL_FIXTURES / "test_extract_token_transfers_job" / "logs"
    transfers = read(folder / "expected_token_transfers.csv")
    blocks = pa.table({"number": ["1452581"], "timestamp": ["1461000000"]})
    flows = evm_flows(EvmBatch(blocks=blocks, token_transfers=transfers,
                               logs=read(folder / "logs.csv"))).to_pylist()
    logs = {(r["transaction_hash"], r["log_index"]): r for r in rows(folder / "logs.csv")}
    assert len(flows) == transfers.num_rows == 2
    for f, t in zip(flows, rows(folder / "expected_token_transfers.csv"), strict=True):
        tx_index = int(logs[(t["transaction_hash"], t["log_index"])]["transaction_index"])
        assert f["ordinal"] == tx_index * TX_STRIDE + LOG_BASE + int(t["log_index"])
        assert f["amount_out"] == t["value"]


def _one_block(number: str = "1011973") -> pa.Table:
    return pa.table({"number": [number], "timestamp": ["1455000000"]})


def test_recorded_suicide_trace_is_internal_transfer() -> None:
    traces = read(ETL_FIXTURES / "test_export_traces_job" / "block_with_suicide" / "expected_traces.csv")
    flows = evm_flows(EvmBatch(blocks=_one_block(), traces=traces)).to_pylist()
    suicide = [r for r in rows(ETL_FIXTURES / "test_export_traces_job" / "block_with_suicide"
                               / "expected_traces.csv") if r["trace_type"] == "suicide"][0]
    assert [(f["kind"], f["src"], f["dst"], f["amount_out"], f["ordinal"]) for f in flows] == [
        ("internal", suicide["from_address"], suicide["to_address"], suicide["value"],
         int(suicide["transaction_index"]) * TX_STRIDE + 2)
    ]


def test_recorded_callcode_moves_nothing_in_parity_or_geth_traces() -> None:
    for job in ("test_export_traces_job", "test_extract_geth_traces_job"):
        traces = read(ETL_FIXTURES / job / "block_with_subtraces" / "expected_traces.csv")
        assert "callcode" in traces["call_type"].to_pylist()
        txmap = pa.table({
            "transaction_hash": ["0x" + "ea" * 32, "0x" + "e9" * 32],
            "transaction_index": ["0", "1"], "block_number": ["1000000", "1000000"]})
        flows = evm_flows(EvmBatch(blocks=_one_block("1000000"), traces=traces, receipts=txmap))
        assert flows.num_rows == 0


def test_recorded_pre_byzantium_failed_tx_pays_only_fee() -> None:
    """block_with_error: the top-level trace ran out of gas; receipts then had no status."""
    folder = ETL_FIXTURES / "test_export_traces_job" / "block_with_error"
    traces = read(folder / "expected_traces.csv")
    failing = [r for r in rows(folder / "expected_traces.csv") if r["error"]][0]
    tx = pa.table({
        "hash": [failing["transaction_hash"]], "block_number": [failing["block_number"]],
        "transaction_index": [failing["transaction_index"]],
        "from_address": [failing["from_address"]], "to_address": [failing["to_address"]],
        "value": [failing["value"]], "gas_price": ["20000000000"],
        "receipt_gas_used": ["21000"], "receipt_status": [""],
    })
    flows = evm_flows(EvmBatch(blocks=_one_block(failing["block_number"]), transactions=tx,
                               traces=traces)).to_pylist()
    assert [(f["kind"], f["amount_out"]) for f in flows] == [("fee", str(21000 * 20000000000))]


A, B, C, D, TOKEN = ("0x" + c * 40 for c in "abcde")
H1, H2 = "0x" + "11" * 32, "0x" + "22" * 32


def _tx(h: str, index: str, value: str, status: str, frm: str = A, to: str = B) -> dict:
    return dict(hash=h, block_number="100", transaction_index=index, from_address=frm,
                to_address=to, value=value, gas_price="7", block_timestamp="1700000000",
                receipt_gas_used="21000", receipt_effective_gas_price="5", receipt_status=status)


def _trace(h: str, addr: str, frm: str, to: str, value: str, call_type: str = "call",
           error: str = "", trace_type: str = "call") -> dict:
    return dict(block_number="100", transaction_hash=h, transaction_index="0" if h == H1 else "1",
                from_address=frm, to_address=to, value=value, trace_type=trace_type,
                call_type=call_type, trace_address=addr, error=error, status="")


def test_failed_tx_pays_fee_only_and_its_traces_move_nothing() -> None:
    txs = pa.Table.from_pylist([_tx(H1, "0", "5", "0"), _tx(H2, "1", "9", "1")])
    traces = pa.Table.from_pylist([
        _trace(H1, "", A, B, "5"), _trace(H1, "0", B, C, "5"),
        _trace(H2, "", A, B, "9"), _trace(H2, "0", B, C, "4"),
    ])
    flows = evm_flows(EvmBatch(transactions=txs, traces=traces)).to_pylist()
    got = [(f["tx_hash"], f["kind"], f["src"], f["dst"], f["amount_out"], f["ordinal"])
           for f in flows]
    assert got == [
        (H1, "fee", A, FEE_SINK, str(21000 * 5), 0),
        (H2, "fee", A, FEE_SINK, str(21000 * 5), TX_STRIDE),
        (H2, "native", A, B, "9", TX_STRIDE + 1),
        (H2, "internal", B, C, "4", TX_STRIDE + 2),
    ]


def test_internal_transfers_skip_failed_subtrees_and_delegatecall_in_path_order() -> None:
    txs = pa.Table.from_pylist([_tx(H1, "0", "0", "1")])
    traces = pa.Table.from_pylist([
        _trace(H1, "", A, B, "0"),
        _trace(H1, "0,10", B, C, "3"),
        _trace(H1, "0,2", B, D, "2"),
        _trace(H1, "0", B, B, "0"),
        _trace(H1, "1", B, C, "7", error="Reverted"),
        _trace(H1, "1,0", C, D, "6"),  # inside the reverted frame
        _trace(H1, "2", B, C, "8", call_type="delegatecall"),
        _trace(H1, "3", B, C, "1", call_type="staticcall"),
        _trace(H1, "4", B, D, "11", trace_type="create", call_type=""),
        _trace(H1, "5", B, A, "0"),
    ])
    flows = evm_flows(EvmBatch(transactions=txs, traces=traces)).to_pylist()
    internal = [(f["dst"], f["amount_out"], f["ordinal"]) for f in flows if f["kind"] == "internal"]
    assert internal == [(D, "2", 2), (C, "3", 3), (D, "11", 4)]
    assert [f["kind"] for f in flows] == ["fee", "internal", "internal", "internal"]


def test_amounts_beyond_128_bits_stay_exact_and_zero_token_transfers_are_kept() -> None:
    huge = str(2**256 - 1)
    txs = pa.Table.from_pylist([_tx(H1, "3", "0", "1")])
    transfers = pa.table({
        "token_address": [TOKEN, TOKEN], "from_address": [A, C], "to_address": [C, D],
        "value": [huge, "0"], "transaction_hash": [H1, H1], "log_index": ["7", "8"],
        "block_number": ["100", "100"],
    })
    flows = evm_flows(EvmBatch(transactions=txs, token_transfers=transfers)).to_pylist()
    tokens = [f for f in flows if f["kind"] == "token"]
    assert [f["amount_out"] for f in tokens] == [huge, "0"]
    assert [f["ordinal"] for f in tokens] == [3 * TX_STRIDE + LOG_BASE + 7,
                                              3 * TX_STRIDE + LOG_BASE + 8]
    assert all(f["time"] == 1700000000 for f in tokens)


def test_integer_typed_columns_from_a_node_work_too() -> None:
    txs = pa.table({"hash": [H1], "block_number": [100], "transaction_index": [2],
                    "from_address": [A.upper().replace("0X", "0x")], "to_address": [B],
                    "value": ["1000000000000000000000"], "block_timestamp": [1700000000],
                    "receipt_status": [1]})
    flows = evm_flows(EvmBatch(transactions=txs)).to_pylist()
    assert [(f["src"], f["amount_out"], f["ordinal"]) for f in flows] == [
        (A, "1000000000000000000000", 2 * TX_STRIDE + 1)
    ]


def test_no_time_anywhere_is_a_clear_error() -> None:
    transfers = pa.table({
        "token_address": [TOKEN], "from_address": [A], "to_address": [C], "value": ["1"],
        "transaction_hash": [H1], "log_index": ["7"], "block_number": ["100"],
        "transaction_index": ["0"]})
    with pytest.raises(InputError, match="blocks.csv") as err:
        evm_flows(EvmBatch(token_transfers=transfers))
    assert err.value.block == 100


def test_no_transaction_index_for_a_token_transfer_is_a_clear_error() -> None:
    transfers = pa.table({
        "token_address": [TOKEN], "from_address": [A], "to_address": [C], "value": ["1"],
        "transaction_hash": [H1], "log_index": ["7"], "block_number": ["100"]})
    with pytest.raises(InputError, match="transaction index") as err:
        evm_flows(EvmBatch(token_transfers=transfers, blocks=_one_block("100")))
    assert err.value.field == "transaction_index"


@pytest.mark.parametrize(
    ("column", "value"),
    [("from_address", "0x12"), ("value", "-5"), ("hash", "0xzz"), ("transaction_index", "")],
)
def test_bad_values_name_row_and_field(column: str, value: str) -> None:
    good = [_tx(H1, "0", "1", "1"), _tx(H2, "1", "1", "1")]
    good[1][column] = value
    with pytest.raises(InputError) as err:
        evm_flows(EvmBatch(transactions=pa.Table.from_pylist(good),
                           origin={"transactions": "transactions.csv"}))
    assert err.value.field == column
    assert err.value.line == 3  # header + second row
    assert err.value.file == "transactions.csv"


def test_missing_required_column() -> None:
    txs = pa.Table.from_pylist([_tx(H1, "0", "1", "1")]).drop_columns(["value"])
    with pytest.raises(InputError, match="missing column 'value'"):
        evm_flows(EvmBatch(transactions=txs))


def test_watched_logs_only() -> None:
    weth_deposit = "0xe1fffcc4923d04b559f4d29a8bfc6cda04eb5b0d3c460751c2402c5c5cc9109c"
    logs = pa.table({
        "log_index": ["0", "1"], "transaction_hash": [H1, H1], "transaction_index": ["0", "0"],
        "block_number": ["100", "100"], "address": [TOKEN, TOKEN], "data": ["0x01", "0x02"],
        "topics": [f"{weth_deposit},0x{'00' * 12}{A[2:]}",
                   "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"],
    })
    out = evm_watched_logs(EvmBatch(logs=logs, blocks=_one_block("100"))).to_pylist()
    assert len(out) == 1
    assert out[0]["topic0"] == weth_deposit[2:]
    assert out[0]["topics"] == [weth_deposit, f"0x{'00' * 12}{A[2:]}"]
    assert out[0]["time"] == 1455000000 and out[0]["log_index"] == 0


def test_store_batch_is_idempotent(workspace: Workspace) -> None:
    batch = block_483920()
    expected = evm_flows(batch).num_rows
    with workspace.transaction():
        assert store_batch(workspace, batch) == expected
    with workspace.transaction():
        assert store_batch(workspace, batch) == 0
    assert workspace.count_flows() == expected


def test_rows_repeated_inside_one_input_are_stored_once(workspace: Workspace) -> None:
    transfers = pa.table({
        "token_address": [TOKEN] * 3, "from_address": [A] * 3, "to_address": [C] * 3,
        "value": ["5", "5", "6"], "transaction_hash": [H1] * 3, "log_index": ["1", "1", "2"],
        "block_number": ["100"] * 3, "transaction_index": ["0"] * 3,
    })
    with workspace.transaction():
        added = store_batch(workspace, EvmBatch(token_transfers=transfers,
                                                blocks=_one_block("100")))
    assert added == 2
    assert workspace.flows().column("amount_out").to_pylist() == ["5", "6"]


def test_geth_traces_without_hash_get_it_from_block_and_index() -> None:
    """ethereum-etl's geth traces.csv has no transaction_hash: (block, index) finds it."""
    txs = pa.Table.from_pylist([_tx(H2, "1", "9", "1")])
    geth = pa.Table.from_pylist([
        {**_trace(H2, "", A, B, "9"), "transaction_hash": ""},
        {**_trace(H2, "0", B, C, "4"), "transaction_hash": ""},
    ])
    flows = evm_flows(EvmBatch(transactions=txs, traces=geth)).to_pylist()
    assert [(f["tx_hash"], f["kind"], f["dst"], f["ordinal"]) for f in flows][-1] == (
        H2, "internal", C, TX_STRIDE + 2)
