"""Bitcoin-family blocks (Bitcoin Core `getblock` JSON) into UTXO flows.

The model (DESIGN.md "Bitcoin"): each transaction T is a node `tx:<txid>` that pools its
inputs. For each output n paying X there is a flow `tx:T -> X` at T's time; when tx S spends
that output there is a flow `X -> tx:S` at S's time, for the output's value; the fee is a
flow `tx:T -> fees`. A coinbase has no inputs: its outputs are new, clean coins. Haircut over
these nodes is BlockSci's per-transaction haircut; FIFO is input-order/output-order FIFO.

Ordinals inside a block, `tx_index * TX_STRIDE + position`:
  position k                 input k (spending flow), inputs first so the pool fills first
  position LOG_BASE + n      output n
  position TX_STRIDE - 1     the fee (FEE_POSITION), last: FIFO pays outputs before the fee

bitcoin-etl transaction exports (JSON lines, the shape of BigQuery's `crypto_bitcoin`
tables) are read too: values already in satoshi, inputs valued when the export has them.

Input values come from a verbosity-3 `prevout`, else from the outputs of earlier blocks (this
import or any earlier one: they are kept in `utxo_outputs`), else from loose
`getrawtransaction` objects given with the import. An input whose value is still unknown is
missing history: no spending flow, and the transaction's fee is only known when the node
printed it (`fee`, verbosity 2 with undo data); otherwise no fee flow.
Zero-value outputs (OP_RETURN) move nothing and produce no flow; their text goes to
`tx_memos`, which is how THORChain outbounds (`OUT:<inbound hash>`) are matched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from heisttrace.errors import InputError
from heisttrace.ledger.schema import FEE_SINK, FLOW_COLUMNS, LOG_BASE, TX_STRIDE, native_asset
from heisttrace.ledger.workspace import Workspace
from heisttrace.sources.bitcoin_json import (
    Columns,
    Where,
    add_block,
    add_etl_transaction,
    list_files,
    read_documents,
    script_address,
    to_base_units,
    unwrap,
)

CHAINS: tuple[str, ...] = ("bitcoin", "bitcoin_cash", "dogecoin", "litecoin")
FEE_POSITION = TX_STRIDE - 1
TX_NODE_PREFIX = "tx:"

# Every output we have seen, so that later imports can value the inputs that spend them.
UTXO_DDL = """
CREATE TABLE IF NOT EXISTS utxo_outputs (
    chain VARCHAR NOT NULL, txid VARCHAR NOT NULL, n BIGINT NOT NULL, address VARCHAR NOT NULL,
    value BIGINT NOT NULL, block BIGINT NOT NULL
);
"""

Progress = Callable[[int, int], None]
# (Joins filter `chain` in a subquery: a parameter in the ON clause makes DuckDB fall back
# to a nested-loop join.)
# Transactions mapped per batch: bounds memory (Python buffers and DuckDB work tables).
BATCH_TXS = 50_000


@dataclass
class IngestReport:
    """What one import added; `notes` says what could not be mapped and why."""

    chain: str
    files: int = 0
    blocks: int = 0
    txs: int = 0
    flows_added: int = 0
    outputs_added: int = 0
    memos_added: int = 0
    inputs_unknown: int = 0
    fees_unknown: int = 0
    skipped_documents: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tx_node(txid: str) -> str:
    """The ledger address of a transaction's pool."""
    return TX_NODE_PREFIX + txid


def ensure_tables(ws: Workspace) -> None:
    ws.con.execute(UTXO_DDL)


def check_chain(chain: str) -> None:
    if chain not in CHAINS:
        raise InputError(f"unknown chain {chain!r}; one of {', '.join(CHAINS)}", field="chain")


