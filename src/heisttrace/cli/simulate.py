"""`heisttrace simulate`, `evaluate`: laundering scenarios with ground truth."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Adds this module's commands to the root app."""
