"""Alert delivery: a JSON line per alert (stdout or a file) and a signed POST per webhook.

Alerts are rows in `watch_alerts`, keyed by (case, chain, tx_hash, ordinal): the flow's
identity, so the same flow never makes a second alert, across restarts too. The JSON line is
written once (`emitted`); each webhook gets the alert until it answers 2xx
(`watch_deliveries`), retried with backoff on every later pass. The body is signed with
HMAC-SHA256 under the shared secret: `X-Heisttrace-Signature: sha256=<hex>`. Webhooks are
at-least-once: a crash between the receiver's 2xx and our bookkeeping repeats that one POST,
so the alert id travels in `X-Heisttrace-Alert` for the receiver to drop the repeat. The
alert file is exactly-once: on start, ids already in it are marked emitted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import httpx

from heisttrace.ledger.workspace import Workspace

SIGNATURE_HEADER = "X-Heisttrace-Signature"
ALERT_HEADER = "X-Heisttrace-Alert"
_COLS = ("case_name", "chain", "tx_hash", "ordinal", "block", "time", "src", "dst", "asset",
         "role", "entity", "category", "amount", "taint", "taint_units", "origin_taint",
         "origin_unit")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body), header or "")


def alert_id(row: dict[str, Any]) -> str:
    return f"{row['case_name']}:{row['chain']}:{row['tx_hash']}:{row['ordinal']}"


def body_of(row: dict[str, Any]) -> bytes:
    payload = {"type": "tainted_deposit" if row["category"] == "deposit_wallet"
               else f"tainted_{row['role']}", "id": alert_id(row), **row}
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


class Deliverer:
    """Sends pending alerts; `deliver` is called after every committed batch."""

    def __init__(self, ws: Workspace, *, alerts_file: Path | None = None,
                 webhooks: tuple[str, ...] = (), secret: str | None = None,
                 confirmations: int = 0, timeout: float = 5.0,
                 out: TextIO | None = None, log: Callable[[str], None] | None = None) -> None:
        self.ws, self.alerts_file, self.webhooks = ws, alerts_file, tuple(webhooks)
        self.secret, self.confirmations = secret, confirmations
        self.out = out or sys.stdout
        self.log = log or (lambda msg: None)
        self.http = httpx.Client(timeout=timeout)
        self._next_try: dict[tuple[str, str], tuple[float, float]] = {}  # (id, url) -> (at, wait)
        self._reconcile_file()

    def _reconcile_file(self) -> None:
        """A crash between writing a line and marking it emitted must not write it twice:
        ids already in the alerts file count as emitted."""
        if self.alerts_file is None or not self.alerts_file.exists():
            return
        for line in self.alerts_file.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut short by the crash; the alert is written again
            self.ws.con.execute(
                "UPDATE watch_alerts SET emitted = true WHERE case_name = ? AND chain = ? AND "
                "tx_hash = ? AND ordinal = ?",
                [row.get("case_name"), row.get("chain"), row.get("tx_hash"), row.get("ordinal")])

    def close(self) -> None:
        self.http.close()

    def _pending(self, where: str, args: list[Any]) -> list[dict[str, Any]]:
        rows = self.ws.con.execute(
            f"SELECT {', '.join(_COLS)} FROM watch_alerts a WHERE {where} "
            "ORDER BY block, ordinal, case_name", args).fetchall()
        return [dict(zip(_COLS, r)) for r in rows]

    def deliver(self, head: int) -> int:
        """Emits and posts what is due (blocks with enough confirmations); returns how many
        deliveries are still outstanding."""
        ready = head - self.confirmations
        for row in self._pending("NOT emitted AND block <= ?", [ready]):
            line = body_of(row).decode()
            if self.alerts_file is not None:
                with self.alerts_file.open("a") as fh:
                    fh.write(line + "\n")
            else:
                self.out.write(line + "\n")
                self.out.flush()
            self.ws.con.execute(
                "UPDATE watch_alerts SET emitted = true WHERE case_name = ? AND chain = ? AND "
                "tx_hash = ? AND ordinal = ?",
                [row["case_name"], row["chain"], row["tx_hash"], row["ordinal"]])
        outstanding = 0
        for url in self.webhooks:
            for row in self._pending(
                    "emitted AND NOT EXISTS (SELECT 1 FROM watch_deliveries d WHERE "
                    "d.case_name = a.case_name AND d.chain = a.chain AND d.tx_hash = a.tx_hash "
                    "AND d.ordinal = a.ordinal AND d.url = ?)", [url]):
                if not self._post(url, row):
                    outstanding += 1
        return outstanding

    def _post(self, url: str, row: dict[str, Any]) -> bool:
        key = (alert_id(row), url)
        at, wait = self._next_try.get(key, (0.0, 0.25))
        if time.monotonic() < at:
            return False
        body = body_of(row)
        headers = {"Content-Type": "application/json", ALERT_HEADER: alert_id(row)}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        try:
            ok = 200 <= self.http.post(url, content=body, headers=headers).status_code < 300
        except httpx.HTTPError as exc:
            self.log(f"webhook {url}: {exc}")
            ok = False
        if not ok:
            self._next_try[key] = (time.monotonic() + wait, min(wait * 2, 30.0))
            return False
        self._next_try.pop(key, None)
        self.ws.con.execute(
            "INSERT OR IGNORE INTO watch_deliveries VALUES (?, ?, ?, ?, ?, now())",
            [row["case_name"], row["chain"], row["tx_hash"], row["ordinal"], url])
        return True
