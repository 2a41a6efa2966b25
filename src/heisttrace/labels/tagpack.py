"""GraphSense TagPacks (YAML): a pack header whose fields every tag inherits, and a tag list.

Format facts (REFERENCE.md section 5): fields set on the pack apply to each tag, a tag's own
value wins; `network` defaults to `currency`; confidence is a level name mapped to a number,
and a tag without one gets the lowest level plus a warning.

Speed: PyYAML, even with libyaml, builds Python objects at ~25k tags/s, and the public packs
hold over half a million tags. Nearly all packs are written in a tiny subset of YAML
(`key: scalar` lines, a `tags:` list of flat maps), so `_fast_parse` reads that subset line
by line and gives up (returns None) at the first line outside it; those files go through
`yaml.CSafeLoader` (a safe loader: no object construction from tags). Both paths yield the
same dicts of strings, and both keep each tag's line number for error messages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from heisttrace.errors import InputError
from heisttrace.labels.normalize import (
    CONFIDENCE,
    EVM_CHAINS,
    LOWEST_CONFIDENCE,
    address_error,
    chain_of,
    normalize_address,
)
from heisttrace.labels.store import LabelBatch, source_name

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

# A tag without its own category but with an `abuse` kind (phishing, service_hack, ...) is
# an address of the abuser: the engine follows it like any perpetrator's.
ABUSE_CATEGORY = "perpetrator"


class _NotSimple(Exception):
    """The file uses YAML beyond the flat subset; parse it with the real loader."""


def _scalar(text: str) -> str | None:
    t = text.strip()
    if not t:
        return None
    c = t[0]
    if c == "'":
        if len(t) < 2 or t[-1] != "'":
            raise _NotSimple
        inner = t[1:-1]
        if "'" in inner.replace("''", ""):
            raise _NotSimple
        return inner.replace("''", "'")
    if c == '"':
        if len(t) < 2 or t[-1] != '"' or "\\" in t or '"' in t[1:-1]:
            raise _NotSimple
        return t[1:-1]
    if c in "[{&*!|>%@`#,?-" or " #" in t or ": " in t or t.endswith(":"):
        raise _NotSimple
    if t in ("~", "null", "Null", "NULL"):
        return None
    return t


def _fast_parse(text: str) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]]] | None:
    """Header dict and (line, tag dict) list, or None if the file is not in the flat subset."""
    header: dict[str, Any] = {}
    tags: list[tuple[int, dict[str, Any]]] = []
    in_tags = False
    item_indent = -1
    current: dict[str, Any] | None = None
    try:
        for lineno, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped[0] == "#":
                continue
            indent = len(line) - len(line.lstrip(" "))
            if "\t" in line[: indent + 1]:
                raise _NotSimple
            if indent == 0 and not stripped.startswith("- "):
                key, sep, value = stripped.partition(":")
                if not sep or " " in key or (value and value[0] != " "):
                    raise _NotSimple
                if key == "tags":
                    if value.strip():
                        raise _NotSimple
                    in_tags = True
                    continue
                in_tags = False
                header[key] = _scalar(value)
                continue
            if not in_tags:
                raise _NotSimple
            if stripped.startswith("- "):
                if item_indent < 0:
                    item_indent = indent
                elif indent != item_indent:
                    raise _NotSimple
                current = {}
                tags.append((lineno, current))
                body = stripped[2:]
            else:
                if current is None or indent != item_indent + 2:
                    raise _NotSimple
                body = stripped
            key, sep, value = body.partition(":")
            if not sep or " " in key or (value and value[0] != " ") or not key:
                raise _NotSimple
            if not value.strip() and key in ("concepts", "context"):
                raise _NotSimple  # a nested block follows
            current[key] = _scalar(value)  # type: ignore[index]
    except _NotSimple:
        return None
    return header, tags


def _yaml_parse(text: str, file: str) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]]]:
    """The general path: compose nodes (for line numbers), then construct safely."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"malformed YAML: {problem}", file=file, line=line) from None
    if not isinstance(root, yaml.MappingNode):
        raise InputError("a TagPack must be a YAML mapping with a `tags` list", file=file, line=1)
    loader = _Loader("")
    header: dict[str, Any] = {}
    tags: list[tuple[int, dict[str, Any]]] = []
    for key_node, value_node in root.value:
        key = key_node.value
        if key == "tags":
            if not isinstance(value_node, yaml.SequenceNode):
                raise InputError("`tags` must be a list", file=file, line=value_node.start_mark.line + 1, field="tags")
            for item in value_node.value:
                if not isinstance(item, yaml.MappingNode):
                    raise InputError("each tag must be a mapping", file=file, line=item.start_mark.line + 1, field="tags")
                tags.append((item.start_mark.line + 1, loader.construct_object(item, deep=True)))
        else:
            header[key] = loader.construct_object(value_node, deep=True)
    loader.dispose()
    return header, tags


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    return str(value)


