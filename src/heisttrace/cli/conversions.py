"""`heisttrace conversions …`: detect swaps and match bridge transfers."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Adds this module's commands to the root app."""
