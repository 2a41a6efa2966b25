"""`heisttrace report`, `serve`: the investigation report and the web app."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Adds this module's commands to the root app."""
