"""Merge the laundering plan and the background of one chunk of blocks into ethereum-etl rows.

Within a block the plan's transactions come first (in plan order), then the background in
random order; transaction_index, log_index (per block, in transaction order),
cumulative gas and the block rows all follow from that order.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from heisttrace.simulate import events, ids
from heisttrace.simulate import timeline as tl
from heisttrace.simulate.background import (
    BASE_FEE, LOG_SCHEMA, TRACE_SCHEMA, TX_SCHEMA, Part,
)
from heisttrace.simulate.etl_writer import EtlWriter
from heisttrace.simulate.model import EthTx

EMPTY_UNCLES = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"
EMPTY_BLOOM = "0x" + "0" * 512
BUILDER = "0x95222290dd7278aa3ddd389cc1e1d165cc4bafe5"  # beaverbuild, a common block builder
BUILDER_EXTRA = "0x6265617665726275696c642e6f7267"  # "beaverbuild.org"


def plan_part(txs: list[EthTx]) -> Part:
    """The plan's transactions as a Part (row order = plan order)."""
    tx = {k: [] for k in TX_SCHEMA.names}
    lg = {k: [] for k in LOG_SCHEMA.names}
    tr = {k: [] for k in TRACE_SCHEMA.names}
    for i, t in enumerate(txs):
        for k, v in (("block", t.block), ("prio", 0), ("hash", t.hash), ("nonce", t.nonce),
                     ("from_address", t.frm), ("to_address", t.to), ("value", str(t.value)),
                     ("gas", t.gas_used * 13 // 10), ("gas_price", t.gas_price), ("input", t.input),
                     ("gas_used", t.gas_used)):
            tx[k].append(v)
        for pos, (kind, j) in enumerate(t.order):
            if kind == "t":
                x = t.transfers[j]
                topics, data = events.transfer_log(x.frm, x.to, x.value)
                row = (i, pos, x.token, data, ",".join(topics), True, x.token, x.frm, x.to, str(x.value))
            else:
                x = t.logs[j]
                row = (i, pos, x.address, x.data, ",".join(x.topics), False, None, None, None, None)
            for k, v in zip(LOG_SCHEMA.names, row):
                lg[k].append(v)
        if t.traces:
            top_children = sum(1 for c in t.traces if len(c.path) == 1)
            rows = [(i, 0, t.frm, t.to, str(t.value), t.input, "", top_children, t.gas_used, t.gas_used // 2)]
            for pos, c in enumerate(t.traces, start=1):
                kids = sum(1 for d in t.traces if len(d.path) == len(c.path) + 1 and d.path[:-1] == c.path)
                rows.append((i, pos, c.frm, c.to, str(c.value), "0x", ",".join(map(str, c.path)),
                             kids, 50_000, 20_000))
            for row in rows:
                for k, v in zip(TRACE_SCHEMA.names, row):
                    tr[k].append(v)
    return Part(pa.table(tx, schema=TX_SCHEMA), pa.table(lg, schema=LOG_SCHEMA),
                pa.table(tr, schema=TRACE_SCHEMA))


def _rank_in_group(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2... inside each run of equal (sorted) keys."""
    first = np.searchsorted(keys, keys, side="left")
    return np.arange(len(keys)) - first


class ChunkAssembler:
    """Writes chunks in block order; carries the last block hash to the next chunk."""

    def __init__(self, writer: EtlWriter, seed: int) -> None:
        self.writer = writer
        self.seed = seed
        self.prev_hash = "0x" + ids.digest(seed, "parent of first block").hex()

    def write(self, index: int, b0: int, b1: int, parts: list[Part]) -> dict[str, int]:
        rng = np.random.default_rng([self.seed, 3, index])
        nb = b1 - b0
        bhash = ids.prefixed(ids.random_hex(rng, nb, 32))
        parts = [p for p in parts if p.tx.num_rows]
        offsets = np.cumsum([0] + [p.tx.num_rows for p in parts])
        if parts:
            tx = pa.concat_tables([p.tx for p in parts])
            logs = pa.concat_tables([
                p.logs.set_column(0, "tx", pc.add(p.logs.column("tx"), int(o)))
                for p, o in zip(parts, offsets)])
            traces = pa.concat_tables([
                p.traces.set_column(0, "tx", pc.add(p.traces.column("tx"), int(o)))
                for p, o in zip(parts, offsets)])
        else:
            tx, logs, traces = TX_SCHEMA.empty_table(), LOG_SCHEMA.empty_table(), TRACE_SCHEMA.empty_table()
        n = tx.num_rows
        block = tx.column("block").to_numpy()
        prio = tx.column("prio").to_numpy()
        tie = np.where(prio == 0, np.arange(n), rng.integers(0, 2**62, n) + n)
        order = np.lexsort((tie, prio, block))
        inv = np.empty(n, np.int64)
        inv[order] = np.arange(n)
        tx = tx.take(pa.array(order))
        sb = block[order]
        txi = _rank_in_group(sb)
        gu = tx.column("gas_used").to_numpy()
        cs = np.cumsum(gu)
        first = np.searchsorted(sb, sb, side="left")
        cum = cs - (cs[first] - gu[first]) if n else cs
        bh_mat = bhash[sb - b0] if n else np.empty((0, 66), np.uint8)
        block_hash = ids.to_arrow(bh_mat)
        ts = (tl.START_TIME + (sb - tl.START_BLOCK) * tl.ETH_BLOCK_TIME).astype(np.int64)
        gp = tx.column("gas_price").to_numpy()
        nulls = pa.nulls(n, pa.string())
        self.writer.write("transactions", pa.table({
            "hash": tx.column("hash"), "nonce": tx.column("nonce"), "block_hash": block_hash,
            "block_number": pa.array(sb), "transaction_index": pa.array(txi),
            "from_address": tx.column("from_address"), "to_address": tx.column("to_address"),
            "value": tx.column("value"), "gas": tx.column("gas"), "gas_price": tx.column("gas_price"),
            "input": tx.column("input"), "block_timestamp": pa.array(ts),
            "max_fee_per_gas": pa.array(gp * 2), "max_priority_fee_per_gas": pa.array(gp - BASE_FEE),
            "transaction_type": pa.array(np.full(n, 2, np.int64)),
            "receipt_cumulative_gas_used": pa.array(cum), "receipt_gas_used": tx.column("gas_used"),
            "receipt_contract_address": nulls, "receipt_root": nulls,
            "receipt_status": pa.array(np.ones(n, np.int64)), "receipt_effective_gas_price": tx.column("gas_price"),
        }))
        self.writer.write("receipts", pa.table({
            "transaction_hash": tx.column("hash"), "transaction_index": pa.array(txi),
            "block_hash": block_hash, "block_number": pa.array(sb), "cumulative_gas_used": pa.array(cum),
            "gas_used": tx.column("gas_used"), "contract_address": nulls, "root": nulls,
            "status": pa.array(np.ones(n, np.int64)), "effective_gas_price": tx.column("gas_price"),
            "l1_fee": nulls, "l1_gas_used": nulls, "l1_gas_price": nulls, "l1_fee_scalar": nulls,
        }))
        self._logs(logs, inv, sb, txi, tx, bhash, b0)
        self._traces(traces, inv, sb, txi, tx)
        # blocks
        numbers = np.arange(b0, b1, dtype=np.int64)
        counts = np.bincount(sb - b0, minlength=nb) if n else np.zeros(nb, np.int64)
        gas = np.bincount(sb - b0, weights=gu, minlength=nb).astype(np.int64) if n else np.zeros(nb, np.int64)
        hashes = ids.to_arrow(bhash)
        parents = pa.concat_arrays([pa.array([self.prev_hash]), hashes.slice(0, nb - 1)])
        self.prev_hash = hashes[nb - 1].as_py()
        roots = [ids.to_arrow(ids.prefixed(ids.random_hex(rng, nb, 32))) for _ in range(4)]
        blocks = pa.table({
            "number": pa.array(numbers), "hash": hashes, "parent_hash": parents,
            "nonce": pa.repeat("0x0000000000000000", nb), "sha3_uncles": pa.repeat(EMPTY_UNCLES, nb),
            "logs_bloom": pa.repeat(EMPTY_BLOOM, nb), "transactions_root": roots[0],
            "state_root": roots[1], "receipts_root": roots[2], "miner": pa.repeat(BUILDER, nb),
            "difficulty": pa.array(np.zeros(nb, np.int64)),
            "total_difficulty": pa.repeat("58750003716598352816469", nb),
            "size": pa.array(1_000 + counts * 150), "extra_data": pa.repeat(BUILDER_EXTRA, nb),
            "gas_limit": pa.array(np.full(nb, 36_000_000, np.int64)), "gas_used": pa.array(gas),
            "timestamp": pa.array((tl.START_TIME + (numbers - tl.START_BLOCK) * tl.ETH_BLOCK_TIME).astype(np.int64)),
            "transaction_count": pa.array(counts.astype(np.int64)),
            "base_fee_per_gas": pa.array(np.full(nb, BASE_FEE, np.int64)),
            "withdrawals_root": roots[3], "withdrawals": pa.nulls(nb, pa.string()),
        })
        # Like an export of the blocks that hold the data: empty blocks are left out.
        self.writer.write("blocks", blocks.filter(pa.array(counts > 0)))
        return {"transactions": n, "logs": logs.num_rows, "traces": traces.num_rows}

    def _logs(self, logs: pa.Table, inv, sb, txi, tx, bhash, b0) -> None:
        if logs.num_rows == 0:
            return
        t = inv[logs.column("tx").to_numpy()]
        lb, lt, pos = sb[t], txi[t], logs.column("pos").to_numpy()
        order = np.lexsort((pos, lt, lb))
        logs = logs.take(pa.array(order))
        t, lb, lt = t[order], lb[order], lt[order]
        log_index = _rank_in_group(lb)
        hashes = tx.column("hash").take(pa.array(t))
        self.writer.write("logs", pa.table({
            "log_index": pa.array(log_index), "transaction_hash": hashes,
            "transaction_index": pa.array(lt), "block_hash": ids.to_arrow(bhash[lb - b0]),
            "block_number": pa.array(lb), "address": logs.column("address"),
            "data": logs.column("data"), "topics": logs.column("topics"),
        }))
        mask = logs.column("tt")
        tt = pa.table({
            "token_address": logs.column("tt_token"), "from_address": logs.column("tt_from"),
            "to_address": logs.column("tt_to"), "value": logs.column("tt_value"),
            "transaction_hash": hashes, "log_index": pa.array(log_index), "block_number": pa.array(lb),
        }).filter(mask)
        self.writer.write("token_transfers", tt)

    def _traces(self, traces: pa.Table, inv, sb, txi, tx) -> None:
        if traces.num_rows == 0:
            return
        t = inv[traces.column("tx").to_numpy()]
        tb, tt_, pos = sb[t], txi[t], traces.column("pos").to_numpy()
        order = np.lexsort((pos, tt_, tb))
        traces = traces.take(pa.array(order))
        t, tb, tt_ = t[order], tb[order], tt_[order]
        hashes = tx.column("hash").take(pa.array(t))
        path = traces.column("trace_address")
        suffix = pc.if_else(pc.equal(path, ""), "", pc.binary_join_element_wise("_", pc.replace_substring(path, ",", "_"), ""))
        n = traces.num_rows
        self.writer.write("traces", pa.table({
            "block_number": pa.array(tb), "transaction_hash": hashes, "transaction_index": pa.array(tt_),
            "from_address": traces.column("from_address"), "to_address": traces.column("to_address"),
            "value": traces.column("value"), "input": traces.column("input"),
            "output": pa.repeat("0x", n), "trace_type": pa.repeat("call", n),
            "call_type": pa.repeat("call", n), "reward_type": pa.nulls(n, pa.string()),
            "gas": traces.column("gas"), "gas_used": traces.column("gas_used"),
            "subtraces": traces.column("subtraces"), "trace_address": path,
            "error": pa.nulls(n, pa.string()), "status": pa.array(np.ones(n, np.int64)),
            "trace_id": pc.binary_join_element_wise("call_", hashes, suffix, ""),
        }))
