"""Laws of swap netting on many random transactions (fixed seed, so failures reproduce)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from test_conversions_detect import Builder, tx

from heisttrace.conversions import events
from heisttrace.conversions.run import detect_conversions
from heisttrace.ledger.schema import LOG_BASE

USERS = ["0x" + f"{i:02x}" * 20 for i in (0x11, 0x12, 0x13, 0x14)]
POOLS = ["0x" + f"{i:02x}" * 20 for i in (0xa1, 0xa2)]
ROUTER = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"  # Uniswap V2 Router02 (known.csv)
ASSETS = ["ETH", "0x" + "e1" * 20, "0x" + "e2" * 20]


def per_tx_balances(ws, view: str) -> dict[str, dict[tuple[str, str], int]]:
    out: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for txh, src, dst, asset, a_out, a_in, dasset, kind in ws.con.execute(
        f"SELECT tx_hash, src, dst, asset, amount_out, amount_in, dst_asset, kind FROM {view}"
    ).fetchall():
        if kind == "fee":
            continue
        out[txh][(src, asset)] -= int(a_out)
        out[txh][(dst, dasset or asset)] += int(a_in)
    return out


def test_random_transactions_keep_every_wallet_whole(workspace):
    rng = np.random.default_rng(20250221)
    b = Builder()
    everyone = USERS + POOLS + [ROUTER]
    for i in range(400):
        h, sender = tx(10_000 + i), USERS[int(rng.integers(0, len(USERS)))]
        b.flow("ethereum", 1000 + i, 9000 + i, 0, 0, h, sender, "fees", "ETH", 10**15, "fee")
        # a swap shape (sender pays a pool or the router, a pool pays someone), then noise
        a, bb = rng.choice(len(ASSETS), 2, replace=False)
        dex = POOLS + [ROUTER]
        who = sender if rng.random() < 0.6 else USERS[int(rng.integers(0, len(USERS)))]
        shape = [(sender, dex[int(rng.integers(0, 3))], ASSETS[a]),
                 (POOLS[int(rng.integers(0, 2))], who, ASSETS[bb])]
        noise = []
        for _ in range(int(rng.integers(0, 4))):
            src, dst = rng.choice(len(everyone), 2, replace=False)
            noise.append((everyone[src], everyone[dst], ASSETS[int(rng.integers(0, len(ASSETS)))]))
        for k, (frm, to, asset) in enumerate(shape + noise):
            pos = 1 + k if asset == "ETH" else LOG_BASE + k
            kind = "native" if asset == "ETH" else "token"
            b.flow("ethereum", 1000 + i, 9000 + i, 0, pos, h, frm, to, asset,
                   int(rng.integers(1, 1000)), kind)
        b.log("ethereum", 1000 + i, 9000 + i, h, 99, POOLS[0], events.univ2_swap(ROUTER, sender, 1, 0, 0, 1))
    b.write(workspace)
    report = detect_conversions(workspace)
    assert report.swaps.candidates == 400 and report.swaps.swaps > 100

    raw = per_tx_balances(workspace, "flows WHERE kind NOT IN ('swap', 'bridge')")
    led = per_tx_balances(workspace, "ledger")
    swaps = workspace.con.execute(
        "SELECT tx_hash, src, asset, amount_out, dst, dst_asset, amount_in FROM flows WHERE kind = 'swap'"
    ).fetchall()
    assert len({s[0] for s in swaps}) == len(swaps)
    for txh, src, asset, a_out, dst, dst_asset, a_in in swaps:
        assert asset != dst_asset and int(a_out) > 0 and int(a_in) > 0
        assert src in USERS and dst in USERS
        assert led[txh][(src, asset)] == raw[txh][(src, asset)] < 0
        assert led[txh][(dst, dst_asset)] == raw[txh][(dst, dst_asset)] > 0
    # every wallet that gains or loses in a transaction keeps exactly that in the ledger view;
    # only DEX contracts and pass-through wallets (net zero) may look different
    for txh, nets in raw.items():
        for user in USERS:
            mine = {a: v for (w, a), v in nets.items() if w == user}
            if any(mine.values()):
                for a, v in mine.items():
                    assert led[txh][(user, a)] == v, (txh, user, a)
