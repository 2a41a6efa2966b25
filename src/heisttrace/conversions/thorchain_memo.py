"""THORChain memos: the text that says where a deposit goes, and which inbound an outbound pays.

Only the forms bridge matching needs are parsed: swaps (inbound) and `OUT:` / `REFUND:`
(outbound). Format from THORNode `docs/concepts/memos.md`, `memo-length-reduction.md` and
`asset-notation.md` (see ../shared/REFERENCE.md section 2):

    SWAP:ASSET:DESTADDR[/REFUNDADDR]:LIM[/INTERVAL/QUANTITY]:AFFILIATE[/AFF2...]:FEE[/FEE2...]

with the aliases `s` and `=` for SWAP, `=<` / `=>` for limit swaps, empty fields kept as `::`.
THORChain ignores inbound memos over 250 bytes, so we do too: such a deposit is no swap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

MAX_MEMO_BYTES = 250

# Short asset codes (memo-length-reduction.md), case-insensitive.
SHORT_ASSETS: dict[str, str] = {
    "r": "THOR.RUNE",
    "rune": "THOR.RUNE",
    "a": "AVAX.AVAX",
    "b": "BTC.BTC",
    "c": "BCH.BCH",
    "e": "ETH.ETH",
    "g": "GAIA.ATOM",
    "s": "BSC.BNB",
    "d": "DOGE.DOGE",
    "l": "LTC.LTC",
    "f": "BASE.ETH",
    "x": "XRP.XRP",
    "tr": "TRON.TRX",
}

# THORChain chain codes -> heisttrace chain names (ledger/schema.py NATIVE_ASSETS keys).
CHAINS: dict[str, str] = {
    "BTC": "bitcoin",
    "ETH": "ethereum",
    "BSC": "bsc",
    "AVAX": "avalanche",
    "BASE": "base",
    "BCH": "bitcoin_cash",
    "DOGE": "dogecoin",
    "LTC": "litecoin",
    "GAIA": "cosmos",
    "THOR": "thorchain",
    "XRP": "xrp",
    "TRON": "tron",
}

# Separator between chain and symbol -> what kind of asset it names (asset-notation.md).
_ASSET_KINDS: dict[str, str] = {".": "layer1", "/": "synth", "~": "trade", "-": "secured"}

SWAP_ACTIONS: dict[str, bool] = {"swap": False, "s": False, "=": False, "=<": True, "=>": True}


@dataclass(frozen=True)
class Asset:
    """A THORChain asset: `chain` is the THORChain code (BTC, ETH); `kind` is layer1, synth,
    trade or secured."""

    chain: str
    symbol: str
    contract: str | None = None
    kind: str = "layer1"

    @property
    def ledger_chain(self) -> str:
        """The chain the asset lands on: synths, trade and secured assets stay on THORChain."""
        if self.kind != "layer1":
            return "thorchain"
        return CHAINS.get(self.chain, self.chain.lower())

    @property
    def is_native(self) -> bool:
        """True for the chain's own coin on the chain itself (what lands in a wallet there)."""
        return self.kind == "layer1" and self.contract is None and self.symbol == self.chain

    def __str__(self) -> str:
        sep = {v: k for k, v in _ASSET_KINDS.items()}[self.kind]
        tail = f"-{self.contract.upper()}" if self.contract else ""
        return f"{self.chain}{sep}{self.symbol}{tail}"


@dataclass(frozen=True)
class Memo:
    """A parsed memo. `action` is `swap`, `out` or `refund`; the other fields depend on it."""

    action: str
    raw: str
    asset: Asset | None = None
    destination: str | None = None
    refund_address: str | None = None
    limit: int | None = None
    interval: int | None = None
    quantity: int | None = None
    affiliates: tuple[str, ...] = ()
    fees_bps: tuple[int, ...] = ()
    limit_swap: bool = False
    inbound_hash: str | None = None  # out/refund: lowercase hex, no 0x
    extra: tuple[str, ...] = field(default=())  # unparsed trailing fields, kept for evidence

    @property
    def is_swap(self) -> bool:
        return self.action == "swap"


def normalize_hash(value: str) -> str:
    """Lowercase hex without 0x: how inbound hashes are compared across chains."""
    value = value.strip().lower()
    return value[2:] if value.startswith("0x") else value


def parse_asset(text: str) -> Asset | None:
    """`CHAIN.SYM[-CONTRACT]`, `CHAIN/SYM` synth, `CHAIN~SYM` trade, `CHAIN-SYM` secured,
    or a short code."""
    text = text.strip()
    if not text:
        return None
    text = SHORT_ASSETS.get(text.lower(), text)
    positions = [(text.find(sep), sep) for sep in _ASSET_KINDS if text.find(sep) > 0]
    if not positions:
        return None
    pos, sep = min(positions)
    chain, rest = text[:pos].upper(), text[pos + 1 :]
    if not chain.isalnum() or not rest:
        return None
    symbol, _, contract = rest.partition("-")
    if not symbol:
        return None
    return Asset(
        chain=chain,
        symbol=symbol.upper(),
        contract=contract.lower() if contract else None,
        kind=_ASSET_KINDS[sep],
    )


def _amount(text: str) -> int | None:
    """Limits are integers in 1e8 units; `1e6` scientific shorthand is allowed."""
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if value < 0 or value != value.to_integral_value():
        return None
    return int(value)


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def parse_memo(text: str | bytes | None) -> Memo | None:
    """A memo parsed into its fields, or None if it is not a swap / OUT / REFUND memo that
    THORChain would act on."""
    if text is None:
        return None
    if isinstance(text, bytes):
        if len(text) > MAX_MEMO_BYTES:
            return None
        text = text.decode("utf-8", errors="replace")
    if len(text.encode("utf-8")) > MAX_MEMO_BYTES:
        return None
    raw = text
    text = text.strip().strip("\x00")
    if not text:
        return None
    parts = text.split(":")
    action = parts[0].strip().lower()
    if action in ("out", "refund"):
        if len(parts) < 2:
            return None
        inbound = normalize_hash(parts[1])
        if not inbound or any(c not in "0123456789abcdef" for c in inbound):
            return None
        return Memo(action=action, raw=raw, inbound_hash=inbound, extra=tuple(parts[2:]))
    if action not in SWAP_ACTIONS:
        return None
    if len(parts) < 2:
        return None
    asset = parse_asset(parts[1])
    if asset is None:
        return None
    destination = refund = None
    if len(parts) > 2 and parts[2].strip():
        dest, _, ref = parts[2].strip().partition("/")
        destination = dest or None
        refund = ref or None
    limit = interval = quantity = None
    if len(parts) > 3 and parts[3].strip():
        lim_parts = parts[3].split("/")
        limit = _amount(lim_parts[0])
        if len(lim_parts) > 1:
            interval = _int(lim_parts[1])
        if len(lim_parts) > 2:
            quantity = _int(lim_parts[2])
    affiliates: tuple[str, ...] = ()
    if len(parts) > 4 and parts[4].strip():
        affiliates = tuple(a.strip() for a in parts[4].split("/") if a.strip())
    fees: tuple[int, ...] = ()
    if len(parts) > 5 and parts[5].strip():
        fees = tuple(f for f in (_int(x) for x in parts[5].split("/")) if f is not None)
    return Memo(
        action="swap",
        raw=raw,
        asset=asset,
        destination=destination,
        refund_address=refund,
        limit=limit,
        interval=interval,
        quantity=quantity,
        affiliates=affiliates,
        fees_bps=fees,
        limit_swap=SWAP_ACTIONS[action],
        extra=tuple(parts[6:]),
    )
