"""Shared test fixtures: where the real data lives, and a fresh workspace per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from heisttrace.ledger import Workspace, open_workspace

REPO = Path(__file__).resolve().parents[1]
# The real data sets are read in place, never copied into the repository.
SHARED = Path(os.environ.get("HEISTTRACE_SHARED", REPO.parent / "shared")).resolve()
DATA = SHARED / "data"
ETL_FIXTURES = DATA / "fixtures" / "ethereum-etl" / "tests" / "resources"
BTC_FIXTURES = DATA / "fixtures" / "bitcoin-etl" / "tests" / "resources"
LABELS = DATA / "labels"


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = open_workspace(tmp_path / "ws")
    yield ws
    ws.close()
