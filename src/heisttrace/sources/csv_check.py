"""A compiled pass over a plain CSV file proving that every cell passes its column rule.

Checking cells in SQL (a regex or unhex per hex value) cost more than reading, mapping and
writing a large export together. This pass reads the raw bytes once, on all cores, and
answers only "proven clean" or "not proven": a proven file is imported without per-cell
guards; anything else (a quote, a non-ASCII byte, a stray carriage return, a short or long
row, an empty line, a bad value) leaves the guards on, and those, or the precise re-check
after them, decide and name file, line and field. So the pass must be sound, not complete:
it proves only files whose every cell the precise check accepts, read exactly as DuckDB's
CSV reader reads an unquoted file (fields split at commas, lines at LF or CRLF).
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
from numba import njit, prange

# Cell rules, as codes for the compiled pass (the kinds of sources.evm.COLUMNS).
ANY, ADDRESS, HASH, UINT = 0, 1, 2, 3

# Bytes per piece the file is cut into (at line ends) so that every core gets work.
PIECE = 8 << 20

_COMMA, _CR, _LF = 44, 13, 10


def _table(accept: bytes) -> np.ndarray:
    t = np.zeros(256, np.bool_)
    t[list(accept)] = True
    return t


# Byte classes; the precise check lowercases hex, so both cases are hex digits here.
_HEX = _table(b"0123456789abcdefABCDEF")
_DIGIT = _table(b"0123456789")
# Bytes that end an unchecked cell or make the file unprovable (quotes, non-ASCII).
_SPECIAL = _table(b',\r\n"' + bytes(range(128, 256)))


@njit(cache=True, nogil=True)
def _piece_ok(data: np.ndarray, start: int, end: int, kinds: np.ndarray,
              required: np.ndarray, crlf: bool, upper: np.ndarray) -> bool:
    """Every line starting in [start, end) has len(kinds) cells, each passing its rule, and
    ends as the header line does (DuckDB takes the line end from there; a mix is an error).
    `upper[col]` is set when a hex cell of that column has an upper-case letter.

    Cell by cell: a hex cell is checked at its fixed width and must then meet its delimiter,
    so most bytes are looked at once.
    """
    ncols = kinds.shape[0]
    size = data.shape[0]
    pos = start
    while pos < end:
        for col in range(ncols):
            kind = kinds[col]
            k = pos
            if kind == ADDRESS or kind == HASH:
                width = 42 if kind == ADDRESS else 66
                if k + width <= size and data[k] == 48:  # else empty or bad: judged below
                    if data[k + 1] != 120:
                        if data[k + 1] != 88:
                            return False
                        upper[col] = True
                    for j in range(k + 2, k + width):
                        c = data[j]
                        if not _HEX[c]:
                            return False
                        if c <= 70 and c >= 65:
                            upper[col] = True
                    k += width
            elif kind == UINT:
                while k < size and _DIGIT[data[k]]:
                    k += 1
            else:
                while k < size and not _SPECIAL[data[k]]:
                    k += 1
            if k == pos and required[col]:
                return False
            if k == size:  # the last line, without a line end
                if col != ncols - 1:
                    return False
                pos = size
                break
            c = data[k]
            if col < ncols - 1:
                if c != _COMMA:
                    return False
                pos = k + 1
            elif c == _LF and not crlf:
                pos = k + 1
            elif c == _CR and crlf and k + 1 < size and data[k + 1] == _LF:
                pos = k + 2
            else:
                return False
    return True


@njit(cache=True, nogil=True, parallel=True)
def _all_ok(data: np.ndarray, starts: np.ndarray, kinds: np.ndarray,
            required: np.ndarray, crlf: bool, upper: np.ndarray) -> bool:
    """All pieces clean; `upper` (pieces x columns) says where upper-case hex was seen."""
    n = starts.shape[0] - 1
    ok = np.ones(n, np.bool_)
    for i in prange(n):
        ok[i] = _piece_ok(data, starts[i], starts[i + 1], kinds, required, crlf, upper[i])
    return bool(ok.all())


def _piece_starts(data: np.ndarray, body: int, piece: int) -> np.ndarray:
    """Offsets of the pieces: `body`, then the first line start after every `piece` bytes."""
    size = data.shape[0]
    starts = [body]
    at = body + piece
    while at < size:
        nl = data[at:at + (1 << 20)].tobytes().find(b"\n")
        if nl < 0:  # a line longer than 1 MiB: keep it in the current piece
            at += 1 << 20
            continue
        starts.append(at + nl + 1)
        at = at + nl + 1 + piece
    starts.append(size)
    return np.unique(np.asarray(starts, np.int64))


def prove(path: Path, kinds: list[int], required: list[bool],
          piece: int = PIECE) -> list[bool] | None:
    """None unless every data line of `path` (after its header line) passes the column rules;
    else, per column, whether some hex cell of it has upper-case letters (a column without
    them needs no lowercasing).

    `kinds[i]` and `required[i]` are the rule of the i-th column in file order. A file of one
    column is never proven (an empty line there would be a cell, not a format error).
    """
    if len(kinds) < 2:
        return None
    with open(path, "rb") as fh:
        if fh.seek(0, 2) == 0:
            return None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            data = np.frombuffer(mm, np.uint8)
            try:
                header_end = mm.find(b"\n")
                if header_end <= 0 or b'"' in mm[:header_end] or b"\r" in mm[:header_end - 1]:
                    return None
                starts = _piece_starts(data, header_end + 1, piece)
                upper = np.zeros((max(len(starts) - 1, 1), len(kinds)), np.bool_)
                if starts[0] >= data.shape[0]:
                    return [False] * len(kinds)  # a header and no rows
                crlf = header_end > 0 and mm[header_end - 1] == _CR
                if not _all_ok(data, starts, np.asarray(kinds, np.int8),
                               np.asarray(required, np.bool_), crlf, upper):
                    return None
                return upper.any(axis=0).tolist()
            finally:
                del data  # the buffer must be released before the map closes


def proven_clean(path: Path, kinds: list[int], required: list[bool], piece: int = PIECE) -> bool:
    """Whether `prove` proves the file clean."""
    return prove(path, kinds, required, piece) is not None
