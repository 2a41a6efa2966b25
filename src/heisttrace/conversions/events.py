"""Build `evm_logs` rows with the real ABI layout (REFERENCE.md section 1).

For tests and the simulator: a scenario that wants its THORChain deposits or DEX swaps found
by `detect_conversions` writes the same logs a node would have emitted.
"""

from __future__ import annotations

from heisttrace.conversions.abi import (
    encode_address_topic,
    encode_string_tail,
    encode_uint,
)
from heisttrace.conversions.thorchain import DEPOSIT_TOPIC, TRANSFER_OUT_TOPIC
from heisttrace.ledger.schema import WATCHED_TOPICS

TOPICS: dict[str, str] = {name: topic for topic, name in WATCHED_TOPICS.items()}


def log_row(
    chain: str, block: int, time: int, tx_hash: str, log_index: int, address: str,
    topics: list[str], data: str,
) -> dict:
    """One `evm_logs` row; topics and data 0x-prefixed lowercase, topic0 without 0x."""
    topics = [t.lower() if t.startswith("0x") else "0x" + t.lower() for t in topics]
    return {
        "chain": chain, "block": block, "time": time, "tx_hash": tx_hash.lower(),
        "log_index": log_index, "address": address.lower(), "topic0": topics[0][2:],
        "topics": topics, "data": "0x" + data.removeprefix("0x"),
    }


def thorchain_deposit(vault: str, asset: str, amount: int, memo: str) -> tuple[list[str], str]:
    """Topics and data of the router's
    `Deposit(address indexed to, address indexed asset, uint amount, string memo)`."""
    data = encode_uint(amount) + encode_uint(64) + encode_string_tail(memo)
    return [DEPOSIT_TOPIC, encode_address_topic(vault), encode_address_topic(asset)], data


def thorchain_transfer_out(
    vault: str, to: str, asset: str, amount: int, memo: str
) -> tuple[list[str], str]:
    """The router's `TransferOut(address indexed vault, address indexed to, address asset,
    uint amount, string memo)`."""
    data = (
        encode_uint(int(asset, 16)) + encode_uint(amount) + encode_uint(96)
        + encode_string_tail(memo)
    )
    return [TRANSFER_OUT_TOPIC, encode_address_topic(vault), encode_address_topic(to)], data


def univ2_swap(
    sender: str, to: str, in0: int, in1: int, out0: int, out1: int
) -> tuple[list[str], str]:
    data = "".join(encode_uint(v) for v in (in0, in1, out0, out1))
    return [TOPICS["univ2_swap"], encode_address_topic(sender), encode_address_topic(to)], data


def univ3_swap(
    sender: str, recipient: str, amount0: int, amount1: int
) -> tuple[list[str], str]:
    data = "".join(encode_uint(v) for v in (amount0, amount1, 1 << 96, 10**18, 0))
    topics = [TOPICS["univ3_swap"], encode_address_topic(sender), encode_address_topic(recipient)]
    return topics, data


def curve_exchange(
    buyer: str, sold_id: int, sold: int, bought_id: int, bought: int
) -> tuple[list[str], str]:
    data = "".join(encode_uint(v) for v in (sold_id, sold, bought_id, bought))
    return [TOPICS["curve_exchange"], encode_address_topic(buyer)], data


def weth_deposit(dst: str, wad: int) -> tuple[list[str], str]:
    return [TOPICS["weth_deposit"], encode_address_topic(dst)], encode_uint(wad)


def weth_withdrawal(src: str, wad: int) -> tuple[list[str], str]:
    return [TOPICS["weth_withdrawal"], encode_address_topic(src)], encode_uint(wad)


# Router 4.1 selectors (REFERENCE.md section 2).
SEL_DEPOSIT_WITH_EXPIRY = "44bc937b"
SEL_DEPOSIT = "1fece7b4"


def thorchain_deposit_call(
    vault: str, asset: str, amount: int, memo: str, expiry: int | None = None
) -> str:
    """Calldata of the router's `deposit(vault, asset, amount, memo)` or, with `expiry`,
    `depositWithExpiry(vault, asset, amount, memo, expiration)`: the memo is the one dynamic
    argument, so its offset is the size of the head."""
    words = [encode_uint(int(vault, 16)), encode_uint(int(asset, 16)), encode_uint(amount)]
    if expiry is None:
        head = "".join(words) + encode_uint(4 * 32)
        return "0x" + SEL_DEPOSIT + head + encode_string_tail(memo)
    head = "".join(words) + encode_uint(5 * 32) + encode_uint(expiry)
    return "0x" + SEL_DEPOSIT_WITH_EXPIRY + head + encode_string_tail(memo)


def memo_input(memo: str) -> str:
    """A plain transfer's input carrying a THORChain memo as UTF-8 text."""
    return "0x" + memo.encode().hex()
