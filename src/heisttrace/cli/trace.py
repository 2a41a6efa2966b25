"""`heisttrace trace`, `summary`, `path`, `cases`: trace a theft and read the result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from heisttrace.cli.common import JsonOpt, WorkspaceOpt, console, err_console, print_json
from heisttrace.ledger import open_workspace


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:,.6g}"


def trace(
    case: Annotated[str, typer.Option("--case", help="Name to store the result under; "
                                      "re-running replaces it.")],
    seed: Annotated[list[str], typer.Option(
        "--seed", help="Theft tx hash (its value flows become 100% tainted) or ADDRESS@TIME "
        "(unix seconds or ISO date); repeat for several.")],
    policy: Annotated[str, typer.Option(help="haircut (proportional), fifo (oldest first) "
                                        "or poison (exposure, bounded by --max-hops).")] = "haircut",
    until: Annotated[str | None, typer.Option(help="Ignore flows after this time.")] = None,
    min_taint: Annotated[float | None, typer.Option(
        help="Taint below this (origin units) is below_threshold and left out of the graph "
        "(default: a millionth of the stolen amount).")] = None,
    prices: Annotated[Path | None, typer.Option(
        help="CSV chain,asset,price: value of the seed assets at theft time (origin units "
        "become USD).")] = None,
    max_hops: Annotated[int | None, typer.Option(help="Poison only: hops to follow (default 10).")] = None,
    detect: Annotated[bool, typer.Option(
        help="First run the label heuristics (spam, deposit addresses, freezes) if the ledger "
        "or the imported labels changed since they last ran.")] = True,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Trace stolen funds from the seeds through the ledger and account for every unit."""
    from heisttrace.trace.run import STAGES, breakdown_table, load_prices, run_trace

    price_map = load_prices(prices) if prices is not None else None
    with open_workspace(workspace, create=False) as ws:
        if detect:
            from heisttrace.labels.detect import detect_all

            with err_console.status("label heuristics (if the ledger changed)"):
                found = detect_all(ws)
            if found.ran and not json:
                err_console.print(
                    f"labelled {found.spam:,} spam, {found.deposit_addresses:,} deposit "
                    f"address(es), {found.freezes:,} freeze(s) first (--no-detect to skip)"
                )
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=err_console, transient=True, disable=json) as bar:
            task = bar.add_task("trace", total=len(STAGES))
            done = [0]

            def step(name: str) -> None:
                bar.update(task, completed=done[0], description=f"trace: {name}")
                done[0] += 1

            result = run_trace(ws, case, seed, policy=policy, until=until, min_taint=min_taint,
                               prices=price_map, progress=step, max_hops=max_hops)
            bar.update(task, completed=len(STAGES))
    if json:
        print_json({
            "case": result.case, "policy": result.policy, "seeds": result.seeds,
            "stolen": result.stolen, "origin_unit": result.origin_unit,
            "min_taint": result.min_taint, "until": result.until,
            "breakdown": breakdown_table(result).to_pylist(), "flows": result.n_flows,
            "holdings": result.n_holdings, "edges": result.n_edges, "notes": result.notes,
            "timings": result.timings,
        })
        return
    table = Table(title=f"case {result.case} ({result.policy}): stolen "
                        f"{_fmt(result.stolen)} {result.origin_unit}")
    table.add_column("bucket")
    table.add_column(f"amount ({result.origin_unit})", justify="right")
    table.add_column("share", justify="right")
    for row in breakdown_table(result).to_pylist():
        table.add_row(row["bucket"], _fmt(row["origin_amount"]), f"{row['share']:.2%}")
    console.print(table)
    console.print(f"[dim]{result.n_flows:,} flows, {result.n_holdings:,} holdings, "
                  f"{result.n_edges:,} taint edges stored; sweep "
                  f"{result.timings.get('sweep', 0):.3f}s[/dim]")
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")


