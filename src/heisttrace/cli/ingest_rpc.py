"""`heisttrace ingest` subcommands for an Ethereum JSON-RPC node."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from heisttrace.cli.common import JsonOpt, WorkspaceOpt, console, err_console, print_json
from heisttrace.ledger.workspace import open_workspace
from heisttrace.sources.rpc import DEFAULT_BATCH_BLOCKS, TRACE_CHOICES, ingest_rpc


def rpc(
    url: Annotated[str, typer.Argument(help="JSON-RPC endpoint, e.g. http://127.0.0.1:8545.")],
    from_block: Annotated[int, typer.Option("--from-block", help="First block to ingest.")],
    to_block: Annotated[int, typer.Option("--to-block", help="Last block to ingest (inclusive).")],
    chain: Annotated[str, typer.Option("--chain", help="Chain name stored with the flows.")] = "ethereum",
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", help="Blocks per window; each window commits with its checkpoint."),
    ] = DEFAULT_BATCH_BLOCKS,
    request_size: Annotated[
        int, typer.Option("--request-size", help="Most JSON-RPC calls in one HTTP request.")
    ] = 100,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="HTTP requests in flight at once (a batch is "
                          "split across them; lower it for a provider that rate-limits).")
    ] = 4,
    traces: Annotated[
        str,
        typer.Option(
            "--traces",
            help="Tracing API for internal transfers: auto, debug_traceBlockByNumber, "
            "trace_block, or none (no internal transfers).",
        ),
    ] = "auto",
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore the checkpoint and fetch the whole range again.")
    ] = False,
    retries: Annotated[int, typer.Option("--retries", help="Retries per request (backoff doubles).")] = 5,
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Seconds to wait for one HTTP request (tracing a window "
                     "of busy mainnet blocks can take a while)."),
    ] = 120.0,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import blocks FROM..TO from a node: value, ERC-20 and internal transfers, gas fees.

    Resumes after the last committed window of an earlier run against the same URL and
    chain; `--restart` fetches the range again (flows already present are not duplicated).
    """
    if traces not in TRACE_CHOICES:
        raise typer.BadParameter(f"--traces must be one of {', '.join(TRACE_CHOICES)}")
    with open_workspace(workspace) as ws:
        columns = (
            TextColumn("[bold]blocks"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]} blocks/s"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err_console, transient=True, disable=as_json) as bar:
            task = bar.add_task("ingest", total=to_block - from_block + 1, rate="-")

            def progress(done: int, total: int) -> None:
                elapsed = bar.tasks[0].elapsed or 0.0
                rate = f"{done / elapsed:,.1f}" if elapsed > 0 else "-"
                bar.update(task, completed=done, total=total, rate=rate)

            report = ingest_rpc(
                ws, url, from_block, to_block, chain=chain, batch_blocks=batch_size,
                progress=progress, restart=restart, trace_method=traces,
                request_size=request_size, retries=retries, timeout=timeout,
                concurrency=concurrency,
            )
    if as_json:
        print_json(report.as_dict())
        return
    for note in report.notes:
        console.print(f"[dim]{note}[/dim]")
    rate = report.blocks / report.seconds if report.seconds > 0 else 0.0
    console.print(
        f"[green]ingested[/green] {report.blocks} blocks ({report.from_block}..{report.to_block}"
        f" of {chain}), {report.transactions} transactions, {report.flows_added} new flows, "
        f"{report.tokens_added} new tokens in {report.seconds:.1f}s ({rate:,.1f} blocks/s); "
        f"traces: {report.trace_method or '-'}; checkpoint: {report.checkpoint}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Adds this source's subcommands to the `ingest` group."""
    app.command("rpc")(rpc)
