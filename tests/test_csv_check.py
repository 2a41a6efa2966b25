"""The compiled proof that a CSV file is clean: sound against DuckDB's reading and the precise check.

A proven file skips the per-cell guards of `ingest etl`, so "proven" must imply that DuckDB
reads exactly the lines and cells the pass saw and that the precise check accepts every cell.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heisttrace.sources import csv_check, evm
from heisttrace.ledger import open_workspace
from heisttrace.sources.csv_check import ADDRESS, ANY, HASH, UINT, prove, proven_clean
from heisttrace.sources.etl import _proven, etl_files, ingest_etl
from tests.test_ingest_etl_fast_files import _bench_generate, _copy, _rows

A = "0x" + "ab12" * 10
H = "0x" + "cd34" * 16
RULES = ([ADDRESS, UINT, ANY, HASH], [True, False, True, False])
EVM_KIND = {ADDRESS: evm.ADDRESS, HASH: evm.HASH, UINT: evm.UINT, ANY: ""}


def _write(tmp_path: Path, body: str, name: str = "t.csv", eol: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(("a,u,x,h" + eol + body).encode())
    return path


def _precise_accepts(path: Path, kinds: list[int], required: list[bool]) -> bool:
    """DuckDB's reading (as `ingest etl` opens a CSV) followed by the precise cell checks."""
    names = ["a", "u", "x", "h"][: len(kinds)]
    con = duckdb.connect()
    cols = ", ".join(f"'{n}': 'VARCHAR'" for n in names)
    try:
        con.execute(
            f"CREATE TABLE t AS SELECT * FROM read_csv('{path}', header = true, auto_detect = "
            f"false, columns = {{{cols}}}, delim = ',', quote = '\"', escape = '\"', "
            "strict_mode = true, null_padding = false)")
    except duckdb.Error:
        return False
    norm = ", ".join(
        (f"lower(nullif({n}, ''))" if k in (ADDRESS, HASH) else f"nullif({n}, '')") + f" AS {n}"
        for n, k in zip(names, kinds, strict=True))
    checks = evm._checks([(n, EVM_KIND[k], r) for n, k, r in zip(names, kinds, required,
                                                                  strict=True)], set(names))
    cond = " AND ".join(c for *_, c in checks) or "true"
    bad = con.execute(f"SELECT count(*) FROM (SELECT {norm} FROM t) WHERE NOT ({cond})").fetchone()
    return bad == (0,)


@pytest.mark.parametrize(
    ("body", "proven"),
    [
        (f"{A},12,any thing,{H}\n", True),
        (f"{A},12,any thing,{H}", True),                     # last line without a line end
        (f"{A},12,x,{H}\r\n{A},,x,\r\n", True),              # CRLF, empty optional cells
        (f"{A.upper().replace('0X', '0x')},0,x,{H.upper()}\n", True),  # the check lowercases
        ("0X" + A[2:] + f",1,x,{H}\n", True),
        ("", True),                                          # a header and no rows
        (f",12,x,{H}\n", False),                             # a required cell empty
        (f"{A},12,,{H}\n", False),
        (f"{A},-1,x,{H}\n", False),
        (f"{A},1.0,x,{H}\n", False),
        (f"{A[:-1]},1,x,{H}\n", False),
        (f"{A}0,1,x,{H}\n", False),
        (f"{A[:-1]}g,1,x,{H}\n", False),
        (f"{A},1,x,{H[:-1]}\n", False),
        (f"{A},1,x\n", False),                               # short row
        (f"{A},1,x,{H},5\n", False),                         # long row
        (f"{A},1,\"x\",{H}\n", False),                       # quotes: not proven, whatever they hold
        (f"{A},1,x\ry,{H}\n", False),                        # a lone carriage return
        (f"{A},1,x,{H}\n\n{A},1,x,{H}\n", False),            # an empty line
        (f"{A},1,x,{H}\r\n{A},1,x,{H}\n", False),            # line ends mixed
        (f"{A},1,é,{H}\n", False),                           # non-ASCII
        (f" {A},1,x,{H}\n", False),
    ],
)
def test_verdicts(tmp_path: Path, body: str, proven: bool) -> None:
    path = _write(tmp_path, body, eol="\r\n" if "\r\n" in body else "\n")
    assert proven_clean(path, *RULES) is proven
    if proven:
        assert _precise_accepts(path, *RULES)


