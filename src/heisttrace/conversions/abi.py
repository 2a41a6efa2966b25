"""Just enough ABI decoding for the event logs conversions read (REFERENCE.md section 1).

Logs arrive as stored in `evm_logs`: topics as 0x-prefixed hex strings, data as one 0x hex
string of 32-byte words. We decode by hand rather than pull in an ABI library: the layouts
we need are fixed and few.
"""

from __future__ import annotations

ZERO_ADDRESS = "0x" + "0" * 40


class AbiError(ValueError):
    """A log whose data does not have the layout its topic0 promises."""


def _hex(data: str | None) -> bytes:
    text = (data or "").strip()
    if text.startswith(("0x", "0X")):
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise AbiError(f"not hex: {data[:20] if data else data!r}") from exc


def topic_address(topic: str) -> str:
    """An indexed address topic (32 bytes, left-padded) as a lowercase 0x address."""
    raw = _hex(topic)
    if len(raw) != 32:
        raise AbiError(f"topic is {len(raw)} bytes, expected 32")
    return "0x" + raw[12:].hex()


def words(data: str | None) -> list[bytes]:
    raw = _hex(data)
    return [raw[i : i + 32] for i in range(0, len(raw) - len(raw) % 32, 32)]


def word_uint(word: bytes) -> int:
    return int.from_bytes(word, "big")


def word_int(word: bytes) -> int:
    return int.from_bytes(word, "big", signed=True)


def word_address(word: bytes) -> str:
    return "0x" + word[12:].hex()


def dynamic_bytes(data: str | None, head_index: int) -> bytes:
    """The `bytes`/`string` whose offset sits in head word `head_index`."""
    raw = _hex(data)
    start = head_index * 32
    if len(raw) < start + 32:
        raise AbiError("data too short for the string offset")
    offset = int.from_bytes(raw[start : start + 32], "big")
    if offset + 32 > len(raw):
        raise AbiError("string offset points past the data")
    length = int.from_bytes(raw[offset : offset + 32], "big")
    if offset + 32 + length > len(raw):
        raise AbiError("string length runs past the data")
    return raw[offset + 32 : offset + 32 + length]


def encode_uint(value: int) -> str:
    """Hex of one word; tests and simulators use it to build logs with the real layout."""
    return value.to_bytes(32, "big", signed=value < 0).hex()


def encode_address_topic(address: str) -> str:
    return "0x" + "0" * 24 + address.lower().removeprefix("0x").rjust(40, "0")


def encode_string_tail(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    padded = raw + b"\x00" * (-len(raw) % 32)
    return encode_uint(len(raw)) + padded.hex()
