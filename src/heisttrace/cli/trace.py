"""`heisttrace trace`, `summary`, `path`: trace a theft and read the result."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Adds this module's commands to the root app."""
