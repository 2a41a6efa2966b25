"""`heisttrace simulate`, `evaluate`: laundering scenarios with ground truth."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from heisttrace.cli.common import JsonOpt, WorkspaceOpt, console, print_json
from heisttrace.errors import HeisttraceError
from heisttrace.ledger import open_workspace
from heisttrace.ledger.workspace import DEFAULT_WORKSPACE


def _workspace_path(workspace: Path | None) -> Path:
    return Path(workspace or os.environ.get("HEISTTRACE_WORKSPACE") or DEFAULT_WORKSPACE)


def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the chains, labels and truth into.")],
    scenario: Annotated[str, typer.Option(help="Laundering scenario (bybit).")] = "bybit",
    scale: Annotated[int, typer.Option(help="Total number of flows; amounts shrink in proportion (full size 100,000,000).")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Simulate a theft and its laundering amid ordinary traffic, with the ground truth.

    Writes ethereum/ (ethereum-etl CSVs), bitcoin/ (getblock JSON, one file per block),
    labels.yaml (GraphSense TagPack of the known entities), prices.csv, theft.json (the seed
    to trace) and truth.json (where every stolen unit truly went).
    """
    from heisttrace.simulate.run import simulate as run

    try:
        if as_json:
            summary = run(scenario, scale, seed, out)
        else:
            with Progress(TextColumn("[bold]simulate"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("flows"), TimeElapsedColumn(), console=console) as bar:
                task = bar.add_task("simulate", total=scale)
                summary = run(scenario, scale, seed, out,
                              lambda done, total: bar.update(task, completed=done, total=total))
    except ValueError as exc:
        raise HeisttraceError(str(exc)) from None
    if as_json:
        print_json(summary)
        return
    t = Table(title=f"simulated {scenario} (seed {seed}) in {out}")
    t.add_column("route")
    t.add_column("share of stolen", justify="right")
    for bucket, share in summary["shares"].items():
        t.add_row(bucket, f"{share:.2%}")
    console.print(t)
    console.print(f"flows {summary['flows']:,} (ethereum {summary['ethereum_flows']:,}, bitcoin "
                  f"{summary['bitcoin_flows']:,}); stolen ${summary['stolen_usd']:,.0f}; "
                  f"theft tx {summary['theft_tx']}; {summary['seconds']} s")
    console.print(f"next: heisttrace ingest etl {out / 'ethereum'} && heisttrace ingest bitcoin "
                  f"{out / 'bitcoin'} && heisttrace labels import {out / 'labels.yaml'} && "
                  f"heisttrace trace --case {scenario} --seed {summary['theft_tx']} --prices {out / 'prices.csv'}")


def evaluate(
    case: Annotated[str, typer.Argument(help="Name of a traced case in the workspace.")],
    truth: Annotated[Path, typer.Option("--truth", help="truth.json written by `heisttrace simulate`.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare a traced case with the simulator's truth, bucket by bucket.

    Ends with: evaluate case=C policy=P max_bucket_error=E deposit_recall=R
    deposit_precision=Q spam_followed=S  (E = largest bucket error as a share of the stolen total).
    """
    from heisttrace.simulate.evaluate import evaluate as run, load_truth, summary_line

    data = load_truth(truth)
    with open_workspace(_workspace_path(workspace), create=False, read_only=True) as ws:
        result = run(ws, case, data)
    if as_json:
        print_json(result)
        return
    t = Table(title=f"case {case} ({result['policy']}) vs truth")
    for c in ("bucket", "truth", "traced", "error"):
        t.add_column(c, justify="left" if c == "bucket" else "right")
    for b in result["buckets"]:
        t.add_row(b["bucket"], f"{b['truth_share']:.2%}", f"{b['traced_share']:.2%}", f"{b['error']:+.3%}")
    console.print(t)
    if result["entities"]:
        e = Table(title="cashed out by entity")
        for c in ("entity", "truth", "traced"):
            e.add_column(c, justify="left" if c == "entity" else "right")
        for r in result["entities"]:
            e.add_row(r["entity"] or "(unnamed)", f"{r['truth_share']:.2%}", f"{r['traced_share']:.2%}")
        console.print(e)
    typer.echo(summary_line(result))


def register(root: typer.Typer) -> None:
    """Adds this module's commands to the root app."""
    root.command()(simulate)
    root.command()(evaluate)
