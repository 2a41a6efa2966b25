"""The sweep's fast paths (clean source, no queue) against hand-computed answers.

A holding that drained its taint is clean again and later flows from it take the fast path;
clean money into a FIFO holding that already has a queue must queue behind the taint; a FIFO
queue left with clean money only is dropped, and rebuilt (clean money first) when taint
comes back.
"""

from __future__ import annotations

import pytest

from heisttrace.trace.run import run_trace
from trace_helpers import add, by_address, flow
from trace_reference import reference_trace


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


def _taint_leaves_and_comes_back() -> list[dict]:
    """0xa: its FIFO queue empties of taint with clean money left (dropped), then taint
    arrives again (rebuilt behind that clean money); 0xb: drained to zero, spends clean money,
    then a second theft taints it again."""
    return [
        flow(5, "0xt0", "0xfriend", "0xa", 30),  # clean money already there
        flow(10, "0xtheft", "0xvictim", "0xa", 50, ordinal=1),
        flow(10, "0xtheft", "0xvictim", "0xb", 40, ordinal=2),
        flow(15, "0xt1", "0xfriend", "0xa", 20),  # clean, behind the taint
        flow(20, "0xt2", "0xa", "0xh", 80),  # FIFO: 30 clean + all 50 tainted; 20 clean left
        flow(25, "0xt3", "0xfriend", "0xa", 10),  # clean into a clean holding again
        flow(30, "0xt4", "0xb", "0xa", 40),  # 0xb drained; taint back in 0xa, behind 30 clean
        flow(35, "0xt5", "0xfriend", "0xb", 10),
        flow(36, "0xt6", "0xb", "0xf", 10),  # clean: 0xb holds no taint any more
        flow(40, "0xt7", "0xa", "0xd", 35),
        flow(50, "0xt8", "0xa", "0xe", 35),  # drains 0xa
        flow(60, "0xtheft2", "0xvictim", "0xb", 20),
        flow(70, "0xt9", "0xb", "0xg", 25),  # 5 of missing history, then the 20 stolen
    ]


@pytest.mark.parametrize("policy, want", [
    ("fifo", {"0xh": 50, "0xd": 5, "0xe": 35, "0xg": 20}),
    # haircut: 0xa sends 80 of 100 at 50% (40), keeps 10 of 20, then holds 50 of 70
    ("haircut", {"0xh": 40, "0xd": 25, "0xe": 25, "0xg": 20}),
])
def test_taint_drains_to_clean_and_comes_back(workspace, policy, want):
    add(workspace, _taint_leaves_and_comes_back())
    res = run_trace(workspace, policy, ["0xtheft", "0xtheft2"], policy=policy, min_taint=0.0)
    assert res.stolen == pytest.approx(110)
    got = by_address(workspace, policy)
    assert {a: v[1] for a, v in got.items()} == {a: pytest.approx(v) for a, v in want.items()}
    assert all(v[0] == "dormant" for v in got.values())
    ref = reference_trace(workspace, ["0xtheft", "0xtheft2"], policy=policy)
    for address, amount in want.items():
        assert ref.taint[("ethereum", address, "ETH")] == pytest.approx(amount)
