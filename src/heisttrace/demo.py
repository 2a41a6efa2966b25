"""`make demo`: a Bybit-scale theft end to end on an embedded workspace.

Simulates ~1 million flows with ground truth, then drives the real pipeline through the CLI
in-process, one heading per step: ingest Ethereum and Bitcoin, import the known labels,
detect conversions, spam, deposit addresses and freezes, trace with haircut and FIFO, compare
each trace with the truth and write the HTML report. A failing step stops the demo with a
non-zero exit: the demo is also our end-to-end check.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import click
from rich.console import Console
from rich.rule import Rule

from heisttrace.errors import HeisttraceError
from heisttrace.ledger.workspace import DB_FILE, SEGMENTS_DIR, WorkspaceError

console = Console()


class DemoFailed(Exception):
    """A step of the demo failed; its message was printed already."""


def _step(title: str, args: list[str]) -> bool:
    """Run one CLI command in-process under a heading; a failure stops the demo."""
    from heisttrace.cli import app

    console.print(Rule(f"[bold]{title}"))
    console.print(f"[dim]$ heisttrace {' '.join(args)}[/dim]")
    started = time.perf_counter()
    try:
        app(args, standalone_mode=False)
    except click.exceptions.UsageError as exc:
        console.print(f"[bold red]error:[/bold red] {exc.format_message()}")
        raise DemoFailed(title) from exc
    except (HeisttraceError, WorkspaceError) as exc:
        console.print(f"[bold red]error:[/bold red] {exc}")
        raise DemoFailed(title) from exc
    console.print(f"[green]done[/green] in {time.perf_counter() - started:.1f} s")
    return True


def run(workspace: Path, scale: int, seed: int) -> None:
    sim = workspace / "sim"
    # The demo owns its workspace: start from an empty database every time.
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / DB_FILE).unlink(missing_ok=True)
    shutil.rmtree(workspace / SEGMENTS_DIR, ignore_errors=True)
    shutil.rmtree(sim, ignore_errors=True)
    w = ["--workspace", str(workspace)]
    total = time.perf_counter()
    _step("1. simulate the theft and its laundering (with ground truth)",
          ["simulate", "--scenario", "bybit", "--scale", str(scale), "--seed", str(seed), "--out", str(sim)])
    theft = json.loads((sim / "theft.json").read_text())
    seed_tx, prices, truth = theft["tx_hash"], str(sim / "prices.csv"), str(sim / "truth.json")
    _step("2. ingest Ethereum (ethereum-etl CSVs)", ["ingest", "etl", str(sim / "ethereum"), *w])
    _step("3. ingest Bitcoin (getblock JSON)", ["ingest", "bitcoin", str(sim / "bitcoin"), *w])
    _step("4. import the known labels (TagPack)", ["labels", "import", str(sim / "labels.yaml"), *w])
    _step("5. detect swaps and bridge transfers", ["conversions", "detect", *w])
    _step("6. detect spam, exchange deposit addresses and token freezes", ["labels", "detect", *w])
    _step("7. what the workspace holds now", ["status", *w])
    for case, policy in (("bybit", "haircut"), ("bybit-fifo", "fifo")):
        if _step(f"trace ({policy})", ["trace", "--case", case, "--seed", seed_tx, "--policy", policy,
                                      "--prices", prices, *w]):
            _step(f"summary ({policy})", ["summary", case, *w])
        _step(f"evaluate ({policy}) against the truth", ["evaluate", case, "--truth", truth, *w])
    report = workspace / "bybit-report.html"
    _step("write the investigation report (one offline HTML file)",
          ["report", "bybit", "--html", str(report), *w])
    console.print(Rule("[bold]next"))
    console.print(f"demo took {time.perf_counter() - total:.0f} s; workspace {workspace}, "
                  f"simulated chains and truth in {sim}")
    console.print(f"report:  open {report}    web app:  .venv/bin/heisttrace serve -w {workspace}"
                  "  (then http://127.0.0.1:8000)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workspace", default="demo-workspace")
    parser.add_argument("--scale", type=int, default=1_000_000, help="flows to simulate")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    try:
        run(Path(args.workspace), args.scale, args.seed)
    except DemoFailed as exc:
        raise SystemExit(f"demo stopped at: {exc}") from None


if __name__ == "__main__":
    main()
