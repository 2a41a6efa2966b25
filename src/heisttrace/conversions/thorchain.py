"""THORChain bridge matching: an inbound swap deposit on one chain, paid out on another.

Inbound: a router `Deposit(to vault, asset, amount, memo)` log whose memo is a swap (or, on a
UTXO chain, a transaction whose OP_RETURN memo in `tx_memos` is a swap). The router
event does not name the depositor, so the depositor is whoever sent the deposited asset to the
router in that transaction (native ETH: the top-level value, forwarded router -> vault as an
internal transfer; ERC-20: a `Transfer` into the router, where it stays).

Outbound: THORChain pays out with the memo `OUT:<inbound hash>` (or `REFUND:<inbound hash>`),
as a router `TransferOut` log on EVM chains or an OP_RETURN memo (`tx_memos`) on UTXO chains.
Hashes compare lowercase without `0x` (Bitcoin memos carry the Ethereum hash upper-case).

On a UTXO chain the deposit is the transaction's first output that is not change or fee (THORChain
wants the vault as vout0), and the bridge flow leaves from the transaction node `tx:<txid>`
(the pooled inputs, per the Bitcoin model); `bridge_inbounds` names the first input as depositor.

A matched pair becomes one `bridge` flow on the source chain, at the inbound transaction's
reserved bridge ordinal (store.BRIDGE_POSITION + the deposit's rank in the transaction),
from (depositor, source asset) to (recipient, destination chain, destination asset). The raw
flows it replaces are superseded: depositor -> router (and router -> vault) on the source side,
the payout to the recipient (and vault -> router for native EVM payouts) on the destination side.
An inbound without an outbound keeps its raw flows (money reaching the router counts as
"bridged, untraced") and is listed in `bridge_inbounds` with the address it was meant for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from heisttrace.conversions import abi
from heisttrace.conversions.store import (
    BRIDGE_POSITION, CALLS, LOGS, MEMOS, Batch, flow_key, tx_base, tx_flows,
)
from heisttrace.conversions.thorchain_memo import Memo, normalize_hash, parse_memo
from heisttrace.ledger.schema import FEE_SINK, native_asset
from heisttrace.ledger.workspace import Workspace
from heisttrace.sources.evm import EVM_CALLS_DDL, THORCHAIN_SELECTORS

DEPOSIT_TOPIC = "ef519b7eb82aaf6ac376a6df2d793843ebfd593de5f1a0601d3cc6ab49ebb395"
TRANSFER_OUT_TOPIC = "a9cd03aa3c1b4515114539cd53d22085129d495cb9e9f9af77864526240f1bf7"
STAGE = "thorchain"


@dataclass(frozen=True)
class Inbound:
    chain: str
    block: int
    time: int
    tx_hash: str
    log_index: int
    router: str
    vault: str
    asset: str  # ledger asset name: native coin name or token contract
    amount: int | None  # None for UTXO inbounds: known from the flows only
    memo: Memo
    utxo: bool = False
    from_call: bool = False  # read from calldata (`evm_calls`), not from a `Deposit` log


@dataclass(frozen=True)
class Outbound:
    chain: str
    tx_hash: str
    memo: Memo
    kind: str  # "evm" (TransferOut log) or "memo" (tx_memos row)
    time: int
    router: str | None = None
    vault: str | None = None
    recipient: str | None = None
    asset: str | None = None
    amount: int | None = None


@dataclass
class ThorchainResult:
    inbounds: int = 0
    matched: int = 0
    unmatched: int = 0
    skipped_logs: list[str] = field(default_factory=list)  # undecodable logs, for the report


def _ledger_asset(chain: str, token: str) -> str:
    return native_asset(chain) if token == abi.ZERO_ADDRESS else token


def read_inbounds(ws: Workspace, result: ThorchainResult) -> list[Inbound]:
    rows = ws.con.execute(
        f"""SELECT chain, block, time, tx_hash, log_index, address, topics, data FROM {LOGS}
           WHERE topic0 = ? ORDER BY chain, block, tx_hash, log_index""",
        [DEPOSIT_TOPIC],
    ).fetchall()
    out = []
    for chain, block, time, tx, log_index, address, topics, data in rows:
        try:
            if not topics or len(topics) < 3:
                raise abi.AbiError("Deposit log needs 3 topics")
            vault = abi.topic_address(topics[1])
            token = abi.topic_address(topics[2])
            head = abi.words(data)
            if not head:
                raise abi.AbiError("Deposit log without data")
            amount = abi.word_uint(head[0])
            memo_bytes = abi.dynamic_bytes(data, 1)
        except abi.AbiError as exc:
            result.skipped_logs.append(f"{chain} {tx} log {log_index}: {exc}")
            continue
        memo = parse_memo(memo_bytes)
        if memo is None or not memo.is_swap:
            continue
        out.append(
            Inbound(chain, block, time, tx.lower(), log_index, address.lower(), vault,
                    _ledger_asset(chain, token), amount, memo)
        )
    out.extend(_call_inbounds(ws, {(i.chain, i.tx_hash) for i in out}, result))
    # UTXO inbounds: an OP_RETURN swap memo; the vault is the deposit output (vout0).
    for chain, block, time, tx, text in ws.con.execute(
        f"SELECT chain, block, time, tx_hash, memo FROM {MEMOS} ORDER BY chain, block, tx_hash"
    ).fetchall():
        memo = parse_memo(text)
        if memo is not None and memo.is_swap:
            out.append(Inbound(chain, block, time, tx.lower(), 0, "", "", native_asset(chain),
                               None, memo, utxo=True))
    return out


def _call_memo(selector_or_text: str) -> tuple[str, bytes] | None:
    """("router", args) for a router call, ("text", memo bytes) for a memo as input, or None."""
    raw = selector_or_text.lower()
    if raw.startswith(THORCHAIN_SELECTORS):
        return "router", bytes.fromhex(raw[10:])
    try:
        return "text", bytes.fromhex(raw[2:])
    except ValueError:
        return None


def _read_calls(ws: Workspace) -> list[tuple]:
    ws.con.execute(EVM_CALLS_DDL)  # a workspace no EVM importer has written to yet
    return ws.con.execute(
        f"SELECT chain, block, time, tx_hash, to_address, input FROM {CALLS} "
        "ORDER BY chain, block, tx_hash"
    ).fetchall()


def _call_inbounds(
    ws: Workspace, have_log: set[tuple[str, str]], result: ThorchainResult
) -> list[Inbound]:
    """Inbounds from calldata (`evm_calls`) where no router `Deposit` log tells the same.

    A router `deposit`/`depositWithExpiry(vault, asset, amount, memo[, expiry])` call names
    everything the log would. A plain transfer whose input is a swap memo is a deposit of the
    transaction's value straight to the vault (the `to` address), so router = vault there.
    """
    out = []
    for chain, block, time, tx, to, data in _read_calls(ws):
        tx = tx.lower()
        if (chain, tx) in have_log or not to:
            continue
        decoded = _call_memo(data or "")
        if decoded is None:
            continue
        how, raw = decoded
        to = to.lower()
        if how == "router":
            try:
                head = abi.words("0x" + raw.hex())
                if len(head) < 4:
                    raise abi.AbiError("router call input too short")
                vault, token = abi.word_address(head[0]), abi.word_address(head[1])
                amount: int | None = abi.word_uint(head[2])
                memo = parse_memo(abi.dynamic_bytes("0x" + raw.hex(), 3))
            except abi.AbiError as exc:
                result.skipped_logs.append(f"{chain} {tx} calldata: {exc}")
                continue
            asset = _ledger_asset(chain, token)
            router = to
        else:
            memo, vault, router, asset, amount = parse_memo(raw), to, to, native_asset(chain), None
        if memo is None or not memo.is_swap:
            continue
        out.append(Inbound(chain, block, time, tx, -1, router, vault, asset, amount, memo,
                           from_call=True))
    return out


def _utxo_deposit(inb: Inbound, flows: list[dict]) -> tuple[str | None, str | None, list[dict]]:
    """(tx node, sender, [deposit output]) of a UTXO inbound.

    THORChain wants the vault as the first output and the sender as the first input
    (sending-transactions.md); we take the first output, in ledger order, that does not go back
    to an input address (change) or to fees.
    """
    node = f"tx:{inb.tx_hash}"
    inputs = [f["src"] for f in flows if f["dst"] == node]
    outputs = [
        f for f in flows
        if f["src"] == node and f["kind"] != "fee" and f["dst"] != FEE_SINK
        and f["dst"] not in inputs
    ]
    if not outputs:
        return None, inputs[0] if inputs else None, []
    return node, inputs[0] if inputs else None, outputs[:1]


def read_outbounds(ws: Workspace, result: ThorchainResult) -> dict[str, list[Outbound]]:
    """OUT/REFUND payouts keyed by the inbound hash they pay (lowercase, no 0x)."""
    by_inbound: dict[str, list[Outbound]] = {}
    rows = ws.con.execute(
        f"""SELECT chain, block, time, tx_hash, log_index, address, topics, data FROM {LOGS}
           WHERE topic0 = ? ORDER BY chain, block, tx_hash, log_index""",
        [TRANSFER_OUT_TOPIC],
    ).fetchall()
    for chain, _block, time, tx, log_index, address, topics, data in rows:
        try:
            if not topics or len(topics) < 3:
                raise abi.AbiError("TransferOut log needs 3 topics")
            vault = abi.topic_address(topics[1])
            to = abi.topic_address(topics[2])
            head = abi.words(data)
            if len(head) < 3:
                raise abi.AbiError("TransferOut data too short")
            token = abi.word_address(head[0])
            amount = abi.word_uint(head[1])
            memo = parse_memo(abi.dynamic_bytes(data, 2))
        except abi.AbiError as exc:
            result.skipped_logs.append(f"{chain} {tx} log {log_index}: {exc}")
            continue
        if memo is None or memo.inbound_hash is None:
            continue
        by_inbound.setdefault(memo.inbound_hash, []).append(
            Outbound(chain, tx.lower(), memo, "evm", time, address.lower(), vault, to,
                     _ledger_asset(chain, token), amount)
        )
    for chain, time, tx, text in ws.con.execute(
        f"SELECT chain, time, tx_hash, memo FROM {MEMOS} ORDER BY chain, block, tx_hash"
    ).fetchall():
        memo = parse_memo(text)
        if memo is None or memo.inbound_hash is None:
            continue
        by_inbound.setdefault(memo.inbound_hash, []).append(
            Outbound(chain, tx.lower(), memo, "memo", time, asset=native_asset(chain))
        )
    # Payouts as plain transfers with the memo as input: the `to` address is the recipient.
    seen = {(o.chain, o.tx_hash) for outs in by_inbound.values() for o in outs}
    for chain, _block, time, tx, to, data in _read_calls(ws):
        decoded = _call_memo(data or "")
        if decoded is None or decoded[0] != "text" or (chain, tx.lower()) in seen or not to:
            continue
        memo = parse_memo(decoded[1])
        if memo is None or memo.inbound_hash is None:
            continue
        by_inbound.setdefault(memo.inbound_hash, []).append(
            Outbound(chain, tx.lower(), memo, "evm", time, None, None, to.lower(),
                     native_asset(chain), None)
        )
    for outs in by_inbound.values():  # OUT before REFUND, then earliest
        outs.sort(key=lambda o: (o.memo.action != "out", o.time, o.tx_hash))
    return by_inbound


def _dest_address(memo: Memo) -> str | None:
    dest = memo.destination
    if dest and dest.lower().startswith("0x"):
        return dest.lower()
    return dest


def _payout(
    out: Outbound, flows: list[dict], target: str | None, fallback: bool
) -> tuple[str, str, int, list[dict]] | None:
    """(recipient, asset, amount received, raw payout flows) of an outbound, or None.

    EVM: the `TransferOut` names the recipient; the amount is what reached it in the flows
    (the log amount if the flows lack it). UTXO: the output to `target` (the inbound memo's
    destination, or its refund address for REFUND), else the largest output that is not change.
    """
    flows = [f for f in flows if f["kind"] != "fee" and f["dst"] != FEE_SINK]
    if out.kind == "evm":
        assert out.recipient and out.asset
        if not fallback and target and target.lower() != out.recipient:
            return None
        received = [f for f in flows if f["dst"] == out.recipient and f["asset"] == out.asset]
        forward = [
            f for f in flows
            if f["src"] == out.vault and f["dst"] == out.router and f["asset"] == out.asset
        ]
        amount = sum(int(f["amount_in"]) for f in received) if received else out.amount or 0
        return out.recipient, out.asset, amount, received + forward
    node = f"tx:{out.tx_hash}"
    outputs = [f for f in flows if f["src"] == node]
    if not outputs:
        return None
    return _utxo_recipient(target or "", node, flows, outputs, fallback)


def _utxo_recipient(
    dest: str, node: str, flows: list[dict], outputs: list[dict], fallback: bool = True
) -> tuple[str, str, int, list[dict]] | None:
    # bech32 addresses are case-insensitive (a memo may carry them upper-case); base58 are not
    bech32 = dest.lower().startswith(("bc1", "tb1", "bcrt1", "ltc1"))
    paid = [
        f for f in outputs
        if f["dst"] == dest or (bech32 and f["dst"].lower() == dest.lower())
    ]
    if not paid and not fallback:
        return None
    if not paid:
        # No output to the memo's address: take the largest output that is not change.
        inputs = {f["src"] for f in flows if f["dst"] == node}
        others = [f for f in outputs if f["dst"] not in inputs]
        if not others:
            return None
        best = max(others, key=lambda f: int(f["amount_in"]))
        paid = [f for f in others if f["dst"] == best["dst"]]
    asset = paid[0]["asset"]
    return paid[0]["dst"], asset, sum(int(f["amount_in"]) for f in paid), paid


def match_thorchain(ws: Workspace, batch: Batch | None = None) -> tuple[Batch, ThorchainResult]:
    """Build bridge flows for matched THORChain swaps and refill `bridge_inbounds`."""
    batch = batch or Batch(STAGE)
    result = ThorchainResult()
    inbounds = read_inbounds(ws, result)
    outbounds = read_outbounds(ws, result)
    keys = {(i.chain, i.tx_hash) for i in inbounds}
    for outs in outbounds.values():
        keys.update((o.chain, o.tx_hash) for o in outs)
    flows = tx_flows(ws, sorted(keys))
    rank: dict[tuple[str, str], int] = {}
    report = []
    used: set[tuple[str, str, int]] = set()
    for inb in inbounds:
        src_flows = [f for f in flows.get((inb.chain, inb.tx_hash), []) if flow_key(f) not in used]
        if inb.utxo:
            depositor, sender, deposits = _utxo_deposit(inb, src_flows)
        else:
            deposits = [
                f for f in src_flows
                if f["dst"] == inb.router and f["asset"] == inb.asset and f["kind"] != "fee"
            ]
            # several deposits in one transaction: the flow of exactly this amount is this one's
            exact = [f for f in deposits if int(f["amount_out"]) == inb.amount]
            deposits = exact[:1] or deposits
            depositor = sender = deposits[0]["src"] if deposits else None
            deposits = [f for f in deposits if f["src"] == depositor]
            if inb.from_call and not deposits:
                continue  # a call that moved nothing (reverted): no deposit happened
        deposited = sum(int(f["amount_out"]) for f in deposits)
        dest_chain = inb.memo.asset.ledger_chain if inb.memo.asset else None
        dest_address = _dest_address(inb.memo)
        matched_tx = None
        # Payouts to the memo's own address first: deposits batched in one transaction share
        # the inbound hash, so their payouts all say OUT:<that hash>.
        candidates = [
            (fallback, out) for fallback in (False, True)
            for out in outbounds.get(normalize_hash(inb.tx_hash), [])
        ]
        for fallback, out in candidates:
            if depositor is None:
                break
            out_flows = flows.get((out.chain, out.tx_hash), [])
            target = dest_address if out.memo.action == "out" else inb.memo.refund_address
            payout = _payout(out, out_flows, target, fallback)
            if payout is None:
                continue
            recipient, dst_asset, amount_in, paid = payout
            if any(flow_key(f) in used for f in paid):
                continue
            forwards = [
                f for f in src_flows
                if not inb.utxo and f["src"] == inb.router and f["dst"] == inb.vault
                and f["asset"] == inb.asset and f["kind"] != "fee"
            ]
            exact = [f for f in forwards if int(f["amount_out"]) == deposited]
            replaced = deposits + (exact[:1] or forwards)
            k = rank.get((inb.chain, inb.tx_hash), 0)
            rank[(inb.chain, inb.tx_hash)] = k + 1
            batch.add(
                {
                    "chain": inb.chain,
                    "block": inb.block,
                    "time": inb.time,
                    "ordinal": tx_base(int(deposits[0]["ordinal"])) + BRIDGE_POSITION + k,
                    "tx_hash": inb.tx_hash,
                    "src": depositor,
                    "dst": recipient,
                    "asset": inb.asset,
                    "amount_out": str(deposited),
                    "amount_in": str(amount_in),
                    "kind": "bridge",
                    "dst_chain": out.chain,
                    "dst_asset": dst_asset,
                },
                [flow_key(f) for f in replaced + paid],
            )
            used.update(flow_key(f) for f in replaced + paid)
            matched_tx = out.tx_hash
            break
        result.inbounds += 1
        if matched_tx:
            result.matched += 1
        else:
            result.unmatched += 1
        report.append(
            {
                "chain": inb.chain, "tx_hash": inb.tx_hash, "time": inb.time,
                "depositor": sender, "asset": inb.asset,
                "amount": str(inb.amount if inb.amount is not None else deposited),
                "memo": inb.memo.raw, "dest_chain": dest_chain, "dest_address": dest_address,
                "matched_tx": matched_tx,
            }
        )
    _write_inbounds(ws, report)
    return batch, result


def _write_inbounds(ws: Workspace, rows: list[dict]) -> None:
    ws.con.execute("DELETE FROM bridge_inbounds")
    if not rows:
        return
    cols = ["chain", "tx_hash", "time", "depositor", "asset", "amount", "memo",
            "dest_chain", "dest_address", "matched_tx"]
    table = pa.Table.from_pylist(rows).select(cols)
    ws.con.register("_conv_inb", table)
    try:
        ws.con.execute(f"INSERT INTO bridge_inbounds SELECT {', '.join(cols)} FROM _conv_inb")
    finally:
        ws.con.unregister("_conv_inb")