def ingest_bitcoin(
    ws: Workspace,
    paths: list[str | Path],
    chain: str = "bitcoin",
    progress: Progress | None = None,
    *,
    batch_txs: int = BATCH_TXS,
) -> IngestReport:
    """Import block JSON files (or folders of them) as flows; all or nothing, idempotent.

    Blocks are mapped in batches of about `batch_txs` transactions so memory stays bounded;
    inputs a batch cannot value yet (an output in a later file, or in a loose transaction)
    wait until the end of the import. `progress(done, total)` is called after each file.
    """
    check_chain(chain)
    files = list_files(paths)
    report = IngestReport(chain=chain, files=len(files))
    with ws.transaction():
        importer = Importer(ws, chain, report, batch_txs)
        for done, path in enumerate(files, 1):
            for line, doc in read_documents(path):
                where = Where(str(path), line)
                for kind, obj in unwrap(doc, where):
                    importer.add(kind, obj, where)
            if progress:
                progress(done, len(files))
        importer.finish()
        add_notes(report)
        ws.record_import(
            f"bitcoin:{chain}", ", ".join(str(f) for f in files)[:2000], report.flows_added
        )
    return report


class Importer:
    """One import inside the caller's transaction: documents in, flows and memos out."""

    def __init__(self, ws: Workspace, chain: str, report: IngestReport, batch_txs: int) -> None:
        self.report, self.batch_txs = report, batch_txs
        self.loose: dict[str, tuple[dict[str, Any], Where]] = {}
        self.pending: list[tuple[dict[str, Any], Where]] = []
        self.etl_index: dict[int, int] = {}
        self.cols = Columns()
        ensure_tables(ws)
        self.batch = _Batch(ws, chain, report)
        self.batch.start()

    def add(self, kind: str, obj: dict[str, Any], where: Where) -> None:
        """One item from `unwrap`: a block, a node transaction, a bitcoin-etl record, other."""
        if kind == "other":
            self.report.skipped_documents += 1
            return
        if kind == "tx":
            txid = obj.get("txid")
            if not isinstance(txid, str):
                raise where.error("transaction without 'txid'", "txid")
            self.loose[txid.lower()] = (obj, Where(where.file, where.line))
            return
        if kind == "etl_tx":
            add_etl_transaction(self.cols, obj, where, self.etl_index)
        elif any(isinstance(t, str) for t in obj.get("tx") or []):
            self.pending.append((obj, where))  # verbosity 1: needs the loose transactions
            return
        else:
            add_block(self.cols, obj, where, {})
        if len(self.cols.t_txid) >= self.batch_txs:
            self.batch.write(self.cols)
            self.cols = Columns()

    def finish(self) -> None:
        loose_txs = {txid: tx for txid, (tx, _) in self.loose.items()}
        for block, where in self.pending:
            add_block(self.cols, block, where, loose_txs)
        self.batch.write(self.cols)
        self.cols = Columns()
        self.batch.finish(_loose_outputs(self.loose))


def _loose_outputs(loose: dict[str, tuple[dict[str, Any], Where]]) -> pa.Table:
    """Outputs of loose transactions: a last resort to value inputs (not stored)."""
    rows: dict[str, list[Any]] = {"txid": [], "n": [], "address": [], "value": []}
    for txid, (tx, where) in loose.items():
        where.txid = txid
        for k, out in enumerate(tx.get("vout") or []):
            if not isinstance(out, dict):
                raise where.error("output is not an object", f"vout[{k}]")
            rows["txid"].append(txid)
            n = out.get("n", k)
            if isinstance(n, bool) or not isinstance(n, int):
                raise where.error(f"'n' is not an integer: {n!r}", f"vout[{k}].n")
            rows["n"].append(n)
            rows["address"].append(script_address(out.get("scriptPubKey"), where, f"vout[{k}]"))
            rows["value"].append(to_base_units(out.get("value"), where, f"vout[{k}].value"))
    return pa.table(
        rows,
        schema=pa.schema(
            [("txid", pa.string()), ("n", pa.int64()), ("address", pa.string()),
             ("value", pa.int64())]
        ),
    )


