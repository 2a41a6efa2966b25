"""`heisttrace ingest etl|etherscan`: import ethereum-etl CSV folders and Etherscan JSON."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from heisttrace.cli.common import JsonOpt, WorkspaceOpt, console, err_console, print_json
from heisttrace.ledger import open_workspace
from heisttrace.sources.evm import IngestReport

ChainOpt = Annotated[
    str, typer.Option("--chain", help="Chain the data is from (ethereum, bsc, polygon, ...).")
]


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A Rich bar on stderr fed by the importers' progress(step, done, total) callback."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=err_console, transient=True,
    ) as bar:
        task = bar.add_task("starting", total=1)

        def update(step: str, done: int, total: int) -> None:
            bar.update(task, description=step, completed=done, total=total)

        yield update


def _show(report: IngestReport, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    console.print(
        f"[green]{report.source}[/green]: {report.flows_added:,} flows added, "
        f"{report.duplicates:,} skipped as duplicates, {report.logs_added:,} watched logs, "
        f"{report.tokens_added:,} new tokens ({report.seconds:.1f}s)"
    )
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def etl(
    folder: Annotated[Path, typer.Argument(help="Folder with ethereum-etl CSVs: blocks.csv, "
                                           "transactions.csv, receipts.csv, token_transfers.csv, "
                                           "traces.csv, logs.csv, tokens.csv (any subset).")],
    chain: ChainOpt = "ethereum",
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Import an ethereum-etl export: all of it or nothing, and importing twice adds nothing."""
    from heisttrace.sources.etl import ingest_etl

    with open_workspace(workspace) as ws, _progress(not json) as progress:
        report = ingest_etl(ws, folder, chain=chain, progress=progress)
    _show(report, json)


def etherscan(
    files: Annotated[list[Path], typer.Argument(help="Etherscan txlist / tokentx / "
                                                "txlistinternal answers (JSON, envelope or bare "
                                                "list); kind told by the fields.")],
    chain: ChainOpt = "ethereum",
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Import Etherscan account API answers in one transaction (idempotent)."""
    from heisttrace.sources.etherscan import ingest_etherscan

    with open_workspace(workspace) as ws, _progress(not json) as progress:
        report = ingest_etherscan(ws, files, chain=chain, progress=progress)
    _show(report, json)


def register(app: typer.Typer) -> None:
    """Adds this source's subcommands to the `ingest` group."""
    app.command("etl")(etl)
    app.command("etherscan")(etherscan)