def _confidence(value: Any, file: str, line: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    name = _text(value)
    if name is None:
        return LOWEST_CONFIDENCE
    if name.isdigit():
        return int(name)
    level = CONFIDENCE.get(name.lower())
    if level is None:
        raise InputError(
            f"unknown confidence {name!r} (expected one of {', '.join(CONFIDENCE)})",
            file=file, line=line, field="confidence",
        )
    return level


def read_tagpack(path: Path) -> LabelBatch:
    """All tags of one TagPack file as a label batch; raises InputError naming file and line."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: {exc.reason}", file=file) from None
    parsed = _fast_parse(text)
    header, tags = parsed if parsed is not None else _yaml_parse(text, file)
    if not tags and "tags:" not in text:
        raise InputError("no `tags` list: not a TagPack", file=file, line=1, field="tags")
    batch = LabelBatch(source=source_name("tagpack", path))
    missing_confidence = 0
    evidence_cache: dict[tuple[Any, Any], str | None] = {}
    norm_cache: dict[tuple[str, str], str] = {}
    for lineno, own in tags:
        tag = {**header, **own} if own else dict(header)
        address = _text(tag.get("address"))
        if address is None:
            if tag.get("tx_hash"):
                continue  # transaction tags do not label an address
            raise InputError("tag has no address", file=file, line=lineno, field="address")
        currency = _text(tag.get("currency"))
        network = _text(tag.get("network")) or currency
        if network is None:
            raise InputError("tag has no currency or network", file=file, line=lineno, field="currency")
        key = (network, address)
        norm = norm_cache.get(key)
        if norm is None:
            chain = chain_of(network)
            try:
                addr = normalize_address(chain, address)
            except ValueError as exc:
                if chain in EVM_CHAINS:
                    raise address_error(exc, file=file, line=lineno, field="address") from None
                # Outside EVM chains the address check is only a plausibility test: skip the
                # tag, say so, keep the rest of the pack.
                batch.warnings.append(f"{file}: line {lineno}: skipped tag: {exc}")
                continue
            norm_cache[key] = norm = chain + "\0" + addr
        chain, _, addr = norm.partition("\0")
        if tag.get("confidence") is None:
            missing_confidence += 1
        confidence = _confidence(tag.get("confidence"), file, lineno)
        abuse = _text(tag.get("abuse"))
        category = _text(tag.get("category")) or (ABUSE_CATEGORY if abuse else None)
        url = _text(tag.get("source"))
        ek = (url, abuse)
        if ek not in evidence_cache:
            ev = {k: v for k, v in (("url", url), ("abuse", abuse)) if v}
            evidence_cache[ek] = json.dumps(ev) if ev else None
        batch.add(
            chain, addr, _text(tag.get("label")), category, confidence,
            _text(tag.get("actor")), evidence_cache[ek],
        )
    if missing_confidence:
        batch.warnings.append(
            f"{file}: {missing_confidence} tag(s) without confidence got the lowest level ({LOWEST_CONFIDENCE})"
        )
    return batch


def looks_like_tagpack(path: Path) -> bool:
    """YAML whose header has `title`/`creator` and a `tags:` list."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return False
    with open(path, encoding="utf-8", errors="replace") as fh:
        head = fh.read(65536)
    return "tags:" in head or "title:" in head
