"""`run_trace`: encode the ledger, place the seeds, sweep, account, store. Plain Python
around the compiled sweep; every stage's time is kept for the summary and the benchmark."""

from __future__ import annotations

import csv
import time as _time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from heisttrace.errors import InputError
from heisttrace.labels.roles import address_roles
from heisttrace.ledger.workspace import Workspace
from heisttrace.trace.accounting import check_invariant, resolve_min_taint, sink_rows
from heisttrace.trace.encode import BUCKETS, encode_ledger
from heisttrace.trace.kernel import POISON, POLICIES, run_sweep
from heisttrace.trace.seeds import Seed, parse_seeds, parse_time, resolve_seeds
from heisttrace.trace.state import end_lots, end_state
from heisttrace.trace.store import write_case

DEFAULT_MAX_HOPS = 10  # poison only: exposure further out than this says little
STAGES: tuple[str, ...] = ("encode", "seeds", "sweep", "accounting", "store")

Prices = Mapping[tuple[str, str], float] | Mapping[str, float]


@dataclass
class TraceResult:
    """What one run produced; the same numbers are in the case tables."""

    case: str
    policy: str
    seeds: list[str]
    stolen: float
    origin_unit: str
    min_taint: float
    until: int | None
    breakdown: dict[str, float]  # bucket -> origin amount, every bucket present
    n_flows: int
    n_holdings: int
    n_edges: int
    n_sinks: int
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def shares(self) -> dict[str, float]:
        return {b: (v / self.stolen if self.stolen else 0.0) for b, v in self.breakdown.items()}


def load_prices(path: str | Path) -> dict[tuple[str, str], float]:
    """CSV `chain,asset,price` (header required) -> {(chain, asset): price}."""
    path = Path(path)
    if not path.exists():
        raise InputError("prices file not found", file=str(path))
    out: dict[tuple[str, str], float] = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"chain", "asset", "price"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"missing column(s) {sorted(missing)}; expected chain,asset,price",
                             file=str(path), line=1)
        for n, row in enumerate(reader, start=2):
            chain, asset, price = ((row.get(k) or "").strip() for k in ("chain", "asset", "price"))
            if not chain or not asset:
                raise InputError("empty chain or asset", file=str(path), line=n)
            try:
                value = float(price)
            except ValueError:
                raise InputError(f"price {price!r} is not a number", file=str(path), line=n,
                                 field="price") from None
            if not np.isfinite(value) or value < 0:
                raise InputError(f"price {price!r} must be a finite number >= 0",
                                 file=str(path), line=n, field="price")
            out[(chain, asset.lower() if asset.startswith("0x") else asset)] = value
    return out


def _price_of(prices: Prices, chain: str, asset: str) -> float | None:
    for key in ((chain, asset), asset):
        if key in prices:  # type: ignore[operator]
            return float(prices[key])  # type: ignore[index]
    return None


