"""Deterministic identifiers: addresses, hashes and Bitcoin addresses derived from the seed.

Every identifier is a pure function of (seed, namespace, index), so the same seed gives the
same bytes in every file, and the laundering plan and the vectorised background can name
the same address without sharing state.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

HEX_CHARS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def digest(seed: int, *parts: object, size: int = 32) -> bytes:
    """A keyed hash of the parts; the seed keeps different runs apart."""
    h = hashlib.blake2b(digest_size=size, key=seed.to_bytes(8, "little", signed=False))
    for p in parts:
        h.update(str(p).encode())
        h.update(b"\x00")
    return h.digest()


def address(seed: int, *parts: object) -> str:
    """An Ethereum address (lowercase 0x + 40 hex) named by its parts."""
    return "0x" + digest(seed, "addr", *parts, size=20).hex()


def tx_hash(seed: int, *parts: object) -> str:
    """A transaction or block hash (0x + 64 hex)."""
    return "0x" + digest(seed, "hash", *parts).hex()


def raw_hash(seed: int, *parts: object) -> str:
    """64 hex chars without 0x (Bitcoin txids and block hashes)."""
    return digest(seed, "btc", *parts).hex()


def lookalike(seed: int, real: str, n: int) -> str:
    """A vanity address sharing the first 4 and last 4 hex chars of `real` (poisoning)."""
    middle = digest(seed, "lookalike", real, n, size=16).hex()
    return real[:6] + middle[: 40 - 8] + real[-4:]


# -- vectorised hex ---------------------------------------------------------------------------
def hex_matrix(raw: np.ndarray) -> np.ndarray:
    """(n, k) uint8 bytes -> (n, 2k) uint8 ASCII lowercase hex."""
    out = np.empty((raw.shape[0], raw.shape[1] * 2), dtype=np.uint8)
    out[:, 0::2] = HEX_CHARS[raw >> 4]
    out[:, 1::2] = HEX_CHARS[raw & 15]
    return out


def u64_hex(values: np.ndarray) -> np.ndarray:
    """uint64 values -> (n, 16) uint8 ASCII hex, zero padded."""
    v = values.astype(np.uint64)
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    nib = (v[:, None] >> shifts[None, :]) & np.uint64(15)
    return HEX_CHARS[nib.astype(np.intp)]


def random_hex(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    """(n, 2*nbytes) ASCII hex of random bytes from the generator."""
    return hex_matrix(rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8))


def prefixed(mat: np.ndarray, prefix: bytes = b"0x") -> np.ndarray:
    """Prepend a constant prefix to every row of an ASCII matrix."""
    out = np.empty((mat.shape[0], mat.shape[1] + len(prefix)), dtype=np.uint8)
    out[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    out[:, len(prefix) :] = mat
    return out


def to_arrow(mat: np.ndarray) -> pa.Array:
    """Fixed-width ASCII rows -> Arrow string array, without a per-row Python object."""
    n, w = mat.shape
    data = np.ascontiguousarray(mat).reshape(-1)
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32) if n * w < 2**31 else None
    if offsets is None:
        offsets64 = np.arange(0, (n + 1) * w, w, dtype=np.int64)
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets64), pa.py_buffer(data)).cast(pa.string())
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def str_matrix(values: list[str]) -> np.ndarray:
    """Equal-length Python strings -> ASCII matrix (for the few named addresses)."""
    if not values:
        return np.empty((0, 0), dtype=np.uint8)
    return np.frombuffer("".join(values).encode(), dtype=np.uint8).reshape(len(values), -1).copy()


# -- Bitcoin addresses (BIP-173 bech32, P2WPKH) ------------------------------------------------
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: list[int]) -> int:
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if ((b >> i) & 1) else 0
    return chk


def _convertbits(data: bytes, frombits: int, tobits: int) -> list[int]:
    acc = bits = 0
    ret = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            ret.append((acc >> bits) & maxv)
    if bits:
        ret.append((acc << (tobits - bits)) & maxv)
    return ret


def bech32_p2wpkh(program: bytes, hrp: str = "bc") -> str:
    """A native SegWit v0 address for a 20-byte key hash."""
    data = [0] + _convertbits(program, 8, 5)
    hrp_exp = [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]
    polymod = _polymod(hrp_exp + data + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in data + checksum)


def btc_address(seed: int, *parts: object) -> tuple[str, str]:
    """(bech32 address, scriptPubKey hex) of a P2WPKH output named by its parts."""
    program = digest(seed, "btcaddr", *parts, size=20)
    return bech32_p2wpkh(program), "0014" + program.hex()
