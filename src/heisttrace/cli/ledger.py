"""`heisttrace flows` and `heisttrace status`: look at what the workspace holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from heisttrace.cli.common import JsonOpt, WorkspaceOpt, console, print_json
from heisttrace.ledger import open_workspace
from heisttrace.ledger.status import workspace_status
from heisttrace.sources.tokens import NATIVE_DECIMALS, whole_units


def _units(ws, rows: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """Adds symbol and exact whole-unit amounts (token decimals; native coins known)."""
    meta = {
        (c, a): (s, d)
        for c, a, s, d in ws.con.execute(
            "SELECT chain, address, symbol, decimals FROM tokens"
        ).fetchall()
    }

    def look(chain: str, asset: str) -> tuple[str, int | None]:
        if asset in NATIVE_DECIMALS:
            return asset, NATIVE_DECIMALS[asset]
        symbol, decimals = meta.get((chain, asset), (None, None))
        return symbol or asset, decimals

    for r in rows:
        symbol, decimals = look(r["chain"], r["asset"])
        r["symbol"], r["amount"] = symbol, whole_units(r["amount_out"], decimals)
        if r.get("dst_asset") and r["dst_asset"] != r["asset"]:
            in_symbol, in_decimals = look(r.get("dst_chain") or r["chain"], r["dst_asset"])
            r["dst_symbol"] = in_symbol
            r["amount_received"] = whole_units(r["amount_in"], in_decimals)


def flows(
    address: Annotated[str | None, typer.Option(help="Only flows from or to this address.")] = None,
    tx: Annotated[str | None, typer.Option(help="Only flows of this transaction.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows (0 = all).")] = 100,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Show the flows in the workspace, in ledger order, amounts in whole units (exact)."""
    with open_workspace(workspace, create=False, read_only=True) as ws:
        table = ws.flows(address=address, tx=tx, limit=limit or None)
        total = ws.count_flows()
        rows = table.to_pylist()
        _units(ws, rows)
    if json:
        print_json(rows)
        return
    out = Table(title=f"flows ({len(rows)} shown of {total})")
    for name, justify in (("time (UTC)", "left"), ("block", "right"), ("tx", "left"),
                          ("src", "left"), ("dst", "left"), ("amount", "right"),
                          ("asset", "left"), ("kind", "left")):
        out.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in rows:
        when = datetime.fromtimestamp(r["time"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        amount, asset = r["amount"], r["symbol"]
        if "amount_received" in r:
            amount += f" -> {r['amount_received']}"
            asset += f" -> {r['dst_symbol']}" + (f"@{r['dst_chain']}" if r.get("dst_chain") else "")
        out.add_row(when, str(r["block"]), r["tx_hash"], r["src"], r["dst"], amount, asset,
                    r["kind"])
    console.print(out)
    if limit and len(rows) == limit:
        console.print(f"[dim]showing the first {limit}; use --limit 0 for all[/dim]")


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def status(workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """What the workspace holds: flows per chain with their blocks and days, storage, tokens,
    labels, cases and the last imports."""
    with open_workspace(workspace, create=False, read_only=True) as ws:
        info = workspace_status(ws)
    if json:
        print_json(info)
        return
    st = info["storage"]
    console.print(f"[bold]{info['workspace']}[/bold]: {info['flows']:,} flows "
                  f"({st['flow_rows']:,} as rows, {st['segment_flows']:,} in {st['segments']} "
                  f"Parquet segment(s), {_size(st['segment_bytes'])}; database "
                  f"{_size(st['database_bytes'])})", highlight=False)
    out = Table(title="flows per chain")
    # numbers never wrap; on a narrow terminal the times wrap between date and time
    for name in ("chain", "flows", "from block", "to block"):
        out.add_column(name, justify="left" if name == "chain" else "right", no_wrap=True)
    for name in ("from (UTC)", "to (UTC)"):
        out.add_column(name, overflow="fold", min_width=10)
    for c in info["chains"]:
        out.add_row(c["chain"], f"{c['flows']:,}", f"{c['first_block']:,}",
                    f"{c['last_block']:,}", c["first_time_utc"], c["last_time_utc"])
    console.print(out)
    for c in info["chains"]:
        console.print(f"  {c['chain']}: {c['transactions']:,} transactions; "
                      + ", ".join(f"{k} {v:,}" for k, v in c["kinds"].items()), highlight=False)
    labels = info["labels"]
    console.print(f"tokens {info['tokens']:,}; labels {sum(labels.values()):,}"
                  + (f" ({', '.join(f'{s} {n:,}' for s, n in labels.items())})" if labels else "")
                  + f"; cases {info['cases']:,}; flows replaced by conversions "
                  f"{info['superseded_by_conversions']:,}", highlight=False)
    if info["recent_imports"]:
        imp = Table(title="last imports")
        for name in ("imported at", "source", "detail", "rows"):
            imp.add_column(name, overflow="fold", justify="right" if name == "rows"
                           else "left")
        for r in info["recent_imports"]:
            detail = r["detail"] or ""
            if len(detail) > 70:
                detail = detail[:67] + "..."
            imp.add_row(r["at"], r["source"], Text(detail), f"{r['rows']:,}")
        console.print(imp)
