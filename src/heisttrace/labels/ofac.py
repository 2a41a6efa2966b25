"""OFAC SDN digital-currency address lists: `sanctioned_addresses_<TICKER>.txt` (one address a
line) or `.json` (a list of addresses), as published by 0xB10C/ofac-sanctioned-digital-currency-addresses.

The ticker in the file name says the chain (XBT = bitcoin); `--chain` overrides it. The
stablecoin lists (USDT, USDC) mix chains, so their addresses go by shape: `0x…` is Ethereum,
`T…` is Tron.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from heisttrace.errors import InputError
from heisttrace.labels.normalize import CURRENCY_CHAINS, EVM_CHAINS, address_error, chain_of, normalize_address
from heisttrace.labels.store import LabelBatch, source_name

OFAC_CONFIDENCE = 60  # GraphSense `authority_data`
OFAC_CATEGORY = "sanctioned"
OFAC_ENTITY = "OFAC SDN list"
_NAME = re.compile(r"sanctioned_addresses_([A-Za-z0-9]+)\.(txt|json)$")


def looks_like_ofac(path: Path) -> bool:
    return _NAME.search(path.name) is not None


def _chain_for(ticker: str | None, address: str, chain: str | None) -> str:
    if chain:
        return chain_of(chain)
    if ticker and ticker.upper() in CURRENCY_CHAINS:
        return CURRENCY_CHAINS[ticker.upper()]
    if address.startswith(("0x", "0X")):
        return "ethereum"
    if address.startswith("T") and len(address) == 34:
        return "tron"
    return (ticker or "unknown").lower()


def read_ofac(path: Path, chain: str | None = None) -> LabelBatch:
    """Labels (category `sanctioned`) for each address of an OFAC list file."""
    file = str(path)
    m = _NAME.search(Path(path).name)
    ticker = m.group(1) if m else None
    if ticker is None and chain is None:
        raise InputError(
            "cannot tell the chain of an OFAC list: name it sanctioned_addresses_<TICKER>.txt or pass --chain",
            file=file,
        )
    text = Path(path).read_text(encoding="utf-8")
    entries: list[tuple[int, str]]
    if Path(path).suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON: {exc.msg}", file=file, line=exc.lineno) from None
        if not isinstance(data, list) or not all(isinstance(a, str) for a in data):
            raise InputError("expected a JSON list of address strings", file=file, line=1)
        # json.loads loses line numbers; addresses are one per line in the published files.
        lines = {a: i for i, a in enumerate(text.splitlines(), 1) for a in [a.strip().strip('",')]}
        entries = [(lines.get(a, 0), a) for a in data]
    else:
        entries = [(i, s.strip()) for i, s in enumerate(text.splitlines(), 1)]
    batch = LabelBatch(source=source_name("ofac", path))
    for lineno, address in entries:
        if not address or address.startswith("#"):
            continue
        ch = _chain_for(ticker, address, chain)
        try:
            addr = normalize_address(ch, address)
        except ValueError as exc:
            if ch in EVM_CHAINS:
                raise address_error(exc, file=file, line=lineno or None, field="address") from None
            batch.warnings.append(f"{file}: line {lineno}: skipped: {exc}")
            continue
        batch.add(ch, addr, OFAC_ENTITY, OFAC_CATEGORY, OFAC_CONFIDENCE, None, None)
    return batch
