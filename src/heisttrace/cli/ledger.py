"""`heisttrace flows`: look at what the workspace holds."""

from __future__ import annotations

from typing import Annotated

import typer

from heisttrace.cli.common import JsonOpt, WorkspaceOpt, console, print_arrow
from heisttrace.ledger import open_workspace


def flows(
    address: Annotated[str | None, typer.Option(help="Only flows from or to this address.")] = None,
    tx: Annotated[str | None, typer.Option(help="Only flows of this transaction.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows (0 = all).")] = 100,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Show the flows in the workspace, in ledger order."""
    with open_workspace(workspace, create=False, read_only=True) as ws:
        table = ws.flows(address=address, tx=tx, limit=limit or None)
        total = ws.count_flows()
    print_arrow(table, title=f"flows ({table.num_rows} shown of {total})", as_json=json)
    if not json and limit and table.num_rows == limit:
        console.print(f"[dim]showing the first {limit}; use --limit 0 for all[/dim]")
