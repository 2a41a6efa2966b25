"""Streaming writers of ethereum-etl CSV files, column for column as ethereum-etl writes them.

Column names and order are ethereum-etl's (../shared/data/fixtures/ethereum-etl/docs/schema.md
and the expected CSVs in its tests). `transactions.csv` also carries the `receipt_*` columns
ethereum-etl adds when it enriches transactions with receipts; `receipts.csv` is written too,
so an importer that reads either finds the gas it needs.

Rows are joined in Arrow compute kernels, not per row in Python: a field is quoted only when
it holds a comma or a quote, as Python's csv module (which ethereum-etl uses) does.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from heisttrace.sources.etl_columns import (
    BLOCK_COLUMNS, LOG_COLUMNS, RECEIPT_COLUMNS, RECEIPT_ENRICHED_COLUMNS, RECEIPT_L1_COLUMNS,
    TOKEN_COLUMNS, TOKEN_TRANSFER_COLUMNS, TRACE_COLUMNS, TRANSACTION_COLUMNS,
)

# The files written, each with ethereum-etl's exact header (transactions as the streaming
# export enriches them with their receipts).
FILES: dict[str, list[str]] = {
    "blocks": BLOCK_COLUMNS,
    "transactions": TRANSACTION_COLUMNS + RECEIPT_ENRICHED_COLUMNS,
    "receipts": RECEIPT_COLUMNS + RECEIPT_L1_COLUMNS,
    "token_transfers": TOKEN_TRANSFER_COLUMNS,
    "traces": TRACE_COLUMNS,
    "logs": LOG_COLUMNS,
    "tokens": TOKEN_COLUMNS,
}


def _csv_field(col: pa.Array) -> pa.Array:
    """Text of one column as the csv module writes it: empty for null, quoted if needed."""
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    col = pc.fill_null(col, "")
    needs = pc.or_(pc.match_substring(col, ","), pc.match_substring(col, '"'))
    if pc.any(needs).as_py():
        quoted = pc.binary_join_element_wise(
            '"', pc.replace_substring(col, '"', '""'), '"', ""
        )
        col = pc.if_else(needs, quoted, col)
    return col


def csv_bytes(table: pa.Table, columns: list[str]) -> bytes:
    """The CSV body (no header) of the table's rows in the given column order."""
    if table.num_rows == 0:
        return b""
    fields = [_csv_field(table.column(c).combine_chunks()) for c in columns]
    rows = pc.binary_join_element_wise(*fields, ",")
    # row + "\n" + "": every line ends with a newline, and the values sit back to back.
    lines = pc.binary_join_element_wise(rows, "", "\n")
    off = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return lines.buffers()[2].to_pybytes()[off[0] : off[-1]]


class EtlWriter:
    """One open CSV file per ethereum-etl table; `write` appends a chunk of rows."""

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self._files: dict[str, BinaryIO] = {}
        self.rows: dict[str, int] = {name: 0 for name in FILES}
        for name, cols in FILES.items():
            f = open(out_dir / f"{name}.csv", "wb")  # noqa: SIM115 - closed in close()
            f.write((",".join(cols) + "\n").encode())
            self._files[name] = f

    def write(self, name: str, table: pa.Table) -> None:
        """Append rows; the table must have every column of the file (extra ones ignored)."""
        cols = FILES[name]
        missing = [c for c in cols if c not in table.column_names]
        if missing:
            raise ValueError(f"{name}.csv chunk lacks columns {missing}")
        body = csv_bytes(table, cols)
        if body:
            self._files[name].write(body)
        self.rows[name] += table.num_rows

    def close(self) -> None:
        for f in self._files.values():
            f.close()