def _tables(cols: Columns) -> dict[str, pa.Table]:
    s, i64 = pa.string(), pa.int64()
    return {
        "_btc_out": pa.table(
            {"txid": pa.array(cols.o_txid, s), "n": pa.array(cols.o_n, i64),
             "address": pa.array(cols.o_address, s), "value": pa.array(cols.o_value, i64),
             "block": pa.array(cols.o_block, i64), "time": pa.array(cols.o_time, i64),
             "tx_index": pa.array(cols.o_tx_index, i64)}
        ),
        "_btc_in": pa.table(
            {"txid": pa.array(cols.i_txid, s), "idx": pa.array(cols.i_index, i64),
             "block": pa.array(cols.i_block, i64), "time": pa.array(cols.i_time, i64),
             "tx_index": pa.array(cols.i_tx_index, i64),
             "prev_txid": pa.array(cols.i_prev_txid, s), "prev_n": pa.array(cols.i_prev_n, i64),
             "address": pa.array(cols.i_address, s), "value": pa.array(cols.i_value, i64)}
        ),
        "_btc_tx": pa.table(
            {"txid": pa.array(cols.t_txid, s), "block": pa.array(cols.t_block, i64),
             "time": pa.array(cols.t_time, i64), "tx_index": pa.array(cols.t_tx_index, i64),
             "coinbase": pa.array(cols.t_coinbase, pa.bool_()),
             "n_in": pa.array(cols.t_inputs, i64), "fee": pa.array(cols.t_fee, i64),
             "file": pa.array(cols.t_file, s)}
        ),
        "_btc_memo": pa.table(
            {"txid": pa.array(cols.m_txid, s), "block": pa.array(cols.m_block, i64),
             "time": pa.array(cols.m_time, i64), "memo": pa.array(cols.m_memo, s)}
        ),
    }


# Work tables of one import (temporary, dropped at the end or by the rollback):
#   _btc_seen    (txid, block) of every transaction read, for the report
#   _btc_wait_in inputs no batch could value yet
#   _btc_wait_tx transactions with such inputs: what is known of them so far
_WORK_DDL = """
CREATE OR REPLACE TEMP TABLE _btc_seen (txid VARCHAR, block BIGINT);
CREATE OR REPLACE TEMP TABLE _btc_wait_in (
    txid VARCHAR, idx BIGINT, block BIGINT, time BIGINT, tx_index BIGINT,
    prev_txid VARCHAR, prev_n BIGINT);
CREATE OR REPLACE TEMP TABLE _btc_wait_tx (
    txid VARCHAR, block BIGINT, time BIGINT, tx_index BIGINT, n_in BIGINT, node_fee BIGINT,
    file VARCHAR, known BIGINT, in_sum HUGEINT, out_sum HUGEINT);
"""
_WORK_TABLES = ("_btc_seen", "_btc_wait_in", "_btc_wait_tx", "_btc_in_resolved", "_btc_fee")

# One batch: value its inputs from a prevout or from any output stored so far.
_RESOLVE_BATCH = """
CREATE OR REPLACE TEMP TABLE _btc_in_resolved AS
SELECT DISTINCT i.txid, i.idx, i.block, i.time, i.tx_index, i.prev_txid, i.prev_n,
       coalesce(i.address, u.address) AS address, coalesce(i.value, u.value) AS value
FROM _btc_in i
LEFT JOIN (SELECT txid, n, address, value FROM utxo_outputs WHERE chain = $chain) u
  ON u.txid = i.prev_txid AND u.n = i.prev_n
"""

# Per transaction of the batch: outputs total, inputs valued, and the fee when it is known
# now (coinbase, or every input valued); the others wait for the end of the import.
_FEES_BATCH = """
CREATE OR REPLACE TEMP TABLE _btc_fee AS
WITH t AS (SELECT DISTINCT ON (txid, block) * FROM _btc_tx),
outs AS (SELECT txid, block, sum(value)::HUGEINT AS out_sum
         FROM (SELECT DISTINCT txid, block, n, value FROM _btc_out) GROUP BY ALL),
ins AS (SELECT txid, block, count(value) AS known, sum(value)::HUGEINT AS in_sum
        FROM _btc_in_resolved GROUP BY ALL)
SELECT t.txid, t.block, t.time, t.tx_index, t.coinbase, t.n_in, t.fee AS node_fee, t.file,
       coalesce(ins.known, 0) AS known, coalesce(ins.in_sum, 0)::HUGEINT AS in_sum,
       coalesce(outs.out_sum, 0)::HUGEINT AS out_sum,
       t.coinbase OR coalesce(ins.known, 0) = t.n_in AS complete
FROM t LEFT JOIN ins USING (txid, block) LEFT JOIN outs USING (txid, block)
"""

