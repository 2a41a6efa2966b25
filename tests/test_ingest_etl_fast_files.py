"""The guarded one-pass import of `ingest etl` (fast guards, token_transfers streamed from the CSV).

A bad cell anywhere aborts the pass; the precise check then names file, line and field, and the
workspace and the connection's settings are exactly as before. What the pass stores is what
the checked path (temp tables, precise checks, anti-join) stores.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heisttrace.errors import InputError
from heisttrace.ledger import Workspace, open_workspace
from heisttrace.sources import evm
from heisttrace.sources.etl import _read_once, etl_files, ingest_etl
from tests.test_ingest_etl_files import etl_folder, snapshot
from tests.test_ingest_etl_onepass_files import _bench_generate, _rows, _store

def _settings(ws: Workspace) -> tuple:
    """The settings the import changes; memory_limit to 0.1 GiB (it reads back rounded)."""
    limit, order, disabled, optimizers = ws.con.execute(
        "SELECT current_setting('memory_limit'), current_setting('preserve_insertion_order'), "
        "current_setting('disabled_compression_methods'), current_setting('disabled_optimizers')"
    ).fetchone()
    number, unit = limit.split()
    return (round(float(number) * {"MiB": 1 / 1024, "GiB": 1.0}[unit], 0), order, disabled,
            optimizers)


@pytest.fixture(scope="module")
def bench_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bench") / "export"
    folder.mkdir()
    _bench_generate(folder, 40_000)
    return folder


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.fixture(scope="module")
def lower_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bench") / "export"
    folder.mkdir()
    _bench_generate(folder, 40_000, upper=False)
    return folder


@pytest.mark.parametrize("hexcase", ["upper", "lower"])
def test_fast_import_equals_checked_path(tmp_path: Path, bench_export: Path, lower_export: Path,
                                         hexcase: str) -> None:
    """Upper-case addresses: proven clean, lowercased; lower case: proven, left as they are."""
    if hexcase == "lower":
        bench_export = lower_export
    with open_workspace(tmp_path / "a") as fast, open_workspace(tmp_path / "b") as checked:
        settings = _settings(fast)
        report = ingest_etl(fast, bench_export)
        res, took = _store(checked, bench_export, one_pass=False)
        assert not took
        assert report.flows_added == report.flows_seen == res.flows_added > 30_000
        assert _rows(fast) == _rows(checked)
        assert _settings(fast) == settings


def test_only_token_transfers_without_block_time_is_streamed(tmp_path: Path) -> None:
    folder = etl_folder(tmp_path)
    with open_workspace(tmp_path / "ws") as ws:
        rel = {}
        for table, path in etl_files(folder).items():
            ws.con.execute(f"CREATE TEMP VIEW v_{table} AS SELECT * FROM read_csv('{path}', "
                           "all_varchar = true)")
            rel[table] = f"v_{table}"
        assert _read_once(ws.con, rel) == {"token_transfers"}
        ws.con.execute("CREATE TEMP VIEW v_tt2 AS SELECT *, '1' AS block_timestamp "
                       "FROM v_token_transfers")
        assert _read_once(ws.con, {**rel, "token_transfers": "v_tt2"}) == frozenset()


@pytest.mark.parametrize(
    ("file", "line", "field", "mutate"),
    [
        # streamed (token_transfers): a non-hex address deep in the file
        ("token_transfers.csv", 30_001, "to_address", lambda v: "0xzz" + v[4:]),
        # a negative amount, streamed
        ("token_transfers.csv", 25_000, "value", lambda v: "-" + v),
        # copied to a temp table (transactions): a hash one character short
        ("transactions.csv", 7_777, "hash", lambda v: v[:-1]),
        # a missing required value
        ("transactions.csv", 9_000, "from_address", lambda v: ""),
    ],
)
def test_bad_cell_on_first_import_is_named_and_changes_nothing(
    tmp_path: Path, bench_export: Path, file: str, line: int, field: str, mutate,  # type: ignore[no-untyped-def]
) -> None:
    folder = _copy(bench_export, tmp_path / "export")
    lines = (folder / file).read_text().splitlines()
    cells = lines[line - 1].split(",")
    i = lines[0].split(",").index(field)
    cells[i] = mutate(cells[i])
    lines[line - 1] = ",".join(cells)
    (folder / file).write_text("\n".join(lines) + "\n")
    with open_workspace(tmp_path / "ws") as ws:
        (tmp_path / "other").mkdir()
        ingest_etl(ws, etl_folder(tmp_path / "other"), chain="other")
        before, settings = snapshot(ws), _settings(ws)
        with pytest.raises(InputError) as err:
            ingest_etl(ws, folder)
        assert (err.value.file, err.value.line, err.value.field) == (str(folder / file), line,
                                                                     field)
        assert snapshot(ws) == before
        assert _settings(ws) == settings
        # The connection is usable: a good export goes in afterwards.
        (tmp_path / "good").mkdir()
        assert ingest_etl(ws, etl_folder(tmp_path / "good")).flows_added > 0


def test_repeated_row_on_first_import_keeps_one(tmp_path: Path, bench_export: Path) -> None:
    """A transfer listed twice: the repeated-key check sends the import down the checked path."""
    folder = _copy(bench_export, tmp_path / "export")
    path = folder / "token_transfers.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[123]]) + "\n")
    with open_workspace(tmp_path / "a") as fast, open_workspace(tmp_path / "b") as clean:
        report = ingest_etl(fast, folder)
        ingest_etl(clean, bench_export)
        assert report.flows_seen == report.flows_added + 1
        assert _rows(fast) == _rows(clean)
        assert ingest_etl(fast, folder).flows_added == 0


def test_repeated_key_check(tmp_path: Path) -> None:
    eth, other = ("(SELECT * FROM flows WHERE chain = 'ethereum')",
                  "(SELECT * FROM flows WHERE chain = 'other')")
    with open_workspace(tmp_path / "ws") as ws:
        assert not evm._has_repeated_key(ws.con, eth)
        ws.con.execute("INSERT INTO flow_rows VALUES ('ethereum', 1, 1, 5, '0xa', 's', 'd', "
                       "'ETH', '1', '1', 'native', NULL, NULL), ('ethereum', 1, 1, 6, '0xa', "
                       "'s', 'd', 'ETH', '1', '1', 'native', NULL, NULL), ('other', 1, 1, 5, "
                       "'0xa', 's', 'd', 'ETH', '1', '1', 'native', NULL, NULL)")
        assert not evm._has_repeated_key(ws.con, eth)
        ws.con.execute("INSERT INTO flow_rows SELECT * FROM flows WHERE ordinal = 6 AND chain = "
                       "'ethereum'")
        assert evm._has_repeated_key(ws.con, eth)
        assert not evm._has_repeated_key(ws.con, other)
        # Past the numpy limit DuckDB counts (within its memory limit): same verdicts.
        assert evm._has_repeated_key(ws.con, eth, numpy_max=1)
        assert not evm._has_repeated_key(ws.con, other, numpy_max=0)
        ws.con.execute("DELETE FROM flow_rows WHERE chain = 'ethereum' AND ordinal = 6")
        assert not evm._has_repeated_key(ws.con, eth, numpy_max=0)


_TRICKY = ["0x" + "ab" * 20, "0X" + "AB" * 20, "0x" + "ab" * 19 + "a", "0x" + "ab" * 20 + "0",
           "0x" + "ab" * 19 + "zz", "0x" + "ab" * 19 + "é", "0x" + "ab" * 19 + "K0",
           " 0x" + "ab" * 20, "0x" + "ab" * 32, "0x" + "AB" * 32, "0x" + "ab" * 31 + "g0",
           "12", "0012", "-1", "+1", "1.0", "1e3", "0x10", "1_000", " 5", "", None]


def _verdicts(values: list[str | None], kind: str, required: bool) -> list[tuple]:
    """(fast guard, precise check) per value, both on the view's normalised value."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE raw (c VARCHAR)")
    con.executemany("INSERT INTO raw VALUES (?)", [[v] for v in values])
    norm = "lower(nullif(c, ''))" if kind in (evm.ADDRESS, evm.HASH) else "nullif(c, '')"
    (_, _, _, precise), = evm._checks([("c", kind, required)], {"c"})
    fast = evm._fast_ok("c", kind, required)
    return con.execute(
        f"SELECT c, {fast}, {precise} FROM (SELECT {norm} AS c FROM raw) ORDER BY ALL"
    ).fetchall()


@pytest.mark.parametrize("kind", [evm.ADDRESS, evm.HASH, evm.UINT])
@pytest.mark.parametrize("required", [True, False])
def test_fast_guard_gives_the_precise_verdict(kind: str, required: bool) -> None:
    rows = _verdicts(_TRICKY, kind, required)
    assert [r for r in rows if bool(r[1]) != bool(r[2])] == []
    assert any(r[2] for r in rows) and not all(r[2] for r in rows)


@given(st.lists(st.text(alphabet="0123456789abcdefABCDEFxXg é\u212a", min_size=0, max_size=68),
                min_size=1, max_size=30))
@settings(max_examples=60, deadline=None)
def test_fast_guard_agrees_on_random_text(values: list[str]) -> None:
    values = values + ["0x" + v[:40].ljust(40, "a") for v in values]
    for kind in (evm.ADDRESS, evm.HASH, evm.UINT):
        rows = _verdicts(values, kind, True)
        assert [r for r in rows if bool(r[1]) != bool(r[2])] == []
