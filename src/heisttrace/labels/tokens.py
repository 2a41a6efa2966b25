"""The token registry: contract -> symbol, decimals, and whether it is the real token or a fake.

Metadata lives in the shared `tokens` table (filled by the ledger importers and the node, and
here from the label data where those left a gap); verdicts live in `token_verdicts`, one row per
(chain, address, source):

- label data: the etherscan-labels token list (`combinedTokenLabels.json`) names real token
  contracts (`real = true`); its `spam-token` label names fakes (`real = false`);
- the spam heuristic (`heuristic:spam`): every token it judged fake (`real = false`).

A contract's flag is the verdict of its strongest source: a listed real token stays real
whatever the heuristic says (spam.py never flags one), a listed fake stays fake.
Spam detection reads the real tokens to recognise look-alike symbols of them (spam.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from heisttrace.ledger.workspace import Workspace

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS token_verdicts (
    chain VARCHAR NOT NULL, address VARCHAR NOT NULL, symbol VARCHAR, name VARCHAR,
    real BOOLEAN NOT NULL, source VARCHAR NOT NULL, reason VARCHAR
)
"""
VERDICT_SCHEMA = pa.schema([
    ("chain", pa.string()), ("address", pa.string()), ("symbol", pa.string()),
    ("name", pa.string()), ("real", pa.bool_()), ("reason", pa.string()),
])


@dataclass(frozen=True)
class TokenEntry:
    """One token named by label data."""

    chain: str
    address: str
    symbol: str | None
    name: str | None
    real: bool
    reason: str


def ensure_table(ws: Workspace) -> None:
    ws.con.execute(TABLE_SQL)


def entries_table(entries: list[TokenEntry]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"chain": e.chain, "address": e.address, "symbol": e.symbol, "name": e.name,
          "real": e.real, "reason": e.reason} for e in entries], schema=VERDICT_SCHEMA)


def replace_verdicts(ws: Workspace, source: str, table: pa.Table) -> None:
    """Replace the verdicts of `source`; fill symbol/name gaps of `tokens` (never overwrite:
    the node's `symbol()` is the authority). Call inside a transaction."""
    ensure_table(ws)
    ws.con.execute("DELETE FROM token_verdicts WHERE source = ?", [source])
    if table.num_rows == 0:
        return
    ws.con.register("_ht_verdicts", table)
    try:
        ws.con.execute(
            """INSERT INTO token_verdicts
               SELECT DISTINCT ON (chain, address) chain, address, symbol, name, real, ?, reason
               FROM _ht_verdicts ORDER BY chain, address, real""", [source])
        ws.con.execute(
            """INSERT INTO tokens (chain, address, symbol, name, decimals, source)
               SELECT DISTINCT ON (chain, address) chain, address, symbol, name, NULL, 'labels'
               FROM _ht_verdicts WHERE symbol IS NOT NULL OR name IS NOT NULL
               ON CONFLICT (chain, address) DO UPDATE SET
                 symbol = coalesce(tokens.symbol, EXCLUDED.symbol),
                 name = coalesce(tokens.name, EXCLUDED.name)""")
    finally:
        ws.con.unregister("_ht_verdicts")


def real_tokens(ws: Workspace) -> dict[tuple[str, str], dict[str, str | None]]:
    """(chain, upper-case symbol) -> {real contract: its name}, from the label data."""
    ensure_table(ws)
    out: dict[tuple[str, str], dict[str, str | None]] = {}
    for chain, address, symbol, name in ws.con.execute(
        """SELECT v.chain, v.address, coalesce(v.symbol, t.symbol), coalesce(v.name, t.name)
           FROM token_verdicts v LEFT JOIN tokens t USING (chain, address)
           WHERE v.real AND v.source NOT LIKE 'heuristic:%'""").fetchall():
        if symbol:
            out.setdefault((chain, symbol.strip().upper()), {})[address] = name
    return out


def listed_fakes(ws: Workspace) -> dict[tuple[str, str], str]:
    """(chain, address) -> reason, for tokens the label data names as fake."""
    ensure_table(ws)
    return {(c, a): r for c, a, r in ws.con.execute(
        """SELECT chain, address, any_value(reason) FROM token_verdicts
           WHERE NOT real AND source NOT LIKE 'heuristic:%' GROUP BY ALL""").fetchall()}


def registry(ws: Workspace, fake_only: bool = False) -> pa.Table:
    """Every known token: chain, address, symbol, name, decimals, real (true / false / null =
    nothing says), why, and where its metadata came from."""
    ensure_table(ws)
    where = "WHERE real = false" if fake_only else ""
    return ws.con.execute(
        f"""
        WITH v AS (
            SELECT chain, address,
                   -- label data decides over the heuristic; a listed fake over a listed real
                   arg_min(real, (source LIKE 'heuristic:%')::INT * 2 + real::INT) AS real,
                   arg_min(reason, (source LIKE 'heuristic:%')::INT * 2 + real::INT) AS reason,
                   any_value(symbol) AS symbol, any_value(name) AS name
            FROM token_verdicts GROUP BY chain, address
        ),
        r AS (
            SELECT coalesce(t.chain, v.chain) AS chain, coalesce(t.address, v.address) AS address,
                   coalesce(t.symbol, v.symbol) AS symbol, coalesce(t.name, v.name) AS name,
                   t.decimals, v.real, v.reason, t.source AS metadata_source
            FROM tokens t FULL OUTER JOIN v ON v.chain = t.chain AND v.address = t.address
        )
        SELECT * FROM r {where} ORDER BY chain, real NULLS LAST, symbol, address
        """
    ).fetch_arrow_table()
