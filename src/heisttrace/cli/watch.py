"""`heisttrace watch`: follow new blocks and alert when tainted value reaches a cash-out."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from heisttrace.cli.common import WorkspaceOpt, err_console
from heisttrace.ledger import open_workspace


def watch(
    rpc: Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the node to follow.")],
    case: Annotated[list[str] | None, typer.Option(
        "--case", help="Case to keep up to date (repeat; default: every case).")] = None,
    alerts: Annotated[Path | None, typer.Option(
        help="Append alerts as JSON lines to this file (default: stdout).")] = None,
    webhook: Annotated[list[str] | None, typer.Option(
        "--webhook", help="POST each alert here (repeat); retried until it answers 2xx.")] = None,
    secret: Annotated[str | None, typer.Option(
        help="HMAC-SHA256 key for X-Heisttrace-Signature (default: $HEISTTRACE_WEBHOOK_SECRET)."
    )] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 2.0,
    chain: Annotated[str, typer.Option(help="Chain name the node serves.")] = "ethereum",
    from_block: Annotated[int | None, typer.Option(
        help="First block to watch (default: after the last ingested one).")] = None,
    batch_blocks: Annotated[int, typer.Option(help="Blocks per committed batch.")] = 20,
    confirmations: Annotated[int, typer.Option(
        help="Alert only once the flow's block has this many blocks on top.")] = 0,
    trace_method: Annotated[str, typer.Option(
        help="auto, debug_traceBlockByNumber, trace_block or none.")] = "auto",
    workspace: WorkspaceOpt = None,
) -> None:
    """Follow new blocks, keep the cases' taint up to date, and alert when tainted value
    reaches an exchange deposit address or a cash-out/dark entity. Stop with Ctrl-C; a
    restart resumes from the last committed block."""
    from heisttrace.watch.background import WatchConfig

    stopping = [False]

    def _stop(*_: object) -> None:
        stopping[0] = True

    signal.signal(signal.SIGTERM, _stop)
    log = lambda msg: err_console.print(f"[dim]watch:[/dim] {msg}", highlight=False)  # noqa: E731
    config = WatchConfig(rpc, chain=chain, cases=list(case or []) or None, alerts=alerts,
                         webhooks=list(webhook or []),
                         secret=secret or os.environ.get("HEISTTRACE_WEBHOOK_SECRET"),
                         interval=interval, from_block=from_block, batch_blocks=batch_blocks,
                         confirmations=confirmations, trace_method=trace_method)
    with open_workspace(workspace, create=False) as ws:
        watcher, deliverer = config.open(ws, log)
        for note in watcher.stats.notes:
            log(note)
        log(f"following {', '.join(watcher.cases)} from block {watcher.last_block() + 1}")
        try:
            with err_console.status("watching for new blocks") as status:
                def stop() -> bool:
                    s = watcher.stats
                    status.update(f"block {s.last_block}: {s.blocks} blocks, {s.flows} flows, "
                                  f"{s.alerts} alerts, {s.reorgs} reorgs")
                    return stopping[0]
                watcher.run(interval=interval, stop=stop)
        except KeyboardInterrupt:
            pass
        finally:
            watcher.close()
            deliverer.close()
        log(f"stopped at block {watcher.last_block()}")


def register(root: typer.Typer) -> None:
    """Adds this module's commands to the root app."""
    root.command()(watch)
