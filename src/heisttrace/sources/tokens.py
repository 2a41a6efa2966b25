"""Token metadata (symbol, name, decimals) for showing amounts in whole units.

Amounts stay exact base units in `flows`; decimals only matter for display and for the
engine's whole-unit floats, so a later, better source (a node's `decimals()`) may fill in
what an earlier one left empty, but never blanks what is known.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa

from heisttrace.errors import InputError

_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")


def _clean_row(
    row: Mapping[str, object], where: str | None = None, line: int | None = None
) -> dict[str, object]:
    address = str(row.get("address") or "").strip().lower()
    if not _ADDRESS.match(address):
        raise InputError(f"bad token address {address!r}", file=where, line=line, field="address")
    decimals_raw = row.get("decimals")
    decimals: int | None = None
    if decimals_raw not in (None, ""):
        try:
            decimals = int(str(decimals_raw).strip())
        except ValueError:
            decimals = -1
        if not 0 <= decimals <= 255:
            raise InputError(
                f"bad decimals {decimals_raw!r}, expected an integer 0..255",
                file=where, line=line, field="decimals",
            )

    def text(key: str) -> str | None:
        value = row.get(key)
        return None if value in (None, "") else str(value)

    return {"address": address, "symbol": text("symbol"), "name": text("name"),
            "decimals": decimals}


def store_tokens(
    ws,  # type: ignore[no-untyped-def]
    rows: Iterable[Mapping[str, object]] | pa.Table,
    chain: str = "ethereum",
    source: str = "import",
) -> int:
    """Upsert token metadata (address, symbol, name, decimals); returns tokens new to the table.

    Known values are kept when the new row leaves them empty. Call inside a transaction to
    tie it to the flows of the same import.
    """
    if isinstance(rows, pa.Table):
        rows = rows.to_pylist()
    clean: dict[str, dict[str, object]] = {}
    for row in rows:
        c = _clean_row(row)
        clean[str(c["address"])] = c
    if not clean:
        return 0
    table = pa.Table.from_pylist(
        [dict(chain=chain, source=source, **c) for c in clean.values()],
        schema=pa.schema([("chain", pa.string()), ("source", pa.string()),
                          ("address", pa.string()), ("symbol", pa.string()),
                          ("name", pa.string()), ("decimals", pa.int32())]),
    )
    con = ws.con
    before = int(con.execute("SELECT count(*) FROM tokens").fetchone()[0])
    con.register("_ht_new_tokens", table)
    try:
        con.execute(
            "INSERT INTO tokens SELECT chain, address, symbol, name, decimals, source "
            "FROM _ht_new_tokens ON CONFLICT (chain, address) DO UPDATE SET "
            "symbol = coalesce(EXCLUDED.symbol, symbol), name = coalesce(EXCLUDED.name, name), "
            "decimals = coalesce(EXCLUDED.decimals, decimals), "
            "source = coalesce(EXCLUDED.source, source)"
        )
    finally:
        con.unregister("_ht_new_tokens")
    return int(con.execute("SELECT count(*) FROM tokens").fetchone()[0]) - before


def read_tokens_csv(path: Path) -> list[dict[str, object]]:
    """ethereum-etl tokens.csv (address, symbol, name, decimals, ...), checked row by row."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "address" not in reader.fieldnames:
            raise InputError("missing column 'address'", file=str(path), field="address")
        return [_clean_row(row, str(path), reader.line_num) for row in reader]


def token_decimals(ws, chain: str | None = None) -> dict[tuple[str, str], int]:  # type: ignore[no-untyped-def]
    """(chain, address) -> decimals for every token whose decimals are known."""
    sql = "SELECT chain, address, decimals FROM tokens WHERE decimals IS NOT NULL"
    params: list[object] = []
    if chain:
        sql += " AND chain = ?"
        params.append(chain)
    return {(c, a): int(d) for c, a, d in ws.con.execute(sql, params).fetchall()}


# Decimals of the native coins (asset names from ledger.schema.NATIVE_ASSETS).
NATIVE_DECIMALS: dict[str, int] = {
    "ETH": 18, "BNB": 18, "POL": 18, "BTC": 8, "LTC": 8, "DOGE": 8, "BCH": 8,
}


def whole_units(amount: str, decimals: int | None) -> str:
    """Base units as exact whole units ('1500000000000000000', 18 -> '1.5'); no rounding.

    String arithmetic rather than floats or Decimal contexts, so 78-digit token amounts stay
    exact. Unknown decimals: the base-unit amount unchanged.
    """
    if decimals is None or decimals <= 0 or not amount.isdigit():
        return amount
    digits = amount.lstrip("0").rjust(decimals + 1, "0")
    whole, frac = digits[:-decimals], digits[-decimals:].rstrip("0")
    return f"{whole}.{frac}" if frac else whole
