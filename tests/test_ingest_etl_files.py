"""`ingest_etl` on folders of real ethereum-etl CSVs: same flows as the mapping, idempotent, atomic."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from heisttrace.errors import InputError
from heisttrace.ledger import Workspace
from heisttrace.sources.etl import ingest_etl
from heisttrace.sources.evm import evm_flows
from tests.conftest import ETL_FIXTURES
from tests.test_evm_mapping import (
    BLOCK_483920,
    RECEIPTS_483920,
    TRANSFERS_483920,
    block_483920,
)


def etl_folder(tmp_path: Path) -> Path:
    """One real block (483920) exported by ethereum-etl, as an export folder would hold it."""
    folder = tmp_path / "export"
    folder.mkdir()
    shutil.copy(BLOCK_483920 / "expected_blocks.csv", folder / "blocks.csv")
    shutil.copy(BLOCK_483920 / "expected_transactions.csv", folder / "transactions.csv")
    shutil.copy(RECEIPTS_483920 / "expected_receipts.csv", folder / "receipts.csv")
    shutil.copy(RECEIPTS_483920 / "expected_logs.csv", folder / "logs.csv")
    shutil.copy(TRANSFERS_483920 / "expected_token_transfers.csv", folder / "token_transfers.csv")
    (folder / "tokens.csv").write_text(
        "address,symbol,name,decimals,total_supply,block_number\n"
        "0xf4eced2f682ce333f96f2d8966c613ded8fc95dd,TKN,Token,2,1000000,\n"
    )
    return folder


def snapshot(ws: Workspace) -> tuple:
    """Counts and an order-independent checksum of every table an import writes, and the
    ledger's segment files."""
    out: list[object] = []
    for table in ("flows", "evm_logs", "tokens", "imports", "flow_segments"):
        out.append(ws.con.execute(
            f"SELECT count(*), coalesce(sum(hash(t::VARCHAR)), 0) FROM {table} t"
        ).fetchone())
    out.append(sorted(p.name for p in (ws.path / "segments").glob("*")))
    return tuple(out)


def test_ingest_etl_gives_the_mapping_flows_and_tokens(workspace: Workspace, tmp_path: Path) -> None:
    report = ingest_etl(workspace, etl_folder(tmp_path))
    expected = evm_flows(block_483920())
    got = workspace.flows()
    assert sorted(got.to_pylist(), key=lambda r: r["ordinal"]) == expected.to_pylist()
    assert report.flows_added == report.flows_seen == expected.num_rows
    assert report.tokens_added == 1
    assert workspace.con.execute("SELECT symbol, decimals FROM tokens").fetchall() == [("TKN", 2)]
    assert workspace.con.execute("SELECT source, rows FROM imports").fetchall() == [
        ("etl", expected.num_rows)
    ]


def test_ingest_twice_adds_nothing(workspace: Workspace, tmp_path: Path) -> None:
    folder = etl_folder(tmp_path)
    first = ingest_etl(workspace, folder)
    before = snapshot(workspace)
    second = ingest_etl(workspace, folder)
    assert first.flows_added > 0
    assert second.flows_added == 0 and second.duplicates == first.flows_seen
    assert snapshot(workspace)[:3] == before[:3]


def test_traces_csv_pre_byzantium_failure(workspace: Workspace, tmp_path: Path) -> None:
    """Traces alone (block 1011973, a suicide) need the block time: blocks.csv."""
    folder = tmp_path / "traces"
    folder.mkdir()
    shutil.copy(ETL_FIXTURES / "test_export_traces_job" / "block_with_suicide" /
                "expected_traces.csv", folder / "traces.csv")
    with pytest.raises(InputError, match="blocks.csv"):
        ingest_etl(workspace, folder)
    assert workspace.count_flows() == 0
    (folder / "blocks.csv").write_text("number,timestamp\n1011973,1455000000\n")
    report = ingest_etl(workspace, folder)
    assert report.flows_added == 1
    assert workspace.flows().column("kind").to_pylist() == ["internal"]


