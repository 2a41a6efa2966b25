"""`heisttrace screen`: how exposed an address is to every traced case."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from heisttrace.cli.common import JsonOpt, WorkspaceOpt, console, print_json
from heisttrace.ledger import open_workspace

_RISK_STYLE = {"severe": "bold red", "high": "red", "medium": "yellow", "low": "cyan",
               "none": "green"}


def _when(ts: int | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, timezone.utc).strftime(
        "%Y-%m-%d %H:%M")


def screen(
    chain: Annotated[str, typer.Argument(help="Chain name, e.g. ethereum or bitcoin.")],
    address: Annotated[str, typer.Argument(help="The address to screen.")],
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Screen an address: its direct or indirect exposure to every traced case, with a risk
    level (rules in docs/screening.md)."""
    from heisttrace.screen.exposure import screen as run_screen
    from heisttrace.screen.exposure import summarize

    with open_workspace(workspace, create=False, read_only=True) as ws:
        exps = run_screen(ws, chain, address)
    result = summarize(exps, chain, address)
    if json:
        print_json(result)
        return
    risk = result["risk"]
    console.print(Text.assemble(f"{result['chain']}:{result['address']} risk ",
                                (risk, _RISK_STYLE[risk])))
    table = Table()
    for col in ("case", "kind", "hops", "risk", "tainted received", "share", "holds",
                "first", "last", "via / entity"):
        table.add_column(col)
    for e in exps:
        table.add_row(
            Text(e.case), e.kind, "" if e.hops is None else str(e.hops),
            Text(e.risk, _RISK_STYLE[e.risk]),
            f"{e.taint_received:,.6g} {e.origin_unit or ''}",
            "" if e.share is None else f"{e.share:.1%}", f"{e.holds:,.6g}",
            _when(e.first_time), _when(e.last_time), Text(e.via or e.entity or ""))
    console.print(table)


def register(root: typer.Typer) -> None:
    """Adds this module's commands to the root app."""
    root.command()(screen)
