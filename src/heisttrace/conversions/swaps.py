"""DEX swaps inside one transaction, found by netting balances rather than by decoding routes.

Routes differ per DEX and aggregator (1inch, ParaSwap, the Universal Router, multi-hop pools),
but every swap has the same footprint: the trader's balance of one asset goes down and the
balance of another asset goes up, for the trader or a named recipient, in the same transaction.
So for every transaction with a swap-like log (Uniswap V2/V3 `Swap`, Curve `TokenExchange`,
Balancer `Swap`, WETH `Deposit`/`Withdrawal`) or a token mint/burn (wrapping and staking:
ETH -> stETH, stETH -> wstETH, mETH -> cmETH) we net the transaction's raw flows per
(address, asset) and look at the addresses that are not DEX contracts:

- DEX contracts: the emitters of the swap-like logs, the known routers/aggregators
  (known.csv and labels of category defi_dex), the token contracts moved in the transaction
  and the zero address (mints, burns);
- the trader X: the transaction sender (the payer of the fee flow) if its net is negative in
  some asset, else the one non-DEX address with a negative net;
- X must lose exactly one asset A; it gets asset B itself, or else the non-DEX address with the
  largest net gain is the recipient R (all gains must be in one asset B != A).

The swap flow goes (X, A, loss) -> (R, B, gain) at the transaction's reserved swap ordinal. It
replaces the raw flows between X or R and the DEX side (DEX contracts and pass-through addresses
whose net is zero); a payment to a third party in the same transaction (a referrer fee paid by
the trader) stays a plain flow. Loss and gain are the parties' net over the replaced flows, which
must change nothing else of theirs, so each side keeps exactly its own-unit balance.

WETH wraps are not `Transfer`s, so a `Deposit(dst, wad)` / `Withdrawal(src, wad)` from an
emitter that received / sent that much ETH in the transaction counts as wad WETH (the
emitter's address) minted to dst / burnt from src.

Limits: one swap per transaction (a transaction where the trader loses or gains two assets is
skipped and reported as ambiguous); swaps spread over several transactions (liquid-staking
withdrawal queues, intents filled later, limit orders) are not joined; a trader that is a
contract relaying for someone else is taken as the trader.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from heisttrace.conversions import abi
from heisttrace.conversions.store import (
    LOGS, SWAP_POSITION, Batch, flow_key, tx_base, tx_flows,
)
from heisttrace.ledger.schema import FEE_SINK, WATCHED_TOPICS, native_asset
from heisttrace.ledger.workspace import Workspace

STAGE = "swaps"
SWAP_LOGS = (
    "univ2_swap", "univ3_swap", "curve_exchange", "curve_crypto_exchange",
    "curve_ng_exchange", "balancer_swap", "weth_deposit", "weth_withdrawal",
)
SWAP_TOPICS = {t: n for t, n in WATCHED_TOPICS.items() if n in SWAP_LOGS}


@dataclass
class SwapResult:
    candidates: int = 0
    swaps: int = 0
    ambiguous: list[str] = field(default_factory=list)  # tx hashes with more than one swap shape
    no_swap: int = 0  # swap-like log, but no trader with one asset out and another in


def dex_addresses(ws: Workspace) -> set[tuple[str, str]]:
    """(chain, address) of DEX routers and aggregators we know: labels of category defi_dex."""
    rows = ws.con.execute(
        "SELECT DISTINCT chain, address FROM labels WHERE category = 'defi_dex'"
    ).fetchall()
    return {(c, a.lower()) for c, a in rows}


def spam_addresses(ws: Workspace) -> set[tuple[str, str]]:
    """Spam tokens and poisoning addresses: the engine never follows them, neither do we."""
    rows = ws.con.execute(
        "SELECT DISTINCT chain, address FROM labels WHERE category = 'spam'"
    ).fetchall()
    return {(c, a.lower()) for c, a in rows}


def _logs_by_tx(ws: Workspace) -> dict[tuple[str, str], list[tuple]]:
    if not SWAP_TOPICS:
        return {}
    marks = ", ".join("?" * len(SWAP_TOPICS))
    rows = ws.con.execute(
        f"""SELECT chain, tx_hash, log_index, address, topic0, topics, data FROM {LOGS}
            WHERE topic0 IN ({marks}) ORDER BY chain, tx_hash, log_index""",
        list(SWAP_TOPICS),
    ).fetchall()
    out: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for chain, tx, log_index, address, topic0, topics, data in rows:
        out[(chain, tx.lower())].append(
            (log_index, address.lower(), SWAP_TOPICS[topic0], topics, data)
        )
    return out


def _mint_burn_txs(ws: Workspace) -> list[tuple[str, str]]:
    """Transactions that mint or burn a token: wraps, staking, unwrapping (stETH -> wstETH,
    ETH -> stETH, mETH -> cmETH) have no swap event but the same footprint."""
    return [
        (c, t) for c, t in ws.con.execute(
            f"""SELECT DISTINCT chain, tx_hash FROM ledger
                WHERE kind = 'token'
                  AND (src = '{abi.ZERO_ADDRESS}' OR dst = '{abi.ZERO_ADDRESS}')"""
        ).fetchall()
    ]


def _wrap_deltas(chain: str, logs: list[tuple], flows: list[dict]) -> list[tuple[str, str, int]]:
    """(address, asset, delta) for WETH-style wraps whose emitter really moved that much ETH."""
    coin = native_asset(chain)
    got: dict[str, int] = defaultdict(int)
    sent: dict[str, int] = defaultdict(int)
    for f in flows:
        if f["asset"] == coin and f["kind"] != "fee":
            got[f["dst"]] += int(f["amount_in"])
            sent[f["src"]] += int(f["amount_out"])
    deltas = []
    for _i, emitter, name, topics, data in logs:
        if name not in ("weth_deposit", "weth_withdrawal"):
            continue
        try:
            who = abi.topic_address(topics[1])
            wad = abi.word_uint(abi.words(data)[0])
        except (abi.AbiError, IndexError, TypeError):
            continue
        if name == "weth_deposit" and got[emitter] >= wad:
            got[emitter] -= wad
            deltas += [(who, emitter, wad), (emitter, emitter, -wad)]
        elif name == "weth_withdrawal" and sent[emitter] >= wad:
            sent[emitter] -= wad
            deltas += [(who, emitter, -wad), (emitter, emitter, wad)]
    return deltas


def _swap_of_tx(
    chain: str, logs: list[tuple], flows: list[dict], known: set[tuple[str, str]]
) -> tuple[str, str, int, str, str, int, list[dict]] | str | None:
    """(trader, asset out, amount out, recipient, asset in, amount in, replaced flows),
    "ambiguous", or None when the transaction shows no swap."""
    moves = [f for f in flows if f["kind"] != "fee" and f["dst"] != FEE_SINK]
    wraps = _wrap_deltas(chain, logs, flows)
    net: dict[tuple[str, str], int] = defaultdict(int)
    for f in moves:
        net[(f["src"], f["asset"])] -= int(f["amount_out"])
        net[(f["dst"], f["asset"])] += int(f["amount_in"])
    for who, asset, delta in wraps:
        net[(who, asset)] += delta
    # Token contracts are counterparties of wraps (wstETH takes stETH), never traders.
    dex = {emitter for _i, emitter, *_ in logs} | {abi.ZERO_ADDRESS}
    dex |= {f["asset"] for f in moves if f["asset"].startswith("0x")}
    dex |= {a for c, a in known if c == chain}
    gains: dict[str, dict[str, int]] = defaultdict(dict)
    losses: dict[str, dict[str, int]] = defaultdict(dict)
    for (who, asset), value in net.items():
        if who in dex or value == 0:
            continue
        (gains if value > 0 else losses)[who][asset] = value
    if not losses:
        return None
    senders = [f["src"] for f in flows if f["kind"] == "fee" or f["dst"] == FEE_SINK]
    if senders and senders[0] in losses:
        trader = senders[0]
    elif len(losses) == 1:
        trader = next(iter(losses))
    else:
        return "ambiguous"
    if len(losses[trader]) != 1:
        return "ambiguous"
    (asset_out,) = losses[trader]
    if trader in gains:
        recipient = trader
    else:
        others = {
            w: {a: v for a, v in g.items() if a != asset_out}
            for w, g in gains.items() if w != trader
        }
        others = {w: g for w, g in others.items() if g}
        if not others:
            return None
        recipient = max(others, key=lambda w: max(others[w].values()))
    if len(gains[recipient]) != 1 or (recipient != trader and recipient in losses):
        return "ambiguous"
    (asset_in,) = gains[recipient]
    if asset_in == asset_out:
        return None
    # Replace only the parties' flows with the DEX side (DEX contracts and pass-through
    # addresses, whose net is zero): a payment to a third party in the same transaction stays.
    parties = {trader, recipient}
    third = {w for (w, _a), v in net.items() if v != 0 and w not in dex and w not in parties}
    replaced = [
        f for f in moves
        if (f["src"] in parties or f["dst"] in parties)
        and (f["dst"] if f["src"] in parties else f["src"]) not in third
    ]
    delta: dict[tuple[str, str], int] = defaultdict(int)
    for f in replaced:
        delta[(f["src"], f["asset"])] -= int(f["amount_out"])
        delta[(f["dst"], f["asset"])] += int(f["amount_in"])
    for who, asset, d in wraps:
        delta[(who, asset)] += d
    out, got = -delta[(trader, asset_out)], delta[(recipient, asset_in)]
    rest = {
        k: v for k, v in delta.items()
        if k[0] in parties and v and k not in ((trader, asset_out), (recipient, asset_in))
    }
    if out <= 0 or got <= 0 or rest:
        return "ambiguous"
    return trader, asset_out, out, recipient, asset_in, got, replaced


def detect_swaps(ws: Workspace, batch: Batch | None = None) -> tuple[Batch, SwapResult]:
    """Swap flows for every transaction with a swap-like log (see the module docstring)."""
    batch = batch or Batch(STAGE)
    result = SwapResult()
    logs = _logs_by_tx(ws)
    for key in _mint_burn_txs(ws):
        logs.setdefault(key, [])
    flows = tx_flows(ws, sorted(logs))
    known = dex_addresses(ws)
    spam = spam_addresses(ws)
    for key, tx_logs in logs.items():
        tx = [
            f for f in flows.get(key, [])
            if not {(f["chain"], f["asset"]), (f["chain"], f["src"]), (f["chain"], f["dst"])} & spam
        ]
        if not tx:
            continue
        result.candidates += 1
        chain, tx_hash = key
        found = _swap_of_tx(chain, tx_logs, tx, known)
        if found is None:
            result.no_swap += 1
            continue
        if found == "ambiguous":
            result.ambiguous.append(tx_hash)
            continue
        trader, asset_out, amount_out, recipient, asset_in, amount_in, replaced = found
        first = tx[0]
        batch.add(
            {
                "chain": chain,
                "block": first["block"],
                "time": first["time"],
                "ordinal": tx_base(int(first["ordinal"])) + SWAP_POSITION,
                "tx_hash": tx_hash,
                "src": trader,
                "dst": recipient,
                "asset": asset_out,
                "amount_out": str(amount_out),
                "amount_in": str(amount_in),
                "kind": "swap",
                "dst_chain": chain,
                "dst_asset": asset_in,
            },
            [flow_key(f) for f in replaced],
        )
        result.swaps += 1
    return batch, result
