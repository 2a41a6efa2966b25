"""User-supplied bridge links: for bridges we cannot match by ourselves.

A CSV with a header. Required columns `src_chain,src_tx,dst_chain,dst_tx`; optional columns
narrow down who and what when a transaction moves more than one thing:

- `src_address`: the depositor (EVM; default: the transaction sender, i.e. the fee payer);
- `deposit_address`: where the deposit went on the source chain (the bridge contract, or the
  UTXO output address of the deposit);
- `dst_address`: the recipient on the destination chain (default: the one address that gains
  in the destination transaction, UTXO change excluded);
- `asset`, `dst_asset`: the asset sent and received (default: the only one moved).

Each link becomes a `bridge` flow like a matched THORChain swap (see thorchain.py). The rows
are kept in `bridge_links`, so `detect_conversions` re-applies them after new data arrives;
links whose transactions are not ingested yet wait there (reported as pending).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from heisttrace.conversions.store import (
    BRIDGE_POSITION,
    Batch,
    ensure_tables,
    flow_key,
    tx_base,
    tx_flows,
)
from heisttrace.errors import InputError
from heisttrace.ledger.schema import FEE_SINK
from heisttrace.ledger.workspace import Workspace

STAGE = "links"
REQUIRED = ("src_chain", "src_tx", "dst_chain", "dst_tx")
OPTIONAL = ("src_address", "deposit_address", "dst_address", "asset", "dst_asset")
UTXO_CHAINS = frozenset({"bitcoin", "litecoin", "dogecoin", "bitcoin_cash", "zcash"})
LINK_OFFSET = 1024  # link bridges sit after THORChain bridges inside a transaction


@dataclass
class LinkResult:
    links: int = 0
    applied: int = 0
    pending: list[str] = field(default_factory=list)  # "line N: why"


def _norm_tx(chain: str, tx: str) -> str:
    tx = tx.strip().lower()
    if chain in UTXO_CHAINS:
        return tx.removeprefix("0x")
    return tx if tx.startswith("0x") else "0x" + tx


def _norm_addr(chain: str, addr: str | None) -> str | None:
    if not addr or not addr.strip():
        return None
    addr = addr.strip()
    return addr if chain in UTXO_CHAINS else addr.lower()


def read_links(path: Path) -> list[dict]:
    """Rows of a link CSV, normalised; a clear InputError (file, line, field) if one is bad."""
    name = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"cannot read link table: {exc.strerror}", file=name) from exc
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=name, line=1)
    rows = []
    for n, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        for col in REQUIRED:
            if not row.get(col):
                raise InputError("empty value", file=name, line=n, field=col)
        for col in ("src_tx", "dst_tx"):
            hexpart = row[col].lower().removeprefix("0x")
            if not hexpart or any(c not in "0123456789abcdef" for c in hexpart):
                raise InputError(
                    f"not a transaction hash: {row[col]!r}", file=name, line=n, field=col
                )
        src_chain, dst_chain = row["src_chain"].lower(), row["dst_chain"].lower()
        rows.append(
            {
                "src_chain": src_chain,
                "src_tx": _norm_tx(src_chain, row["src_tx"]),
                "dst_chain": dst_chain,
                "dst_tx": _norm_tx(dst_chain, row["dst_tx"]),
                "src_address": _norm_addr(src_chain, row.get("src_address")),
                "deposit_address": _norm_addr(src_chain, row.get("deposit_address")),
                "dst_address": _norm_addr(dst_chain, row.get("dst_address")),
                "asset": _norm_addr(src_chain, row.get("asset")),
                "dst_asset": _norm_addr(dst_chain, row.get("dst_asset")),
                "source_file": name,
                "line": n,
            }
        )
    return rows


class NotIngested(LookupError):
    """A linked transaction has no flows yet: the link waits, it is not an input error."""


def _moves(flows: list[dict]) -> list[dict]:
    return [f for f in flows if f["kind"] != "fee" and f["dst"] != FEE_SINK]


def _sender(flows: list[dict]) -> str | None:
    fees = [f["src"] for f in flows if f["kind"] == "fee" or f["dst"] == FEE_SINK]
    return fees[0] if fees else None


def _one(values: set[str], what: str, col: str) -> str:
    if len(values) == 1:
        return next(iter(values))
    if not values:
        raise LookupError(f"no {what} found")
    some = ", ".join(sorted(values)[:3])
    raise LookupError(f"{len(values)} candidate {what}s ({some}...): add column {col}")


def _source_side(link: dict, flows: list[dict]) -> tuple[str, str, list[dict]]:
    """(src holding, asset, deposit flows) of the source transaction."""
    chain, moves = link["src_chain"], _moves(flows)
    if chain in UTXO_CHAINS:
        node = f"tx:{link['src_tx']}"
        inputs = {f["src"] for f in moves if f["dst"] == node}
        outs = [f for f in moves if f["src"] == node]
        target = link["deposit_address"] or _one(
            {f["dst"] for f in outs if f["dst"] not in inputs}, "deposit output", "deposit_address"
        )
        paid = [f for f in outs if f["dst"] == target]
        if not paid:
            raise LookupError(f"no output to {target}")
        return node, paid[0]["asset"], paid
    depositor = link["src_address"] or _sender(flows) or _one(
        {f["src"] for f in moves}, "depositor", "src_address"
    )
    outs = [f for f in moves if f["src"] == depositor]
    if link["deposit_address"]:
        outs = [f for f in outs if f["dst"] == link["deposit_address"]]
    asset = link["asset"] or _one({f["asset"] for f in outs}, "deposited asset", "asset")
    outs = [f for f in outs if f["asset"] == asset]
    if not outs:
        raise LookupError(f"{depositor} sends no {asset} in this transaction")
    return depositor, asset, outs


def _dest_side(link: dict, flows: list[dict]) -> tuple[str, str, list[dict]]:
    """(recipient, asset, payout flows) of the destination transaction."""
    chain, moves = link["dst_chain"], _moves(flows)
    if chain in UTXO_CHAINS:
        node = f"tx:{link['dst_tx']}"
        inputs = {f["src"] for f in moves if f["dst"] == node}
        outs = [f for f in moves if f["src"] == node]
        recipient = link["dst_address"] or _one(
            {f["dst"] for f in outs if f["dst"] not in inputs}, "recipient", "dst_address"
        )
    else:
        sender = _sender(flows)
        net: dict[str, int] = defaultdict(int)
        for f in moves:
            net[f["src"]] -= int(f["amount_out"])
            net[f["dst"]] += int(f["amount_in"])
        recipient = link["dst_address"] or _one(
            {f["dst"] for f in moves if f["dst"] != sender and net[f["dst"]] > 0},
            "recipient", "dst_address",
        )
        outs = moves
    got = [f for f in outs if f["dst"] == recipient]
    asset = link["dst_asset"] or _one({f["asset"] for f in got}, "received asset", "dst_asset")
    got = [f for f in got if f["asset"] == asset]
    if not got:
        raise LookupError(f"{recipient} receives no {asset} in this transaction")
    return recipient, asset, got


def apply_links(
    ws: Workspace, batch: Batch | None = None, strict_file: str | None = None
) -> tuple[Batch, LinkResult]:
    """Bridge flows for the stored links.

    A link from `strict_file` whose transactions are ingested but cannot be resolved is an
    InputError (it needs an extra column); other unresolved links wait as pending.
    """
    ensure_tables(ws)
    batch = batch or Batch(STAGE)
    result = LinkResult()
    links = ws.con.execute(
        "SELECT * FROM bridge_links ORDER BY source_file, line"
    ).fetch_arrow_table().to_pylist()
    keys = {(ln["src_chain"], ln["src_tx"]) for ln in links}
    keys |= {(ln["dst_chain"], ln["dst_tx"]) for ln in links}
    flows = tx_flows(ws, sorted(keys))
    used: set[tuple[str, str, int]] = set(batch.superseded)
    rank: dict[tuple[str, str], int] = defaultdict(int)
    for link in links:
        result.links += 1
        where = f"{link['source_file']} line {link['line']}"
        src_key, dst_key = (link["src_chain"], link["src_tx"]), (link["dst_chain"], link["dst_tx"])
        src_flows = [f for f in flows.get(src_key, []) if flow_key(f) not in used]
        dst_flows = [f for f in flows.get(dst_key, []) if flow_key(f) not in used]
        try:
            if not src_flows:
                raise NotIngested(f"no flows of {' transaction '.join(src_key)} (not ingested yet?)")
            if not dst_flows:
                raise NotIngested(f"no flows of {' transaction '.join(dst_key)} (not ingested yet?)")
            src, asset, deposits = _source_side(link, src_flows)
            dst, dst_asset, payouts = _dest_side(link, dst_flows)
        except LookupError as exc:
            if link["source_file"] == strict_file and not isinstance(exc, NotIngested):
                raise InputError(str(exc), file=link["source_file"], line=link["line"]) from None
            result.pending.append(f"{where}: {exc}")
            continue
        key = (link["src_chain"], link["src_tx"])
        first = min(int(f["ordinal"]) for f in src_flows)
        batch.add(
            {
                "chain": link["src_chain"],
                "block": deposits[0]["block"],
                "time": deposits[0]["time"],
                "ordinal": tx_base(first) + BRIDGE_POSITION + LINK_OFFSET + rank[key],
                "tx_hash": link["src_tx"],
                "src": src,
                "dst": dst,
                "asset": asset,
                "amount_out": str(sum(int(f["amount_out"]) for f in deposits)),
                "amount_in": str(sum(int(f["amount_in"]) for f in payouts)),
                "kind": "bridge",
                "dst_chain": link["dst_chain"],
                "dst_asset": dst_asset,
            },
            [flow_key(f) for f in deposits + payouts],
        )
        rank[key] += 1
        used.update(flow_key(f) for f in deposits + payouts)
        result.applied += 1
    return batch, result


def store_links(ws: Workspace, rows: list[dict]) -> int:
    """Add link rows to `bridge_links` (a link already there, same src and dst tx, is replaced)."""
    ensure_tables(ws)
    if not rows:
        return 0
    cols = ["src_chain", "src_tx", "dst_chain", "dst_tx", "src_address", "dst_address",
            "asset", "dst_asset", "source_file", "line", "deposit_address"]
    table = pa.Table.from_pylist(rows).select(cols)
    ws.con.register("_conv_links", table)
    try:
        ws.con.execute(
            """DELETE FROM bridge_links WHERE EXISTS (SELECT 1 FROM _conv_links n
               WHERE n.src_chain = bridge_links.src_chain AND n.src_tx = bridge_links.src_tx
                 AND n.dst_chain = bridge_links.dst_chain AND n.dst_tx = bridge_links.dst_tx)"""
        )
        ws.con.execute(
            """INSERT INTO bridge_links (src_chain, src_tx, dst_chain, dst_tx, src_address,
               dst_address, asset, dst_asset, source_file, line, deposit_address)
               SELECT * FROM _conv_links"""
        )
    finally:
        ws.con.unregister("_conv_links")
    return len(rows)


def import_links(ws: Workspace, path: str | Path) -> LinkResult:
    """Store a link table and re-run conversion detection so its bridges appear, all or nothing."""
    from heisttrace.conversions.run import detect_conversions

    rows = read_links(Path(path))
    report = detect_conversions(ws, new_links=rows, strict_file=str(Path(path)))
    return report.links
