"""The sweep's fast paths (clean source, no queue) against hand-computed answers.

A holding that drained its taint is clean again and later flows from it take the fast path;
clean money into a FIFO holding that already has a queue must queue behind the taint.
"""

from __future__ import annotations

import pytest

from heisttrace.trace.run import run_trace
from trace_helpers import add, by_address, flow


def test_drained_holding_is_clean_again(workspace):
    add(workspace, [
        flow(10, "0xtheft", "0xvictim", "0xa", 100),
        flow(20, "0xt1", "0xa", "0xb", 100),  # drains every unit of taint out of 0xa
        flow(30, "0xt2", "0xc", "0xa", 40),  # clean (0xc's missing history)
        flow(40, "0xt3", "0xa", "0xd", 40),
    ])
    for policy in ("haircut", "fifo"):
        run_trace(workspace, policy, ["0xtheft"], policy=policy)
        got = by_address(workspace, policy)
        assert got["0xb"][:2] == ("dormant", pytest.approx(100))
        assert "0xd" not in got and "0xa" not in got


def test_clean_inflow_behind_taint_in_a_queue(workspace):
    add(workspace, [
        flow(5, "0xt0", "0xf", "0xe", 30),  # clean money already there
        flow(10, "0xtheft", "0xvictim", "0xe", 50),
        flow(20, "0xt1", "0xg", "0xe", 20),  # clean, arrives after the taint
        flow(30, "0xt2", "0xe", "0xh", 80),
        flow(40, "0xt3", "0xe", "0xi", 20),
    ])
    run_trace(workspace, "fifo", ["0xtheft"], policy="fifo")
    got = by_address(workspace, "fifo")
    assert got["0xh"][:2] == ("dormant", pytest.approx(50))  # 30 clean first, then 50 taint
    assert "0xi" not in got  # the last 20 are the clean inflow
    run_trace(workspace, "haircut", ["0xtheft"], policy="haircut")
    got = by_address(workspace, "haircut")
    assert got["0xh"][:2] == ("dormant", pytest.approx(40))  # 80 of 100 at 50% taint
    assert got["0xi"][:2] == ("dormant", pytest.approx(10))
