"""Spark extraction (local mode): the neighbourhood traced locally equals the full-ledger trace.

One SparkSession for the module, small shuffle partitions, one extraction shared by the
checks: Spark's start-up costs more than the data here.
"""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from heisttrace.cli import app
from heisttrace.errors import InputError
from heisttrace.labels.roles import address_roles
from heisttrace.ledger import open_workspace
from heisttrace.ledger.schema import FLOW_COLUMNS
from heisttrace.scale.extract import extract_neighbourhood, spark_session
from heisttrace.scale.synth import make_ledger, write_dataset, write_etl
from heisttrace.scale.verify import compare_traces
from heisttrace.sources.evm import EvmBatch, evm_flows
from heisttrace.sources.parquet import ingest_parquet
from heisttrace.trace.run import run_trace

N_FLOWS = 30_000


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]", shuffle_partitions=2, app_name="heisttrace-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _label_all(ws, labels) -> None:  # type: ignore[no-untyped-def]
    for chain, address, entity, category in labels:
        ws.con.execute("INSERT INTO labels (chain, address, entity, category, source) "
                       "VALUES (?, ?, ?, ?, 'synth')", [chain, address, entity, category])


@pytest.fixture(scope="module")
def extracted(spark, tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("spark")
    ledger = make_ledger(N_FLOWS, seed=11)
    write_dataset(ledger.flows, root / "chain")
    write_etl(ledger, root / "etl")
    full = open_workspace(root / "full")
    with full.transaction():
        full.add_flows(ledger.flows)
        _label_all(full, ledger.labels)
    roles = address_roles(full, None)
    result = extract_neighbourhood(spark, [str(root / "chain")], [ledger.seed_tx],
                                   root / "out", roles=roles)
    local = open_workspace(root / "local")
    report = ingest_parquet(local, root / "out" / "flows")
    with local.transaction():
        _label_all(local, ledger.labels)
    yield ledger, full, local, result, report, root
    full.close()
    local.close()


def _assert_exact(ledger, full, local) -> None:  # type: ignore[no-untyped-def]
    """The shared check of scale/verify.py (the benchmark runs the same at 10M flows)."""
    cmp = compare_traces(full, local, [ledger.seed_tx])
    for policy, verdict in cmp.policies.items():
        assert verdict.exact, (policy, verdict.differences)
        # The scenario reaches every kind of end it was built with.
        assert {b for b, v in verdict.buckets.items() if v > 0} >= {
            "cashed_out", "dark", "dormant", "fees"}, policy
        assert verdict.deposit_addresses >= 5 and verdict.sinks_compared >= 20
    assert "haircut=yes fifo=yes" in cmp.line()


def test_neighbourhood_trace_equals_full_trace(extracted) -> None:
    ledger, full, local, result, report, _ = extracted
    assert 0 < result.kept < result.flows_in / 5, "the neighbourhood is a small part"
    assert report.flows_added == result.kept
    _assert_exact(ledger, full, local)


def test_compare_traces_sees_a_missing_flow(extracted, tmp_path: Path) -> None:
    """The check is not vacuous: drop one clean inflow of a reached holding and it fails."""
    ledger, full, _local, _result, _report, root = extracted
    kept = pq.read_table(root / "out" / "flows").select(FLOW_COLUMNS)
    deposit = ledger.deposit_addresses[-1]  # unlabelled: it sweeps on to an exchange
    background = "0x" + "0" * 8  # synth.py tags special addresses, background ones are 0
    clean_in = [i for i, r in enumerate(kept.to_pylist())
                if r["dst"] == deposit and r["asset"] == "ETH" and r["kind"] == "native"
                and r["src"].startswith(background)]
    assert clean_in
    lossy = kept.filter(pa.array([i != clean_in[0] for i in range(kept.num_rows)]))
    ws = open_workspace(tmp_path / "lossy")
    with ws.transaction():
        ws.add_flows(lossy)
        _label_all(ws, ledger.labels)
    cmp = compare_traces(full, ws, [ledger.seed_tx], policies=("haircut",))
    assert not cmp.exact and "haircut=no" in cmp.line()
    ws.close()


def test_etl_parquet_input_is_exact_too(spark, extracted, tmp_path: Path) -> None:
    """The same ledger as ethereum-etl tables: same neighbourhood, same exact trace."""
    ledger, full, _local, result, _report, root = extracted
    res = extract_neighbourhood(spark, [str(root / "etl")], [ledger.seed_tx], tmp_path / "out",
                                roles=address_roles(full, None))
    assert res.flows_in == result.flows_in and res.iterations == result.iterations
    from_flows = pq.read_table(root / "out" / "flows").select(FLOW_COLUMNS)
    from_etl = pq.read_table(tmp_path / "out" / "flows").select(FLOW_COLUMNS)
    key = lambda t: sorted(tuple(r.values()) for r in t.to_pylist())  # noqa: E731
    assert key(from_etl) == key(from_flows)
    assert "internal" in set(from_etl["kind"].to_pylist())
    local = open_workspace(tmp_path / "local")
    ingest_parquet(local, tmp_path / "out" / "flows")
    with local.transaction():
        _label_all(local, ledger.labels)
    _assert_exact(ledger, full, local)
    local.close()


def test_shuffle_joins_keep_the_same_flows(spark, extracted, tmp_path: Path) -> None:
    """Past `broadcast_rows` (2M holdings by default) the frontier and the reached set are
    joined by shuffle instead of broadcast: forced here, with Spark's own automatic
    broadcast off, the job keeps exactly the same flows."""
    ledger, full, _local, result, _report, root = extracted
    old = spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        res = extract_neighbourhood(spark, [str(root / "chain")], [ledger.seed_tx],
                                    tmp_path / "out", roles=address_roles(full, None),
                                    broadcast_rows=0)
    finally:
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", old)
    assert (res.kept, res.reached, res.iterations) == (result.kept, result.reached,
                                                       result.iterations)
    key = lambda t: sorted(tuple(r.values()) for r in t.to_pylist())  # noqa: E731
    assert key(pq.read_table(tmp_path / "out" / "flows").select(FLOW_COLUMNS)) == key(
        pq.read_table(root / "out" / "flows").select(FLOW_COLUMNS))


def test_manifest_has_round_statistics(extracted) -> None:
    _ledger, _full, _local, result, _report, root = extracted
    manifest = json.loads((root / "out" / "manifest.json").read_text())
    rounds = manifest["rounds"]
    assert len(rounds) == manifest["iterations"] == result.iterations
    assert [r["round"] for r in rounds] == list(range(1, len(rounds) + 1))
    assert rounds[-1]["newly_reached"] == rounds[-1]["reached_earlier"] == 0  # the fixpoint
    # Each round expands what the previous one reached (new or earlier than before).
    for prev, cur in zip(rounds, rounds[1:], strict=False):
        assert cur["frontier"] == prev["newly_reached"] + prev["reached_earlier"]
    assert all(r["seconds"] >= 0 for r in rounds)
    # Spark 4 exposes shuffle bytes; -1 would mean "not available" and is allowed by the format.
    assert all(isinstance(r["shuffle_write_bytes"], int) for r in rounds)
    assert any(r["shuffle_write_bytes"] > 0 for r in rounds)
    assert manifest["movable"] < manifest["flows_in"]
    assert manifest["input_partitions"] >= 1 and manifest["shuffle_partitions"] == 2
    assert set(manifest["stage_seconds"]) >= {"read_and_key", "seeds", "rounds",
                                             "select_and_write"}


def test_extraction_cuts_history_needed_for_haircut(extracted) -> None:
    """Without the clean inflows of reached holdings the haircut shares would differ."""
    ledger, full, _local, _result, _report, root = extracted
    kept = pq.read_table(root / "out" / "flows").select(FLOW_COLUMNS)
    # Only the flows that carry taint in the full trace: not enough for an exact answer.
    run_trace(full, "edges", [ledger.seed_tx], policy="haircut")
    edge_keys = {(t, o) for t, o in full.con.execute(
        "SELECT tx_hash, ordinal FROM case_edges WHERE case_name = 'edges'").fetchall()}
    kept_keys = set(zip(kept["tx_hash"].to_pylist(), kept["ordinal"].to_pylist(), strict=True))
    assert edge_keys < kept_keys
    manifest = json.loads((root / "out" / "manifest.json").read_text())
    assert manifest["kept"] == kept.num_rows and manifest["iterations"] >= 3
    assert manifest["hubs"] == []


def test_hubs_and_hop_limit_reported(spark, extracted, tmp_path: Path) -> None:
    ledger, full, _local, result, _report, root = extracted
    roles = address_roles(full, None)
    hubbed = extract_neighbourhood(spark, [str(root / "chain")], [ledger.seed_tx],
                                   tmp_path / "hub", roles=roles, hub_limit=5)
    # The thief splits into 12 intermediaries: more than 5 outflows make it a hub, not followed.
    thief = {r["dst"] for r in ledger.flows.to_pylist()
             if r["tx_hash"] == ledger.seed_tx and r["kind"] != "fee"}
    assert {h["address"] for h in hubbed.hubs} == thief
    assert all(h["fan_out"] > 5 for h in hubbed.hubs)
    assert hubbed.iterations == 1 and not hubbed.hop_limit_hit
    assert hubbed.kept < result.kept
    # The command line, with labels from a workspace, stopped after two rounds.
    res = CliRunner().invoke(app, ["spark-extract", "-i", str(root / "chain"), "-s",
                                   ledger.seed_tx, "-o", str(tmp_path / "hops"),
                                   "--max-hops", "2", "--master", "local[2]",
                                   "--labels-from-workspace", "-w", str(root / "full"), "--json"])
    assert res.exit_code == 0, res.output
    capped = SimpleNamespace(**json.loads(res.output))
    assert capped.iterations == 2 and capped.hop_limit_hit and capped.hubs == []
    assert hubbed.kept < capped.kept < result.kept


def test_bad_input_is_a_clear_error(spark, extracted, tmp_path: Path) -> None:
    ledger, _full, _local, _result, _report, root = extracted
    runner = CliRunner()
    missing = runner.invoke(app, ["spark-extract", "-i", str(tmp_path / "nope"), "-s",
                                  ledger.seed_tx, "-o", str(tmp_path / "o1")])
    assert missing.exit_code != 0
    assert isinstance(missing.exception, InputError) and "does not exist" in str(
        missing.exception)
    unknown = runner.invoke(app, ["spark-extract", "-i", str(root / "chain"), "-s",
                                  "0x" + "ab" * 32, "-o", str(tmp_path / "o2")])
    assert isinstance(unknown.exception, InputError) and "no seed" in str(unknown.exception)
    assert not (tmp_path / "o2").exists()


def _etl_tables() -> dict[str, pa.Table]:
    """Hand-made ethereum-etl rows covering each mapping rule (fees, failed tx, creation,
    internal transfers under a failed frame, delegatecall, tokens, trace order 2 < 10)."""
    a = [f"0x{i:040x}" for i in range(1, 10)]
    h = [f"0x{i:064x}" for i in range(1, 6)]
    txs = {
        "hash": h[:4], "block_number": ["100", "100", "101", "101"],
        "transaction_index": ["0", "1", "0", "1"], "from_address": [a[0], a[1], a[2], a[3]],
        "to_address": [a[4], a[5], "", a[6]], "value": ["1000", "5", "7", "0"],
        "gas_price": ["20", "20", "30", "30"], "receipt_gas_used": ["21000", "50000", "90000",
                                                                   "40000"],
        "receipt_effective_gas_price": ["10", "", "25", ""],
        "receipt_status": ["1", "0", "1", "1"],
        "receipt_contract_address": ["", "", a[7], ""],
        "block_timestamp": ["1600000000", "1600000000", "1600000012", "1600000012"],
    }
    traces = {
        "block_number": ["101"] * 6, "transaction_hash": [h[3]] * 6,
        "transaction_index": ["1"] * 6,
        "from_address": [a[3], a[6], a[6], a[6], a[6], a[8]],
        "to_address": [a[6], a[8], a[5], a[4], a[2], a[1]],
        "value": ["0", "3", "4", "9", "6", "2"],
        "trace_type": ["call"] * 6,
        "call_type": ["call", "call", "delegatecall", "call", "call", "call"],
        "trace_address": ["", "10", "1", "2", "3", "3,0"],
        "error": ["", "", "", "", "Reverted", ""], "status": ["1", "1", "1", "1", "0", "0"],
        "block_timestamp": ["1600000012"] * 6,
    }
    tokens = {
        "token_address": [a[8]], "from_address": [a[0]], "to_address": [a[1]],
        "value": ["000123"], "transaction_hash": [h[0]], "log_index": ["4"],
        "block_number": ["100"], "transaction_index": ["0"], "block_timestamp": ["1600000000"],
    }
    return {name: pa.table({k: pa.array(v, pa.string()) for k, v in cols.items()})
            for name, cols in (("transactions", txs), ("traces", traces),
                               ("token_transfers", tokens))}


def test_etl_parquet_maps_like_the_local_importer(spark, tmp_path: Path) -> None:
    """ethereum-etl tables as Parquet give the same flows as sources/evm.py on the same rows."""
    from heisttrace.scale.etl_spark import read_inputs

    tables = _etl_tables()
    root = tmp_path / "etl"
    for table, t in tables.items():
        (root / table / "date=2020-09-13").mkdir(parents=True)
        pq.write_table(t, root / table / "date=2020-09-13" / "part-0.parquet")
    want = evm_flows(EvmBatch(**tables))
    got = read_inputs(spark, [str(root)]).toArrow()
    assert want.num_rows >= 6
    rows = lambda t: sorted(tuple(r.values()) for r in t.select(FLOW_COLUMNS).to_pylist())  # noqa: E731
    assert rows(got) == rows(want)


def test_cli_extract_and_ingest(extracted, tmp_path: Path) -> None:
    ledger, full, _local, result, _report, root = extracted
    out = tmp_path / "cli-out"
    ws = tmp_path / "ws"
    runner = CliRunner()
    shutil.copytree(root / "out" / "flows", out / "flows")
    res = runner.invoke(app, ["ingest", "parquet", str(out / "flows"), "-w", str(ws), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["flows_added"] == result.kept
    again = runner.invoke(app, ["ingest", "parquet", str(out / "flows"), "-w", str(ws),
                                "--json"])
    assert json.loads(again.output)["flows_added"] == 0
    bad = runner.invoke(app, ["ingest", "parquet", str(root / "nope"), "-w", str(ws)])
    assert bad.exit_code != 0


def test_workspace_export_is_spark_input(spark, extracted, tmp_path: Path) -> None:
    """`export-parquet` of a workspace reads back in Spark as the same flows."""
    from heisttrace.scale.etl_spark import read_inputs
    from heisttrace.scale.export import export_parquet

    ledger, full, *_ = extracted
    report = export_parquet(full, tmp_path / "export")
    assert report.flows == ledger.flows.num_rows
    got = read_inputs(spark, [str(tmp_path / "export")]).toArrow()
    key = lambda t: sorted(tuple(r.values()) for r in t.select(FLOW_COLUMNS).to_pylist())  # noqa: E731
    assert key(got) == key(ledger.flows)
