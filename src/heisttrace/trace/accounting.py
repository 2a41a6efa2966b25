"""The accounting: every stolen origin unit ends in exactly one bucket, or the run fails.

`stolen = cashed_out + dark + bridged_untraced + parked + frozen + fees + dormant +
below_threshold`. Stopping holdings already carry their bucket from the sweep; whatever taint
is still sitting in an ordinary holding at the end is `dormant` (a watch/freeze target), or
`below_threshold` when it is smaller than the case's minimum taint (haircut dust).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heisttrace.errors import HeisttraceError
from heisttrace.trace.encode import BELOW_THRESHOLD, BUCKETS, DORMANT
from heisttrace.trace.kernel import SweepResult

# float64 sums over millions of flows drift by ~1e-16 per operation; 1e-9 relative is far
# above that drift and far below any real leak.
REL_TOLERANCE = 1e-9
# Without --min-taint, dust below a millionth of the stolen amount is `below_threshold`.
DEFAULT_MIN_TAINT_SHARE = 1e-6


class ConservationError(HeisttraceError):
    """The buckets do not add up to the stolen amount: a bug in the engine, never rounding."""


@dataclass
class SinkRows:
    """One row per (holding, bucket) with taint: the content of `case_sinks` before naming."""

    holding: np.ndarray  # int64
    bucket: np.ndarray  # int8 bucket code
    origin: np.ndarray  # float64 origin units
    amount: np.ndarray  # float64 holding units
    first_time: np.ndarray  # int64
    last_time: np.ndarray  # int64

    def totals(self) -> dict[str, float]:
        out = {name: 0.0 for name in BUCKETS}
        sums = np.bincount(self.bucket.astype(np.int64), weights=self.origin,
                           minlength=len(BUCKETS) + 1)
        for code, name in enumerate(BUCKETS, start=1):
            out[name] = float(sums[code])
        return out


def resolve_min_taint(min_taint: float | None, stolen: float) -> float:
    if min_taint is None:
        return stolen * DEFAULT_MIN_TAINT_SHARE
    return float(min_taint)


def sink_rows(res: SweepResult, min_taint: float, poison: bool = False) -> SinkRows:
    """Turn the per-holding end state into bucket rows."""
    stops = np.flatnonzero((res.sink_code != 0) & ((res.sink_origin != 0) | (res.sink_taint != 0)))
    held = (res.origin != 0) | (res.taint != 0)
    if poison and res.poisoned is not None:
        held |= (res.poisoned == 1) & (res.sink_code == 0) & (res.balance > 0)
    rest = np.flatnonzero(held)
    rest_bucket = np.where(res.origin[rest] >= min_taint, DORMANT, BELOW_THRESHOLD)
    if poison and res.poisoned is not None:
        # poison exposes a following holding's whole balance; a stopping holding's balance
        # also counts what already went into its sink, so there the held amount is its taint
        exposed = (res.poisoned[rest] == 1) & (res.sink_code[rest] == 0)
        rest_amount = np.where(exposed, res.balance[rest], res.taint[rest])
    else:
        rest_amount = res.taint[rest]
    return SinkRows(
        holding=np.concatenate([stops, rest]).astype(np.int64),
        bucket=np.concatenate([res.sink_code[stops], rest_bucket]).astype(np.int8),
        origin=np.concatenate([res.sink_origin[stops], res.origin[rest]]),
        amount=np.concatenate([res.sink_taint[stops], rest_amount]),
        first_time=np.concatenate([res.first_time[stops], res.first_time[rest]]),
        last_time=np.concatenate([res.last_time[stops], res.last_time[rest]]),
    )


def check_invariant(stolen: float, rows: SinkRows, name_holding) -> None:
    """Raise ConservationError naming the holding where it broke; `name_holding(h) -> str`."""
    bad = np.flatnonzero(~np.isfinite(rows.origin) | (rows.origin < -REL_TOLERANCE * abs(stolen)))
    if bad.size:
        k = int(bad[0])
        raise ConservationError(
            f"taint conservation broke at holding {name_holding(int(rows.holding[k]))}: "
            f"origin taint {rows.origin[k]!r} in bucket {BUCKETS[int(rows.bucket[k]) - 1]}"
        )
    total = float(rows.origin.sum())
    if not np.isfinite(stolen) or abs(total - stolen) > REL_TOLERANCE * max(abs(stolen), 1e-300):
        where = "no holding"
        if rows.origin.size:
            k = int(np.argmax(np.abs(rows.origin)))
            where = f"holding {name_holding(int(rows.holding[k]))} (largest share)"
        raise ConservationError(
            f"taint conservation broke: stolen {stolen!r} but the buckets hold {total!r} "
            f"(difference {total - stolen!r}); checked at {where}"
        )
