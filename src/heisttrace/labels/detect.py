"""All label heuristics in their order, run once per change of the ledger or the labels.

Spam first (so poisoning addresses never look like deposit addresses), then deposit
addresses, then token freezes. A fingerprint of what they read (flow count, imported label
count) is kept as a checkpoint, so `trace` can call this before every run at no cost when
nothing changed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from heisttrace.labels.deposits import DepositParams, detect_deposits
from heisttrace.labels.freezes import detect_freezes
from heisttrace.labels.spam import SpamParams, detect_spam
from heisttrace.ledger.workspace import Workspace

CHECKPOINT = "labels:detected"


@dataclass
class DetectReport:
    ran: bool
    spam: int = 0
    deposit_addresses: int = 0
    freezes: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _fingerprint(ws: Workspace) -> str:
    flows = ws.count_flows()
    labels = ws.con.execute(
        "SELECT count(*) FROM labels WHERE NOT coalesce(heuristic, false)"
    ).fetchone()[0]
    logs = ws.con.execute("SELECT count(*) FROM evm_logs").fetchone()[0]
    return f"{flows}:{labels}:{logs}"


def detect_all(
    ws: Workspace,
    *,
    force: bool = False,
    deposits: DepositParams | None = None,
    spam: SpamParams | None = None,
) -> DetectReport:
    """Run every heuristic unless the ledger and imported labels are as at the last run."""
    if not force and ws.checkpoint(CHECKPOINT) == _fingerprint(ws):
        return DetectReport(ran=False)
    n_spam = detect_spam(ws, spam).num_rows
    n_deposits = detect_deposits(ws, deposits or DepositParams()).num_rows
    n_freezes = detect_freezes(ws).freezes
    # Freezes add flows: the fingerprint is taken after them.
    ws.set_checkpoint(CHECKPOINT, _fingerprint(ws))
    return DetectReport(True, n_spam, n_deposits, n_freezes)
