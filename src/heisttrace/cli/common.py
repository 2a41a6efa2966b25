"""What every command shares: the workspace option, the console, tables and JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder (default: $HEISTTRACE_WORKSPACE or ./heisttrace-workspace).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def print_json(data: Any) -> None:
    """Plain JSON on stdout, for scripts (no colours, no wrapping)."""
    typer.echo(json.dumps(data, indent=2, default=str))


def print_arrow(table: pa.Table, title: str | None = None, as_json: bool = False) -> None:
    """An Arrow table as a Rich table, or as a JSON list of rows."""
    if as_json:
        print_json(table.to_pylist())
        return
    out = Table(title=title, show_lines=False)
    for name in table.column_names:
        out.add_column(name, overflow="fold")
    for row in table.to_pylist():
        # Text cells: data (labels, memos) is never read as Rich markup or emoji codes.
        out.add_row(*(Text("" if v is None else str(v)) for v in row.values()))
    console.print(out)
