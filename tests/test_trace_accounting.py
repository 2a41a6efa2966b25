"""The accounting's rows for holdings that are both a stop and a holder of taint.

A conversion-labelled holding (a DEX) stops plain transfers into it (`bridged_untraced`) but
follows the swaps it receives, so one holding can end the sweep with a sink row and with taint
still held. Its held amount is the taint it holds, never its whole balance: the balance also
counts what went into the sink, and poison's "the whole balance is exposed" only describes
holdings that keep following.
"""

from __future__ import annotations

import pytest

from heisttrace.trace.run import run_trace
from trace_helpers import add, flow, label, sinks
from trace_reference import reference_trace

TOK = "0xtok"


def _dex_that_stops_and_holds(ws) -> None:
    add(ws, [
        flow(10, "0xtheft", "0xvictim", "0xa", 100),
        flow(10, "0xtheft", "0xvictim", "0xb", 50, asset=TOK, ordinal=2),
        # a swap into the DEX is followed: (0xdex, ETH) holds 20 tainted ETH
        flow(20, "0xswap", "0xb", "0xdex", 50, asset=TOK, kind="swap", amount_in=20,
             dst_asset="ETH"),
        # a plain transfer into the DEX stops there: 30 ETH bridged_untraced
        flow(30, "0xsend", "0xa", "0xdex", 30),
    ])
    label(ws, "0xdex", "defi_dex", "Uniswap")


@pytest.mark.parametrize("policy", ["haircut", "fifo", "poison"])
def test_stopping_holding_keeps_its_taint_not_its_balance(workspace, policy):
    _dex_that_stops_and_holds(workspace)
    run_trace(workspace, policy, ["0xtheft"], policy=policy, min_taint=0.0)
    got = sinks(workspace, policy)
    dex = ("ethereum", "0xdex", "ETH")
    assert got[("bridged_untraced", *dex)] == (pytest.approx(30), pytest.approx(30))
    # held: 20 ETH of taint worth the 50 stolen tokens; the balance (50 ETH) also counts
    # the 30 that went into the sink
    assert got[("dormant", *dex)] == (pytest.approx(50), pytest.approx(20))
    ref = reference_trace(workspace, ["0xtheft"], policy=policy)
    assert ref.taint[dex] == pytest.approx(20) and ref.balance[dex] == pytest.approx(50)
