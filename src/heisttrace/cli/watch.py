"""`heisttrace watch`: follow new blocks and alert when tainted value reaches a cash-out."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Adds this module's commands to the root app."""
