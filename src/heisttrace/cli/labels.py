"""`heisttrace labels …`: import, inspect and detect address labels."""

from __future__ import annotations

import typer

app = typer.Typer(help="Import, inspect and detect address labels.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="labels")
