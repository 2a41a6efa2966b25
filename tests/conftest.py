"""Shared test fixtures: where the real data lives, and a fresh workspace per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from heisttrace.ledger import Workspace, open_workspace

from shared_data import BTC_FIXTURES, DATA, ETL_FIXTURES, LABELS, REPO, SHARED  # noqa: F401


def pytest_sessionstart(session: pytest.Session) -> None:
    """Without the real data sets a third of the suite would fail with puzzling messages
    (an empty fixture node, a missing label file); say what is missing instead."""
    if not DATA.is_dir():
        pytest.exit(f"the real data sets are expected at {DATA} (../shared/data next to the "
                    "repository); set HEISTTRACE_SHARED to the folder holding data/",
                    returncode=4)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = open_workspace(tmp_path / "ws")
    yield ws
    ws.close()
