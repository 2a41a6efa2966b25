"""Address checks for screening: a malformed address is the caller's mistake (4xx), never
something to look up. EVM addresses are lowercased; base58 keeps its case, bech32 is lowered."""

from __future__ import annotations

import re

from heisttrace.errors import InputError
from heisttrace.trace.encode import UTXO_CHAINS

_CHAIN = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
_EVM = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BASE58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{25,39}$")
_BECH32 = re.compile(r"^[a-z]{1,6}1[02-9ac-hj-np-z]{6,87}$")


def normalize(chain: str, address: str) -> tuple[str, str]:
    """(chain, address) in the ledger's spelling, or InputError naming the bad field."""
    chain = (chain or "").strip().lower()
    if not _CHAIN.match(chain):
        raise InputError(f"bad chain {chain!r}: use a chain name like ethereum or bitcoin",
                         field="chain")
    address = (address or "").strip()
    if chain in UTXO_CHAINS:
        if _BECH32.match(address.lower()) and (address == address.lower()
                                               or address == address.upper()):
            return chain, address.lower()
        if _BASE58.match(address):
            return chain, address
        raise InputError(f"malformed {chain} address {address[:100]!r}: expected base58 "
                         "or bech32", field="address")
    if not _EVM.match(address):
        raise InputError(f"malformed {chain} address {address[:100]!r}: expected 0x and 40 "
                         "hex digits", field="address")
    return chain, address.lower()
