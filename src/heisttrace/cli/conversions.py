"""`heisttrace conversions …`: detect swaps and match bridge transfers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from heisttrace.cli.common import JsonOpt, WorkspaceOpt, console, print_arrow, print_json
from heisttrace.conversions.links import import_links
from heisttrace.conversions.run import ConversionReport, detect_conversions
from heisttrace.conversions.store import ensure_tables
from heisttrace.ledger import open_workspace

app = typer.Typer(
    help="Turn DEX swaps and bridge transfers into conversion flows the trace follows.",
    no_args_is_help=True,
)
links_app = typer.Typer(help="User-supplied bridge links for bridges heisttrace cannot match.",
                        no_args_is_help=True)
app.add_typer(links_app, name="links")


def _print_report(report: ConversionReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    s = report.summary()
    console.print(
        f"swaps found: [bold]{s['swaps']}[/bold] (of {s['swap_candidates']} transactions with "
        f"swap logs, {s['swaps_ambiguous']} ambiguous)\n"
        f"bridges matched: [bold]{s['bridges_matched']}[/bold], unmatched: "
        f"[bold]{s['bridges_unmatched']}[/bold]"
        + (" (see `heisttrace conversions inbounds --unmatched`)" if s["bridges_unmatched"] else "")
        + f"\nlinks applied: {s['links_applied']}, pending: {s['links_pending']}\n"
        f"conversion flows written: {s['flows_written']}, raw flows superseded: {s['superseded']}, "
        f"known contracts labelled: {s['labels_added']}"
    )
    for line in report.links.pending[:20]:
        console.print(f"[yellow]pending link[/yellow] {line}", highlight=False)
    for line in report.bridges.skipped_logs[:20]:
        console.print(f"[yellow]undecodable log[/yellow] {line}", highlight=False)


def _run(workspace, as_json: bool, action) -> ConversionReport:
    with open_workspace(workspace, create=False) as ws:
        if as_json:
            return action(ws, None)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task("conversions", total=None)
            return action(ws, lambda msg: progress.update(task, description=msg))


@app.command()
def detect(workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Find DEX swaps and THORChain bridge transfers and write them as swap/bridge flows.

    Re-running replaces the previous run's flows, so run it again after ingesting more data.
    """
    report = _run(workspace, json, lambda ws, say: detect_conversions(ws, progress=say))
    _print_report(report, json)


@app.command()
def inbounds(
    unmatched: Annotated[
        bool, typer.Option("--unmatched", help="Only deposits with no payout found.")
    ] = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """List THORChain swap deposits with their destination chain and address (after `detect`).

    Unmatched ones are where to ask THORChain (or a block explorer) for the payout.
    """
    with open_workspace(workspace, create=False) as ws:
        ensure_tables(ws)
        sql = "SELECT * FROM bridge_inbounds"
        if unmatched:
            sql += " WHERE matched_tx IS NULL"
        table = ws.con.execute(sql + " ORDER BY time, chain, tx_hash").fetch_arrow_table()
    if json:
        print_arrow(table, as_json=True)
        return
    # Cells as Text: memos like `=:b:addr` must not turn into emoji or markup.
    out = Table(title=f"THORChain inbounds ({table.num_rows})")
    cols = ["chain", "tx_hash", "depositor", "amount", "asset", "dest_chain", "dest_address",
            "matched_tx"]  # the full memo is in --json
    for name in cols:
        out.add_column(name, overflow="fold")
    for row in table.to_pylist():
        out.add_row(*(Text("" if row[c] is None else str(row[c])) for c in cols))
    console.print(out)


@links_app.command("import")
def links_import(
    file: Annotated[Path, typer.Argument(help="CSV: src_chain,src_tx,dst_chain,dst_tx[,src_address,"
                                              "deposit_address,dst_address,asset,dst_asset]")],
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Import a bridge link table and re-run detection so the linked bridges appear."""
    with open_workspace(workspace, create=False) as ws:
        result = import_links(ws, file)
    if json:
        print_json({"links": result.links, "applied": result.applied, "pending": result.pending})
        return
    console.print(f"links: {result.links}, applied: [bold]{result.applied}[/bold], "
                  f"pending: {len(result.pending)}")
    for line in result.pending[:20]:
        console.print(f"[yellow]pending[/yellow] {line}", highlight=False)


def register(root: typer.Typer) -> None:
    """Adds this module's commands to the root app."""
    root.add_typer(app, name="conversions")
