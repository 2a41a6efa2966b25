"""`export-parquet`: a workspace's flows as date-partitioned FLOW_SCHEMA Parquet.

Why: this is the input `spark-extract` takes, so a ledger built locally (ingested from nodes,
exports, or with conversions detected) can be moved to a cluster, combined with other chain
data there, and cut down again. DuckDB writes the dataset in one COPY (`date=YYYY-MM-DD/` hive
folders by UTC day, as chain exports are laid out); it is written to a hidden sibling folder
and renamed into place, so a failure never leaves half a dataset at OUT.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from heisttrace.errors import InputError
from heisttrace.ledger.schema import FLOW_COLUMNS
from heisttrace.ledger.workspace import Workspace


@dataclass
class ExportReport:
    out: str
    flows: int
    files: int
    days: int
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def export_parquet(ws: Workspace, out: str | Path, overwrite: bool = False) -> ExportReport:
    """Write every flow of `ws` under `out`; refuses a non-empty `out` unless `overwrite`."""
    started = time.perf_counter()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError("output exists and is not empty (use --overwrite to replace it)",
                         file=str(out))
    tmp = out.parent / f".{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    cols = ", ".join(FLOW_COLUMNS)
    n = int(ws.con.execute("SELECT count(*) FROM flows").fetchone()[0])  # type: ignore[index]
    try:
        if n:
            target = str(tmp).replace("'", "''")
            ws.con.execute(
                f"COPY (SELECT {cols}, strftime(epoch_ms(time * 1000), '%Y-%m-%d') AS date "
                f"FROM flows ORDER BY time, chain, tx_hash, ordinal) "
                f"TO '{target}' (FORMAT parquet, PARTITION_BY (date), COMPRESSION zstd)")
        else:
            tmp.mkdir()
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sorted(out.rglob("*.parquet"))
    days = len({f.parent.name for f in files})
    return ExportReport(out=str(out), flows=n, files=len(files), days=days,
                        seconds=round(time.perf_counter() - started, 3))
