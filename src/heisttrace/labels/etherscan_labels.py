"""etherscan-labels (brianleect/etherscan-labels): Etherscan's public name tags, per label.

Shapes in `data/etherscan/`:
- `accounts/<label>.json`: `{address: name tag}`; `accounts/<label>.csv`: columns
  `,Address,Name Tag,Balance,Txn Count` (the label is the file name);
- `combined/combined{All,Account,Token}Labels.json`: `{address: {"name": …, "labels": […]}}`.

Tokens for the registry (labels/tokens.py): every entry of `combinedTokenLabels.json` is a
real token contract (name tag `Maker (MKR)` = name and symbol), also when the import reads
its union `combinedAllLabels.json` instead; entries labelled `spam-token` are fakes.

Etherscan labels are slugs (`binance`, `tornado-cash`, `dex`, …); `category_of` maps the ones
that matter to the engine onto GraphSense categories and keeps the others as `etherscan:<slug>`
(no role). The entity is the name tag without its counter (`Binance 14` -> `Binance`) or,
without a name tag, the label itself.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from heisttrace.errors import InputError
from heisttrace.labels.normalize import address_error, normalize_address
from heisttrace.labels.roles import ROLE_PRECEDENCE, load_role_map
from heisttrace.labels.store import LabelBatch, source_name
from heisttrace.labels.tokens import TokenEntry

ETHERSCAN_CONFIDENCE = 50  # GraphSense `trusted_provider`

_EXCHANGES = {
    "abcc", "allbit", "ascendex", "bgogo", "binance", "bitfinex", "bithumb", "bitmart",
    "bitmex", "bitpie", "bitstamp", "bittrex", "blockfi", "celsius-network", "cobinhood",
    "coinbase", "coinbit", "coinhako", "coinlist", "coinmetro", "coinone", "coinsquare",
    "coss-io", "crex24", "crypto-com", "deribit", "digifinex", "ftx", "gate-io", "gemini",
    "hitbtc", "hoo-com", "hotbit", "huobi", "korbit", "kraken", "kryptono", "kucoin",
    "latoken", "maskex", "nexo", "okx", "paribu", "poloniex", "quadrigacx", "remitano",
    "resfinex", "tidex", "topbtc", "upbit", "wirex", "yunbi", "zb-com", "bitcoin-suisse",
    "exchange", "hot-wallet", "cold-wallet", "fiat-gateway",
}
_CATEGORY: dict[str, str] = {
    **{slug: "exchange" for slug in _EXCHANGES},
    "otc": "otc",
    "payments": "payment_processor",
    "binance-deposit": "deposit_wallet",
    "tornado-cash": "mixing_service",
    "ethereum-mixer": "mixing_service",
    "typhoon-cash": "mixing_service",
    "changenow": "no_kyc_exchange",
    "dex": "defi_dex", "dex-ag": "defi_dex", "1inch": "defi_dex", "0x-protocol": "defi_dex",
    "uniswap": "defi_dex", "sushiswap": "defi_dex", "balancer": "defi_dex", "bancor": "defi_dex",
    "curve-fi": "defi_dex", "kyberswap": "defi_dex", "paraswap": "defi_dex",
    "cow-protocol": "defi_dex", "airswap": "defi_dex", "pancakeswap": "defi_dex",
    "dydx": "defi_dex", "idex": "defi_dex", "tokenlon": "defi_dex", "loopring": "defi_dex",
    "bridge": "defi_bridge", "wormhole": "defi_bridge", "multichain": "defi_bridge",
    "hop-protocol": "defi_bridge", "synapse": "defi_bridge", "across-protocol": "defi_bridge",
    "celer-network": "defi_bridge", "connext": "defi_bridge", "optics": "defi_bridge",
    "aave": "defi_lending", "compound": "defi_lending", "loans": "defi_lending",
    "cream-finance": "defi_lending", "maker": "defi_lending", "liquity": "defi_lending",
    "reservelending": "defi_lending",
    "staking": "defi_staking", "lido": "defi_staking", "rocket-pool": "defi_staking",
    "ofac-sanctions-lists": "sanctioned",
    "blocked": "black_list",
    "heist": "perpetrator", "exploit": "perpetrator", "phish-hack": "perpetrator",
    "spam-token": "spam",
}
# Labels that name an attribute, not who owns the address: never the entity.
_GENERIC = {"hot-wallet", "cold-wallet", "exchange", "old-contract", "deprecated", "v1", "v2"}
_COUNTER = re.compile(r"\s+\d+$")


def category_of(slug: str) -> str:
    return _CATEGORY.get(slug, f"etherscan:{slug}")


def _entity(name: str | None, slug: str) -> str:
    if name:
        head = name.split(":", 1)[0].strip()
        return _COUNTER.sub("", head) or name
    return slug


_ROLE_MAP = load_role_map()
_ROLE_RANK = {r: i for i, r in enumerate(ROLE_PRECEDENCE)}
_TOKEN_NAME = re.compile(r"\(([A-Za-z0-9.$+-]{1,16})\)$")


def _pick(slugs: list[str]) -> str:
    """Of several labels, the one whose role is most final (a Tornado pool that is also on the
    OFAC list is a mixer first); specific labels before generic ones."""
    def rank(slug: str) -> tuple[int, int]:
        role = _ROLE_MAP.get(_CATEGORY.get(slug, ""))
        return (_ROLE_RANK.get(role, len(_ROLE_RANK)) if role else len(_ROLE_RANK) + 1, slug in _GENERIC)
    return min(slugs, key=rank) if slugs else "unlabelled"


def looks_like_etherscan(path: Path) -> bool:
    if path.suffix.lower() == ".json":
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(200).lstrip()
        return head.startswith("{")
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
        return "Address" in first and "Name Tag" in first
    return False


def _add(batch: LabelBatch, file: str, line: int | None, address: str, name: str | None, slug: str) -> None:
    try:
        addr = normalize_address("ethereum", address)
    except ValueError as exc:
        raise address_error(exc, file=file, line=line, field="address") from None
    category = category_of(slug)
    if name and category in ("exchange", "otc", "payment_processor") and _TOKEN_NAME.search(name):
        # A token contract filed under its issuer (USDT under `bitfinex`) is not a wallet.
        category = "token"
    batch.add("ethereum", addr, _entity(name, slug), category, ETHERSCAN_CONFIDENCE, None,
              json.dumps({"etherscan_label": slug, "name": name}) if name else None)


TOKEN_LIST = "combinedTokenLabels.json"
_SYMBOL = re.compile(r"^(.*?)\s*\(([^()]{1,16})\)\s*$")
_FAKE_SLUGS = {"spam-token", "phish-hack"}


def _token(address: str, name: str | None, real: bool, reason: str) -> TokenEntry:
    m = _SYMBOL.match(name or "")
    token_name, symbol = (m.group(1) or None, m.group(2).strip()) if m else (name, None)
    return TokenEntry("ethereum", address, symbol, token_name, real, reason)


def _token_list(path: Path) -> list[TokenEntry]:
    """The real tokens of an etherscan token list file (bad addresses were checked by the
    caller when it is the file being imported; a sibling list is checked here)."""
    file = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc.msg}", file=file, line=exc.lineno) from None
    out = []
    for address, value in data.items() if isinstance(data, dict) else []:
        if not isinstance(value, dict):
            continue
        try:
            addr = normalize_address("ethereum", address)
        except ValueError as exc:
            raise address_error(exc, file=file, line=None, field=address) from None
        slugs = {s for s in value.get("labels") or [] if isinstance(s, str)}
        fake = slugs & _FAKE_SLUGS
        out.append(_token(addr, value.get("name") or None, not fake,
                          f"etherscan {'label ' + min(fake) if fake else 'token list'}"))
    return out


def read_etherscan(path: Path) -> LabelBatch:
    """Labels of one etherscan-labels file (JSON or CSV, per-label or combined)."""
    path = Path(path)
    file = str(path)
    slug = path.stem
    batch = LabelBatch(source=source_name("etherscan", path))
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON: {exc.msg}", file=file, line=exc.lineno) from None
        if not isinstance(data, dict):
            raise InputError("expected a JSON object {address: name tag}", file=file, line=1)
        for address, value in data.items():
            if isinstance(value, dict):
                slugs = [s for s in value.get("labels") or [] if isinstance(s, str)]
                _add(batch, file, None, address, value.get("name") or None, _pick(slugs))
                if "spam-token" in slugs and path.name != TOKEN_LIST:
                    batch.tokens.append(_token(normalize_address("ethereum", address), value.get("name") or None,
                                               False, "etherscan label spam-token"))
            elif isinstance(value, str):
                _add(batch, file, None, address, value or None, slug)
                if slug == "spam-token":
                    batch.tokens.append(_token(normalize_address("ethereum", address), value or None, False,
                                               "etherscan label spam-token"))
            else:
                raise InputError(f"unexpected value for {address!r}", file=file, field=address)
        if path.name == TOKEN_LIST:
            batch.tokens.extend(_token_list(path))
        elif path.name == "combinedAllLabels.json" and (path.parent / TOKEN_LIST).is_file():
            batch.tokens.extend(_token_list(path.parent / TOKEN_LIST))
        return batch
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "Address" not in reader.fieldnames:
        raise InputError("expected a CSV with an `Address` column", file=file, line=1, field="Address")
    for row in reader:
        line = reader.line_num
        address = row.get("Address")
        if not address:
            raise InputError("missing address", file=file, line=line, field="Address")
        name = (row.get("Name Tag") or "").strip() or None
        _add(batch, file, line, address, name, slug)
        if slug == "spam-token":
            batch.tokens.append(_token(normalize_address("ethereum", address), name, False, "etherscan label spam-token"))
    return batch
