"""Folding look-alike characters to the Latin letters they imitate, for token symbols and names.

Address-poisoning tokens call themselves `ЕТН` or `UЅDТ` with Cyrillic/Greek letters that
render like Latin ones, or use full-width forms (`ＵＳＤＴ`). `fold` applies NFKC (which maps
full-width and other compatibility forms to ASCII) and then this table of the look-alikes
that matter for token tickers: the Cyrillic and Greek letters whose usual glyph is the same as
a Latin letter's (after Unicode's confusables.txt, restricted to single letters; our own
selection, not a copy of that file).
"""

from __future__ import annotations

import unicodedata

CONFUSABLES: dict[str, str] = {
    # Cyrillic capitals
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "Х": "X", "У": "Y", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q",
    "Ԝ": "W", "Ү": "Y", "Ӏ": "I", "Ԁ": "D", "Ɡ": "G",
    # Cyrillic small
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "х": "x", "у": "y", "ѕ": "s", "і": "i", "ј": "j", "ԛ": "q",
    "ԝ": "w", "ү": "y", "һ": "h", "ԁ": "d", "ɡ": "g", "ӏ": "l",
    # Greek capitals
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Greek small
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w",
    # Latin look-alikes outside ASCII
    "ı": "i", "ℓ": "l", "Ꭼ": "E", "Ꭲ": "T", "Ꮋ": "H", "Ꮯ": "C", "Ꮪ": "S", "Ꭰ": "D",
}
# Invisible characters used to make a symbol differ while looking the same.
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}


def fold(text: str) -> str:
    """The Latin text a string looks like."""
    nfkc = unicodedata.normalize("NFKC", text)
    return "".join(CONFUSABLES.get(c, c) for c in nfkc if c not in _INVISIBLE)


def has_non_ascii_letters(text: str) -> bool:
    """True if any character is a letter outside ASCII or an invisible formatting character."""
    return any((ord(c) > 127 and c.isalpha()) or c in _INVISIBLE for c in text)
