"""`heisttrace ingest` subcommands for Bitcoin Core block JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from heisttrace.cli.common import JsonOpt, WorkspaceOpt, console, print_json
from heisttrace.ledger.workspace import open_workspace
from heisttrace.sources.bitcoin import CHAINS, ingest_bitcoin


def bitcoin(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Block JSON files or folders of them: getblock verbosity 2/3 (a JSON-RPC "
            "response, a bare block, a list of blocks, or JSON lines); getrawtransaction "
            "answers may be added to value inputs or to fill verbosity-1 blocks.",
            show_default=False,
        ),
    ],
    chain: Annotated[
        str,
        typer.Option("--chain", help=f"Which chain the blocks are from: {', '.join(CHAINS)}."),
    ] = "bitcoin",
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import Bitcoin-family blocks as UTXO flows (inputs -> tx:<txid> -> outputs, fees).

    Idempotent: importing the same blocks again adds nothing. OP_RETURN text is kept as
    transaction memos for bridge matching.
    """
    with open_workspace(workspace) as ws:
        with Progress(
            TextColumn("reading blocks"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True, disable=as_json,
        ) as bar:
            task = bar.add_task("read", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = ingest_bitcoin(ws, [str(p) for p in paths], chain=chain, progress=progress)
    if as_json:
        print_json(report.as_dict())
        return
    console.print(
        f"{report.chain}: {report.blocks} blocks, {report.txs} txs, "
        f"{report.flows_added} flows added, {report.memos_added} memos",
        highlight=False,
    )
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)


def register(app: typer.Typer) -> None:
    """Adds this source's subcommands to the `ingest` group."""
    app.command("bitcoin")(bitcoin)
