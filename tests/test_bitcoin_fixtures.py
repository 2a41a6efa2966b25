"""The real blocks recorded by bitcoin-etl, checked against bitcoin-etl's own export.

bitcoin-etl computed satoshi values, output counts, addresses and fees from the same node
answers independently of us, so agreeing with `expected_transactions.json` checks the
decimal conversion and the address choice. Folders: genesis (0), 1, 50000, 50001-50002,
and the stream folder whose `getrawtransaction` answers value the inputs of 50001.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from heisttrace.errors import InputError
from heisttrace.ledger import Workspace
from heisttrace.sources.bitcoin import FEE_POSITION, ingest_bitcoin, tx_node
from heisttrace.sources.bitcoin_json import Where, to_base_units
from shared_data import BTC_FIXTURES

JOB = BTC_FIXTURES / "test_export_blocks_job"
BITCOIN_FOLDERS = ["block_0", "block_1", "block_without_transactions", "block_with_transactions"]


def _expected(folder: Path) -> list[dict]:
    lines = (folder / "expected_transactions.json").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _blocks(folder: Path) -> list[Path]:
    return sorted(folder.glob("rpc_response_getblock_*_2.json"))


def _flows_by_tx(ws: Workspace) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in ws.flows().to_pylist():
        out.setdefault(row["tx_hash"], []).append(row)
    return out


@pytest.mark.parametrize("name", BITCOIN_FOLDERS)
def test_outputs_agree_with_bitcoin_etl(workspace: Workspace, name: str) -> None:
    folder = JOB / "bitcoin" / name
    report = ingest_bitcoin(workspace, _blocks(folder))
    expected = _expected(folder)
    assert report.txs == len(expected)
    assert report.blocks == len({t["block_number"] for t in expected})
    flows = _flows_by_tx(workspace)
    stored = workspace.con.execute(
        "SELECT txid, n, address, value FROM utxo_outputs WHERE chain = 'bitcoin'"
    ).fetchall()
    by_tx = Counter(txid for txid, *_ in stored)
    for tx in expected:
        txid = tx["hash"]
        assert by_tx[txid] == tx["output_count"]
        outs = sorted(
            (o["index"], o["addresses"][0], o["value"]) for o in tx["outputs"] if o["value"] > 0
        )
        got = sorted(
            (f["ordinal"] % (1 << 19), f["dst"], int(f["amount_out"]))
            for f in flows.get(txid, [])
            if f["src"] == tx_node(txid)
        )
        assert got == outs
        assert sum(v for *_, v in got) == tx["output_value"]
        if tx["is_coinbase"]:
            # new coins: nothing flows into a coinbase transaction
            assert not [f for f in flows.get(txid, []) if f["dst"] == tx_node(txid)]


def test_inputs_without_history_give_no_spending_flow(workspace: Workspace) -> None:
    """Blocks 50001-50002 alone: the spent outputs are from blocks we do not have."""
    report = ingest_bitcoin(workspace, _blocks(JOB / "bitcoin" / "block_with_transactions"))
    spends = [
        i for t in _expected(JOB / "bitcoin" / "block_with_transactions") for i in t["inputs"]
    ]
    assert report.inputs_unknown == len(spends) == 3
    assert report.fees_unknown == 2 and report.notes
    kinds = {row["kind"] for row in workspace.flows().to_pylist()}
    assert kinds == {"utxo"}  # no fee can be computed, none is invented


def test_recorded_prevouts_value_the_inputs(workspace: Workspace) -> None:
    """With the recorded getrawtransaction answers, inputs match bitcoin-etl's enriched export."""
    folder = JOB / "bitcoin" / "stream_50001_50002"
    raw = sorted(folder.glob("rpc_response_getrawtransaction_*.json"))
    report = ingest_bitcoin(workspace, _blocks(folder) + raw)
    assert report.inputs_unknown == 0 and report.fees_unknown == 0
    flows = _flows_by_tx(workspace)
    for tx in _expected(folder):
        txid = tx["hash"]
        ins = sorted((i["index"], i["addresses"][0], i["value"]) for i in tx["inputs"])
        got = sorted(
            (f["ordinal"] % (1 << 20), f["src"], int(f["amount_out"]))
            for f in flows.get(txid, [])
            if f["dst"] == tx_node(txid)
        )
        assert got == ins
        inflow = sum(v for *_, v in got)
        outflow = sum(int(f["amount_out"]) for f in flows[txid] if f["src"] == tx_node(txid))
        assert inflow == tx["input_value"]
        if not tx["is_coinbase"]:
            assert inflow == outflow  # inputs = outputs + fee, fee 0 here as bitcoin-etl says
        fee_flows = [f for f in flows[txid] if f["kind"] == "fee"]
        assert sum(int(f["amount_out"]) for f in fee_flows) == tx["fee"]
        assert all(f["ordinal"] % (1 << 20) == FEE_POSITION % (1 << 20) for f in fee_flows)


def test_all_bitcoin_folders_together_are_idempotent(workspace: Workspace) -> None:
    files = [f for name in BITCOIN_FOLDERS for f in _blocks(JOB / "bitcoin" / name)]
    first = ingest_bitcoin(workspace, files)
    count = workspace.count_flows()
    again = ingest_bitcoin(workspace, list(reversed(files)))
    assert first.flows_added == count > 0
    assert again.flows_added == 0 and again.outputs_added == 0
    assert workspace.count_flows() == count


