"""Ground truth by bookkeeping: the simulator follows each stolen unit as it moves the money.

Every holding (chain, address, asset) the thief controls keeps its balance and the origin
value (USD at theft prices) it holds. A move carries origin in proportion to the amount; a
swap or bridge carries the origin of what went in to what came out. Money that reaches a
sink (exchange, deposit address, mixer, no-KYC service, frozen wallet, gas) is booked to that
sink's bucket; what stays at the end is dormant. This is not a trace: it is what the thief did.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

BUCKETS = (
    "cashed_out",
    "dark",
    "bridged_untraced",
    "parked",
    "frozen",
    "fees",
    "dormant",
    "below_threshold",
)

Holding = tuple[str, str, str]  # chain, address, asset


@dataclass(frozen=True)
class Sink:
    bucket: str
    entity: str
    category: str


class Book:
    """Balances and origin value of the thief's holdings, and what reached each sink."""

    def __init__(self) -> None:
        self.balance: dict[Holding, int] = defaultdict(int)
        self.origin: dict[Holding, float] = defaultdict(float)
        self.sinks: dict[tuple[str, str], Sink] = {}
        # (bucket, chain, address, asset, entity) -> [origin, amount]
        self.booked: dict[tuple[str, str, str, str, str], list] = defaultdict(lambda: [0.0, 0])
        self.stolen = 0.0
        self.stolen_assets: dict[str, int] = defaultdict(int)

    def sink(self, chain: str, address: str, bucket: str, entity: str, category: str) -> None:
        self.sinks[(chain, address)] = Sink(bucket, entity, category)

    def steal(self, chain: str, address: str, asset: str, amount: int, price_per_unit: float) -> None:
        """The theft: `amount` base units worth `price_per_unit` USD per base unit."""
        h = (chain, address, asset)
        value = amount * price_per_unit
        self.balance[h] += amount
        self.origin[h] += value
        self.stolen += value
        self.stolen_assets[asset] += amount

    def _take(self, h: Holding, amount: int) -> float:
        bal = self.balance[h]
        if amount > bal:
            raise ValueError(f"plan overdraws {h}: {amount} > {bal}")
        share = self.origin[h] * amount / bal if bal else 0.0
        self.balance[h] = bal - amount
        self.origin[h] -= share
        if self.balance[h] == 0:
            self.origin[h] = 0.0
        return share

    def _put(self, chain: str, address: str, asset: str, amount: int, origin: float) -> None:
        s = self.sinks.get((chain, address))
        if s is not None:
            row = self.booked[(s.bucket, chain, address, asset, s.entity)]
            row[0] += origin
            row[1] += amount
            return
        h = (chain, address, asset)
        self.balance[h] += amount
        self.origin[h] += origin

    def move(self, chain: str, src: str, dst: str, asset: str, amount: int) -> None:
        if amount:
            self._put(chain, dst, asset, amount, self._take((chain, src, asset), amount))

    def fee(self, chain: str, src: str, asset: str, amount: int) -> None:
        origin = self._take((chain, src, asset), amount)
        row = self.booked[("fees", chain, "fees", asset, "")]
        row[0] += origin
        row[1] += amount

    def convert(
        self, chain: str, src: str, asset: str, amount: int,
        dst_chain: str, dst: str, dst_asset: str, dst_amount: int,
    ) -> None:
        """Swap or bridge: the origin of what went in now sits in what came out."""
        self._put(dst_chain, dst, dst_asset, dst_amount, self._take((chain, src, asset), amount))

    def freeze(self, chain: str, address: str, asset: str, entity: str) -> None:
        """A blacklist event: whatever the address holds of the asset is frozen there."""
        h = (chain, address, asset)
        amount, origin = self.balance[h], self.origin[h]
        self.balance[h], self.origin[h] = 0, 0.0
        row = self.booked[("frozen", chain, address, asset, entity)]
        row[0] += origin
        row[1] += amount

    def holds(self, chain: str, address: str, asset: str) -> int:
        return self.balance[(chain, address, asset)]

    # -- the result -----------------------------------------------------------------------
    def result(self) -> dict:
        """truth.json content (without the scenario metadata)."""
        rows = [
            {"bucket": b, "chain": c, "address": a, "asset": s, "entity": e,
             "origin_amount": v[0], "amount": str(v[1])}
            for (b, c, a, s, e), v in sorted(self.booked.items())
        ]
        for (c, a, s), amount in sorted(self.balance.items()):
            if amount:
                rows.append({"bucket": "dormant", "chain": c, "address": a, "asset": s,
                             "entity": "", "origin_amount": self.origin[(c, a, s)],
                             "amount": str(amount)})
        buckets = {b: 0.0 for b in BUCKETS}
        entities: dict[str, float] = defaultdict(float)
        for r in rows:
            buckets[r["bucket"]] += r["origin_amount"]
            if r["bucket"] == "cashed_out":
                entities[r["entity"]] += r["origin_amount"]
        return {
            "stolen": self.stolen,
            "stolen_assets": {k: str(v) for k, v in sorted(self.stolen_assets.items())},
            "buckets": buckets,
            "shares": {b: (v / self.stolen if self.stolen else 0.0) for b, v in buckets.items()},
            "cashed_out_by_entity": dict(sorted(entities.items())),
            "sinks": rows,
        }


def write_truth(path: Path, truth: dict) -> None:
    path.write_text(json.dumps(truth, indent=1, sort_keys=False, ensure_ascii=False) + "\n")