def summary(
    case: Annotated[str, typer.Argument(help="The case name given to `heisttrace trace`.")],
    top: Annotated[int, typer.Option(help="Rows in the address tables.")] = 20,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Where the money went: buckets (in total and per chain), cash-out by exchange and deposit
    address, dormant wallets."""
    from heisttrace.trace.summary import case_summary

    with open_workspace(workspace, create=False, read_only=True) as ws:
        data = case_summary(ws, case, top=top)
    if json:
        print_json(data)
        return
    unit = data["origin_unit"]
    t = Table(title=f"case {case} ({data['policy']}): stolen {_fmt(data['stolen'])} {unit}")
    t.add_column("bucket")
    t.add_column(f"amount ({unit})", justify="right")
    t.add_column("share", justify="right")
    for row in data["breakdown"]:
        t.add_row(row["bucket"], _fmt(row["origin_amount"]), f"{row['share']:.2%}")
    console.print(t)
    chains = data["breakdown_by_chain"]
    used = [b["bucket"] for b in data["breakdown"] if any(c["buckets"][b["bucket"]] for c in chains)]
    if chains:  # buckets down, chains across: a case spans few chains but many buckets
        ct = Table(title=f"by chain ({unit})")
        ct.add_column("bucket")
        for c in chains:
            ct.add_column(c["chain"], justify="right")
        for b in used:
            ct.add_row(b, *(_fmt(c["buckets"][b]) for c in chains))
        ct.add_row("[bold]total[/bold]", *(
            f"{_fmt(c['origin_amount'])} ({c['share']:.2%})" for c in chains))
        console.print(ct)
    for title, rows, cols in (
        ("cash-out by entity", data["cash_out_by_entity"],
         ["entity", "origin_amount", "share", "addresses"]),
        ("cash-out by deposit address", data["cash_out_by_address"],
         ["entity", "chain", "address", "asset", "origin_amount", "amount"]),
        ("top dormant holdings", data["top_dormant"],
         ["chain", "address", "asset", "amount", "origin_amount", "since"]),
    ):
        if not rows:
            continue
        tt = Table(title=title)
        for c in cols:
            tt.add_column(c)
        for r in rows:
            tt.add_row(*(f"{r[c]:.2%}" if c == "share" and r[c] is not None else
                         _fmt(r[c]) if isinstance(r[c], float) else str(r[c] or "")
                         for c in cols))
        console.print(tt)
    console.print(f"[dim]{data['counts']}[/dim]")
    ign = data["ignored"]
    console.print(f"ignored as spam: {ign['spam_flows']} flows, {ign['spam_tokens']} fake tokens, "
                  f"{ign['spam_addresses']} spam addresses in all")


def path(
    case: Annotated[str, typer.Argument(help="The case name.")],
    to: Annotated[str, typer.Option("--to", help="The address the taint reached.")],
    top: Annotated[int, typer.Option("--top", help="How many paths (widest first).")] = 5,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """The K largest taint paths from the seeds to an address, with amount and time per hop."""
    from heisttrace.trace.paths import top_paths

    with open_workspace(workspace, create=False, read_only=True) as ws:
        paths = top_paths(ws, case, to, top)
    if json:
        print_json(paths)
        return
    for n, p in enumerate(paths, start=1):
        t = Table(title=f"path {n}: {_fmt(p['width'])} (narrowest hop, origin units)")
        for c in ("time", "tx_hash", "src", "dst", "asset", "amount", "taint", "origin_taint"):
            t.add_column(c)
        for h in p["hops"]:
            t.add_row(str(h["time"]), h["tx_hash"], h["src"], h["dst"], h["asset"],
                      _fmt(h["amount"]), _fmt(h["taint"]), _fmt(h["origin_taint"]))
        console.print(t)


def cases(workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """List the traced cases in the workspace."""
    from heisttrace.trace.summary import list_cases

    with open_workspace(workspace, create=False, read_only=True) as ws:
        rows = list_cases(ws)
    if json:
        print_json(rows)
        return
    t = Table(title=f"{len(rows)} case(s)")
    for c in ("case_name", "policy", "stolen", "origin_unit", "seeds", "created_at"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["case_name"], r["policy"], _fmt(r["stolen"]), str(r["origin_unit"]),
                  ", ".join(r["seeds"]), str(r["created_at"]))
    console.print(t)


def register(root: typer.Typer) -> None:
    """Adds this module's commands to the root app."""
    root.command()(trace)
    root.command()(summary)
    root.command()(path)
    root.command()(cases)