def run_trace(
    ws: Workspace,
    case: str,
    seeds: list[str] | list[Seed],
    policy: str = "haircut",
    until: int | str | None = None,
    min_taint: float | None = None,
    prices: Prices | None = None,
    role_map: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    max_hops: int | None = None,
) -> TraceResult:
    """Trace `seeds` through the workspace's ledger and store the result as `case`.

    `min_taint` is in origin units (default: a millionth of the stolen amount); `prices` maps
    (chain, asset) or asset to the value of one whole unit at theft time; `progress` is called
    with each stage name as it starts. Raises InputError for bad seeds or prices (nothing is
    written then) and ConservationError if the accounting does not balance.
    """
    if not case or not case.strip():
        raise InputError("a case needs a name", field="case")
    if policy not in POLICIES:
        raise InputError(f"unknown policy {policy!r}; use one of {', '.join(POLICIES)}",
                         field="policy")
    parsed = [s if isinstance(s, Seed) else None for s in seeds]
    if any(p is None for p in parsed):
        parsed = parse_seeds([s.text if isinstance(s, Seed) else s for s in seeds])
    seed_list: list[Seed] = parsed  # type: ignore[assignment]
    until_ts = parse_time(str(until), "until") if until is not None else None
    timings: dict[str, float] = {}
    notes: list[str] = []

    def stage(name: str) -> float:
        if progress is not None:
            progress(name)
        return _time.perf_counter()

    t0 = stage("encode")
    roles = address_roles(ws, role_map)
    enc = encode_ledger(ws, roles, until_ts)
    try:
        timings["encode"] = _time.perf_counter() - t0
        t0 = stage("seeds")
        resolved = resolve_seeds(ws, seed_list)
        holdings = ws.con.execute(
            "SELECT h, chain, asset FROM _trace_holdings WHERE h IN (SELECT unnest(?))",
            [resolved.seed_holdings],
        ).fetchall()
        price = np.ones(enc.n_holdings, np.float64)
        seed_assets = sorted({(c, a) for _, c, a in holdings})
        if prices is not None:
            origin_unit = "USD"
            missing = [f"{c}:{a}" for c, a in seed_assets if _price_of(prices, c, a) is None]
            if missing:
                raise InputError(f"no price for seed asset(s) {', '.join(missing)}",
                                 field="prices")
            for h, c, a in holdings:
                price[h] = _price_of(prices, c, a)
        else:
            names = sorted({a for _, a in seed_assets})
            origin_unit = names[0] if len(names) == 1 else "seed asset units"
            if len(names) > 1:
                notes.append("no prices given: every seed asset counts 1:1 in its own whole "
                             f"units ({', '.join(names)}); pass --prices for comparable totals")
        timings["seeds"] = _time.perf_counter() - t0
        t0 = stage("sweep")
        hops_limit = max_hops if max_hops is not None else DEFAULT_MAX_HOPS
        res = run_sweep(enc, resolved, policy, price, hops_limit)
        timings["sweep"] = _time.perf_counter() - t0
        t0 = stage("accounting")
        threshold = resolve_min_taint(min_taint, res.stolen)
        rows = sink_rows(res, threshold, poison=policy == POISON)

        def name_holding(h: int) -> str:
            row = ws.con.execute(
                "SELECT chain, address, asset FROM _trace_holdings WHERE h = ?", [h]).fetchone()
            return "(unknown)" if row is None else f"{row[0]}:{row[1]}:{row[2]}"

        check_invariant(res.stolen, rows, name_holding)
        keep = res.edge_origin > threshold
        if policy == POISON:
            keep |= res.edge_taint > 0
        timings["accounting"] = _time.perf_counter() - t0
        t0 = stage("store")
        write_case(
            ws, case=case, policy=policy, seeds=[s.text for s in seed_list], until=until_ts,
            min_taint=threshold, origin_unit=origin_unit, stolen=res.stolen, rows=rows,
            roles=roles, edge_index=res.edge_index[keep], edge_taint=res.edge_taint[keep],
            edge_origin=res.edge_origin[keep], state=end_state(res), lots=end_lots(res),
            max_hops=hops_limit if policy == POISON else None,
        )
        timings["store"] = _time.perf_counter() - t0
    finally:
        for view in ("_trace_flows", "_trace_kept"):
            ws.con.execute(f"DROP VIEW IF EXISTS {view}")
        for table in ("_trace_order", "_trace_rows", "_trace_chains", "_trace_holdings",
                      "_trace_ignore"):
            ws.con.execute(f"DROP TABLE IF EXISTS {table}")
    return TraceResult(
        case=case, policy=policy, seeds=[s.text for s in seed_list], stolen=res.stolen,
        origin_unit=origin_unit, min_taint=threshold, until=until_ts,
        breakdown=rows.totals(), n_flows=enc.n_flows, n_holdings=enc.n_holdings,
        n_edges=int(keep.sum()), n_sinks=int(rows.holding.size), timings=timings, notes=notes,
    )


def breakdown_table(result: TraceResult) -> pa.Table:
    """bucket, origin_amount, share: the headline table."""
    return pa.table({
        "bucket": list(BUCKETS),
        "origin_amount": [result.breakdown[b] for b in BUCKETS],
        "share": [result.shares()[b] for b in BUCKETS],
    })
