"""`case_summary`: what an investigator reads first, straight from the case tables."""

from __future__ import annotations

from typing import Any

from heisttrace.errors import HeisttraceError
from heisttrace.labels.spam import spam_counts
from heisttrace.ledger.workspace import Workspace
from heisttrace.trace.encode import BUCKETS


class UnknownCaseError(HeisttraceError):
    """No case of that name in the workspace."""


def list_cases(ws: Workspace) -> list[dict[str, Any]]:
    if not _has_cases(ws):
        return []
    cols = ["case_name", "policy", "seeds", "until", "min_taint", "origin_unit", "stolen",
            "created_at"]
    return [dict(zip(cols, r)) for r in ws.con.execute(
        f"SELECT {', '.join(cols)} FROM cases ORDER BY case_name").fetchall()]


def _has_cases(ws: Workspace) -> bool:
    return bool(ws.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'cases'"
    ).fetchone()[0])  # type: ignore[index]


def get_case(ws: Workspace, case: str) -> dict[str, Any]:
    for row in list_cases(ws):
        if row["case_name"] == case:
            return row
    known = ", ".join(r["case_name"] for r in list_cases(ws)) or "none yet"
    raise UnknownCaseError(f"no case named {case!r} in the workspace (cases: {known})")


def case_summary(ws: Workspace, case: str, top: int = 20) -> dict[str, Any]:
    """Breakdown per bucket (origin amount and share of stolen), the same per chain, cash-out by
    entity and by deposit address, the largest dormant holdings, counts, and the spam the
    engine ignored (`ignored`: spam addresses, fake tokens and the flows touching them,
    workspace-wide)."""
    meta = get_case(ws, case)
    stolen = float(meta["stolen"] or 0.0)
    totals = dict(ws.con.execute(
        "SELECT bucket, sum(origin_amount) FROM case_sinks WHERE case_name = ? GROUP BY 1",
        [case]).fetchall())
    breakdown = [
        {"bucket": b, "origin_amount": float(totals.get(b, 0.0) or 0.0),
         "share": (float(totals.get(b, 0.0) or 0.0) / stolen) if stolen else 0.0}
        for b in BUCKETS
    ]

    by_chain = _by_chain(ws, case, stolen)

    def rows(sql: str, params: list) -> list[dict[str, Any]]:
        cur = ws.con.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    by_entity = rows(
        """SELECT coalesce(entity, '(unnamed)') AS entity, sum(origin_amount) AS origin_amount,
                  sum(origin_amount) / nullif(?, 0) AS share, count(*) AS addresses,
                  min(first_time) AS first_time, max(last_time) AS last_time
           FROM case_sinks WHERE case_name = ? AND bucket = 'cashed_out'
           GROUP BY 1 ORDER BY 2 DESC""", [stolen, case])
    by_address = rows(
        f"""SELECT entity, chain, address, asset, origin_amount, amount, first_time, last_time
            FROM case_sinks WHERE case_name = ? AND bucket = 'cashed_out'
            ORDER BY origin_amount DESC LIMIT {int(top)}""", [case])
    dormant = rows(
        f"""SELECT chain, address, asset, amount, origin_amount, first_time AS since, last_time
            FROM case_sinks WHERE case_name = ? AND bucket = 'dormant'
            ORDER BY origin_amount DESC LIMIT {int(top)}""", [case])
    counts = dict(zip(
        ["holdings", "cash_out_addresses", "dormant_holdings", "entities"],
        ws.con.execute(
            """SELECT count(*), count(*) FILTER (bucket = 'cashed_out'),
                      count(*) FILTER (bucket = 'dormant'),
                      count(DISTINCT entity) FILTER (bucket = 'cashed_out')
               FROM case_sinks WHERE case_name = ?""", [case]).fetchone(),  # type: ignore[arg-type]
    ))
    counts["edges"] = int(ws.con.execute(
        "SELECT count(*) FROM case_edges WHERE case_name = ?", [case]).fetchone()[0])  # type: ignore[index]
    return {
        "case": case, "policy": meta["policy"], "seeds": list(meta["seeds"]),
        "until": meta["until"], "min_taint": meta["min_taint"],
        "origin_unit": meta["origin_unit"], "stolen": stolen,
        "created_at": str(meta["created_at"]),
        "breakdown": breakdown, "breakdown_by_chain": by_chain, "cash_out_by_entity": by_entity,
        "cash_out_by_address": by_address, "top_dormant": dormant, "counts": counts,
        "ignored": spam_counts(ws),
    }


def _by_chain(ws: Workspace, case: str, stolen: float) -> list[dict[str, Any]]:
    """Per chain where the money sits: its total and every bucket, in origin units.

    A theft that crosses a bridge ends on several chains; this says how much of it each chain
    holds and in which state (a sink's chain is where the money is, so an unmatched bridge
    deposit counts as bridged, untraced on the chain it left from).
    """
    out: dict[str, dict[str, Any]] = {}
    for chain, bucket, amount in ws.con.execute(
        """SELECT chain, bucket, sum(origin_amount) FROM case_sinks WHERE case_name = ?
           GROUP BY 1, 2 ORDER BY 1""", [case]).fetchall():
        row = out.setdefault(chain, {"chain": chain, "origin_amount": 0.0, "share": 0.0,
                                     "buckets": {b: 0.0 for b in BUCKETS}})
        row["buckets"][bucket] = float(amount or 0.0)
        row["origin_amount"] += float(amount or 0.0)
    for row in out.values():
        row["share"] = row["origin_amount"] / stolen if stolen else 0.0
    return sorted(out.values(), key=lambda r: -r["origin_amount"])
