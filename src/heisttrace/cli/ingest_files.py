"""`heisttrace ingest` subcommands for ethereum-etl CSV and Etherscan JSON."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds this source's subcommands to the `ingest` group."""
