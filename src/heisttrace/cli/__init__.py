"""The `heisttrace` command. It only parses arguments and delegates to the packages.

One module per command group keeps this folder in step with the data flow.
"""

from __future__ import annotations

import sys

import duckdb
import typer

from heisttrace.cli import (
    conversions, ingest, labels, ledger, report, scale, screen, simulate, trace, watch,
)
from heisttrace.cli.common import err_console
from heisttrace.errors import HeisttraceError
from heisttrace.ledger.workspace import WorkspaceError

app = typer.Typer(
    name="heisttrace",
    help="Follow stolen cryptocurrency from the theft to where it ends up.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Follow stolen cryptocurrency from the theft to where it ends up, and account for it.

    Typical run: ingest chain data, import labels, trace a theft, read the summary.
    """


app.command()(ledger.flows)
app.command()(ledger.status)
for _module in (ingest, labels, conversions, trace, simulate, report, screen, watch, scale):
    _module.register(app)


def main() -> None:
    """Entry point: known errors become one clear line and exit code 1, never a traceback."""
    try:
        app()
    except (HeisttraceError, WorkspaceError) as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        sys.exit(1)
    except (duckdb.InterruptException, RuntimeError) as exc:
        # Ctrl-C inside a DuckDB query arrives as RuntimeError("Query interrupted"), not as
        # the KeyboardInterrupt that Click turns into exit code 130 by itself
        if isinstance(exc, RuntimeError) and "interrupted" not in str(exc).lower():
            raise
        err_console.print("[bold red]interrupted[/bold red]: what was being written was rolled "
                          "back; imports resume from their last commit when run again",
                          highlight=False)
        sys.exit(130)
