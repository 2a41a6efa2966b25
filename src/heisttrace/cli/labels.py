"""`heisttrace labels …`: import, inspect and detect address labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from heisttrace.cli.common import JsonOpt, WorkspaceOpt, console, err_console, print_json
from heisttrace.labels.deposits import DepositParams, detect_deposits
from heisttrace.labels.detect import detect_all
from heisttrace.labels.importer import FORMATS, import_labels
from heisttrace.labels.query import export_labels, label_stats, show_address
from heisttrace.labels.roles import load_role_map
from heisttrace.labels.spam import SpamParams, detect_spam
from heisttrace.ledger.workspace import open_workspace

app = typer.Typer(help="Import, inspect and detect address labels.", no_args_is_help=True)

ShowOpt = Annotated[int, typer.Option("--show", help="Rows to list after the counts (0 = none).")]
RolesOpt = Annotated[
    Path | None,
    typer.Option("--roles", help="Your own category,role CSV instead of the packaged table."),
]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="labels")


def _table(rows: list[dict[str, Any]], title: str, columns: list[str] | None = None) -> None:
    """Rows as a Rich table; every value escaped, so label text can never inject markup."""
    out = Table(title=title)
    cols = columns or (list(rows[0]) if rows else [])
    for c in cols:
        out.add_column(c, overflow="fold")
    for r in rows:
        out.add_row(*(escape("" if r.get(c) is None else str(r.get(c))) for c in cols))
    console.print(out)


@app.command("import")
def import_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Label files or folders (searched recursively).")],
    fmt: Annotated[str, typer.Option("--format", help=f"One of {', '.join(FORMATS)}.")] = "auto",
    chain: Annotated[str | None, typer.Option("--chain", help="Chain for files that do not say (OFAC lists, CSV without a chain column).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="A file inside a folder with a wrong address checksum stops the import instead of being left out.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import TagPacks, OFAC lists, etherscan-labels, forta CSVs or plain CSV labels.

    All files are read first and stored in one transaction: a bad file changes nothing.
    Re-importing a file replaces the labels it gave before. Mixed-case EVM addresses must
    pass their EIP-55 checksum: a file that fails is not imported at all (named files stop
    the import; files found in folders are left out and listed in red).
    """
    with open_workspace(workspace) as ws, Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err_console, transient=True, disable=as_json,
    ) as bar:
        task = bar.add_task("reading label files", total=None)

        def tick(path: Path, done: int, total: int) -> None:
            bar.update(task, total=total, completed=done, description=escape(path.name[:40]))

        result = import_labels(ws, paths, fmt, chain, progress=tick, strict=strict)
    for r in result.rejected:
        err_console.print(f"[red]rejected (nothing imported from it):[/red] {escape(r)}", highlight=False)
    if as_json:
        print_json(result.as_dict())
        return
    for w in result.warnings[:20]:
        err_console.print(f"[yellow]warning:[/yellow] {escape(w)}", highlight=False)
    if len(result.warnings) > 20:
        err_console.print(f"[yellow]… {len(result.warnings) - 20} more warnings (see --json)[/yellow]")
    _table(
        [{"category": c, "labels": n} for c, n in result.by_category.most_common()],
        f"{result.labels} labels from {result.files} file(s)",
    )