@pytest.mark.parametrize(
    ("chain", "folder", "asset"),
    [
        ("dogecoin", "dogecoin/block_without_transactions", "DOGE"),
        ("bitcoin_cash", "bitcoin_cash/block_with_duplicate_txid", "BCH"),
    ],
)
def test_verbosity_one_blocks_with_raw_transactions(
    workspace: Workspace, chain: str, folder: str, asset: str
) -> None:
    """These folders hold `getblock` verbosity 1 (txids) plus `getrawtransaction` answers."""
    path = JOB / folder
    report = ingest_bitcoin(workspace, sorted(path.glob("rpc_response_get*.json")), chain=chain)
    assert report.skipped_documents == 1  # the getblockhash answer
    expected = _expected(path)
    rows = workspace.flows().to_pylist()
    assert {r["chain"] for r in rows} == {chain} and {r["asset"] for r in rows} == {asset}
    assert sorted((r["tx_hash"], r["dst"], int(r["amount_out"])) for r in rows) == sorted(
        (t["hash"], o["addresses"][0], o["value"]) for t in expected for o in t["outputs"]
    )


def test_verbosity_one_block_alone_is_an_error(workspace: Workspace) -> None:
    block = next((JOB / "dogecoin" / "block_without_transactions").glob("*getblock_*"))
    with pytest.raises(InputError) as err:
        ingest_bitcoin(workspace, [block], chain="dogecoin")
    assert block.name in str(err.value) and "verbosity 1" in str(err.value)
    assert err.value.block == 2
    assert workspace.count_flows() == 0


def test_dogecoin_values_keep_full_precision() -> None:
    """bitcoin-etl's 'float precision loss' block: values must not go through float."""
    folder = JOB / "dogecoin" / "block_with_float_precision_loss"
    where = Where(str(folder))
    for tx in _expected(folder):
        for out in tx["outputs"]:
            coins = Decimal(out["value"]).scaleb(-8)
            assert to_base_units(Decimal(str(coins)), where) == out["value"]
    assert to_base_units(Decimal("0.29"), where) == 29_000_000 != int(0.29 * 1e8)


def test_zcash_is_not_read_as_bitcoin(workspace: Workspace) -> None:
    """Shielded value (valueBalance, joinsplits) would break per-transaction balance."""
    files = _blocks(JOB / "zcash" / "block_with_value_balance")
    with pytest.raises(InputError) as err:
        ingest_bitcoin(workspace, files, chain="zcash")
    assert err.value.field == "chain"


# -- bitcoin-etl's own export as input ----------------------------------------------------


def _ledger(ws: Workspace) -> list[tuple]:
    return ws.con.execute("SELECT * FROM flows ORDER BY ALL").fetchall()


@pytest.mark.parametrize("name", [*BITCOIN_FOLDERS, "stream_50001_50002"])
def test_bitcoin_etl_export_gives_the_same_flows_as_the_node_json(
    tmp_path: Path, name: str
) -> None:
    """Two readers, two independent sources of the same blocks: identical ledgers."""
    from heisttrace.ledger import open_workspace

    folder = JOB / "bitcoin" / name
    with open_workspace(tmp_path / "rpc") as a, open_workspace(tmp_path / "etl") as b:
        ra = ingest_bitcoin(a, _blocks(folder) + sorted(folder.glob("*getrawtransaction*")))
        rb = ingest_bitcoin(
            b, [folder / "expected_transactions.json", folder / "expected_blocks.json"]
        )
        assert _ledger(a) == _ledger(b) and _ledger(a)
        assert (ra.txs, ra.blocks, ra.inputs_unknown) == (rb.txs, rb.blocks, rb.inputs_unknown)
        assert rb.skipped_documents == rb.blocks  # the bitcoin-etl block records


def test_bitcoin_etl_dogecoin_spend_inside_one_block(workspace: Workspace) -> None:
    """Records without `index` are numbered in file order; an in-block spend is valued."""
    folder = JOB / "dogecoin" / "block_with_float_precision_loss"
    report = ingest_bitcoin(workspace, [folder / "expected_transactions.json"], chain="dogecoin")
    expected = _expected(folder)
    assert report.txs == len(expected)
    rows = workspace.flows().to_pylist()
    assert {r["ordinal"] // (1 << 20) for r in rows} == set(range(len(expected)))
    spends = [r for r in rows if r["dst"].startswith("tx:")]
    created = {(t["hash"], o["index"]): (o["addresses"][0], o["value"])
               for t in expected for o in t["outputs"]}
    in_block = [(t["hash"], i) for t in expected for i in t["inputs"]
                if (i["spent_transaction_hash"], i["spent_output_index"]) in created]
    assert len(in_block) == len(spends) == 1
    txid, inp = in_block[0]
    address, value = created[(inp["spent_transaction_hash"], inp["spent_output_index"])]
    assert (spends[0]["tx_hash"], spends[0]["src"], int(spends[0]["amount_out"])) == (
        txid, address, value)
    assert report.inputs_unknown == sum(len(t["inputs"]) for t in expected) - 1
