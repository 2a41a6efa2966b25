"""`heisttrace ingest …`: import chain data into the workspace."""

from __future__ import annotations

import typer

app = typer.Typer(help="Import chain data (CSV exports, explorer JSON, a node) into the workspace.",
                  no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="ingest")
