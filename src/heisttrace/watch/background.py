"""A watch running in a thread of another process: `heisttrace serve --watch URL`.

DuckDB lets one process at a time open a database for writing, and no other process may open
it at all meanwhile, so a screening server and a separate `heisttrace watch` cannot share a
workspace. In one process they can: the watch writes through its own cursor of the server's
database, and the screening index, which checks the cases and the ledger every few seconds,
picks up every committed batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from heisttrace.ledger.workspace import Workspace
from heisttrace.sources.rpc_client import RpcError
from heisttrace.watch.alerts import Deliverer
from heisttrace.watch import state as S
from heisttrace.watch.follow import Watcher, WatchStats, open_deliverer, pick_cases

Log = Callable[[str], None]
MAX_BACKOFF = 30.0


@dataclass
class WatchConfig:
    """What `heisttrace watch` is told on its command line."""

    rpc: str
    chain: str = "ethereum"
    cases: list[str] | None = None
    alerts: Path | None = None
    webhooks: list[str] = field(default_factory=list)
    secret: str | None = None
    interval: float = 2.0
    from_block: int | None = None
    batch_blocks: int = 20
    confirmations: int = 0
    trace_method: str = "auto"
    retries: int = 5  # per node request, with growing pauses, before a poll counts as failed

    def open(self, ws: Workspace, log: Log | None = None) -> tuple[Watcher, Deliverer]:
        """The watcher and its alert deliverer on `ws`; raises HeisttraceError for a case
        that cannot be watched and RpcError when the node is needed and does not answer."""
        deliverer = open_deliverer(ws, self.alerts, list(self.webhooks), self.secret,
                                   self.confirmations, log)
        try:
            watcher = Watcher(ws, self.rpc, chain=self.chain, cases=self.cases or None,
                              from_block=self.from_block, batch_blocks=self.batch_blocks,
                              trace_method=self.trace_method, deliverer=deliverer,
                              retries=self.retries, log=log)
        except BaseException:
            deliverer.close()
            raise
        return watcher, deliverer


class BackgroundWatch:
    """Runs a watch in a daemon thread until `stop()`; a failing node or a failed batch (rolled
    back whole) is retried with growing pauses, so the server keeps answering throughout."""

    def __init__(self, ws: Workspace, config: WatchConfig, log: Log | None = None) -> None:
        self.ws, self.config = ws, config
        self.log: Log = log or (lambda msg: None)
        self.stats: WatchStats | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heisttrace-watch", daemon=True)
        self._cases: list[str] | None = None

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        """Checks the cases here, so one that cannot be watched stops the caller with its
        message; the node is only asked in the thread (a dead one must not delay the server)."""
        notes: list[str] = []
        self._cases = pick_cases(self.ws, self.config.cases, notes)
        for case in self.config.cases or ():
            S.require_state(self.ws, case)
        for note in notes:
            self.log(note)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Asks the thread to stop after its current batch; True once it has."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        s = self.stats
        return {"running": self.running, "chain": self.config.chain, "cases": self._cases,
                "last_block": None if s is None else s.last_block,
                "batches": 0 if s is None else s.batches, "blocks": 0 if s is None else s.blocks,
                "flows": 0 if s is None else s.flows, "alerts": 0 if s is None else s.alerts,
                "reorgs": 0 if s is None else s.reorgs,
                "error": self._redact((s.error if s is not None else None) or self.error)}

    def _redact(self, text: str | None) -> str | None:
        """Node URLs often carry an API key in their path or query: shown without them."""
        if text is None:
            return None
        url = urlsplit(self.config.rpc)
        shown = f"{url.scheme}://{url.hostname or ''}" + (f":{url.port}" if url.port else "")
        if url.path.strip("/") or url.query or url.username:
            shown += "/…"
        return text.replace(self.config.rpc, shown)

    def _failed(self, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self.log(f"watch error: {exc}")

    def _run(self) -> None:
        wait = self.config.interval
        while not self._stop.is_set():
            try:
                watcher, deliverer = self.config.open(self.ws, self.log)
            except (RpcError, OSError) as exc:
                self._failed(exc)
                self._stop.wait(wait)
                wait = min(wait * 2, MAX_BACKOFF)
                continue
            except Exception as exc:  # the workspace changed under us (a case deleted ...)
                self._failed(exc)
                return
            self.stats, self._cases, self.error = watcher.stats, watcher.cases, None
            self.log(f"following {', '.join(watcher.cases)} from block "
                     f"{watcher.last_block() + 1}")
            try:
                watcher.run(interval=self.config.interval, stop=self._stop.is_set)
                return
            except Exception as exc:  # e.g. a batch that failed inside DuckDB:
                self._failed(exc)    # that batch was rolled back; open again and go on
                self._stop.wait(wait)
                wait = min(wait * 2, MAX_BACKOFF)
            finally:
                watcher.close()
                deliverer.close()