# End of the import: the waiting inputs against everything stored and the loose
# transactions; then every waiting transaction gets its fee (computed, or the node's).
_RESOLVE_WAITING = """
CREATE OR REPLACE TEMP TABLE _btc_in_resolved AS
SELECT DISTINCT i.txid, i.idx, i.block, i.time, i.tx_index, i.prev_txid, i.prev_n,
       coalesce(u.address, k.address) AS address, coalesce(u.value, k.value) AS value
FROM _btc_wait_in i
LEFT JOIN (SELECT txid, n, address, value FROM utxo_outputs WHERE chain = $chain) u
  ON u.txid = i.prev_txid AND u.n = i.prev_n
LEFT JOIN _btc_known k ON k.txid = i.prev_txid AND k.n = i.prev_n
"""
_FEES_WAITING = """
CREATE OR REPLACE TEMP TABLE _btc_fee AS
WITH t AS (SELECT DISTINCT ON (txid, block) * FROM _btc_wait_tx),
ins AS (SELECT txid, block, count(value) AS known, coalesce(sum(value), 0)::HUGEINT AS in_sum
        FROM _btc_in_resolved GROUP BY ALL)
SELECT t.txid, t.block, t.time, t.tx_index, false AS coinbase, t.n_in, t.node_fee, t.file,
       t.known + coalesce(ins.known, 0) AS known,
       (t.in_sum + coalesce(ins.in_sum, 0))::HUGEINT AS in_sum, t.out_sum,
       t.known + coalesce(ins.known, 0) = t.n_in AS complete
FROM t LEFT JOIN ins USING (txid, block)
"""

_INPUT_FLOWS = f"""
SELECT $chain AS chain, block, time, tx_index * {TX_STRIDE} + idx AS ordinal, txid AS tx_hash,
       address AS src, '{TX_NODE_PREFIX}' || txid AS dst, $asset AS asset,
       value::VARCHAR AS amount_out, value::VARCHAR AS amount_in, 'utxo' AS kind,
       NULL::VARCHAR AS dst_chain, NULL::VARCHAR AS dst_asset
FROM _btc_in_resolved WHERE value > 0
"""
_OUTPUT_FLOWS = f"""
SELECT $chain, block, time, tx_index * {TX_STRIDE} + {LOG_BASE} + n, txid,
       '{TX_NODE_PREFIX}' || txid, address, $asset, value::VARCHAR, value::VARCHAR, 'utxo',
       NULL, NULL
FROM _btc_out WHERE value > 0
"""
# The fee of a complete transaction is inputs - outputs; of an incomplete one, the node's.
_FEE_FLOWS = f"""
SELECT $chain, block, time, tx_index * {TX_STRIDE} + {FEE_POSITION}, txid,
       '{TX_NODE_PREFIX}' || txid, '{FEE_SINK}', $asset, fee::VARCHAR, fee::VARCHAR, 'fee',
       NULL, NULL
FROM (SELECT *, CASE WHEN coinbase THEN 0 WHEN complete THEN in_sum - out_sum
                     ELSE node_fee END AS fee FROM _btc_fee)
WHERE fee > 0 {{only}}
"""


