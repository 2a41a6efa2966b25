"""The one-pass first import of `ingest etl` stores exactly what the checked (anti-join) path does.

A chain's first import maps and inserts in one statement; any later import, repeats inside the
input and flows without time or index go the checked way. Both ways must give the same rows.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from heisttrace.errors import InputError
from heisttrace.ledger import Workspace, open_workspace
from heisttrace.sources import evm
from heisttrace.sources.etl import _open_csv, etl_files, ingest_etl
from tests.shared_data import ETL_FIXTURES, REPO
from tests.test_ingest_etl_files import etl_folder, snapshot


def _bench_generate(folder: Path, rows: int, upper: bool = True) -> None:
    """The benchmark's synthetic export (upper-case addresses unless told otherwise, failed
    txs, receipt columns inline)."""
    spec = importlib.util.spec_from_file_location("bench_ingest", REPO / "benchmarks" /
                                                  "bench_ingest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(folder, rows, upper=upper)


def _store(ws: Workspace, folder: Path, one_pass: bool) -> tuple[evm.StoreResult, bool]:
    """store_prepared on a folder; also says whether the one-pass insert was taken."""
    con = ws.con
    files = etl_files(folder)
    relations = {}
    for table, path in files.items():
        _open_csv(con, f"_etl_{table}", path)
        relations[table] = f"_etl_{table}"
    taken = []
    original = evm._store_flows_first

    def spy(*args):  # type: ignore[no-untyped-def]
        taken.append(original(*args))
        return taken[-1]

    evm._store_flows_first = spy
    try:
        with ws.transaction():
            prep = evm.prepare(con, relations, {t: str(p) for t, p in files.items()},
                               materialize=True)
            try:
                res = evm.store_prepared(con, prep, "ethereum",
                                         segment_of=ws if one_pass else None)
            finally:
                prep.drop()
    finally:
        evm._store_flows_first = original
        for name in relations.values():
            con.execute(f"DROP VIEW IF EXISTS {name}")
    return res, bool(taken and taken[0])


def _rows(ws: Workspace) -> list[tuple]:
    return ws.con.execute("SELECT * FROM flows ORDER BY chain, tx_hash, ordinal").fetchall()


@pytest.mark.parametrize("source", ["fixture", "synthetic"])
def test_one_pass_equals_checked_path(tmp_path: Path, source: str) -> None:
    if source == "fixture":
        folder = etl_folder(tmp_path)
    else:
        folder = tmp_path / "export"
        folder.mkdir()
        _bench_generate(folder, 20_000)
    with open_workspace(tmp_path / "a") as fast, open_workspace(tmp_path / "b") as checked:
        res_fast, took = _store(fast, folder, one_pass=True)
        res_checked, took_checked = _store(checked, folder, one_pass=False)
        assert took and not took_checked
        assert res_fast.flows_added == res_checked.flows_added == res_checked.flows_seen > 0
        assert res_fast.logs_added == res_checked.logs_added
        assert _rows(fast) == _rows(checked)
        assert snapshot(fast)[:2] == snapshot(checked)[:2]


def test_second_import_takes_the_checked_path_and_adds_nothing(tmp_path: Path) -> None:
    folder = etl_folder(tmp_path)
    with open_workspace(tmp_path / "ws") as ws:
        first, took_first = _store(ws, folder, one_pass=True)
        rows = _rows(ws)
        second, took_second = _store(ws, folder, one_pass=True)
        assert took_first and not took_second
        assert first.flows_added > 0 and second.flows_added == 0
        assert second.flows_seen == first.flows_seen
        assert _rows(ws) == rows


def test_repeated_rows_fall_back_to_distinct(tmp_path: Path) -> None:
    """A token transfer listed twice: the one-pass insert undoes itself, DISTINCT ON keeps one."""
    folder = etl_folder(tmp_path)
    path = folder / "token_transfers.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    with open_workspace(tmp_path / "a") as fast, open_workspace(tmp_path / "b") as checked:
        res, took = _store(fast, folder, one_pass=True)
        res_checked, _ = _store(checked, folder, one_pass=False)
        assert not took
        assert res.flows_seen == res.flows_added + 1
        assert (res.flows_seen, res.flows_added) == (res_checked.flows_seen,
                                                     res_checked.flows_added)
        assert _rows(fast) == _rows(checked)
        tx = lines[1].split(",")
        assert fast.con.execute(
            "SELECT count(*) FROM flows WHERE kind = 'token' AND tx_hash = ?",
            [next(v for v in tx if len(v) == 66)],
        ).fetchone()[0] == 1


def test_missing_block_time_in_one_pass_is_named_and_changes_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    """The one-pass insert aborts DuckDB's transaction; the error still names what is missing."""
    (tmp_path / "other").mkdir()
    ingest_etl(workspace, etl_folder(tmp_path / "other"), chain="other")
    before = snapshot(workspace)
    folder = tmp_path / "traces"
    folder.mkdir()
    shutil.copy(ETL_FIXTURES / "test_export_traces_job" / "block_with_suicide" /
                "expected_traces.csv", folder / "traces.csv")
    with pytest.raises(InputError, match="no timestamp for block 1011973.*blocks.csv"):
        ingest_etl(workspace, folder)
    assert snapshot(workspace) == before
    # The connection is usable and its settings are back as they were.
    assert workspace.con.execute(
        "SELECT current_setting('preserve_insertion_order')"
    ).fetchone()[0] is True
    (folder / "blocks.csv").write_text("number,timestamp\n1011973,1455000000\n")
    assert ingest_etl(workspace, folder).flows_added == 1
