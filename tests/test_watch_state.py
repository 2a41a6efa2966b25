"""The watch's incremental haircut agrees with a full re-trace, and a rollback restores the
state exactly. Random ledgers on a real workspace; no node needed."""

from __future__ import annotations

import random

import pytest

from heisttrace.labels.roles import address_roles
from heisttrace.ledger import Workspace
from heisttrace.trace.run import run_trace
from heisttrace.watch import state as S
from heisttrace.watch.alerts import body_of, sign, verify

from trace_helpers import add, flow, label

ADDRS = ["0x" + f"{i:02x}" * 20 for i in range(1, 8)]
DEPOSIT = "0x" + "dd" * 20
DEX = "0x" + "de" * 20
FUNDER = "0x" + "ff" * 20


def random_ledger(ws: Workspace, seed: int, n: int = 60) -> list[dict]:
    """Theft to ADDRS[0] in block 1, then random transfers that never overspend, some into a
    labelled deposit address or a DEX; one flow per block."""
    rnd = random.Random(seed)
    bal = {a: 0 for a in ADDRS}
    rows = [flow(1, "0xtheft", "0x" + "aa" * 20, ADDRS[0], 100, block=1)]
    bal[ADDRS[0]] = 100 * 10**18
    for b in range(2, n + 2):
        if rnd.random() < 0.2:
            dst, amount = rnd.choice(ADDRS), rnd.randrange(1, 50) * 10**18
            rows.append(flow(b, f"0x{b:04x}", FUNDER, dst, amount // 10**18, block=b))
            bal[dst] += amount
            continue
        src = rnd.choice([a for a in ADDRS if bal[a] > 0] or [ADDRS[0]])
        if bal[src] <= 0:
            continue
        roll = rnd.random()
        dst = DEPOSIT if roll < 0.15 else DEX if roll < 0.2 else \
            rnd.choice([a for a in ADDRS if a != src])
        amount = rnd.randrange(1, bal[src] + 1)
        r = flow(b, f"0x{b:04x}", src, dst, 0, block=b)
        r["amount_out"] = r["amount_in"] = str(amount)
        rows.append(r)
        bal[src] -= amount
        if dst in bal:
            bal[dst] += amount
    add(ws, rows)
    label(ws, DEPOSIT, "deposit_wallet", "Ex")
    label(ws, DEX, "defi_dex", "Dex")  # a plain transfer into it stops the taint
    return rows


COLS = ["chain", "block", "time", "ordinal", "tx_hash", "src", "dst", "asset", "amount_out",
        "amount_in", "kind", "dst_chain", "dst_asset"]


def _ledger_rows(ws: Workspace, first: int, last: int) -> list[dict]:
    return [dict(zip(COLS, r)) for r in ws.con.execute(
        f"SELECT {', '.join(COLS)} FROM ledger WHERE chain = 'ethereum' AND block BETWEEN ? "
        "AND ? ORDER BY block, ordinal, tx_hash", [first, last]).fetchall()]


def advance(ws: Workspace, case: str, first: int, last: int, batched: bool = True) -> list[dict]:
    """Watch blocks first..last as one batch: new holdings' balances from one ledger query
    (`batched`, as `watch` does) or one query each."""
    roles_tbl = address_roles(ws).to_pylist()
    roles = {(r["chain"], r["address"]): (r["role"], r["entity"], r["category"])
             for r in roles_tbl}
    st = S.load_case(ws, case)
    alerts = []
    rows = _ledger_rows(ws, first, last)
    balances = S.LedgerBalances(ws, "ethereum", first, rows) if batched else None
    for block in range(first, last + 1):
        flows = [f for f in rows if f["block"] == block]
        got, _ = S.apply_block(ws, st, block, flows, roles, set(), balances)
        S.save(ws, st, block)
        alerts += got
    return alerts


def _state(ws: Workspace, table: str, case: str, scale: float) -> dict[str, tuple]:
    """address -> (balance, taint, origin, hops) for followed holdings with taint or poison."""
    return {a: (b / scale, t / scale, o, h) for a, b, t, o, h in ws.con.execute(
        f"SELECT address, balance, taint, origin, hops FROM {table} WHERE case_name = ? AND "
        "(abs(origin) > 1e-9 OR abs(taint) > 1e-9 OR hops IS NOT NULL)", [case]).fetchall()}


def _lots(ws: Workspace, case: str) -> dict[str, list[list[float]]]:
    """address -> the FIFO queue the watch keeps (amounts in whole units)."""
    import json

    return {a: [[x / 1e18, o, t] for x, o, t in json.loads(lots)]
            for a, lots in ws.con.execute(
                "SELECT address, lots FROM watch_holdings WHERE case_name = ? AND lots IS NOT "
                "NULL", [case]).fetchall()}


@pytest.mark.parametrize("policy", ["haircut", "fifo", "poison"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_equals_full_retrace(workspace: Workspace, seed: int, policy: str) -> None:
    """Trace up to a cut, watch the rest block by block: every followed holding (balance,
    taint, origin, poison hops, FIFO queue) and the cashed-out total equal a full re-trace."""
    rows = random_ledger(workspace, seed)
    last = max(r["block"] for r in rows)
    cut = last // 3
    run_trace(workspace, "early", ["0xtheft"], policy=policy, until=cut, max_hops=3)
    S.ensure_tables(workspace)
    S.init_case(workspace, "early", "ethereum", cut + 1)
    alerts = advance(workspace, "early", cut + 1, last, batched=seed != 1)
    run_trace(workspace, "full", ["0xtheft"], policy=policy, max_hops=3)
    full = _state(workspace, "case_holdings", "full", 1.0)
    held = _state(workspace, "watch_holdings", "early", 1e18)
    assert full, "the random ledger leaves taint somewhere"
    assert set(held) == set(full)
    for addr, want in full.items():
        assert held[addr][:3] == pytest.approx(want[:3], rel=1e-9, abs=1e-6), addr
        assert held[addr][3] == want[3], addr
    if policy == "fifo":
        want_lots = {a: [[x, o, float(t)] for x, o, t in workspace.con.execute(
            "SELECT amount, origin, tainted FROM case_lots WHERE case_name = 'full' AND "
            "address = ? ORDER BY seq", [a]).fetchall()] for a in full}
        got = _lots(workspace, "early")
        for addr, queue in want_lots.items():
            assert len(got[addr]) == len(queue), addr
            for g, w in zip(got[addr], queue):
                assert g == pytest.approx(w, rel=1e-9, abs=1e-6), addr
    cashed_full = workspace.con.execute(
        "SELECT sum(origin_amount) FROM case_sinks WHERE case_name = 'full' AND "
        "bucket = 'cashed_out'").fetchone()[0] or 0.0
    cashed_early = workspace.con.execute(
        "SELECT sum(origin_amount) FROM case_sinks WHERE case_name = 'early' AND "
        "bucket = 'cashed_out'").fetchone()[0] or 0.0
    assert cashed_early + sum(a["origin_taint"] for a in alerts) == pytest.approx(
        cashed_full, abs=1e-6)
    if policy == "poison":
        exposed = workspace.con.execute(
            "SELECT count(*) FROM case_edges WHERE case_name = 'full' AND dst = ?",
            [DEPOSIT]).fetchone()[0]
        early = workspace.con.execute(
            "SELECT count(*) FROM case_edges WHERE case_name = 'early' AND dst = ? AND "
            "block <= ?", [DEPOSIT, cut]).fetchone()[0]
        assert early + len(alerts) == exposed


@pytest.mark.parametrize("seed", [4, 5])
def test_batched_ledger_balances_equal_one_query_each(workspace: Workspace, seed: int) -> None:
    """Several flows per block, two assets, a bridge out and in: for every holding a batch
    pays and every position in the batch, the batched balance is the per-holding query's."""
    rnd = random.Random(seed)
    people = ADDRS[:5]
    rows = []
    for b in range(1, 31):
        for o in range(rnd.randrange(0, 5)):
            src, dst = rnd.sample(people + [FUNDER], 2)
            asset = rnd.choice(["ETH", "0x" + "70" * 20])
            r = flow(b, f"0x{b:03x}{o}", src, dst, rnd.randrange(1, 9), ordinal=o * 7 + 1,
                     asset=asset, block=b)
            if rnd.random() < 0.1:  # a bridge: leaves this chain, or arrives from another
                r.update(kind="bridge", dst_chain="bitcoin", dst_asset="BTC")
            rows.append(r)
    rows.append(flow(12, "0xin", FUNDER, people[0], 3, ordinal=3, chain="bitcoin",
                     asset="BTC", dst_chain="ethereum", dst_asset="ETH", kind="bridge",
                     block=12))
    loner = "0x" + "10" * 20  # paid before the batch, only pays out in it
    rows += [flow(2, "0xl1", FUNDER, loner, 5, block=2), flow(15, "0xl2", loner, FUNDER, 1,
                                                              ordinal=999, block=15)]
    add(workspace, rows)
    first, last = 11, 30
    batch = _ledger_rows(workspace, first, last)
    balances = S.LedgerBalances(workspace, "ethereum", first, batch)
    keys = {("ethereum", a, s) for a in people + [FUNDER, loner]
            for s in ["ETH", "0x" + "70" * 20]}
    checked = 0
    for f in batch + [dict(block=31, ordinal=0)]:
        for key in keys:
            want = S._ledger_balance(workspace, *key, f["block"], f["ordinal"])
            got = balances.balance(key, f["block"], f["ordinal"])
            assert got == pytest.approx(want, rel=1e-12, abs=1e-6), (key, f["block"])
            checked += want > 0
    assert checked > 50
    assert ("ethereum", loner, "ETH") not in balances.keys
    assert balances.balance(("ethereum", loner, "ETH"), 20, 1) == pytest.approx(4e18)
    # before the batch, on another chain: asked of the ledger directly
    assert balances.balance(("ethereum", people[0], "ETH"), 5, 1) == S._ledger_balance(
        workspace, "ethereum", people[0], "ETH", 5, 1)


def test_rollback_restores_state_exactly(workspace: Workspace) -> None:
    rows = random_ledger(workspace, 7)
    last = max(r["block"] for r in rows)
    run_trace(workspace, "c", ["0xtheft"], until=1)
    S.ensure_tables(workspace)
    S.init_case(workspace, "c", "ethereum", 2)
    workspace.con.execute("INSERT INTO watch_blocks SELECT 'ethereum', b, 'h' || b, NULL "
                          "FROM range(1, ?) t(b)", [last + 1])
    mid = last // 2
    advance(workspace, "c", 2, mid)
    snapshot = sorted(workspace.con.execute(
        "SELECT address, asset, balance, taint, origin FROM watch_holdings").fetchall())
    n_flows = workspace.con.execute("SELECT count(*) FROM flows WHERE block <= ?",
                                    [mid]).fetchone()[0]
    advance(workspace, "c", mid + 1, last)
    assert sorted(workspace.con.execute(
        "SELECT address, asset, balance, taint, origin FROM watch_holdings").fetchall()) != snapshot
    with workspace.transaction():
        S.rollback(workspace, "ethereum", mid)
    assert sorted(workspace.con.execute(
        "SELECT address, asset, balance, taint, origin FROM watch_holdings").fetchall()) == snapshot
    assert workspace.count_flows() == n_flows
    assert workspace.con.execute("SELECT max(block) FROM watch_blocks").fetchone()[0] == mid


def test_watch_needs_the_traced_state(workspace: Workspace) -> None:
    """A case without the sweep's end state (traced by an older version) is a clear error
    that says what to do, and the workspace is left as it was."""
    from heisttrace.errors import HeisttraceError
    from heisttrace.watch.follow import Watcher

    random_ledger(workspace, 4, n=10)
    run_trace(workspace, "f", ["0xtheft"], policy="fifo")
    workspace.con.execute("DELETE FROM case_state WHERE case_name = 'f'")
    url = "http://127.0.0.1:9"  # never contacted: the state is checked first
    with pytest.raises(HeisttraceError, match="re-run `heisttrace trace --case f"):
        Watcher(workspace, url, cases=["f"], from_block=1)
    assert workspace.con.execute("SELECT count(*) FROM watch_cases").fetchone()[0] == 0
    with pytest.raises(HeisttraceError, match="no case 'x'"):
        Watcher(workspace, url, cases=["x"])
    with pytest.raises(HeisttraceError, match="no case to watch"):
        Watcher(workspace, url)  # by default a case without state is skipped, not an error


def test_signature_round_trip() -> None:
    row = {"case_name": "c", "chain": "ethereum", "tx_hash": "0x1", "ordinal": 1,
           "category": "deposit_wallet", "role": "cash_out"}
    body = body_of(row)
    assert verify("k", body, sign("k", body))
    assert not verify("k", body + b" ", sign("k", body))
    assert not verify("other", body, sign("k", body))
    assert sign("k", body).startswith("sha256=") and len(sign("k", body)) == 7 + 64
