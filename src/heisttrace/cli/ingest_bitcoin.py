"""`heisttrace ingest bitcoin` (block JSON files) and `ingest bitcoin-rpc` (a node)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from heisttrace.cli.common import JsonOpt, WorkspaceOpt, console, print_json
from heisttrace.ledger.workspace import open_workspace
from heisttrace.sources.bitcoin import CHAINS, IngestReport, ingest_bitcoin
from heisttrace.sources.bitcoin_rpc import BATCH_BLOCKS, ingest_bitcoin_rpc

ChainOpt = Annotated[
    str, typer.Option("--chain", help=f"Which chain the blocks are from: {', '.join(CHAINS)}.")
]


def _bar(label: str, quiet: bool) -> Progress:
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True, disable=quiet)


def _print(report: IngestReport, as_json: bool) -> None:
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
    chain: ChainOpt = "bitcoin",
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import Bitcoin-family blocks as UTXO flows (inputs -> tx:<txid> -> outputs, fees).

    Idempotent: importing the same blocks again adds nothing. OP_RETURN text is kept as
    transaction memos for bridge matching.
    """
    with open_workspace(workspace) as ws, _bar("reading blocks", as_json) as bar:
        task = bar.add_task("read", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = ingest_bitcoin(ws, [str(p) for p in paths], chain=chain, progress=progress)
    _print(report, as_json)


def bitcoin_rpc(
    url: Annotated[
        str,
        typer.Argument(help="Node URL with credentials, e.g. http://user:pass@127.0.0.1:8332/",
                       show_default=False),
    ],
    start: Annotated[
        int | None,
        typer.Option("--start", help="First height (default: after the last imported one)."),
    ] = None,
    end: Annotated[
        int | None, typer.Option("--end", help="Last height, inclusive (default: node tip).")
    ] = None,
    chain: ChainOpt = "bitcoin",
    verbosity: Annotated[
        int,
        typer.Option("--verbosity", help="getblock verbosity: 3 values inputs (Core 23+), "
                     "2 plain, 1 for nodes that list txids only (Dogecoin)."),
    ] = 3,
    batch: Annotated[
        int, typer.Option("--batch", help="Blocks per request and per commit.")
    ] = BATCH_BLOCKS,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import blocks from a bitcoind-compatible JSON-RPC node; resumable and idempotent.

    Each batch commits with a checkpoint, so an interrupted run continues where it stopped.
    """
    with open_workspace(workspace) as ws, _bar("fetching blocks", as_json) as bar:
        task = bar.add_task("fetch", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = ingest_bitcoin_rpc(ws, url, start, end, chain, verbosity=verbosity,
                                    batch_blocks=batch, progress=progress)
    _print(report, as_json)


def register(app: typer.Typer) -> None:
    """Adds this source's subcommands to the `ingest` group."""
    app.command("bitcoin")(bitcoin)
    app.command("bitcoin-rpc")(bitcoin_rpc)
