"""ABI encoding of the events the simulator emits, so its logs decode like mainnet's.

Topics come from `heisttrace.ledger.schema` (REFERENCE.md section 1); layouts (indexed vs data
fields) from the same table.
"""

from __future__ import annotations

from heisttrace.ledger.schema import TRANSFER_TOPIC, WATCHED_TOPICS

_BY_NAME = {name: topic for topic, name in WATCHED_TOPICS.items()}
TRANSFER = "0x" + TRANSFER_TOPIC
UNIV2_SWAP = "0x" + _BY_NAME["univ2_swap"]
THORCHAIN_DEPOSIT = "0x" + _BY_NAME["thorchain_deposit"]
USDT_ADDED_BLACKLIST = "0x" + _BY_NAME["usdt_added_blacklist"]

# Function selectors used in transaction input (first 4 bytes of keccak of the signature).
SEL_TRANSFER = "a9059cbb"  # transfer(address,uint256)
SEL_THOR_DEPOSIT_WITH_EXPIRY = "44bc937b"  # REFERENCE.md section 2
SEL_SWAP_EXACT_TOKENS_FOR_ETH = "18cbafe5"  # UniswapV2Router02
SEL_SWAP_EXACT_ETH_FOR_TOKENS = "7ff36ab5"  # UniswapV2Router02
SEL_1INCH_SWAP = "07ed2379"  # AggregationRouterV6.swap
SEL_ADD_BLACKLIST = "0ecb93c0"  # addBlackList(address)


def word(value: int) -> str:
    """One 32-byte ABI word (uint256), 64 hex chars."""
    if value < 0 or value >= 1 << 256:
        raise ValueError(f"uint256 out of range: {value}")
    return f"{value:064x}"


def addr_word(addr: str) -> str:
    """An address left-padded to a 32-byte word."""
    return "0" * 24 + addr[2:].lower()


def string_tail(text: str) -> str:
    """A dynamic `string` argument's tail: length word, then the bytes padded to 32."""
    raw = text.encode("utf-8")
    padded = raw.hex() + "0" * ((-len(raw) % 32) * 2)
    return word(len(raw)) + padded


def transfer_log(frm: str, to: str, value: int) -> tuple[list[str], str]:
    """ERC-20 Transfer(address indexed from, address indexed to, uint256 value)."""
    return [TRANSFER, "0x" + addr_word(frm), "0x" + addr_word(to)], "0x" + word(value)


def univ2_swap_log(
    sender: str, to: str, a0_in: int, a1_in: int, a0_out: int, a1_out: int
) -> tuple[list[str], str]:
    """UniswapV2Pair Swap(sender indexed, amount0In, amount1In, amount0Out, amount1Out, to indexed)."""
    data = word(a0_in) + word(a1_in) + word(a0_out) + word(a1_out)
    return [UNIV2_SWAP, "0x" + addr_word(sender), "0x" + addr_word(to)], "0x" + data


def thorchain_deposit_log(vault: str, asset: str, amount: int, memo: str) -> tuple[list[str], str]:
    """THORChain router Deposit(address indexed to, address indexed asset, uint256 amount, string memo)."""
    data = word(amount) + word(0x40) + string_tail(memo)
    return [THORCHAIN_DEPOSIT, "0x" + addr_word(vault), "0x" + addr_word(asset)], "0x" + data


def added_blacklist_log(user: str) -> tuple[list[str], str]:
    """USDT AddedBlackList(address _user): the user is in data, not indexed."""
    return [USDT_ADDED_BLACKLIST], "0x" + addr_word(user)


def thorchain_deposit_input(vault: str, asset: str, amount: int, memo: str, expiry: int) -> str:
    """Calldata of depositWithExpiry(vault, asset, amount, memo, expiration)."""
    head = addr_word(vault) + addr_word(asset) + word(amount) + word(5 * 32) + word(expiry)
    return "0x" + SEL_THOR_DEPOSIT_WITH_EXPIRY + head + string_tail(memo)


def call_input(selector: str, *words: str) -> str:
    """Calldata of a call with static arguments given as ready words."""
    return "0x" + selector + "".join(words)


def decode_words(data: str) -> list[int]:
    """Split 0x-hex data into uint256 words (for tests and evaluation)."""
    body = data[2:]
    return [int(body[i : i + 64], 16) for i in range(0, len(body), 64)]


def decode_string(data: str, offset_word: int) -> str:
    """Read an ABI string whose offset sits in word `offset_word` of the data."""
    body = bytes.fromhex(data[2:])
    off = int.from_bytes(body[offset_word * 32 : offset_word * 32 + 32], "big")
    length = int.from_bytes(body[off : off + 32], "big")
    return body[off + 32 : off + 32 + length].decode("utf-8")
