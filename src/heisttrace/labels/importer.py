"""`labels import`: find label files, recognise their format, store them in one transaction.

All files are parsed before anything is written, then every file's old rows are replaced in
a single transaction: a bad file anywhere leaves the workspace exactly as it was.

Folders: files whose format is not recognised (README, LICENSE, actor packs) are skipped;
copies of the same data are read once — OFAC `.json` next to its `.txt`, and the per-label
etherscan files when the tree has `combinedAllLabels.json` (their union).

An EVM address with a wrong EIP-55 checksum rejects its whole file (a file with one copying
error may have more that no checksum can catch). A file named on the command line stops the
import; a file found inside a folder is left out and reported in `rejected` (published data
sets carry the odd typo, and one must not block the rest), unless `strict`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from heisttrace.errors import InputError
from heisttrace.labels.csv_labels import looks_like_plain_csv, read_plain_csv
from heisttrace.labels.etherscan_labels import looks_like_etherscan, read_etherscan
from heisttrace.labels.forta import looks_like_forta, read_forta
from heisttrace.labels.normalize import ChecksumInputError
from heisttrace.labels.ofac import looks_like_ofac, read_ofac
from heisttrace.labels.store import LABEL_SCHEMA, LabelBatch
from heisttrace.labels.tagpack import read_tagpack
from heisttrace.labels.tokens import entries_table, replace_verdicts
from heisttrace.ledger.workspace import Workspace

FORMATS: tuple[str, ...] = ("auto", "tagpack", "ofac", "etherscan", "forta", "csv")
_TAGS_KEY = re.compile(r"^tags:", re.M)


@dataclass
class ImportResult:
    files: int = 0
    labels: int = 0
    by_category: Counter[str] = field(default_factory=Counter)
    by_format: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "labels": self.labels,
            "by_category": dict(self.by_category.most_common()),
            "by_format": dict(self.by_format),
            "warnings": self.warnings,
            "skipped_files": self.skipped,
            "rejected_files": self.rejected,
        }


def detect_format(path: Path) -> str | None:
    """The format of one file from its name and first bytes, or None."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(65536)
        return "tagpack" if _TAGS_KEY.search(head) else None
    if looks_like_ofac(path):
        return "ofac"
    if suffix == ".csv":
        if looks_like_plain_csv(path):
            return "csv"
        if looks_like_forta(path):
            return "forta"
        if looks_like_etherscan(path):
            return "etherscan"
        return None
    if suffix == ".json" and looks_like_etherscan(path):
        return "etherscan"
    return None


def collect_files(paths: Iterable[Path], fmt: str = "auto") -> tuple[list[tuple[Path, str]], list[str]]:
    """(file, format) to read, and the files of folders that were left out (with why)."""
    chosen: list[tuple[Path, str]] = []
    skipped: list[str] = []
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise InputError("no such file or folder", file=str(root))
        if root.is_file():
            f = fmt if fmt != "auto" else detect_format(root)
            if f is None:
                raise InputError("unrecognised label file format (use --format)", file=str(root))
            chosen.append((root, f))
            continue
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        combined_roots = {p.parent.parent for p in files if p.name == "combinedAllLabels.json"}
        names = {p for p in files}
        for p in files:
            if p.suffix.lower() == ".json" and looks_like_ofac(p) and p.with_suffix(".txt") in names:
                skipped.append(f"{p} (same list as {p.with_suffix('.txt').name})")
                continue
            if any(r in p.parents for r in combined_roots) and p.name != "combinedAllLabels.json":
                skipped.append(f"{p} (contained in combinedAllLabels.json)")
                continue
            f = fmt if fmt != "auto" else detect_format(p)
            if f is None:
                skipped.append(f"{p} (not a label file)")
                continue
            chosen.append((p, f))
    return chosen, skipped


def read_file(path: Path, fmt: str, chain: str | None = None) -> LabelBatch:
    if fmt == "tagpack":
        return read_tagpack(path)
    if fmt == "ofac":
        return read_ofac(path, chain)
    if fmt == "etherscan":
        return read_etherscan(path)
    if fmt == "forta":
        return read_forta(path, chain)
    if fmt == "csv":
        return read_plain_csv(path, chain)
    raise InputError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})", file=str(path), field="format")


def import_labels(
    ws: Workspace,
    paths: Iterable[Path],
    fmt: str = "auto",
    chain: str | None = None,
    progress: Callable[[Path, int, int], None] | None = None,
    strict: bool = False,
) -> ImportResult:
    """Import label files or folders; atomic over all of them, idempotent per file."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})", field="format")
    paths = [Path(p) for p in paths]
    named = {p.resolve() for p in paths if p.is_file()}
    files, skipped = collect_files(paths, fmt)
    result = ImportResult(skipped=skipped)
    tables: list[pa.Table] = []
    sources: list[str] = []
    token_tables: list[pa.Table] = []
    for i, (path, f) in enumerate(files):
        try:
            batch = read_file(path, f, chain)
        except ChecksumInputError as exc:
            if strict or path.resolve() in named:
                raise
            result.rejected.append(str(exc))
            continue
        tables.append(batch.to_arrow())  # rows are unique per file (LabelBatch.add)
        token_tables.append(entries_table(batch.tokens))
        sources.append(batch.source)
        result.warnings.extend(batch.warnings)
        result.by_format[f] += 1
        if progress:
            progress(path, i + 1, len(files))
    result.files = len(files) - len(result.rejected)
    if not tables:
        return result
    table = pa.concat_tables(tables) if tables else LABEL_SCHEMA.empty_table()
    ws.con.register("_new_labels", table)
    ws.con.register("_new_sources", pa.table({"source": pa.array(sources, pa.string())}))
    try:
        with ws.transaction() as con:
            con.execute("DELETE FROM labels WHERE source IN (SELECT source FROM _new_sources)")
            con.execute(
                """
                INSERT INTO labels (chain, address, entity, category, source, confidence, actor,
                                    heuristic, evidence)
                SELECT chain, address, entity, category, source, confidence, actor, false, evidence
                FROM _new_labels
                """
            )
            for source, tokens in zip(sources, token_tables):
                replace_verdicts(ws, source, tokens)
            rows = con.execute(
                """
                SELECT coalesce(category, '(none)') AS category, count(*) AS n FROM labels
                WHERE source IN (SELECT source FROM _new_sources) GROUP BY ALL
                """
            ).fetchall()
            result.by_category = Counter({c: int(n) for c, n in rows})
            result.labels = sum(result.by_category.values())
            ws.record_import("labels", f"{len(files)} file(s)", result.labels)
    finally:
        ws.con.unregister("_new_labels")
        ws.con.unregister("_new_sources")
    return result
