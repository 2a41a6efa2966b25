"""Vectorised building blocks for chunks of Ethereum rows: wei strings, ABI words, topics.

Background amounts are int64 "gwei units" (value = m * 10^9 wei, or raw units for 6-decimal
tokens), which keeps every array numeric until the last step and still gives exact decimal
and hex text of values beyond 64 bits.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from heisttrace.simulate import ids

ZEROS_9 = "000000000"
_U32 = np.uint64(0xFFFFFFFF)


def wei_text(m: np.ndarray, mul9: np.ndarray | bool = True) -> pa.Array:
    """Decimal text of m * 10^9 (where mul9) or m, exact."""
    s = pc.cast(pa.array(m, pa.int64()), pa.string())
    if mul9 is False:
        return s
    scaled = pc.binary_join_element_wise(s, ZEROS_9, "")
    mask = pa.array(np.asarray(m) != 0) if mul9 is True else pa.array((np.asarray(m) != 0) & mul9)
    return pc.if_else(mask, scaled, s)


def word_matrix(m: np.ndarray, mul9: np.ndarray) -> np.ndarray:
    """(n, 64) ASCII hex ABI words of m * 10^9 (where mul9) or m."""
    m = m.astype(np.uint64)
    lo = (m & _U32) * np.uint64(10**9)
    hi = (m >> np.uint64(32)) * np.uint64(10**9)
    bottom = lo + ((hi & _U32) << np.uint64(32))
    carry = (bottom < lo).astype(np.uint64)
    top = (hi >> np.uint64(32)) + carry
    bottom = np.where(mul9, bottom, m)
    top = np.where(mul9, top, np.uint64(0))
    out = np.full((len(m), 64), ord("0"), dtype=np.uint8)
    out[:, 32:48] = ids.u64_hex(top)
    out[:, 48:64] = ids.u64_hex(bottom)
    return out


def pad_addr(addr40: np.ndarray) -> np.ndarray:
    """(n, 40) address hex -> (n, 64) ABI word hex."""
    out = np.full((addr40.shape[0], 64), ord("0"), dtype=np.uint8)
    out[:, 24:] = addr40
    return out


def topics_text(topic0: str, a: np.ndarray, b: np.ndarray) -> pa.Array:
    """'topic0,0x<word a>,0x<word b>' as ethereum-etl writes a log's topics."""
    n = a.shape[0]
    t0 = np.frombuffer((topic0 + ",0x").encode(), dtype=np.uint8)
    sep = np.frombuffer(b",0x", dtype=np.uint8)
    out = np.empty((n, len(t0) + 64 + 3 + 64), dtype=np.uint8)
    out[:, : len(t0)] = t0
    out[:, len(t0) : len(t0) + 64] = pad_addr(a)
    out[:, len(t0) + 64 : len(t0) + 67] = sep
    out[:, len(t0) + 67 :] = pad_addr(b)
    return ids.to_arrow(out)


def data_text(*words: np.ndarray) -> pa.Array:
    """'0x' + concatenated 64-hex words."""
    return ids.to_arrow(ids.prefixed(np.concatenate(words, axis=1)))


def addr_text(mat: np.ndarray) -> pa.Array:
    return ids.to_arrow(ids.prefixed(mat))


def const(value: str | None, n: int) -> pa.Array:
    return pa.array([value] * n, pa.string()) if n else pa.array([], pa.string())


def tile(addr: str, n: int) -> np.ndarray:
    """One named address (0x...) repeated as an (n, 40) hex matrix."""
    return np.tile(np.frombuffer(addr[2:].encode(), dtype=np.uint8), (n, 1))