def test_one_column_and_empty_files_are_not_proven(tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    one.write_text(f"a\n{A}\n\n")
    assert not proven_clean(one, [ADDRESS], [False])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert not proven_clean(empty, *RULES)


def test_pieces_split_at_line_starts(tmp_path: Path) -> None:
    """Many small pieces (cut inside lines) give the verdict of one piece."""
    lines = [f"{A},{i},row {i},{H if i % 3 else ''}" for i in range(500)]
    good = _write(tmp_path, "\r\n".join(lines) + "\r\n", eol="\r\n")
    for piece in (1, 7, 64, 1000, csv_check.PIECE):
        assert proven_clean(good, *RULES, piece=piece)
    lines[321] = lines[321].replace("row", "r\"ow")
    bad = _write(tmp_path, "\n".join(lines), "bad.csv")
    for piece in (1, 7, 64, 1000, csv_check.PIECE):
        assert not proven_clean(bad, *RULES, piece=piece)


_CELLS = st.one_of(
    st.sampled_from([A, A.upper(), "0X" + A[2:], H, H.upper(), "12", "0", "", "x y", A + "0",
                     A[:-1], H[:-2], "-3", "1e3"]),
    st.text(alphabet="0123456789abcdefABCDEFxXg ,\"\r\né\u212a", max_size=8),
)


@given(rows=st.lists(st.lists(_CELLS, min_size=3, max_size=5), max_size=8),
       crlf=st.booleans(), end=st.booleans(), piece=st.sampled_from([1, 13, 4096]))
@settings(max_examples=150, deadline=None)
def test_proven_implies_duckdb_and_precise_check_accept(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], crlf: bool, end: bool,
    piece: int,
) -> None:
    eol = "\r\n" if crlf else "\n"
    body = eol.join(",".join(r) for r in rows) + (eol if rows and end else "")
    path = _write(tmp_path_factory.mktemp("p"), body, eol="\r\n" if crlf else "\n")
    if proven_clean(path, *RULES, piece=piece):
        assert _precise_accepts(path, *RULES)
    # clean rows of the right width are always proven
    clean = [[A, "7", "txt", H]] * len(rows)
    path = _write(tmp_path_factory.mktemp("c"), eol.join(",".join(r) for r in clean)
                  + (eol if rows and end else ""), eol=eol)
    assert proven_clean(path, *RULES, piece=piece)


def test_a_clean_export_is_proven_and_a_bad_cell_is_not(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    _bench_generate(folder, 2_000, upper=False)
    files = etl_files(folder)
    proven = _proven(files)
    assert set(proven) == {"blocks", "transactions", "token_transfers"}
    assert {"from_address", "to_address", "hash"} <= proven["transactions"]
    assert "value" in proven["token_transfers"]  # (not hex: never lowercased anyway)
    path = folder / "token_transfers.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[777].split(",")
    cells[header.index("value")] = "-" + cells[header.index("value")]
    lines[777] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    assert set(_proven(files)) == {"blocks", "transactions"}


def test_upper_case_hex_is_reported_per_column(tmp_path: Path) -> None:
    lower = _write(tmp_path, f"{A},1,x,{H}\n{A},2,y,{H}\n")
    assert prove(lower, *RULES) == [False, False, False, False]
    mixed = _write(tmp_path, f"{A},1,x,{H}\n{A},2,y,{H[:-1]}F\n", "m.csv")
    assert prove(mixed, *RULES) == [False, False, False, True]
    prefix = _write(tmp_path, f"0X{A[2:]},1,x,{H}\n", "p.csv")
    assert prove(prefix, *RULES) == [True, False, False, False]


def test_upper_case_columns_are_lowercased_the_others_are_not(tmp_path: Path) -> None:
    """Only the columns with upper-case hex are lowercased; the flows are the same."""
    folder = tmp_path / "lower"
    folder.mkdir()
    _bench_generate(folder, 3_000, upper=False)
    mixed = _copy(folder, tmp_path / "mixed")
    path = mixed / "token_transfers.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    i = header.index("to_address")
    for n in range(1, len(lines), 7):
        cells = lines[n].split(",")
        cells[i] = "0X" + cells[i][2:].upper()
        lines[n] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    proven = _proven(etl_files(mixed))
    assert "to_address" not in proven["token_transfers"]
    assert "from_address" in proven["token_transfers"]
    with open_workspace(tmp_path / "a") as a, open_workspace(tmp_path / "b") as b:
        ingest_etl(a, folder)
        ingest_etl(b, mixed)
        assert _rows(a) == _rows(b)
