"""What the engine does with a label: the category -> role table, which is data, not code.

Roles: `cash_out`, `dark`, `conversion`, `parked`, `frozen` stop or convert taint; `thief`
follows on; `ignore` (spam, address poisoning) is never followed: the engine drops every flow
whose asset or counterparty carries it. Users override the table with their own CSV (`category,role`).
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import pyarrow as pa

from heisttrace.ledger.workspace import Workspace

ROLES: tuple[str, ...] = (
    "cash_out", "dark", "conversion", "parked", "frozen", "thief", "ignore"
)

# When two labels of an address are equally confident, the more final role wins.
ROLE_PRECEDENCE: tuple[str, ...] = (
    "ignore", "frozen", "dark", "cash_out", "parked", "conversion", "thief"
)


def load_role_map(path: Path | None = None) -> dict[str, str]:
    """category -> role, from the packaged table or a user's CSV."""
    if path is None:
        text = resources.files("heisttrace.labels").joinpath("roles.csv").read_text()
    else:
        text = Path(path).read_text()
    rows = csv.DictReader(text.splitlines())
    table = {r["category"].strip(): r["role"].strip() for r in rows if r.get("category")}
    bad = sorted(set(table.values()) - set(ROLES))
    if bad:
        raise ValueError(f"unknown role(s) {bad} in role table {path or 'roles.csv'}")
    return table


def address_roles(ws: Workspace, role_map: dict[str, str] | None = None) -> pa.Table:
    """One row per labelled address that has a role: chain, address, role, entity, category.

    The strongest label decides: highest confidence, then the most final role.
    """
    role_map = role_map or load_role_map()
    ws.con.register(
        "_role_map",
        pa.table({"category": list(role_map), "role": list(role_map.values())}),
    )
    ws.con.register(
        "_role_rank",
        pa.table({"role": list(ROLE_PRECEDENCE), "rank": list(range(len(ROLE_PRECEDENCE)))}),
    )
    try:
        return ws.con.execute(
            """
            SELECT chain, address, role, entity, category FROM (
                SELECT l.chain, l.address, m.role, l.entity, l.category,
                       row_number() OVER (
                           PARTITION BY l.chain, l.address
                           ORDER BY coalesce(l.confidence, 0) DESC, r.rank, l.entity
                       ) AS pick
                FROM labels l
                JOIN _role_map m ON m.category = l.category
                JOIN _role_rank r ON r.role = m.role
            ) WHERE pick = 1
            ORDER BY chain, address
            """
        ).fetch_arrow_table()
    finally:
        ws.con.unregister("_role_map")
        ws.con.unregister("_role_rank")
