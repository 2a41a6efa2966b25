"""forta-network/labelled-datasets CSVs: exploit, heist and phishing addresses per chain id.

The folder name is the EVM chain id (`labels/1/…` = Ethereum). Known shapes (README of the
data set): `malicious_smart_contracts.csv` (contract_address, contract_tag, contract_creator,
…), `phishing_scams.csv` (address, etherscan_tag, etherscan_labels, is_contract),
`etherscan_malicious_labels.csv` (banned_address, wallet_tag, data_source). Every address is
a perpetrator's; a malicious contract's deployer is one too.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from heisttrace.errors import InputError
from heisttrace.labels.normalize import CHAIN_IDS, address_error, normalize_address
from heisttrace.labels.store import LabelBatch, source_name

FORTA_CONFIDENCE = 50
# (address column, tag column) pairs per file shape.
_SHAPES: tuple[tuple[str, str], ...] = (
    ("contract_address", "contract_tag"),
    ("contract_creator", "contract_creator_tag"),
    ("address", "etherscan_tag"),
    ("banned_address", "wallet_tag"),
)


def looks_like_forta(path: Path) -> bool:
    if path.suffix.lower() != ".csv":
        return False
    with open(path, encoding="utf-8", errors="replace") as fh:
        header = fh.readline().strip().split(",")
    return bool(header) and header[0] in ("contract_address", "banned_address") or (
        header[:2] == ["address", "etherscan_tag"]
    )


def read_forta(path: Path, chain: str | None = None) -> LabelBatch:
    path = Path(path)
    file = str(path)
    ch = chain or CHAIN_IDS.get(path.parent.name)
    if ch is None:
        raise InputError("cannot tell the chain: the folder is not a known chain id; pass --chain", file=file)
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
    batch = LabelBatch(source=source_name("forta", path))
    shapes = [s for s in _SHAPES if s[0] in (reader.fieldnames or [])]
    if not shapes:
        raise InputError("no address column", file=file, line=1)
    try:
        for row in reader:
            line = reader.line_num
            for addr_col, tag_col in shapes:
                raw = (row.get(addr_col) or "").strip()
                if not raw:
                    continue
                try:
                    addr = normalize_address(ch, raw)
                except ValueError as exc:
                    raise address_error(exc, file=file, line=line, field=addr_col) from None
                tag = (row.get(tag_col) or "").strip() or None
                kind = row.get("contract_creator_etherscan_label") or row.get("etherscan_labels") or row.get("data_source")
                batch.add(ch, addr, tag or "malicious address", "perpetrator", FORTA_CONFIDENCE, None,
                          json.dumps({"forta": path.name, "kind": kind}) if kind else None)
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", file=file, line=reader.line_num) from None
    return batch
