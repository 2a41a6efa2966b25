"""`heisttrace ingest …`: import chain data into the workspace.

Each source has its own module adding its subcommand, so sources stay independent.
"""

from __future__ import annotations

import typer

from heisttrace.cli import ingest_bitcoin, ingest_files, ingest_rpc, scale

app = typer.Typer(help="Import chain data (CSV exports, explorer JSON, a node) into the workspace.",
                  no_args_is_help=True)

for _module in (ingest_files, ingest_rpc, ingest_bitcoin):
    _module.register(app)
scale.register_ingest(app)  # `ingest parquet` lives with the Spark extraction


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="ingest")