@pytest.mark.parametrize(
    ("file", "mutate", "line", "field"),
    [
        # a non-hex address on line 3 of transactions.csv
        ("transactions.csv", lambda ls: ls.__setitem__(2, ls[2].replace(
            "0x9b22a80d5c7b3374a05b446081f97d0a34079e7f", "0x9b22a80d5c7b3374a05b446081f97d0a3407zz")),
         3, "from_address"),
        # a negative token value
        ("token_transfers.csv", lambda ls: ls.__setitem__(2, ls[2].replace(",200000,", ",-200000,")),
         3, "value"),
        # a missing column
        ("receipts.csv", lambda ls: ls.__setitem__(0, ls[0].replace("transaction_hash", "tx")),
         None, "transaction_hash"),
    ],
)
def test_bad_file_names_file_line_field_and_leaves_workspace_unchanged(
    workspace: Workspace, tmp_path: Path, file: str, mutate, line: int | None, field: str
) -> None:
    # Something already in the workspace, which must survive untouched.
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(ETL_FIXTURES / "test_export_blocks_job" / "blocks_with_transactions" /
                "expected_transactions.csv", other / "transactions.csv")
    ingest_etl(workspace, other)
    before = snapshot(workspace)
    assert before[0][0] > 0

    folder = etl_folder(tmp_path)
    lines = (folder / file).read_text().splitlines()
    mutate(lines)
    (folder / file).write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        ingest_etl(workspace, folder)
    assert err.value.file == str(folder / file)
    assert err.value.field == field
    assert err.value.line == line
    assert snapshot(workspace) == before


def test_truncated_csv_is_an_error_and_changes_nothing(workspace: Workspace, tmp_path: Path) -> None:
    folder = etl_folder(tmp_path)
    text = (folder / "transactions.csv").read_text()
    (folder / "transactions.csv").write_text(text[: len(text) // 2])  # cut mid-row
    before = snapshot(workspace)
    with pytest.raises(InputError) as err:
        ingest_etl(workspace, folder)
    assert "transactions.csv" in str(err.value)
    assert snapshot(workspace) == before


def test_bad_tokens_csv(workspace: Workspace, tmp_path: Path) -> None:
    folder = etl_folder(tmp_path)
    (folder / "tokens.csv").write_text("address,symbol,name,decimals\n0xabc,X,X,18\n")
    with pytest.raises(InputError) as err:
        ingest_etl(workspace, folder)
    assert (err.value.line, err.value.field) == (2, "address")
    assert workspace.count_flows() == 0


def test_empty_or_missing_folder(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no ethereum-etl CSV"):
        ingest_etl(workspace, tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        ingest_etl(workspace, tmp_path / "nope")


def test_watched_logs_land_in_evm_logs_once(workspace: Workspace, tmp_path: Path) -> None:
    folder = etl_folder(tmp_path)
    deposit = "0xe1fffcc4923d04b559f4d29a8bfc6cda04eb5b0d3c460751c2402c5c5cc9109c"
    with open(folder / "logs.csv", "a") as fh:
        fh.write(f"9,0x463d53f0ad57677a3b430a007c1c31d15d62c37fab5eee598551697c297c235c,2,"
                 f"0x246edb4b351d93c27926f4649bcf6c24366e2a7c7c718dc9158eea20c03bc6ae,483920,"
                 f"0x9e669f970ec0f49bb735f20799a7e7c4a1c274e2,0x01,\"{deposit},0x{'00' * 32}\"\n")
    assert ingest_etl(workspace, folder).logs_added == 1
    assert ingest_etl(workspace, folder).logs_added == 0
    row = workspace.con.execute("SELECT block, time, log_index, topic0, len(topics) FROM evm_logs"
                                ).fetchall()
    assert row == [(483920, 1446561880, 9, deposit[2:], 2)]
