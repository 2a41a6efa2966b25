"""Reading labels back: everything known about one address, and counts over the table."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from heisttrace.labels.roles import ROLE_PRECEDENCE, address_roles, load_role_map
from heisttrace.ledger.workspace import Workspace


def _role_table(role_map: dict[str, str]) -> pa.Table:
    return pa.table({"category": list(role_map), "role": list(role_map.values())})


def show_address(
    ws: Workspace, address: str, chain: str | None = None, role_map: dict[str, str] | None = None
) -> dict[str, Any]:
    """All labels of an address (any chain unless given) and the role that wins per chain.

    EVM addresses are matched lowercase; other chains as typed or lowercase (bech32).
    """
    role_map = role_map or load_role_map()
    spellings = sorted({address.strip(), address.strip().lower()})
    ws.con.register("_role_map", _role_table(role_map))
    try:
        sql = """
            SELECT l.chain, l.address, l.entity, l.category, m.role, l.confidence, l.actor,
                   l.heuristic, l.source, l.evidence
            FROM labels l LEFT JOIN _role_map m ON m.category = l.category
            WHERE l.address IN (SELECT unnest(?))
        """
        params: list[Any] = [spellings]
        if chain:
            sql += " AND l.chain = ?"
            params.append(chain)
        sql += " ORDER BY l.chain, coalesce(l.confidence, 0) DESC, l.source"
        labels = ws.con.execute(sql, params).fetch_arrow_table().to_pylist()
    finally:
        ws.con.unregister("_role_map")
    rank = {r: i for i, r in enumerate(ROLE_PRECEDENCE)}
    winners: dict[str, dict[str, Any]] = {}
    for row in labels:
        if row["role"] is None:
            continue
        best = winners.get(row["chain"])
        key = (-(row["confidence"] or 0), rank[row["role"]], row["entity"] or "")
        if best is None or key < best["_key"]:
            winners[row["chain"]] = {**row, "_key": key}
    roles = [
        {k: w[k] for k in ("chain", "address", "role", "entity", "category", "confidence")}
        for w in winners.values()
    ]
    return {"address": address, "labels": labels, "roles": roles}


def label_stats(ws: Workspace, role_map: dict[str, str] | None = None) -> dict[str, Any]:
    """Label counts by source, by category and by role (of each address's winning label)."""
    role_map = role_map or load_role_map()
    con = ws.con
    total = int(con.execute("SELECT count(*) FROM labels").fetchone()[0])  # type: ignore[index]
    addresses = int(con.execute("SELECT count(*) FROM (SELECT DISTINCT chain, address FROM labels)").fetchone()[0])  # type: ignore[index]
    by_source = con.execute(
        """
        SELECT split_part(source, ':', 1) AS format,
               regexp_replace(source, '^[^:]*:(.*/)?', '') AS file,
               count(*) AS labels, bool_or(heuristic) AS heuristic
        FROM labels GROUP BY ALL ORDER BY labels DESC
        """
    ).fetch_arrow_table().to_pylist()
    by_category = con.execute(
        "SELECT coalesce(category, '(none)') AS category, count(*) AS labels FROM labels GROUP BY ALL ORDER BY labels DESC"
    ).fetch_arrow_table().to_pylist()
    roles = address_roles(ws, role_map)
    by_role: dict[str, int] = {}
    for r in roles.column("role").to_pylist():
        by_role[r] = by_role.get(r, 0) + 1
    return {
        "labels": total,
        "addresses": addresses,
        "by_source": by_source,
        "by_category": by_category,
        "by_role": [{"role": k, "addresses": v} for k, v in sorted(by_role.items(), key=lambda kv: -kv[1])],
    }


def export_labels(ws: Workspace) -> pa.Table:
    """Every label, in the plain CSV column order plus provenance."""
    return ws.con.execute(
        """
        SELECT chain, address, entity, category, source, confidence, actor, heuristic, evidence
        FROM labels ORDER BY chain, address, source
        """
    ).fetch_arrow_table()
