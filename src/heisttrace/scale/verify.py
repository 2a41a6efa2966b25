"""Is an extracted neighbourhood exact? Trace it and the full ledger, compare everything.

Why a module: the promise of spark-extract is that the local trace of the neighbourhood equals
the trace of the whole ledger. The test (small scale) and the benchmark (10 million flows) must
check the same thing, so the check lives here, not in either of them.

Compared, per policy: the stolen amount, every bucket of the breakdown, and every row of
`case_sinks` (bucket, chain, address, asset -> origin amount, amount, first and last time),
which covers every deposit address (the `cashed_out` rows) and every dormant holding. Equality
is exact: a reached holding has the same flows in the same order in both ledgers, so its
arithmetic is the same. Bucket totals are sums over holdings whose order of summation may differ
between the two workspaces; they are compared exactly too, and the largest relative difference
is reported so a failure from summation order alone would be visible as such.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from heisttrace.ledger.workspace import Workspace
from heisttrace.trace.run import run_trace

SinkKey = tuple[str, str, str, str]  # bucket, chain, address, asset
SinkRow = tuple[float, float | None, int | None, int | None]


@dataclass
class PolicyComparison:
    """One policy's verdict and what was compared."""

    policy: str
    exact: bool
    stolen: float
    buckets: dict[str, float]
    sinks_compared: int
    deposit_addresses: int
    max_bucket_rel_diff: float
    differences: list[str] = field(default_factory=list)  # the first few, for the message


@dataclass
class Comparison:
    """All policies; `exact` only when every one of them is."""

    policies: dict[str, PolicyComparison]
    seconds: float

    @property
    def exact(self) -> bool:
        return all(p.exact for p in self.policies.values())

    def line(self, seconds: float | None = None) -> str:
        """One greppable line, as the benchmark prints it (`seconds`: the whole check's time,
        imports included, when the caller measured it; else the two traces' time)."""
        verdicts = " ".join(f"{name}={'yes' if p.exact else 'no'}"
                            for name, p in self.policies.items())
        first = next(iter(self.policies.values()))
        return (f"spark_extract_exact {verdicts} sinks_compared={first.sinks_compared} "
                f"deposit_addresses={first.deposit_addresses} "
                f"check_seconds={self.seconds if seconds is None else seconds:.1f}")


def _sinks(ws: Workspace, case: str) -> dict[SinkKey, SinkRow]:
    return {(r[0], r[1], r[2], r[3]): (r[4], r[5], r[6], r[7]) for r in ws.con.execute(
        "SELECT bucket, chain, address, asset, origin_amount, amount, first_time, last_time "
        "FROM case_sinks WHERE case_name = ?", [case]).fetchall()}


def _rel(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale else 0.0


def compare_policy(full: Workspace, local: Workspace, seeds: list[str], policy: str,
                   case_prefix: str = "verify") -> PolicyComparison:
    """Trace `seeds` in both workspaces with `policy` and compare the stored results."""
    case = f"{case_prefix}-{policy}"
    want = run_trace(full, case, seeds, policy=policy)
    got = run_trace(local, case, seeds, policy=policy)
    diffs: list[str] = []
    if got.stolen != want.stolen:
        diffs.append(f"stolen {got.stolen!r} != {want.stolen!r}")
    rel = 0.0
    for bucket in sorted(set(want.breakdown) | set(got.breakdown)):
        a, b = got.breakdown.get(bucket, 0.0), want.breakdown.get(bucket, 0.0)
        rel = max(rel, _rel(a, b))
        if a != b:
            diffs.append(f"bucket {bucket}: {a!r} != {b!r}")
    want_sinks, got_sinks = _sinks(full, case), _sinks(local, case)
    for key in sorted(set(want_sinks) | set(got_sinks)):
        if want_sinks.get(key) != got_sinks.get(key):
            diffs.append(f"sink {key}: {got_sinks.get(key)} != {want_sinks.get(key)}")
    deposits = {(c, a) for (b, c, a, _s) in want_sinks if b == "cashed_out"}
    return PolicyComparison(policy=policy, exact=not diffs, stolen=want.stolen,
                            buckets=dict(want.breakdown), sinks_compared=len(want_sinks),
                            deposit_addresses=len(deposits), max_bucket_rel_diff=rel,
                            differences=diffs[:20])


def compare_traces(full: Workspace, local: Workspace, seeds: list[str],
                   policies: tuple[str, ...] = ("haircut", "fifo"),
                   case_prefix: str = "verify") -> Comparison:
    """Compare the full-ledger trace with the neighbourhood's for each policy."""
    started = time.perf_counter()
    out = {p: compare_policy(full, local, seeds, p, case_prefix) for p in policies}
    return Comparison(policies=out, seconds=time.perf_counter() - started)
