"""Where the conversions stage keeps its own bookkeeping, and how it writes flows.

A re-run must replace exactly what the previous run wrote, never the importers' rows, so every
conversion flow and every `superseded` row we add is also recorded here with the stage that
made it. The ordinal of a conversion flow is reserved inside the transaction it happens in
(EVM layout of ledger/schema.py): it sorts after the transaction's fee, top-level value and
internal transfers and before its token transfers, and no importer ever uses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from heisttrace.ledger.schema import FLOW_COLUMNS, FLOW_SCHEMA, LOG_BASE, TX_STRIDE
from heisttrace.ledger.workspace import Workspace

# Reserved positions inside a transaction (tx_index * TX_STRIDE + position). Internal transfers
# start at 2 and would need half a million value calls to reach these.
SWAP_POSITION = LOG_BASE - 4096
BRIDGE_POSITION = LOG_BASE - 2048

# The importers' tables, each row once even if a block was imported twice.
LOGS = "(SELECT DISTINCT ON (chain, tx_hash, log_index) * FROM evm_logs) AS evm_logs"
MEMOS = "(SELECT DISTINCT * FROM tx_memos) AS tx_memos"
CALLS = "(SELECT DISTINCT ON (chain, tx_hash) * FROM evm_calls) AS evm_calls"

_DDL = """
CREATE TABLE IF NOT EXISTS conversion_flows (
    chain VARCHAR NOT NULL, tx_hash VARCHAR NOT NULL, ordinal BIGINT NOT NULL,
    stage VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS conversion_superseded (
    chain VARCHAR NOT NULL, tx_hash VARCHAR NOT NULL, ordinal BIGINT NOT NULL,
    stage VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS bridge_inbounds (
    chain VARCHAR, tx_hash VARCHAR, time BIGINT, depositor VARCHAR, asset VARCHAR,
    amount VARCHAR, memo VARCHAR, dest_chain VARCHAR, dest_address VARCHAR, matched_tx VARCHAR
);
CREATE TABLE IF NOT EXISTS bridge_links (
    src_chain VARCHAR NOT NULL, src_tx VARCHAR NOT NULL, dst_chain VARCHAR NOT NULL,
    dst_tx VARCHAR NOT NULL, src_address VARCHAR, dst_address VARCHAR, asset VARCHAR,
    dst_asset VARCHAR, source_file VARCHAR, line BIGINT, deposit_address VARCHAR
);
"""


def ensure_tables(ws: Workspace) -> None:
    ws.con.execute(_DDL)


def tx_base(ordinal: int) -> int:
    """The first ordinal of the transaction an ordinal belongs to."""
    return (ordinal // TX_STRIDE) * TX_STRIDE


@dataclass
class Batch:
    """Conversion flows and the raw flows they replace, written together by `write`."""

    stage: str
    flows: list[dict] = field(default_factory=list)
    superseded: set[tuple[str, str, int]] = field(default_factory=set)

    def add(self, flow: dict, replaces: list[tuple[str, str, int]]) -> None:
        self.flows.append(flow)
        self.superseded.update(replaces)

    def write(self, ws: Workspace) -> int:
        """Insert flows and superseded rows and record both as ours; returns flows written."""
        if not self.flows:
            return 0
        table = pa.Table.from_pylist(
            [{c: f.get(c) for c in FLOW_COLUMNS} for f in self.flows], schema=FLOW_SCHEMA
        )
        written = ws.add_flows(table)
        mine = pa.table(
            {
                "chain": table["chain"],
                "tx_hash": table["tx_hash"],
                "ordinal": table["ordinal"],
                "stage": [self.stage] * table.num_rows,
            }
        )
        ws.con.register("_conv_mine", mine)
        try:
            ws.con.execute("INSERT INTO conversion_flows SELECT * FROM _conv_mine")
        finally:
            ws.con.unregister("_conv_mine")
        if self.superseded:
            rows = sorted(self.superseded)
            sup = pa.table(
                {
                    "chain": [r[0] for r in rows],
                    "tx_hash": [r[1] for r in rows],
                    "ordinal": pa.array([r[2] for r in rows], pa.int64()),
                    "stage": [self.stage] * len(rows),
                }
            )
            ws.con.register("_conv_sup", sup)
            try:
                ws.con.execute(
                    "INSERT INTO superseded SELECT chain, tx_hash, ordinal FROM _conv_sup"
                )
                ws.con.execute("INSERT INTO conversion_superseded SELECT * FROM _conv_sup")
            finally:
                ws.con.unregister("_conv_sup")
        return written


def clear(ws: Workspace, stages: tuple[str, ...] | None = None) -> None:
    """Remove the flows and superseded rows earlier runs wrote (all stages, or the given ones)."""
    ensure_tables(ws)
    cond, params = "", []
    if stages:
        cond = f" WHERE stage IN ({', '.join('?' * len(stages))})"
        params = list(stages)
    ws.delete_flows(
        f"""kind IN ('swap', 'bridge') AND EXISTS (
                SELECT 1 FROM (SELECT * FROM conversion_flows{cond}) c
                WHERE c.chain = flows.chain AND c.tx_hash = flows.tx_hash
                  AND c.ordinal = flows.ordinal)""",
        params,
    )
    ws.con.execute(
        f"""DELETE FROM superseded WHERE EXISTS (
                SELECT 1 FROM (SELECT * FROM conversion_superseded{cond}) c
                WHERE c.chain = superseded.chain AND c.tx_hash = superseded.tx_hash
                  AND c.ordinal = superseded.ordinal)""",
        params,
    )
    ws.con.execute(f"DELETE FROM conversion_flows{cond}", params)
    ws.con.execute(f"DELETE FROM conversion_superseded{cond}", params)


def tx_flows(ws: Workspace, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[dict]]:
    """The raw (importer-written, not yet superseded) flows of the given transactions, in order."""
    if not keys:
        return {}
    ws.con.register(
        "_conv_keys",
        pa.table({"chain": [k[0] for k in keys], "tx_hash": [k[1] for k in keys]}),
    )
    try:
        rows = ws.con.execute(
            """
            SELECT l.* FROM ledger l
            JOIN (SELECT DISTINCT chain, tx_hash FROM _conv_keys) k
              ON k.chain = l.chain AND k.tx_hash = l.tx_hash
            WHERE l.kind NOT IN ('swap', 'bridge')
            ORDER BY l.chain, l.tx_hash, l.ordinal
            """
        ).fetch_arrow_table().to_pylist()
    finally:
        ws.con.unregister("_conv_keys")
    out: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        out.setdefault((row["chain"], row["tx_hash"]), []).append(row)
    return out


def flow_key(flow: dict) -> tuple[str, str, int]:
    return (flow["chain"], flow["tx_hash"], int(flow["ordinal"]))
