"""Seeds: where the stolen money starts.

Two shapes, because investigators start from either:
- `0x<hash>` (or any hash present in the ledger): a theft transaction. Its value flows that
  leave the victim become 100% tainted where they arrive. The victim is whoever sends value in
  the transaction without receiving any in it, so money the thief moves on inside the same
  transaction is not counted twice.
- `ADDRESS@TIME` (TIME = unix seconds or an ISO date/time, UTC): everything the address holds
  at that moment, in every asset, becomes tainted (e.g. a wallet known to hold the loot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from heisttrace.errors import InputError
from heisttrace.ledger.schema import FEE_SINK
from heisttrace.ledger.workspace import Workspace


@dataclass(frozen=True)
class Seed:
    text: str  # as the user wrote it
    tx_hash: str | None = None
    address: str | None = None
    time: int | None = None


@dataclass
class ResolvedSeeds:
    """Seeds located in the encoded ledger."""

    flow_index: np.ndarray  # int64 sweep positions of the seed flows (taint 100% at dst)
    event_pos: np.ndarray  # int64 sweep position before which an address seed applies
    event_holding: np.ndarray  # int32 the holding tainted by that address seed
    event_time: np.ndarray  # int64 the seed's time (when the taint starts)
    seeds: list[Seed] = field(default_factory=list)
    seed_holdings: list[int] = field(default_factory=list)  # holdings receiving fresh taint


def parse_time(text: str, what: str = "time") -> int:
    """Unix seconds from `1700000000`, `2025-02-21` or `2025-02-21T14:13:35(Z)`; UTC."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"cannot read {text!r} as a time (use unix seconds or an ISO date like 2025-02-21)",
            field=what,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp())


def parse_seed(text: str) -> Seed:
    raw = text.strip()
    if not raw:
        raise InputError("empty seed", field="seed")
    if "@" in raw:
        address, _, when = raw.rpartition("@")
        if not address:
            raise InputError(f"seed {raw!r} has no address before '@'", field="seed")
        return Seed(text=raw, address=address.strip().lower(), time=parse_time(when, "seed"))
    return Seed(text=raw, tx_hash=raw.lower())


def parse_seeds(texts: list[str]) -> list[Seed]:
    if not texts:
        raise InputError("at least one seed is needed (a theft tx hash or ADDRESS@TIME)",
                         field="seed")
    return [parse_seed(t) for t in texts]


def victim_flows(rows: list[tuple[int, str, str, str]]) -> list[int]:
    """The seed flows of one transaction: (i, src, dst, kind) rows -> positions.

    Victims send in the transaction without receiving in it; fees are not stolen money.
    """
    receivers = {dst for _, _, dst, _ in rows}
    return [i for i, src, dst, kind in rows
            if src not in receivers and dst != FEE_SINK and kind != "fee"]


def resolve_seeds(ws: Workspace, seeds: list[Seed]) -> ResolvedSeeds:
    """Locate seeds in the encoded flows (`encode_ledger` must have run on `ws`)."""
    con = ws.con
    flow_index: list[int] = []
    ev_pos: list[int] = []
    ev_h: list[int] = []
    ev_t: list[int] = []
    holdings: list[int] = []
    for seed in seeds:
        if seed.tx_hash is not None:
            rows = con.execute(
                "SELECT i, src, dst, kind FROM _trace_flows WHERE tx_hash = ? ORDER BY i",
                [seed.tx_hash],
            ).fetchall()
            if not rows:
                raise InputError(
                    f"transaction {seed.tx_hash} is not in the ledger (or is after --until, "
                    "or only moves ignored/spam assets); ingest it first",
                    field="seed",
                )
            picked = victim_flows(rows)
            if not picked:
                raise InputError(f"transaction {seed.tx_hash} moves no value out of a victim",
                                 field="seed")
            flow_index += picked
            holdings += [int(r[0]) for r in con.execute(
                "SELECT d FROM _trace_flows WHERE i IN (SELECT unnest(?))", [picked]).fetchall()]
        else:
            hs = [int(r[0]) for r in con.execute(
                "SELECT h FROM _trace_holdings WHERE address = ? ORDER BY h", [seed.address]
            ).fetchall()]
            if not hs:
                raise InputError(f"address {seed.address} has no flows in the ledger",
                                 field="seed")
            pos = int(con.execute(
                "SELECT count(*) FROM _trace_flows WHERE time <= ?", [seed.time]
            ).fetchone()[0])  # type: ignore[index]
            ev_pos += [pos] * len(hs)
            ev_h += hs
            ev_t += [int(seed.time or 0)] * len(hs)
            holdings += hs
    order = np.argsort(np.asarray(ev_pos, dtype=np.int64), kind="stable")
    return ResolvedSeeds(
        flow_index=np.unique(np.asarray(flow_index, dtype=np.int64)),
        event_pos=np.asarray(ev_pos, dtype=np.int64)[order],
        event_holding=np.asarray(ev_h, dtype=np.int32)[order],
        event_time=np.asarray(ev_t, dtype=np.int64)[order],
        seeds=list(seeds),
        seed_holdings=sorted(set(holdings)),
    )
