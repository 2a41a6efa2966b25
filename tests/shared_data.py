"""Where the real data sets live: read in place from ../shared, never copied into the repository.

A plain module (not conftest) so tests in sub-folders with their own conftest can import it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The real data sets are read in place, never copied into the repository.
SHARED = Path(os.environ.get("HEISTTRACE_SHARED", REPO.parent / "shared")).resolve()
DATA = SHARED / "data"
ETL_FIXTURES = DATA / "fixtures" / "ethereum-etl" / "tests" / "resources"
BTC_FIXTURES = DATA / "fixtures" / "bitcoin-etl" / "tests" / "resources"
LABELS = DATA / "labels"
