"""`ingest parquet`: FLOW_SCHEMA Parquet into a workspace, all or nothing, idempotent."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from heisttrace.errors import InputError
from heisttrace.ledger import open_workspace
from heisttrace.scale.synth import make_ledger, write_dataset
from heisttrace.sources.parquet import ingest_parquet


def test_partitioned_dataset_round_trip(tmp_path: Path) -> None:
    ledger = make_ledger(3000, seed=3)
    write_dataset(ledger.flows, tmp_path / "ds")
    assert any(p.name.startswith("date=") for p in (tmp_path / "ds").iterdir())
    with open_workspace(tmp_path / "ws") as ws:
        first = ingest_parquet(ws, tmp_path / "ds")
        assert first.flows_added == ledger.flows.num_rows
        again = ingest_parquet(ws, tmp_path / "ds")
        assert again.flows_added == 0 and again.duplicates == ledger.flows.num_rows
        back = ws.con.execute("SELECT * FROM flows").fetch_arrow_table()
    key = lambda t: sorted(tuple(r.values()) for r in t.to_pylist())  # noqa: E731
    assert key(back) == key(ledger.flows)


def test_bad_value_names_file_and_field_and_changes_nothing(tmp_path: Path) -> None:
    ledger = make_ledger(1000, seed=5)
    (tmp_path / "ds").mkdir()
    good = ledger.flows.slice(0, 500)
    bad = ledger.flows.slice(500, 10)
    amounts = bad["amount_out"].to_pylist()
    amounts[3] = "12.5"
    bad = bad.set_column(bad.schema.get_field_index("amount_out"), "amount_out",
                         pa.array(amounts, pa.string()))
    pq.write_table(good, tmp_path / "ds" / "a.parquet")
    pq.write_table(bad, tmp_path / "ds" / "b.parquet")
    with open_workspace(tmp_path / "ws") as ws:
        with pytest.raises(InputError) as err:
            ingest_parquet(ws, tmp_path / "ds")
        assert "b.parquet" in str(err.value) and "amount_out" in str(err.value)
        assert ws.count_flows() == 0
        pq.write_table(good.drop(["kind"]), tmp_path / "ds" / "b.parquet")
        with pytest.raises(InputError, match="kind"):
            ingest_parquet(ws, tmp_path / "ds")
        assert ws.count_flows() == 0
        (tmp_path / "empty").mkdir()
        with pytest.raises(InputError, match="no .parquet"):
            ingest_parquet(ws, tmp_path / "empty")
        with pytest.raises(InputError, match="no such"):
            ingest_parquet(ws, tmp_path / "missing")


def test_export_parquet_round_trip_through_the_cli(tmp_path: Path) -> None:
    """`export-parquet` writes what `ingest parquet` (and spark-extract) read back unchanged."""
    import json

    from typer.testing import CliRunner

    from heisttrace.cli import app

    ledger = make_ledger(3000, seed=4)
    with open_workspace(tmp_path / "ws") as ws, ws.transaction():
        ws.add_flows(ledger.flows)
    runner = CliRunner()
    out = tmp_path / "export"
    res = runner.invoke(app, ["export-parquet", str(out), "-w", str(tmp_path / "ws"), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["flows"] == ledger.flows.num_rows and report["days"] >= 1
    days = sorted(p.name for p in out.iterdir())
    assert days and all(d.startswith("date=") for d in days)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no partial left
    with open_workspace(tmp_path / "ws2") as ws2:
        assert ingest_parquet(ws2, out).flows_added == ledger.flows.num_rows
        back = ws2.con.execute("SELECT * FROM flows").fetch_arrow_table()
    key = lambda t: sorted(tuple(r.values()) for r in t.to_pylist())  # noqa: E731
    assert key(back) == key(ledger.flows)
    # The UTC day of each flow is its partition.
    one = pq.read_table(next(out.rglob("*.parquet")))
    from datetime import datetime, timezone
    folder = next(out.rglob("*.parquet")).parent.name
    assert {datetime.fromtimestamp(t, timezone.utc).strftime("date=%Y-%m-%d")
            for t in one["time"].to_pylist()} == {folder}
    # A non-empty OUT is refused unless --overwrite.
    again = runner.invoke(app, ["export-parquet", str(out), "-w", str(tmp_path / "ws")])
    assert again.exit_code != 0 and "not empty" in str(again.exception)
    over = runner.invoke(app, ["export-parquet", str(out), "-w", str(tmp_path / "ws"),
                               "--overwrite", "--json"])
    assert over.exit_code == 0 and json.loads(over.output)["files"] == report["files"]
