"""Plain label CSV, the format for a team's own labels.

Header required; columns `chain,address,entity,category` and optionally `source`,
`confidence` (a number 0-100 or a GraphSense level name; default 50), `actor`. Example:

    chain,address,entity,category,confidence,actor
    ethereum,0x098b716b8aaf21512996dc57eb0615e2383e2f96,Ronin exploiter,perpetrator,90,lazarusgroup

The `source` column, when given, is kept in the label's evidence; the stored source is the file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from heisttrace.errors import InputError
from heisttrace.labels.normalize import CONFIDENCE, EVM_CHAINS, address_error, chain_of, normalize_address
from heisttrace.labels.store import LabelBatch, source_name

REQUIRED = ("chain", "address", "entity", "category")
DEFAULT_CONFIDENCE = 50


def looks_like_plain_csv(path: Path) -> bool:
    if path.suffix.lower() != ".csv":
        return False
    with open(path, encoding="utf-8", errors="replace") as fh:
        header = [h.strip().lower() for h in fh.readline().split(",")]
    return all(c in header for c in REQUIRED)


def _confidence(raw: str, file: str, line: int) -> int:
    raw = raw.strip()
    if not raw:
        return DEFAULT_CONFIDENCE
    if raw.isdigit() and 0 <= int(raw) <= 100:
        return int(raw)
    if raw.lower() in CONFIDENCE:
        return CONFIDENCE[raw.lower()]
    raise InputError(f"confidence must be 0-100 or a level name, got {raw!r}", file=file, line=line, field="confidence")


def read_plain_csv(path: Path, chain: str | None = None) -> LabelBatch:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: {exc.reason}", file=file) from None
    reader = csv.DictReader(io.StringIO(text, newline=""), skipinitialspace=True)
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in fields and not (c == "chain" and chain)]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)} (need {','.join(REQUIRED)})", file=file, line=1)
    reader.fieldnames = fields
    batch = LabelBatch(source=source_name("csv", path))
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                raise InputError("more values than columns", file=file, line=line)
            if all(not (v or "").strip() for v in row.values()):
                continue
            ch = chain_of(row.get("chain") or chain or "")
            if not ch:
                raise InputError("missing chain", file=file, line=line, field="chain")
            try:
                addr = normalize_address(ch, row.get("address") or "")
            except ValueError as exc:
                raise address_error(exc, file=file, line=line, field="address") from None
            category = (row.get("category") or "").strip() or None
            if category is None:
                raise InputError("missing category", file=file, line=line, field="category")
            src = (row.get("source") or "").strip()
            batch.add(
                ch, addr, (row.get("entity") or "").strip() or None, category,
                _confidence(row.get("confidence") or "", file, line),
                (row.get("actor") or "").strip() or None,
                json.dumps({"source": src}) if src else None,
            )
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", file=file, line=reader.line_num) from None
    return batch


__all__ = ["read_plain_csv", "looks_like_plain_csv", "EVM_CHAINS"]
