"""The ledger's Parquet segments: a chain's first bulk import, read with `flow_rows` as `flows`.

Checked here: what a segment holds equals what the table path stores; files appear only with
a commit; deletions rewrite a segment (and roll back with the transaction); workspaces from
before segments are migrated; a moved workspace still reads its segments.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from heisttrace.ledger import open_workspace
from heisttrace.ledger.workspace import Workspace
from heisttrace.sources.etl import ingest_etl
from heisttrace.labels.roles import address_roles
from heisttrace.trace.encode import encode_ledger
from test_ingest_etl_files import etl_folder as _etl_folder


def etl_folder(where: Path) -> Path:
    """A fresh copy of the real ethereum-etl export under `where`."""
    where.mkdir(parents=True, exist_ok=True)
    return _etl_folder(where)


def _flows(ws: Workspace) -> list[tuple]:
    return ws.con.execute("SELECT * FROM flows ORDER BY ALL").fetchall()


def _files(ws: Workspace) -> list[str]:
    return sorted(p.name for p in (ws.path / "segments").glob("*"))


@pytest.fixture
def imported(tmp_path: Path) -> Workspace:
    ws = open_workspace(tmp_path / "ws")
    ingest_etl(ws, etl_folder(tmp_path / "first"))
    yield ws
    ws.close()


def test_first_import_is_one_segment_equal_to_the_table_path(imported: Workspace,
                                                             tmp_path: Path) -> None:
    segs = imported.con.execute("SELECT chain, rows, file FROM flow_segments").fetchall()
    assert len(segs) == 1 and segs[0][0] == "ethereum" and segs[0][1] > 0
    assert _files(imported) == [Path(segs[0][2]).name]
    assert imported.con.execute("SELECT count(*) FROM flow_rows").fetchone()[0] == 0
    # the same export into a workspace whose chain already has a flow takes the table path
    with open_workspace(tmp_path / "table") as other:
        other.con.execute("INSERT INTO flow_rows VALUES ('ethereum', 0, 0, 0, '0x00', 'a', 'b', "
                          "'ETH', '1', '1', 'native', NULL, NULL)")
        ingest_etl(other, etl_folder(tmp_path / "again"))
        assert _files(other) == []
        other.con.execute("DELETE FROM flow_rows WHERE tx_hash = '0x00'")
        assert _flows(other) == _flows(imported)
    # importing again adds nothing and writes no file
    before = _flows(imported)
    assert ingest_etl(imported, etl_folder(tmp_path / "third")).flows_added == 0
    assert _flows(imported) == before and len(_files(imported)) == 1


def test_rid_numbers_every_flow_once(imported: Workspace) -> None:
    imported.con.execute("INSERT INTO flow_rows VALUES ('other', 0, 0, 0, '0x00', 'a', 'b', "
                         "'ETH', '1', '1', 'native', NULL, NULL)")
    n, distinct, rows = imported.con.execute(
        "SELECT count(*), count(DISTINCT rid), (SELECT count(*) FROM flows) FROM flows_rid"
    ).fetchone()
    assert n == distinct == rows
    enc = encode_ledger(imported, address_roles(imported))
    assert enc.src.shape[0] == rows


def test_delete_rewrites_the_segment_and_rolls_back(imported: Workspace) -> None:
    before = _flows(imported)
    files = _files(imported)
    fees = [r for r in before if r[10] == "fee"]
    assert fees
    try:
        with imported.transaction():
            imported.delete_flows("kind = ?", ["fee"])
            assert imported.con.execute(
                "SELECT count(*) FROM flows WHERE kind = 'fee'").fetchone()[0] == 0
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    assert _flows(imported) == before and _files(imported) == files
    imported.delete_flows("kind = ?", ["fee"])
    after = _flows(imported)
    assert after == [r for r in before if r[10] != "fee"]
    assert len(_files(imported)) == 1 and _files(imported) != files
    assert imported.con.execute("SELECT rows FROM flow_segments").fetchone()[0] == len(after)
    # a correlated condition naming `flows`, as conversions.clear writes it
    imported.delete_flows("EXISTS (SELECT 1 FROM (SELECT ?::VARCHAR AS h) x "
                          "WHERE x.h = flows.tx_hash)", [after[0][4]])
    assert _flows(imported) == [r for r in after if r[4] != after[0][4]]
    # deleting all it holds removes the segment, file and row
    imported.delete_flows("true")
    assert _flows(imported) == [] and _files(imported) == []
    assert imported.con.execute("SELECT count(*) FROM flow_segments").fetchone()[0] == 0


def test_unregistered_files_do_not_survive(imported: Workspace) -> None:
    files = _files(imported)
    with pytest.raises(RuntimeError):
        with imported.transaction():
            imported.write_segment("SELECT * FROM flows")
            raise RuntimeError("abort")
    with imported.transaction():
        imported.write_segment("SELECT * FROM flows LIMIT 3")  # written, never registered
    assert _files(imported) == files
    with pytest.raises(RuntimeError):
        imported.write_segment("SELECT * FROM flows")  # outside a transaction
    # a crash between writing and committing leaves a file: the next writable open removes it
    orphan = imported.path / "segments" / "crashed.parquet"
    shutil.copy(imported.path / "segments" / files[0], orphan)
    imported.close()
    with open_workspace(imported.path) as again:
        assert _files(again) == files


def test_workspace_from_before_segments_is_migrated(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    con = duckdb.connect(str(old / "heisttrace.duckdb"))
    con.execute("CREATE TABLE flows (chain VARCHAR NOT NULL, block BIGINT NOT NULL, time BIGINT "
                "NOT NULL, ordinal BIGINT NOT NULL, tx_hash VARCHAR NOT NULL, src VARCHAR NOT "
                "NULL, dst VARCHAR NOT NULL, asset VARCHAR NOT NULL, amount_out VARCHAR NOT "
                "NULL, amount_in VARCHAR NOT NULL, kind VARCHAR NOT NULL, dst_chain VARCHAR, "
                "dst_asset VARCHAR)")
    con.execute("INSERT INTO flows VALUES ('ethereum', 1, 1, 1, '0x01', 'a', 'b', 'ETH', '5', "
                "'5', 'native', NULL, NULL)")
    con.close()
    with open_workspace(old, read_only=True) as ro:  # read-only: read as it is
        assert ro.count_flows() == 1
        assert ro.con.execute("SELECT count(rid) FROM flows_rid").fetchone()[0] == 1
    with open_workspace(old) as ws:
        assert ws.con.execute("SELECT count(*) FROM flow_rows").fetchone()[0] == 1
        assert ws.con.execute("SELECT count(*) FROM ledger").fetchone()[0] == 1
        ingest_etl(ws, etl_folder(tmp_path / "x"))
        assert ws.count_flows() > 1


def test_moved_workspace_reads_its_segments(imported: Workspace, tmp_path: Path) -> None:
    flows = _flows(imported)
    imported.close()
    moved = tmp_path / "moved"
    shutil.move(str(imported.path), moved)
    with open_workspace(moved, read_only=True) as ro:
        assert _flows(ro) == flows
        assert ro.con.execute("SELECT count(*) FROM flows_rid").fetchone()[0] == len(flows)
    with open_workspace(moved) as ws:
        assert _flows(ws) == flows


@pytest.mark.parametrize("min_flows", [1, 10**12])
def test_a_later_large_import_is_a_segment_of_its_new_flows(tmp_path: Path, min_flows: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A second export of the same chain, overlapping the first: its new flows become a
    segment of their own when there are enough of them (else rows); either way the ledger
    is the same, and importing it again adds nothing and no file."""
    from heisttrace.sources import evm
    from test_ingest_etl_onepass_files import _bench_generate

    exports = []
    for rows in (8_000, 20_000):  # the second repeats the first's keys with other values
        folder = tmp_path / f"export{rows}"
        folder.mkdir()
        _bench_generate(folder, rows)
        exports.append(folder)
    monkeypatch.setattr(evm, "SEGMENT_MIN_FLOWS", min_flows)
    with open_workspace(tmp_path / "ws") as ws, open_workspace(tmp_path / "rows") as ref:
        first = ingest_etl(ws, exports[0]).flows_added
        second = ingest_etl(ws, exports[1])
        assert 0 < second.flows_added < second.flows_seen
        assert ws.count_flows() == first + second.flows_added
        segments = 2 if min_flows == 1 else 1
        assert len(_files(ws)) == segments
        # the reference: everything through the table path
        monkeypatch.setattr(evm, "SEGMENT_MIN_FLOWS", 10**12)
        ref.con.execute("INSERT INTO flow_rows VALUES ('ethereum', 0, 0, 0, '0x00', 'a', 'b', "
                        "'ETH', '1', '1', 'native', NULL, NULL)")
        for folder in exports:
            ingest_etl(ref, folder)
        ref.con.execute("DELETE FROM flow_rows WHERE tx_hash = '0x00'")
        assert _flows(ws) == _flows(ref)
        monkeypatch.setattr(evm, "SEGMENT_MIN_FLOWS", min_flows)
        assert ingest_etl(ws, exports[1]).flows_added == 0
        assert len(_files(ws)) == segments


def test_a_segment_that_cannot_be_written_is_a_clear_error_and_changes_nothing(
        tmp_path: Path) -> None:
    """`segments` taken by a file (as a full disk or a read-only folder would stop it): the
    import says which file it could not write, exits non-zero and the workspace is as before."""
    import subprocess
    import sys

    from test_ingest_etl_files import snapshot

    ws_path = tmp_path / "ws"
    with open_workspace(ws_path) as ws:
        before = snapshot(ws)
    (ws_path / "segments").write_text("not a folder")
    exe = Path(sys.executable).with_name("heisttrace")
    done = subprocess.run([str(exe), "ingest", "etl", str(etl_folder(tmp_path / "e")), "-w",
                           str(ws_path)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 1
    assert "cannot write the ledger segment" in done.stderr and "segments" in done.stderr
    assert "Traceback" not in done.stderr
    (ws_path / "segments").unlink()
    with open_workspace(ws_path) as ws:
        assert snapshot(ws) == before
