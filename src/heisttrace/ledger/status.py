"""What a workspace holds, in one look: per chain the flows and the blocks and days they span,
how they are stored, and what the other stages added (tokens, labels, cases, imports).

An investigator checks this before tracing ("did the export up to block N land?"), and a
report's reader can see the data range its figures rest on.
"""

from __future__ import annotations

from typing import Any

from heisttrace.ledger.workspace import DB_FILE, SEGMENTS_DIR, Workspace, has_table


def _count(ws: Workspace, table: str) -> int:
    if not has_table(ws.con, table):
        return 0
    return int(ws.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


def workspace_status(ws: Workspace) -> dict[str, Any]:
    """Counts and ranges of the workspace's contents (JSON-ready)."""
    con = ws.con
    chains: dict[str, dict[str, Any]] = {}
    kinds: dict[str, dict[str, int]] = {}
    # one scan of the ledger: per chain (kind IS NULL) and per chain and kind
    for chain, kind, n, b0, b1, t0, t1, txs in con.execute(
        """
        SELECT chain, kind, count(*), min(block), max(block),
               strftime(epoch_ms(min(time) * 1000), '%Y-%m-%d %H:%M:%S'),
               strftime(epoch_ms(max(time) * 1000), '%Y-%m-%d %H:%M:%S'),
               count(DISTINCT tx_hash)
        FROM flows GROUP BY GROUPING SETS ((chain), (chain, kind)) ORDER BY chain, kind
        """
    ).fetchall():
        if kind is not None:
            kinds.setdefault(chain, {})[kind] = int(n)
            continue
        chains[chain] = {
            "chain": chain, "flows": int(n), "transactions": int(txs),
            "first_block": int(b0), "last_block": int(b1),
            "first_time_utc": t0, "last_time_utc": t1,
        }
    for chain, info in chains.items():
        info["kinds"] = kinds.get(chain, {})
    segments = (0, 0)
    if has_table(con, "flow_segments"):
        segments = con.execute(  # type: ignore[assignment]
            "SELECT count(*), coalesce(sum(rows), 0) FROM flow_segments").fetchone()
    folder = ws.path / SEGMENTS_DIR
    seg_bytes = sum(p.stat().st_size for p in folder.glob("*.parquet")) if folder.is_dir() else 0
    db = ws.path / DB_FILE
    labels = con.execute(
        "SELECT source, count(*) FROM labels GROUP BY source ORDER BY count(*) DESC, source"
    ).fetchall()
    imports = con.execute(
        "SELECT strftime(imported_at, '%Y-%m-%d %H:%M:%S'), source, detail, rows FROM imports "
        "ORDER BY imported_at DESC LIMIT 5").fetchall()
    return {
        "workspace": str(ws.path),
        "flows": sum(c["flows"] for c in chains.values()),
        "chains": list(chains.values()),
        "storage": {
            "flow_rows": _count(ws, "flow_rows") or _count(ws, "flows"),  # or not migrated
            "segments": int(segments[0]), "segment_flows": int(segments[1]),
            "segment_bytes": seg_bytes,
            "database_bytes": db.stat().st_size if db.exists() else 0,
        },
        "superseded_by_conversions": _count(ws, "superseded"),
        "tokens": _count(ws, "tokens"),
        "labels": {str(s): int(n) for s, n in labels},
        "cases": _count(ws, "cases"),
        "recent_imports": [
            {"at": at, "source": src, "detail": detail, "rows": int(rows or 0)}
            for at, src, detail, rows in imports
        ],
    }