@app.command("show")
def show_cmd(
    address: Annotated[str, typer.Argument(help="The address (any chain).")],
    chain: Annotated[str | None, typer.Option("--chain", help="Only this chain.")] = None,
    roles: RolesOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every label of an address, and the role that wins (what the engine will do)."""
    with open_workspace(workspace, create=False) as ws:
        info = show_address(ws, address, chain, load_role_map(roles))
    if as_json:
        print_json(info)
        return
    if not info["labels"]:
        console.print(f"no labels for {escape(address)}")
        return
    for row in info["labels"]:
        fmt, _, where = str(row["source"]).partition(":")
        row["from"] = f"{fmt}:{Path(where).name}" if "/" in where else row["source"]
    _table(info["labels"], f"labels of {escape(address)}",
           ["chain", "entity", "category", "role", "confidence", "actor", "heuristic", "from"])
    _table(info["roles"], "winning role", ["chain", "role", "entity", "category", "confidence"])


@app.command("stats")
def stats_cmd(
    roles: RolesOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How many labels, by source file, category and role."""
    with open_workspace(workspace, create=False) as ws:
        stats = label_stats(ws, load_role_map(roles))
    if as_json:
        print_json(stats)
        return
    console.print(f"{stats['labels']} labels on {stats['addresses']} addresses")
    _table(stats["by_role"], "addresses by winning role")
    _table(stats["by_category"][:30], "labels by category")
    _table(stats["by_source"], "labels by source")


@app.command("export")
def export_cmd(
    output: Annotated[Path, typer.Argument(help="CSV file to write.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Write every label to a CSV (re-importable with `--format csv`)."""
    import pyarrow.csv as pacsv

    with open_workspace(workspace, create=False) as ws:
        table = export_labels(ws)
    pacsv.write_csv(table, str(output))
    console.print(f"{table.num_rows} labels written to {escape(str(output))}")


@app.command("detect-deposits")
def detect_deposits_cmd(
    max_fee_eth: Annotated[float, typer.Option(help="a_max: most a deposit address may keep, in ETH (plus gas).")] = 0.01,
    max_blocks: Annotated[int, typer.Option(help="t_max: blocks from a deposit to its sweep.")] = 10_000,
    max_token_keep: Annotated[float, typer.Option(help="Share of a token a deposit address may keep.")] = 0.01,
    roles: RolesOpt = None,
    show: ShowOpt = 20,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Label exchange deposit addresses (Victor 2020): forward (nearly) all to one exchange."""
    with open_workspace(workspace) as ws:
        with console.status("detecting deposit addresses", spinner="dots") if not as_json else _null():
            found = detect_deposits(ws, DepositParams(max_fee_eth, max_blocks, max_token_keep), load_role_map(roles))
    rows = found.to_pylist()
    if as_json:
        print_json(rows)
        return
    _summary(rows, "deposit address(es)", "entity", ["chain", "address", "entity", "evidence"], show)


@app.command("detect-spam")
def detect_spam_cmd(
    affix: Annotated[int, typer.Option(help="Hex digits a look-alike shares at each end.")] = 4,
    dust_wei: Annotated[int, typer.Option(help="Native transfers up to this many wei are dust.")] = 10**13,
    show: ShowOpt = 20,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Label fake tokens, zero-value senders and look-alike (poisoning) addresses as spam."""
    with open_workspace(workspace) as ws:
        with console.status("detecting spam", spinner="dots") if not as_json else _null():
            found = detect_spam(ws, SpamParams(affix, dust_wei))
    rows = found.to_pylist()
    if as_json:
        print_json(rows)
        return
    _summary(rows, "spam address(es)", "kind", ["chain", "address", "kind", "evidence"], show)


@app.command("tokens")
def tokens_cmd(
    fake: Annotated[bool, typer.Option("--fake", help="Only the tokens judged fake.")] = False,
    show: ShowOpt = 50,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The token registry: contract, symbol, decimals and whether it is real or fake.

    Real: listed in the imported etherscan token list. Fake: listed as spam there, or judged
    fake by spam detection (look-alike or copied symbol). Empty: nothing says either way.
    """
    from heisttrace.labels.tokens import registry

    with open_workspace(workspace, create=False) as ws:
        table = registry(ws, fake_only=fake)
    if as_json:
        print_json(table.to_pylist())
        return
    rows = table.to_pylist()
    real = sum(r["real"] is True for r in rows)
    fakes = sum(r["real"] is False for r in rows)
    console.print(f"{len(rows):,} token(s): {real:,} real, {fakes:,} fake, {len(rows) - real - fakes:,} unjudged")
    if show and rows:
        _table(rows[:show], f"first {min(show, len(rows))} (all with --json)",
               ["chain", "address", "symbol", "name", "decimals", "real", "reason", "metadata_source"])


@app.command("detect")
def detect_cmd(
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run every heuristic with default thresholds: spam, deposit addresses, token freezes.

    `trace` runs this by itself when the ledger or the imported labels changed.
    """
    with open_workspace(workspace) as ws:
        with console.status("detecting spam, deposit addresses, freezes", spinner="dots") if not as_json else _null():
            report = detect_all(ws, force=True)
    result = report.as_dict()
    result.pop("ran")
    if as_json:
        print_json(result)
    else:
        console.print(
            f"{report.spam:,} spam address(es), {report.deposit_addresses:,} deposit address(es), "
            f"{report.freezes:,} token freeze(s) labelled"
        )


def _summary(rows: list[dict[str, Any]], what: str, key: str, columns: list[str], show: int) -> None:
    """Counts by `key`, then the first `show` rows: a detection can label 100,000s of addresses."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r.get(key))] = counts.get(str(r.get(key)), 0) + 1
    _table([{key: k, "addresses": f"{v:,}"} for k, v in sorted(counts.items(), key=lambda kv: -kv[1])],
           f"{len(rows):,} {what}", [key, "addresses"])
    if show and rows:
        _table(rows[:show], f"first {min(show, len(rows))} (all with --json)", columns)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
