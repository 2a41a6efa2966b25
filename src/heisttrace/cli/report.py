"""`heisttrace report`, `serve`: the investigation report and the web app."""

from __future__ import annotations

import json as jsonlib
import os
from pathlib import Path
from typing import Annotated

import typer

from heisttrace.cli.common import WorkspaceOpt, console
from heisttrace.errors import HeisttraceError
from heisttrace.ledger import open_workspace


def report(
    case: Annotated[str, typer.Argument(help="The case name given to `heisttrace trace`.")],
    html: Annotated[Path | None, typer.Option(
        "--html", help="Write the self-contained HTML report (works offline) to this file.",
    )] = None,
    json_file: Annotated[Path | None, typer.Option(
        "--json", help="Write breakdown, freeze list, watch list and method as JSON to this "
        "file ('-' prints it).")] = None,
    csv_dir: Annotated[Path | None, typer.Option(
        "--csv", help="Write freeze_list.csv and dormant.csv into this folder.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Make the investigation report of a traced case: HTML to share, JSON and CSV lists.

    The HTML file inlines everything (styles, script, charts) and makes no request, so it
    can be mailed to an exchange or to law enforcement as it is.
    """
    from heisttrace.report.html import report_json, write_report

    if html is None and json_file is None and csv_dir is None:
        raise HeisttraceError("say what to write: --html FILE, --json FILE and/or --csv DIR")
    with open_workspace(workspace, create=False, read_only=True) as ws:
        to_stdout = json_file is not None and str(json_file) == "-"
        written = write_report(ws, case, html=html, csv_dir=csv_dir,
                               json_file=None if to_stdout else json_file)
        if to_stdout:
            typer.echo(jsonlib.dumps(report_json(ws, case), indent=2, default=str))
    for path in written:
        console.print(f"wrote [bold]{path}[/bold]", highlight=False)


def serve(
    host: Annotated[str, typer.Option(
        help="Address to bind. Anything but loopback needs $HEISTTRACE_API_TOKEN.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    watch: Annotated[str | None, typer.Option(
        "--watch", help="Also follow this JSON-RPC node, as `heisttrace watch` does, in the "
        "same process (a workspace open here cannot be opened by a second process).",
    )] = None,
    case: Annotated[list[str] | None, typer.Option(
        "--case", help="With --watch: case to keep up to date (repeat; default: every case).",
    )] = None,
    alerts: Annotated[Path | None, typer.Option(
        help="With --watch: append alerts as JSON lines to this file.")] = None,
    webhook: Annotated[list[str] | None, typer.Option(
        "--webhook", help="With --watch: POST each alert here (repeat), signed with "
        "$HEISTTRACE_WEBHOOK_SECRET.")] = None,
    chain: Annotated[str, typer.Option(help="With --watch: chain name the node serves.")
                     ] = "ethereum",
    confirmations: Annotated[int, typer.Option(
        help="With --watch: alert once the flow's block has this many blocks on top.")] = 0,
    workspace: WorkspaceOpt = None,
) -> None:
    """Serve the web app and the REST API (/api, OpenAPI at /openapi.json) for a workspace.

    Bound to 127.0.0.1 by default. Bound elsewhere, it refuses to start unless
    HEISTTRACE_API_TOKEN is set, and then every request must carry that token
    (`Authorization: Bearer TOKEN`). With --watch the server also follows a node: screening
    answers include each new block's taint a few seconds after it is committed, and
    /api/watch tells how far the watch has got.
    """
    from heisttrace.cli.common import err_console
    from heisttrace.watch.background import WatchConfig
    from heisttrace.web.app import run_server

    config = None if watch is None else WatchConfig(
        watch, chain=chain, cases=list(case or []) or None, alerts=alerts,
        webhooks=list(webhook or []), secret=os.environ.get("HEISTTRACE_WEBHOOK_SECRET"),
        confirmations=confirmations)
    if config is None and (case or alerts or webhook):
        raise HeisttraceError("--case, --alerts and --webhook go with --watch URL")
    run_server(workspace, host=host, port=port, token=os.environ.get("HEISTTRACE_API_TOKEN"),
               watch=config, log=lambda msg: err_console.print(f"[dim]watch:[/dim] {msg}",
                                                               highlight=False))


def register(root: typer.Typer) -> None:
    """Adds this module's commands to the root app."""
    root.command()(report)
    root.command()(serve)
