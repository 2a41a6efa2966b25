"""The transactions the laundering plan is made of, before they become CSV rows or block JSON."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenTransfer:
    """An ERC-20 transfer: one token_transfers.csv row and its Transfer log."""

    token: str
    frm: str
    to: str
    value: int


@dataclass
class Log:
    """A non-Transfer event log (swap, bridge deposit, blacklist)."""

    address: str
    topics: list[str]
    data: str


@dataclass
class Trace:
    """A call trace below the top-level call; `path` is the child-index path (trace_address)."""

    frm: str
    to: str
    value: int
    path: tuple[int, ...]


@dataclass
class EthTx:
    """One Ethereum transaction of the plan. Logs keep their order: transfers and events
    interleave as `items` says (("t", index) or ("l", index))."""

    hash: str
    block: int
    frm: str
    to: str
    value: int
    gas_used: int
    gas_price: int
    input: str = "0x"
    transfers: list[TokenTransfer] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)
    order: list[tuple[str, int]] = field(default_factory=list)
    nonce: int = 0

    @property
    def fee(self) -> int:
        return self.gas_used * self.gas_price

    def add_transfer(self, t: TokenTransfer) -> None:
        self.order.append(("t", len(self.transfers)))
        self.transfers.append(t)

    def add_log(self, log: Log) -> None:
        self.order.append(("l", len(self.logs)))
        self.logs.append(log)


@dataclass
class BtcOut:
    """An output: value in satoshi, paying `address` (script hex) or an OP_RETURN memo."""

    value: int
    address: str | None
    script: str
    memo: str | None = None


@dataclass
class BtcIn:
    """An input spending output `vout` of `txid`, with the prevout verbosity 3 shows."""

    txid: str
    vout: int
    value: int
    address: str
    script: str
    height: int


@dataclass
class BtcTx:
    txid: str
    height: int
    vin: list[BtcIn]
    vout: list[BtcOut]
    coinbase: bool = False

    @property
    def fee(self) -> int:
        if self.coinbase:
            return 0
        return sum(i.value for i in self.vin) - sum(o.value for o in self.vout)
