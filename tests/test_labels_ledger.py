"""Hand-built ledgers for the label heuristics' tests: flows written the way importers write them."""

from __future__ import annotations

import pyarrow as pa

from heisttrace.ledger.schema import FLOW_SCHEMA, TX_STRIDE

ETH = 10**18


class Ledger:
    """Collects flows; each `pay` is one transaction with a value flow and (optionally) a fee."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []
        self._n = 0

    def pay(self, block: int, src: str, dst: str, amount: int, asset: str = "ETH",
            fee: int = 0, kind: str | None = None) -> str:
        self._n += 1
        tx = "0x" + f"{self._n:064x}"
        base = dict(chain="ethereum", block=block, time=1_700_000_000 + block * 12, tx_hash=tx,
                    dst_chain=None, dst_asset=None)
        if fee:
            self.rows.append({**base, "ordinal": 0, "src": src, "dst": "fees", "asset": "ETH",
                              "amount_out": str(fee), "amount_in": str(fee), "kind": "fee"})
        k = kind or ("native" if asset == "ETH" else "token")
        ordinal = 1 if k == "native" else (1 << 19)
        self.rows.append({**base, "ordinal": ordinal, "src": src, "dst": dst, "asset": asset,
                          "amount_out": str(amount), "amount_in": str(amount), "kind": k})
        return tx

    def table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rows, schema=FLOW_SCHEMA)


def addr(n: int | str) -> str:
    """A distinct lowercase EVM address per name/number."""
    if isinstance(n, str):
        n = int.from_bytes(n.encode()[:20].ljust(20, b"\0"), "big")
    return "0x" + f"{n:040x}"


__all__ = ["Ledger", "addr", "ETH", "TX_STRIDE"]


def test_ledger_helper_writes_valid_flows(workspace) -> None:  # type: ignore[no-untyped-def]
    led = Ledger()
    led.pay(1, addr("a"), addr("b"), 5 * ETH, fee=21_000)
    assert workspace.add_flows(led.table()) == 2
    assert addr("a") != addr("b") and len(addr("a")) == 42