class _Batch:
    """Writes one import batch by batch inside the caller's transaction."""

    def __init__(self, ws: Workspace, chain: str, report: IngestReport) -> None:
        self.ws, self.con, self.chain, self.report = ws, ws.con, chain, report
        self.params = {"chain": chain, "asset": native_asset(chain)}

    def start(self) -> None:
        self.con.execute(_WORK_DDL)

    def _count(self, sql: str) -> int:
        return int(self.con.execute(sql).fetchone()[0])  # type: ignore[index]

    def _add_flows(self, sql: str) -> None:
        flows = self.con.execute(sql, self.params).fetch_arrow_table()
        self.report.flows_added += self.ws.add_flows(flows.rename_columns(FLOW_COLUMNS))

    def write(self, cols: Columns) -> None:
        if not cols.t_txid:
            return
        con, chain, report = self.con, {"chain": self.chain}, self.report
        tables = _tables(cols)
        for name, table in tables.items():
            con.register(name, table)
        try:
            before = self._count("SELECT count(*) FROM utxo_outputs")
            con.execute(
                """
                INSERT INTO utxo_outputs
                SELECT DISTINCT ON (o.txid, o.n) $chain, o.txid, o.n, o.address, o.value, o.block
                FROM _btc_out o
                ANTI JOIN (SELECT txid, n FROM utxo_outputs WHERE chain = $chain) u
                  ON u.txid = o.txid AND u.n = o.n
                """,
                chain,
            )
            report.outputs_added += self._count("SELECT count(*) FROM utxo_outputs") - before
            con.execute("INSERT INTO _btc_seen SELECT txid, block FROM _btc_tx")
            con.execute(_RESOLVE_BATCH, chain)
            con.execute(_FEES_BATCH)
            _check_fees(con)
            con.execute(
                "INSERT INTO _btc_wait_in SELECT txid, idx, block, time, tx_index, prev_txid, "
                "prev_n FROM _btc_in_resolved WHERE value IS NULL"
            )
            con.execute(
                "INSERT INTO _btc_wait_tx SELECT txid, block, time, tx_index, n_in, node_fee, "
                "file, known, in_sum, out_sum FROM _btc_fee WHERE NOT complete"
            )
            self._add_flows(
                f"{_INPUT_FLOWS} UNION ALL {_OUTPUT_FLOWS} UNION ALL "
                + _FEE_FLOWS.format(only="AND complete")
            )
            before = self._count("SELECT count(*) FROM tx_memos")
            con.execute(
                """
                INSERT INTO tx_memos
                SELECT DISTINCT $chain, m.block, m.time, m.txid, m.memo FROM _btc_memo m
                ANTI JOIN (SELECT tx_hash, memo FROM tx_memos WHERE chain = $chain) t
                  ON t.tx_hash = m.txid AND t.memo = m.memo
                """,
                chain,
            )
            report.memos_added += self._count("SELECT count(*) FROM tx_memos") - before
        finally:
            for name in tables:
                con.unregister(name)

    def finish(self, known: pa.Table) -> None:
        con, report = self.con, self.report
        con.register("_btc_known", known)
        try:
            con.execute(_RESOLVE_WAITING, {"chain": self.chain})
            con.execute(_FEES_WAITING)
            _check_fees(con)
            self._add_flows(f"{_INPUT_FLOWS} UNION ALL " + _FEE_FLOWS.format(only=""))
            report.inputs_unknown += self._count(
                "SELECT count(*) FROM _btc_in_resolved WHERE value IS NULL"
            )
            report.fees_unknown += self._count(
                "SELECT count(*) FROM _btc_fee WHERE NOT complete AND node_fee IS NULL"
            )
            report.txs += self._count("SELECT count(DISTINCT (txid, block)) FROM _btc_seen")
            report.blocks += self._count("SELECT count(DISTINCT block) FROM _btc_seen")
        finally:
            con.unregister("_btc_known")
            try:
                for name in _WORK_TABLES:
                    con.execute(f"DROP TABLE IF EXISTS {name}")
            except duckdb.Error:
                pass  # an aborted transaction: the rollback removes them


def add_notes(report: IngestReport) -> None:
    """Say what could not be mapped, once per import."""
    if report.inputs_unknown:
        report.notes.append(
            f"{report.inputs_unknown} inputs spend outputs not in this import or the "
            "workspace (missing history): no spending flow; import the earlier blocks "
            "or use getblock verbosity 3"
        )
    if report.fees_unknown:
        report.notes.append(
            f"{report.fees_unknown} transactions have inputs of unknown value and no "
            "'fee' from the node: no fee flow"
        )


def _check_fees(con: Any) -> None:
    """Inputs worth less than the outputs, or a computed fee the node contradicts, is bad data."""
    bad = con.execute(
        """
        SELECT txid, block, file, in_sum, out_sum, node_fee FROM _btc_fee
        WHERE NOT coinbase AND complete
          AND (in_sum < out_sum OR (node_fee IS NOT NULL AND node_fee <> in_sum - out_sum))
        ORDER BY block, tx_index LIMIT 1
        """
    ).fetchone()
    if bad:
        txid, block, file, in_sum, out_sum, node_fee = bad
        raise InputError(
            f"transaction {txid}: inputs {in_sum} sat, outputs {out_sum} sat, node fee "
            f"{node_fee} sat do not balance",
            file=file, block=int(block), field="fee",
        )
