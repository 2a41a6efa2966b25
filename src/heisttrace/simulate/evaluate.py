"""Compare a traced case with the simulator's truth.

Bucket errors are compared as shares of the stolen total (traced bucket / the case's stolen
vs true bucket / true stolen), so a trace run without prices (origin = seed units) is still
comparable; with the simulator's prices.csv both are in USD.

Deposit addresses: recall = share of the true deposit addresses that received stolen funds
and sit on a chain where any `deposit_wallet` label exists (Ethereum, where the deposit
heuristic runs; Bitcoin only if something labels Bitcoin deposits) that carry a
`deposit_wallet` label; precision = share of `deposit_wallet` labels that are true deposit
addresses (stolen-receiving or ordinary customers' ones). With no such labels at all, both
are 0.

spam_followed = number of spam addresses and spam tokens (truth.json `spam`) that appear in
the case's taint-flow graph (`case_edges` src, dst or asset).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from heisttrace.errors import HeisttraceError, InputError
from heisttrace.ledger.workspace import Workspace
from heisttrace.simulate.truth import BUCKETS


def load_truth(path: Path) -> dict:
    try:
        truth = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError("no such file", file=str(path)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    for key in ("stolen", "buckets", "deposit_addresses", "spam"):
        if key not in truth:
            raise InputError("not a heisttrace truth.json", file=str(path), field=key)
    return truth


def _has_table(ws: Workspace, name: str) -> bool:
    return bool(ws.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()[0])


def evaluate(ws: Workspace, case: str, truth: dict) -> dict:
    """The comparison as a dict: per-bucket rows, per-entity rows and the headline figures."""
    if not _has_table(ws, "cases"):
        raise HeisttraceError(f"no traced cases in workspace {ws.path} (run `heisttrace trace` first)")
    row = ws.con.execute("SELECT policy, stolen FROM cases WHERE case_name = ?", [case]).fetchone()
    if row is None:
        raise HeisttraceError(f"no case named {case!r} in workspace {ws.path}")
    policy, case_stolen = row[0], float(row[1] or 0.0)
    traced = dict(ws.con.execute(
        "SELECT bucket, sum(origin_amount) FROM case_sinks WHERE case_name = ? GROUP BY bucket",
        [case]).fetchall())
    stolen = float(truth["stolen"])
    buckets = []
    worst = 0.0
    for b in BUCKETS:
        t_share = float(truth["buckets"].get(b, 0.0)) / stolen if stolen else 0.0
        c_share = float(traced.get(b) or 0.0) / case_stolen if case_stolen else 0.0
        err = c_share - t_share
        worst = max(worst, abs(err))
        buckets.append({"bucket": b, "truth": float(truth["buckets"].get(b, 0.0)),
                        "traced": float(traced.get(b) or 0.0), "truth_share": t_share,
                        "traced_share": c_share, "error": err})
    ent_traced = dict(ws.con.execute(
        "SELECT coalesce(entity, ''), sum(origin_amount) FROM case_sinks "
        "WHERE case_name = ? AND bucket = 'cashed_out' GROUP BY 1", [case]).fetchall())
    entities = []
    for name in sorted(set(truth.get("cashed_out_by_entity", {})) | set(ent_traced)):
        t = float(truth.get("cashed_out_by_entity", {}).get(name, 0.0))
        c = float(ent_traced.get(name) or 0.0)
        entities.append({"entity": name, "truth_share": t / stolen if stolen else 0.0,
                         "traced_share": c / case_stolen if case_stolen else 0.0})
    recall, precision, n_labels = _deposits(ws, truth)
    spam = _spam_followed(ws, case, truth)
    return {
        "case": case, "policy": policy, "stolen_truth": stolen, "stolen_traced": case_stolen,
        "buckets": buckets, "entities": entities, "max_bucket_error": worst,
        "deposit_recall": recall, "deposit_precision": precision, "deposit_labels": n_labels,
        "spam_followed": spam,
    }


def _deposits(ws: Workspace, truth: dict) -> tuple[float, float, int]:
    labels = ws.con.execute(
        "SELECT DISTINCT chain, lower(address) FROM labels WHERE category = 'deposit_wallet'").fetchall()
    detected = {(c, a) for c, a in labels}
    if not detected:
        return 0.0, 0.0, 0
    chains = {c for c, _ in detected} | {"ethereum"}
    stolen_true = {(d["chain"], d["address"]) for d in truth["deposit_addresses"]
                   if d.get("stolen") and d["chain"] in chains}
    all_true = {(d["chain"], d["address"]) for d in truth["deposit_addresses"]}
    all_true |= {("ethereum", a) for a in truth.get("background_deposit_addresses", [])}
    recall = len(detected & stolen_true) / len(stolen_true) if stolen_true else 1.0
    precision = len(detected & all_true) / len(detected)
    return recall, precision, len(detected)


def _spam_followed(ws: Workspace, case: str, truth: dict) -> int:
    if not _has_table(ws, "case_edges"):
        return 0
    spam = set(truth["spam"].get("addresses", [])) | set(truth["spam"].get("tokens", []))
    if not spam:
        return 0
    ws.con.register("_spam", pa.table({"address": sorted(spam)}))
    n = ws.con.execute(
        """
        SELECT count(DISTINCT s.address) FROM _spam s
        WHERE EXISTS (SELECT 1 FROM case_edges e WHERE e.case_name = ?
                      AND (lower(e.src) = s.address OR lower(e.dst) = s.address
                           OR lower(e.asset) = s.address))
        """, [case]).fetchone()[0]
    ws.con.unregister("_spam")
    return int(n)


def summary_line(r: dict) -> str:
    """The closing line every evaluation prints (parseable)."""
    return (f"evaluate case={r['case']} policy={r['policy']} "
            f"max_bucket_error={r['max_bucket_error']:.6f} deposit_recall={r['deposit_recall']:.4f} "
            f"deposit_precision={r['deposit_precision']:.4f} spam_followed={r['spam_followed']}")
