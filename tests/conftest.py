"""Shared test fixtures: where the real data lives, and a fresh workspace per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from heisttrace.ledger import Workspace, open_workspace

from shared_data import BTC_FIXTURES, DATA, ETL_FIXTURES, LABELS, REPO, SHARED  # noqa: F401


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = open_workspace(tmp_path / "ws")
    yield ws
    ws.close()
