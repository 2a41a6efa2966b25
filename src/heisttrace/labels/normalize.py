"""Shared vocabulary of the label importers: chain names, address spelling, confidence levels.

Every format names chains differently (GraphSense `ETH`, OFAC `XBT`, forta chain ids); the
ledger uses one spelling (`ethereum`, `bitcoin`, ...). Addresses must be spelled exactly as the
ledger spells them or a label never meets its flows: lowercase on EVM chains, as-is for base58,
lowercase for bech32.
"""

from __future__ import annotations

from Crypto.Hash import keccak

from heisttrace.errors import InputError

# GraphSense confidence levels (REFERENCE.md section 5, from tagpack/db/confidence.csv).
CONFIDENCE: dict[str, int] = {
    "override": 100,
    "ownership": 100,
    "ledger_immanent": 100,
    "manual_transaction": 90,
    "service_api": 70,
    "forensic_investigation": 70,
    "authority_data": 60,
    "trusted_provider": 50,
    "service_data": 50,
    "forensic": 50,
    "untrusted_transaction": 40,
    "web_crawl": 20,
    "heuristic": 10,
    "unknown": 5,
}
LOWEST_CONFIDENCE = min(CONFIDENCE.values())
HEURISTIC_CONFIDENCE = CONFIDENCE["heuristic"]

# Currency / network tickers (GraphSense, OFAC file names) -> ledger chain names.
CURRENCY_CHAINS: dict[str, str] = {
    "ETH": "ethereum",
    "BTC": "bitcoin",
    "XBT": "bitcoin",
    "LTC": "litecoin",
    "BCH": "bitcoin_cash",
    "BSV": "bitcoin_sv",
    "BTG": "bitcoin_gold",
    "DOGE": "dogecoin",
    "ZEC": "zcash",
    "DASH": "dash",
    "XMR": "monero",
    "TRX": "tron",
    "BSC": "bsc",
    "BNB": "bsc",
    "BEP20": "bsc",
    "BEP2": "binance_chain",
    "ARB": "arbitrum",
    "ETC": "ethereum_classic",
    "MATIC": "polygon",
    "POL": "polygon",
    "AVAX": "avalanche",
    "SOL": "solana",
    "XRP": "ripple",
    "EOS": "eos",
    "XVG": "verge",
    "OP": "optimism",
    "BASE": "base",
    "FTM": "fantom",
}

# Chains whose addresses are 20-byte hex: spelled lowercase with 0x in the ledger.
EVM_CHAINS: frozenset[str] = frozenset(
    {
        "ethereum", "bsc", "polygon", "arbitrum", "base", "optimism", "ethereum_classic",
        "fantom", "gnosis",
    }
)
UTXO_BASE58_CHAINS: frozenset[str] = frozenset(
    {"bitcoin", "litecoin", "bitcoin_cash", "dogecoin", "bitcoin_gold", "bitcoin_sv", "dash"}
)

# forta-labelled-datasets folders are EVM chain ids.
CHAIN_IDS: dict[str, str] = {
    "1": "ethereum", "10": "optimism", "56": "bsc", "137": "polygon", "250": "fantom",
    "42161": "arbitrum", "43114": "avalanche", "8453": "base",
}

_HEX = frozenset("0123456789abcdefABCDEF")
_BASE58 = frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
_BECH32 = frozenset("qpzry9x8gf2tvdw0s3jn54khce6mua7l")


def chain_of(currency: str) -> str:
    """A ticker (`ETH`) or chain name (`ethereum`) -> the ledger's chain name."""
    text = currency.strip()
    known = CURRENCY_CHAINS.get(text.upper())
    if known:
        return known
    return text.lower()


class ChecksumError(ValueError):
    """A mixed-case EVM address whose EIP-55 checksum is wrong: most likely a copying error."""


class ChecksumInputError(InputError):
    """A label file holds an address with a wrong checksum; the whole file is rejected."""


def address_error(exc: ValueError, *, file: str, line: int | None, field: str) -> InputError:
    """The InputError for a bad address, keeping checksum failures recognisable to the importer."""
    cls = ChecksumInputError if isinstance(exc, ChecksumError) else InputError
    return cls(str(exc), file=file, line=line, field=field)


def to_checksum(hex40: str) -> str:
    """EIP-55 spelling of 40 hex digits: a letter is upper case where the Keccak-256 of the
    lowercase hex text has a nibble >= 8 at the same position (EIP-55)."""
    low = hex40.lower()
    digest = keccak.new(digest_bits=256, data=low.encode("ascii")).hexdigest()
    return "".join(c.upper() if c.isalpha() and int(h, 16) >= 8 else c for c, h in zip(low, digest))


def normalize_address(chain: str, address: str) -> str:
    """The ledger spelling of an address; raises ValueError saying what is wrong with it.

    EVM: `0x` + 40 hex digits, lowercased; on the EVM chains a mixed-case address must carry a
    valid EIP-55 checksum (a typo in a hand-copied address then fails instead of labelling a stranger). Bitcoin-like: base58 characters
    kept as written, bech32 lowercased. Other chains: stripped, otherwise as written.
    """
    a = address.strip()
    if not a:
        raise ValueError("empty address")
    if chain in EVM_CHAINS or (a[:2] in ("0x", "0X") and len(a) == 42 and chain not in UTXO_BASE58_CHAINS):
        if len(a) != 42 or a[:2] not in ("0x", "0X"):
            raise ValueError(f"EVM address must be 0x + 40 hex digits, got {len(a)} characters: {a!r}")
        if not _HEX.issuperset(a[2:]):
            raise ValueError(f"EVM address has non-hex characters: {a!r}")
        body = a[2:]
        # Only chains known to use EIP-55: others with 0x addresses (Zilliqa) checksum differently.
        mixed = body != body.lower() and body != body.upper()
        if mixed and chain in EVM_CHAINS and to_checksum(body) != body:
            raise ChecksumError(
                f"EVM address fails its EIP-55 checksum: {a!r} (expected 0x{to_checksum(body)})"
            )
        return a.lower()
    if chain in UTXO_BASE58_CHAINS:
        low = a.lower()
        hrp, sep, data = low.rpartition("1")
        if sep and hrp in ("bc", "tb", "ltc", "bcrt") and low.startswith(hrp + "1"):
            if a != low and a != a.upper():
                raise ValueError(f"bech32 address mixes upper and lower case: {a!r}")
            if not 8 <= len(data) <= 87 or not _BECH32.issuperset(data):
                raise ValueError(f"invalid bech32 address: {a!r}")
            return low
        if ":" in a:  # cashaddr "bitcoincash:q..." (BCH and its forks)
            return low
        if chain in ("bitcoin_cash", "bitcoin_sv") and low[0] in "qp" and _BECH32.issuperset(low):
            return low  # cashaddr without prefix
        if not 25 <= len(a) <= 36 or not _BASE58.issuperset(a):
            raise ValueError(f"invalid base58 address: {a!r}")
        return a
    if any(c.isspace() for c in a):
        raise ValueError(f"address contains whitespace: {a!r}")
    return a
