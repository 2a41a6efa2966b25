"""`heisttrace ingest` subcommands for Bitcoin Core block JSON."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds this source's subcommands to the `ingest` group."""
