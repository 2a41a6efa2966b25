"""Token freezes (USDT `AddedBlackList`, USDC `Blacklisted`) become flows into a frozen sink.

A freeze stops one holding — (address, token) — not the address: the thief's ETH at the same
address still moves. Labels are per address, so a freeze cannot be a label on the thief's
address. Instead the frozen balance is moved, at the freeze event, into a sink holding
`frozen:<issuer>` that carries the `frozen` label; the engine then needs nothing special.

Limits: a freeze later lifted (`RemovedBlackList`, `UnBlacklisted`) is ignored; tokens that
reach a frozen holding after its freeze stay there (dormant), as we only move the balance at
the freeze itself. The balance is what the ledger knows (missing history counts as none).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from heisttrace.labels.store import LABEL_SCHEMA, replace_labels
from heisttrace.ledger.schema import FLOW_SCHEMA, LOG_BASE, TX_STRIDE
from heisttrace.ledger.workspace import Workspace

SOURCE = "heisttrace-freezes"

# topic0 -> (issuer, freezes?) ; the account is in data word 0 (USDT) or topic 1 (USDC),
# per ../shared/REFERENCE.md section 1.
_EVENTS: dict[str, tuple[str, bool, str]] = {
    "42e160154868087d6bfdc0ca23d96a1c1cfa32f1b72ba9ba27b69b98a0d819dc": ("tether", True, "data"),
    "d7e9ec6e6ecd65492dce6bf513cd6867560d49544421d0783ddf06e76c24470c": ("tether", False, "data"),
    "ffa4e6181777692565cf28528fc88fd1516ea86b56da075235fa575af6a4b855": ("circle", True, "topic"),
    "117e3210bb9aa7d9baff172026820255c6f6c30ba8999d1c2fd88e2848137c4e": ("circle", False, "topic"),
}
ISSUER_NAMES = {"tether": "Tether", "circle": "Circle"}
# A freeze whose transaction has no flows in the ledger sorts after every transaction.
_LATE_TX = 1 << 30


@dataclass
class FreezeReport:
    freezes: int
    flows_added: int
    lifted: int


def sink_address(issuer: str) -> str:
    return f"frozen:{issuer}"


def detect_freezes(ws: Workspace) -> FreezeReport:
    """Turn blacklist events in `evm_logs` into freeze flows and label the sinks; idempotent."""
    con = ws.con
    events = con.execute(
        """
        SELECT chain, block, time, tx_hash, log_index, address AS token, topic0, topics, data
        FROM evm_logs WHERE topic0 IN ({})
        ORDER BY chain, block, log_index
        """.format(",".join("?" * len(_EVENTS))),
        list(_EVENTS),
    ).fetchall()
    latest: dict[tuple[str, str, str], tuple] = {}
    for chain, block, time, tx_hash, log_index, token, topic0, topics, data in events:
        issuer, freezes, where = _EVENTS[topic0]
        account = _account(topics, data, where)
        if account is None:
            continue
        latest[(chain, token, account)] = (freezes, issuer, block, time, tx_hash, log_index)
    active = {k: v for k, v in latest.items() if v[0]}
    lifted = len(latest) - len(active)

    rows = []
    for (chain, token, account), (_, issuer, block, time, tx_hash, log_index) in active.items():
        tx_index = _tx_index(ws, chain, tx_hash)
        ordinal = tx_index * TX_STRIDE + LOG_BASE + int(log_index)
        balance = _balance_before(ws, chain, account, token, block, ordinal)
        if balance <= 0:
            continue
        rows.append(
            {
                "chain": chain, "block": block, "time": time, "ordinal": ordinal,
                "tx_hash": tx_hash, "src": account, "dst": sink_address(issuer),
                "asset": token, "amount_out": str(balance), "amount_in": str(balance),
                "kind": "token", "dst_chain": None, "dst_asset": None,
            }
        )
    issuers = sorted({(c, v[1]) for (c, _, _), v in active.items()})
    sinks = pa.Table.from_pylist(
        [{"chain": chain, "address": sink_address(issuer),
          "entity": f"{ISSUER_NAMES[issuer]} (frozen)", "category": "frozen", "source": SOURCE,
          "confidence": 100, "actor": None, "heuristic": False,
          "evidence": "token blacklist events"} for chain, issuer in issuers],
        schema=LABEL_SCHEMA,
    )
    with ws.transaction():
        added = ws.add_flows(pa.Table.from_pylist(rows, schema=FLOW_SCHEMA)) if rows else 0
        replace_labels(ws, SOURCE, sinks)
    return FreezeReport(freezes=len(rows), flows_added=added, lifted=lifted)


def _account(topics: list[str] | None, data: str | None, where: str) -> str | None:
    """The frozen account: an address in topic 1 or in the first data word."""
    word = None
    if where == "topic" and topics and len(topics) > 1:
        word = topics[1]
    elif where == "data" and data and len(data) >= 66:
        word = data[2:66]
    if word is None:
        return None
    return "0x" + word.lower().removeprefix("0x")[-40:]


def _tx_index(ws: Workspace, chain: str, tx_hash: str) -> int:
    row = ws.con.execute(
        "SELECT min(ordinal) FROM flows WHERE chain = ? AND tx_hash = ?", [chain, tx_hash]
    ).fetchone()
    return _LATE_TX if row is None or row[0] is None else int(row[0]) // TX_STRIDE


def _balance_before(
    ws: Workspace, chain: str, account: str, token: str, block: int, ordinal: int
) -> int:
    """The account's token balance just before the freeze, from the ledger (exact)."""
    row = ws.con.execute(
        """
        SELECT coalesce(sum(CASE WHEN dst = $a AND coalesce(dst_asset, asset) = $t
                                 THEN CAST(amount_in AS HUGEINT) ELSE 0 END), 0)
             - coalesce(sum(CASE WHEN src = $a AND asset = $t
                                 THEN CAST(amount_out AS HUGEINT) ELSE 0 END), 0)
        FROM ledger
        WHERE chain = $c AND (src = $a OR dst = $a) AND (block < $b OR (block = $b AND ordinal < $o))
        """,
        {"a": account, "t": token, "c": chain, "b": block, "o": ordinal},
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
