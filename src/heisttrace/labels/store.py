"""Writing labels: one Arrow batch per source file, replacing what that file put there before.

A label's `source` names the format and the file it came from (`tagpack:/path/pack.yaml`) or the
heuristic that made it (`heuristic:deposits`). Re-importing a file deletes that source's rows
and inserts the new ones in the same transaction, so imports are idempotent and a file that
shrank leaves no stale labels behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from heisttrace.labels.tokens import TokenEntry
from heisttrace.ledger.workspace import Workspace

LABEL_SCHEMA = pa.schema(
    [
        pa.field("chain", pa.string(), nullable=False),
        pa.field("address", pa.string(), nullable=False),
        pa.field("entity", pa.string()),
        pa.field("category", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("confidence", pa.int32()),
        pa.field("actor", pa.string()),
        pa.field("heuristic", pa.bool_()),
        pa.field("evidence", pa.string()),
    ]
)
LABEL_COLUMNS: list[str] = LABEL_SCHEMA.names


@dataclass
class LabelBatch:
    """Column lists of one file's labels; `lines` keeps each row's line for error messages."""

    source: str
    chain: list[str] = field(default_factory=list)
    address: list[str] = field(default_factory=list)
    entity: list[str | None] = field(default_factory=list)
    category: list[str | None] = field(default_factory=list)
    confidence: list[int | None] = field(default_factory=list)
    actor: list[str | None] = field(default_factory=list)
    evidence: list[str | None] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Tokens the file names as real or fake, for the token registry (labels/tokens.py).
    tokens: list[TokenEntry] = field(default_factory=list)
    # One label per (chain, address, entity, category) and file: a file that repeats a tag
    # stores it once.
    _seen: set[tuple[str, str, str | None, str | None]] = field(default_factory=set, repr=False)

    def add(
        self,
        chain: str,
        address: str,
        entity: str | None,
        category: str | None,
        confidence: int | None,
        actor: str | None = None,
        evidence: str | None = None,
    ) -> None:
        key = (chain, address, entity, category)
        if key in self._seen:
            return
        self._seen.add(key)
        self.chain.append(chain)
        self.address.append(address)
        self.entity.append(entity)
        self.category.append(category)
        self.confidence.append(confidence)
        self.actor.append(actor)
        self.evidence.append(evidence)

    def __len__(self) -> int:
        return len(self.address)

    def to_arrow(self, heuristic: bool = False) -> pa.Table:
        n = len(self.address)
        return pa.table(
            {
                "chain": pa.array(self.chain, pa.string()),
                "address": pa.array(self.address, pa.string()),
                "entity": pa.array(self.entity, pa.string()),
                "category": pa.array(self.category, pa.string()),
                "source": pa.array([self.source] * n, pa.string()),
                "confidence": pa.array(self.confidence, pa.int32()),
                "actor": pa.array(self.actor, pa.string()),
                "heuristic": pa.array([heuristic] * n, pa.bool_()),
                "evidence": pa.array(self.evidence, pa.string()),
            },
            schema=LABEL_SCHEMA,
        )


def source_name(fmt: str, path: Path) -> str:
    """The key a file's labels are stored under: format and absolute path."""
    return f"{fmt}:{Path(path).resolve()}"


def replace_labels(ws: Workspace, source: str, table: pa.Table) -> int:
    """Replace every label of `source` by `table` (deduplicated); call inside a transaction."""
    table = table.select(LABEL_COLUMNS).cast(LABEL_SCHEMA)
    ws.con.execute("DELETE FROM labels WHERE source = ?", [source])
    if table.num_rows == 0:
        return 0
    ws.con.register("_new_labels", table)
    try:
        ws.con.execute(
            """
            INSERT INTO labels (chain, address, entity, category, source, confidence, actor,
                                heuristic, evidence)
            SELECT DISTINCT ON (chain, address, entity, category)
                   chain, address, entity, category, source, confidence, actor,
                   coalesce(heuristic, false), evidence
            FROM _new_labels
            """
        )
        return int(
            ws.con.execute("SELECT count(*) FROM labels WHERE source = ?", [source]).fetchone()[0]  # type: ignore[index]
        )
    finally:
        ws.con.unregister("_new_labels")
