"""`heisttrace ingest` subcommands for an Ethereum JSON-RPC node."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds this source's subcommands to the `ingest` group."""
