"""Small builders for trace tests: flows written straight into a workspace, labels, reads."""

from __future__ import annotations

import pyarrow as pa

from heisttrace.ledger import FLOW_SCHEMA, Workspace

E18 = 10**18


def flow(time: int, tx: str, src: str, dst: str, amount: float | int, *, ordinal: int = 1,
         asset: str = "ETH", kind: str = "native", amount_in: float | int | None = None,
         dst_asset: str | None = None, dst_chain: str | None = None, chain: str = "ethereum",
         block: int | None = None, decimals: int = 18) -> dict:
    """One flow; amounts in whole units (converted to exact base units)."""
    def base(x: float | int) -> str:
        return str(int(round(x * 10**decimals))) if isinstance(x, float) else str(x * 10**decimals)
    return dict(chain=chain, block=time if block is None else block, time=time, ordinal=ordinal,
                tx_hash=tx, src=src, dst=dst, asset=asset, amount_out=base(amount),
                amount_in=base(amount if amount_in is None else amount_in), kind=kind,
                dst_chain=dst_chain, dst_asset=dst_asset)


def add(ws: Workspace, rows: list[dict]) -> None:
    ws.add_flows(pa.Table.from_pylist(rows, schema=FLOW_SCHEMA))


def label(ws: Workspace, address: str, category: str, entity: str | None = None,
          chain: str = "ethereum") -> None:
    ws.con.execute(
        "INSERT INTO labels (chain, address, entity, category, source) VALUES (?, ?, ?, ?, 't')",
        [chain, address, entity, category],
    )


def sinks(ws: Workspace, case: str) -> dict[tuple[str, str, str, str], tuple[float, float]]:
    """(bucket, chain, address, asset) -> (origin_amount, amount)."""
    return {
        (b, c, a, s): (o, m)
        for b, c, a, s, o, m in ws.con.execute(
            "SELECT bucket, chain, address, asset, origin_amount, amount FROM case_sinks "
            "WHERE case_name = ?", [case]).fetchall()
    }


def by_address(ws: Workspace, case: str) -> dict[str, tuple[str, float, float]]:
    """address -> (bucket, origin, amount), for cases with one asset per address."""
    return {a: (b, o, m) for (b, _, a, _), (o, m) in sinks(ws, case).items()}


def buckets(ws: Workspace, case: str) -> dict[str, float]:
    return dict(ws.con.execute(
        "SELECT bucket, sum(origin_amount) FROM case_sinks WHERE case_name = ? GROUP BY 1",
        [case]).fetchall())
