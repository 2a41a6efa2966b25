"""`watch`: poll a node for new blocks, ingest them, advance every watched case, alert.

One batch of blocks is one transaction: the flows (through the RPC importer's own fetcher
and `store_batch`), the block hashes, each case's holding state and undo log, the new taint
edges, the alerts and the checkpoint commit together, so a watch killed at any moment
resumes from the last committed block with nothing lost or doubled. Before each batch the
stored hash of the last block is compared with the node's: a different one means a
reorganisation, and the watch walks back to the last block both agree on, rolls back
everything above it (state.rollback) and replays from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from heisttrace.errors import HeisttraceError
from heisttrace.labels.roles import address_roles
from heisttrace.ledger.schema import FLOW_COLUMNS
from heisttrace.ledger.workspace import Workspace
from heisttrace.sources.evm import store_batch
from heisttrace.sources.rpc import BlockFetcher, checkpoint_name, fetch_new_tokens, store_token_infos
from heisttrace.sources.rpc_client import RpcClient, RpcError
from heisttrace.watch import state as S
from heisttrace.watch.alerts import Deliverer



def watch_checkpoint(chain: str) -> str:
    return f"watch:{chain}"


@dataclass
class WatchStats:
    batches: int = 0
    blocks: int = 0
    flows: int = 0
    alerts: int = 0
    reorgs: int = 0
    last_block: int | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the node's last error, until a poll succeeds again


def pick_cases(ws: Workspace, cases: list[str] | None, notes: list[str]) -> list[str]:
    """The cases to watch: those named (each must exist), else every case with a stored sweep
    state (the others get a note); raises HeisttraceError when there is none."""
    known = dict(ws.con.execute("SELECT case_name, policy FROM cases").fetchall()) \
        if ws.con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                          "table_name = 'cases'").fetchone()[0] else {}  # type: ignore[index]
    names = cases or sorted(known)
    for name in names:
        if name not in known:
            raise HeisttraceError(f"no case {name!r} in this workspace; trace it first")
    if not cases:
        # every case by default, but one traced before the watch state was stored is
        # skipped with a note (named with --case, init_case makes it a clear error)
        stale = [n for n in names if not S.has_state(ws, n)]
        for n in stale:
            notes.append(f"case {n!r} has no stored sweep state; re-run `heisttrace trace` "
                         "for it to be watched")
        names = [n for n in names if n not in stale]
    if not names:
        raise HeisttraceError("no case to watch; trace one first (`heisttrace trace`)")
    return names


class Watcher:
    """Follows one chain through one node for the given cases (default: every case)."""

    def __init__(self, ws: Workspace, url: str, *, chain: str = "ethereum",
                 cases: list[str] | None = None, from_block: int | None = None,
                 batch_blocks: int = 20, trace_method: str = "auto",
                 deliverer: Deliverer | None = None, retries: int = 5, backoff: float = 0.5,
                 log: Callable[[str], None] | None = None) -> None:
        self.ws, self.url, self.chain = ws, url, chain
        self.batch_blocks = batch_blocks
        self.log = log or (lambda msg: None)
        self.rpc = RpcClient(url, retries=retries, backoff=backoff, timeout=30.0)
        self.fetcher = BlockFetcher(self.rpc, trace_method)
        self.deliverer = deliverer
        self.stats = WatchStats()
        # case -> state as of the last committed batch; `_stamp`: the created_at it wrote
        self._states: dict[str, S.CaseState] = {}
        self._stamp: datetime | None = None
        self._roles_cache: tuple[Any, dict[tuple[str, str], tuple[str, str | None, str | None]],
                                 set[tuple[str, str]]] | None = None
        S.ensure_tables(ws)
        self.cases = pick_cases(ws, cases, self.stats.notes)
        self._start(from_block)

    def close(self) -> None:
        self.rpc.close()

    def _start(self, from_block: int | None) -> None:
        """The first block to watch: after our checkpoint, else after the RPC importer's,
        else after the last ingested block of the chain, else `from_block`/the head."""
        ws = self.ws
        done = ws.checkpoint(watch_checkpoint(self.chain))
        if done is None:
            done = ws.checkpoint(checkpoint_name(self.chain, self.url))
        if done is None:
            row = ws.con.execute("SELECT max(block) FROM flows WHERE chain = ?",
                                 [self.chain]).fetchone()
            done = None if row is None or row[0] is None else str(row[0])
        if from_block is not None:
            last = from_block - 1
        elif done is not None:
            last = int(done)
        else:
            last = int(self.rpc.call("eth_blockNumber"), 16)
        with ws.transaction():
            for case in self.cases:
                S.init_case(ws, case, self.chain, last + 1)
            if ws.checkpoint(watch_checkpoint(self.chain)) is None:
                ws.set_checkpoint(watch_checkpoint(self.chain), str(last))
                blk = self.rpc.call("eth_getBlockByNumber", [hex(last), False]) if last >= 0 \
                    else None
                if blk:
                    ws.con.execute("INSERT OR REPLACE INTO watch_blocks VALUES (?, ?, ?, ?)",
                                   [self.chain, last, blk["hash"], blk["parentHash"]])
        self.stats.last_block = last

    # -- one pass ---------------------------------------------------------------------------
    def last_block(self) -> int:
        return int(self.ws.checkpoint(watch_checkpoint(self.chain)))  # type: ignore[arg-type]

    def _stored_hash(self, block: int) -> str | None:
        row = self.ws.con.execute("SELECT hash FROM watch_blocks WHERE chain = ? AND block = ?",
                                  [self.chain, block]).fetchone()
        return None if row is None else str(row[0])

    def _node_hash(self, block: int) -> str | None:
        blk = self.rpc.call("eth_getBlockByNumber", [hex(block), False])
        return None if blk is None else str(blk["hash"])

    def check_reorg(self) -> bool:
        """Rolls back to the last block the node and we agree on; True if it did."""
        last = self.last_block()
        fork = last
        while fork >= 0:
            mine = self._stored_hash(fork)
            if mine is None or mine == self._node_hash(fork):
                break
            fork -= 1
        if fork == last:
            return False
        self.log(f"reorganisation: blocks {fork + 1}-{last} changed; rolling back")
        self._states = {}  # the rollback rewrites the holdings in the workspace
        with self.ws.transaction():
            S.rollback(self.ws, self.chain, fork)
            self.ws.set_checkpoint(watch_checkpoint(self.chain), str(fork))
            rpc_cp = checkpoint_name(self.chain, self.url)
            cp = self.ws.checkpoint(rpc_cp)
            if cp is not None and int(cp) > fork:
                self.ws.set_checkpoint(rpc_cp, str(fork))
            self._bump_cases()
        self.stats.reorgs += 1
        return True

    def step(self) -> int:
        """Processes up to one batch of new blocks; returns how many blocks it committed."""
        self.check_reorg()
        head = int(self.rpc.call("eth_blockNumber"), 16)
        last = self.last_block()
        if head > last:
            first, end = last + 1, min(head, last + self.batch_blocks)
            batch, _ = self.fetcher.window(first, end)
            blocks = batch.blocks.to_pylist() if batch.blocks is not None else []
            blocks.sort(key=lambda b: int(b["number"]))
            if blocks and blocks[0]["parent_hash"] != self._stored_hash(last) \
                    and self._stored_hash(last) is not None:
                return 0  # the chain moved under us; the next pass sees the reorg
            tokens = fetch_new_tokens(self.ws, self.rpc, self.chain, batch)
            self._commit(batch, tokens, blocks, first, end)
        if self.deliverer is not None:
            self.deliverer.deliver(head)
        return max(0, min(head, last + self.batch_blocks) - last) if head > last else 0

    def _commit(self, batch: Any, tokens: Any, blocks: list[dict[str, Any]], first: int,
                end: int) -> None:
        ws = self.ws
        roles, ignored = self._roles()
        n_alerts = 0
        with self._batch():
            store_batch(ws, batch, self.chain)
            store_token_infos(ws, self.chain, tokens)
            for b in blocks:
                ws.con.execute("INSERT OR REPLACE INTO watch_blocks VALUES (?, ?, ?, ?)",
                               [self.chain, int(b["number"]), b["hash"], b["parent_hash"]])
            rows = ws.con.execute(
                f"SELECT {', '.join(FLOW_COLUMNS)} FROM ledger WHERE chain = ? AND block "
                "BETWEEN ? AND ? ORDER BY block, ordinal, tx_hash",
                [self.chain, first, end]).fetchall()
            flows = [dict(zip(FLOW_COLUMNS, r)) for r in rows]
            by_block: dict[int, list[dict[str, Any]]] = {}
            for f in flows:
                by_block.setdefault(int(f["block"]), []).append(f)
            balances = S.LedgerBalances(ws, self.chain, first, flows)
            states = self._states_for(ws)
            for case in self.cases:
                st = states[case]
                for block in range(first, end + 1):
                    alerts, edges = S.apply_block(ws, st, block, by_block.get(block, []),
                                                  roles, ignored, balances)
                    S.save(ws, st, block)
                    self._store_edges(case, edges)
                    n_alerts += self._store_alerts(case, st, alerts)
            self._bump_cases()
            ws.set_checkpoint(watch_checkpoint(self.chain), str(end))
            rpc_cp = checkpoint_name(self.chain, self.url)
            cp = ws.checkpoint(rpc_cp)
            if cp is None or int(cp) < end:
                ws.set_checkpoint(rpc_cp, str(end))
            ws.record_import("watch", f"{self.url} {self.chain} blocks {first}-{end}",
                             len(flows))
        self.stats.batches += 1
        self.stats.blocks += end - first + 1
        self.stats.flows += len(flows)
        self.stats.alerts += n_alerts
        self.stats.last_block = end

    def _roles(self) -> tuple[dict[tuple[str, str], tuple[str, str | None, str | None]],
                              set[tuple[str, str]]]:
        """Address roles (and the ignored addresses), made again only when the labels changed:
        with the shared label sets (547k labels) making them took ~2 s, every batch."""
        stamp = self.ws.con.execute(
            "SELECT count(*), coalesce(sum(hash(chain, address, category, entity, confidence,"
            " source)), 0) FROM labels").fetchone()
        if self._roles_cache is None or self._roles_cache[0] != stamp:
            rows = address_roles(self.ws).to_pylist()
            roles = {(r["chain"], r["address"]): (r["role"], r["entity"], r["category"])
                     for r in rows if r["role"] != "ignore"}
            ignored = {(r["chain"], r["address"]) for r in rows if r["role"] == "ignore"}
            self._roles_cache = (stamp, roles, ignored)
        return self._roles_cache[1], self._roles_cache[2]

    @contextmanager
    def _batch(self) -> Iterator[None]:
        """A batch's transaction: a failed batch is rolled back in the workspace, and the
        case states it changed in memory are dropped (the next batch reloads them)."""
        try:
            with self.ws.transaction():
                yield
        except BaseException:
            self._states = {}
            raise

    def _states_for(self, ws: Workspace) -> dict[str, S.CaseState]:
        """Each watched case's state: kept in memory from the last committed batch (loading a
        million holdings took ~3 s a batch), reloaded when the case changed under us (its
        created_at is not the one this watch last wrote: a re-trace)."""
        stamps = dict(ws.con.execute(
            "SELECT case_name, created_at FROM cases WHERE case_name IN (SELECT unnest(?))",
            [self.cases]).fetchall())
        for case in self.cases:
            st = self._states.get(case)
            if st is None or stamps.get(case) != self._stamp:
                self._states[case] = S.load_case(ws, case)
        return self._states

    def _bump_cases(self) -> None:
        """Screening rebuilds a case's index when created_at changes."""
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        for case in self.cases:
            self.ws.con.execute("UPDATE cases SET created_at = ? WHERE case_name = ?",
                                [now, case])
        self._stamp = now

    def _store_edges(self, case: str, edges: list[dict[str, Any]]) -> None:
        for e in edges:
            scale = 10.0 ** S._decimals(self.ws, e["chain"], e["asset"])
            self.ws.con.execute(
                "INSERT INTO case_edges VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [case, e["chain"], e["block"], e["time"], e["ordinal"], e["tx_hash"], e["src"],
                 e["dst"], e["asset"], e["dst_chain"] or e["chain"],
                 e["dst_asset"] or e["asset"], e["kind"], float(e["amount_out"]) / scale,
                 e["taint"] / scale, e["origin_taint"]])

    def _store_alerts(self, case: str, st: S.CaseState, alerts: list[dict[str, Any]]) -> int:
        n = 0
        for a in alerts:
            scale = 10.0 ** S._decimals(self.ws, a["dchain"], a["dasset"])
            cur = self.ws.con.execute(
                "INSERT OR IGNORE INTO watch_alerts VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, false) RETURNING 1",
                [case, a["chain"], a["tx_hash"], a["ordinal"], a["block"], a["time"], a["src"],
                 a["dst"], a["dasset"], a["role"], a["entity"], a["category"], a["amount_in"],
                 a["taint"], a["taint"] / scale, a["origin_taint"], st.origin_unit])
            n += len(cur.fetchall())
        return n

    def run(self, *, interval: float = 1.0, stop: Callable[[], bool] | None = None,
            max_backoff: float = 30.0) -> WatchStats:
        """Polls until `stop()` says so; a failing node is retried with growing pauses."""
        wait = interval
        while stop is None or not stop():
            try:
                moved = self.step()
                wait = interval
                self.stats.error = None
            except (RpcError, OSError) as exc:
                self.stats.error = f"{type(exc).__name__}: {exc}"
                self.log(f"node error: {exc}; retrying in {wait:.1f}s")
                time.sleep(wait)
                wait = min(wait * 2, max_backoff)
                continue
            if not moved:
                time.sleep(interval)
        return self.stats


def open_deliverer(ws: Workspace, alerts: Path | None, webhooks: list[str], secret: str | None,
                   confirmations: int, log: Callable[[str], None] | None = None) -> Deliverer:
    return Deliverer(ws, alerts_file=alerts, webhooks=tuple(webhooks), secret=secret,
                     confirmations=confirmations, log=log)
